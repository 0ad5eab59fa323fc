//! Jobs and leases, nodes, locks and the sync queue on SQLite. Each multi-step operation runs
//! in one IMMEDIATE transaction on the single writer, which is what makes a claim exclusive
//! (the SQLite equivalent of `FOR UPDATE SKIP LOCKED`).

use super::query::map_err;
use super::records::{EVENT_COLS, JOB_COLS, RawEvent, job_row, raw_event_row};
use super::time::from_micros;
use crate::error::{ConflictKind, RepoError, RepoResult};
use crate::model::{ClaimedJob, LockRecord, NodeRecord, NodeState};
use chrono::Utc;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::time::Duration;

fn lease_until(lease: Duration) -> i64 {
    Utc::now().timestamp_micros() + i64::try_from(lease.as_micros()).unwrap_or(i64::MAX / 2)
}

pub fn claim_next(
    conn: &mut Connection,
    kinds: &[String],
    node_id: &str,
    lease: Duration,
    recovered_only: bool,
) -> RepoResult<Option<ClaimedJob>> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(map_err)?;
    let now = Utc::now().timestamp_micros();
    let kinds_json = serde_json::to_string(kinds).map_err(RepoError::internal)?;
    let id: Option<String> = tx
        .prepare_cached(
            "SELECT id FROM jobs WHERE kind IN (SELECT value FROM json_each(?1)) AND \
             ((state = 'PENDING' AND (not_before IS NULL OR not_before <= ?2)) OR \
              (state = 'CLAIMED' AND lease_until < ?2)) AND (NOT ?3 OR lease_until IS NOT NULL) \
             ORDER BY lease_until IS NOT NULL DESC, created, seq LIMIT 1",
        )
        .map_err(map_err)?
        .query_row(params![kinds_json, now, recovered_only], |r| r.get(0))
        .optional()
        .map_err(map_err)?;
    let Some(id) = id else {
        return Ok(None);
    };
    let job = tx
        .prepare_cached(&format!(
            "UPDATE jobs SET state = 'CLAIMED', owner_node = ?, lease_until = ?, \
             token = token + 1 WHERE id = ? RETURNING {JOB_COLS}"
        ))
        .map_err(map_err)?
        .query_row(params![node_id, lease_until(lease), id], job_row)
        .map_err(map_err)?;
    tx.commit().map_err(map_err)?;
    let token = job.token;
    Ok(Some(ClaimedJob { job, token }))
}

pub fn renew(conn: &Connection, job_id: &str, token: i64, lease: Duration) -> RepoResult<()> {
    let n = conn
        .prepare_cached(
            "UPDATE jobs SET lease_until = ? WHERE id = ? AND token = ? AND state = 'CLAIMED'",
        )
        .map_err(map_err)?
        .execute(params![lease_until(lease), job_id, token])
        .map_err(map_err)?;
    if n == 0 {
        return Err(RepoError::StaleToken {
            job_id: job_id.to_string(),
        });
    }
    Ok(())
}

pub fn release(conn: &Connection, job_id: &str, token: i64) -> RepoResult<()> {
    let n = conn
        .prepare_cached(
            "UPDATE jobs SET state = 'PENDING', owner_node = NULL, lease_until = NULL \
             WHERE id = ? AND token = ? AND state = 'CLAIMED'",
        )
        .map_err(map_err)?
        .execute(params![job_id, token])
        .map_err(map_err)?;
    if n == 0 {
        return Err(RepoError::StaleToken {
            job_id: job_id.to_string(),
        });
    }
    Ok(())
}

pub fn heartbeat(conn: &Connection, node_id: &str, host: &str, now: i64) -> RepoResult<()> {
    conn.prepare_cached(
        "INSERT INTO nodes (id, state, startup, shutdown, last_heartbeat, host) \
         VALUES (?1, 'STATE_RUNNING', ?2, NULL, ?2, ?3) ON CONFLICT (id) DO UPDATE SET \
         startup = CASE WHEN state = 'STATE_DOWN' THEN ?2 ELSE startup END, \
         shutdown = CASE WHEN state = 'STATE_DOWN' THEN NULL ELSE shutdown END, \
         state = 'STATE_RUNNING', last_heartbeat = ?2, host = ?3",
    )
    .map_err(map_err)?
    .execute(params![node_id, now, host])
    .map_err(map_err)?;
    Ok(())
}

pub fn set_node_state(conn: &Connection, node_id: &str, state: NodeState) -> RepoResult<()> {
    let n = conn
        .prepare_cached(
            "UPDATE nodes SET state = ?1, shutdown = CASE WHEN ?1 = 'STATE_DOWN' THEN ?2 \
             ELSE shutdown END WHERE id = ?3",
        )
        .map_err(map_err)?
        .execute(params![
            state.as_str(),
            Utc::now().timestamp_micros(),
            node_id
        ])
        .map_err(map_err)?;
    if n == 0 {
        return Err(RepoError::NotFound(format!("cluster node {node_id}")));
    }
    Ok(())
}

pub fn list_nodes(conn: &Connection) -> RepoResult<Vec<NodeRecord>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, state, startup, shutdown, last_heartbeat, host FROM nodes ORDER BY id",
        )
        .map_err(map_err)?;
    let rows = stmt
        .query_map([], |r| {
            let state: String = r.get(1)?;
            Ok(NodeRecord {
                id: r.get(0)?,
                state: NodeState::parse(&state).unwrap_or(NodeState::Down),
                startup: from_micros(r.get(2)?),
                shutdown: r.get::<_, Option<i64>>(3)?.map(from_micros),
                last_heartbeat: from_micros(r.get(4)?),
                host: r.get(5)?,
            })
        })
        .map_err(map_err)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(map_err)
}

pub fn try_acquire_lock(
    conn: &mut Connection,
    name: &str,
    node_id: &str,
) -> RepoResult<Option<i64>> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(map_err)?;
    let row: Option<(Option<String>, i64)> = tx
        .prepare_cached("SELECT node_id, token FROM locks WHERE name = ?")
        .map_err(map_err)?
        .query_row([name], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .map_err(map_err)?;
    let now = Utc::now().timestamp_micros();
    let token = match row {
        Some((Some(owner), token)) if owner == node_id => Some(token),
        Some((Some(_), _)) => None,
        Some((None, token)) => {
            tx.prepare_cached(
                "UPDATE locks SET node_id = ?, token = ?, acquired = ? WHERE name = ?",
            )
            .map_err(map_err)?
            .execute(params![node_id, token + 1, now, name])
            .map_err(map_err)?;
            Some(token + 1)
        }
        None => {
            tx.prepare_cached(
                "INSERT INTO locks (name, node_id, token, acquired) VALUES (?, ?, 1, ?)",
            )
            .map_err(map_err)?
            .execute(params![name, node_id, now])
            .map_err(map_err)?;
            Some(1)
        }
    };
    tx.commit().map_err(map_err)?;
    Ok(token)
}

pub fn locks_where(conn: &Connection, node_id: Option<&str>) -> RepoResult<Vec<LockRecord>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT name, node_id, token, acquired FROM locks WHERE node_id IS NOT NULL \
             AND (?1 IS NULL OR node_id = ?1) ORDER BY name",
        )
        .map_err(map_err)?;
    let rows = stmt
        .query_map([node_id], |r| {
            Ok(LockRecord {
                name: r.get(0)?,
                node_id: r.get(1)?,
                token: r.get(2)?,
                acquired: from_micros(r.get(3)?),
            })
        })
        .map_err(map_err)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(map_err)
}

/// Marks up to `limit` ready events of `mapping` ACQUIRED by `node_id` and returns them as read
/// (`RawEvent::parse` them after giving the writer back), in queue order.
pub fn acquire_events(
    conn: &mut Connection,
    mapping: &str,
    node_id: &str,
    limit: usize,
) -> RepoResult<Vec<RawEvent>> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(map_err)?;
    // An event waits while an earlier event of the same object is ACQUIRED, so per-object
    // commit order holds even with parallel workers and retries.
    let mut events = Vec::with_capacity(limit.min(10_000));
    {
        let mut stmt = tx
            .prepare_cached(&format!(
                "UPDATE sync_queue SET state = 'ACQUIRED', node_id = ?1, rev = rev + 1 \
                 WHERE seq IN (SELECT q.seq FROM sync_queue q WHERE q.mapping = ?2 \
                 AND q.state = 'PENDING' AND NOT EXISTS (SELECT 1 FROM sync_queue p \
                 WHERE p.mapping = q.mapping AND p.resource_id = q.resource_id \
                 AND p.state = 'ACQUIRED' AND p.seq < q.seq) \
                 ORDER BY q.seq LIMIT ?3) RETURNING {EVENT_COLS}"
            ))
            .map_err(map_err)?;
        let rows = stmt
            .query_map(params![node_id, mapping, limit as i64], raw_event_row)
            .map_err(map_err)?;
        for row in rows {
            events.push(row.map_err(map_err)?);
        }
    }
    tx.commit().map_err(map_err)?;
    events.sort_by_key(|e| e.order());
    Ok(events)
}

/// `Repository::release_for_retry`: only the owner of an ACQUIRED event puts it back.
pub fn release_for_retry(
    conn: &mut Connection,
    id: &str,
    remaining_retries: i64,
    node_id: &str,
) -> RepoResult<()> {
    let n = conn
        .prepare_cached(
            "UPDATE sync_queue SET state = 'PENDING', node_id = NULL, remaining_retries = ?, \
             rev = rev + 1 WHERE id = ? AND state = 'ACQUIRED' AND node_id = ?",
        )
        .map_err(map_err)?
        .execute(params![remaining_retries, id, node_id])
        .map_err(map_err)?;
    if n > 0 {
        return Ok(());
    }
    let owner: Option<Option<String>> = conn
        .prepare_cached("SELECT node_id FROM sync_queue WHERE id = ?")
        .map_err(map_err)?
        .query_row([id], |r| r.get(0))
        .optional()
        .map_err(map_err)?;
    match owner {
        None => Err(RepoError::NotFound(format!("sync/queue/{id}"))),
        Some(owner) => Err(RepoError::Conflict(ConflictKind::AcquiredEvent {
            id: id.to_string(),
            node_id: owner,
        })),
    }
}

pub fn delete_event(conn: &mut Connection, id: &str, by_node: Option<&str>) -> RepoResult<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(map_err)?;
    let row: Option<(String, Option<String>)> = tx
        .prepare_cached("SELECT state, node_id FROM sync_queue WHERE id = ?")
        .map_err(map_err)?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .map_err(map_err)?;
    let Some((state, owner)) = row else {
        return Err(RepoError::NotFound(format!("sync/queue/{id}")));
    };
    if state == "ACQUIRED" && (by_node.is_none() || by_node != owner.as_deref()) {
        return Err(RepoError::Conflict(ConflictKind::AcquiredEvent {
            id: id.to_string(),
            node_id: owner,
        }));
    }
    tx.prepare_cached("DELETE FROM sync_queue WHERE id = ?")
        .map_err(map_err)?
        .execute([id])
        .map_err(map_err)?;
    tx.commit().map_err(map_err)
}
