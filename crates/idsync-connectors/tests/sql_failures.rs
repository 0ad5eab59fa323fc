//! Failure classification and edge cases of the database-table connector on real servers.

#![allow(clippy::unwrap_used)] // Tests may unwrap.

mod sql_support;

use idsync_connectors::sql::SqlConnector;
use idsync_connectors::{Change, Connector, ConnectorError};
use idsync_core::{Filter, QueryRequest};
use serde_json::json;
use sql_support::{
    closed_port, connector, connector_props, with_mysql, with_postgres, with_sqlite,
};
use std::time::Duration;

async fn constraint_violation_is_invalid_data(url: String, server_words: &str) {
    let set = connector(&url).object_set("account").unwrap();
    // userName is NOT NULL in the table.
    let err = set
        .create(Some("x1"), json!({"sn": "Nobody"}))
        .await
        .unwrap_err();
    match &err {
        ConnectorError::InvalidData(m) => {
            assert!(m.contains(server_words), "server message kept: {m}")
        }
        other => panic!("expected InvalidData, got {other:?}"),
    }
    assert_eq!(set.get("x1").await.unwrap(), None);
}

#[tokio::test]
async fn postgres_not_null_violation_is_invalid_data() {
    with_postgres(|u| constraint_violation_is_invalid_data(u, "not-null")).await;
}

#[tokio::test]
async fn mariadb_not_null_violation_is_invalid_data() {
    with_mysql(|u| constraint_violation_is_invalid_data(u, "cannot be null")).await;
}

#[tokio::test]
async fn sqlite_not_null_violation_is_invalid_data() {
    with_sqlite(|u| constraint_violation_is_invalid_data(u, "NOT NULL")).await;
}

async fn too_long_is_invalid_data(url: String) {
    let set = connector(&url).object_set("account").unwrap();
    let err = set
        .create(Some("x2"), json!({"userName": "a".repeat(100)}))
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectorError::InvalidData(_)), "got {err:?}");
}

#[tokio::test]
async fn postgres_value_too_long_is_invalid_data() {
    with_postgres(too_long_is_invalid_data).await;
}

#[tokio::test]
async fn mariadb_value_too_long_is_invalid_data() {
    // The connector's sessions use the server's sql_mode; MariaDB 10.11 defaults to strict.
    with_mysql(too_long_is_invalid_data).await;
}

async fn unavailable_within_bound(url: String) {
    let mut props = connector_props(&url);
    props.insert("acquireTimeoutMs".into(), json!(1500));
    let c = SqlConnector::new(
        "down",
        &props,
        Some(&idsync_connectors::testsuite::account_object_types()),
        std::path::Path::new("/"),
    )
    .unwrap();
    let set = c.object_set("account").unwrap();
    // The outer timeout only turns a hang into a failure; the connector must answer first.
    let r = tokio::time::timeout(Duration::from_secs(60), set.count())
        .await
        .expect("no hang");
    assert!(
        matches!(r, Err(ConnectorError::Unavailable(_))),
        "got {r:?}"
    );
    let r = tokio::time::timeout(Duration::from_secs(60), c.test())
        .await
        .expect("no hang");
    assert!(
        matches!(r, Err(ConnectorError::Unavailable(_))),
        "got {r:?}"
    );
}

#[tokio::test]
async fn postgres_closed_port_is_unavailable() {
    unavailable_within_bound(format!("postgres://postgres@127.0.0.1:{}/x", closed_port())).await;
}

#[tokio::test]
async fn mysql_closed_port_is_unavailable() {
    unavailable_within_bound(format!("mysql://root@127.0.0.1:{}/x", closed_port())).await;
}

async fn values_never_become_sql(url: String) {
    let set = connector(&url).object_set("account").unwrap();
    set.create(Some("a"), json!({"userName": "o'brien", "sn": "x"}))
        .await
        .unwrap();
    set.create(Some("b"), json!({"userName": "50%_off!", "sn": "y"}))
        .await
        .unwrap();
    for (f, expected) in [
        (r#"userName eq "x' OR '1'='1""#, 0),
        (r#"userName eq "o'brien""#, 1),
        (r#"userName co "%""#, 1),
        (r#"userName sw "50%_""#, 1),
        (r#"userName co "!""#, 1),
        // Unescaped, `_` would match the quote of o'brien.
        (r#"userName co "o_b""#, 0),
    ] {
        let filter: Filter = f.parse().unwrap();
        let page = set.query(&QueryRequest::with_filter(filter)).await.unwrap();
        assert_eq!(page.results.len(), expected, "{f}");
    }
    assert_eq!(set.count().await.unwrap(), Some(2));
    let bad: Filter = r#"nosuch eq "x""#.parse().unwrap();
    let r = set.query(&QueryRequest::with_filter(bad)).await;
    assert!(
        matches!(r, Err(ConnectorError::BadRequest(_))),
        "unknown field: {r:?}"
    );
    let r = set
        .create(Some("c"), json!({"userName": "c", "nosuch": 1}))
        .await;
    assert!(
        matches!(r, Err(ConnectorError::InvalidData(_))),
        "unknown property: {r:?}"
    );
}

#[tokio::test]
async fn postgres_values_are_bound_not_spliced() {
    with_postgres(values_never_become_sql).await;
}

#[tokio::test]
async fn mariadb_values_are_bound_not_spliced() {
    with_mysql(values_never_become_sql).await;
}

#[tokio::test]
async fn sqlite_values_are_bound_not_spliced() {
    with_sqlite(values_never_become_sql).await;
}

/// The password column is written but never read back; liveSync follows changeLogColumn.
async fn password_and_live_sync(url: String) {
    // Without the look-back the tokens are exactly value + keys (sql_livesync.rs has gaps).
    let mut props = connector_props(&url);
    props.insert("liveSyncLookBackSeconds".into(), json!(0));
    let c = SqlConnector::new(
        "db",
        &props,
        Some(&json!({"account": {"properties": {
            "userName": {"type": "string"},
            "password": {"type": "string", "nativeName": "__PASSWORD__"},
            "changed": {"type": "integer"}
        }}})),
        std::path::Path::new("/"),
    )
    .unwrap();
    let set = c.object_set("account").unwrap();
    let first = set.changes_since(None).await.unwrap();
    assert!(first.changes.is_empty());
    let token = first.token.unwrap();
    let created = set
        .create(
            Some("p1"),
            json!({"userName": "p", "password": "s3cret", "changed": 5}),
        )
        .await
        .unwrap();
    assert_eq!(created, json!({"_id": "p1", "userName": "p", "changed": 5}));
    set.create(Some("p2"), json!({"userName": "q", "changed": 7}))
        .await
        .unwrap();
    let batch = set.changes_since(Some(&token)).await.unwrap();
    let ids: Vec<String> = batch
        .changes
        .iter()
        .map(|ch| match ch {
            Change::CreateOrUpdate { id, .. } => id.clone(),
            Change::Delete { id } => panic!("unexpected delete {id}"),
        })
        .collect();
    assert_eq!(ids, ["p1", "p2"]);
    assert_eq!(batch.token, Some(json!({"value": 7, "keys": ["p2"]})));
    assert_eq!(
        batch.tokens,
        [
            json!({"value": 5, "keys": ["p1"]}),
            json!({"value": 7, "keys": ["p2"]})
        ]
    );
    let again = set.changes_since(batch.token.as_ref()).await.unwrap();
    assert!(again.changes.is_empty());
    // A row written later with the value already read is still seen, once.
    set.create(Some("p3"), json!({"userName": "r", "changed": 7}))
        .await
        .unwrap();
    let late = set.changes_since(batch.token.as_ref()).await.unwrap();
    assert_eq!(late.changes.len(), 1);
    assert_eq!(late.token, Some(json!({"value": 7, "keys": ["p2", "p3"]})));
    assert!(
        set.changes_since(late.token.as_ref())
            .await
            .unwrap()
            .changes
            .is_empty()
    );
    // Changes come in the column's numeric order, not its text's ("10" sorts before "9").
    set.create(Some("p4"), json!({"userName": "s", "changed": 10}))
        .await
        .unwrap();
    set.create(Some("p5"), json!({"userName": "t", "changed": 8}))
        .await
        .unwrap();
    let ordered = set.changes_since(late.token.as_ref()).await.unwrap();
    let ids: Vec<&str> = ordered
        .changes
        .iter()
        .map(|ch| match ch {
            Change::CreateOrUpdate { id, .. } | Change::Delete { id } => id.as_str(),
        })
        .collect();
    assert_eq!(ids, ["p5", "p4"]);
    set.delete("p4", None).await.unwrap();
    set.delete("p5", None).await.unwrap();
    set.delete("p3", None).await.unwrap();
    // An update without the password keeps it (it is write-only, not cleared).
    set.update("p1", None, json!({"userName": "p", "changed": 9}))
        .await
        .unwrap();
    let sql = "SELECT pwd FROM accounts WHERE id = 'p1'";
    let pwd: Option<String> = if url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap()
    } else {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap()
    };
    assert_eq!(pwd.as_deref(), Some("s3cret"));
}

#[tokio::test]
async fn postgres_password_is_write_only_and_live_sync_follows_the_change_column() {
    with_postgres(password_and_live_sync).await;
}

#[tokio::test]
async fn sqlite_password_is_write_only_and_live_sync_follows_the_change_column() {
    with_sqlite(password_and_live_sync).await;
}
