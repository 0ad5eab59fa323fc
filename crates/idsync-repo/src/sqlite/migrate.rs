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
    (
        10,
        include_str!("../../migrations/sqlite/0010_audit_queue_upkeep.sql"),
    ),
];

/// Applies the migrations not yet recorded in `schema_migrations`. Idempotent.
pub fn migrate(conn: &mut Connection) -> RepoResult<()> {
    apply(conn, MIGRATIONS)
}

fn apply(conn: &mut Connection, migrations: &[(i64, &str)]) -> RepoResult<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(map_err)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, \
         applied INTEGER NOT NULL)",
    )
    .map_err(map_err)?;
    for (version, sql) in migrations {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// 0010 rebuilds `audit` without AUTOINCREMENT: the entries written before are all there,
    /// with their ids, and later entries still come after them.
    #[test]
    fn audit_entries_survive_the_rebuild_without_autoincrement() {
        let mut c = Connection::open_in_memory().unwrap();
        apply(&mut c, &MIGRATIONS[..9]).unwrap();
        for i in 0..3 {
            c.execute(
                "INSERT INTO audit (id, kind, timestamp, mapping, entry) VALUES (?, 'sync', ?, 'm', ?)",
                rusqlite::params![format!("e{i}"), i, format!("{{\"n\":{i}}}")],
            )
            .unwrap();
        }
        migrate(&mut c).unwrap();
        c.execute(
            "INSERT INTO audit (id, kind, timestamp, entry) VALUES ('e3', 'sync', 3, '{}')",
            [],
        )
        .unwrap();
        let rows: Vec<(i64, String, String)> = c
            .prepare("SELECT seq, id, entry FROM audit ORDER BY seq")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let ids: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
        assert_eq!(ids, ["e0", "e1", "e2", "e3"]);
        assert_eq!(rows[1].2, r#"{"n":1}"#);
        let autoincrement: i64 = c
            .query_row(
                "SELECT COUNT(*) FROM sqlite_sequence WHERE name = 'audit'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(autoincrement, 0);
    }
}
