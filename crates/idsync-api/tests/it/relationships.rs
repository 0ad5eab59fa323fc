//! The relationship endpoints `managed/<type>/<id>/<property>[/<relId>]` (docs/rest.md#relationships):
//! query, create, read, update, patch and delete of entries; how reads of the owning object show
//! relationship properties (`returnByDefault`, `_fields`); what object writes do to entries; the
//! other side of a reverse relationship; and access, as for the owning object.

use crate::harness::{Server, assert_crest_error, send};
use reqwest::Method;
use serde_json::{Value, json};

/// `user` with a hidden collection (`historicalAccounts`, as IDM's historicalaccountlinking
/// sample declares it), a returned-by-default collection (`roles`) and a single relationship
/// (`manager`); `role` with `members`, the reverse side of `roles`.
fn managed() -> Value {
    let rel = |extra: Value| {
        let mut items = json!({"type": "relationship", "properties": {
            "_ref": {"type": "string"}, "_refProperties": {"type": "object"}}});
        for (k, v) in extra.as_object().unwrap() {
            items[k] = v.clone();
        }
        items
    };
    json!({"objects": [
        {"name": "user", "schema": {"type": "object", "properties": {
            "userName": {"type": "string"},
            "historicalAccounts": {"type": "array", "items": rel(json!({}))},
            "roles": {"type": "array", "returnByDefault": true,
                      "items": rel(json!({"resourceCollection": {"path": "managed/role"}}))},
            "manager": rel(json!({"resourceCollection": [{"path": "managed/user"}]}))
        }}},
        {"name": "role", "schema": {"type": "object", "properties": {
            "name": {"type": "string"},
            "members": {"type": "array", "items": rel(json!({
                "reverseRelationship": true, "reversePropertyName": "roles",
                "resourceCollection": {"path": "managed/user"}}))}
        }}}
    ]})
}

async fn create_user(s: &Server, id: &str) {
    let (status, body) = send(
        s.admin(Method::PUT, &format!("managed/user/{id}"))
            .header("If-None-Match", "*")
            .json(&json!({"userName": id})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

async fn accounts(s: &Server, query: &str) -> Value {
    let (status, body) = send(s.admin(
        Method::GET,
        &format!("managed/user/joe/historicalAccounts?{query}"),
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn each_entry_is_created_queried_read_updated_patched_and_deleted() {
    let s = Server::start_with_managed(managed()).await;
    create_user(&s, "joe").await;
    let path = "managed/user/joe/historicalAccounts";

    // Create, as the sample's onLink script does: a new _id and revision 1.
    let (status, first) = send(
        s.admin(Method::POST, &format!("{path}?_action=create"))
            .json(
                &json!({"_ref": "system/ldap/account/uid=joe.smith0,ou=People,dc=example,dc=com",
                          "_refProperties": {"active": true, "linkDate": "then"}}),
            ),
    )
    .await;
    assert_eq!(status, 201, "{first}");
    let id = first["_refProperties"]["_id"].as_str().unwrap().to_string();
    assert_eq!(first["_refProperties"]["_rev"], "1");
    assert_eq!(first["_refProperties"]["active"], true);
    let (status, second) =
        send(s.admin(Method::POST, path).json(
            &json!({"_ref": "system/ldap/account/uid=joe.smith1,ou=People,dc=example,dc=com"}),
        ))
        .await;
    assert_eq!(status, 201, "{second}");
    assert_ne!(
        second["_refProperties"]["_id"],
        first["_refProperties"]["_id"]
    );

    // query-all and a filter on _ref, as the sample's onUnlink script queries.
    let all = accounts(&s, "_queryId=query-all").await;
    assert_eq!(all["resultCount"], 2, "{all:#}");
    assert_eq!(all["result"][0], first);
    let filter = "_ref eq \"system/ldap/account/uid=joe.smith0,ou=People,dc=example,dc=com\"";
    let one = accounts(&s, &format!("_queryFilter={}", urlencode(filter))).await;
    assert_eq!(one["result"], json!([first]), "{one:#}");
    let none = accounts(&s, "_queryFilter=%2F_refProperties%2Factive%20eq%20false").await;
    assert_eq!(none["resultCount"], 0);

    // Read one entry.
    let (status, read) = send(s.admin(Method::GET, &format!("{path}/{id}"))).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read, first);

    // Update with the entry's revision, as the sample's onUnlink script does.
    let mut changed = read.clone();
    changed["_refProperties"]["active"] = json!(false);
    changed["_refProperties"]["unlinkDate"] = json!("now");
    let (status, updated) = send(
        s.admin(Method::PUT, &format!("{path}/{id}"))
            .header("If-Match", "\"1\"")
            .json(&changed),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["_refProperties"]["_rev"], "2");
    assert_eq!(updated["_refProperties"]["_id"], id.as_str());
    assert_eq!(updated["_refProperties"]["active"], false);
    assert_eq!(updated["_refProperties"]["linkDate"], "then");
    // A stale revision is a 412 and changes nothing.
    let (status, body) = send(
        s.admin(Method::PUT, &format!("{path}/{id}"))
            .header("If-Match", "\"1\"")
            .json(&first),
    )
    .await;
    assert_crest_error(status, &body, 412, "revision");

    // Patch.
    let (status, patched) = send(
        s.admin(Method::PATCH, &format!("{path}/{id}"))
            .header("If-Match", "\"2\"")
            .json(
                &json!([{"operation": "replace", "field": "/_refProperties/state",
                           "value": "disabled"}]),
            ),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["_refProperties"]["state"], "disabled");
    assert_eq!(patched["_refProperties"]["_rev"], "3");
    assert_eq!(patched["_refProperties"]["_id"], id.as_str());

    // Delete answers the entry; it is gone after.
    let (status, deleted) = send(s.admin(Method::DELETE, &format!("{path}/{id}"))).await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(deleted, patched);
    let (status, body) = send(s.admin(Method::GET, &format!("{path}/{id}"))).await;
    assert_crest_error(status, &body, 404, "not found");
    assert_eq!(accounts(&s, "_queryFilter=true").await["resultCount"], 1);

    // PUT creates an entry with the id of its path (openidm.create with an id); not one whose
    // id has a '/'.
    let (status, made) = send(
        s.admin(Method::PUT, &format!("{path}/mine"))
            .header("If-None-Match", "*")
            .json(&json!({"_ref": "system/ldap/account/c"})),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["_refProperties"]["_id"], "mine");
    let (status, body) = send(
        s.admin(Method::PUT, &format!("{path}/mine"))
            .header("If-None-Match", "*")
            .json(&json!({"_ref": "system/ldap/account/c"})),
    )
    .await;
    assert_crest_error(status, &body, 412, "already exists");
    let (status, body) = send(
        s.admin(Method::PUT, &format!("{path}/a%2Fb"))
            .json(&json!({"_ref": "x/y"})),
    )
    .await;
    assert_crest_error(status, &body, 400, "without '/'");
    let (status, _) = send(s.admin(Method::DELETE, &format!("{path}/mine"))).await;
    assert_eq!(status, 200);

    // Errors: no _ref, an unknown property, an unknown object.
    let (status, body) = send(s.admin(Method::POST, path).json(&json!({"x": 1}))).await;
    assert_crest_error(status, &body, 400, "_ref");
    let (status, body) =
        send(s.admin(Method::GET, "managed/user/joe/userName?_queryFilter=true")).await;
    assert_crest_error(status, &body, 404, "relationship property");
    let (status, body) = send(s.admin(
        Method::GET,
        "managed/user/nobody/historicalAccounts?_queryFilter=true",
    ))
    .await;
    assert_crest_error(status, &body, 404, "not found");
}

#[tokio::test]
async fn reads_of_the_owner_show_relationships_as_idm_does() {
    let s = Server::start_with_managed(managed()).await;
    let (status, created) = send(s.admin(Method::POST, "managed/user?_action=create").json(
        &json!({
            "_id": "joe", "userName": "joe",
            "historicalAccounts": [{"_ref": "system/ldap/account/a"}],
            "roles": ["managed/role/legacy"]
        }),
    ))
    .await;
    assert_eq!(status, 201, "{created}");
    // Not returned by default: left out of the answer, the read and the query...
    assert!(created.get("historicalAccounts").is_none(), "{created}");
    assert_eq!(
        created["roles"],
        json!(["managed/role/legacy"]),
        "a plain string ref stays"
    );
    let (_, read) = send(s.admin(Method::GET, "managed/user/joe")).await;
    assert!(read.get("historicalAccounts").is_none(), "{read}");
    let (_, all) = send(s.admin(Method::GET, "managed/user?_queryFilter=true")).await;
    assert!(
        all["result"][0].get("historicalAccounts").is_none(),
        "{all}"
    );
    // ...unless _fields asks for it; then each entry has its _id and _rev.
    let (_, asked) =
        send(s.admin(Method::GET, "managed/user/joe?_fields=historicalAccounts")).await;
    let entry = &asked["historicalAccounts"][0];
    assert_eq!(entry["_ref"], "system/ldap/account/a", "{asked}");
    assert_eq!(entry["_refProperties"]["_rev"], "1");
    let rel_id = entry["_refProperties"]["_id"].as_str().unwrap().to_string();
    let (_, queried) = send(s.admin(
        Method::GET,
        "managed/user?_queryFilter=true&_fields=userName,historicalAccounts",
    ))
    .await;
    assert_eq!(
        queried["result"][0]["historicalAccounts"][0], *entry,
        "{queried}"
    );

    // A PUT that leaves the hidden property out keeps it; a PATCH of another field too.
    let (status, put) = send(
        s.admin(Method::PUT, "managed/user/joe")
            .json(&json!({"userName": "joe2"})),
    )
    .await;
    assert_eq!(status, 200, "{put}");
    assert_eq!(put["roles"], json!(["managed/role/legacy"]), "kept: {put}");
    let (_, entries) = send(s.admin(
        Method::GET,
        "managed/user/joe/historicalAccounts?_queryId=query-all",
    ))
    .await;
    assert_eq!(entries["result"], json!([entry]), "{entries}");
    // A write of the whole property keeps the _id of the entries it sends back.
    let (status, _) = send(
        s.admin(Method::PATCH, "managed/user/joe")
            .json(&json!([{"operation": "add",
            "field": "/historicalAccounts/-", "value": {"_ref": "system/ldap/account/b"}}])),
    )
    .await;
    assert_eq!(status, 200);
    let (_, entries) = send(s.admin(
        Method::GET,
        "managed/user/joe/historicalAccounts?_queryId=query-all",
    ))
    .await;
    assert_eq!(entries["resultCount"], 2, "{entries}");
    assert_eq!(entries["result"][0], *entry, "untouched: same _id and _rev");
    assert!(entries["result"][1]["_refProperties"]["_id"].is_string());
    assert_ne!(
        entries["result"][1]["_refProperties"]["_id"],
        rel_id.as_str()
    );

    // A malformed entry is refused and nothing is stored.
    let (status, body) = send(
        s.admin(Method::PATCH, "managed/user/joe")
            .json(&json!([{"operation": "replace",
            "field": "/historicalAccounts", "value": [{"nope": 1}]}])),
    )
    .await;
    assert_crest_error(status, &body, 400, "_ref");

    // The single relationship: set, read at the property, cleared.
    let (status, mgr) = send(
        s.admin(Method::POST, "managed/user/joe/manager?_action=create")
            .json(&json!({"_ref": "managed/user/boss"})),
    )
    .await;
    assert_eq!(status, 201, "{mgr}");
    let (status, read) = send(s.admin(Method::GET, "managed/user/joe/manager")).await;
    assert_eq!((status.as_u16(), &read), (200, &mgr));
    let mgr_id = mgr["_refProperties"]["_id"].as_str().unwrap();
    let (status, _) = send(s.admin(
        Method::DELETE,
        &format!("managed/user/joe/manager/{mgr_id}"),
    ))
    .await;
    assert_eq!(status, 200);
    let (status, body) = send(s.admin(Method::GET, "managed/user/joe/manager")).await;
    assert_crest_error(status, &body, 404, "not set");
}

#[tokio::test]
async fn a_reverse_relationship_is_kept_on_both_sides() {
    let s = Server::start_with_managed(managed()).await;
    create_user(&s, "joe").await;
    let (status, _) = send(
        s.admin(Method::PUT, "managed/role/admins")
            .json(&json!({"name": "admins"})),
    )
    .await;
    assert_eq!(status, 201);
    let members = |s: &Server| {
        let req = s.admin(Method::GET, "managed/role/admins/members?_queryFilter=true");
        async move { send(req).await.1["result"].clone() }
    };

    // Granting the role through the user's endpoint makes joe a member of the role...
    let (status, grant) = send(
        s.admin(Method::POST, "managed/user/joe/roles?_action=create")
            .json(&json!({"_ref": "managed/role/admins", "_refProperties": {"why": "oncall"}})),
    )
    .await;
    assert_eq!(status, 201, "{grant}");
    let m = members(&s).await;
    assert_eq!(m.as_array().unwrap().len(), 1, "{m}");
    assert_eq!(m[0]["_ref"], "managed/user/joe");
    assert_eq!(
        m[0]["_refProperties"], grant["_refProperties"],
        "one relationship, two sides"
    );

    // ...an update on the role's side shows on the user's...
    let id = grant["_refProperties"]["_id"].as_str().unwrap().to_string();
    let (status, _) = send(
        s.admin(Method::PATCH, &format!("managed/role/admins/members/{id}"))
            .json(
                &json!([{"operation": "replace", "field": "/_refProperties/why", "value": "lead"}]),
            ),
    )
    .await;
    assert_eq!(status, 200);
    let (_, user) = send(s.admin(Method::GET, "managed/user/joe")).await;
    assert_eq!(user["roles"][0]["_refProperties"]["why"], "lead", "{user}");
    assert_eq!(user["roles"][0]["_refProperties"]["_rev"], "2", "{user}");

    // ...a write of the whole user drops it from both...
    let (status, _) = send(
        s.admin(Method::PATCH, "managed/user/joe")
            .json(&json!([{"operation": "replace", "field": "/roles", "value": []}])),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(members(&s).await, json!([]));

    // ...and deleting a member removes it from the role.
    let (status, _) = send(
        s.admin(Method::POST, "managed/role/admins/members?_action=create")
            .json(&json!({"_ref": "managed/user/joe"})),
    )
    .await;
    assert_eq!(status, 201);
    let (_, user) = send(s.admin(Method::GET, "managed/user/joe")).await;
    assert_eq!(user["roles"][0]["_ref"], "managed/role/admins", "{user}");
    let (status, _) = send(s.admin(Method::DELETE, "managed/user/joe")).await;
    assert_eq!(status, 200);
    assert_eq!(members(&s).await, json!([]));
}

#[tokio::test]
async fn a_single_reverse_relationship_moves_with_its_other_side() {
    // IDM's default manager ↔ reports: one user's single manager is a collection on the other.
    let s = Server::start_with_managed(json!({"objects": [{"name": "user", "schema": {
    "properties": {
        "manager": {"type": "relationship", "returnByDefault": true,
                    "reverseRelationship": true, "reversePropertyName": "reports",
                    "resourceCollection": [{"path": "managed/user"}]},
        "reports": {"type": "array", "items": {"type": "relationship",
                    "reverseRelationship": true, "reversePropertyName": "manager",
                    "resourceCollection": [{"path": "managed/user"}]}}
    }}}]}))
    .await;
    for id in ["joe", "boss", "chief"] {
        create_user(&s, id).await;
    }
    let reports = |s: &Server, id: &str| {
        let req = s.admin(
            Method::GET,
            &format!("managed/user/{id}/reports?_queryFilter=true"),
        );
        async move {
            let (_, body) = send(req).await;
            body["result"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["_ref"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    // joe's manager is boss: boss reports joe.
    let (status, _) = send(
        s.admin(Method::PATCH, "managed/user/joe")
            .json(&json!([{"operation": "replace",
            "field": "/manager", "value": {"_ref": "managed/user/boss"}}])),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(reports(&s, "boss").await, vec!["managed/user/joe"]);
    // chief takes joe in its reports: joe's manager is chief, and boss no longer has joe.
    let (status, _) = send(
        s.admin(Method::POST, "managed/user/chief/reports?_action=create")
            .json(&json!({"_ref": "managed/user/joe"})),
    )
    .await;
    assert_eq!(status, 201);
    let (_, joe) = send(s.admin(Method::GET, "managed/user/joe")).await;
    assert_eq!(joe["manager"]["_ref"], "managed/user/chief", "{joe}");
    assert_eq!(reports(&s, "chief").await, vec!["managed/user/joe"]);
    assert!(reports(&s, "boss").await.is_empty());
}

#[tokio::test]
async fn a_validated_relationship_refuses_a_missing_object() {
    let s = Server::start_with_managed(json!({"objects": [{"name": "user", "schema": {
    "properties": {
        "manager": {"type": "relationship", "validate": true,
                    "resourceCollection": [{"path": "managed/user"}]},
        "accounts": {"type": "array", "items": {"type": "relationship"}}
    }}}]}))
    .await;
    create_user(&s, "joe").await;
    create_user(&s, "boss").await;
    let (status, body) = send(
        s.admin(Method::POST, "managed/user/joe/manager?_action=create")
            .json(&json!({"_ref": "managed/user/nobody"})),
    )
    .await;
    assert_crest_error(
        status,
        &body,
        400,
        "managed/user/nobody, which does not exist",
    );
    let (status, body) = send(
        s.admin(Method::PATCH, "managed/user/joe")
            .json(&json!([{"operation": "replace",
            "field": "/manager", "value": {"_ref": "managed/role/x"}}])),
    )
    .await;
    assert_crest_error(status, &body, 400, "does not exist");
    let (status, body) = send(
        s.admin(Method::POST, "managed/user/joe/manager?_action=create")
            .json(&json!({"_ref": "managed/user/boss"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    // Without `validate`, a reference is stored as written.
    let (status, body) = send(
        s.admin(Method::POST, "managed/user/joe/accounts?_action=create")
            .json(&json!({"_ref": "managed/user/nobody"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_creates_on_one_object_all_land() {
    let s = Server::start_with_managed(managed()).await;
    create_user(&s, "joe").await;
    let mut posts = tokio::task::JoinSet::new();
    for i in 0..8 {
        let req = s
            .admin(
                Method::POST,
                "managed/user/joe/historicalAccounts?_action=create",
            )
            .json(&json!({"_ref": format!("system/ldap/account/a{i}")}));
        posts.spawn(send(req));
    }
    while let Some(done) = posts.join_next().await {
        let (status, body) = done.unwrap();
        assert_eq!(status, 201, "{body}");
    }
    let all = accounts(&s, "_queryFilter=true").await;
    assert_eq!(all["resultCount"], 8, "{all:#}");
}

#[tokio::test]
async fn the_endpoints_obey_the_owners_access_rules() {
    let s = Server::start_with_managed(managed()).await;
    create_user(&s, "joe").await;
    let path = "managed/user/joe/historicalAccounts";
    let (status, body) = send(s.anon(Method::GET, &format!("{path}?_queryFilter=true"))).await;
    assert_crest_error(status, &body, 401, "authentication");
    // A reader may read, not write.
    let (status, body) = send(s.reader(Method::GET, &format!("{path}?_queryFilter=true"))).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = send(
        s.reader(Method::POST, &format!("{path}?_action=create"))
            .json(&json!({"_ref": "system/x/y/z"})),
    )
    .await;
    assert_crest_error(status, &body, 403, "may not");
    let (status, body) = send(s.reader(Method::DELETE, &format!("{path}/any"))).await;
    assert_crest_error(status, &body, 403, "may not");
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
