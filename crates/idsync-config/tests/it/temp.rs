//! Small projects written to a temporary folder: defaults, substitution order, and the checks
//! that the fixtures do not cover.

use crate::{lines, load_with};
use idsync_config::*;
use serde_json::json;
use std::path::Path;

/// Writes `files` (path relative to the project → content) into a fresh project folder.
fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("conf")).unwrap();
    for (path, content) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    dir
}

const HR: (&str, &str) = (
    "conf/provisioner.openicf-hr.json",
    r#"{"connectorRef":{"connectorName":"csv"},"configurationProperties":{"csvFile":"data/hr.csv"},
        "objectTypes":{"account":{"properties":{"uid":{"type":"string","nativeName":"__NAME__"}}}}}"#,
);
const MANAGED: (&str, &str) = ("conf/managed.json", r#"{"objects":[{"name":"user"}]}"#);

fn errors(dir: &Path, env: &[(&str, &str)]) -> Vec<String> {
    match load_with(dir, env) {
        Ok(_) => Vec::new(),
        Err(d) => lines(&d.errors),
    }
}

#[test]
fn a_minimal_mapping_gets_every_default() {
    let dir = project(&[
        HR,
        MANAGED,
        (
            "conf/sync.json",
            r#"{"mappings":[{"name":"m","source":"system/hr/account","target":"managed/user"}]}"#,
        ),
    ]);
    let p = load_with(dir.path(), &[]).unwrap().project;
    let m = p.mapping("m").unwrap();
    assert!(m.enable_sync && m.enable_linking && m.prefetch_links);
    assert!(m.source_ids_case_sensitive && m.target_ids_case_sensitive);
    assert_eq!((m.task_threads, m.feed_size), (10, 1000));
    assert!(
        !m.correlate_empty_target_set
            && !m.allow_empty_source_set
            && !m.clustered_source_recon_enabled
    );
    assert!(!m.recon_source_query_paging && !m.recon_target_query_paging);
    assert_eq!(
        (
            m.recon_source_query_page_size,
            m.recon_target_query_page_size
        ),
        (None, None)
    );
    assert_eq!(
        m.run_target_phase, None,
        "recon vs reconById default is the caller's"
    );
    assert_eq!(
        (m.source_query_full_entry, m.target_query_full_entry),
        (None, None)
    );
    assert_eq!(m.qualifier_list().unwrap(), ["default"]);
    assert!(m.correlation.is_none() && m.properties.is_empty() && m.policies.is_empty());
    assert!(m.queued_sync.is_none() && m.queued().is_none() && m.safety.is_none());
    assert!(m.trigger_sync_properties.is_none() && m.sync_after.is_empty());
    assert_eq!(p.settings, Settings::default());
    assert_eq!(p.settings.bind, "127.0.0.1:8080");
    assert_eq!(
        (
            p.settings.heartbeat_interval_ms,
            p.settings.node_timeout_ms,
            p.settings.lease_ms
        ),
        (2000, 10000, 10000)
    );
    assert_eq!(p.queue_recovery.recovery_interval_ms, 300_000);
    assert_eq!(p.queue_balancing.balance_interval_ms, 5_000);
    assert_eq!(
        p.connector("hr").unwrap().name,
        "hr",
        "the file name names a connector without \"name\""
    );
    assert!(p.auth.tokens.is_empty() && p.schedules.is_empty());
}

#[test]
fn queued_sync_defaults_and_disabled_queue() {
    let dir = project(&[
        HR,
        MANAGED,
        (
            "conf/sync.json",
            r#"{"mappings":[
              {"name":"a","source":"managed/user","target":"system/hr/account","queuedSync":{"enabled":true}},
              {"name":"b","source":"managed/user","target":"system/hr/account","links":"a","queuedSync":{"maxRetries":0}}]}"#,
        ),
    ]);
    let p = load_with(dir.path(), &[]).unwrap().project;
    let a = p.mapping("a").unwrap().queued().unwrap();
    assert_eq!(
        *a,
        QueuedSync {
            enabled: true,
            page_size: 100,
            polling_interval_ms: 1000,
            max_queue_size: 20000,
            max_retries: None,
            retry_delay_ms: 1000,
            post_retry_action: PostRetryAction::LoggedIgnore,
            workers: 1
        }
    );
    let b = p.mapping("b").unwrap();
    assert!(
        b.queued().is_none(),
        "queuedSync without enabled:true is off, as in IDM"
    );
    assert_eq!(b.queued_sync.as_ref().unwrap().max_retries, Some(0));
}

#[test]
fn substitution_order_idsync_json_then_env_then_upper_snake_env() {
    let conn = r#"{"connectorRef":{"connectorName":"csv"},"configurationProperties":{
        "a":"&{x.one}","b":"&{x.two}","c":"&{x.three}","d":"&{idm.instance.dir}","e":"&{launcher.project.location}/data"}}"#;
    let dir = project(&[
        ("conf/idsync.json", r#"{"x.one":"from-idsync-json"}"#),
        ("conf/provisioner.openicf-c.json", conn),
    ]);
    let env = [
        ("x.one", "env-exact-1"),
        ("X_ONE", "env-upper-1"),
        ("x.two", "env-exact-2"),
        ("X_TWO", "env-upper-2"),
        ("X_THREE", "env-upper-3"),
    ];
    let p = load_with(dir.path(), &env).unwrap().project;
    let props = &p.connector("c").unwrap().configuration_properties;
    let root = std::fs::canonicalize(dir.path())
        .unwrap()
        .display()
        .to_string();
    assert_eq!(props["a"], json!("from-idsync-json"));
    assert_eq!(props["b"], json!("env-exact-2"));
    assert_eq!(props["c"], json!("env-upper-3"));
    assert_eq!(props["d"], json!(root));
    assert_eq!(props["e"], json!(format!("{root}/data")));
    // Scripts' identityServer.getProperty resolves the same way (docs/scripts.md).
    assert_eq!(p.property("x.one").as_deref(), Some("from-idsync-json"));
    assert_eq!(
        p.property("idm.instance.dir").as_deref(),
        Some(root.as_str())
    );
    assert_eq!(p.property("idsync.test.never.set"), None);
}

#[test]
fn a_whole_string_substitution_can_stand_for_a_number_or_a_boolean() {
    let dir = project(&[
        HR,
        MANAGED,
        (
            "conf/sync.json",
            r#"{"mappings":[{"name":"m","source":"system/hr/account","target":"managed/user",
               "taskThreads":"&{THREADS}","prefetchLinks":"&{PREFETCH}","safety":{"maxDeletes":"&{MAXDEL}"},
               "feedSize":"12"}]}"#,
        ),
    ]);
    // A literal "12" is still a type error: only substitutions are converted.
    assert_eq!(
        errors(
            dir.path(),
            &[("THREADS", "3"), ("PREFETCH", "false"), ("MAXDEL", "7")]
        ),
        ["conf/sync.json: /mappings/0/feedSize: expected an integer, found a string"]
    );
    let dir = project(&[
        HR,
        MANAGED,
        (
            "conf/sync.json",
            r#"{"mappings":[{"name":"m","source":"system/hr/account","target":"managed/user",
               "taskThreads":"&{THREADS}","prefetchLinks":"&{PREFETCH}","safety":{"maxDeletes":"&{MAXDEL}"}}]}"#,
        ),
    ]);
    let p = load_with(
        dir.path(),
        &[("THREADS", "3"), ("PREFETCH", "false"), ("MAXDEL", "7")],
    )
    .unwrap()
    .project;
    let m = p.mapping("m").unwrap();
    assert_eq!(m.task_threads, 3);
    assert!(!m.prefetch_links);
    assert_eq!(
        m.safety.as_ref().unwrap().max_deletes,
        Some(Limit::Count(7))
    );
    assert_eq!(
        errors(
            dir.path(),
            &[("THREADS", "many"), ("PREFETCH", "false"), ("MAXDEL", "7")]
        ),
        ["conf/sync.json: /mappings/0/taskThreads: expected an integer, found \"many\""]
    );
}

#[test]
fn schedule_auth_and_settings_errors() {
    let dir = project(&[
        HR,
        MANAGED,
        (
            "conf/sync.json",
            r#"{"mappings":[{"name":"m","source":"system/hr/account","target":"managed/user"}]}"#,
        ),
        (
            "conf/idsync.json",
            r#"{"heartbeatIntervalMs": 5000, "nodeTimeoutMs": 4000, "heartbeatIntervalMS": 1}"#,
        ),
        (
            "conf/schedule-a.json",
            r#"{"type":"cron","schedule":"0 * * * * ?","invokeService":"sync","invokeContext":{"action":"reconcile","mapping":"nope"}}"#,
        ),
        (
            "conf/schedule-b.json",
            r#"{"type":"simple","repeatInterval":1000,"invokeService":"provisioner","invokeContext":{"action":"liveSync","source":"system/ad/account"}}"#,
        ),
        (
            "conf/schedule-c.json",
            r#"{"type":"hourly","invokeService":"workflow"}"#,
        ),
        (
            "conf/schedule-d.json",
            r#"{"invokeService":"script","invokeContext":{"script":{"type":"groovy","source":"x"}}}"#,
        ),
        (
            "conf/authentication.json",
            r#"{"tokens":[{"name":"t","roles":["root"],"sha256":"abc"}],
                "users":[{"username":"u","roles":[],"password":"plain"},{"username":"u","roles":["reader"],"password":"$argon2id$v=19$x"}]}"#,
        ),
        ("conf/audit.json", "{}"),
    ]);
    let d = load_with(dir.path(), &[]).unwrap_err();
    assert_eq!(
        lines(&d.errors),
        [
            "conf/authentication.json: /tokens/0/roles/0: unknown role \"root\" (known: admin, reader)",
            "conf/authentication.json: /tokens/0/sha256: expected the 64 hex digits of the token's SHA-256",
            "conf/authentication.json: /users/0/password: expected an argon2 PHC string (\"$argon2id$...\"); make one with `idsync auth hash-password`",
            "conf/authentication.json: /users/0/roles: needs at least one role (admin or reader)",
            "conf/authentication.json: /users/1/username: duplicate user \"u\"",
            "conf/idsync.json: /nodeTimeoutMs: must be greater than heartbeatIntervalMs (4000 <= 5000), or every node looks down between two heartbeats",
            "conf/schedule-a.json: /invokeContext/mapping: unknown mapping \"nope\" (known: m)",
            "conf/schedule-b.json: /invokeContext/source: unknown connector \"ad\" (known: hr)",
            "conf/schedule-c.json: /invokeService: unknown invokeService \"workflow\" (known: sync, provisioner, script)",
            "conf/schedule-c.json: /type: unknown schedule type \"hourly\" (known: cron, simple)",
            "conf/schedule-d.json: /invokeContext/script/type: Groovy scripts are not supported: idsync runs JavaScript only (use \"type\": \"text/javascript\")",
            "conf/schedule-d.json: /schedule: missing required key \"schedule\" (a cron schedule needs a cron expression)",
        ]
    );
    assert_eq!(
        lines(&d.warnings),
        [
            "conf/audit.json: file not used by idsync",
            "conf/idsync.json: /heartbeatIntervalMS: unknown key \"heartbeatIntervalMS\"",
        ]
    );
    assert!(
        !d.to_string().contains("plain"),
        "a rejected password is never echoed"
    );
}

#[test]
fn sync_after_cycles_and_unknown_names_are_errors() {
    let dir = project(&[
        HR,
        MANAGED,
        (
            "conf/mapping-a.json",
            r#"{"source":"system/hr/account","target":"managed/user","syncAfter":["b"]}"#,
        ),
        (
            "conf/mapping-b.json",
            r#"{"source":"managed/user","target":"system/hr/account","syncAfter":["a","zz"]}"#,
        ),
    ]);
    assert_eq!(
        errors(dir.path(), &[]),
        [
            "conf/mapping-a.json: /syncAfter: syncAfter forms a cycle between mappings a, b",
            "conf/mapping-b.json: /syncAfter: syncAfter forms a cycle between mappings a, b",
            "conf/mapping-b.json: /syncAfter/1: syncAfter names unknown mapping \"zz\" (known: a, b)",
        ]
    );
}

#[test]
fn script_and_correlation_shape_errors() {
    let dir = project(&[
        HR,
        MANAGED,
        (
            "conf/sync.json",
            r#"{"mappings":[{"name":"m","source":"system/hr/account","target":"managed/user",
               "linkQualifiers":["default","default"],
               "correlationQuery":[{"linkQualifier":"x","type":"text/javascript","source":"1;"}],
               "validSource":"source.ok;",
               "onCreate":{"type":"text/javascript","source":"1;","file":"script/a.js"},
               "onUpdate":{"type":"python","source":"1"},
               "properties":[{"source":"a"},{"target":"","source":"b"}],
               "policies":[{"situation":"FOUND"}]}]}"#,
        ),
    ]);
    assert_eq!(
        errors(dir.path(), &[]),
        [
            "conf/sync.json: /mappings/0/linkQualifiers/1: duplicate link qualifier \"default\"",
            "conf/sync.json: /mappings/0/onCreate: a script has either \"source\" or \"file\", not both",
            "conf/sync.json: /mappings/0/onUpdate/type: unknown script type \"python\" (known: text/javascript)",
            "conf/sync.json: /mappings/0/policies/0/action: missing required key \"action\"",
            "conf/sync.json: /mappings/0/properties/0/target: missing required key \"target\"",
            "conf/sync.json: /mappings/0/properties/1/target: a property cannot be written to the root of the target",
            "conf/sync.json: /mappings/0/validSource: expected a script object ({\"type\":\"text/javascript\",\"source\":...}), found a string",
        ]
    );
}

#[test]
fn a_project_without_conf_or_with_bad_paths_fails_clearly() {
    let empty = tempfile::tempdir().unwrap();
    let d = load_with(empty.path(), &[]).unwrap_err();
    assert_eq!(d.errors.len(), 1);
    assert_eq!(d.errors[0].file, "conf");
    assert!(
        d.errors[0]
            .message
            .starts_with("the project has no readable conf/ folder"),
        "{}",
        d.errors[0]
    );

    let missing = empty.path().join("nope");
    let d = load_with(&missing, &[]).unwrap_err();
    assert!(
        d.errors[0]
            .message
            .starts_with("cannot open the project folder"),
        "{}",
        d.errors[0]
    );

    let dir = project(&[
        HR,
        MANAGED,
        (
            "conf/sync.json",
            r#"{"mappings":[{"name":"m","source":"repo/link","target":"managed/user/42"},
                            {"name":"n","source":"system/hr","target":"ldap/x"}]}"#,
        ),
    ]);
    assert_eq!(
        errors(dir.path(), &[]),
        [
            "conf/sync.json: /mappings/0/source: \"repo/link\" cannot be a mapping source: use managed/<type> or system/<connector>/<type>",
            "conf/sync.json: /mappings/0/target: \"managed/user/42\" names one object; a mapping target is a collection",
            "conf/sync.json: /mappings/1/source: resource path \"system/hr\": needs a connector and an object type: system/<name>/<type>",
            "conf/sync.json: /mappings/1/target: resource path \"ldap/x\" must start with managed/, system/ or repo/link",
        ]
    );
}

#[test]
fn masking_covers_nested_secrets_but_not_definitions() {
    let v = json!({
        "configurationProperties": {"password": "p", "credentials": "c", "nested": {"clientSecret": "s", "port": 1}, "passwords": ["a", "b"]},
        "objectTypes": {"a": {"properties": {"password": {"type": "string", "nativeName": "__PASSWORD__"}}}},
        "tokens": [{"name": "t", "sha256": "abc"}],
        "emptyPassword": null
    });
    assert_eq!(
        mask_secrets(&v),
        json!({
            "configurationProperties": {"password": MASK, "credentials": MASK, "nested": {"clientSecret": MASK, "port": 1}, "passwords": [MASK, MASK]},
            "objectTypes": {"a": {"properties": {"password": {"type": "string", "nativeName": "__PASSWORD__"}}}},
            "tokens": [{"name": "t", "sha256": MASK}],
            "emptyPassword": null
        })
    );
}

#[test]
fn env_var_names_follow_upper_snake_case() {
    assert_eq!(
        env_var_for("heartbeatIntervalMs"),
        "IDSYNC_HEARTBEAT_INTERVAL_MS"
    );
    assert_eq!(env_var_for("nodeTimeoutMs"), "IDSYNC_NODE_TIMEOUT_MS");
    assert_eq!(env_var_for("leaseMs"), "IDSYNC_LEASE_MS");
    assert_eq!(env_var_for("repo"), "IDSYNC_REPO");
    assert_eq!(env_var_for("nodeId"), "IDSYNC_NODE_ID");
}

#[test]
fn effective_page_sizes_and_target_phase() {
    let dir = project(&[
        HR,
        MANAGED,
        (
            "conf/sync.json",
            r#"{"mappings":[
              {"name":"plain","source":"system/hr/account","target":"managed/user"},
              {"name":"paged","source":"system/hr/account","target":"managed/user","links":"plain",
               "reconSourceQueryPaging":true,"reconTargetQueryPaging":true,"runTargetPhase":true},
              {"name":"clustered","source":"system/hr/account","target":"managed/user","links":"plain",
               "clusteredSourceReconEnabled":true},
              {"name":"sized","source":"system/hr/account","target":"managed/user","links":"plain",
               "clusteredSourceReconEnabled":true,"reconSourceQueryPageSize":500}]}"#,
        ),
    ]);
    let p = load_with(dir.path(), &[]).unwrap().project;
    let get = |n: &str| p.mapping(n).unwrap();
    assert_eq!(get("plain").effective_source_page_size(), None);
    assert_eq!(get("plain").effective_target_page_size(), None);
    assert!(get("plain").effective_run_target_phase(false));
    assert!(!get("plain").effective_run_target_phase(true));
    assert_eq!(get("paged").effective_source_page_size(), Some(1000));
    assert_eq!(get("paged").effective_target_page_size(), Some(1000));
    assert!(get("paged").effective_run_target_phase(true));
    assert_eq!(get("clustered").effective_source_page_size(), Some(10_000));
    assert_eq!(get("sized").effective_source_page_size(), Some(500));
}

#[test]
fn managed_json_problems() {
    let dir = project(&[(
        "conf/managed.json",
        r#"{"objects":[{"name":"user","onRead":{"type":"text/javascript","source":"1;"},"idsync":{"index":"userName"},
                        "actions":{"triggerSyncCheck":{"source":"1"},"ok":{"source":"1"},"bad":"x"}},
                       {"name":"user"},{"name":"a/b"},{"schema":{}},{"name":"r","actions":[]}]}"#,
    )]);
    let d = load_with(dir.path(), &[]).unwrap_err();
    assert_eq!(
        lines(&d.errors),
        [
            "conf/managed.json: /objects/0/actions/bad: expected a script object ({\"type\":\"text/javascript\",\"source\":...}), found a string",
            "conf/managed.json: /objects/0/actions/triggerSyncCheck: bad action name \"triggerSyncCheck\": it must be non-empty and not one of idsync's own actions (create, triggerSyncCheck)",
            "conf/managed.json: /objects/0/idsync/index: expected an array of strings, found a string",
            "conf/managed.json: /objects/1/name: duplicate managed object type \"user\"",
            "conf/managed.json: /objects/2/name: bad managed object type name \"a/b\": it must be non-empty and contain no '/'",
            "conf/managed.json: /objects/3/name: missing required key \"name\"",
            "conf/managed.json: /objects/4/actions: expected an object of action name to script, found an array",
        ]
    );
    // Every lifecycle script runs now: none is warned about.
    assert_eq!(lines(&d.warnings), Vec::<String>::new());
}

/// IDM's project layout (docs/idm-samples.md): a project without managed.json has IDM's default
/// types, `user` and `role`.
#[test]
fn without_managed_json_the_default_user_and_role_types_exist() {
    let dir = project(&[
        HR,
        (
            "conf/sync.json",
            r#"{"mappings":[{"name":"m","source":"system/hr/account","target":"managed/user"},
                {"name":"r","source":"system/hr/account","target":"managed/role"}]}"#,
        ),
    ]);
    let loaded = load_with(dir.path(), &[]).unwrap_or_else(|d| panic!("{d}"));
    let names: Vec<&str> = loaded
        .project
        .managed
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(names, ["user", "role"]);
    let user = loaded.project.managed_type("user").unwrap();
    assert_eq!(user.indexed, ["userName", "mail"]);
    assert!(user.schema["properties"]["givenName"].is_object());
    assert_eq!(user.raw["name"], json!("user"));
    assert_eq!(
        loaded.project.managed_type("role").unwrap().indexed,
        ["name"]
    );

    // A managed.json replaces them, as in IDM.
    std::fs::write(dir.path().join("conf/managed.json"), MANAGED.1).unwrap();
    assert_eq!(
        errors(dir.path(), &[]),
        [r#"conf/sync.json: /mappings/1/target: unknown managed object type "role" (known: user)"#]
    );
}

/// A script `file` is looked up in the project folder, then its `script/` folder, then idsync's
/// built-in library; IDM's other default scripts are refused by name.
#[test]
fn script_files_are_found_as_idm_finds_them() {
    let dir = project(&[
        ("compensate.js", "'project root'"),
        (
            "script/ui/onDelete-user-cleanup.js",
            "'project script folder'",
        ),
    ]);
    let read = |f: &str| read_script_file(dir.path(), f).map_err(|e| e.to_string());
    assert_eq!(read("compensate.js").unwrap(), "'project root'");
    assert_eq!(
        read("ui/onDelete-user-cleanup.js").unwrap(),
        "'project script folder'"
    );
    assert_eq!(
        read("script/ui/onDelete-user-cleanup.js").unwrap(),
        "'project script folder'"
    );
    // Not in the project: the built-in versions.
    assert!(read("roles/onDelete-roles.js").unwrap().contains("409"));
    assert!(
        read("ui/onDetele-user-cleanup.js")
            .unwrap()
            .contains("built-in")
    );
    std::fs::remove_file(dir.path().join("compensate.js")).unwrap();
    assert!(read("compensate.js").unwrap().contains("syncResults"));
    assert!(
        read("script/compensate.js")
            .unwrap()
            .contains("syncResults")
    );
    // Refused by name, with the reason; an unknown name is not found.
    let err = read("roles/onSync-roles.js").unwrap_err();
    assert!(
        err.contains("\"roles/onSync-roles.js\" is one of IDM's default scripts")
            && err.contains("role-based provisioning"),
        "{err}"
    );
    assert_eq!(
        read("nowhere.js").unwrap_err(),
        "script file \"nowhere.js\" not found (looked in the project folder, its script/ folder \
         and idsync's built-in scripts)"
    );
    // Still confined to the project folder, in script/ too, and never shown.
    for outside in ["../../../../../../etc/passwd", "/etc/passwd"] {
        let err = read(outside).unwrap_err();
        assert!(err.contains("must be inside the project folder"), "{err}");
        assert!(!err.contains("root:"), "{err}");
    }
}

/// The built-in scripts are JavaScript a project can name: every one loads through a config.
#[test]
fn every_built_in_script_loads_from_managed_json() {
    let hooks: Vec<String> = idsync_config::builtin::BUILTIN_SCRIPTS
        .iter()
        .enumerate()
        .map(|(i, (name, _))| {
            format!(r#"{{"name":"t{i}","onDelete":{{"type":"text/javascript","file":"{name}"}}}}"#)
        })
        .collect();
    let managed = format!(r#"{{"objects":[{}]}}"#, hooks.join(","));
    let dir = project(&[("conf/managed.json", &managed)]);
    let loaded = load_with(dir.path(), &[]).unwrap_or_else(|d| panic!("{d}"));
    for (i, (name, source)) in idsync_config::builtin::BUILTIN_SCRIPTS.iter().enumerate() {
        let t = loaded.project.managed_type(&format!("t{i}")).unwrap();
        let s = t.on_delete.as_ref().unwrap();
        assert_eq!(s.source, *source);
        assert_eq!(s.file.as_deref(), Some(*name));
    }
}
