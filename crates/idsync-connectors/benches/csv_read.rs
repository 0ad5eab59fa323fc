//! Paged read of a generated 1M-row CSV (10 HR attributes) at page size 10,000, the way recon
//! reads a CSV source: rows/s for the whole file. Run with
//! `cargo bench -p idsync-connectors --bench csv_read` (IDSYNC_BENCH_ROWS overrides 1,000,000).
//! By default the file is in id order (the sorted-file fast path); IDSYNC_BENCH_UNSORTED=1
//! scrambles the ids, so every page is a full scan.

use idsync_connectors::Connector;
use idsync_connectors::csv::CsvConnector;
use idsync_core::QueryRequest;
use serde_json::json;
use std::io::Write;
use std::time::Instant;

const COLUMNS: [&str; 10] = [
    "uid",
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

fn main() {
    let rows: usize = std::env::var("IDSYNC_BENCH_ROWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let unsorted = std::env::var("IDSYNC_BENCH_UNSORTED").is_ok_and(|v| v == "1");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("hr.csv");
    let started = Instant::now();
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&path).expect("create csv"));
        writeln!(w, "{}", COLUMNS.join(",")).expect("write");
        for i in 0..rows {
            writeln!(
                w,
                "{:08},user{i},Given{},Family{},user{i}@example.com,Dept {},\"Engineer, level {}\",E{i},{:08},Site {}",
                if unsorted { (i * 7919) % rows } else { i },
                i % 977,
                i % 3371,
                i % 41,
                i % 5,
                i / 10,
                i % 13
            )
            .expect("write");
        }
        w.flush().expect("flush");
    }
    eprintln!("generated {rows} rows in {:.2?}", started.elapsed());

    let props: serde_json::Map<String, serde_json::Value> =
        serde_json::from_value(json!({"csvFile": path.to_string_lossy(), "headerUid": "uid"}))
            .expect("props");
    let types = json!({"account": {"properties": {
        "userName": {"type": "string"}, "givenName": {"type": "string"}, "sn": {"type": "string"},
        "mail": {"type": "string"}, "department": {"type": "string"}, "title": {"type": "string"},
        "employeeNumber": {"type": "string"}, "manager": {"type": "string"},
        "location": {"type": "string"}
    }}});
    let connector = CsvConnector::new("hr", &props, Some(&types), dir.path()).expect("connector");
    let set = connector.object_set("account").expect("object set");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let started = Instant::now();
        let count = set.count().await.expect("count");
        eprintln!("count() = {count:?} in {:.2?}", started.elapsed());

        let started = Instant::now();
        let mut request = QueryRequest {
            page_size: Some(10_000),
            ..QueryRequest::default()
        };
        let mut seen = 0usize;
        let mut pages = 0usize;
        loop {
            let page = set.query(&request).await.expect("query");
            seen += page.results.len();
            pages += 1;
            match page.cookie {
                Some(c) => request.cookie = Some(c),
                None => break,
            }
        }
        let elapsed = started.elapsed();
        assert_eq!(seen, rows, "every row exactly once");
        println!(
            "csv_read ({}): {rows} rows, page size 10000, {pages} pages in {:.2?}: {:.0} rows/s",
            if unsorted {
                "ids out of order: a scan per page"
            } else {
                "ids in order"
            },
            elapsed,
            rows as f64 / elapsed.as_secs_f64()
        );
    });
}
