//! Managed-object CRUD with revisions and CREST preconditions, through the real repository.

use crate::harness::*;
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn create_read_update_patch_delete_with_revisions() {
    let s = Server::start().await;
    // POST ?_action=create with a server-assigned id.
    let (status, created) = send(
        s.admin(Method::POST, "managed/user?_action=create")
            .json(&json!({"userName": "bjensen", "mail": "bjensen@example.com"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["_id"].as_str().unwrap().to_string();
    let rev1 = created["_rev"].as_str().unwrap().to_string();
    assert_eq!(created["userName"], "bjensen");

    let resp = s
        .admin(Method::GET, &format!("managed/user/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["etag"].to_str().unwrap(),
        format!("\"{rev1}\"")
    );
    let read: Value = resp.json().await.unwrap();
    assert_eq!(read, created);

    // _fields on a read.
    let (_, partial) = send(s.admin(Method::GET, &format!("managed/user/{id}?_fields=mail"))).await;
    assert_eq!(
        partial,
        json!({"_id": id, "_rev": rev1, "mail": "bjensen@example.com"})
    );

    // PUT with the right If-Match replaces and bumps the revision.
    let (status, updated) = send(
        s.admin(Method::PUT, &format!("managed/user/{id}"))
            .header("If-Match", format!("\"{rev1}\""))
            .json(&json!({"userName": "bjensen", "mail": "babs@example.com"})),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    let rev2 = updated["_rev"].as_str().unwrap().to_string();
    assert_ne!(rev1, rev2);
    assert_eq!(updated["mail"], "babs@example.com");

    // A stale If-Match is a 412 and changes nothing.
    let (status, body) = send(
        s.admin(Method::PUT, &format!("managed/user/{id}"))
            .header("If-Match", rev1.as_str())
            .json(&json!({"userName": "mallory"})),
    )
    .await;
    assert_crest_error(status, &body, 412, "revision");
    let (_, now) = send(s.admin(Method::GET, &format!("managed/user/{id}"))).await;
    assert_eq!(now["userName"], "bjensen");

    // PATCH.
    let (status, patched) = send(
        s.admin(Method::PATCH, &format!("managed/user/{id}"))
            .header("If-Match", rev2.as_str())
            .json(&json!([
                {"operation": "replace", "field": "/mail", "value": "b@example.com"},
                {"operation": "add", "field": "/roles", "value": ["internal"]},
                {"operation": "remove", "field": "/userName"}
            ])),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["mail"], "b@example.com");
    assert_eq!(patched["roles"], json!(["internal"]));
    assert!(patched.get("userName").is_none());
    let rev3 = patched["_rev"].as_str().unwrap().to_string();

    let (status, body) = send(
        s.admin(Method::PATCH, &format!("managed/user/{id}"))
            .header("If-Match", rev2.as_str())
            .json(&json!([{"operation": "replace", "field": "/mail", "value": "x"}])),
    )
    .await;
    assert_crest_error(status, &body, 412, "revision");

    let (status, body) = send(
        s.admin(Method::PATCH, &format!("managed/user/{id}"))
            .json(&json!([{"operation": "replace", "field": "/_id", "value": "x"}])),
    )
    .await;
    assert_crest_error(status, &body, 400, "_id");

    // DELETE with a stale revision fails, with the current one succeeds.
    let (status, body) = send(
        s.admin(Method::DELETE, &format!("managed/user/{id}"))
            .header("If-Match", rev1.as_str()),
    )
    .await;
    assert_crest_error(status, &body, 412, "revision");
    let (status, deleted) = send(
        s.admin(Method::DELETE, &format!("managed/user/{id}"))
            .header("If-Match", rev3.as_str()),
    )
    .await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(deleted["_id"], id.as_str());
    let (status, body) = send(s.admin(Method::GET, &format!("managed/user/{id}"))).await;
    assert_crest_error(status, &body, 404, "not found");
    let (status, body) = send(s.admin(Method::DELETE, &format!("managed/user/{id}"))).await;
    assert_crest_error(status, &body, 404, "not found");
    s.stop().await;
}

#[tokio::test]
async fn put_with_client_ids_and_preconditions() {
    let s = Server::start().await;
    // If-None-Match: * creates...
    let (status, created) = send(
        s.admin(Method::PUT, "managed/user/scarter")
            .header("If-None-Match", "*")
            .json(&json!({"userName": "scarter"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["_id"], "scarter");
    // ...and refuses when the object exists.
    let (status, body) = send(
        s.admin(Method::PUT, "managed/user/scarter")
            .header("If-None-Match", "*")
            .json(&json!({"userName": "other"})),
    )
    .await;
    assert_crest_error(status, &body, 412, "already exists");
    // Without a precondition PUT replaces.
    let (status, replaced) = send(
        s.admin(Method::PUT, "managed/user/scarter")
            .json(&json!({"userName": "sam"})),
    )
    .await;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(replaced["userName"], "sam");
    // If-Match: * on a missing object is a 404.
    let (status, body) = send(
        s.admin(Method::PUT, "managed/user/ghost")
            .header("If-Match", "*")
            .json(&json!({"userName": "ghost"})),
    )
    .await;
    assert_crest_error(status, &body, 404, "not found");
    // A body _id that contradicts the path is refused.
    let (status, body) = send(
        s.admin(Method::PUT, "managed/user/scarter")
            .json(&json!({"_id": "other"})),
    )
    .await;
    assert_crest_error(status, &body, 400, "_id");
    // POST with a client _id, then again: the second is refused.
    let (status, body) = send(
        s.admin(Method::POST, "managed/user?_action=create")
            .json(&json!({"_id": "jdoe", "userName": "jdoe"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["_id"], "jdoe");
    let (status, body) = send(
        s.admin(Method::POST, "managed/user?_action=create")
            .json(&json!({"_id": "jdoe", "userName": "jdoe"})),
    )
    .await;
    assert_crest_error(status, &body, 412, "already exists");
}

#[tokio::test]
async fn increment_patch_without_if_match() {
    let s = Server::start().await;
    send(
        s.admin(Method::PUT, "managed/user/c")
            .json(&json!({"logins": 1})),
    )
    .await;
    for _ in 0..3 {
        let (status, body) = send(
            s.admin(Method::PATCH, "managed/user/c")
                .json(&json!([{"operation": "increment", "field": "logins", "value": 2}])),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let (_, body) = send(s.admin(Method::GET, "managed/user/c")).await;
    assert_eq!(body["logins"], 7);
}
