//! PostgreSQL repository benchmark: bulk creates of 1M users and 1M links through `commit`,
//! a keyset scan in pages of 10,000, link point lookups, 1,000 job claims, and the physical
//! baseline measured in the same run — a binary `COPY` of the same 1M rows into a plain
//! `(id text, obj jsonb)` table.
//!
//! `cargo bench -p idsync-repo --bench repo_pg` (env `IDSYNC_BENCH_PG_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`; `IDSYNC_BENCH_ROWS`, default 1,000,000).
//! It creates a database `idsync_bench_<random>` and drops it at the end.

#![allow(clippy::unwrap_used)] // a benchmark binary: any failure should stop it right there

use idsync_core::QueryRequest;
use idsync_repo::{ChangeSet, Job, Link, Op, Repository};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_postgres::NoTls;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;

const PAGE: usize = 10_000;

fn user(i: usize) -> Value {
    json!({
        "userName": format!("user{i:07}"),
        "givenName": format!("Given{}", i % 5000),
        "sn": format!("Surname{}", i % 20000),
        "mail": format!("user{i:07}@example.com"),
        "employeeNumber": i,
        "department": format!("Dept{}", i % 40),
        "title": format!("Title{}", i % 120),
        "telephoneNumber": format!("+1 555 {:07}", i),
        "city": format!("City{}", i % 300),
        "active": !i.is_multiple_of(10),
    })
}

fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    format!("{}/{db}{query}", &base[..host_end])
}

fn rate(n: usize, d: Duration) -> String {
    format!("{:.0}", n as f64 / d.as_secs_f64())
}

#[tokio::main]
async fn main() {
    let admin = std::env::var("IDSYNC_BENCH_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let rows: usize = std::env::var("IDSYNC_BENCH_ROWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let (admin_client, conn) = tokio_postgres::connect(&admin, NoTls).await.unwrap();
    tokio::spawn(conn);
    let name = format!("idsync_bench_{}", uuid::Uuid::new_v4().simple());
    admin_client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let url = with_database(&admin, &name);
    let result = run(&url, rows).await;
    admin_client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .unwrap();
    println!("{result}");
}

async fn run(url: &str, rows: usize) -> String {
    let repo: Arc<dyn Repository> = idsync_repo::open(url).await.unwrap();
    let mut report = String::new();
    let mut line = |what: &str, n: usize, d: Duration, unit: &str| {
        let l = format!(
            "| {what} | {n} | {:.2} s | {} {unit} |\n",
            d.as_secs_f64(),
            rate(n, d)
        );
        eprint!("{l}");
        report.push_str(&l);
    };

    // Baseline first, on a cold table of its own: binary COPY of the same rows.
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(conn);
    client
        .batch_execute("CREATE TABLE baseline (id text PRIMARY KEY, obj jsonb NOT NULL)")
        .await
        .unwrap();
    let t = Instant::now();
    let sink = client
        .copy_in("COPY baseline (id, obj) FROM STDIN BINARY")
        .await
        .unwrap();
    let writer = BinaryCopyInWriter::new(sink, &[Type::TEXT, Type::JSONB]);
    let mut writer = std::pin::pin!(writer);
    for i in 0..rows {
        let id = format!("u{i:07}");
        let mut obj = user(i);
        obj["_id"] = json!(id);
        obj["_rev"] = json!("1");
        writer.as_mut().write(&[&id, &obj]).await.unwrap();
    }
    writer.finish().await.unwrap();
    let baseline = t.elapsed();
    line(
        "baseline: binary COPY into (id text PK, obj jsonb)",
        rows,
        baseline,
        "rows/s",
    );

    // Users through commit, one change set per page of 10,000.
    let t = Instant::now();
    for start in (0..rows).step_by(PAGE) {
        let mut cs = ChangeSet::new();
        for i in start..(start + PAGE).min(rows) {
            cs.push(Op::CreateObject {
                object_type: "user".into(),
                id: format!("u{i:07}"),
                value: user(i),
            });
        }
        repo.commit(cs).await.unwrap();
    }
    let users = t.elapsed();
    line(
        "commit: create managed/user (10,000 per change set)",
        rows,
        users,
        "objects/s",
    );

    let t = Instant::now();
    for start in (0..rows).step_by(PAGE) {
        let mut cs = ChangeSet::new();
        for i in start..(start + PAGE).min(rows) {
            cs.push(Op::CreateLink(Link {
                id: format!("l{i:07}"),
                rev: String::new(),
                link_type: "hr_user".into(),
                link_qualifier: "default".into(),
                first_id: format!("hr{i:07}"),
                second_id: format!("u{i:07}"),
            }));
        }
        repo.commit(cs).await.unwrap();
    }
    line(
        "commit: create links (10,000 per change set)",
        rows,
        t.elapsed(),
        "links/s",
    );

    // What autovacuum does shortly after a bulk load: without statistics the planner
    // under-estimates the table and sorts instead of walking the primary key.
    client
        .batch_execute("ANALYZE objects; ANALYZE links")
        .await
        .unwrap();
    let t = Instant::now();
    let mut cookie = None;
    let mut seen = 0;
    loop {
        let q = QueryRequest {
            page_size: Some(PAGE),
            cookie: cookie.take(),
            ..QueryRequest::default()
        };
        let page = repo.query_objects("user", &q).await.unwrap();
        seen += page.results.len();
        match page.cookie {
            Some(c) => cookie = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, rows);
    line(
        "keyset scan of managed/user, pages of 10,000",
        seen,
        t.elapsed(),
        "objects/s",
    );

    let lookups = 10_000.min(rows);
    let t = Instant::now();
    for k in 0..lookups {
        let i = (k * 7919) % rows;
        let l = repo
            .link_by_first("hr_user", "default", &format!("hr{i:07}"))
            .await
            .unwrap();
        assert!(l.is_some());
    }
    line(
        "link point lookup (link_by_first, sequential)",
        lookups,
        t.elapsed(),
        "lookups/s",
    );

    for i in 0..1000 {
        repo.enqueue_job(&Job::new(
            format!("j{i:04}"),
            "page",
            Some("r".into()),
            json!({}),
        ))
        .await
        .unwrap();
    }
    let mut latencies = Vec::with_capacity(1000);
    let t = Instant::now();
    loop {
        let one = Instant::now();
        if repo
            .claim_next(&["page"], "n1", Duration::from_secs(60))
            .await
            .unwrap()
            .is_none()
        {
            break;
        }
        latencies.push(one.elapsed());
    }
    let claims = t.elapsed();
    assert_eq!(latencies.len(), 1000);
    latencies.sort();
    line(
        "job claims (claim_next, sequential)",
        1000,
        claims,
        "claims/s",
    );
    report.push_str(&format!(
        "\nclaim latency p50 {:.2} ms, p99 {:.2} ms; commit/COPY time ratio for users: {:.2}\n",
        latencies[500].as_secs_f64() * 1e3,
        latencies[990].as_secs_f64() * 1e3,
        users.as_secs_f64() / baseline.as_secs_f64()
    ));
    report
}
