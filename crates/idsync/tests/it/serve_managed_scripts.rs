//! The lifecycle scripts and custom actions of `conf/managed.json`
//! (docs/configuration.md#confmanagedjson) through a real `idsync serve`: each hook's variables
//! and place in IDM's order (`onCreate` → `onValidate` → `onStore` → store → `postCreate` →
//! implicit sync → `onSync`), the error paths (a throwing `onValidate` is a 400 with its message
//! and stores nothing, a thrown `{code, message}` is that CREST error, any other throw a 500),
//! `onRead` on reads and queries, `triggerSyncCheck`, custom actions, and the same scripts run
//! for the managed objects a recon writes.
//!
//! The scripts use only their bound variables: what they saw is written into the object they
//! may change, or thrown as the error's message.

use crate::server::{Server, assert_crest_error, send};
use crate::support::{Project, csv_rows};
use reqwest::Method;
use serde_json::{Value, json};

fn js(source: &str) -> Value {
    json!({"type": "text/javascript", "source": source})
}

/// `samples/hr-to-managed` with three HR people (one, `bad`, without a mail), the lifecycle
/// scripts below on `managed/user`, and an outbound mapping `managed/user` → `system/out`
/// (a CSV) so that implicit sync leaves a trace.
fn project() -> Project {
    let p = Project::copy_of("samples/hr-to-managed");
    p.write(
        "data/hr.csv",
        "uid,userName,givenName,sn,mail\n\
         u1,ada,Ada,Lovelace,ada@example.com\n\
         u2,bad,Bad,Row,\n\
         u3,grace,Grace,Hopper,grace@example.com\n",
    );
    p.write("data/out.csv", "uid,mail,note\n");
    p.write(
        "conf/provisioner.openicf-out.json",
        &json!({
            "name": "out",
            "connectorRef": {"connectorName": "org.forgerock.openicf.csvfile.CSVFileConnector"},
            "configurationProperties": {"csvFile": "data/out.csv", "headerUid": "uid"},
            "objectTypes": {"account": {"id": "__ACCOUNT__", "type": "object",
                "nativeType": "__ACCOUNT__", "properties": {
                    "uid": {"type": "string", "nativeName": "__NAME__"},
                    "mail": {"type": "string", "nativeName": "mail"},
                    "note": {"type": "string", "nativeName": "note"}}}}
        })
        .to_string(),
    );
    let mut sync: Value = serde_json::from_str(&p.read("conf/sync.json")).unwrap();
    sync["mappings"][0]["properties"] = json!([
        {"source": "userName", "target": "userName"},
        {"source": "mail", "target": "mail"}
    ]);
    sync["mappings"].as_array_mut().unwrap().push(json!({
        "name": "managedUser_systemOut",
        "source": "managed/user",
        "target": "system/out/account",
        "properties": [
            {"source": "userName", "target": "uid"},
            {"source": "mail", "target": "mail"},
            {"source": "readBy", "target": "note"}
        ],
        "policies": [
            {"situation": "ABSENT", "action": "CREATE"},
            {"situation": "FOUND", "action": "UPDATE"},
            {"situation": "CONFIRMED", "action": "UPDATE"},
            {"situation": "SOURCE_MISSING", "action": "DELETE"},
            {"situation": "MISSING", "action": "IGNORE"},
            {"situation": "UNQUALIFIED", "action": "DELETE"}
        ]
    }));
    p.write("conf/sync.json", &sync.to_string());
    std::fs::create_dir_all(p.file("script")).unwrap();
    // From a file, with a global: onStore runs last before the store and sees what onCreate
    // (or onUpdate) did and what onValidate let through.
    p.write(
        "script/onStore.js",
        "object.trail = (object.trail || []).concat([stamp]);",
    );
    let mut managed: Value = serde_json::from_str(&p.read("conf/managed.json")).unwrap();
    let user = &mut managed["objects"][0];
    user["onCreate"] = js(
        "object.trail = ['onCreate:' + resourceName + ':' + (typeof oldObject)]; object.mail = object.mail ? object.mail.toLowerCase() : object.mail;",
    );
    user["onUpdate"] = js(
        "object.trail = ['onUpdate']; object.seen = {old: oldObject.mail, new: newObject.mail, rev: typeof oldObject._rev};",
    );
    user["onValidate"] = json!({
        "type": "text/javascript",
        "globals": {"required": "mail"},
        "source": "if (!object[required]) { throw new Error(required + ' is required (trail ' + JSON.stringify(object.trail) + ')'); }\n\
                   if (object.userName === 'teapot') { throw {code: 403, message: 'no teapots'}; }"
    });
    user["onStore"] = json!({"type": "text/javascript", "file": "script/onStore.js", "globals": {"stamp": "onStore"}});
    user["postCreate"] = js(
        "if (newObject.userName === 'post-fails') { throw new Error('postCreate saw rev ' + newObject._rev + ' trail ' + JSON.stringify(newObject.trail)); }",
    );
    user["postUpdate"] = js(
        "if (newObject.userName === 'ada' && newObject.mail === 'post@example.com') { throw {code: 409, message: 'postUpdate old ' + oldObject.mail + ' new ' + newObject.mail}; }",
    );
    user["onDelete"] = js(
        "if (object.keep) { throw {code: 409, message: 'onDelete refused ' + object.userName}; }",
    );
    user["postDelete"] = js(
        "if (oldObject.userName === 'loud') { throw new Error('postDelete of ' + oldObject.userName); }",
    );
    user["onRead"] = js("object.readBy = 'onRead'; object.readAs = resourceName;");
    user["onSync"] = js(
        "if (newObject && newObject.userName === 'sync-check') { throw {code: 409, message: JSON.stringify(syncResults)}; }",
    );
    user["actions"] = json!({
        "greet": js("({hello: object === null ? null : object.userName, resource: resourceName, p: request.additionalParameters.p, body: request.content, action: request.action})"),
        "quiet": js("var unused = 1;")
    });
    p.write("conf/managed.json", &managed.to_string());
    p
}

fn out_rows(p: &Project) -> Vec<std::collections::BTreeMap<String, String>> {
    csv_rows(&p.read("data/out.csv"))
}

/// Waits until the rows of `data/out.csv` satisfy `done` and returns them. A recon's managed
/// writes are synced onward right after each page commit, by the page's job, while the run may
/// already be reported ended: onward sync is eventual (docs/ARCHITECTURE.md). The bound only
/// turns a hang into a failure.
async fn out_rows_when(
    p: &Project,
    done: impl Fn(&[std::collections::BTreeMap<String, String>]) -> bool,
) -> Vec<std::collections::BTreeMap<String, String>> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let rows = out_rows(p);
        if done(&rows) || std::time::Instant::now() > deadline {
            return rows;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn create(s: &Server, body: Value) -> (u16, Value) {
    s.post("managed/user?_action=create", Some(body)).await
}

#[tokio::test(flavor = "multi_thread")]
async fn create_runs_the_hooks_in_order_with_their_variables() {
    let p = project();
    let s = Server::start(p.path());
    let (status, body) = create(
        &s,
        json!({"_id": "u-ada", "userName": "ada", "mail": "Ada@Example.com"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    // onCreate saw `object` and `resourceName` and no `oldObject`; onStore ran after it.
    assert_eq!(
        body["trail"],
        json!(["onCreate:managed/user/u-ada:undefined", "onStore"]),
        "{body}"
    );
    assert_eq!(
        body["mail"], "ada@example.com",
        "onCreate's change is stored"
    );
    let (_, stored) = s.get("managed/user/u-ada").await;
    assert_eq!(stored["mail"], "ada@example.com");
    // onRead: the object as returned to the client.
    assert_eq!(stored["readBy"], "onRead", "{stored}");
    assert_eq!(stored["readAs"], "managed/user/u-ada");
    // Implicit sync ran after the store with what was stored (onCreate's change included).
    let rows = out_rows(&p);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["uid"], "ada");
    assert_eq!(rows[0]["mail"], "ada@example.com");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_throwing_on_validate_is_a_400_with_its_message_and_stores_nothing() {
    let p = project();
    let s = Server::start(p.path());
    let (status, body) = create(&s, json!({"_id": "u-x", "userName": "x"})).await;
    // onValidate ran after onCreate (it saw onCreate's trail) and before onStore.
    assert_crest_error(
        status,
        &body,
        400,
        "mail is required (trail [\"onCreate:managed/user/u-x:undefined\"])",
    );
    let (status, _) = s.get("managed/user/u-x").await;
    assert_eq!(status, 404, "nothing was stored");
    assert!(out_rows(&p).is_empty(), "nothing was synced");
    // PUT and PATCH go through it too.
    let (status, _) = create(&s, json!({"_id": "u-y", "userName": "y", "mail": "y@x"})).await;
    assert_eq!(status, 201);
    let (status, body) = send(
        s.admin(Method::PATCH, "managed/user/u-y")
            .json(&json!([{"operation": "remove", "field": "/mail"}])),
    )
    .await;
    assert_crest_error(
        status,
        &body,
        400,
        "mail is required (trail [\"onUpdate\"])",
    );
    let (_, stored) = s.get("managed/user/u-y").await;
    assert_eq!(stored["mail"], "y@x", "the patch was not stored");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thrown_code_and_message_is_that_crest_error() {
    let p = project();
    let s = Server::start(p.path());
    let (status, body) = create(&s, json!({"_id": "t", "userName": "teapot", "mail": "t@x"})).await;
    assert_crest_error(status, &body, 403, "no teapots");
    assert_eq!(s.get("managed/user/t").await.0, 404);
    // onDelete refusing: the object stays.
    let (status, _) = create(
        &s,
        json!({"_id": "k", "userName": "kept", "mail": "k@x", "keep": true}),
    )
    .await;
    assert_eq!(status, 201);
    let (status, body) = send(s.admin(Method::DELETE, "managed/user/k")).await;
    assert_crest_error(status, &body, 409, "onDelete refused kept");
    assert_eq!(s.get("managed/user/k").await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn update_hooks_see_the_old_and_new_objects_and_post_hooks_run_after_the_store() {
    let p = project();
    let s = Server::start(p.path());
    let (status, _) = create(&s, json!({"_id": "a", "userName": "ada", "mail": "a@x"})).await;
    assert_eq!(status, 201);
    let (status, body) = send(
        s.admin(Method::PUT, "managed/user/a")
            .json(&json!({"userName": "ada", "mail": "b@x"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["seen"],
        json!({"old": "a@x", "new": "b@x", "rev": "string"})
    );
    assert_eq!(body["trail"], json!(["onUpdate", "onStore"]));
    assert_eq!(
        out_rows(&p)[0]["mail"],
        "b@x",
        "implicit sync of the update"
    );
    // postUpdate throws {code, message} after the store: that error, and the write stays.
    let (status, body) =
        send(s.admin(Method::PATCH, "managed/user/a").json(
            &json!([{"operation": "replace", "field": "/mail", "value": "post@example.com"}]),
        ))
        .await;
    assert_crest_error(
        status,
        &body,
        409,
        "postUpdate old b@x new post@example.com",
    );
    let (_, stored) = s.get("managed/user/a").await;
    assert_eq!(
        stored["mail"], "post@example.com",
        "stored before postUpdate ran"
    );
    // postCreate sees the stored object (with its _rev); a plain throw is a 500 whose message
    // stays in the log, and the object is stored.
    let (status, body) = create(
        &s,
        json!({"_id": "pf", "userName": "post-fails", "mail": "pf@x"}),
    )
    .await;
    assert_crest_error(status, &body, 500, "internal server error");
    assert_eq!(s.get("managed/user/pf").await.0, 200);
    // postDelete: after the delete, with oldObject.
    let (status, _) = create(&s, json!({"_id": "l", "userName": "loud", "mail": "l@x"})).await;
    assert_eq!(status, 201);
    let (status, body) = send(s.admin(Method::DELETE, "managed/user/l")).await;
    assert_crest_error(status, &body, 500, "internal server error");
    assert_eq!(
        s.get("managed/user/l").await.0,
        404,
        "deleted before postDelete ran"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn on_sync_sees_the_sync_results_after_implicit_sync() {
    let p = project();
    let s = Server::start(p.path());
    let (status, body) = create(
        &s,
        json!({"_id": "sc", "userName": "sync-check", "mail": "sc@x"}),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    let results: Value = serde_json::from_str(body["message"].as_str().unwrap()).unwrap();
    assert_eq!(results["success"], true, "{results}");
    assert_eq!(results["action"], "notifyCreate");
    let details = results["syncDetails"].as_array().unwrap();
    assert_eq!(details.len(), 1, "{results}");
    assert_eq!(details[0]["mapping"], "managedUser_systemOut");
    assert_eq!(details[0]["action"], "CREATE");
    // The sync ran before onSync: the target exists.
    assert_eq!(out_rows(&p)[0]["uid"], "sync-check");
}

#[tokio::test(flavor = "multi_thread")]
async fn on_read_applies_to_queries() {
    let p = project();
    let s = Server::start(p.path());
    create(&s, json!({"_id": "a", "userName": "ada", "mail": "a@x"})).await;
    let (status, page) = s.get("managed/user?_queryFilter=true").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["result"][0]["readBy"], "onRead", "{page}");
    assert_eq!(page["result"][0]["readAs"], "managed/user/a", "{page}");
}

#[tokio::test(flavor = "multi_thread")]
async fn trigger_sync_check_syncs_the_object_as_it_reads() {
    let p = project();
    let s = Server::start(p.path());
    create(&s, json!({"_id": "a", "userName": "ada", "mail": "a@x"})).await;
    // The create synced the stored object: no note (onRead does not change what is stored).
    assert_eq!(out_rows(&p)[0].get("note").map_or("", String::as_str), "");
    let (status, body) = s
        .post("managed/user/a?_action=triggerSyncCheck", None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["_id"], "a");
    let (_, audit) = s.get("audit/sync?_queryFilter=true").await;
    assert_eq!(
        out_rows(&p)[0]["note"],
        "onRead",
        "synced as it reads: {audit:#}"
    );
    let (status, body) = s
        .post("managed/user/nobody?_action=triggerSyncCheck", None)
        .await;
    assert_crest_error(status, &body, 404, "managed/user/nobody");
}

#[tokio::test(flavor = "multi_thread")]
async fn custom_actions_answer_with_the_script_result() {
    let p = project();
    let s = Server::start(p.path());
    create(&s, json!({"_id": "a", "userName": "ada", "mail": "a@x"})).await;
    let (status, body) = s
        .post("managed/user/a?_action=greet&p=1", Some(json!({"k": "v"})))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"hello": "ada", "resource": "managed/user/a", "p": "1", "body": {"k": "v"}, "action": "greet"})
    );
    // On the collection: no object.
    let (status, body) = s.post("managed/user?_action=greet", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["hello"], Value::Null);
    assert_eq!(body["resource"], "managed/user");
    // A script that returns nothing answers with the object.
    let (status, body) = s.post("managed/user/a?_action=quiet", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["userName"], "ada");
    // Unknown actions and objects.
    let (status, body) = s.post("managed/user/a?_action=nope", None).await;
    assert_crest_error(
        status,
        &body,
        400,
        "supported: triggerSyncCheck, greet, quiet",
    );
    let (status, body) = s.post("managed/user/zz?_action=greet", None).await;
    assert_crest_error(status, &body, 404, "managed/user/zz");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recon_into_managed_objects_runs_their_lifecycle_scripts() {
    let p = project();
    let s = Server::start(p.path());
    let (status, run) = s
        .post(
            "recon?_action=recon&mapping=systemHrAccounts_managedUser",
            None,
        )
        .await;
    assert_eq!(status, 200, "{run}");
    let summary = s.wait_run(run["_id"].as_str().unwrap()).await;
    // `bad` has no mail: onValidate refuses it, the others are created through onCreate and
    // onStore.
    assert_eq!(summary["statusSummary"]["FAILURE"], 1, "{summary:#}");
    assert_eq!(summary["statusSummary"]["SUCCESS"], 2, "{summary:#}");
    let (_, page) = s
        .get("managed/user?_queryFilter=userName%20eq%20%22ada%22")
        .await;
    let ada = &page["result"][0];
    assert_eq!(ada["trail"][1], "onStore", "{ada}");
    assert!(
        ada["trail"][0]
            .as_str()
            .unwrap()
            .starts_with("onCreate:managed/user/"),
        "{ada}"
    );
    let (_, page) = s
        .get("managed/user?_queryFilter=userName%20eq%20%22bad%22")
        .await;
    assert_eq!(page["resultCount"], 0, "{page}");
    // The objects the recon created were synced onward after their store.
    let mut uids: Vec<String> = out_rows_when(&p, |rows| rows.len() >= 2)
        .await
        .into_iter()
        .map(|r| r["uid"].clone())
        .collect();
    uids.sort();
    assert_eq!(uids, ["ada", "grace"]);

    // A second run UPDATEs ada through onUpdate (with the stored object as oldObject) and
    // onStore, and her new mail goes onward.
    p.write(
        "data/hr.csv",
        &p.read("data/hr.csv")
            .replace("ada@example.com", "Ada.L@example.com"),
    );
    let (status, run) = s
        .post(
            "recon?_action=recon&mapping=systemHrAccounts_managedUser",
            None,
        )
        .await;
    assert_eq!(status, 200, "{run}");
    let summary = s.wait_run(run["_id"].as_str().unwrap()).await;
    assert_eq!(summary["statusSummary"]["FAILURE"], 1, "{summary:#}");
    let (_, page) = s
        .get("managed/user?_queryFilter=userName%20eq%20%22ada%22")
        .await;
    let ada = &page["result"][0];
    assert_eq!(ada["trail"], json!(["onUpdate", "onStore"]), "{ada}");
    assert_eq!(
        ada["seen"],
        json!({"old": "ada@example.com", "new": "Ada.L@example.com", "rev": "string"}),
        "{ada}"
    );
    let rows = out_rows_when(&p, |rows| {
        rows.iter()
            .any(|r| r["uid"] == "ada" && r["mail"] == "Ada.L@example.com")
    })
    .await;
    let out_ada = rows.iter().find(|r| r["uid"] == "ada").unwrap();
    assert_eq!(out_ada["mail"], "Ada.L@example.com", "{rows:?}");
}
