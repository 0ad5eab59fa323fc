//! LDAP liveSync against a real slapd: by `modifyTimestamp`/`createTimestamp`
//! (`useTimestampsForSync`) and by OpenLDAP's accesslog overlay (`accessLogDatabase`).
#![allow(clippy::unwrap_used)] // tests may unwrap (PREAMBLE)

#[path = "support/slapd.rs"]
mod slapd;

use idsync_connectors::ldap::LdapConnector;
use idsync_connectors::{Change, ChangeBatch, Connector, ConnectorError, ObjectSet};
use serde_json::{Value, json};
use slapd::{ACCESSLOG, GROUPS, PEOPLE, Slapd};
use std::sync::Arc;

fn connector(s: &Slapd, extra_props: Value) -> LdapConnector {
    let mut props: Value = serde_json::from_str(&s.configuration_properties()).unwrap();
    for (k, v) in extra_props.as_object().unwrap() {
        props[k] = v.clone();
    }
    LdapConnector::from_provisioner(
        "ldap",
        &json!({
            "name": "ldap",
            "configurationProperties": props,
            "objectTypes": {
                "account": {"nativeType": "__ACCOUNT__", "properties": {
                    "dn": {"type": "string", "nativeName": "__NAME__"},
                    "uid": {"type": "string", "nativeName": "uid"},
                    "cn": {"type": "string", "nativeName": "cn"},
                    "sn": {"type": "string", "nativeName": "sn"}
                }},
                "group": {"nativeType": "__GROUP__", "properties": {
                    "dn": {"type": "string", "nativeName": "__NAME__"},
                    "cn": {"type": "string", "nativeName": "cn"},
                    "uniqueMember": {"type": "array", "nativeName": "uniqueMember"}
                }}
            }
        }),
    )
    .unwrap()
}

fn person(uid: &str, cn: &str) -> Value {
    json!({"dn": format!("uid={uid},{PEOPLE}"), "uid": uid, "cn": cn, "sn": "Tester"})
}

/// Each change as `("upsert", uid, cn)` or `("delete", id, "")`.
fn summary(batch: &ChangeBatch) -> Vec<(String, String, String)> {
    batch
        .changes
        .iter()
        .map(|c| match c {
            Change::CreateOrUpdate { object, .. } => (
                "upsert".to_string(),
                object["uid"].as_str().unwrap_or("").to_string(),
                object["cn"].as_str().unwrap_or("").to_string(),
            ),
            Change::Delete { id } => ("delete".to_string(), id.clone(), String::new()),
        })
        .collect()
}

fn sorted(mut rows: Vec<(String, String, String)>) -> Vec<(String, String, String)> {
    rows.sort();
    rows
}

fn row(kind: &str, a: &str, b: &str) -> (String, String, String) {
    (kind.to_string(), a.to_string(), b.to_string())
}

/// Applies a batch the way liveSync does: every change, then its token.
async fn poll(set: &Arc<dyn ObjectSet>, token: &Value) -> (ChangeBatch, Value) {
    let batch = set.changes_since(Some(token)).await.unwrap();
    assert_eq!(batch.tokens.len(), batch.changes.len(), "{batch:?}");
    assert_eq!(batch.times.len(), batch.changes.len(), "{batch:?}");
    assert!(batch.times.iter().all(Option::is_some), "{batch:?}");
    let next = batch.token.clone().unwrap();
    (batch, next)
}

#[tokio::test]
async fn without_a_sync_setting_live_sync_is_a_clear_bad_request() {
    let s = Slapd::start();
    let c = connector(&s, json!({}));
    let err = c
        .object_set("account")
        .unwrap()
        .changes_since(None)
        .await
        .unwrap_err();
    match err {
        ConnectorError::BadRequest(m) => {
            assert!(m.contains("useTimestampsForSync"), "{m}");
            assert!(m.contains("accessLogDatabase"), "{m}");
        }
        other => panic!("{other:?}"),
    }
}

/// Timestamps have one-second resolution: entries written in the second already read are seen
/// (they are at or after the token's time) and those read already are not applied again.
#[tokio::test]
async fn timestamps_see_creates_and_updates_once_but_not_deletes() {
    let s = Slapd::start_with(&slapd::people_ldif(2));
    let c = connector(&s, json!({"useTimestampsForSync": true}));
    let set = c.object_set("account").unwrap();
    let groups = c.object_set("group").unwrap();
    let first = set.changes_since(None).await.unwrap();
    assert!(first.changes.is_empty());
    let token = first.token.unwrap();
    assert!(token["time"].is_string(), "{token}");
    // The preloaded entries are where the source is now: seen, not changes.
    assert_eq!(token["seen"].as_array().unwrap().len(), 2, "{token}");
    let (quiet, token) = poll(&set, &token).await;
    assert!(quiet.changes.is_empty(), "{quiet:?}");

    set.create(None, person("a", "A")).await.unwrap();
    set.create(None, person("b", "B")).await.unwrap();
    groups
        .create(
            None,
            json!({"dn": format!("cn=g1,{GROUPS}"), "cn": "g1",
                   "uniqueMember": [format!("uid=a,{PEOPLE}")]}),
        )
        .await
        .unwrap();
    let (batch, token) = poll(&set, &token).await;
    // Entries of one second come in id order (entryUUIDs): compare as sets.
    assert_eq!(
        sorted(summary(&batch)),
        [row("upsert", "a", "A"), row("upsert", "b", "B")]
    );
    // The per-change tokens: the first covers a, the second a and b.
    let seen_after_a = batch.tokens[0]["seen"].to_string();
    assert!(!seen_after_a.contains(&batch.changes[1].id().to_string()));
    let (again, token) = poll(&set, &token).await;
    assert!(again.changes.is_empty(), "{again:?}");

    // An entry written now (most likely in the same second as a and b) is seen once; so is a
    // second write of a, told apart by its entryCSN.
    set.create(None, person("c", "C")).await.unwrap();
    let a_id = set
        .query(&idsync_core::QueryRequest::with_filter(
            "uid eq \"a\"".parse().unwrap(),
        ))
        .await
        .unwrap()
        .results[0]["_id"]
        .as_str()
        .unwrap()
        .to_string();
    set.update(&a_id, None, person("a", "A2")).await.unwrap();
    let (batch, token) = poll(&set, &token).await;
    assert_eq!(
        sorted(summary(&batch)),
        [row("upsert", "a", "A2"), row("upsert", "c", "C")]
    );
    let (again, token) = poll(&set, &token).await;
    assert!(again.changes.is_empty(), "{again:?}");

    // A delete leaves nothing to find (the documented limit of this mode).
    set.delete(&a_id, None).await.unwrap();
    let (after_delete, _) = poll(&set, &token).await;
    assert!(after_delete.changes.is_empty(), "{after_delete:?}");
    // Groups have their own changes.
    let first = groups.changes_since(None).await.unwrap();
    assert_eq!(first.token.unwrap()["seen"].as_array().unwrap().len(), 1);
}

/// The accesslog reports deletes too; an entry written several times in one poll is one
/// change, read as it is now, and one gone since is only its delete.
#[tokio::test]
async fn the_accesslog_reports_creates_updates_renames_and_deletes() {
    let s = Slapd::start_with_accesslog(&slapd::people_ldif(1));
    let c = connector(&s, json!({"accessLogDatabase": ACCESSLOG}));
    let set = c.object_set("account").unwrap();
    let groups = c.object_set("group").unwrap();
    let first = set.changes_since(None).await.unwrap();
    assert!(first.changes.is_empty());
    let token = first.token.unwrap();

    let a = set.create(None, person("a", "A")).await.unwrap();
    let a_id = a["_id"].as_str().unwrap().to_string();
    let b = set.create(None, person("b", "B")).await.unwrap();
    let b_id = b["_id"].as_str().unwrap().to_string();
    set.update(&a_id, None, person("a", "A2")).await.unwrap();
    groups
        .create(
            None,
            json!({"dn": format!("cn=g1,{GROUPS}"), "cn": "g1",
                             "uniqueMember": [format!("uid=b,{PEOPLE}")]}),
        )
        .await
        .unwrap();
    // A rename: b is read under its new DN.
    set.update(&b_id, None, person("b2", "B")).await.unwrap();
    set.delete(&a_id, None).await.unwrap();
    let (batch, token) = poll(&set, &token).await;
    assert_eq!(
        summary(&batch),
        [row("upsert", "b2", "B"), row("delete", &a_id, "")],
        "{batch:?}"
    );
    assert_eq!(batch.changes[0].id(), b_id);
    let (again, token) = poll(&set, &token).await;
    assert!(again.changes.is_empty(), "{again:?}");

    // A delete of an entry of another type is not this set's.
    let g = groups
        .query(&idsync_core::QueryRequest::with_filter(
            "true".parse().unwrap(),
        ))
        .await
        .unwrap();
    groups
        .delete(g.results[0]["_id"].as_str().unwrap(), None)
        .await
        .unwrap();
    set.delete(&b_id, None).await.unwrap();
    let (batch, token) = poll(&set, &token).await;
    assert_eq!(summary(&batch), [row("delete", &b_id, "")]);
    let (again, _) = poll(&set, &token).await;
    assert!(again.changes.is_empty(), "{again:?}");
}

/// A poll that stops at `changeLogBlockSize` changes hands over the rest next time.
#[tokio::test]
async fn a_block_size_splits_a_backlog_without_losing_a_change() {
    let s = Slapd::start_with_accesslog("");
    let c = connector(
        &s,
        json!({"accessLogDatabase": ACCESSLOG, "changeLogBlockSize": 2}),
    );
    let set = c.object_set("account").unwrap();
    let mut token = set.changes_since(None).await.unwrap().token.unwrap();
    for i in 0..5 {
        set.create(None, person(&format!("u{i}"), "U"))
            .await
            .unwrap();
    }
    let mut uids = Vec::new();
    for _ in 0..4 {
        let (batch, next) = poll(&set, &token).await;
        assert!(batch.changes.len() <= 2, "{batch:?}");
        uids.extend(summary(&batch).into_iter().map(|r| r.1));
        token = next;
    }
    assert_eq!(uids, ["u0", "u1", "u2", "u3", "u4"]);
}
