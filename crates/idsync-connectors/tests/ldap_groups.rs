//! The LDAP connector's `ldapGroups` virtual attribute against a real slapd: read from the
//! groups' member attribute, written by changing the groups, kept on rename and delete with
//! `maintainLdapGroupMembership`.
#![allow(clippy::unwrap_used)] // tests may unwrap (PREAMBLE)

#[path = "support/slapd.rs"]
mod slapd;

use idsync_connectors::ldap::LdapConnector;
use idsync_connectors::{Connector, ObjectSet};
use idsync_core::{Filter, JsonPointer, QueryRequest};
use serde_json::{Value, json};
use slapd::{GROUPS, PEOPLE, Slapd, people_ldif};
use std::sync::Arc;

/// A member every group keeps: OpenLDAP's `groupOfUniqueNames` needs at least one.
const KEEPER: &str = "cn=keeper,dc=example,dc=com";

fn group_dn(cn: &str) -> String {
    format!("cn={cn},{GROUPS}")
}

fn user_dn(uid: &str) -> String {
    format!("uid={uid},{PEOPLE}")
}

/// Three people; `g1` holds user0 and user1, `g2` user0, `g3` nobody but the keeper, and
/// `names` (a `groupOfNames`, `member`) holds user1.
fn directory() -> Slapd {
    let mut ldif = people_ldif(3);
    let unique = |cn: &str, members: &[&str]| {
        let mut s = format!(
            "dn: {}\nobjectClass: top\nobjectClass: groupOfUniqueNames\ncn: {cn}\nuniqueMember: {KEEPER}\n",
            group_dn(cn)
        );
        for m in members {
            s.push_str(&format!("uniqueMember: {}\n", user_dn(m)));
        }
        s.push('\n');
        s
    };
    ldif.push_str(&unique("g1", &["user0", "user1"]));
    ldif.push_str(&unique("g2", &["user0"]));
    ldif.push_str(&unique("g3", &[]));
    ldif.push_str(&format!(
        "dn: {}\nobjectClass: top\nobjectClass: groupOfNames\ncn: names\nmember: {KEEPER}\nmember: {}\n\n",
        group_dn("names"),
        user_dn("user1")
    ));
    Slapd::start_with(&ldif)
}

fn connector(s: &Slapd, extra_props: Value) -> LdapConnector {
    let mut props: Value = serde_json::from_str(&s.configuration_properties()).unwrap();
    for (k, v) in extra_props.as_object().unwrap() {
        props[k] = v.clone();
    }
    let provisioner = json!({
        "name": "ldap",
        "configurationProperties": props,
        "objectTypes": {
            "account": {
                "nativeType": "__ACCOUNT__",
                "properties": {
                    "dn": {"type": "string", "nativeName": "__NAME__"},
                    "uid": {"type": "string", "nativeName": "uid"},
                    "cn": {"type": "string", "nativeName": "cn"},
                    "sn": {"type": "string", "nativeName": "sn"},
                    "ldapGroups": {"type": "array", "items": {"type": "string", "nativeType": "string"},
                                   "nativeName": "ldapGroups", "nativeType": "string"}
                }
            },
            "group": {
                "nativeType": "__GROUP__",
                "properties": {
                    "dn": {"type": "string", "nativeName": "__NAME__"},
                    "cn": {"type": "string", "nativeName": "cn"},
                    "uniqueMember": {"type": "array", "nativeName": "uniqueMember"}
                }
            }
        }
    });
    LdapConnector::from_provisioner("ldap", &provisioner).unwrap()
}

fn accounts(c: &LdapConnector) -> Arc<dyn ObjectSet> {
    c.object_set("account").unwrap()
}

/// DNs lower-cased and sorted: the server may spell and order them its own way.
fn dns(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("an array of DNs: {v}"))
        .iter()
        .map(|x| x.as_str().unwrap().replace(", ", ",").to_ascii_lowercase())
        .collect();
    out.sort();
    out
}

fn expect(items: &[String]) -> Vec<String> {
    let mut out: Vec<String> = items.iter().map(|s| s.to_ascii_lowercase()).collect();
    out.sort();
    out
}

async fn by_uid(set: &dyn ObjectSet, uid: &str) -> Value {
    let f: Filter = format!("uid eq \"{uid}\"").parse().unwrap();
    let page = set.query(&QueryRequest::with_filter(f)).await.unwrap();
    assert_eq!(page.results.len(), 1, "{uid}: {:?}", page.results);
    page.results[0].clone()
}

/// The members of a group, read from the group entry itself.
async fn members(c: &LdapConnector, cn: &str) -> Vec<String> {
    let f: Filter = format!("cn eq \"{cn}\"").parse().unwrap();
    let groups = c.object_set("group").unwrap();
    let page = groups.query(&QueryRequest::with_filter(f)).await.unwrap();
    assert_eq!(page.results.len(), 1, "group {cn}: {:?}", page.results);
    dns(&page.results[0]["uniqueMember"])
}

#[tokio::test]
async fn reads_show_the_groups_that_hold_the_account() {
    let s = directory();
    let c = connector(&s, json!({}));
    let set = accounts(&c);

    let user0 = by_uid(&*set, "user0").await;
    assert_eq!(
        dns(&user0["ldapGroups"]),
        expect(&[group_dn("g1"), group_dn("g2")])
    );
    let id0 = user0["_id"].as_str().unwrap().to_owned();
    let got = set.get(&id0).await.unwrap().unwrap();
    assert_eq!(dns(&got["ldapGroups"]), dns(&user0["ldapGroups"]));
    // uniqueMember is the default member attribute: the groupOfNames does not count.
    let user1 = by_uid(&*set, "user1").await;
    assert_eq!(dns(&user1["ldapGroups"]), expect(&[group_dn("g1")]));
    // An account in no group has an empty list, not a missing property.
    let user2 = by_uid(&*set, "user2").await;
    assert_eq!(user2["ldapGroups"], json!([]));

    // A whole query and a paged one give every account its own groups.
    let all = set.query(&QueryRequest::all()).await.unwrap();
    assert_eq!(all.results.len(), 3);
    let mut paged = Vec::new();
    let mut req = QueryRequest::all();
    req.page_size = Some(2);
    loop {
        let page = set.query(&req).await.unwrap();
        paged.extend(page.results);
        match page.cookie {
            Some(c) => req.cookie = Some(c),
            None => break,
        }
    }
    assert_eq!(paged.len(), 3);
    for o in all.results.iter().chain(&paged) {
        let want = match o["uid"].as_str().unwrap() {
            "user0" => expect(&[group_dn("g1"), group_dn("g2")]),
            "user1" => expect(&[group_dn("g1")]),
            _ => vec![],
        };
        assert_eq!(dns(&o["ldapGroups"]), want, "{o}");
    }

    // _fields: only what is asked for.
    let mut req = QueryRequest::all();
    req.fields = Some(vec![JsonPointer::parse("uid")]);
    let page = set.query(&req).await.unwrap();
    assert!(page.results.iter().all(|o| o.get("ldapGroups").is_none()));
    req.fields = Some(vec![JsonPointer::parse("ldapGroups")]);
    let page = set.query(&req).await.unwrap();
    assert!(page.results.iter().all(|o| o["ldapGroups"].is_array()));

    // groupMemberAttribute: member reads the groupOfNames groups.
    let c = connector(&s, json!({"groupMemberAttribute": "member"}));
    let user1 = by_uid(&*accounts(&c), "user1").await;
    assert_eq!(dns(&user1["ldapGroups"]), expect(&[group_dn("names")]));
}

#[tokio::test]
async fn a_query_of_many_accounts_gives_each_its_own_groups() {
    // 120 accounts: more than one chunk of the group search (50 DNs each), read whole and
    // in pages of 40 that straddle the chunks.
    let mut ldif = people_ldif(120);
    let mut all = format!(
        "dn: {}\nobjectClass: groupOfUniqueNames\ncn: all\n",
        group_dn("all")
    );
    let mut odd = format!(
        "dn: {}\nobjectClass: groupOfUniqueNames\ncn: odd\n",
        group_dn("odd")
    );
    for i in 0..120 {
        all.push_str(&format!("uniqueMember: {}\n", user_dn(&format!("user{i}"))));
        if i % 2 == 1 {
            odd.push_str(&format!("uniqueMember: {}\n", user_dn(&format!("user{i}"))));
        }
    }
    ldif.push_str(&format!("{all}\n{odd}\n"));
    let s = Slapd::start_with(&ldif);
    let c = connector(&s, json!({}));
    let set = accounts(&c);
    let check = |objects: &[Value]| {
        assert_eq!(objects.len(), 120);
        for o in objects {
            let uid = o["uid"].as_str().unwrap();
            let i: usize = uid["user".len()..].parse().unwrap();
            let want = if i % 2 == 1 {
                expect(&[group_dn("all"), group_dn("odd")])
            } else {
                expect(&[group_dn("all")])
            };
            assert_eq!(dns(&o["ldapGroups"]), want, "{o}");
        }
    };
    check(&set.query(&QueryRequest::all()).await.unwrap().results);
    let mut req = QueryRequest::all();
    req.page_size = Some(40);
    let mut paged = Vec::new();
    loop {
        let page = set.query(&req).await.unwrap();
        paged.extend(page.results);
        match page.cookie {
            Some(c) => req.cookie = Some(c),
            None => break,
        }
    }
    check(&paged);
}

#[tokio::test]
async fn create_with_groups_adds_the_account_to_them() {
    let s = directory();
    let c = connector(&s, json!({}));
    let set = accounts(&c);
    let created = set
        .create(
            None,
            json!({"dn": user_dn("jdoe"), "uid": "jdoe", "cn": "John Doe", "sn": "Doe",
                   "ldapGroups": [group_dn("g2"), group_dn("G3")],
                   // Not declared in objectTypes: left out, as IDM does.
                   "telephoneNumber": "12345"}),
        )
        .await
        .unwrap();
    assert_eq!(
        dns(&created["ldapGroups"]),
        expect(&[group_dn("g2"), group_dn("g3")])
    );
    assert!(created.get("telephoneNumber").is_none(), "{created}");
    assert!(
        members(&c, "g2")
            .await
            .contains(&user_dn("jdoe").to_ascii_lowercase())
    );
    assert!(
        members(&c, "g3")
            .await
            .contains(&user_dn("jdoe").to_ascii_lowercase())
    );
    assert!(
        !members(&c, "g1")
            .await
            .contains(&user_dn("jdoe").to_ascii_lowercase())
    );

    // A group that does not exist fails the create.
    let err = set
        .create(
            None,
            json!({"dn": user_dn("ghost"), "uid": "ghost", "cn": "G", "sn": "G",
                   "ldapGroups": [group_dn("nosuchgroup")]}),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nosuchgroup"), "{err}");
    assert!(
        matches!(err, idsync_connectors::ConnectorError::InvalidData(_)),
        "{err:?}"
    );
    // ...and leaves no entry behind.
    let f: Filter = "uid eq \"ghost\"".parse().unwrap();
    let page = set.query(&QueryRequest::with_filter(f)).await.unwrap();
    assert!(page.results.is_empty(), "{:?}", page.results);
}

#[tokio::test]
async fn update_adds_and_removes_memberships() {
    let s = directory();
    let c = connector(&s, json!({}));
    let set = accounts(&c);
    let user0 = by_uid(&*set, "user0").await;
    let id = user0["_id"].as_str().unwrap().to_owned();
    let me = user_dn("user0").to_ascii_lowercase();

    // g1, g2 → g2, g3: leaves g1, stays in g2, joins g3.
    let mut changed = user0.clone();
    changed["ldapGroups"] = json!([group_dn("g2"), group_dn("g3")]);
    let updated = set.update(&id, None, changed).await.unwrap();
    assert_eq!(
        dns(&updated["ldapGroups"]),
        expect(&[group_dn("g2"), group_dn("g3")])
    );
    assert!(!members(&c, "g1").await.contains(&me));
    assert!(members(&c, "g2").await.contains(&me));
    assert!(members(&c, "g3").await.contains(&me));
    // g1 keeps its other members.
    assert!(
        members(&c, "g1")
            .await
            .contains(&user_dn("user1").to_ascii_lowercase())
    );

    // An object without ldapGroups leaves the memberships alone.
    let mut no_groups = updated.clone();
    no_groups.as_object_mut().unwrap().remove("ldapGroups");
    no_groups["sn"] = json!("Changed");
    let again = set.update(&id, None, no_groups).await.unwrap();
    assert_eq!(again["sn"], "Changed");
    assert_eq!(dns(&again["ldapGroups"]), dns(&updated["ldapGroups"]));

    // An empty list leaves every group.
    let mut none = again.clone();
    none["ldapGroups"] = json!([]);
    let left = set.update(&id, None, none).await.unwrap();
    assert_eq!(left["ldapGroups"], json!([]));
    assert!(!members(&c, "g2").await.contains(&me));
    assert!(!members(&c, "g3").await.contains(&me));
}

#[tokio::test]
async fn rename_and_delete_keep_the_groups_with_maintain_ldap_group_membership() {
    let s = directory();
    let c = connector(&s, json!({"maintainLdapGroupMembership": true}));
    let set = accounts(&c);

    // Rename user0: g1 and g2 now hold the new DN, not the old.
    let user0 = by_uid(&*set, "user0").await;
    let id = user0["_id"].as_str().unwrap().to_owned();
    let mut renamed = user0.clone();
    renamed["dn"] = json!(user_dn("user0b"));
    renamed["uid"] = json!("user0b");
    renamed.as_object_mut().unwrap().remove("ldapGroups");
    let after = set.update(&id, None, renamed).await.unwrap();
    assert_eq!(
        dns(&after["ldapGroups"]),
        expect(&[group_dn("g1"), group_dn("g2")])
    );
    for g in ["g1", "g2"] {
        let m = members(&c, g).await;
        assert!(
            m.contains(&user_dn("user0b").to_ascii_lowercase()),
            "{g}: {m:?}"
        );
        assert!(
            !m.contains(&user_dn("user0").to_ascii_lowercase()),
            "{g}: {m:?}"
        );
    }

    // Delete user1: it leaves g1 (the groupOfNames is not the member attribute's class and
    // keeps it). The deleted object is returned with the groups it had.
    let user1 = by_uid(&*set, "user1").await;
    let gone = set
        .delete(user1["_id"].as_str().unwrap(), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(dns(&gone["ldapGroups"]), expect(&[group_dn("g1")]));
    assert!(
        !members(&c, "g1")
            .await
            .contains(&user_dn("user1").to_ascii_lowercase())
    );

    // A group the server will not empty (user2 is its only member) fails the delete before
    // the entry is gone.
    c.object_set("group")
        .unwrap()
        .create(
            None,
            json!({"dn": group_dn("solo"), "cn": "solo", "uniqueMember": [user_dn("user2")]}),
        )
        .await
        .unwrap();
    let user2 = by_uid(&*set, "user2").await;
    let err = set
        .delete(user2["_id"].as_str().unwrap(), None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("solo"), "{err}");
    by_uid(&*set, "user2").await;

    // Without the setting, a delete leaves the groups as they are (as ICF does).
    let c = connector(&s, json!({"maintainLdapGroupMembership": false}));
    let set = accounts(&c);
    let user0b = by_uid(&*set, "user0b").await;
    set.delete(user0b["_id"].as_str().unwrap(), None)
        .await
        .unwrap();
    assert!(
        members(&c, "g1")
            .await
            .contains(&user_dn("user0b").to_ascii_lowercase())
    );
}
