//! Authentication (docs/rest.md#common-rules): 401 without credentials on every route but ping, 403
//! for a reader's writes, bearer tokens and IDM's username/password headers.

use crate::harness::*;
use reqwest::Method;
use serde_json::json;

const ROUTES: &[(&str, &str)] = &[
    ("GET", "managed/user?_queryFilter=true"),
    ("GET", "managed/user/x"),
    ("POST", "managed/user?_action=create"),
    ("PUT", "managed/user/x"),
    ("PATCH", "managed/user/x"),
    ("DELETE", "managed/user/x"),
    ("GET", "system/hr/account?_queryFilter=true"),
    ("GET", "system/hr/account/u0001"),
    ("POST", "system/hr?_action=test"),
    ("POST", "system/hr/account?_action=create"),
    ("DELETE", "system/hr/account/u0001"),
    ("GET", "repo/link?_queryFilter=true"),
    ("GET", "config/sync"),
    ("GET", "config/provisioner.openicf/hr"),
    ("GET", "audit/recon?_queryFilter=true"),
    ("GET", "audit/sync?_queryFilter=true"),
    ("GET", "cluster"),
    ("GET", "no/such/thing"),
];

#[tokio::test]
async fn every_route_but_ping_needs_credentials() {
    let s = Server::start().await;
    for (method, path) in ROUTES {
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let (status, body) = send(s.anon(m.clone(), path).json(&json!({}))).await;
        assert_crest_error(status, &body, 401, "authentication required");
        assert_eq!(body["reason"], "Unauthorized");

        let (status, body) = send(s.anon(m, path).bearer_auth("wrong-token")).await;
        assert_crest_error(status, &body, 401, "invalid credentials");
    }
    let (status, body) = send(s.anon(Method::GET, "info/ping")).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"_id":"","state":"ACTIVE_READY","shortDesc":"OpenIDM ready"})
    );
    s.stop().await;
}

#[tokio::test]
async fn readers_read_but_may_not_write() {
    let s = Server::start().await;
    let (status, body) = send(s.reader(Method::GET, "managed/user?_queryFilter=true")).await;
    assert_eq!(status, 200, "{body}");
    for (method, path) in ROUTES.iter().filter(|(m, _)| *m != "GET") {
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let (status, body) = send(s.reader(m, path).json(&json!({"userName": "x"}))).await;
        assert_crest_error(status, &body, 403, "may not");
        assert_eq!(body["reason"], "Forbidden");
    }
    // Nothing was written by the refused create.
    let (_, body) = send(s.admin(Method::GET, "managed/user?_queryFilter=true")).await;
    assert_eq!(body["resultCount"], 0);
}

#[tokio::test]
async fn idm_headers_with_argon2_password() {
    let s = Server::start().await;
    let ok = s
        .anon(Method::GET, "managed/user?_queryFilter=true")
        .header("X-OpenIDM-Username", USER)
        .header("X-OpenIDM-Password", USER_PASSWORD);
    let (status, body) = send(ok).await;
    assert_eq!(status, 200, "{body}");

    let bad = s
        .anon(Method::GET, "managed/user?_queryFilter=true")
        .header("X-OpenIDM-Username", USER)
        .header("X-OpenIDM-Password", "not it");
    let (status, body) = send(bad).await;
    assert_crest_error(status, &body, 401, "invalid credentials");
    assert!(!body.to_string().contains("not it"));
}

#[tokio::test]
async fn accept_api_version_is_ignored() {
    let s = Server::start().await;
    let (status, _) = send(
        s.admin(Method::GET, "managed/user?_queryFilter=true")
            .header("Accept-API-Version", "protocol=2.1,resource=1.0"),
    )
    .await;
    assert_eq!(status, 200);
}
