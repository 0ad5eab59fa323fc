//! IDM's bidirectional LDAP scenario (docs/ARCHITECTURE.md#one-managed-object-change-through-implicit-and-queued-sync, docs/migrating-from-idm.md sample2b) with the real binary and a
//! real slapd: recon LDAP → managed creates the users; managed-object writes over REST reach
//! LDAP through the reverse mapping that shares the links; multi-account linking with two link
//! qualifiers.

use crate::server::Server;
use crate::slapd::{PEOPLE, Slapd, people_ldif};
use crate::support::{Project, urlencode};
use serde_json::{Value, json};

const LDAP_TO_MANAGED: &str = "systemLdapAccounts_managedUser";
const MANAGED_TO_LDAP: &str = "managedUser_systemLdapAccounts";

/// The LDAP connector on `s` with an `account` type of inetOrgPerson attributes (`extra`
/// properties added to the usual ones).
pub(crate) fn provisioner_with(s: &Slapd, extra: Value) -> Value {
    let mut p = provisioner(s);
    if let (Some(props), Value::Object(more)) = (
        p["objectTypes"]["account"]["properties"].as_object_mut(),
        extra,
    ) {
        props.extend(more);
    }
    p
}

pub(crate) fn provisioner(s: &Slapd) -> Value {
    let props: Value = serde_json::from_str(&s.configuration_properties()).unwrap();
    json!({
        "name": "ldap",
        "connectorRef": {"connectorName": "org.identityconnectors.ldap.LdapConnector"},
        "configurationProperties": props,
        "objectTypes": {
            "account": {
                "nativeType": "__ACCOUNT__",
                "properties": {
                    "dn": {"type": "string", "nativeName": "__NAME__"},
                    "uid": {"type": "string", "nativeName": "uid"},
                    "cn": {"type": "string", "nativeName": "cn"},
                    "sn": {"type": "string", "nativeName": "sn"},
                    "givenName": {"type": "string", "nativeName": "givenName"},
                    "mail": {"type": "string", "nativeName": "mail"}
                }
            }
        }
    })
}

/// An empty project folder with the LDAP connector and a `user` managed type.
pub(crate) fn project(s: &Slapd, sync: &Value) -> Project {
    let dir = tempfile::tempdir().unwrap();
    let p = Project { dir };
    p.write(
        "conf/provisioner.openicf-ldap.json",
        &provisioner(s).to_string(),
    );
    p.write(
        "conf/managed.json",
        r#"{"objects":[{"name":"user","schema":{}}]}"#,
    );
    p.write("conf/sync.json", &sync.to_string());
    p
}

fn dn_transform(suffix: &str) -> Value {
    json!({"type": "text/javascript",
           "source": format!("'uid=' + source + {suffix} + ',{PEOPLE}'")})
}

fn bidirectional() -> Value {
    json!({"mappings": [
        {
            "name": LDAP_TO_MANAGED,
            "source": "system/ldap/account",
            "target": "managed/user",
            "properties": [
                {"source": "uid", "target": "userName"},
                {"source": "givenName", "target": "givenName"},
                {"source": "sn", "target": "sn"},
                {"source": "cn", "target": "cn"},
                {"source": "mail", "target": "mail"}
            ],
            "policies": [
                {"situation": "ABSENT", "action": "CREATE"},
                {"situation": "CONFIRMED", "action": "UPDATE"},
                {"situation": "FOUND", "action": "UPDATE"},
                {"situation": "MISSING", "action": "CREATE"},
                {"situation": "SOURCE_MISSING", "action": "DELETE"}
            ]
        },
        {
            "name": MANAGED_TO_LDAP,
            "source": "managed/user",
            "target": "system/ldap/account",
            "links": LDAP_TO_MANAGED,
            "properties": [
                {"source": "userName", "target": "dn", "transform": dn_transform("''")},
                {"source": "userName", "target": "uid"},
                {"source": "givenName", "target": "givenName"},
                {"source": "sn", "target": "sn"},
                {"source": "cn", "target": "cn"},
                {"source": "mail", "target": "mail"}
            ],
            "policies": [
                {"situation": "ABSENT", "action": "CREATE"},
                {"situation": "CONFIRMED", "action": "UPDATE"},
                {"situation": "FOUND", "action": "UPDATE"},
                {"situation": "MISSING", "action": "CREATE"},
                {"situation": "SOURCE_MISSING", "action": "DELETE"}
            ]
        }
    ]})
}

pub(crate) async fn ldap_entries(s: &Server, filter: &str) -> Vec<Value> {
    let path = format!("system/ldap/account?_queryFilter={}", urlencode(filter));
    let (status, body) = s.get(&path).await;
    assert_eq!(status, 200, "{body}");
    body["result"].as_array().unwrap().clone()
}

/// The link qualifiers of the links whose source is `first_id`, sorted.
pub(crate) async fn link_qualifiers(s: &Server, first_id: &str) -> Vec<String> {
    let (status, links) = s
        .get(&format!(
            "repo/link?_queryFilter={}",
            urlencode(&format!("firstId eq \"{first_id}\""))
        ))
        .await;
    assert_eq!(status, 200, "{links}");
    let mut qualifiers: Vec<String> = links["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["linkQualifier"].as_str().unwrap().to_string())
        .collect();
    qualifiers.sort();
    qualifiers
}

pub(crate) async fn send_json(
    s: &Server,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> (u16, Value) {
    crate::server::send(s.admin(method, path).json(&body)).await
}

#[tokio::test(flavor = "multi_thread")]
async fn ldap_and_managed_users_stay_in_sync_both_ways() {
    let slapd = Slapd::start_with(&people_ldif(3));
    let p = project(&slapd, &bidirectional());
    let s = Server::start(p.path());

    // Recon LDAP → managed creates the three users and their links.
    let (status, run) = s
        .post(
            &format!("recon?_action=recon&mapping={LDAP_TO_MANAGED}&waitForCompletion=true"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["state"], "SUCCESS", "{run}");
    let (_, users) = s.get("managed/user?_queryFilter=true").await;
    assert_eq!(users["resultCount"], 3, "{users:#}");
    // The created users' own implicit sync saw the shared links: CONFIRMED, no new entries.
    assert_eq!(ldap_entries(&s, "true").await.len(), 3);
    let (_, confirmed) = s
        .get(&format!(
            "audit/sync?_queryFilter={}",
            urlencode(&format!(
                "mapping eq \"{MANAGED_TO_LDAP}\" and situation eq \"CONFIRMED\""
            ))
        ))
        .await;
    assert_eq!(confirmed["resultCount"], 3, "{confirmed:#}");

    // A user created over REST is provisioned to LDAP through the reverse mapping.
    let (status, alice) = send_json(
        &s,
        reqwest::Method::POST,
        "managed/user?_action=create",
        json!({"userName": "alice", "givenName": "Alice", "sn": "Liddell",
               "cn": "Alice Liddell", "mail": "alice@example.com"}),
    )
    .await;
    assert_eq!(status, 201, "{alice}");
    let alice_id = alice["_id"].as_str().unwrap().to_string();
    let entries = ldap_entries(&s, "uid eq \"alice\"").await;
    assert_eq!(entries.len(), 1, "alice provisioned: {entries:?}");
    assert_eq!(entries[0]["mail"], "alice@example.com");
    assert!(
        entries[0]["dn"]
            .as_str()
            .unwrap()
            .eq_ignore_ascii_case(&format!("uid=alice,{PEOPLE}"))
    );
    let (_, links) = s
        .get(&format!(
            "repo/link?_queryFilter={}",
            urlencode(&format!("secondId eq \"{alice_id}\""))
        ))
        .await;
    assert_eq!(links["resultCount"], 1, "{links:#}");
    assert_eq!(links["result"][0]["linkType"], LDAP_TO_MANAGED);
    let (_, audit) = s
        .get(&format!(
            "audit/sync?_queryFilter={}",
            urlencode(&format!(
                "mapping eq \"{MANAGED_TO_LDAP}\" and action eq \"CREATE\""
            ))
        ))
        .await;
    assert_eq!(audit["resultCount"], 1, "{audit:#}");
    assert_eq!(audit["result"][0]["situation"], "ABSENT");

    // Changing the mail changes LDAP; so does a change of a user that came from LDAP.
    let (status, patched) = send_json(
        &s,
        reqwest::Method::PATCH,
        &format!("managed/user/{alice_id}"),
        json!([{"operation": "replace", "field": "/mail", "value": "alice@wonderland.example"}]),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    let entries = ldap_entries(&s, "uid eq \"alice\"").await;
    assert_eq!(entries[0]["mail"], "alice@wonderland.example");

    let (_, user0) = s
        .get(&format!(
            "managed/user?_queryFilter={}",
            urlencode("userName eq \"user0\"")
        ))
        .await;
    let user0_id = user0["result"][0]["_id"].as_str().unwrap().to_string();
    let (status, _) = send_json(
        &s,
        reqwest::Method::PATCH,
        &format!("managed/user/{user0_id}"),
        json!([{"operation": "replace", "field": "/sn", "value": "Renamed"}]),
    )
    .await;
    assert_eq!(status, 200);
    let entries = ldap_entries(&s, "uid eq \"user0\"").await;
    assert_eq!(entries.len(), 1, "no second entry for a linked user");
    assert_eq!(entries[0]["sn"], "Renamed");

    // Deleting the user removes the LDAP entry (SOURCE_MISSING → DELETE) and the link.
    let (status, _) =
        crate::server::send(s.admin(reqwest::Method::DELETE, &format!("managed/user/{alice_id}")))
            .await;
    assert_eq!(status, 200);
    assert!(ldap_entries(&s, "uid eq \"alice\"").await.is_empty());
    let (_, links) = s
        .get(&format!(
            "repo/link?_queryFilter={}",
            urlencode(&format!("secondId eq \"{alice_id}\""))
        ))
        .await;
    assert_eq!(links["resultCount"], 0, "{links:#}");
    assert_eq!(ldap_entries(&s, "true").await.len(), 3);

    // The sync endpoint: linked resources of a user, and the mappings with ready routes.
    let (status, linked) = s
        .post(
            &format!("sync?_action=getLinkedResources&resourceName=managed/user/{user0_id}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{linked}");
    assert_eq!(linked.as_array().unwrap().len(), 1, "{linked:#}");
    assert_eq!(linked[0]["content"]["uid"], "user0");
    assert_eq!(linked[0]["linkType"], LDAP_TO_MANAGED);
    let (status, mappings) = s.get("sync/mappings?_queryFilter=true").await;
    assert_eq!(status, 200, "{mappings}");
    assert_eq!(mappings["resultCount"], 2);
    assert_eq!(mappings["result"][1]["targetRouteReady"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_link_qualifiers_create_two_ldap_entries_for_one_user() {
    let slapd = Slapd::start();
    let suffix = "(linkQualifier === 'admin' ? '-admin' : '')";
    let sync = json!({"mappings": [{
        "name": "managedUser_ldap",
        "source": "managed/user",
        "target": "system/ldap/account",
        "linkQualifiers": ["default", "admin"],
        "properties": [
            {"source": "userName", "target": "dn", "transform": dn_transform(suffix)},
            {"source": "userName", "target": "uid", "transform": {"type": "text/javascript",
                "source": format!("source + {suffix}")}},
            {"source": "sn", "target": "sn"},
            {"source": "userName", "target": "cn"}
        ],
        "policies": [
            {"situation": "ABSENT", "action": "CREATE"},
            {"situation": "CONFIRMED", "action": "UPDATE"},
            {"situation": "SOURCE_MISSING", "action": "DELETE"}
        ]
    }]});
    let p = project(&slapd, &sync);
    let s = Server::start(p.path());

    let (status, bob) = send_json(
        &s,
        reqwest::Method::POST,
        "managed/user?_action=create",
        json!({"userName": "bob", "sn": "Builder"}),
    )
    .await;
    assert_eq!(status, 201, "{bob}");
    let bob_id = bob["_id"].as_str().unwrap().to_string();
    let mut uids: Vec<String> = ldap_entries(&s, "sn eq \"Builder\"")
        .await
        .iter()
        .map(|e| e["uid"].as_str().unwrap().to_string())
        .collect();
    uids.sort();
    assert_eq!(uids, ["bob", "bob-admin"]);
    assert_eq!(link_qualifiers(&s, &bob_id).await, ["admin", "default"]);
    let (_, links) = s
        .get(&format!(
            "repo/link?_queryFilter={}",
            urlencode(&format!("firstId eq \"{bob_id}\""))
        ))
        .await;

    // An explicit notifyUpdate through the sync endpoint reports one result per qualifier.
    let (status, results) = s
        .post(
            &format!(
                "sync?_action=notifyUpdate&resourceContainer=managed/user&resourceId={bob_id}"
            ),
            Some(json!({"oldValue": {"userName": "bob", "sn": "Builder"},
                        "newValue": {"_id": bob_id, "userName": "bob", "sn": "Mason"}})),
        )
        .await;
    assert_eq!(status, 200, "{results}");
    let results = results.as_array().unwrap();
    assert_eq!(results.len(), 2, "{results:#?}");
    assert!(results.iter().all(|r| r["situation"] == "CONFIRMED"
        && r["action"] == "UPDATE"
        && r["result"] == "SUCCESSFUL"));
    assert_eq!(ldap_entries(&s, "sn eq \"Mason\"").await.len(), 2);

    // performAction: UNLINK the admin account (the situation re-checked first), a stale
    // situation is refused, then LINK it back explicitly.
    let admin_entry = links["result"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["linkQualifier"] == "admin")
        .unwrap()["secondId"]
        .as_str()
        .unwrap()
        .to_string();
    let perform = |action: &str, situation: &str| {
        format!(
            "sync?_action=performAction&mapping=managedUser_ldap&action={action}&sourceId={bob_id}&linkQualifier=admin{situation}"
        )
    };
    let (status, body) = s
        .post(&perform("UNLINK", "&situation=CONFIRMED"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "OK");
    let link_count = |links: Value| links["resultCount"].as_u64().unwrap();
    let bob_links = format!(
        "repo/link?_queryFilter={}",
        urlencode(&format!("firstId eq \"{bob_id}\""))
    );
    assert_eq!(link_count(s.get(&bob_links).await.1), 1);
    let (status, body) = s
        .post(&perform("UNLINK", "&situation=CONFIRMED"), None)
        .await;
    assert_eq!(status, 409, "the situation is no longer CONFIRMED: {body}");
    let (status, body) = s
        .post(
            &format!("{}&targetId={admin_entry}", perform("LINK", "")),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(link_count(s.get(&bob_links).await.1), 2);

    let (status, _) =
        crate::server::send(s.admin(reqwest::Method::DELETE, &format!("managed/user/{bob_id}")))
            .await;
    assert_eq!(status, 200);
    assert!(ldap_entries(&s, "cn eq \"bob\"").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_mapping_skips_the_later_ones_and_the_write_still_succeeds() {
    let mut slapd = Slapd::start();
    let sync = json!({"mappings": [
        {
            "name": "first_ldap",
            "source": "managed/user",
            "target": "system/ldap/account",
            "properties": [
                {"source": "userName", "target": "dn", "transform": dn_transform("''")},
                {"source": "userName", "target": "uid"},
                {"source": "userName", "target": "cn"},
                {"source": "userName", "target": "sn"}
            ]
        },
        {
            "name": "second_ldap",
            "source": "managed/user",
            "target": "system/ldap/account",
            "properties": [
                {"source": "userName", "target": "dn", "transform": dn_transform("'-2'")},
                {"source": "userName", "target": "uid"},
                {"source": "userName", "target": "cn"},
                {"source": "userName", "target": "sn"}
            ]
        }
    ]});
    let p = project(&slapd, &sync);
    let s = Server::start(p.path());
    slapd.stop();

    let (status, carol) = send_json(
        &s,
        reqwest::Method::POST,
        "managed/user?_action=create",
        json!({"userName": "carol"}),
    )
    .await;
    assert_eq!(status, 201, "the write succeeds: {carol}");
    let carol_id = carol["_id"].as_str().unwrap();

    let (status, err) = s
        .post(
            &format!(
                "sync?_action=notifyCreate&resourceContainer=managed/user&resourceId={carol_id}"
            ),
            Some(json!({"newValue": carol})),
        )
        .await;
    assert_eq!(status, 503, "{err}");
    let detail = err["detail"].as_array().unwrap();
    assert_eq!(detail[0]["result"], "FAILED", "{err:#}");
    assert_eq!(detail[0]["mapping"], "first_ldap");
    assert_eq!(detail[1]["result"], "SKIPPED");
    assert_eq!(detail[1]["mapping"], "second_ldap");

    let (_, audit) = s
        .get(&format!(
            "audit/sync?_queryFilter={}",
            urlencode("status eq \"FAILURE\"")
        ))
        .await;
    assert!(audit["resultCount"].as_u64().unwrap() >= 2, "{audit:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn trigger_sync_properties_limit_which_updates_sync() {
    let slapd = Slapd::start();
    let sync = json!({"mappings": [{
        "name": "managedUser_ldap",
        "source": "managed/user",
        "target": "system/ldap/account",
        "triggerSyncProperties": ["/mail"],
        "properties": [
            {"source": "userName", "target": "dn", "transform": dn_transform("''")},
            {"source": "userName", "target": "uid"},
            {"source": "userName", "target": "cn"},
            {"source": "sn", "target": "sn"},
            {"source": "mail", "target": "mail"}
        ],
        "policies": [
            {"situation": "ABSENT", "action": "CREATE"},
            {"situation": "CONFIRMED", "action": "UPDATE"}
        ]
    }]});
    let p = project(&slapd, &sync);
    let s = Server::start(p.path());
    let (status, dora) = send_json(
        &s,
        reqwest::Method::POST,
        "managed/user?_action=create",
        json!({"userName": "dora", "sn": "First", "mail": "dora@example.com"}),
    )
    .await;
    assert_eq!(status, 201, "{dora}");
    let path = format!("managed/user/{}", dora["_id"].as_str().unwrap());
    let patch = |field: &str, value: &str| json!([{"operation": "replace", "field": field, "value": value}]);

    // A change of sn alone does not trigger the mapping.
    let (status, _) = send_json(&s, reqwest::Method::PATCH, &path, patch("/sn", "Second")).await;
    assert_eq!(status, 200);
    let entry = &ldap_entries(&s, "uid eq \"dora\"").await[0];
    assert_eq!(entry["sn"], "First", "{entry}");

    // A change of mail does, and carries the whole object (sn too).
    let (status, _) = send_json(
        &s,
        reqwest::Method::PATCH,
        &path,
        patch("/mail", "dora@new.example"),
    )
    .await;
    assert_eq!(status, 200);
    let entry = &ldap_entries(&s, "uid eq \"dora\"").await[0];
    assert_eq!(entry["mail"], "dora@new.example");
    assert_eq!(entry["sn"], "Second");
}
