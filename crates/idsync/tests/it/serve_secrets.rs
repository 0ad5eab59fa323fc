//! Secrets in the real `idsync serve` (docs/SECURITY.md): one masker for configuration shown
//! over REST (secrets by name, inside URLs, inside objects), write-only attributes
//! (`NOT_READABLE`, the password column) never read back, and errors that quote a URL without
//! its password.

use crate::server::{Server, send};
use crate::support::Project;
use reqwest::Method;
use serde_json::json;

const SECRETS: [&str; 7] = [
    "S3cretUrl",
    "S3cretCred",
    "S3cretPasswd",
    "S3cretPwd",
    "S3cretClientKey",
    "S3cretAccessKey",
    "S3cretToken",
];

#[tokio::test(flavor = "multi_thread")]
async fn config_secrets_are_masked_by_name_in_urls_and_objects() {
    let p = Project::copy_of("samples/hr-to-managed");
    p.write(
        "conf/provisioner.openicf-db.json",
        &json!({
            "name": "db",
            "enabled": false,
            "connectorRef": {"connectorName": "org.identityconnectors.databasetable.DatabaseTableConnector"},
            "configurationProperties": {
                "url": "postgres://u:S3cretUrl@127.0.0.1:1/x",
                "credentials": {"type": "password", "value": "S3cretCred"},
                "passwd": "S3cretPasswd",
                "pwd": "S3cretPwd",
                "clientKey": "S3cretClientKey",
                "accessKey": "S3cretAccessKey",
                "refreshToken": "S3cretToken",
                "table": "people",
                "keyColumn": "id",
                "passwordColumn": "pw"
            },
            "objectTypes": {"account": {"properties": {
                "password": {"type": "string", "nativeName": "__PASSWORD__"}
            }}}
        })
        .to_string(),
    );
    let s = Server::start(p.path());
    let (status, body) = s.get("config/provisioner.openicf/db").await;
    assert_eq!(status, 200, "{body}");
    let text = body.to_string();
    for secret in SECRETS {
        assert!(!text.contains(secret), "{secret} shown: {body:#}");
    }
    let c = &body["configurationProperties"];
    assert_eq!(c["url"], "postgres://u:********@127.0.0.1:1/x");
    assert_eq!(
        c["passwordColumn"], "pw",
        "where a secret lives stays readable"
    );
    assert_eq!(
        body["objectTypes"]["account"]["properties"]["password"]["nativeName"],
        "__PASSWORD__"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn write_only_attributes_are_never_read_back() {
    let p = Project::copy_of("samples/hr-to-managed");
    // A CSV with a password column and a PIN declared NOT_READABLE.
    let mut cfg: serde_json::Value =
        serde_json::from_str(&p.read("conf/provisioner.openicf-hr.json")).unwrap();
    cfg["configurationProperties"]["headerPassword"] = json!("password");
    let props = &mut cfg["objectTypes"]["account"]["properties"];
    props["password"] = json!({"type": "string", "nativeName": "__PASSWORD__"});
    props["pin"] = json!({"type": "string", "nativeName": "pin", "flags": ["NOT_READABLE"]});
    p.write("conf/provisioner.openicf-hr.json", &cfg.to_string());
    let csv = p.read("data/hr.csv");
    let mut lines = csv.lines();
    let mut out = format!("{},password,pin\n", lines.next().unwrap());
    for (i, l) in lines.enumerate() {
        out.push_str(&format!("{l},PwSecret{i},PinSecret{i}\n"));
    }
    p.write("data/hr.csv", &out);
    let s = Server::start(p.path());
    for path in [
        "system/hr/account?_queryFilter=true",
        "system/hr/account/u00000001",
        "system/hr/account?_queryFilter=true&_fields=pin,password,sn",
    ] {
        let (status, body) = s.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        let text = body.to_string();
        assert!(!text.contains("PwSecret"), "{path}: {text}");
        assert!(!text.contains("PinSecret"), "{path}: {text}");
    }
    // They cannot be probed with a filter either.
    let (status, body) = s
        .get("system/hr/account?_queryFilter=pin%20sw%20%22PinSecret1%22")
        .await;
    assert!(
        status == 400 || body["resultCount"] == 0,
        "{status}: {body}"
    );
    // A write still sets them.
    let (status, body) = send(
        s.admin(Method::PATCH, "system/hr/account/u00000001")
            .json(&json!([{"operation": "replace", "field": "/pin", "value": "PinNew"}])),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(!body.to_string().contains("PinNew"), "{body}");
    assert!(p.read("data/hr.csv").contains("PinNew"));
}
