//! IDM's `historicalaccountlinking` sample (docs/idm-samples.md) with the real binary and a real
//! slapd: its configuration (`tests/fixtures/historicalaccountlinking`, written after the
//! sample's `managed.json`, `sync.json`, `schedule-liveSync.json` and scripts), with only the
//! connection settings of the LDAP provisioner pointed at the test directory. The README's steps
//! 2–4 and 8–12: the `onLink`/`onUnlink` scripts keep the user's `historicalAccounts`
//! relationships through `openidm.create`, `openidm.query` and `openidm.update`
//! (docs/rest.md#relationships).

use crate::server::{Server, send};
use crate::slapd::{PEOPLE, Slapd, people_ldif};
use crate::support::Project;
use serde_json::{Value, json};

const FIXTURE: &str = "crates/idsync/tests/fixtures/historicalaccountlinking";

/// The LDAP provisioner, as IDM's sample LDAP provisioner describes the accounts (`_id` is the
/// DN), connected to the test directory.
fn provisioner(s: &Slapd) -> Value {
    let mut props: Value = serde_json::from_str(&s.configuration_properties()).unwrap();
    props["uidAttribute"] = json!("dn");
    let attr = |name: &str| json!({"type": "string", "nativeName": name});
    json!({
        "name": "ldap",
        "connectorRef": {"connectorName": "org.identityconnectors.ldap.LdapConnector"},
        "configurationProperties": props,
        "objectTypes": {"account": {"nativeType": "__ACCOUNT__", "properties": {
            "dn": {"type": "string", "nativeName": "__NAME__"},
            "uid": attr("uid"), "cn": attr("cn"), "sn": attr("sn"),
            "givenName": attr("givenName"), "mail": attr("mail"),
            "description": attr("description"), "telephoneNumber": attr("telephoneNumber"),
            "userPassword": attr("userPassword")
        }}}
    })
}

async fn account_ids(s: &Server) -> Vec<String> {
    let (status, body) = s.get("system/ldap/account?_queryId=query-all-ids").await;
    assert_eq!(status, 200, "{body}");
    body["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["_id"].as_str().unwrap().to_lowercase())
        .collect()
}

async fn historical_accounts(s: &Server) -> Vec<Value> {
    let (status, body) = s
        .get("managed/user/joesmith/historicalAccounts?_queryId=query-all")
        .await;
    assert_eq!(status, 200, "{body}");
    body["result"].as_array().unwrap().clone()
}

async fn patch_status(s: &Server, status: &str) {
    let (code, user) = send(
        s.admin(reqwest::Method::PATCH, "managed/user/joesmith")
            .json(&json!([{"operation": "replace", "field": "accountStatus", "value": status}])),
    )
    .await;
    assert_eq!(code, 200, "{user}");
    assert_eq!(user["accountStatus"], status);
}

fn dn(uid: &str) -> String {
    format!("uid={uid},{PEOPLE}").to_lowercase()
}

#[tokio::test(flavor = "multi_thread")]
async fn idm_historicalaccountlinking_keeps_every_linked_account_as_a_relationship() {
    run_the_readme(&[]).await;
}

/// The same on PostgreSQL: relationships are stored the same way on both repositories.
#[tokio::test(flavor = "multi_thread")]
async fn idm_historicalaccountlinking_on_postgres() {
    let db = crate::support::PgDatabase::create();
    run_the_readme(&["--repo", &db.url]).await;
}

/// The README's steps against a server started with `args`.
async fn run_the_readme(args: &[&str]) {
    let slapd = Slapd::start_with(&people_ldif(2));
    let p = Project::copy_of(FIXTURE);
    p.write(
        "conf/provisioner.openicf-ldap.json",
        &provisioner(&slapd).to_string(),
    );
    let s = Server::start_with(p.path(), &[], args);

    // Step 2: create a user; implicit sync creates joe.smith0 in the directory.
    let (status, user) = s
        .post(
            "managed/user?_action=create",
            Some(json!({
                "userName": "joe.smith", "givenName": "Joe", "sn": "Smith",
                "password": "TestPassw0rd", "displayName": "Joe Smith",
                "description": "Test User", "telephoneNumber": "1234567890",
                "mail": "joe.smith@example.com", "_id": "joesmith"
            })),
        )
        .await;
    assert_eq!(status, 201, "{user}");
    assert_eq!(
        user["accountStatus"], "active",
        "set by the default onCreate"
    );
    assert!(
        user.get("historicalAccounts").is_none(),
        "not returned by default: {user}"
    );

    // Step 3: the account exists.
    let ids = account_ids(&s).await;
    assert!(ids.contains(&dn("joe.smith0")), "{ids:?}");
    assert_eq!(ids.len(), 3, "{ids:?}");

    // Step 4: the onLink script made the relationship: active, with its link date.
    let history = historical_accounts(&s).await;
    assert_eq!(history.len(), 1, "{history:#?}");
    let first = &history[0];
    let r = first["_ref"].as_str().unwrap();
    assert_eq!(
        r.to_lowercase(),
        format!("system/ldap/account/{}", dn("joe.smith0"))
    );
    let props = &first["_refProperties"];
    assert_eq!(props["active"], true, "{first}");
    assert_eq!(props["_rev"], "1", "{first}");
    assert!(
        props["_id"].as_str().is_some_and(|i| !i.is_empty()),
        "{first}"
    );
    assert!(
        props["linkDate"].as_str().is_some_and(|d| !d.is_empty()),
        "{first}"
    );
    assert_eq!(props["state"], "enabled");
    let first_id = props["_id"].clone();

    // Steps 8–9: deactivating the user unlinks the account (UNQUALIFIED → UNLINK); onUnlink
    // marks the relationship inactive with the unlink date. The account stays.
    patch_status(&s, "inactive").await;
    let history = historical_accounts(&s).await;
    assert_eq!(history.len(), 1, "{history:#?}");
    let props = &history[0]["_refProperties"];
    assert_eq!(props["_id"], first_id);
    assert_eq!(props["active"], false, "{history:#?}");
    assert_eq!(props["_rev"], "2");
    assert!(props["unlinkDate"].as_str().is_some_and(|d| !d.is_empty()));
    assert_eq!(props["linkDate"], first["_refProperties"]["linkDate"]);
    assert!(account_ids(&s).await.contains(&dn("joe.smith0")));
    let (_, links) = s.get("repo/link?_queryFilter=true").await;
    assert_eq!(links["resultCount"], 0, "unlinked: {links:#}");

    // Steps 10–12: activating the user again creates joe.smith1 (its onCreate counts the
    // historical accounts) and a second relationship.
    patch_status(&s, "active").await;
    let ids = account_ids(&s).await;
    assert!(ids.contains(&dn("joe.smith1")), "{ids:?}");
    assert_eq!(ids.len(), 4, "{ids:?}");
    let history = historical_accounts(&s).await;
    assert_eq!(history.len(), 2, "{history:#?}");
    assert_eq!(history[0]["_refProperties"]["active"], false);
    let second = &history[1];
    assert_eq!(
        second["_ref"].as_str().unwrap().to_lowercase(),
        format!("system/ldap/account/{}", dn("joe.smith1"))
    );
    assert_eq!(second["_refProperties"]["active"], true, "{second}");
    assert_eq!(second["_refProperties"]["_rev"], "1");
    assert_ne!(second["_refProperties"]["_id"], first_id);

    // A change of a synchronized value reaches the linked account; the mapping's onUpdate
    // (`source.historicalAccounts.length - 1`) sees the relationships in the source.
    let (code, body) = send(
        s.admin(reqwest::Method::PATCH, "managed/user/joesmith")
            .json(&json!([
                {"operation": "replace", "field": "telephoneNumber", "value": "555"}
            ])),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let (status, found) = s
        .get("system/ldap/account?_queryFilter=uid%20eq%20%22joe.smith1%22")
        .await;
    assert_eq!(status, 200, "{found}");
    let account = &found["result"][0];
    assert_eq!(account["telephoneNumber"], "555", "{found}");
    assert_eq!(account["uid"], "joe.smith1", "{found}");
}
