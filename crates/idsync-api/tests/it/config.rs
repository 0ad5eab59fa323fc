//! `GET config` (docs/rest.md): effective configuration with secrets masked.

use crate::harness::*;
use reqwest::Method;

#[tokio::test]
async fn config_documents_mask_secrets() {
    let s = Server::start().await;
    let (status, body) = send(s.admin(Method::GET, "config/provisioner.openicf/hr")).await;
    assert_eq!(status, 200, "{body}");
    let props = &body["configurationProperties"];
    assert_eq!(props["password"], "********");
    assert_eq!(props["credentials"], "********");
    assert_eq!(props["csvFile"], "data/hr.csv");
    assert!(!body.to_string().contains(CSV_PASSWORD));

    let (status, body) = send(s.admin(Method::GET, "config/sync")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["mappings"][0]["name"], "systemHrAccounts_managedUser");

    let (status, body) = send(s.reader(Method::GET, "config/managed")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["objects"][0]["name"], "user");

    let (status, body) = send(s.admin(Method::GET, "config")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.to_string().contains("provisioner.openicf/hr"));

    let (status, body) = send(s.admin(Method::GET, "config/nope")).await;
    assert_crest_error(status, &body, 404, "config/nope");
    let (status, body) = send(s.admin(Method::GET, "config/provisioner.openicf/ghost")).await;
    assert_crest_error(status, &body, 404, "not found");
}
