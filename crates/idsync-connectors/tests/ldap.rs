//! The LDAP connector against a real slapd (one private instance per test).
#![allow(clippy::unwrap_used)] // tests may unwrap (PREAMBLE)

#[path = "support/slapd.rs"]
mod slapd;

use idsync_connectors::ldap::LdapConnector;
use idsync_connectors::{Connector, ConnectorError, ObjectSet};
use idsync_core::{Filter, QueryRequest};
use serde_json::{Value, json};
use slapd::{PEOPLE, Slapd};
use std::collections::HashSet;
use std::sync::Arc;

fn provisioner(s: &Slapd, extra_props: Value) -> Value {
    let mut props: Value = serde_json::from_str(&s.configuration_properties()).unwrap();
    for (k, v) in extra_props.as_object().unwrap() {
        props[k] = v.clone();
    }
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
                    "mail": {"type": "string", "nativeName": "mail"},
                    "employeeNumber": {"type": "string", "nativeName": "employeeNumber"},
                    "description": {"type": "array", "items": {"type": "string"}, "nativeName": "description"},
                    "telephoneNumber": {"type": "array", "nativeName": "telephoneNumber"},
                    "photo": {"type": "string", "nativeName": "jpegPhoto", "nativeType": "JAVA_TYPE_BYTE_ARRAY"},
                    "password": {"type": "string", "nativeName": "userPassword", "nativeType": "JAVA_TYPE_BYTE_ARRAY"},
                    "bogus": {"type": "string", "nativeName": "noSuchAttributeType"}
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
    })
}

fn connector(s: &Slapd) -> LdapConnector {
    LdapConnector::from_provisioner("ldap", &provisioner(s, json!({}))).unwrap()
}

fn accounts(c: &LdapConnector) -> Arc<dyn ObjectSet> {
    c.object_set("account").unwrap()
}

fn person(uid: &str, cn: &str) -> Value {
    json!({"dn": format!("uid={uid},{PEOPLE}"), "uid": uid, "cn": cn, "sn": "Tester"})
}

async fn ids(set: &dyn ObjectSet, filter: &str) -> HashSet<String> {
    let f: Filter = filter.parse().unwrap();
    let page = set.query(&QueryRequest::with_filter(f)).await.unwrap();
    page.results
        .iter()
        .map(|o| o["uid"].as_str().unwrap().to_owned())
        .collect()
}

fn set_of(items: &[&str]) -> HashSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn create_read_update_delete() {
    let s = Slapd::start();
    let c = connector(&s);
    c.test().await.unwrap();
    let set = accounts(&c);

    let mut obj = person("jdoe", "John Doe");
    obj["mail"] = json!("jdoe@example.com");
    obj["description"] = json!(["one", "two"]);
    let created = set.create(None, obj.clone()).await.unwrap();
    let id = created["_id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 36, "entryUUID as the server returns it: {id}");
    assert_eq!(created["dn"], json!(format!("uid=jdoe,{PEOPLE}")));
    assert_eq!(created["mail"], json!("jdoe@example.com"));
    // LDAP attribute values are a set: slapd may return them in any order.
    let sorted = |v: &serde_json::Value| {
        let mut a: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_owned())
            .collect();
        a.sort();
        a
    };
    assert_eq!(sorted(&created["description"]), ["one", "two"]);

    let mut got = set.get(&id).await.unwrap().unwrap();
    assert_eq!(sorted(&got["description"]), sorted(&created["description"]));
    got["description"] = created["description"].clone();
    assert_eq!(got, created);
    assert_eq!(
        set.get("00000000-0000-0000-0000-000000000000")
            .await
            .unwrap(),
        None
    );
    assert_eq!(set.count().await.unwrap(), None);

    // update replaces the object; only the changed attributes go to the server.
    let mut changed = created.clone();
    changed["mail"] = json!("john@example.com");
    let updated = set.update(&id, None, changed.clone()).await.unwrap();
    assert_eq!(updated["mail"], json!("john@example.com"));
    assert_eq!(sorted(&updated["description"]), ["one", "two"]);
    assert_eq!(updated["_id"], json!(id));

    // null, or a missing declared property, removes the attribute.
    changed["mail"] = Value::Null;
    changed.as_object_mut().unwrap().remove("description");
    let updated = set.update(&id, None, changed).await.unwrap();
    assert!(updated.get("mail").is_none(), "{updated}");
    assert!(updated.get("description").is_none(), "{updated}");
    assert_eq!(updated["sn"], json!("Tester"));

    let dup = set.create(None, person("jdoe", "Again")).await.unwrap_err();
    assert!(matches!(dup, ConnectorError::AlreadyExists(_)), "{dup:?}");

    let deleted = set.delete(&id, None).await.unwrap().unwrap();
    assert_eq!(deleted["uid"], json!("jdoe"));
    assert_eq!(set.get(&id).await.unwrap(), None);
    let again = set.delete(&id, None).await.unwrap_err();
    assert!(matches!(again, ConnectorError::NotFound(_)), "{again:?}");
    let missing = set.update(&id, None, json!({"cn": "x"})).await.unwrap_err();
    assert!(
        matches!(missing, ConnectorError::NotFound(_)),
        "{missing:?}"
    );
}

#[tokio::test]
async fn filters_of_every_operator_with_escaping() {
    let s = Slapd::start();
    let c = connector(&s);
    let set = accounts(&c);
    let rows = [
        ("u1", "alpha", "100"),
        ("u2", "a*b(c)d\\e", "200"),
        ("u3", "Zoë Ünïcode", "300"),
        ("u4", "beta", "400"),
        ("u5", "a", "500"),
    ];
    let mut uuid_of_u4 = String::new();
    let mut uuids = Vec::new();
    for (uid, cn, num) in rows {
        let mut o = person(uid, cn);
        o["employeeNumber"] = json!(num);
        let created = set.create(None, o).await.unwrap();
        if uid == "u4" {
            uuid_of_u4 = created["_id"].as_str().unwrap().to_owned();
        }
        uuids.push((created["_id"].as_str().unwrap().to_owned(), uid));
    }
    let mut u4 = set.get(&uuid_of_u4).await.unwrap().unwrap();
    u4["mail"] = json!("beta@example.com");
    set.update(&uuid_of_u4, None, u4).await.unwrap();

    assert_eq!(ids(&*set, r#"cn eq "a*b(c)d\\e""#).await, set_of(&["u2"]));
    assert_eq!(ids(&*set, r#"cn eq "a""#).await, set_of(&["u5"]));
    assert_eq!(ids(&*set, r#"cn co "*""#).await, set_of(&["u2"]));
    assert_eq!(ids(&*set, r#"cn co "(c)""#).await, set_of(&["u2"]));
    assert_eq!(ids(&*set, r#"cn co "\\""#).await, set_of(&["u2"]));
    assert_eq!(ids(&*set, r#"cn eq "zoë ünïcode""#).await, set_of(&["u3"]));
    assert_eq!(ids(&*set, r#"cn co "Ünï""#).await, set_of(&["u3"]));
    assert_eq!(
        ids(&*set, r#"cn sw "a""#).await,
        set_of(&["u1", "u2", "u5"])
    );
    assert_eq!(ids(&*set, r#"cn sw "al""#).await, set_of(&["u1"]));
    // Ordering needs an attribute with an ORDERING rule: entryUUID (UUIDOrderingMatch orders
    // as the lower-case hex string does).
    uuids.sort();
    let (pivot, _) = uuids[2].clone();
    let pick = |keep: &dyn Fn(&str) -> bool| -> HashSet<String> {
        uuids
            .iter()
            .filter(|(u, _)| keep(u))
            .map(|(_, uid)| uid.to_string())
            .collect()
    };
    assert_eq!(
        ids(&*set, &format!(r#"_id ge "{pivot}""#)).await,
        pick(&|u| u >= pivot.as_str())
    );
    assert_eq!(
        ids(&*set, &format!(r#"_id le "{pivot}""#)).await,
        pick(&|u| u <= pivot.as_str())
    );
    assert_eq!(
        ids(&*set, &format!(r#"_id gt "{pivot}""#)).await,
        pick(&|u| u > pivot.as_str())
    );
    assert_eq!(
        ids(&*set, &format!(r#"_id lt "{pivot}""#)).await,
        pick(&|u| u < pivot.as_str())
    );
    assert_eq!(pick(&|u| u > pivot.as_str()).len(), 2);
    assert_eq!(ids(&*set, "mail pr").await, set_of(&["u4"]));
    assert_eq!(
        ids(&*set, "!(mail pr)").await,
        set_of(&["u1", "u2", "u3", "u5"])
    );
    assert_eq!(
        ids(&*set, r#"cn sw "a" and !(employeeNumber eq "100")"#).await,
        set_of(&["u2", "u5"])
    );
    assert_eq!(
        ids(&*set, r#"uid eq "u1" or uid eq "u3""#).await,
        set_of(&["u1", "u3"])
    );
    assert_eq!(
        ids(&*set, "true").await,
        set_of(&["u1", "u2", "u3", "u4", "u5"])
    );
    assert_eq!(ids(&*set, "false").await, HashSet::new());
    assert_eq!(
        ids(&*set, &format!(r#"_id eq "{uuid_of_u4}""#)).await,
        set_of(&["u4"])
    );
    assert_eq!(
        ids(&*set, &format!(r#"dn eq "UID=u4,{PEOPLE}""#)).await,
        set_of(&["u4"])
    );

    // What LDAP cannot express is refused, never evaluated in memory.
    let f: Filter = r#"cn ne "x""#.parse().unwrap();
    let err = set.query(&QueryRequest::with_filter(f)).await.unwrap_err();
    assert!(matches!(err, ConnectorError::BadRequest(_)), "{err:?}");

    // _fields limits what comes back; _id always does.
    let mut req = QueryRequest::with_filter(r#"uid eq "u1""#.parse().unwrap());
    req.fields = Some(vec![idsync_core::JsonPointer::parse("cn")]);
    let page = set.query(&req).await.unwrap();
    let obj = page.results[0].as_object().unwrap();
    assert_eq!(
        obj.keys().cloned().collect::<Vec<_>>(),
        vec!["_id".to_owned(), "cn".to_owned()]
    );

    // Unpaged queries honour _sortKeys in memory.
    let mut req = QueryRequest::all();
    req.sort_keys = idsync_core::SortKey::parse_list("-employeeNumber");
    let page = set.query(&req).await.unwrap();
    let order: Vec<&str> = page
        .results
        .iter()
        .map(|o| o["uid"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["u5", "u4", "u3", "u2", "u1"]);
}

#[tokio::test]
async fn paging_returns_each_entry_exactly_once() {
    let s = Slapd::start_with(&slapd::people_ldif(2500));
    let c = connector(&s);
    let set = accounts(&c);
    let mut seen = HashSet::new();
    let mut cookie = None;
    let mut pages = 0;
    let mut first_cookie = None;
    loop {
        let mut req = QueryRequest::all();
        req.page_size = Some(100);
        req.cookie = cookie.clone();
        let page = set.query(&req).await.unwrap();
        pages += 1;
        assert!(page.results.len() <= 100);
        for o in &page.results {
            assert!(
                seen.insert(o["_id"].as_str().unwrap().to_owned()),
                "duplicate {o}"
            );
        }
        if first_cookie.is_none() {
            first_cookie = page.cookie.clone();
        }
        match page.cookie {
            Some(next) => cookie = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), 2500);
    assert_eq!(pages, 25);
    assert_eq!(
        c.open_cursors(),
        0,
        "a finished cursor releases its connection"
    );

    // A consumed cookie is refused, and so is a cookie from another connector instance.
    let mut req = QueryRequest::all();
    req.page_size = Some(100);
    req.cookie = first_cookie.clone();
    let err = set.query(&req).await.unwrap_err();
    assert!(matches!(err, ConnectorError::BadRequest(_)), "{err:?}");
    let mut req = QueryRequest::all();
    req.page_size = Some(10);
    let page = set.query(&req).await.unwrap();
    let other = connector(&s);
    let mut req = QueryRequest::all();
    req.page_size = Some(10);
    req.cookie = page.cookie.clone();
    let err = accounts(&other).query(&req).await.unwrap_err();
    assert!(matches!(err, ConnectorError::BadRequest(_)), "{err:?}");

    // A paged filter: 250 of the 2500 have a uid ending in 7 ... use sw on cn "User 1" instead.
    let mut total = 0;
    let mut cookie = None;
    loop {
        let mut req = QueryRequest::with_filter(r#"uid sw "user1""#.parse().unwrap());
        req.page_size = Some(100);
        req.cookie = cookie;
        let page = set.query(&req).await.unwrap();
        total += page.results.len();
        cookie = page.cookie;
        if cookie.is_none() {
            break;
        }
    }
    // user1, user10-19, user100-199, user1000-1999
    assert_eq!(total, 1 + 10 + 100 + 1000);
}

/// Resumable pages (reconciliation's page jobs): every entry once, in `entryUUID` order within
/// a page, each cookie continued by another connector instance (another node, or this one
/// after a restart) and read again with the same result (a page re-run after a lost lease),
/// a filter kept across pages, and a cookie of another query refused.
#[tokio::test]
async fn resumable_pages_continue_anywhere_and_read_each_entry_once() {
    let s = Slapd::start_with(&slapd::people_ldif(1050));
    let read_all = |filter: Option<&'static str>| {
        let s = &s;
        async move {
            let mut seen = Vec::new();
            let mut cookie: Option<String> = None;
            let mut pages = 0;
            loop {
                // A fresh connector for every page: nothing of the last one is left.
                let c = connector(s);
                let set = accounts(&c);
                let mut req = match filter {
                    Some(f) => QueryRequest::with_filter(f.parse().unwrap()),
                    None => QueryRequest::all(),
                };
                req.page_size = Some(100);
                req.cookie = cookie.clone();
                let page = set.query_resumable(&req).await.unwrap();
                assert!(page.results.len() <= 100);
                // Read again from the same cookie: the same page.
                let again = accounts(&connector(s)).query_resumable(&req).await.unwrap();
                assert_eq!(again.results, page.results);
                assert_eq!(again.cookie, page.cookie);
                pages += 1;
                seen.extend(
                    page.results
                        .iter()
                        .map(|o| o["_id"].as_str().unwrap().to_owned()),
                );
                match page.cookie {
                    Some(next) => cookie = Some(next),
                    None => break,
                }
            }
            (seen, pages)
        }
    };
    let (seen, pages) = read_all(None).await;
    assert_eq!(seen.len(), 1050);
    assert_eq!(
        seen.iter().collect::<HashSet<_>>().len(),
        1050,
        "no entry twice"
    );
    assert_eq!(pages, 11);
    let (seen, _) = read_all(Some(r#"uid sw "user1""#)).await;
    assert_eq!(seen.len(), 1 + 10 + 100 + 50);

    // A resumable cookie given to the plain query continues the same way; one of another
    // query is refused.
    let c = connector(&s);
    let set = accounts(&c);
    let mut req = QueryRequest::all();
    req.page_size = Some(500);
    let first = set.query_resumable(&req).await.unwrap();
    req.cookie = first.cookie.clone();
    let second = set.query(&req).await.unwrap();
    assert_eq!(second.results.len(), 500);
    let mut other = QueryRequest::with_filter(r#"uid sw "user1""#.parse().unwrap());
    other.page_size = Some(500);
    other.cookie = first.cookie.clone();
    let err = set.query_resumable(&other).await.unwrap_err();
    assert!(matches!(err, ConnectorError::BadRequest(_)), "{err:?}");
    assert_eq!(c.open_cursors(), 0, "resumable pages hold no cursor");
}

#[tokio::test]
async fn rename_when_the_dn_changes() {
    let s = Slapd::start();
    let c = connector(&s);
    let set = accounts(&c);
    let created = set.create(None, person("old", "Old Name")).await.unwrap();
    let id = created["_id"].as_str().unwrap();
    let renamed = set
        .update(
            id,
            None,
            json!({"dn": format!("uid=new,{PEOPLE}"), "uid": "new", "cn": "New Name", "sn": "Tester"}),
        )
        .await
        .unwrap();
    assert_eq!(renamed["_id"], json!(id), "entryUUID survives a modDN");
    assert_eq!(renamed["dn"], json!(format!("uid=new,{PEOPLE}")));
    assert_eq!(renamed["uid"], json!("new"));
    assert_eq!(renamed["cn"], json!("New Name"));
    assert_eq!(ids(&*set, r#"uid eq "old""#).await, HashSet::new());

    // A DN that differs only in case is the same DN: no rename.
    let same = set
        .update(
            id,
            None,
            json!({"dn": format!("UID=new,{}", PEOPLE.to_uppercase()), "uid": "new", "cn": "New Name", "sn": "Tester"}),
        )
        .await
        .unwrap();
    assert_eq!(same["dn"], json!(format!("uid=new,{PEOPLE}")));

    // Moving to another parent.
    let moved = set
        .update(
            id,
            None,
            json!({"dn": format!("uid=new,{}", slapd::GROUPS), "uid": "new", "cn": "New Name", "sn": "Tester"}),
        )
        .await
        .unwrap();
    assert_eq!(moved["dn"], json!(format!("uid=new,{}", slapd::GROUPS)));
}

#[tokio::test]
async fn multi_valued_and_binary_attributes() {
    let s = Slapd::start();
    let c = connector(&s);
    let set = accounts(&c);
    let bytes: Vec<u8> = vec![0xff, 0xd8, 0xff, 0x00, 0x80, 0x10, 0xfe];
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let mut o = person("multi", "Multi");
    o["telephoneNumber"] = json!(["+1 555 0100", "+1 555 0101", "+1 555 0102"]);
    o["photo"] = json!(b64);
    o["password"] = json!(b64);
    let created = set.create(None, o).await.unwrap();
    let id = created["_id"].as_str().unwrap();
    let phones: HashSet<&str> = created["telephoneNumber"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        phones,
        HashSet::from(["+1 555 0100", "+1 555 0101", "+1 555 0102"])
    );
    assert_eq!(created["photo"], json!(b64));
    // A string property stays a string, an array property with one value is an array.
    assert!(created["cn"].is_string());
    let mut changed = created.clone();
    changed["telephoneNumber"] = json!(["+1 555 0199"]);
    let updated = set.update(id, None, changed).await.unwrap();
    assert_eq!(updated["telephoneNumber"], json!(["+1 555 0199"]));
    assert_eq!(updated["photo"], json!(b64));
    let got = set.get(id).await.unwrap().unwrap();
    assert_eq!(got["photo"], json!(b64));
    // Filtering on a binary value matches the raw bytes.
    // (userPassword: an octet string with an equality rule; jpegPhoto has none).
    let f: Filter = format!(r#"password eq "{b64}""#).parse().unwrap();
    assert_eq!(
        set.query(&QueryRequest::with_filter(f))
            .await
            .unwrap()
            .results
            .len(),
        1
    );

    // Groups: a multi-valued DN attribute.
    let groups = c.object_set("__GROUP__").unwrap();
    let g = groups
        .create(
            None,
            json!({"dn": format!("cn=admins,{}", slapd::GROUPS), "cn": "admins",
                   "uniqueMember": [created["dn"].clone()]}),
        )
        .await
        .unwrap();
    assert_eq!(g["uniqueMember"], json!([created["dn"].clone()]));
}

#[tokio::test]
async fn schema_violations_are_invalid_data_with_the_servers_message() {
    let s = Slapd::start();
    let c = connector(&s);
    let set = accounts(&c);
    let err = set
        .create(
            None,
            json!({"dn": format!("uid=nosn,{PEOPLE}"), "uid": "nosn", "cn": "No Sn"}),
        )
        .await
        .unwrap_err();
    match err {
        ConnectorError::InvalidData(m) => assert!(m.contains("requires attribute 'sn'"), "{m}"),
        other => panic!("{other:?}"),
    }
    let mut o = person("bogus", "Bogus");
    o["bogus"] = json!("x");
    let err = set.create(None, o).await.unwrap_err();
    assert!(
        matches!(&err, ConnectorError::InvalidData(m) if m.contains("noSuchAttributeType")),
        "{err:?}"
    );
    let created = set.create(None, person("ok", "Ok")).await.unwrap();
    let mut no_sn = created.clone();
    no_sn["sn"] = Value::Null;
    let err = set
        .update(created["_id"].as_str().unwrap(), None, no_sn)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ConnectorError::InvalidData(m) if m.contains("sn")),
        "{err:?}"
    );
    let err = set
        .create(None, json!({"uid": "nodn", "cn": "x", "sn": "y"}))
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectorError::InvalidData(_)), "{err:?}");
    let err = set
        .create(
            None,
            json!({"dn": "uid=x,ou=Nowhere,dc=example,dc=com", "uid": "x", "cn": "x", "sn": "y"}),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectorError::NotFound(_)), "{err:?}");
}

#[tokio::test]
async fn a_stopped_server_is_unavailable_not_a_hang() {
    let mut s = Slapd::start_with(&slapd::people_ldif(300));
    let c = LdapConnector::from_provisioner(
        "ldap",
        &provisioner(&s, json!({"operationTimeoutMs": 3000})),
    )
    .unwrap();
    let set = accounts(&c);
    let mut req = QueryRequest::all();
    req.page_size = Some(100);
    let first = set.query(&req).await.unwrap();
    assert_eq!(first.results.len(), 100);
    let some_id = first.results[0]["_id"].as_str().unwrap().to_owned();
    assert!(set.get(&some_id).await.unwrap().is_some());

    s.stop();
    // A guard only: the connector's own bound is 3 s; this catches a hang, it measures nothing.
    let guard = std::time::Duration::from_secs(120);
    req.cookie = first.cookie.clone();
    let err = tokio::time::timeout(guard, set.query(&req))
        .await
        .expect("no hang")
        .unwrap_err();
    assert!(matches!(err, ConnectorError::Unavailable(_)), "{err:?}");
    let err = tokio::time::timeout(guard, set.get(&some_id))
        .await
        .expect("no hang")
        .unwrap_err();
    assert!(matches!(err, ConnectorError::Unavailable(_)), "{err:?}");
    let err = tokio::time::timeout(guard, set.create(None, person("late", "Late")))
        .await
        .expect("no hang")
        .unwrap_err();
    assert!(matches!(err, ConnectorError::Unavailable(_)), "{err:?}");
    let err = tokio::time::timeout(guard, c.test())
        .await
        .expect("no hang")
        .unwrap_err();
    assert!(matches!(err, ConnectorError::Unavailable(_)), "{err:?}");
    assert_eq!(
        idsync_core::HasErrorCode::error_code(&err),
        idsync_core::ErrorCode::Unavailable
    );
}

#[tokio::test]
async fn test_action_and_bad_credentials() {
    let s = Slapd::start();
    connector(&s).test().await.unwrap();
    let bad =
        LdapConnector::from_provisioner("ldap", &provisioner(&s, json!({"credentials": "wrong"})))
            .unwrap();
    let err = bad.test().await.unwrap_err();
    assert!(matches!(err, ConnectorError::Config(_)), "{err:?}");
    let err = bad
        .object_set("account")
        .unwrap()
        .get("x")
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectorError::Config(_)), "{err:?}");
    assert!(matches!(
        connector(&s).object_set("printer"),
        Err(ConnectorError::BadRequest(_))
    ));
    assert!(connector(&s).object_set("__ACCOUNT__").is_ok());
}
