//! Queries with the full CREST parameter set and envelope (docs/rest.md#the-query-language), on managed objects
//! in the repository and on the CSV connector.

use crate::harness::*;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;

async fn seed_users(s: &Server, n: usize) {
    for i in 0..n {
        let sn = ["Smith", "Jones", "Brown"][i % 3];
        let (status, body) = send(
            s.admin(Method::PUT, &format!("managed/user/id{i:03}"))
                .json(&json!({
                    "userName": format!("user{i:03}"),
                    "sn": sn,
                    "age": 20 + (i % 7),
                })),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
}

fn ids(body: &Value) -> Vec<String> {
    body["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["_id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn filters_fields_sort_and_envelope() {
    let s = Server::start().await;
    seed_users(&s, 12).await;

    let (status, body) = send(
        s.reader(Method::GET, "managed/user")
            .query(&[("_queryFilter", "sn eq \"smith\" and age ge 21")]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Smith: i = 0,3,6,9 with ages 20,23,26,22 → the last three (case-insensitive eq).
    let mut got = ids(&body);
    got.sort();
    assert_eq!(got, vec!["id003", "id006", "id009"]);
    assert_eq!(body["resultCount"], 3);
    assert_eq!(body["pagedResultsCookie"], Value::Null);
    assert_eq!(body["totalPagedResultsPolicy"], "NONE");
    assert_eq!(body["totalPagedResults"], -1);
    assert_eq!(body["remainingPagedResults"], -1);

    let (_, body) = send(s.admin(Method::GET, "managed/user").query(&[
        ("_queryFilter", "userName sw \"user00\""),
        ("_fields", "userName"),
        ("_sortKeys", "-userName"),
    ]))
    .await;
    assert_eq!(
        ids(&body),
        (0..10)
            .rev()
            .map(|i| format!("id{i:03}"))
            .collect::<Vec<_>>()
    );
    for o in body["result"].as_array().unwrap() {
        let keys: BTreeSet<&str> = o.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        assert!(keys.contains("userName") && !keys.contains("sn"), "{o}");
    }

    let (_, body) = send(s.admin(Method::GET, "managed/user").query(&[
        ("_queryFilter", "true"),
        ("_sortKeys", "sn,-age"),
        ("_fields", "sn,age"),
    ]))
    .await;
    let pairs: Vec<(String, i64)> = body["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["sn"].as_str().unwrap().to_string(),
                o["age"].as_i64().unwrap(),
            )
        })
        .collect();
    let mut expected = pairs.clone();
    expected.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    assert_eq!(pairs, expected);

    let (_, body) = send(s.admin(Method::GET, "managed/user?_queryId=query-all-ids")).await;
    assert_eq!(body["resultCount"], 12);
    assert!(body["result"][0].get("userName").is_none(), "{body}");

    // _prettyPrint indents the same document.
    let text = s
        .admin(
            Method::GET,
            "managed/user?_queryFilter=userName%20eq%20%22user001%22&_prettyPrint=true",
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("\n  \"result\""), "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["resultCount"], 1);
}

#[tokio::test]
async fn paging_cookies_return_every_object_once() {
    let s = Server::start().await;
    seed_users(&s, 25).await;
    let mut seen = Vec::new();
    let mut cookie: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut q = vec![
            ("_queryFilter".to_string(), "true".to_string()),
            ("_pageSize".to_string(), "10".to_string()),
            ("_sortKeys".to_string(), "userName".to_string()),
            ("_totalPagedResultsPolicy".to_string(), "EXACT".to_string()),
        ];
        if let Some(c) = &cookie {
            q.push(("_pagedResultsCookie".to_string(), c.clone()));
        }
        let (status, body) = send(s.admin(Method::GET, "managed/user").query(&q)).await;
        assert_eq!(status, 200, "{body}");
        // The late insert below is counted from the second page on.
        let total = if pages == 0 { 25 } else { 26 };
        assert_eq!(body["totalPagedResults"], total, "{body}");
        if pages == 0 {
            assert_eq!(body["remainingPagedResults"], 15, "{body}");
        }
        seen.extend(ids(&body));
        pages += 1;
        match body["pagedResultsCookie"].as_str() {
            Some(c) => cookie = Some(c.to_string()),
            None => break,
        }
        // A write between pages must not make the paging repeat or skip an object.
        if pages == 1 {
            send(
                s.admin(Method::PUT, "managed/user/zzz-late")
                    .json(&json!({"userName": "zzz"})),
            )
            .await;
        }
        assert!(pages < 10, "paging does not end");
    }
    let expected: Vec<String> = (0..25)
        .map(|i| format!("id{i:03}"))
        .chain(["zzz-late".to_string()])
        .collect();
    assert_eq!(seen, expected);

    // Offsets.
    let (_, body) = send(s.admin(Method::GET, "managed/user").query(&[
        ("_queryFilter", "true"),
        ("_pageSize", "5"),
        ("_pagedResultsOffset", "20"),
        ("_sortKeys", "userName"),
    ]))
    .await;
    assert_eq!(
        ids(&body),
        vec!["id020", "id021", "id022", "id023", "id024"]
    );
}

#[tokio::test]
async fn csv_system_queries_page_and_filter() {
    let s = Server::start_with(idsync_api::Limits::default(), 23).await;
    let mut seen = Vec::new();
    let mut cookie: Option<String> = None;
    loop {
        let mut q = vec![
            ("_queryFilter", "true".to_string()),
            ("_pageSize", "7".to_string()),
        ];
        if let Some(c) = &cookie {
            q.push(("_pagedResultsCookie", c.clone()));
        }
        let (status, body) = send(s.reader(Method::GET, "system/hr/account").query(&q)).await;
        assert_eq!(status, 200, "{body}");
        seen.extend(ids(&body));
        match body["pagedResultsCookie"].as_str() {
            Some(c) => cookie = Some(c.to_string()),
            None => break,
        }
    }
    seen.sort();
    let expected: Vec<String> = (0..23).map(|i| format!("u{i:04}")).collect();
    assert_eq!(seen, expected);

    let (_, body) = send(s.reader(Method::GET, "system/hr/account").query(&[
        (
            "_queryFilter",
            "department eq \"finance\" and userName co \"1\"",
        ),
        ("_fields", "mail"),
    ]))
    .await;
    let mut got = ids(&body);
    got.sort();
    // Finance: i % 3 == 1 → 1,4,7,10,13,16,19,22; with a "1" in userName: 1,10,13,16,19.
    assert_eq!(got, vec!["u0001", "u0010", "u0013", "u0016", "u0019"]);
    assert!(body["result"][0]["mail"].is_string());
    assert!(body["result"][0].get("sn").is_none(), "{body}");
}
