//! Real databases for the SQL connector tests: a fresh database per test on the local
//! PostgreSQL and MariaDB (created with a unique name, dropped at the end, even when the test
//! fails) and SQLite files in a temp dir. A server that is not running fails the test loudly.

#![allow(dead_code, clippy::unwrap_used)] // Shared by several test binaries; tests may unwrap.

use futures::FutureExt;
use idsync_connectors::sql::SqlConnector;
use idsync_connectors::testsuite;
use serde_json::{Map, Value, json};
use sqlx::{AssertSqlSafe, Connection};
use std::future::Future;
use std::panic::AssertUnwindSafe;

pub fn pg_admin_url() -> String {
    std::env::var("IDSYNC_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn mysql_admin_url() -> String {
    std::env::var("IDSYNC_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
}

/// The URL of another database on the same server as `admin`.
fn with_database(admin: &str, db: &str) -> String {
    let (base, _) = admin
        .rsplit_once('/')
        .expect("admin URL has a database path");
    format!("{base}/{db}")
}

fn unique_name() -> String {
    format!("idsync_conn_{}", uuid::Uuid::new_v4().simple())
}

/// The `accounts` table of the suite: the key, the suite's properties, a NOT NULL userName
/// (for the constraint tests) and a change counter for liveSync.
pub fn accounts_ddl(quote: char) -> String {
    let q = |s: &str| format!("{quote}{s}{quote}");
    format!(
        "CREATE TABLE accounts ({} VARCHAR(64) PRIMARY KEY, {} VARCHAR(64) NOT NULL, {} VARCHAR(64), \
         {} VARCHAR(64), {} VARCHAR(128), {} VARCHAR(200), {} VARCHAR(64), {} BIGINT)",
        q("id"),
        q("userName"),
        q("givenName"),
        q("sn"),
        q("mail"),
        q("description"),
        q("pwd"),
        q("changed")
    )
}

pub fn connector_props(url: &str) -> Map<String, Value> {
    serde_json::from_value(json!({
        "url": url, "table": "accounts", "keyColumn": "id", "passwordColumn": "pwd",
        "changeLogColumn": "changed", "acquireTimeoutMs": 5000
    }))
    .unwrap()
}

pub fn connector(url: &str) -> SqlConnector {
    SqlConnector::new(
        "db",
        &connector_props(url),
        Some(&testsuite::account_object_types()),
        std::path::Path::new("/"),
    )
    .unwrap()
}

async fn run_guarded<F: Future<Output = ()>>(body: F) -> Option<Box<dyn std::any::Any + Send>> {
    AssertUnwindSafe(body).catch_unwind().await.err()
}

/// Runs `body` with the URL of a fresh PostgreSQL database holding `accounts`; drops it after.
pub async fn with_postgres<F, Fut>(body: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()>,
{
    let admin = pg_admin_url();
    let name = unique_name();
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL must run at {admin}: {e}"));
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let url = with_database(&admin, &name);
    let failure = run_guarded(async {
        let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query(AssertSqlSafe(accounts_ddl('"')))
            .execute(&mut c)
            .await
            .unwrap();
        c.close().await.unwrap();
        body(url.clone()).await;
    })
    .await;
    sqlx::query(AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)")))
        .execute(&mut conn)
        .await
        .unwrap();
    if let Some(p) = failure {
        std::panic::resume_unwind(p);
    }
}

/// Runs `body` with the URL of a fresh MariaDB database holding `accounts`; drops it after.
pub async fn with_mysql<F, Fut>(body: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()>,
{
    let admin = mysql_admin_url();
    let name = unique_name();
    let mut conn = sqlx::MySqlConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("MariaDB must run at {admin}: {e}"));
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let url = with_database(&admin, &name);
    let failure = run_guarded(async {
        let mut c = sqlx::MySqlConnection::connect(&url).await.unwrap();
        sqlx::query("SET SESSION sql_mode = 'STRICT_ALL_TABLES'")
            .execute(&mut c)
            .await
            .unwrap();
        sqlx::query(AssertSqlSafe(accounts_ddl('`')))
            .execute(&mut c)
            .await
            .unwrap();
        c.close().await.unwrap();
        body(url.clone()).await;
    })
    .await;
    sqlx::query(AssertSqlSafe(format!("DROP DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    if let Some(p) = failure {
        std::panic::resume_unwind(p);
    }
}

/// Runs `body` with the URL of a fresh SQLite file holding `accounts`.
pub async fn with_sqlite<F, Fut>(body: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("accounts.db");
    let url = format!("sqlite:{}", path.display());
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true);
    let mut c = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
    sqlx::query(AssertSqlSafe(accounts_ddl('"')))
        .execute(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
    body(url).await;
}

/// A loopback port nothing listens on.
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}
