//! LDAP liveSync with the real binary and real slapds: a directory → `managed/user` by
//! `POST system/src/account?_action=liveSync`, and `managed/user` → a second directory through
//! implicit sync. With OpenLDAP's accesslog (`accessLogDatabase`) creates, updates and deletes
//! all arrive; by timestamps (`useTimestampsForSync`) creates and updates do, deletes do not.

use crate::server::{Server, send};
use crate::slapd::{ACCESSLOG, PEOPLE, Slapd};
use crate::support::Project;
use reqwest::Method;
use serde_json::{Value, json};

fn provisioner(name: &str, s: &Slapd, extra: Value) -> Value {
    let mut props: Value = serde_json::from_str(&s.configuration_properties()).unwrap();
    for (k, v) in extra.as_object().unwrap() {
        props[k] = v.clone();
    }
    json!({
        "name": name,
        "connectorRef": {"connectorName": "org.identityconnectors.ldap.LdapConnector"},
        "configurationProperties": props,
        "objectTypes": {"account": {"nativeType": "__ACCOUNT__", "properties": {
            "dn": {"type": "string", "nativeName": "__NAME__"},
            "uid": {"type": "string", "nativeName": "uid"},
            "cn": {"type": "string", "nativeName": "cn"},
            "sn": {"type": "string", "nativeName": "sn"}
        }}}
    })
}

const POLICIES: &str = r#"[
    {"situation": "ABSENT", "action": "CREATE"},
    {"situation": "CONFIRMED", "action": "UPDATE"},
    {"situation": "FOUND", "action": "UPDATE"},
    {"situation": "MISSING", "action": "CREATE"},
    {"situation": "SOURCE_MISSING", "action": "DELETE"}
]"#;

fn project(src: &Slapd, src_sync: Value, dst: &Slapd) -> Project {
    let p = Project {
        dir: tempfile::tempdir().unwrap(),
    };
    p.write(
        "conf/provisioner.openicf-src.json",
        &provisioner("src", src, src_sync).to_string(),
    );
    p.write(
        "conf/provisioner.openicf-dst.json",
        &provisioner("dst", dst, json!({})).to_string(),
    );
    p.write(
        "conf/managed.json",
        r#"{"objects":[{"name":"user","schema":{}}]}"#,
    );
    let policies: Value = serde_json::from_str(POLICIES).unwrap();
    p.write(
        "conf/sync.json",
        &json!({"mappings": [
            {
                "name": "src_managedUser",
                "source": "system/src/account",
                "target": "managed/user",
                "properties": [
                    {"source": "uid", "target": "userName"},
                    {"source": "cn", "target": "cn"},
                    {"source": "sn", "target": "sn"}
                ],
                "policies": policies
            },
            {
                "name": "managedUser_dst",
                "source": "managed/user",
                "target": "system/dst/account",
                "properties": [
                    {"source": "userName", "target": "dn", "transform": {
                        "type": "text/javascript",
                        "source": format!("'uid=' + source + ',{PEOPLE}'")}},
                    {"source": "userName", "target": "uid"},
                    {"source": "cn", "target": "cn"},
                    {"source": "sn", "target": "sn"}
                ],
                "policies": policies
            }
        ]})
        .to_string(),
    );
    p
}

fn person(uid: &str, cn: &str) -> Value {
    json!({"dn": format!("uid={uid},{PEOPLE}"), "uid": uid, "cn": cn, "sn": "Tester"})
}

async fn live_sync(s: &Server) -> Value {
    let (status, body) = s.post("system/src/account?_action=liveSync", None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("lastException").is_none(), "{body}");
    body
}

/// `(uid or userName, cn)` of every object of `path`, sorted.
async fn people(s: &Server, path: &str, name: &str) -> Vec<(String, String)> {
    let (status, body) = s.get(&format!("{path}?_queryFilter=true")).await;
    assert_eq!(status, 200, "{body}");
    let mut out: Vec<(String, String)> = body["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o[name].as_str().unwrap_or("").to_string(),
                o["cn"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

async fn create(s: &Server, uid: &str, cn: &str) -> String {
    let (status, body) = s
        .post("system/src/account?_action=create", Some(person(uid, cn)))
        .await;
    assert_eq!(status, 201, "{body}");
    body["_id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn accesslog_live_sync_carries_creates_updates_and_deletes_downstream() {
    let src = Slapd::start_with_accesslog("");
    let dst = Slapd::start();
    let p = project(&src, json!({"accessLogDatabase": ACCESSLOG}), &dst);
    let mut s = Server::start(p.path());
    let first = live_sync(&s).await;
    assert!(
        first["connectorData"]["syncToken"]["time"].is_string(),
        "{first}"
    );

    let a = create(&s, "a", "Alice").await;
    let b = create(&s, "b", "Bob").await;
    live_sync(&s).await;
    assert_eq!(
        people(&s, "managed/user", "userName").await,
        pairs(&[("a", "Alice"), ("b", "Bob")])
    );
    assert_eq!(
        people(&s, "system/dst/account", "uid").await,
        pairs(&[("a", "Alice"), ("b", "Bob")])
    );

    let (status, body) = send(
        s.admin(Method::PUT, &format!("system/src/account/{a}"))
            .json(&person("a", "Alicia")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = send(s.admin(Method::DELETE, &format!("system/src/account/{b}"))).await;
    assert_eq!(status, 200, "{body}");
    let applied = live_sync(&s).await;
    assert_eq!(
        people(&s, "managed/user", "userName").await,
        pairs(&[("a", "Alicia")])
    );
    assert_eq!(
        people(&s, "system/dst/account", "uid").await,
        pairs(&[("a", "Alicia")])
    );

    // A pass with no change writes nothing.
    let quiet = live_sync(&s).await;
    assert_eq!(quiet["_rev"], applied["_rev"], "{quiet} {applied}");

    // The lag from each change's time in the directory (its accesslog reqStart) to its
    // application is measured: one sample per applied change (a, b; then a, and b's delete).
    let (status, metrics) = send(s.admin(Method::GET, "metrics/prometheus")).await;
    assert_eq!(status, 200);
    let text = metrics.as_str().unwrap_or_default();
    let sample = |name: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(name) && l.contains("source=\"system/src/account\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert_eq!(sample("idsync_livesync_lag_seconds_count"), 4.0, "{text}");
    assert_eq!(sample("idsync_livesync_changes_total"), 4.0, "{text}");
    let lag = sample("idsync_livesync_lag_seconds_sum");
    assert!(lag > 0.0, "{text}");

    // The token survives a restart: the next process applies only what changed since.
    assert!(s.sigterm().success());
    let s = Server::start(p.path());
    create(&s, "c", "Carol").await;
    live_sync(&s).await;
    assert_eq!(
        people(&s, "managed/user", "userName").await,
        pairs(&[("a", "Alicia"), ("c", "Carol")])
    );
    let (_, metrics) = send(s.admin(Method::GET, "metrics/prometheus")).await;
    let applied: f64 = metrics
        .as_str()
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("idsync_livesync_changes_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(applied, 1.0, "only c after the restart: {metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn timestamp_live_sync_carries_creates_and_updates_but_not_deletes() {
    let src = Slapd::start();
    let dst = Slapd::start();
    let p = project(&src, json!({"useTimestampsForSync": true}), &dst);
    let s = Server::start(p.path());
    live_sync(&s).await;

    let a = create(&s, "a", "Alice").await;
    let b = create(&s, "b", "Bob").await;
    live_sync(&s).await;
    assert_eq!(
        people(&s, "managed/user", "userName").await,
        pairs(&[("a", "Alice"), ("b", "Bob")])
    );
    let (status, body) = send(
        s.admin(Method::PUT, &format!("system/src/account/{a}"))
            .json(&person("a", "Alicia")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = send(s.admin(Method::DELETE, &format!("system/src/account/{b}"))).await;
    assert_eq!(status, 200, "{body}");
    let applied = live_sync(&s).await;
    // The update arrives; the delete cannot be seen by timestamps (docs/configuration.md).
    assert_eq!(
        people(&s, "managed/user", "userName").await,
        pairs(&[("a", "Alicia"), ("b", "Bob")])
    );
    assert_eq!(
        people(&s, "system/dst/account", "uid").await,
        pairs(&[("a", "Alicia"), ("b", "Bob")])
    );
    let quiet = live_sync(&s).await;
    assert_eq!(quiet["_rev"], applied["_rev"], "{quiet} {applied}");
}
