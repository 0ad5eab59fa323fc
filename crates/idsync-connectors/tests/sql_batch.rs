//! Concurrent creates on one object set (the queue consumer runs a page of events at once):
//! each caller gets its own row or its own error, whether the connector shares one multi-row
//! INSERT between them (PostgreSQL, SQLite) or not (MariaDB).
//!
//! The tests run on tokio's current-thread runtime: `join_all` queues every create before the
//! flusher task first runs, so on PostgreSQL and SQLite they all meet in one batch.

#![allow(clippy::unwrap_used)] // Tests may unwrap.

mod sql_support;

use futures::future::join_all;
use idsync_connectors::{Connector, ConnectorError};
use serde_json::{Value, json};
use sql_support::{connector, with_mysql, with_postgres, with_sqlite};
use sqlx::Connection;

const N: usize = 200;

fn person(i: usize) -> Value {
    json!({
        "userName": format!("user{i:03}"),
        "givenName": format!("Given{i}"),
        "sn": if i.is_multiple_of(2) { "Smith" } else { "Jones" },
        "mail": format!("user{i:03}@example.com"),
    })
}

async fn concurrent_creates_return_their_own_rows(url: String) {
    let c = connector(&url);
    let set = c.object_set("account").unwrap();
    let results = join_all((0..N).map(|i| {
        let set = c.object_set("account").unwrap();
        async move { set.create(Some(&format!("id{i:03}")), person(i)).await }
    }))
    .await;
    for (i, r) in results.into_iter().enumerate() {
        let got = r.unwrap_or_else(|e| panic!("create {i}: {e}"));
        let mut want = person(i);
        want["_id"] = json!(format!("id{i:03}"));
        assert_eq!(got, want, "create {i} answers with its own row as stored");
        assert_eq!(set.get(&format!("id{i:03}")).await.unwrap(), Some(got));
    }
    assert_eq!(set.count().await.unwrap(), Some(N as u64));
}

/// Rows written by one statement share the PostgreSQL transaction that wrote them.
async fn pg_transactions(url: &str) -> i64 {
    let mut c = sqlx::PgConnection::connect(url).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT COUNT(DISTINCT xmin::text) FROM accounts")
        .fetch_one(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
    n
}

#[tokio::test]
async fn postgres_concurrent_creates_share_one_insert_and_return_their_own_rows() {
    with_postgres(|url| async move {
        concurrent_creates_return_their_own_rows(url.clone()).await;
        assert_eq!(
            pg_transactions(&url).await,
            1,
            "{N} creates queued together are written by one statement"
        );
    })
    .await;
}

#[tokio::test]
async fn sqlite_concurrent_creates_return_their_own_rows() {
    with_sqlite(concurrent_creates_return_their_own_rows).await;
}

#[tokio::test]
async fn mariadb_concurrent_creates_return_their_own_rows() {
    with_mysql(concurrent_creates_return_their_own_rows).await;
}

/// Which of two concurrent creates of one id wins.
#[derive(Clone, Copy, PartialEq)]
enum Twins {
    /// The first queued: creates share one statement and its row-by-row retry runs in queue
    /// order (PostgreSQL, SQLite).
    FirstQueuedWins,
    /// Either: each create is its own statement on its own connection (MariaDB), and the
    /// server decides.
    EitherWins,
}

/// A batch holding an existing id, an id created twice and a row the table refuses: those
/// callers get their own error, every other caller its row.
async fn one_bad_row_fails_only_its_caller(url: String, twins: Twins) {
    let c = connector(&url);
    let set = c.object_set("account").unwrap();
    let before = set.create(Some("taken"), person(999)).await.unwrap();

    let mut requests: Vec<(String, Value)> =
        (0..20).map(|i| (format!("ok{i:02}"), person(i))).collect();
    requests[3] = ("taken".into(), person(3));
    requests[7] = ("twin".into(), person(7));
    requests[8] = ("twin".into(), person(8));
    // userName is NOT NULL in the table.
    requests[12] = ("nameless".into(), json!({"sn": "Nobody"}));
    let results = join_all(
        requests
            .iter()
            .map(|(id, obj)| set.create(Some(id), obj.clone())),
    )
    .await;

    let twin_winner = match (&results[7], &results[8]) {
        (Err(_), Ok(_)) if twins == Twins::EitherWins => 8,
        _ => 7,
    };
    let twin_loser = 15 - twin_winner;
    for (i, ((id, obj), r)) in requests.iter().zip(results).enumerate() {
        match i {
            _ if i == 3 || i == twin_loser => assert!(
                matches!(r, Err(ConnectorError::AlreadyExists(_))),
                "create {i} of an existing id: {r:?}"
            ),
            12 => assert!(
                matches!(r, Err(ConnectorError::InvalidData(_))),
                "create {i} without the NOT NULL column: {r:?}"
            ),
            _ => {
                let mut want = obj.clone();
                want["_id"] = json!(id);
                assert_eq!(r.unwrap(), want, "create {i} succeeds with its own row");
            }
        }
    }
    assert_eq!(set.get("taken").await.unwrap(), Some(before), "unchanged");
    let mut twin = person(twin_winner);
    twin["_id"] = json!("twin");
    assert_eq!(
        set.get("twin").await.unwrap(),
        Some(twin),
        "the winning create of an id is the one stored"
    );
    assert_eq!(set.get("nameless").await.unwrap(), None);
    assert_eq!(set.count().await.unwrap(), Some(1 + 17));
}

#[tokio::test]
async fn postgres_one_bad_row_fails_only_its_caller() {
    with_postgres(|url| one_bad_row_fails_only_its_caller(url, Twins::FirstQueuedWins)).await;
}

#[tokio::test]
async fn sqlite_one_bad_row_fails_only_its_caller() {
    with_sqlite(|url| one_bad_row_fails_only_its_caller(url, Twins::FirstQueuedWins)).await;
}

#[tokio::test]
async fn mariadb_one_bad_row_fails_only_its_caller() {
    with_mysql(|url| one_bad_row_fails_only_its_caller(url, Twins::EitherWins)).await;
}

/// Updates and deletes answer as before: the row as stored, `NotFound` for a missing id.
async fn update_and_delete_answer_with_the_stored_row(url: String) {
    let c = connector(&url);
    let set = c.object_set("account").unwrap();
    set.create(Some("u1"), person(1)).await.unwrap();
    let updated = set
        .update("u1", None, json!({"userName": "renamed", "sn": "Brown"}))
        .await
        .unwrap();
    assert_eq!(
        updated,
        json!({"_id": "u1", "userName": "renamed", "sn": "Brown"})
    );
    assert!(matches!(
        set.update("nope", None, json!({"userName": "x"})).await,
        Err(ConnectorError::NotFound(_))
    ));
    assert_eq!(set.delete("u1", None).await.unwrap(), Some(updated));
    assert!(matches!(
        set.delete("u1", None).await,
        Err(ConnectorError::NotFound(_))
    ));
}

#[tokio::test]
async fn postgres_update_and_delete_answer_with_the_stored_row() {
    with_postgres(update_and_delete_answer_with_the_stored_row).await;
}

#[tokio::test]
async fn sqlite_update_and_delete_answer_with_the_stored_row() {
    with_sqlite(update_and_delete_answer_with_the_stored_row).await;
}

#[tokio::test]
async fn mariadb_update_and_delete_answer_with_the_stored_row() {
    with_mysql(update_and_delete_answer_with_the_stored_row).await;
}
