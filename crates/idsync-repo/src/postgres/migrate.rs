//! Schema migrations: embedded SQL files applied in order, each once, recorded in
//! `schema_migrations`. The whole run holds a transaction-scoped advisory lock, so nodes that
//! start at the same moment apply each migration exactly once and the others wait, then see it.

use super::convert::pg_err;
use crate::error::RepoResult;

/// (version, name, SQL) in order. Never edit a released file: add the next one.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "queue pending index",
        include_str!("../../migrations/postgres/0002_queue_pending_index.sql"),
    ),
    (
        3,
        "link indexes by side",
        include_str!("../../migrations/postgres/0003_link_indexes_by_side.sql"),
    ),
    (
        4,
        "unread audit indexes",
        include_str!("../../migrations/postgres/0004_unread_audit_indexes.sql"),
    ),
    (
        5,
        "node host",
        include_str!("../../migrations/postgres/0005_node_host.sql"),
    ),
    (
        6,
        "narrow recon entries",
        include_str!("../../migrations/postgres/0006_recon_entries.sql"),
    ),
    (
        7,
        "queue commit order",
        include_str!("../../migrations/postgres/0007_queue_commit_order.sql"),
    ),
    (
        8,
        "server keys",
        include_str!("../../migrations/postgres/0008_server_keys.sql"),
    ),
    (
        9,
        "create intents",
        include_str!("../../migrations/postgres/0009_create_intents.sql"),
    ),
];

/// An arbitrary constant shared by every idsync node ("idsync" in ASCII).
const ADVISORY_KEY: i64 = 0x6964_7379_6e63;

pub(super) async fn apply(client: &mut deadpool_postgres::Client) -> RepoResult<()> {
    let tx = client.transaction().await.map_err(pg_err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&ADVISORY_KEY])
        .await
        .map_err(pg_err)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    integer PRIMARY KEY,
             name       text NOT NULL,
             applied_ns bigint NOT NULL
         )",
    )
    .await
    .map_err(pg_err)?;
    let applied: Vec<i32> = tx
        .query("SELECT version FROM schema_migrations", &[])
        .await
        .map_err(pg_err)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for (version, name, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        tracing::info!(version, name, "applying PostgreSQL migration");
        tx.batch_execute(sql).await.map_err(pg_err)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_ns) VALUES ($1, $2, $3)",
            &[version, name, &super::convert::now_ns()],
        )
        .await
        .map_err(pg_err)?;
    }
    tx.commit().await.map_err(pg_err)
}
