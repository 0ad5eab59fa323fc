//! Repository benchmark: bulk creates of 1M managed users (10 HR-style attributes) and 1M
//! links through `commit` in change sets of 10,000, a full keyset-paged scan at page size
//! 10,000, link point lookups by source id, and 1,000 job claims — plus, on SQLite, the
//! physical baseline in the same run: the `sqlite3` shell `.import` of the same rows as CSV.
//!
//! `cargo bench -p idsync-repo --bench repo -- sqlite` (a temporary file, removed at the end);
//! `cargo bench -p idsync-repo --bench repo -- postgres` runs the same repository-level
//! measurements against `IDSYNC_BENCH_PG_URL`, which must name a scratch database (the
//! PostgreSQL COPY baseline is in `benches/repo_pg.rs`). `IDSYNC_BENCH_ROWS` (default
//! 1,000,000) scales the row count.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark binary: fail loudly

use idsync_core::QueryRequest;
use idsync_repo::{ChangeSet, Job, Link, Op, Repository};
use serde_json::{Value, json};
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

const BATCH: usize = 10_000;

fn user(i: usize) -> Value {
    json!({
        "userName": format!("user{i:07}"),
        "givenName": format!("Given{}", i % 5000),
        "sn": format!("Surname{}", i % 20000),
        "mail": format!("user{i:07}@example.com"),
        "employeeNumber": i,
        "department": format!("Dept{}", i % 40),
        "title": format!("Title{}", i % 120),
        "telephoneNumber": format!("+1 555 {i:07}"),
        "city": format!("City{}", i % 300),
        "active": !i.is_multiple_of(10),
    })
}

fn id(i: usize) -> String {
    format!("{i:08}-0000-4000-8000-000000000000")
}

struct Figures {
    users: Duration,
    links: Duration,
    scan: Duration,
    scanned: usize,
    lookup_us: f64,
    claims: Duration,
}

async fn measure(repo: Arc<dyn Repository>, rows: usize) -> Figures {
    // Only `commit` is timed: building the values is the caller's work, as writing the CSV
    // is not part of the baseline.
    let mut users = Duration::ZERO;
    for start in (0..rows).step_by(BATCH) {
        let mut cs = ChangeSet::new();
        for i in start..(start + BATCH).min(rows) {
            cs.push(Op::CreateObject {
                object_type: "user".into(),
                id: id(i),
                value: user(i),
            });
        }
        let t = Instant::now();
        repo.commit(cs).await.unwrap();
        users += t.elapsed();
    }
    eprintln!("users: {users:?}");

    let mut links = Duration::ZERO;
    for start in (0..rows).step_by(BATCH) {
        let mut cs = ChangeSet::new();
        for i in start..(start + BATCH).min(rows) {
            cs.push(Op::CreateLink(Link {
                id: format!("l{i:08}"),
                rev: String::new(),
                link_type: "hrToManaged".into(),
                link_qualifier: "default".into(),
                first_id: format!("hr{i:08}"),
                second_id: id(i),
            }));
        }
        let t = Instant::now();
        repo.commit(cs).await.unwrap();
        links += t.elapsed();
    }
    eprintln!("links: {links:?}");

    let t = Instant::now();
    let mut q = QueryRequest {
        page_size: Some(BATCH),
        ..QueryRequest::default()
    };
    let mut scanned = 0;
    loop {
        let page = repo.query_objects("user", &q).await.unwrap();
        scanned += page.results.len();
        match page.cookie {
            Some(c) => q.cookie = Some(c),
            None => break,
        }
    }
    let scan = t.elapsed();
    assert_eq!(scanned, rows);
    eprintln!("scan: {scan:?}");

    let lookups = 10_000.min(rows);
    let t = Instant::now();
    let mut x: usize = 12345;
    for _ in 0..lookups {
        x = (x.wrapping_mul(1_103_515_245).wrapping_add(12345)) % rows;
        let l = repo
            .link_by_first("hrToManaged", "default", &format!("hr{x:08}"))
            .await
            .unwrap();
        assert!(l.is_some());
    }
    let lookup_us = t.elapsed().as_secs_f64() * 1e6 / lookups as f64;

    let mut cs = ChangeSet::new();
    for i in 0..1000 {
        cs.push(Op::EnqueueJob(Job::new(
            format!("job{i}"),
            "bench",
            Some("run".into()),
            json!({"page": i}),
        )));
    }
    repo.commit(cs).await.unwrap();
    let t = Instant::now();
    for _ in 0..1000 {
        repo.claim_next(&["bench"], "node", Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
    }
    let claims = t.elapsed();
    Figures {
        users,
        links,
        scan,
        scanned,
        lookup_us,
        claims,
    }
}

/// The `sqlite3` shell importing the same user rows from CSV into a plain table.
fn sqlite3_import_baseline(dir: &std::path::Path, rows: usize) -> Duration {
    let csv = dir.join("users.csv");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&csv).unwrap());
    for i in 0..rows {
        let mut v = user(i);
        v["_id"] = json!(id(i));
        v["_rev"] = json!("1");
        let obj = v.to_string().replace('"', "\"\"");
        writeln!(w, "user,{},1,\"{obj}\"", id(i)).unwrap();
    }
    w.flush().unwrap();
    drop(w);
    let db = dir.join("baseline.db");
    let t = Instant::now();
    let out = std::process::Command::new("sqlite3")
        .arg(&db)
        .arg("CREATE TABLE objects (object_type TEXT, id TEXT, rev INTEGER, obj TEXT)")
        .arg(".mode csv")
        .arg(format!(".import {} objects", csv.display()))
        .output()
        .expect("the sqlite3 shell must be installed");
    let took = t.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let count = std::process::Command::new("sqlite3")
        .arg(&db)
        .arg("SELECT COUNT(*) FROM objects")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&count.stdout).trim(),
        rows.to_string()
    );
    took
}

fn rate(n: usize, d: Duration) -> String {
    format!("{:.0} rows/s", n as f64 / d.as_secs_f64())
}

fn print(backend: &str, rows: usize, f: &Figures, baseline: Option<(&str, Duration)>) {
    println!("backend: {backend}, rows: {rows}");
    println!("| measurement | time | rate |");
    println!("|---|---|---|");
    println!(
        "| bulk insert users (commit, change sets of {BATCH}) | {:.2} s | {} |",
        f.users.as_secs_f64(),
        rate(rows, f.users)
    );
    println!(
        "| bulk insert links (commit, change sets of {BATCH}) | {:.2} s | {} |",
        f.links.as_secs_f64(),
        rate(rows, f.links)
    );
    println!(
        "| keyset scan, page size {BATCH} ({} objects) | {:.2} s | {} |",
        f.scanned,
        f.scan.as_secs_f64(),
        rate(f.scanned, f.scan)
    );
    println!(
        "| link point lookup by source id | {:.1} µs mean | |",
        f.lookup_us
    );
    println!(
        "| 1,000 job claims | {:.3} s | {:.0} µs/claim |",
        f.claims.as_secs_f64(),
        f.claims.as_secs_f64() * 1e3
    );
    if let Some((name, b)) = baseline {
        println!(
            "| baseline: {name} of the same user rows | {:.2} s | {} |",
            b.as_secs_f64(),
            rate(rows, b)
        );
        println!(
            "| ratio users insert / baseline | {:.2}× | target ≤ 3× |",
            f.users.as_secs_f64() / b.as_secs_f64()
        );
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let backend = args.first().map(String::as_str).unwrap_or("sqlite");
    let rows: usize = std::env::var("IDSYNC_BENCH_ROWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    match backend {
        "sqlite" => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}/bench.db", dir.path().display());
            let repo = idsync_repo::open(&url).await.unwrap();
            let f = measure(repo, rows).await;
            let b = sqlite3_import_baseline(dir.path(), rows);
            print("sqlite", rows, &f, Some(("sqlite3 shell .import (CSV)", b)));
        }
        "postgres" => {
            let url = std::env::var("IDSYNC_BENCH_PG_URL")
                .expect("set IDSYNC_BENCH_PG_URL to a scratch database");
            let repo = idsync_repo::open(&url).await.unwrap();
            let f = measure(repo, rows).await;
            print("postgres", rows, &f, None);
        }
        other => panic!("unknown backend {other}: use sqlite or postgres"),
    }
}
