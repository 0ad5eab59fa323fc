//! IDM projects load unchanged (docs/idm-samples.md): a project shaped like IDM's samples, with a
//! CSV written as IDM's are (`"a", "b"`), no `managed.json` (IDM's default `user` and `role`),
//! and a `managed.json` naming IDM's default scripts, which resolve to idsync's built-in library
//! or are refused by name.

use crate::server::Server;
use crate::support::{Project, urlencode, validate};
use serde_json::json;

const FIXTURE: &str = "crates/idsync/tests/fixtures/idm-layout";
const MAPPING: &str = "systemHrAccounts_managedUser";

#[test]
fn a_project_without_managed_json_reconciles_an_idm_style_csv_into_the_default_user_type() {
    let p = Project::copy_of(FIXTURE);
    assert!(!p.file("conf/managed.json").exists());
    let (code, stderr) = validate(&p);
    assert_eq!(code, 0, "{stderr}");

    let (code, s) = p.recon_json(MAPPING, &[]);
    assert_eq!(code, 0, "{s:#}");
    assert_eq!(s["state"], "SUCCESS", "{s:#}");
    assert_eq!(s["situationSummary"]["ABSENT"], 3, "{s:#}");
    assert_eq!(s["progress"]["target"]["created"], 3, "{s:#}");

    // The values were read without the spaces and quotes around them: the second run finds
    // every user linked and unchanged.
    let (code, s) = p.recon_json(MAPPING, &[]);
    assert_eq!(code, 0, "{s:#}");
    assert_eq!(s["situationSummary"]["CONFIRMED"], 3, "{s:#}");
    assert_eq!(s["progress"]["target"]["unchanged"], 3, "{s:#}");
}

/// Served, the project shows IDM's default types in `config/managed`, and the users the recon
/// stored hold the values as IDM reads them: no quotes, no spaces around them, the comma inside
/// quotes kept.
#[tokio::test(flavor = "multi_thread")]
async fn served_the_default_types_hold_the_values_as_idm_reads_them() {
    let p = Project::copy_of(FIXTURE);
    let s = Server::start(p.path());
    let (status, config) = s.get("config/managed").await;
    assert_eq!(status, 200, "{config}");
    let names: Vec<&str> = config["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["user", "role"], "{config}");

    // Ada is already there: the expression tree `{"all": ["userName"]}` compares the target's
    // userName with what the mapping puts there (the source's uid), as IDM's does, and finds her.
    let (status, ada) = s
        .post(
            "managed/user?_action=create",
            Some(json!({"userName": "ada", "givenName": "Old"})),
        )
        .await;
    assert_eq!(status, 201, "{ada}");

    let run = s.recon(MAPPING).await;
    assert_eq!(run["state"], "SUCCESS", "{run}");
    assert_eq!(run["situationSummary"]["FOUND"], 1, "{run}");
    assert_eq!(run["situationSummary"]["ABSENT"], 2, "{run}");
    let (status, page) = s
        .get("managed/user?_queryFilter=userName%20eq%20%22ada%22")
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["resultCount"], 1, "{page}");
    assert_eq!(
        page["result"][0]["givenName"], "Ada",
        "FOUND → UPDATE: {page}"
    );
    let (status, page) = s
        .get("managed/user?_queryFilter=userName%20eq%20%22alan%22")
        .await;
    assert_eq!(status, 200, "{page}");
    let alan = &page["result"][0];
    assert_eq!(alan["givenName"], "Alan", "{page}");
    assert_eq!(alan["sn"], "Turing, Jr", "{page}");
    assert_eq!(alan["mail"], "alan@example.org", "{page}");

    // The default role type is a collection like any other.
    let (status, role) = s
        .post(
            "managed/role?_action=create",
            Some(json!({"name": "staff", "description": "Everyone"})),
        )
        .await;
    assert_eq!(status, 201, "{role}");
}

#[test]
fn idm_default_scripts_named_by_managed_json_resolve_to_the_built_in_library() {
    let p = Project::copy_of(FIXTURE);
    p.write(
        "conf/managed.json",
        r#"{
    "objects" : [
        {
            "name" : "user",
            "onDelete" : { "type" : "text/javascript", "file" : "ui/onDelete-user-cleanup.js" },
            "onSync" : { "type" : "text/javascript", "file" : "compensate.js" },
            "schema" : { "properties" : { "userName" : { "type" : "string" } } }
        },
        {
            "name" : "role",
            "onDelete" : { "type" : "text/javascript", "file" : "roles/onDelete-roles.js" }
        }
    ]
}"#,
    );
    let (code, stderr) = validate(&p);
    assert_eq!(code, 0, "{stderr}");
    let (code, s) = p.recon_json(MAPPING, &[]);
    assert_eq!(code, 0, "{s:#}");
    assert_eq!(s["progress"]["target"]["created"], 3, "{s:#}");
}

#[test]
fn idm_default_scripts_idsync_does_not_provide_are_refused_by_name_with_the_reason() {
    let p = Project::copy_of(FIXTURE);
    p.write(
        "conf/managed.json",
        r#"{"objects": [{"name": "user",
            "onCreate": {"type": "text/javascript", "file": "roles/onSync-roles.js"},
            "onUpdate": {"type": "text/javascript", "file": "script/workflow/triggerWorkflowFromSync.js"},
            "onDelete": {"type": "text/javascript", "file": "ui/notThere.js"}}]}"#,
    );
    let (code, stderr) = validate(&p);
    assert_eq!(code, 2, "{stderr}");
    let line = |ptr: &str| {
        stderr
            .lines()
            .find(|l| l.starts_with(&format!("conf/managed.json: {ptr}: ")))
            .unwrap_or_else(|| panic!("no line for {ptr}: {stderr}"))
            .to_owned()
    };
    let roles = line("/objects/0/onCreate/file");
    assert!(
        roles.contains("\"roles/onSync-roles.js\" is one of IDM's default scripts")
            && roles.contains("role-based provisioning"),
        "{roles}"
    );
    let workflow = line("/objects/0/onUpdate/file");
    assert!(workflow.contains("workflow engine"), "{workflow}");
    let ui = line("/objects/0/onDelete/file");
    assert!(ui.contains("user interface"), "{ui}");
}

/// Every built-in script is JavaScript idsync's engine compiles, and the ones that need no
/// `openidm` do what they say: the user clean-up has nothing to clean, and compensate.js leaves
/// a successful synchronization alone and, without `openidm` bound (until the script API is in),
/// fails a failed one rather than ignore it.
#[test]
fn the_built_in_scripts_compile_and_run_where_they_need_no_openidm() {
    use idsync_script::{Bindings, Script, ScriptOrigin};
    use serde_json::Map;
    let compile = |name: &str| {
        let source = idsync_config::builtin::builtin_script(name).unwrap();
        Script::compile(source, ScriptOrigin::inline(name), Map::new())
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    for (name, _) in idsync_config::builtin::BUILTIN_SCRIPTS {
        compile(name);
    }
    let user = json!({"_id": "u1", "userName": "ada"});
    let cleanup = compile("ui/onDelete-user-cleanup.js");
    assert_eq!(
        cleanup
            .eval(&Bindings::new().with("object", &user))
            .unwrap(),
        json!(null)
    );

    let compensate = compile("compensate.js");
    let ok = json!({"success": true, "action": "notifyUpdate", "syncDetails": []});
    let path = json!("managed/user/u1");
    let b = Bindings::new()
        .with("syncResults", &ok)
        .with("resourceName", &path)
        .with("oldObject", &user)
        .with("newObject", &user);
    compensate.eval(&b).unwrap();
    let failed = json!({"success": false, "action": "notifyUpdate",
        "syncDetails": [{"mapping": "managedUser_systemLdapAccounts", "result": "FAILED", "cause": "ldap down"}]});
    let b = Bindings::new()
        .with("syncResults", &failed)
        .with("resourceName", &path)
        .with("oldObject", &user)
        .with("newObject", &user);
    assert!(compensate.eval(&b).is_err(), "a failed sync is not ignored");
}

/// The hooks and virtual properties of IDM's default `managed.json` (IDM 5 and later) for the
/// user type: inline hooks that `require` IDM's default modules, the role post-operation script,
/// and `effectiveRoles` / `effectiveAssignments` computed by IDM's default scripts.
pub(crate) const IDM_DEFAULT_MANAGED: &str =
    "crates/idsync/tests/fixtures/idm-default-managed.json";

/// IDM's default user hooks run on idsync's built-in modules: a new user is made active, is
/// granted the conditional roles whose condition it matches (and loses them when it stops
/// matching), keeps its `lastSync` across a PUT that omits it, and reads with its effective
/// roles and their assignments; a reconciliation's creates go through the same hooks.
#[tokio::test(flavor = "multi_thread")]
async fn idm_default_user_hooks_run_on_the_built_in_modules() {
    let p = Project::copy_of(FIXTURE);
    p.copy_in(IDM_DEFAULT_MANAGED, "conf/managed.json");
    let (code, stderr) = validate(&p);
    assert_eq!(code, 0, "{stderr}");

    let s = Server::start(p.path());
    let path =
        |o: &serde_json::Value, t: &str| format!("managed/{t}/{}", o["_id"].as_str().unwrap());
    let assignment = s
        .create(
            "managed/assignment",
            json!({"name": "ldap-agent", "mapping": "managedUser_systemLdapAccounts"}),
        )
        .await;
    let assignment_ref = path(&assignment, "assignment");
    let agent = s
        .create(
            "managed/role",
            json!({"name": "Agent", "assignments": [{"_ref": assignment_ref}]}),
        )
        .await;
    let agent_ref = path(&agent, "role");
    let london = s
        .create(
            "managed/role",
            json!({"name": "Londoners", "condition": "/city eq \"London\""}),
        )
        .await;
    let london_ref = path(&london, "role");

    let user = s
        .create(
            "managed/user",
            json!({
                "_id": "joe", "userName": "joe", "city": "London",
                "roles": [{"_ref": agent_ref}], "lastSync": {"effectiveAssignments": []}
            }),
        )
        .await;
    assert_eq!(user["accountStatus"], "active", "{user}");
    let refs = |v: &serde_json::Value| -> Vec<String> {
        let mut r: Vec<String> = v
            .as_array()
            .unwrap_or_else(|| panic!("not an array: {v}"))
            .iter()
            .map(|g| g["_ref"].as_str().unwrap().to_string())
            .collect();
        r.sort();
        r
    };
    let mut both = vec![agent_ref.clone(), london_ref.clone()];
    both.sort();
    // `roles` is a relationship not returned by default (IDM's default managed.json): read it
    // by name.
    let roles_of = |id: &'static str| {
        let s = &s;
        async move {
            let (status, user) = s.get(&format!("managed/user/{id}?_fields=roles")).await;
            assert_eq!(status, 200, "{user}");
            user["roles"].clone()
        }
    };
    assert!(user.get("roles").is_none(), "{user}");
    let roles = roles_of("joe").await;
    assert_eq!(refs(&roles), both, "{roles}");
    let conditional = roles
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["_ref"] == london_ref.as_str())
        .unwrap();
    assert_eq!(conditional["_refProperties"]["_grantType"], "conditional");
    assert_eq!(refs(&user["effectiveRoles"]), both, "{user}");
    assert_eq!(
        user["effectiveAssignments"][0]["name"], "ldap-agent",
        "{user}"
    );

    // Moving away from London ends the conditional grant; the grant by hand stays.
    let (status, moved) = crate::server::send(
        s.admin(reqwest::Method::PATCH, "managed/user/joe")
            .json(&json!([{"operation": "replace", "field": "/city", "value": "Paris"}])),
    )
    .await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(refs(&roles_of("joe").await), vec![agent_ref.clone()]);
    assert_eq!(
        refs(&moved["effectiveRoles"]),
        vec![agent_ref.clone()],
        "{moved}"
    );
    assert_eq!(
        moved["lastSync"],
        json!({"effectiveAssignments": []}),
        "{moved}"
    );

    // A PUT without lastSync keeps it (ui/onUpdateUser's preserveLastSync); the stored object
    // holds the virtual properties too, so the repository's query sees them.
    let (status, put) = crate::server::send(
        s.admin(reqwest::Method::PUT, "managed/user/joe")
            .json(&json!({"userName": "joe", "city": "Paris", "roles": [{"_ref": agent_ref}]})),
    )
    .await;
    assert_eq!(status, 200, "{put}");
    assert_eq!(
        put["lastSync"],
        json!({"effectiveAssignments": []}),
        "{put}"
    );
    let (status, page) = s
        .get(&format!(
            "managed/user?_queryFilter={}",
            urlencode("/effectiveRoles pr and /userName eq \"joe\"")
        ))
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["resultCount"], 1, "{page}");
    drop(s);

    // A reconciliation creates its users through the same hooks.
    let (code, summary) = p.recon_json(MAPPING, &[]);
    assert_eq!(code, 0, "{summary:#}");
    assert_eq!(summary["progress"]["target"]["created"], 3, "{summary:#}");
    let s = Server::start(p.path());
    let (status, page) = s
        .get("managed/user?_queryFilter=accountStatus%20eq%20%22active%22")
        .await;
    assert_eq!(status, 200, "{page}");
    // The three the recon created (joe lost his status with the PUT that omitted it).
    assert_eq!(page["resultCount"], 3, "{page}");
}
