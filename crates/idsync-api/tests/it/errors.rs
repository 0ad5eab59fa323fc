//! Errors (docs/rest.md#common-rules): every bad request is a CREST 400/404/412 with a message,
//! never plain text, a 500 or a crash.

use crate::harness::*;
use idsync_api::Limits;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn malformed_requests_are_crest_errors() {
    let s = Server::start().await;
    let (status, body) = send(
        s.admin(Method::POST, "managed/user?_action=create")
            .header("content-type", "application/json")
            .body("{\"userName\": "),
    )
    .await;
    assert_crest_error(status, &body, 400, "not valid JSON");

    let (status, body) = send(
        s.admin(Method::POST, "managed/user?_action=create")
            .json(&json!(["not", "an", "object"])),
    )
    .await;
    assert_crest_error(status, &body, 400, "JSON object");

    let (status, body) =
        send(s.admin(Method::GET, "managed/user?_queryFilter=userName%20eq")).await;
    assert_crest_error(status, &body, 400, "invalid query filter");

    let (status, body) = send(s.admin(
        Method::GET,
        "system/hr/account?_queryFilter=(uid%20eq%20%22x%22",
    ))
    .await;
    assert_crest_error(status, &body, 400, "invalid query filter");

    let (status, body) =
        send(s.admin(Method::GET, "managed/user?_queryFilter=true&_pageSize=abc")).await;
    assert_crest_error(status, &body, 400, "_pageSize");

    // An extended operator the repository cannot evaluate is a 400, not a silent false.
    let (status, body) = send(
        s.admin(Method::GET, "managed/user")
            .query(&[("_queryFilter", "userName ew \"x\"")]),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], 400, "{body}");

    let (status, body) = send(s.admin(Method::GET, "managed/user")).await;
    assert_crest_error(status, &body, 400, "_queryFilter");

    let (status, body) = send(s.admin(Method::GET, "managed/unicorn/1")).await;
    assert_crest_error(status, &body, 404, "unicorn");

    let (status, body) = send(s.admin(Method::GET, "managed/user/nobody")).await;
    assert_crest_error(status, &body, 404, "not found");

    let (status, body) = send(s.admin(Method::GET, "system/ghost/account?_queryFilter=true")).await;
    assert_crest_error(status, &body, 404, "ghost");

    let (status, body) = send(s.admin(Method::GET, "system/hr/group?_queryFilter=true")).await;
    assert_crest_error(status, &body, 404, "group");

    let (status, body) = send(s.admin(Method::GET, "frobnicate")).await;
    assert_crest_error(status, &body, 404, "not found");

    let (status, body) = send(s.admin(Method::GET, "audit/access?_queryFilter=true")).await;
    assert_crest_error(status, &body, 404, "audit/access");

    let (status, body) = send(s.admin(Method::DELETE, "config/sync")).await;
    assert_crest_error(status, &body, 501, "not supported");

    let (status, body) = send(
        s.admin(Method::POST, "managed/user?_action=frob")
            .json(&json!({})),
    )
    .await;
    assert_crest_error(status, &body, 400, "frob");
}

#[tokio::test]
async fn oversized_bodies_and_pages_are_refused() {
    let limits = Limits {
        max_body_bytes: 1024,
        max_page_size: 50,
        ..Limits::default()
    };
    let s = Server::start_with(limits, 10).await;
    let big = json!({"userName": "x".repeat(2000)});
    let (status, body) = send(
        s.admin(Method::POST, "managed/user?_action=create")
            .json(&big),
    )
    .await;
    assert_crest_error(status, &body, 400, "larger than 1024 bytes");

    let (status, body) =
        send(s.admin(Method::GET, "managed/user?_queryFilter=true&_pageSize=51")).await;
    assert_crest_error(status, &body, 400, "maximum of 50");
}

#[tokio::test]
async fn unpaged_queries_past_the_cap_ask_for_paging() {
    let limits = Limits {
        max_unpaged_results: 5,
        ..Limits::default()
    };
    let s = Server::start_with(limits, 8).await;
    let (status, body) = send(s.admin(Method::GET, "system/hr/account?_queryFilter=true")).await;
    assert_crest_error(status, &body, 400, "_pageSize");
    let (status, body) = send(s.admin(
        Method::GET,
        "system/hr/account?_queryFilter=department%20eq%20%22IT%22",
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["resultCount"], 2);
    assert_eq!(body["pagedResultsCookie"], serde_json::Value::Null);
}
