//! Schema migrations for SQLite, embedded in the binary and applied at open inside one
//! IMMEDIATE transaction (so two processes opening the same file at once serialise).

use super::query::map_err;
use crate::error::RepoResult;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/sqlite/0001_init.sql")),
    (
        2,
        include_str!("../../migrations/sqlite/0002_narrow_indexes.sql"),
    ),
    (
        3,
        include_str!("../../migrations/sqlite/0003_node_host.sql"),
    ),
    (
        4,
        include_str!("../../migrations/sqlite/0004_narrow_recon_entries.sql"),
    ),
    (
        5,
        include_str!("../../migrations/sqlite/0005_links_without_rowid.sql"),
    ),
    (
        6,
        include_str!("../../migrations/sqlite/0006_object_keys.sql"),
    ),
    (
        7,
        include_str!("../../migrations/sqlite/0007_queue_commit_order.sql"),
    ),
    (
        8,
        include_str!("../../migrations/sqlite/0008_server_keys.sql"),
    ),
    (
        9,
        include_str!("../../migrations/sqlite/0009_create_intents.sql"),
    ),
];

/// Applies the migrations not yet recorded in `schema_migrations`. Idempotent.
pub fn migrate(conn: &mut Connection) -> RepoResult<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(map_err)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, \
         applied INTEGER NOT NULL)",
    )
    .map_err(map_err)?;
    for (version, sql) in MIGRATIONS {
        let done: Option<i64> = tx
            .query_row(
                "SELECT version FROM schema_migrations WHERE version = ?",
                [version],
                |r| r.get(0),
            )
            .optional()
            .map_err(map_err)?;
        if done.is_none() {
            tx.execute_batch(sql).map_err(map_err)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied) VALUES (?, ?)",
                rusqlite::params![version, chrono::Utc::now().timestamp_micros()],
            )
            .map_err(map_err)?;
        }
    }
    tx.commit().map_err(map_err)
}
