//! SQL liveSync's look-back on the real PostgreSQL: a row whose transaction took a lower
//! `changeLogColumn` value but committed after a pass read a higher one is still applied.

#![allow(clippy::unwrap_used)] // Tests may unwrap.

mod sql_support;

use idsync_connectors::sql::SqlConnector;
use idsync_connectors::{Change, Connector, ObjectSet};
use serde_json::{Value, json};
use sql_support::{connector_props, with_postgres};
use sqlx::{Connection, PgConnection};
use std::sync::Arc;

fn set(url: &str, look_back: u64) -> Arc<dyn ObjectSet> {
    let mut props = connector_props(url);
    props.insert("liveSyncLookBackSeconds".into(), json!(look_back));
    SqlConnector::new(
        "db",
        &props,
        Some(&json!({"account": {"properties": {
            "userName": {"type": "string"}, "changed": {"type": "integer"}
        }}})),
        std::path::Path::new("/"),
    )
    .unwrap()
    .object_set("account")
    .unwrap()
}

fn ids(changes: &[Change]) -> Vec<&str> {
    changes.iter().map(Change::id).collect()
}

async fn insert(conn: &mut PgConnection, id: &str) {
    sqlx::query("INSERT INTO accounts (id, \"userName\") VALUES ($1, $1)")
        .bind(id)
        .execute(conn)
        .await
        .unwrap();
}

/// Two writers on a sequence: `late` takes the lower value, `early` the higher and commits
/// first; a pass reads `early`; then `late` commits. Returns what the next two passes saw.
async fn late_commit(url: &str, look_back: u64) -> (Vec<String>, Vec<String>, Vec<String>) {
    let mut admin = PgConnection::connect(url).await.unwrap();
    sqlx::raw_sql(
        "CREATE SEQUENCE changed_seq; \
         ALTER TABLE accounts ALTER COLUMN changed SET DEFAULT nextval('changed_seq')",
    )
    .execute(&mut admin)
    .await
    .unwrap();
    let set = set(url, look_back);
    let token = set.changes_since(None).await.unwrap().token.unwrap();

    let mut late = PgConnection::connect(url).await.unwrap();
    let mut early = PgConnection::connect(url).await.unwrap();
    sqlx::raw_sql("BEGIN").execute(&mut late).await.unwrap();
    insert(&mut late, "late").await; // changed = 1, not committed
    insert(&mut early, "early").await; // changed = 2, committed
    let first = set.changes_since(Some(&token)).await.unwrap();
    let token: Value = first.token.clone().unwrap();
    sqlx::raw_sql("COMMIT").execute(&mut late).await.unwrap();
    let second = set.changes_since(Some(&token)).await.unwrap();
    // Each change's own token is what liveSync stores after it: resume from the last one.
    let resumed = second.tokens.last().cloned().unwrap_or(token);
    let third = set.changes_since(Some(&resumed)).await.unwrap();
    let owned = |c: &[Change]| ids(c).into_iter().map(str::to_owned).collect();
    (
        owned(&first.changes),
        owned(&second.changes),
        owned(&third.changes),
    )
}

#[tokio::test]
async fn postgres_a_row_committed_late_with_a_lower_value_is_applied_once() {
    with_postgres(|url| async move {
        let (first, second, third) = late_commit(&url, 60).await;
        assert_eq!(first, ["early"]);
        assert_eq!(
            second,
            ["late"],
            "the late row is picked up by the look-back"
        );
        assert!(third.is_empty(), "and not again: {third:?}");
    })
    .await;
}

/// Without the look-back (`liveSyncLookBackSeconds: 0`) the late row is missed: what the
/// setting is for.
#[tokio::test]
async fn postgres_without_a_look_back_a_late_row_is_missed() {
    with_postgres(|url| async move {
        let (first, second, _) = late_commit(&url, 0).await;
        assert_eq!(first, ["early"]);
        assert!(second.is_empty(), "{second:?}");
    })
    .await;
}
