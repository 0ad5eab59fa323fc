//! `managed/<type>` passes the same connector conformance suite as CSV, SQL and LDAP, on both
//! repository backends: a mapping can read and write managed objects like any system.

#![allow(clippy::unwrap_used)] // Tests may unwrap.

use idsync_connectors::ObjectSet;
use idsync_connectors::testsuite::{self, SuiteOptions};
use idsync_engine::managed_set::ManagedObjectSet;
use std::process::Command;
use std::sync::Arc;

fn options() -> SuiteOptions {
    // The repository evaluates every operator of the grammar in SQL; only the extended ones are
    // refused.
    SuiteOptions {
        unsupported_operators: vec!["ew", "ca", "ne"],
        ..SuiteOptions::default()
    }
}

#[tokio::test]
async fn managed_objects_on_sqlite_pass_the_connector_suite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("repo.db").display());
    let repo = idsync_repo::open(&url).await.unwrap();
    let set: Arc<dyn ObjectSet> = Arc::new(ManagedObjectSet::new(repo, "user"));
    testsuite::run_all(set, &options()).await;
}

#[tokio::test]
async fn managed_objects_on_postgresql_pass_the_connector_suite() {
    let admin = std::env::var("IDSYNC_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
    let name = format!("idsync_engine_{}", uuid::Uuid::new_v4().simple());
    let psql = |sql: String| {
        let out = Command::new("psql")
            .args([admin.as_str(), "-qc", &sql])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    psql(format!("CREATE DATABASE {name}"));
    let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
    let result = async move {
        let repo = idsync_repo::open(&url).await.unwrap();
        let set: Arc<dyn ObjectSet> = Arc::new(ManagedObjectSet::new(repo, "user"));
        testsuite::run_all(set, &options()).await;
    };
    let outcome = tokio::spawn(result).await;
    psql(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    outcome.unwrap();
}
