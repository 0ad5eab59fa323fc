//! What scripts see (docs/scripts.md), through the real binary: `openidm` CRUD, query and
//! action from a mapping hook in `idsync recon` (read back over `idsync serve`), `null` for a
//! missing object, a CREST error caught with its code, an uncaught one failing the object with
//! its message, a correlation script using `openidm.query`, `identityServer`, `logger` lines
//! with their origin in the default log, and a script that recurses through implicit sync being
//! stopped at the depth limit.

use crate::server::Server;
use crate::support::{Project, idsync};
use serde_json::{Value, json};
use std::process::Output;

const MAPPING: &str = "systemHrAccounts_managedUser";

/// `samples/hr-to-managed` (10 people) with a `role` type besides `user`.
fn project() -> Project {
    let p = Project::copy_of("samples/hr-to-managed");
    let mut managed: Value = serde_json::from_str(&p.read("conf/managed.json")).unwrap();
    managed["objects"].as_array_mut().unwrap().push(json!({
        "name": "role",
        "schema": {"type": "object", "properties": {
            "name": {"type": "string", "index": true},
            "description": {"type": "string"}
        }}
    }));
    p.write("conf/managed.json", &managed.to_string());
    p
}

fn edit_mapping(p: &Project, f: impl FnOnce(&mut Value)) {
    let mut sync: Value = serde_json::from_str(&p.read("conf/sync.json")).unwrap();
    f(&mut sync["mappings"][0]);
    p.write("conf/sync.json", &sync.to_string());
}

fn js(source: &str) -> Value {
    json!({"type": "text/javascript", "source": source})
}

/// `idsync recon --json` with extra environment variables.
fn recon(p: &Project, env: &[(&str, &str)]) -> (Output, Value) {
    let out = idsync()
        .args(["recon", "--json", "--project"])
        .arg(p.path())
        .args(["--mapping", MAPPING])
        .envs(env.iter().copied())
        .env_remove("IDSYNC_LOG")
        .output()
        .unwrap();
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "--json stdout is not JSON ({e}): {}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, summary)
}

const ON_CREATE: &str = r#"
var id = "role-" + source._id;
var made = openidm.create("managed/role", id, {"name": "role of " + source.userName});
var got = openidm.read("managed/role/" + id);
var upd = openidm.update("managed/role/" + id, got._rev, {"name": "renamed " + source.userName});
var pat = openidm.patch("managed/role/" + id, upd._rev,
    [{"operation": "replace", "field": "/description", "value": "patched"}]);
var q = openidm.query("managed/role", {"_queryFilter": 'name eq "renamed ' + source.userName + '"'});
var caught = null;
try {
    openidm.update("managed/role/" + id, "not-the-revision", {"name": "x"});
} catch (e) {
    caught = {"code": e.code, "message": e.message};
}
if (source.userName === "btaylor0") {
    openidm["delete"]("managed/role/" + id, pat._rev);
    openidm.action("managed/role", "create", {"name": "made by an action"}, {});
}
target.city = JSON.stringify({
    "missing": openidm.read("managed/role/nobody"),
    "caught": caught,
    "found": q.result.length,
    "description": pat.description,
    "property": identityServer.getProperty("script.test.value", "default"),
    "unset": identityServer.getProperty("script.test.unset"),
    "defaulted": identityServer.getProperty("script.test.unset", "the default"),
    "location": identityServer.getProjectLocation(),
    "same": identityServer.getInstallLocation() === identityServer.getProjectLocation()
});
logger.info("onCreate made {} for {}", made._id, source.userName);
logger.debug("not in the default log {}", source.userName);
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_hook_creates_reads_updates_patches_deletes_queries_and_acts_through_openidm() {
    let p = project();
    edit_mapping(&p, |m| m["onCreate"] = js(ON_CREATE));
    let (out, s) = recon(&p, &[("SCRIPT_TEST_VALUE", "from the environment")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{s:#}\n{stderr}");
    assert_eq!(s["progress"]["target"]["created"], 10, "{s:#}\n{stderr}");

    // logger: info lines in the default log, with the script's origin; debug ones not.
    assert!(
        stderr.contains("onCreate made role-u00000001 for adavis1"),
        "{stderr}"
    );
    assert!(
        stderr.contains("mapping systemHrAccounts_managedUser onCreate"),
        "the line names the script: {stderr}"
    );
    assert!(!stderr.contains("not in the default log"), "{stderr}");

    let server = Server::start(p.path());
    let (status, user) = server.get("managed/user/u00000001").await;
    assert_eq!(status, 200, "{user}");
    let seen: Value = serde_json::from_str(user["city"].as_str().unwrap()).unwrap();
    assert_eq!(
        seen["missing"],
        Value::Null,
        "read of a missing object: {seen:#}"
    );
    assert_eq!(seen["caught"]["code"], 412, "{seen:#}");
    assert!(
        seen["caught"]["message"].as_str().unwrap().contains("rev"),
        "{seen:#}"
    );
    assert_eq!(seen["found"], 1, "{seen:#}");
    assert_eq!(seen["description"], "patched", "{seen:#}");
    assert_eq!(seen["property"], "from the environment", "{seen:#}");
    assert_eq!(seen["unset"], Value::Null, "{seen:#}");
    assert_eq!(seen["defaulted"], "the default", "{seen:#}");
    let location = std::fs::canonicalize(p.path()).unwrap();
    assert_eq!(
        std::fs::canonicalize(seen["location"].as_str().unwrap()).unwrap(),
        location,
        "{seen:#}"
    );
    assert_eq!(seen["same"], true, "{seen:#}");

    let (status, role) = server.get("managed/role/role-u00000001").await;
    assert_eq!(status, 200, "{role}");
    assert_eq!(role["name"], "renamed adavis1");
    assert_eq!(role["description"], "patched");
    let (status, gone) = server.get("managed/role/role-u00000000").await;
    assert_eq!(status, 404, "deleted by the script: {gone}");
    let (status, all) = server.get("managed/role?_queryFilter=true").await;
    assert_eq!(status, 200, "{all}");
    let names: Vec<&str> = all["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names.len(),
        10,
        "9 kept and one made by the action: {names:?}"
    );
    assert!(names.contains(&"made by an action"), "{names:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_uncaught_failed_call_fails_the_object_with_its_message() {
    let p = project();
    edit_mapping(&p, |m| {
        m["onCreate"] = js(r#"
            if (source.userName === "adavis1") {
                openidm.update("managed/role/nobody", null, {"name": "x"});
            }
            null;
        "#)
    });
    let (out, s) = recon(&p, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(s["statusSummary"]["FAILURE"], 1, "{s:#}\n{stderr}");
    assert_eq!(s["progress"]["target"]["created"], 9, "{s:#}");
    let run = s["_id"].as_str().unwrap();
    let server = Server::start(p.path());
    let filter = format!("reconId eq \"{run}\" and status eq \"FAILURE\"");
    let (status, failed) = server
        .get(&format!(
            "audit/recon?_queryFilter={}",
            filter.replace(' ', "%20").replace('"', "%22")
        ))
        .await;
    assert_eq!(status, 200, "{failed}");
    assert_eq!(failed["resultCount"], 1, "{failed:#}");
    let entry = failed["result"][0].to_string();
    assert!(
        entry.contains("managed/role/nobody not found"),
        "the object's failure carries the CREST message: {entry}"
    );
    assert!(
        entry.contains("mapping systemHrAccounts_managedUser onCreate"),
        "and names the script: {entry}"
    );
}

#[test]
fn a_correlation_script_finds_users_with_openidm_query() {
    let p = project();
    let (out, s) = recon(&p, &[]);
    assert_eq!(out.status.code(), Some(0), "{s:#}");
    // A second mapping between the same sets has no links: it correlates every source.
    edit_mapping(&p, |m| {
        m["name"] = json!("hr_users_by_script");
        m.as_object_mut().unwrap().remove("correlationQuery");
        m["correlationScript"] = js(
            r#"openidm.query("managed/user", {"_queryFilter": 'mail eq "' + source.mail + '"'}).result"#,
        );
    });
    let out = idsync()
        .args(["recon", "--json", "--project"])
        .arg(p.path())
        .args(["--mapping", "hr_users_by_script"])
        .output()
        .unwrap();
    let s: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
    });
    assert_eq!(s["situationSummary"]["FOUND"], 10, "{s:#}");
    assert_eq!(s["progress"]["target"]["created"], 0, "{s:#}");
}

/// A `managed/user → managed/mirror` mapping whose `onCreate` creates another user: each user
/// created syncs, which creates a user, ... The call past the depth limit fails, so the chain
/// stops after exactly 8 nested creates, and the server goes on answering.
#[tokio::test(flavor = "multi_thread")]
async fn a_script_that_recurses_through_implicit_sync_stops_at_the_depth_limit() {
    let p = project();
    let mut managed: Value = serde_json::from_str(&p.read("conf/managed.json")).unwrap();
    managed["objects"].as_array_mut().unwrap().push(json!({
        "name": "mirror",
        "schema": {"type": "object", "properties": {"userName": {"type": "string"}}}
    }));
    p.write("conf/managed.json", &managed.to_string());
    let mut sync: Value = serde_json::from_str(&p.read("conf/sync.json")).unwrap();
    sync["mappings"].as_array_mut().unwrap().push(json!({
        "name": "managedUser_managedMirror",
        "source": "managed/user",
        "target": "managed/mirror",
        "properties": [{"source": "userName", "target": "userName"}],
        "onCreate": js(r#"
            openidm.create("managed/user", null, {"userName": "again-" + source.userName});
            null;
        "#),
        "policies": [{"situation": "ABSENT", "action": "CREATE"}]
    }));
    p.write("conf/sync.json", &sync.to_string());

    let server = Server::start(p.path());
    let (status, body) = server
        .post(
            "managed/user?_action=create",
            Some(json!({"userName": "seed"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, users) = server.get("managed/user?_queryFilter=true").await;
    assert_eq!(status, 200, "{users}");
    let mut names: Vec<String> = users["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userName"].as_str().unwrap().to_string())
        .collect();
    names.sort_by_key(String::len);
    assert_eq!(
        names.len(),
        9,
        "the seed and 8 nested creates, then the limit: {names:?}"
    );
    assert_eq!(names[8], format!("{}seed", "again-".repeat(8)));
    let (status, _) = server.get("info/ping").await;
    assert_eq!(status, 200);
}
