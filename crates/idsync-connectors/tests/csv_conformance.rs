//! The conformance suite and the CSV-specific failure cases against real files in a temp dir.

#![allow(clippy::unwrap_used)] // Tests may unwrap.

use idsync_connectors::Connector;
use idsync_connectors::csv::CsvConnector;
use idsync_connectors::testsuite::{self, SuiteOptions};
use serde_json::{Map, Value, json};
use std::path::Path;

fn props(v: Value) -> Map<String, Value> {
    serde_json::from_value(v).unwrap()
}

fn connector(dir: &Path, file: &str) -> CsvConnector {
    CsvConnector::new(
        "hr",
        &props(json!({"csvFile": file, "headerUid": "uid"})),
        Some(&testsuite::account_object_types()),
        dir,
    )
    .unwrap()
}

#[tokio::test]
async fn csv_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hr.csv"),
        "uid,userName,givenName,sn,mail,description\n",
    )
    .unwrap();
    let c = connector(dir.path(), "hr.csv");
    c.test().await.unwrap();
    testsuite::run_all(c.object_set("account").unwrap(), &SuiteOptions::default()).await;
    // The header and column order survive every rewrite.
    let text = std::fs::read_to_string(dir.path().join("hr.csv")).unwrap();
    assert_eq!(text, "uid,userName,givenName,sn,mail,description\n");
}

#[tokio::test]
async fn csv_suite_runs_on_a_file_that_does_not_exist_yet() {
    let dir = tempfile::tempdir().unwrap();
    let c = connector(dir.path(), "fresh.csv");
    testsuite::run_all(c.object_set("account").unwrap(), &SuiteOptions::default()).await;
}
