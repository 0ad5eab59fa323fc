//! Paging cookies of the real `idsync serve` are signed (docs/SECURITY.md): a cookie that was
//! changed, made up, issued by another server or brought to another query is a CREST 400 on
//! both repositories; the nodes of a cluster accept each other's cookies, and a restarted
//! server its own.

use crate::server::{ADMIN_TOKEN, Server, assert_crest_error, send};
use crate::support::{PgDatabase, Project};
use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;

const USERS: usize = 7;

/// `samples/hr-to-managed` with `USERS` managed users stored through the API.
async fn with_users(s: &Server) {
    for i in 0..USERS {
        let (status, body) = send(
            s.admin(Method::PUT, &format!("managed/user/u{i}"))
                .json(&json!({"userName": format!("user{i}"), "sn": format!("S{}", i % 3)})),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
}

/// `GET managed/user?<pairs>` as admin.
async fn query(s: &Server, path: &str, pairs: &[(&str, &str)]) -> (u16, Value) {
    send(
        s.http()
            .get(s.url(path))
            .query(pairs)
            .bearer_auth(ADMIN_TOKEN),
    )
    .await
}

/// The first page of `_queryFilter=true&_sortKeys=sn,userName&_pageSize=2` on `s`.
async fn first_cookie(s: &Server) -> String {
    let (status, page) = query(
        s,
        "managed/user",
        &[
            ("_queryFilter", "true"),
            ("_sortKeys", "sn,userName"),
            ("_pageSize", "2"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    page["pagedResultsCookie"]
        .as_str()
        .unwrap_or_else(|| panic!("no cookie: {page}"))
        .to_string()
}

/// Walks every page, each next page asked from the next server of `servers` in turn; returns
/// the ids in page order and asserts that none comes twice.
async fn walk(servers: &[&Server]) -> Vec<String> {
    let mut cookie: Option<String> = None;
    let mut ids = Vec::new();
    for turn in 0..=USERS {
        let s = servers[turn % servers.len()];
        let mut pairs = vec![
            ("_queryFilter", "true"),
            ("_sortKeys", "sn,userName"),
            ("_pageSize", "2"),
            ("_fields", "userName"),
        ];
        if let Some(c) = &cookie {
            pairs.push(("_pagedResultsCookie", c));
        }
        let (status, page) = query(s, "managed/user", &pairs).await;
        assert_eq!(status, 200, "page {turn}: {page}");
        for o in page["result"].as_array().unwrap() {
            ids.push(o["_id"].as_str().unwrap().to_string());
        }
        match page["pagedResultsCookie"].as_str() {
            Some(c) => cookie = Some(c.to_string()),
            None => {
                let unique: BTreeSet<&String> = ids.iter().collect();
                assert_eq!(unique.len(), ids.len(), "an object came twice: {ids:?}");
                return ids;
            }
        }
    }
    panic!("more pages than {USERS} objects can fill: {ids:?}");
}

/// Every way a client can bring a cookie the server did not give it for this query: each is a
/// CREST 400 that names the cookie, and the server still answers the honest query.
async fn forged_cookies_are_refused(s: &Server, foreign: &str) {
    let good = first_cookie(s).await;
    let (inner, tag) = good.rsplit_once('.').expect("a signed cookie");
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    // The backend's cookie alone, and one made up in the backend's own format.
    let made_up = b64.encode(json!({"k": ["S0", "user0"], "i": "u0"}).to_string());
    let flip = |s: &str, at: usize| -> String {
        let mut b = s.as_bytes().to_vec();
        b[at] = if b[at] == b'A' { b'B' } else { b'A' };
        String::from_utf8(b).unwrap()
    };
    let forged = [
        (
            "the backend's cookie without its signature",
            inner.to_string(),
        ),
        ("a cookie in the backend's format", made_up.clone()),
        (
            "a made-up cookie with a made-up signature",
            format!("{made_up}.{tag}"),
        ),
        (
            "a changed position",
            format!("{}.{tag}", flip(inner, inner.len() / 2)),
        ),
        ("a changed signature", format!("{inner}.{}", flip(tag, 0))),
        ("another server's cookie", foreign.to_string()),
    ];
    for (what, cookie) in &forged {
        let (status, body) = query(
            s,
            "managed/user",
            &[
                ("_queryFilter", "true"),
                ("_sortKeys", "sn,userName"),
                ("_pageSize", "2"),
                ("_pagedResultsCookie", cookie),
            ],
        )
        .await;
        assert_eq!(status, 400, "{what} was accepted: {body}");
        assert_crest_error(status, &body, 400, "_pagedResultsCookie");
    }
    // The server's own cookie, brought to another query or resource.
    for (what, path, pairs) in [
        (
            "other sort keys",
            "managed/user",
            vec![("_queryFilter", "true"), ("_sortKeys", "userName")],
        ),
        (
            "another filter",
            "managed/user",
            vec![
                ("_queryFilter", "sn eq \"S1\""),
                ("_sortKeys", "sn,userName"),
            ],
        ),
        (
            "another resource",
            "repo/link",
            vec![("_queryFilter", "true"), ("_sortKeys", "sn,userName")],
        ),
    ] {
        let mut pairs = pairs;
        pairs.extend([("_pageSize", "2"), ("_pagedResultsCookie", good.as_str())]);
        let (status, body) = query(s, path, &pairs).await;
        assert_eq!(status, 400, "a cookie for {what} was accepted: {body}");
        assert_crest_error(status, &body, 400, "_pagedResultsCookie");
    }
    // An unpaged (streamed) query checks the cookie too.
    let (status, body) = query(
        s,
        "managed/user",
        &[
            ("_queryFilter", "true"),
            ("_sortKeys", "sn,userName"),
            ("_pagedResultsCookie", &made_up),
        ],
    )
    .await;
    assert_crest_error(status, &body, 400, "_pagedResultsCookie");
    // The honest cookie still works, and changing _fields between pages is allowed.
    let (status, page) = query(
        s,
        "managed/user",
        &[
            ("_queryFilter", "true"),
            ("_sortKeys", "sn,userName"),
            ("_pageSize", "2"),
            ("_fields", "sn"),
            ("_pagedResultsCookie", &good),
        ],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["resultCount"], 2, "{page}");
    let (status, ping) = send(s.http().get(s.url("info/ping"))).await;
    assert_eq!(status, 200, "{ping}");
}

#[tokio::test(flavor = "multi_thread")]
async fn paging_cookies_are_signed_on_sqlite_and_survive_a_restart() {
    let p = Project::copy_of("samples/hr-to-managed");
    let other = Project::copy_of("samples/hr-to-managed");
    let s = Server::start(p.path());
    with_users(&s).await;
    let foreign_server = Server::start(other.path());
    with_users(&foreign_server).await;
    let foreign = first_cookie(&foreign_server).await;
    forged_cookies_are_refused(&s, &foreign).await;

    let all = walk(&[&s]).await;
    assert_eq!(all.len(), USERS, "{all:?}");
    // The key lives in the repository: a cookie outlives the process that issued it.
    let cookie = first_cookie(&s).await;
    drop(s);
    let s = Server::start(p.path());
    let (status, page) = query(
        &s,
        "managed/user",
        &[
            ("_queryFilter", "true"),
            ("_sortKeys", "sn,userName"),
            ("_pageSize", "2"),
            ("_pagedResultsCookie", &cookie),
        ],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let ids: Vec<&str> = page["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, &all[2..4], "{page}");
}

#[tokio::test(flavor = "multi_thread")]
async fn paging_cookies_are_signed_on_postgres_and_shared_by_the_cluster() {
    let p = Project::copy_of("samples/hr-to-managed");
    let db = PgDatabase::create();
    let n1 = Server::start_with(p.path(), &[], &["--repo", &db.url, "--node-id", "node1"]);
    let n2 = Server::start_with(p.path(), &[], &["--repo", &db.url, "--node-id", "node2"]);
    with_users(&n1).await;
    let other_db = PgDatabase::create();
    let foreign_server = Server::start_with(
        p.path(),
        &[],
        &["--repo", &other_db.url, "--node-id", "other"],
    );
    with_users(&foreign_server).await;
    let foreign = first_cookie(&foreign_server).await;
    forged_cookies_are_refused(&n1, &foreign).await;
    forged_cookies_are_refused(&n2, &foreign).await;
    // Each page asked from the other node: every object once, in the same order as from one.
    let alone = walk(&[&n1]).await;
    assert_eq!(alone.len(), USERS, "{alone:?}");
    assert_eq!(walk(&[&n1, &n2]).await, alone);
    assert_eq!(walk(&[&n2, &n1]).await, alone);
}
