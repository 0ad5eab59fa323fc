//! The real `idsync serve` under hostile and clumsy clients (docs/SECURITY.md): half-sent
//! requests are closed after the header timeout, framework rejections answer in the CREST
//! shape, no PATCH can store an object that later reads cannot parse, oversized or malformed
//! queries are 400s on both repositories, and a storm of bad logins leaves the server
//! answering. Each attack checks that the server still answers `info/ping` and that nothing
//! was written.

use crate::server::{Server, assert_crest_error, send};
use crate::support::{PgDatabase, Project};
use reqwest::Method;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// `samples/hr-to-managed` with one managed user `victim` stored through the API.
async fn with_victim(env: &[(&str, &str)], args: &[&str]) -> (Project, Server) {
    let p = Project::copy_of("samples/hr-to-managed");
    let s = Server::start_with(p.path(), env, args);
    let (status, body) = send(
        s.admin(Method::PUT, "managed/user/victim")
            .json(&json!({"userName": "victim", "sn": "Before", "d": {"x": "y".repeat(1000)}})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    (p, s)
}

/// Asserts that `info/ping` answers, on a new connection: a pooled keep-alive connection may
/// be closed by the server's header timeout just as it is reused (hyper then reports an
/// incomplete message), which says nothing about the server's health. The 10 s bound only
/// turns a hang into a failure.
async fn assert_responsive(s: &Server) {
    let started = Instant::now();
    let (status, body) = send(
        reqwest::Client::new()
            .get(s.url("info/ping"))
            .timeout(Duration::from_secs(10)),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    eprintln!("ping answered in {:?}", started.elapsed());
}

fn nested(levels: usize) -> Value {
    let mut v = json!("leaf");
    for _ in 0..levels {
        v = json!({ "n": v });
    }
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn half_sent_requests_are_closed_after_the_header_timeout() {
    let p = Project::copy_of("samples/hr-to-managed");
    let s = Server::start_with(p.path(), &[("IDSYNC_HEADER_TIMEOUT_MS", "1000")], &[]);
    let addr = s.base().trim_start_matches("http://").to_string();
    // A request line and one header, then nothing: the slowloris pattern.
    let sockets: Vec<TcpStream> = (0..200)
        .map(|_| {
            let mut c = TcpStream::connect(&addr).expect("connect");
            c.write_all(b"GET /openidm/info/ping HTTP/1.1\r\nHost: x\r\n")
                .expect("send half a request");
            c
        })
        .collect();
    assert_responsive(&s).await;
    // Every socket is closed by the server; the generous read bound only catches a hang
    // (before the header timer was armed they stayed open forever).
    let deadline = Instant::now() + Duration::from_secs(30);
    let closed = tokio::task::spawn_blocking(move || {
        sockets
            .into_iter()
            .filter(|c| {
                let left = deadline.saturating_duration_since(Instant::now());
                c.set_read_timeout(Some(left.max(Duration::from_millis(1))))
                    .unwrap();
                let mut buf = [0u8; 1024];
                let mut c = c;
                loop {
                    match c.read(&mut buf) {
                        Ok(0) => return true,
                        Ok(_) => continue,
                        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                        Err(_) => return false,
                    }
                }
            })
            .count()
    })
    .await
    .unwrap();
    assert_eq!(closed, 200, "half-sent requests left open");
    assert_responsive(&s).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn at_the_connection_cap_a_new_client_waits_for_a_free_connection() {
    const CAP: usize = 10;
    let p = Project::copy_of("samples/hr-to-managed");
    // A header timeout far beyond the test: only the test frees a connection.
    let s = Server::start_with(
        p.path(),
        &[
            ("IDSYNC_MAX_CONNECTIONS", "10"),
            ("IDSYNC_HEADER_TIMEOUT_MS", "600000"),
        ],
        &[],
    );
    let addr = s.base().trim_start_matches("http://").to_string();
    // CAP half-sent requests take every connection the server serves (it accepts in order).
    let mut held: Vec<TcpStream> = (0..CAP)
        .map(|_| {
            let mut c = TcpStream::connect(&addr).expect("connect");
            c.write_all(b"GET /openidm/info/ping HTTP/1.1\r\nHost: x\r\n")
                .expect("send half a request");
            c
        })
        .collect();
    // A new client (its own connection) is not served while they hold them...
    let ping = tokio::spawn({
        let url = s.url("info/ping");
        async move {
            send(
                reqwest::Client::new()
                    .get(url)
                    .timeout(Duration::from_secs(120)),
            )
            .await
        }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !ping.is_finished(),
        "answered past the cap of {CAP} connections: {:?}",
        ping.await
    );
    // ...and is served as soon as one of them ends.
    let mut first = held.remove(0);
    first
        .write_all(b"Connection: close\r\n\r\n")
        .expect("finish the request");
    let mut answer = String::new();
    first.read_to_string(&mut answer).expect("read the answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let (status, body) = ping.await.unwrap();
    assert_eq!(status, 200, "{body}");
    drop(held);
}

#[tokio::test(flavor = "multi_thread")]
async fn framework_rejections_answer_in_the_crest_shape() {
    let (_p, s) = with_victim(&[], &[]).await;
    let crest = |resp: reqwest::Response| async move {
        let status = resp.status().as_u16();
        let ctype = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let text = resp.text().await.unwrap();
        assert!(
            ctype.starts_with("application/json"),
            "{status} answered {ctype}: {text}"
        );
        (status, serde_json::from_str::<Value>(&text).unwrap())
    };
    // A path that is not UTF-8.
    let resp = s
        .admin(Method::GET, "managed/user/%FF")
        .send()
        .await
        .unwrap();
    let (status, body) = crest(resp).await;
    assert_crest_error(status, &body, 400, "utf-8");
    // Bad JSON.
    let resp = s
        .admin(Method::PUT, "managed/user/victim")
        .header("content-type", "application/json")
        .body("{\"userName\": ")
        .send()
        .await
        .unwrap();
    let (status, body) = crest(resp).await;
    assert_crest_error(status, &body, 400, "json");
    // A recon start body over the route's limit (on a client of its own: the server closes
    // the connection without reading the rest of the body).
    let resp = reqwest::Client::new()
        .post(s.url("recon?_action=recon&mapping=systemHrAccounts_managedUser"))
        .bearer_auth(crate::server::ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body(format!("{{\"x\":\"{}\"}}", "a".repeat(3 * 1024 * 1024)))
        .send()
        .await
        .unwrap();
    let (status, body) = crest(resp).await;
    assert_crest_error(status, &body, 413, "");
    // Nothing was started or changed.
    let (_, runs) = s.get("recon").await;
    assert_eq!(runs["reconciliations"], json!([]), "{runs}");
    let (status, victim) = s.get("managed/user/victim").await;
    assert_eq!(status, 200, "{victim}");
    assert_eq!(victim["sn"], "Before");
    assert_responsive(&s).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_patch_cannot_poison_an_object_on_sqlite() {
    let (_p, s) = with_victim(&[("IDSYNC_MAX_OBJECT_BYTES", "100000")], &[]).await;
    patch_attacks(&s).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_patch_cannot_poison_an_object_on_postgres() {
    let db = PgDatabase::create();
    let (_p, s) = with_victim(
        &[("IDSYNC_MAX_OBJECT_BYTES", "100000")],
        &["--repo", &db.url],
    )
    .await;
    patch_attacks(&s).await;
}

async fn patch_attacks(s: &Server) {
    let (_, before) = s.get("managed/user/victim").await;
    let patch = |ops: Value| {
        send(
            s.admin(Method::PATCH, "managed/user/victim")
                .json(&ops)
                .timeout(Duration::from_secs(60)),
        )
    };
    // Each value is well within the body parser's depth, the result is not: a path 100 deep
    // holding a value 100 deep.
    let path: String = (0..100).map(|i| format!("/p{i}")).collect();
    let (status, body) =
        patch(json!([{"operation": "add", "field": path, "value": nested(100)}])).await;
    assert_crest_error(status, &body, 400, "levels deep");
    // `copy` of an object into itself doubles it with each operation: 1 KB becomes 4 MB.
    let doubling: Vec<Value> = (0..12)
        .map(|i| json!({"operation": "copy", "from": "/d", "field": format!("/d/c{i}")}))
        .collect();
    let (status, body) = patch(Value::from(doubling)).await;
    assert_crest_error(status, &body, 400, "larger than the limit");
    // One doubling per request stops at the limit too.
    let mut refused = false;
    for i in 0..12 {
        let (status, body) =
            patch(json!([{"operation": "copy", "from": "/d", "field": format!("/d/c{i}")}])).await;
        if status == 400 {
            assert_crest_error(status, &body, 400, "larger than the limit");
            refused = true;
            break;
        }
        assert_eq!(status, 200, "{body}");
    }
    assert!(refused, "a 4 MB object was stored over a 100 kB limit");
    // A PUT over the size limit is refused as well.
    let (status, body) = send(
        s.admin(Method::PUT, "managed/user/deep")
            .json(&json!({"userName": "x", "big": "z".repeat(200_000)})),
    )
    .await;
    assert_crest_error(status, &body, 400, "larger than the limit");

    // The object still reads back, every query of the type still answers, and the refused
    // writes left nothing behind.
    let (status, after) = s.get("managed/user/victim").await;
    assert_eq!(status, 200, "{after}");
    assert!(after.get("p0").is_none(), "{after}");
    assert_eq!(after["userName"], before["userName"]);
    let (status, all) = s.get("managed/user?_queryFilter=true").await;
    assert_eq!(status, 200, "{all}");
    let (status, _) = s.get("managed/user/deep").await;
    assert_eq!(status, 404);
    assert_responsive(s).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_queries_are_400_on_sqlite() {
    let (_p, s) = with_victim(&[], &[]).await;
    query_attacks(&s).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_queries_are_400_on_postgres() {
    let db = PgDatabase::create();
    let (_p, s) = with_victim(&[], &["--repo", &db.url]).await;
    query_attacks(&s).await;
}

async fn query_attacks(s: &Server) {
    let q = |query: &str| {
        let url = format!("{}?{query}", s.url("managed/user"));
        send(s.http().get(url).bearer_auth(crate::server::ADMIN_TOKEN))
    };
    // Too many sort keys, with and without a forged cookie.
    let keys: Vec<String> = (0..300).map(|i| format!("k{i}")).collect();
    let (status, body) = q(&format!(
        "_queryFilter=true&_pageSize=1&_sortKeys={}",
        keys.join(",")
    ))
    .await;
    assert_crest_error(status, &body, 400, "_sortKeys");
    // Sixteen are fine.
    let (status, body) = q(&format!(
        "_queryFilter=true&_pageSize=1&_sortKeys={}",
        keys[..16].join(",")
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    // A forged cookie.
    let (status, body) =
        q("_queryFilter=true&_pageSize=1&_pagedResultsCookie=bm90LWEtY29va2ll").await;
    assert_crest_error(status, &body, 400, "cookie");
    // A NUL character in a field name and in a value: no match or a 400, never a 500.
    for filter in ["a%00b%20eq%20%22x%22", "userName%20eq%20%22a%00b%22"] {
        let (status, body) = q(&format!("_queryFilter={filter}")).await;
        match status {
            200 => assert_eq!(body["resultCount"], 0, "{body}"),
            _ => assert_crest_error(status, &body, 400, ""),
        }
    }
    // A flat `or` of many terms over many fields: answered under the limit, refused past it.
    let terms = |n: usize| -> String {
        (0..n)
            .map(|i| format!("f{}%20eq%20{i}", i % 50))
            .collect::<Vec<_>>()
            .join("%20or%20")
    };
    let (status, body) = q(&format!("_queryFilter={}", terms(999))).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = q(&format!("_queryFilter={}", terms(1500))).await;
    assert_crest_error(status, &body, 400, "terms");
    assert_responsive(s).await;
}

/// The value of an unlabelled metric in `GET metrics/prometheus` (0 before its first use).
async fn metric(s: &Server, name: &str) -> f64 {
    let (status, text) = s.get("metrics/prometheus").await;
    assert_eq!(status, 200, "{text}");
    let text = text.as_str().unwrap_or_default();
    text.lines()
        .filter_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .map(|v| v.trim().parse::<f64>().unwrap())
        .next()
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_storm_of_bad_logins_leaves_the_server_answering() {
    const STORM: usize = 100;
    let p = Project::copy_of("samples/hr-to-managed");
    p.write(
        "conf/authentication.json",
        &json!({"users": [{"username": "alice", "roles": ["reader"],
                           "password": idsync_api::hash_password("right").unwrap()}]})
        .to_string(),
    );
    let s = Server::start_with(p.path(), &[("IDSYNC_MAX_CONCURRENT_LOGINS", "2")], &[]);
    let mut storm = tokio::task::JoinSet::new();
    for i in 0..STORM {
        let req = s
            .http()
            .get(s.url("managed/user?_queryFilter=true"))
            .header(
                "X-OpenIDM-Username",
                if i % 2 == 0 { "alice" } else { "nobody" },
            )
            .header("X-OpenIDM-Password", "wrong");
        storm.spawn(async move { send(req).await });
    }
    // While the storm waits its turns, the server answers others at once (a bearer token
    // needs no password check), and never runs more than two verifications at a time.
    let (mut most_running, mut most_waiting) = (0.0f64, 0.0f64);
    let mut answers = Vec::new();
    let mut rounds = 0;
    while answers.len() < STORM || rounds < 5 {
        assert_responsive(&s).await;
        let (status, body) = s.get("managed/user?_queryFilter=true").await;
        assert_eq!(status, 200, "{body}");
        most_running = most_running.max(metric(&s, "idsync_password_checks_running").await);
        most_waiting = most_waiting.max(metric(&s, "idsync_password_checks_waiting").await);
        rounds += 1;
        while let Some(r) = storm.try_join_next() {
            answers.push(r.unwrap());
        }
    }
    for (status, body) in &answers {
        assert_crest_error(*status, body, 401, "");
    }
    eprintln!("at most {most_running} checks ran and {most_waiting} waited at once");
    assert!(
        most_running <= 2.0,
        "{most_running} password checks ran at once"
    );
    assert!(most_waiting > 0.0, "the storm never had to wait its turn");
    // Every wrong login cost exactly one verification, unknown users as much as alice.
    assert_eq!(
        metric(&s, "idsync_password_checks_total").await,
        STORM as f64
    );
    assert_eq!(metric(&s, "idsync_password_checks_waiting").await, 0.0);
    let (status, body) = send(
        s.http()
            .get(s.url("managed/user?_queryFilter=true"))
            .header("X-OpenIDM-Username", "alice")
            .header("X-OpenIDM-Password", "right"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        metric(&s, "idsync_password_checks_total").await,
        STORM as f64 + 1.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unpaged_query_returns_every_match_streamed() {
    let p = Project::copy_of("samples/hr-to-managed");
    let mut csv = String::from(
        "uid,userName,givenName,sn,mail,employeeNumber,department,telephoneNumber,city,accountStatus\n",
    );
    let n = 12_345;
    for i in 0..n {
        csv.push_str(&format!(
            "u{i:08},user{i},G,S,user{i}@example.com,{i},Sales,,Austin,active\n"
        ));
    }
    p.write("data/hr.csv", &csv);
    let s = Server::start(p.path());
    let (status, run) = s
        .post(
            "recon?_action=recon&mapping=systemHrAccounts_managedUser&waitForCompletion=true",
            None,
        )
        .await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["state"], "SUCCESS", "{run}");
    // More than the old refusal threshold (10,000), unpaged, as IDM's clients ask.
    for path in [
        "managed/user?_queryFilter=true",
        "managed/user?_queryFilter=true&_fields=userName&_totalPagedResultsPolicy=EXACT",
        "system/hr/account?_queryFilter=true",
    ] {
        let (status, body) = s.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        let result = body["result"].as_array().unwrap();
        assert_eq!(result.len(), n, "{path}");
        assert_eq!(body["resultCount"], n, "{path}");
        assert_eq!(body["pagedResultsCookie"], Value::Null, "{path}");
        let mut ids: Vec<&str> = result.iter().map(|o| o["_id"].as_str().unwrap()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), n, "{path}: every object exactly once");
    }
    let (_, exact) = s
        .get("managed/user?_queryFilter=true&_totalPagedResultsPolicy=EXACT")
        .await;
    assert_eq!(exact["totalPagedResults"], n);
    // An operator's cap still refuses, when set.
    drop(s);
    let s = Server::start_with(p.path(), &[("IDSYNC_MAX_UNPAGED_RESULTS", "100")], &[]);
    let (status, body) = s.get("managed/user?_queryFilter=true").await;
    assert_crest_error(status, &body, 400, "_pageSize");
    let (status, body) = s.get("managed/user?_queryFilter=true&_pageSize=50").await;
    assert_eq!(status, 200, "{body}");
}
