//! The complete valid project: every supported key read into its typed form.

use crate::{fixture, lines, load_with};
use idsync_config::*;
use idsync_core::{Action, JsonPointer, ResourcePath, Situation};
use serde_json::json;

const ENV: [(&str, &str); 3] = [
    ("HRDB_PORT", "5432"),
    ("HRDB_PASSWORD", "db-secret"),
    ("LDAP_PASSWORD", "ldap-secret"),
];

fn load() -> Loaded {
    match load_with(&fixture("full"), &ENV) {
        Ok(l) => l,
        Err(d) => panic!("the full fixture must load:\n{d}"),
    }
}

#[test]
fn loads_with_only_the_expected_warnings() {
    let loaded = load();
    assert_eq!(
        lines(&loaded.warnings),
        [
            "conf/sync.json: /comment: unknown key \"comment\"",
            "conf/sync.json: /mappings/0/onRecon: \"onRecon\" (role and assignment processing) is not supported by idsync and is ignored",
        ]
    );
    let dir = std::fs::canonicalize(fixture("full")).unwrap();
    assert_eq!(loaded.project.dir, dir);
}

#[test]
fn mappings_keep_sync_json_order_and_every_property() {
    let p = load().project;
    let names: Vec<&str> = p.mappings.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "hr_managedUser",
            "ldap_managedUser",
            "managedUser_ldap",
            "hrdb_managedUser"
        ]
    );
    let m = p.mapping("hr_managedUser").unwrap();
    assert_eq!(m.source, ResourcePath::parse("system/hr/account").unwrap());
    assert_eq!(m.source_str, "system/hr/account");
    assert_eq!(m.target, ResourcePath::parse("managed/user").unwrap());
    assert_eq!(m.links, None);
    assert_eq!(m.link_type(), "hr_managedUser");
    assert!(m.enable_sync && m.enable_linking);
    assert!(!m.source_ids_case_sensitive && m.target_ids_case_sensitive);
    assert_eq!(
        m.valid_source.as_ref().unwrap().source,
        "source.uid !== 'root';"
    );
    assert_eq!(
        m.valid_source.as_ref().unwrap().origin,
        "conf/sync.json /mappings/0/validSource"
    );
    assert!(m.valid_target.is_some());
    match m.source_condition.as_ref().unwrap() {
        Condition::Filter(f, s) => {
            assert_eq!(s, "/source/active eq true");
            assert!(f.matches(&json!({"source": {"active": true}})));
            assert!(!f.matches(&json!({"source": {"active": false}})));
        }
        other @ Condition::Script(_) => panic!("{other:?}"),
    }
    assert_eq!(m.qualifier_list().unwrap(), ["default", "admin"]);
    let Some(Correlation::Queries(qs)) = &m.correlation else {
        panic!("{:?}", m.correlation)
    };
    assert_eq!(qs.len(), 2);
    assert_eq!(qs[0].link_qualifier.as_deref(), Some("default"));
    assert!(
        qs[0].script.globals.is_empty(),
        "linkQualifier is not a script variable"
    );
    assert_eq!(qs[1].link_qualifier.as_deref(), Some("admin"));
    assert!(
        qs[1].script.source.contains("'/' + f + ' eq '"),
        "{}",
        qs[1].script.source
    );
    assert!(
        qs[1].script.source.contains("eq(\"mail\", val(\"mail\"))"),
        "{}",
        qs[1].script.source
    );
    assert!(
        qs[1].script.source.contains("' or '"),
        "{}",
        qs[1].script.source
    );

    assert_eq!(m.properties.len(), 7);
    assert_eq!(m.properties[0].target, JsonPointer::parse("userName"));
    assert_eq!(m.properties[0].source, Some(JsonPointer::parse("uid")));
    assert_eq!(m.properties[2].target, JsonPointer::parse("sn"));
    let lower = m.properties[3].transform.as_ref().unwrap();
    assert_eq!(lower.source, "source ? source.toLowerCase() : null;\n");
    assert_eq!(lower.file.as_deref(), Some("script/lower.js"));
    assert_eq!(lower.origin, "script/lower.js");
    assert!(
        m.properties[4].source.as_ref().unwrap().is_root(),
        "\"\" is the whole source"
    );
    assert_eq!(m.properties[5].source, None);
    assert_eq!(m.properties[5].default, Some(json!("active")));
    assert!(matches!(
        m.properties[5].condition,
        Some(Condition::Filter(..))
    ));
    assert!(matches!(
        m.properties[6].condition,
        Some(Condition::Script(_))
    ));

    assert_eq!(m.policies.len(), 9);
    assert_eq!(m.policies[0].situation, Situation::Confirmed);
    assert_eq!(m.policies[0].action, ActionSpec::Name(Action::Update));
    assert!(m.policies[1].post_action.is_some());
    assert!(m.policies[2].condition.is_some());
    let ActionSpec::Script(s) = &m.policies[3].action else {
        panic!("{:?}", m.policies[3])
    };
    assert_eq!(
        s.globals.get("workflowName"),
        Some(&json!("approval")),
        "extra keys become variables"
    );
    assert_eq!(m.policies[7].action, ActionSpec::Name(Action::Unlink));

    for hook in [
        &m.on_create,
        &m.on_update,
        &m.on_delete,
        &m.on_link,
        &m.on_unlink,
        &m.result,
    ] {
        assert!(hook.is_some());
    }
    assert_eq!(m.task_threads, 4);
    assert_eq!(m.feed_size, 500);
    assert!(!m.prefetch_links);
    assert!(m.correlate_empty_target_set);
    assert_eq!(
        m.source_query.as_ref().unwrap().get("_sortKeys"),
        Some(&json!("uid"))
    );
    assert_eq!(
        m.target_query.as_ref().unwrap().get("_fields"),
        Some(&json!("_id"))
    );
    assert_eq!(
        (m.source_query_full_entry, m.target_query_full_entry),
        (Some(true), Some(false))
    );
    assert!(m.allow_empty_source_set);
    assert_eq!(m.run_target_phase, Some(false));
    assert!(m.recon_source_query_paging && m.recon_target_query_paging);
    assert_eq!(m.recon_source_query_page_size, Some(2000));
    assert_eq!(m.recon_target_query_page_size, Some(3000));
    assert!(m.clustered_source_recon_enabled);
    assert_eq!(
        m.queued(),
        Some(&QueuedSync {
            enabled: true,
            page_size: 50,
            polling_interval_ms: 250,
            max_queue_size: 5000,
            max_retries: Some(3),
            retry_delay_ms: 2000,
            post_retry_action: PostRetryAction::DeadLetterQueue,
            workers: 4,
        })
    );
    assert_eq!(
        m.trigger_sync_properties,
        Some(vec![
            JsonPointer::parse("/mail"),
            JsonPointer::parse("/givenName")
        ])
    );
    assert_eq!(
        m.safety,
        Some(Safety {
            max_deletes: Some(Limit::Percent(5.0)),
            max_unlinks: Some(Limit::Count(100)),
            min_source_size: Some(10)
        })
    );
    assert_eq!(
        m.recon_association,
        Some(json!({"maxAnalysisRunsPerMapping": 1, "maxNonAnalysisRunsPerMapping": 3}))
    );
    assert_eq!(m.raw.get("taskThreads"), Some(&json!(4)));
}

#[test]
fn links_resolve_to_the_definer_and_direction() {
    let p = load().project;
    let m = p.mapping("managedUser_ldap").unwrap();
    assert_eq!(
        m.links,
        Some(LinksRef {
            mapping: "ldap_managedUser".into(),
            reversed: true
        })
    );
    assert_eq!(m.link_type(), "ldap_managedUser");
    assert!(m.links_reversed());
    // A single correlation query object is a list of one for the default qualifier.
    let Some(Correlation::Queries(qs)) = &m.correlation else {
        panic!()
    };
    assert_eq!(qs.len(), 1);
    assert_eq!(qs[0].link_qualifier, None);
    // Substitution reaches script sources inside conf files.
    assert!(
        m.properties[1]
            .transform
            .as_ref()
            .unwrap()
            .source
            .contains("ou=People,dc=example,dc=com")
    );
    let q = m.queued().unwrap();
    assert_eq!(q.max_retries, None, "a negative maxRetries means forever");
    assert_eq!(
        (
            q.page_size,
            q.polling_interval_ms,
            q.max_queue_size,
            q.retry_delay_ms
        ),
        (100, 1000, 20000, 1000)
    );
    assert_eq!(q.workers, 1);
    let l = p.mapping("ldap_managedUser").unwrap();
    assert!(matches!(l.correlation, Some(Correlation::Script(_))));
    assert!(matches!(l.link_qualifiers, LinkQualifiers::Script(_)));
    assert_eq!(l.qualifier_list(), None);
}

#[test]
fn connectors_are_typed_and_substituted() {
    let p = load().project;
    let names: Vec<&String> = p.connectors.keys().collect();
    assert_eq!(
        names,
        ["hr", "hrdb", "ldap"],
        "the name field wins over the file name"
    );
    let hr = p.connector("hr").unwrap();
    assert_eq!(hr.kind, ConnectorKind::Csv);
    assert!(hr.enabled);
    let dir = p.dir.display().to_string();
    assert_eq!(
        hr.configuration_properties["csvFile"],
        json!(format!("{dir}/data/hr.csv"))
    );
    let account = &hr.object_types["account"];
    assert_eq!(account.native_type.as_deref(), Some("__ACCOUNT__"));
    assert_eq!(account.properties["uid"].native_name, "__NAME__");
    assert!(account.properties["uid"].required);
    assert_eq!(
        account.properties["email"].native_name, "email",
        "nativeName defaults to the property name"
    );
    assert_eq!(account.properties["active"].r#type, "boolean");
    assert_eq!(
        account.properties["active"].flags,
        ["NOT_RETURNED_BY_DEFAULT"]
    );
    assert_eq!(
        account.properties["groups"].items,
        Some(json!({"type": "string"}))
    );
    assert_eq!(
        hr.sync_failure_handler,
        Some(SyncFailureHandler {
            max_retries: Some(5),
            post_retry_action: PostRetryAction::DeadLetterQueue
        })
    );
    assert_eq!(hr.file, "conf/provisioner.openicf-hr.json");

    let db = p.connector("hrdb").unwrap();
    assert_eq!(db.kind, ConnectorKind::DatabaseTable);
    assert!(!db.enabled);
    assert_eq!(db.configuration_properties["port"], json!("5432"));
    assert_eq!(db.configuration_properties["password"], json!("db-secret"));
    let h = db.sync_failure_handler.as_ref().unwrap();
    assert_eq!(h.max_retries, None);
    assert!(matches!(h.post_retry_action, PostRetryAction::Script(_)));

    let ldap = p.connector("ldap").unwrap();
    assert_eq!(ldap.kind, ConnectorKind::Ldap);
    assert_eq!(
        ldap.configuration_properties["principal"],
        json!("cn=admin,dc=example,dc=com")
    );
    assert_eq!(
        ldap.configuration_properties["baseContexts"],
        json!(["ou=People,dc=example,dc=com"])
    );
}

#[test]
fn secrets_are_masked_for_config_reads() {
    let p = load().project;
    let db = p.connector("hrdb").unwrap().masked();
    assert_eq!(db["configurationProperties"]["password"], json!(MASK));
    assert_eq!(db["configurationProperties"]["user"], json!("postgres"));
    let ldap = p.connector("ldap").unwrap().masked();
    assert_eq!(
        ldap["configurationProperties"]["credentials"],
        json!("********")
    );
    assert_eq!(
        ldap["configurationProperties"]["principal"],
        json!("cn=admin,dc=example,dc=com")
    );
    // A schema property named like a secret is a definition, not a secret: it stays readable.
    assert_eq!(
        ldap["objectTypes"]["account"]["properties"]["userPassword"]["nativeName"],
        json!("userPassword")
    );
    let text = serde_json::to_string(&db).unwrap() + &serde_json::to_string(&ldap).unwrap();
    assert!(
        !text.contains("db-secret") && !text.contains("ldap-secret"),
        "{text}"
    );
}

#[test]
fn managed_types_index_hints_and_hooks() {
    let p = load().project;
    let user = p.managed_type("user").unwrap();
    assert_eq!(
        user.indexed,
        ["userName", "mail"],
        "the hint first, then schema index flags, no duplicates"
    );
    let on_create = user.on_create.as_ref().unwrap();
    assert_eq!(on_create.file.as_deref(), Some("script/onCreateUser.js"));
    assert_eq!(
        on_create.globals.get("defaultStatus"),
        Some(&json!("active"))
    );
    assert!(user.on_update.is_some() && user.on_delete.is_some() && user.on_sync.is_some());
    assert_eq!(
        p.managed_type("group").unwrap().indexed,
        Vec::<String>::new()
    );
    assert_eq!(p.managed.len(), 2);
}

#[test]
fn schedules_auth_settings_and_queue_settings() {
    let p = load().project;
    let recon = &p.schedules["reconHr"];
    assert_eq!(recon.r#type, ScheduleType::Cron);
    assert_eq!(recon.schedule.as_deref(), Some("0 0/15 * * * ?"));
    assert!(recon.enabled && recon.persisted && !recon.concurrent_execution);
    assert_eq!(recon.invoke_service, InvokeService::Sync);
    assert_eq!(recon.invoke_context["mapping"], json!("hr_managedUser"));
    assert_eq!(recon.timezone.as_deref(), Some("UTC"));
    assert_eq!(recon.start_time.as_deref(), Some("2026-01-01T00:00:00"));
    let live = &p.schedules["liveSyncLdap"];
    assert_eq!(live.r#type, ScheduleType::Simple);
    assert!(!live.enabled);
    assert_eq!(
        (live.repeat_interval_ms, live.repeat_count),
        (Some(15000), Some(-1))
    );
    assert_eq!(live.invoke_service, InvokeService::Provisioner);

    assert_eq!(p.auth.tokens.len(), 2);
    assert_eq!(
        p.auth.tokens[0].sha256,
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    );
    assert_eq!(p.auth.tokens[1].roles, [Role::Reader]);
    assert_eq!(p.auth.users[0].username, "openidm-admin");
    assert_eq!(p.auth.users[0].roles, [Role::Admin, Role::Reader]);

    let s = &p.settings;
    assert_eq!(
        s.repo_url.as_deref(),
        Some(format!("sqlite://{}/.idsync/repo.db", p.dir.display()).as_str())
    );
    assert_eq!(s.node_id.as_deref(), Some("node-a"));
    assert_eq!(s.bind, "127.0.0.1:0");
    assert_eq!(
        (s.heartbeat_interval_ms, s.node_timeout_ms, s.lease_ms),
        (1000, 5000, 8000)
    );
    assert_eq!(s.audit_retention_days, Some(30));
    assert_eq!(s.request_timeout_ms, 300_000, "the default request timeout");
    assert_eq!(s.max_concurrent_jobs, 2, "the default jobs per node");

    assert_eq!(
        p.queue_recovery,
        QueueRecovery {
            enabled: true,
            recovery_interval_ms: 120_000
        }
    );
    assert_eq!(
        p.queue_balancing,
        QueueBalancing {
            enabled: false,
            balance_interval_ms: 10_000
        }
    );
}

#[test]
fn environment_overrides_idsync_json() {
    let mut env = ENV.to_vec();
    env.extend([
        ("IDSYNC_LEASE_MS", "20000"),
        ("IDSYNC_MAX_CONCURRENT_JOBS", "1"),
        ("IDSYNC_REQUEST_TIMEOUT_MS", "1500"),
        ("IDSYNC_NODE_ID", "node-b"),
        ("IDSYNC_LDAP_BASE_DN", "dc=other"),
    ]);
    let p = load_with(&fixture("full"), &env).unwrap().project;
    assert_eq!(p.settings.lease_ms, 20000);
    assert_eq!(p.settings.max_concurrent_jobs, 1);
    assert_eq!(p.settings.request_timeout_ms, 1500);
    assert_eq!(p.settings.node_id.as_deref(), Some("node-b"));
    assert_eq!(
        p.settings.heartbeat_interval_ms, 1000,
        "keys without an override keep the file's value"
    );
    // An overridden idsync.json key is what substitution sees.
    let ldap = p.connector("ldap").unwrap();
    assert_eq!(
        ldap.configuration_properties["principal"],
        json!("cn=admin,dc=other")
    );

    let bad = load_with(
        &fixture("full"),
        &[ENV[0], ENV[1], ENV[2], ("IDSYNC_LEASE_MS", "soon")],
    )
    .unwrap_err();
    assert_eq!(
        lines(&bad.errors),
        [
            "conf/idsync.json: /leaseMs: environment variable IDSYNC_LEASE_MS=\"soon\" is not a non-negative integer"
        ]
    );
}

#[test]
fn a_missing_secret_names_file_pointer_and_variables() {
    let err = load_with(&fixture("full"), &[ENV[0], ENV[2]]).unwrap_err();
    assert_eq!(
        lines(&err.errors),
        [
            "conf/provisioner.openicf-hrdb.json: /configurationProperties/password: property &{hrdb.password} is not defined (set it in conf/idsync.json or the environment variable hrdb.password or HRDB_PASSWORD)"
        ]
    );
}

#[test]
fn config_over_rest_is_the_effective_config_with_secrets_masked() {
    let p = load().project;
    let sync = p.config_json("sync").unwrap();
    assert_eq!(sync["mappings"].as_array().unwrap().len(), 4);
    assert_eq!(sync["mappings"][0]["name"], json!("hr_managedUser"));
    assert_eq!(
        sync["queueRecovery"],
        json!({"enabled": true, "recoveryInterval": 120})
    );
    let managed = p.config_json("managed").unwrap();
    assert_eq!(managed["objects"][1]["name"], json!("group"));
    let db = p.config_json("provisioner.openicf/hrdb").unwrap();
    assert_eq!(db["configurationProperties"]["password"], json!(MASK));
    assert_eq!(
        p.config_json("schedule/reconHr").unwrap()["schedule"],
        json!("0 0/15 * * * ?")
    );
    assert_eq!(p.config_json("provisioner.openicf/nope"), None);
    assert_eq!(p.config_json("audit"), None);
}
