//! The sync queue and the dead-letter queue. Events are acquired with
//! `FOR UPDATE SKIP LOCKED` in commit order (`seq`, assigned when the inserting transaction
//! commits: migration 0007, docs/adr/0009-queue-commit-order.md); an event
//! waits while an earlier event of the same object is ACQUIRED, so per-object order holds with
//! parallel workers and retries.

use super::PgRepository;
use super::convert::{as_i64, as_u64, from_ns, iso_millis_sql, parse_enum, pg_err};
use super::filter::{FieldSource, SqlParams};
use super::query::{self, QuerySpec};
use crate::error::{ConflictKind, RepoError, RepoResult};
use crate::model::{DeadLetter, QueueStats, SyncAction, SyncEvent};
use idsync_core::{QueryPage, QueryRequest};
use serde_json::Value;
use std::sync::LazyLock;
use tokio_postgres::Row;

const EVENT_COLUMNS: &str = "id, rev, mapping, resource_id, resource_collection, sync_action, state, \
     node_id, remaining_retries, create_date_ns, old_object, new_object, object_rev, context, seq";

static CREATE_DATE_JSON: LazyLock<String> =
    LazyLock::new(|| format!("to_jsonb({})", iso_millis_sql("create_date_ns")));

/// The REST fields of an event (`SyncEvent::to_json`) as jsonb expressions over the columns.
static QUEUE_FIELDS: LazyLock<Vec<(&'static str, &'static str)>> = LazyLock::new(|| {
    vec![
        ("_id", "to_jsonb(id)"),
        ("_rev", "to_jsonb(rev::text)"),
        ("mapping", "to_jsonb(mapping)"),
        ("resourceId", "to_jsonb(resource_id)"),
        ("resourceCollection", "to_jsonb(resource_collection)"),
        ("syncAction", "to_jsonb(sync_action)"),
        ("state", "to_jsonb(state)"),
        ("nodeId", "to_jsonb(node_id)"),
        ("remainingRetries", "to_jsonb(remaining_retries)"),
        ("createDate", CREATE_DATE_JSON.as_str()),
    ]
});

fn event_from_row(row: &Row) -> RepoResult<SyncEvent> {
    let err = RepoError::internal;
    let action: String = row.try_get(5).map_err(err)?;
    Ok(SyncEvent {
        id: row.try_get(0).map_err(err)?,
        rev: row.try_get::<_, i64>(1).map_err(err)?.to_string(),
        mapping: row.try_get(2).map_err(err)?,
        resource_id: row.try_get(3).map_err(err)?,
        resource_collection: row.try_get(4).map_err(err)?,
        sync_action: SyncAction::parse(&action)
            .ok_or_else(|| RepoError::Internal(format!("unknown syncAction {action}")))?,
        state: parse_enum(row.try_get(6).map_err(err)?)?,
        node_id: row.try_get(7).map_err(err)?,
        remaining_retries: row.try_get(8).map_err(err)?,
        create_date: from_ns(row.try_get(9).map_err(err)?),
        old_object: row.try_get(10).map_err(err)?,
        new_object: row.try_get(11).map_err(err)?,
        object_rev: row.try_get(12).map_err(err)?,
        context: row
            .try_get::<_, Option<Value>>(13)
            .map_err(err)?
            .unwrap_or(Value::Null),
        seq: row.try_get(14).map_err(err)?,
    })
}

impl PgRepository {
    pub(crate) async fn pg_query_queue(&self, q: &QueryRequest) -> RepoResult<QueryPage> {
        let client = self.client().await?;
        let spec = QuerySpec {
            from: "syncqueue",
            base_where: Vec::new(),
            fields: FieldSource::Columns(QUEUE_FIELDS.as_slice()),
            id_col: "id",
            select: EVENT_COLUMNS,
        };
        query::run(&client, spec, SqlParams::new(), q, |row| {
            Ok(event_from_row(row)?.to_json())
        })
        .await
    }

    pub(crate) async fn pg_get_event(&self, id: &str) -> RepoResult<Option<SyncEvent>> {
        let client = self.client().await?;
        let sql = format!("SELECT {EVENT_COLUMNS} FROM syncqueue WHERE id = $1");
        client
            .query_opt(&sql, &[&id])
            .await
            .map_err(pg_err)?
            .as_ref()
            .map(event_from_row)
            .transpose()
    }

    pub(crate) async fn pg_acquire_events(
        &self,
        mapping: &str,
        node_id: &str,
        limit: usize,
    ) -> RepoResult<Vec<SyncEvent>> {
        let client = self.client().await?;
        let sql = format!(
            "UPDATE syncqueue SET state = 'ACQUIRED', node_id = $2, rev = rev + 1 \
             WHERE id IN (SELECT q.id FROM syncqueue q WHERE q.mapping = $1 AND q.state = 'PENDING' \
                 AND NOT EXISTS (SELECT 1 FROM syncqueue p WHERE p.mapping = q.mapping \
                     AND p.resource_id = q.resource_id AND p.state = 'ACQUIRED' \
                     AND p.seq < q.seq) \
                 ORDER BY q.seq LIMIT $3 FOR UPDATE OF q SKIP LOCKED) \
             RETURNING {EVENT_COLUMNS}"
        );
        let stmt = client.prepare_cached(&sql).await.map_err(pg_err)?;
        let rows = client
            .query(&stmt, &[&mapping, &node_id, &as_i64(limit)])
            .await
            .map_err(pg_err)?;
        let mut events = rows
            .iter()
            .map(event_from_row)
            .collect::<RepoResult<Vec<_>>>()?;
        // RETURNING has no order of its own.
        events.sort_by_key(|e| e.seq);
        Ok(events)
    }

    pub(crate) async fn pg_release_for_retry(
        &self,
        id: &str,
        remaining_retries: i64,
        node_id: &str,
    ) -> RepoResult<()> {
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE syncqueue SET state = 'PENDING', node_id = NULL, remaining_retries = $2, \
                 rev = rev + 1 WHERE id = $1 AND state = 'ACQUIRED' AND node_id = $3",
                &[&id, &remaining_retries, &node_id],
            )
            .await
            .map_err(pg_err)?;
        if n > 0 {
            return Ok(());
        }
        Err(not_ours(&client, id).await)
    }

    pub(crate) async fn pg_delete_event(&self, id: &str, by_node: Option<&str>) -> RepoResult<()> {
        let client = self.client().await?;
        let n = client
            .execute(
                "DELETE FROM syncqueue WHERE id = $1 AND (state <> 'ACQUIRED' OR node_id = $2)",
                &[&id, &by_node],
            )
            .await
            .map_err(pg_err)?;
        if n > 0 {
            return Ok(());
        }
        Err(not_ours(&client, id).await)
    }

    pub(crate) async fn pg_return_acquired_to_pending(&self, node_id: &str) -> RepoResult<u64> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE syncqueue SET state = 'PENDING', node_id = NULL, rev = rev + 1 \
                 WHERE state = 'ACQUIRED' AND node_id = $1",
                &[&node_id],
            )
            .await
            .map_err(pg_err)
    }

    pub(crate) async fn pg_queue_stats(&self) -> RepoResult<Vec<QueueStats>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT mapping, count(*) FILTER (WHERE state = 'PENDING'), count(*) FILTER (WHERE state = 'ACQUIRED'), \
                 min(create_date_ns) FROM syncqueue GROUP BY mapping ORDER BY mapping",
                &[],
            )
            .await
            .map_err(pg_err)?;
        Ok(rows
            .iter()
            .map(|r| QueueStats {
                mapping: r.get(0),
                pending: as_u64(r.get(1)),
                acquired: as_u64(r.get(2)),
                oldest_create_date: r.get::<_, Option<i64>>(3).map(from_ns),
            })
            .collect())
    }

    pub(crate) async fn pg_add_dead_letter(&self, letter: &DeadLetter) -> RepoResult<()> {
        let client = self.client().await?;
        let whole = serde_json::to_value(letter).map_err(RepoError::internal)?;
        let n = client
            .execute(
                "INSERT INTO deadletters (id, mapping, entry, letter) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[&letter.id, &letter.event.mapping, &letter.to_json(), &whole],
            )
            .await
            .map_err(pg_err)?;
        if n == 0 {
            return Err(RepoError::already_exists("dead letter", letter.id.clone()));
        }
        Ok(())
    }

    pub(crate) async fn pg_query_dead_letters(&self, q: &QueryRequest) -> RepoResult<QueryPage> {
        let client = self.client().await?;
        let spec = QuerySpec {
            from: "deadletters",
            base_where: Vec::new(),
            fields: FieldSource::Document("entry"),
            id_col: "id",
            select: "entry",
        };
        query::run(&client, spec, SqlParams::new(), q, |row| {
            row.try_get(0).map_err(RepoError::internal)
        })
        .await
    }

    pub(crate) async fn pg_get_dead_letter(&self, id: &str) -> RepoResult<Option<DeadLetter>> {
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT letter FROM deadletters WHERE id = $1", &[&id])
            .await
            .map_err(pg_err)?;
        row.map(|r| serde_json::from_value(r.get(0)).map_err(RepoError::internal))
            .transpose()
    }

    pub(crate) async fn pg_delete_dead_letter(&self, id: &str) -> RepoResult<()> {
        let client = self.client().await?;
        match client
            .execute("DELETE FROM deadletters WHERE id = $1", &[&id])
            .await
            .map_err(pg_err)?
        {
            0 => Err(RepoError::NotFound(format!("dead letter {id}"))),
            _ => Ok(()),
        }
    }
}

/// Why a fenced release or delete of event `id` changed nothing: it is gone (`NotFound`), or
/// another node holds it, or it is PENDING again (`Conflict(AcquiredEvent)` with its holder).
async fn not_ours(client: &tokio_postgres::Client, id: &str) -> RepoError {
    match client
        .query_opt("SELECT node_id FROM syncqueue WHERE id = $1", &[&id])
        .await
    {
        Err(e) => pg_err(e),
        Ok(None) => RepoError::NotFound(format!("sync queue event {id}")),
        Ok(Some(row)) => RepoError::Conflict(ConflictKind::AcquiredEvent {
            id: id.to_string(),
            node_id: row.get(0),
        }),
    }
}
