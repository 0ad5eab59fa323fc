//! The conformance suite against the real PostgreSQL, MariaDB and SQLite.

#![allow(clippy::unwrap_used)] // Tests may unwrap.

mod sql_support;

use idsync_connectors::Connector;
use idsync_connectors::testsuite::{self, SuiteOptions};
use sql_support::{connector, with_mysql, with_postgres, with_sqlite};

async fn suite(url: String) {
    let c = connector(&url);
    c.test().await.unwrap();
    testsuite::run_all(c.object_set("account").unwrap(), &SuiteOptions::default()).await;
}

#[tokio::test]
async fn postgres_passes_the_conformance_suite() {
    with_postgres(suite).await;
}

#[tokio::test]
async fn mariadb_passes_the_conformance_suite() {
    with_mysql(suite).await;
}

#[tokio::test]
async fn sqlite_passes_the_conformance_suite() {
    with_sqlite(suite).await;
}
