//! Creates per second into a target, with C creates in flight at once on one object set (the
//! way a queue consumer runs a poll page of events): a table of a scratch PostgreSQL database
//! (`sql`) or a CSV file (`csv`). Run with
//! `cargo bench -p idsync-connectors --bench create_drain`; environment:
//! - `IDSYNC_BENCH_TARGET`: `sql`, `csv` or `both` (default `both`);
//! - `IDSYNC_BENCH_CREATES`: creates timed per run (default 20,000);
//! - `IDSYNC_BENCH_CONCURRENCY`: comma-separated in-flight counts (default `1,8,100`);
//! - `IDSYNC_BENCH_PREFILL`: rows already in the CSV file before the run (default 50,000);
//! - `IDSYNC_TEST_PG_URL`: the PostgreSQL admin URL (default
//!   `postgres://postgres@127.0.0.1:5432/postgres`), where a scratch database is made and dropped.
//!
//! The records have the 9 HR attributes of `idsync bench queue`. Each run checks that the target
//! then holds every row. Figures: docs/adr/0005-connector-write-coalescing.md.

use futures::StreamExt;
use idsync_connectors::csv::CsvConnector;
use idsync_connectors::sql::SqlConnector;
use idsync_connectors::{Connector, ObjectSet};
use serde_json::{Map, Value, json};
use sqlx::{AssertSqlSafe, Connection};
use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

const COLUMNS: [&str; 9] = [
    "userName",
    "givenName",
    "sn",
    "mail",
    "department",
    "title",
    "employeeNumber",
    "manager",
    "location",
];

fn object_types() -> Value {
    let props: Map<String, Value> = COLUMNS
        .iter()
        .map(|c| ((*c).to_owned(), json!({"type": "string", "nativeName": c})))
        .collect();
    json!({"account": {"nativeType": "__ACCOUNT__", "properties": props}})
}

fn record(i: usize) -> Value {
    json!({
        "userName": format!("user{i}"),
        "givenName": format!("Given{}", i % 977),
        "sn": format!("Family{}", i % 3371),
        "mail": format!("user{i}@example.com"),
        "department": format!("Dept {}", i % 41),
        "title": format!("Engineer, level {}", i % 5),
        "employeeNumber": format!("E{i}"),
        "manager": format!("{:08}", i / 10),
        "location": format!("Site {}", i % 13),
    })
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Runs `creates` creates with `concurrency` in flight; returns creates/s.
async fn drive(set: Arc<dyn ObjectSet>, first: usize, creates: usize, concurrency: usize) -> f64 {
    let started = Instant::now();
    let mut stream = futures::stream::iter(first..first + creates)
        .map(|i| {
            let set = Arc::clone(&set);
            async move {
                set.create(Some(&format!("{i:08}")), record(i))
                    .await
                    .unwrap_or_else(|e| panic!("create {i}: {e}"))
            }
        })
        .buffer_unordered(concurrency);
    while stream.next().await.is_some() {}
    creates as f64 / started.elapsed().as_secs_f64()
}

async fn bench_sql(creates: usize, concurrency: &[usize]) {
    let admin = std::env::var("IDSYNC_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let db = format!("idsync_bench_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL must run at {admin}: {e}"));
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {db}")))
        .execute(&mut conn)
        .await
        .expect("create database");
    let url = format!("{}/{db}", admin.rsplit_once('/').expect("admin URL path").0);
    let cols: Vec<String> = COLUMNS
        .iter()
        .map(|c| format!("\"{c}\" VARCHAR(128)"))
        .collect();
    let mut c = sqlx::PgConnection::connect(&url).await.expect("connect");
    sqlx::query(AssertSqlSafe(format!(
        "CREATE TABLE accounts (\"id\" VARCHAR(64) PRIMARY KEY, {})",
        cols.join(", ")
    )))
    .execute(&mut c)
    .await
    .expect("create table");
    let props: Map<String, Value> =
        serde_json::from_value(json!({"url": url, "table": "accounts", "keyColumn": "id"}))
            .expect("props");
    let connector = SqlConnector::new(
        "db",
        &props,
        Some(&object_types()),
        std::path::Path::new("/"),
    )
    .expect("connector");
    let set = connector.object_set("account").expect("set");
    let mut first = 0;
    for &n in concurrency {
        let rate = drive(Arc::clone(&set), first, creates, n).await;
        first += creates;
        println!("sql  in-flight {n:>4}: {creates} creates, {rate:>9.0} creates/s");
    }
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM accounts")
        .fetch_one(&mut c)
        .await
        .expect("count");
    assert_eq!(count as usize, first, "the table holds every row");
    c.close().await.expect("close");
    drop(set);
    drop(connector);
    sqlx::query(AssertSqlSafe(format!("DROP DATABASE {db} WITH (FORCE)")))
        .execute(&mut conn)
        .await
        .expect("drop database");
}

async fn bench_csv(creates: usize, concurrency: &[usize], prefill: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("hr.csv");
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&path).expect("create csv"));
        writeln!(w, "uid,{}", COLUMNS.join(",")).expect("write");
        for i in 0..prefill {
            let r = record(i);
            let cells: Vec<String> = COLUMNS
                .iter()
                .map(|c| {
                    let v = r[*c].as_str().unwrap_or_default();
                    if v.contains(',') {
                        format!("\"{v}\"")
                    } else {
                        v.to_owned()
                    }
                })
                .collect();
            writeln!(w, "p{i:08},{}", cells.join(",")).expect("write");
        }
        w.flush().expect("flush");
    }
    let props: Map<String, Value> =
        serde_json::from_value(json!({"csvFile": path.to_string_lossy(), "headerUid": "uid"}))
            .expect("props");
    let connector =
        CsvConnector::new("hr", &props, Some(&object_types()), dir.path()).expect("connector");
    let set = connector.object_set("account").expect("set");
    let mut first = 0;
    for &n in concurrency {
        let rate = drive(Arc::clone(&set), first, creates, n).await;
        first += creates;
        println!(
            "csv  in-flight {n:>4}: {creates} creates after {} rows, {rate:>9.0} creates/s",
            prefill + first - creates
        );
    }
    assert_eq!(
        set.count().await.expect("count"),
        Some((prefill + first) as u64),
        "the file holds every row"
    );
}

fn main() {
    let target = std::env::var("IDSYNC_BENCH_TARGET").unwrap_or_else(|_| "both".into());
    let creates: usize = env_or("IDSYNC_BENCH_CREATES", 20_000);
    let prefill: usize = env_or("IDSYNC_BENCH_PREFILL", 50_000);
    let concurrency: Vec<usize> = std::env::var("IDSYNC_BENCH_CONCURRENCY")
        .unwrap_or_else(|_| "1,8,100".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .filter(|n| *n > 0)
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        if target == "sql" || target == "both" {
            bench_sql(creates, &concurrency).await;
        }
        if target == "csv" || target == "both" {
            bench_csv(creates, &concurrency, prefill).await;
        }
    });
}
