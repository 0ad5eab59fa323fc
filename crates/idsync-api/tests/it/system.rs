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

/// Each node lists the work it holds now: its claimed jobs and its queued-mapping locks.
#[tokio::test]
async fn cluster_shows_the_jobs_and_queue_locks_each_node_holds() {
    let s = Server::start().await;
    let job = idsync_repo::Job::new("j1", "test.held", Some("r1".into()), json!({}));
    s.repo.enqueue_job(&job).await.unwrap();
    s.repo
        .claim_next(
            &["test.held"],
            "node-test",
            std::time::Duration::from_secs(600),
        )
        .await
        .unwrap()
        .unwrap();
    s.repo
        .try_acquire_lock("sync-queue/managedUser_ldap", "node-test")
        .await
        .unwrap()
        .unwrap();
    s.repo
        .heartbeat("node2", "elsewhere", chrono::Utc::now())
        .await
        .unwrap();
    s.repo
        .try_acquire_lock("sync-queue/managedGroup_ldap", "node2")
        .await
        .unwrap()
        .unwrap();

    let (status, body) = send(s.reader(Method::GET, "cluster")).await;
    assert_eq!(status, 200, "{body}");
    let node = |id: &str| {
        body["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["instanceId"] == id)
            .unwrap_or_else(|| panic!("no node {id} in {body}"))
            .clone()
    };
    let this = node("node-test");
    assert_eq!(this["jobs"].as_array().unwrap().len(), 1, "{this}");
    assert_eq!(this["jobs"][0]["_id"], "j1");
    assert_eq!(this["jobs"][0]["kind"], "test.held");
    assert_eq!(this["jobs"][0]["runId"], "r1");
    assert!(this["jobs"][0]["leaseUntil"].is_string(), "{this}");
    assert_eq!(
        this["locks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["mapping"].clone())
            .collect::<Vec<_>>(),
        vec![json!("managedUser_ldap")]
    );
    let other = node("node2");
    assert_eq!(other["jobs"], json!([]));
    assert_eq!(other["locks"][0]["mapping"], "managedGroup_ldap");
    assert_eq!(other["locks"][0]["name"], "sync-queue/managedGroup_ldap");
}
