//! `idsync connector test`: a reachable system answers ok, an unreachable one ok:false (exit 1),
//! an unknown connector is a usage error.

use crate::support::{Project, idsync};

#[test]
fn connector_test_reports_reachability() {
    let p = Project::copy_of("samples/getting-started");
    let run = |name: &str| {
        idsync()
            .args(["connector", "test", "--project"])
            .arg(p.path())
            .arg(name)
            .output()
            .unwrap()
    };
    let ok = run("hr");
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(v, serde_json::json!({"name": "hr", "ok": true}));

    // A database-table connector pointing at a port nothing listens on.
    p.write(
        "conf/provisioner.openicf-db.json",
        r#"{"name": "db", "connectorRef": {"connectorName": "sql"},
            "configurationProperties": {"url": "postgres://postgres@127.0.0.1:9/none", "table": "t", "keyColumn": "id", "acquireTimeoutMs": 2000},
            "objectTypes": {"account": {"properties": {"id": {"type": "string", "nativeName": "__UID__"}}}}}"#,
    );
    let down = run("db");
    assert_eq!(
        down.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&down.stdout).unwrap();
    assert_eq!(v["ok"], false, "{v}");
    assert!(v["error"].as_str().unwrap().contains("unavailable"), "{v}");

    let unknown = run("nope");
    assert_eq!(unknown.status.code(), Some(2));
}
