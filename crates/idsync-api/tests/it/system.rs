//! System objects through the CSV connector: CRUD, `?_action=test`, `?_action=schema`.

use crate::harness::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn csv_crud_test_and_schema() {
    let s = Server::start().await;
    let (status, body) = send(s.admin(Method::POST, "system/hr?_action=test")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"name": "hr", "ok": true}));

    let (status, body) = send(s.admin(Method::POST, "system/hr?_action=schema")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.to_string().contains("__ACCOUNT__"), "{body}");

    let (status, body) = send(s.admin(Method::GET, "system/hr/account/u0003")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["userName"], "user3");

    let (status, created) = send(
        s.admin(Method::POST, "system/hr/account?_action=create")
            .json(&json!({
                "_id": "u9999", "userName": "newbie", "givenName": "New", "sn": "Bie",
                "mail": "newbie@example.com", "department": "IT"
            })),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["_id"], "u9999");
    let csv = std::fs::read_to_string(s.dir.path().join("data/hr.csv")).unwrap();
    assert!(
        csv.contains("u9999,newbie,New,Bie,newbie@example.com,IT"),
        "{csv}"
    );

    let (status, body) = send(
        s.admin(Method::POST, "system/hr/account?_action=create")
            .json(&json!({"_id": "u9999", "userName": "dup"})),
    )
    .await;
    assert_crest_error(status, &body, 409, "already exists");

    let (status, body) = send(
        s.admin(Method::PATCH, "system/hr/account/u9999")
            .json(&json!([{"operation": "replace", "field": "/mail", "value": "nb@example.com"}])),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["mail"], "nb@example.com");

    let (status, body) = send(
        s.admin(Method::PUT, "system/hr/account/u9999")
            .json(&json!({
                "userName": "newbie", "givenName": "Newer", "sn": "Bie",
                "mail": "nb@example.com", "department": "Sales"
            })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["department"], "Sales");

    let (status, body) = send(s.admin(Method::DELETE, "system/hr/account/u9999")).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = send(s.admin(Method::GET, "system/hr/account/u9999")).await;
    assert_crest_error(status, &body, 404, "not found");
    let csv = std::fs::read_to_string(s.dir.path().join("data/hr.csv")).unwrap();
    assert!(!csv.contains("u9999"));
}

#[tokio::test]
async fn a_broken_connector_tests_false_and_answers_503_or_4xx() {
    let s = Server::start().await;
    std::fs::remove_file(s.dir.path().join("data/hr.csv")).unwrap();
    let (status, body) = send(s.admin(Method::POST, "system/hr?_action=test")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ok"], false, "{body}");
    assert!(body["error"].is_string(), "{body}");
    let (status, body) = send(s.admin(Method::POST, "system?_action=test")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body[0]["ok"], false, "{body}");
}

#[tokio::test]
async fn cluster_lists_this_node_and_links_and_audit_answer_empty() {
    let s = Server::start().await;
    let (status, body) = send(s.reader(Method::GET, "cluster")).await;
    assert_eq!(status, 200, "{body}");
    let nodes = body["results"].as_array().unwrap();
    assert!(
        nodes
            .iter()
            .any(|n| n["instanceId"] == "node-test" && n["state"] == "STATE_RUNNING"),
        "{body}"
    );
    let (status, body) = send(s.reader(Method::GET, "repo/link?_queryFilter=true")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["resultCount"], 0);
    for topic in ["recon", "sync"] {
        let (status, body) =
            send(s.reader(Method::GET, &format!("audit/{topic}?_queryFilter=true"))).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["result"], json!([]));
    }
}
