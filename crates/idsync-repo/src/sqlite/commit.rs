//! Applies `ChangeSet`s in IMMEDIATE transactions: the fence is checked first, then every op in
//! order; the first failure rolls the change set back, so nothing of it is written.
//!
//! Group commit: the change sets that wait for the writer at the same moment commit in one
//! transaction, each in a savepoint of its own — a change set that fails is rolled back to its
//! savepoint and only its caller gets the error. Concurrent committers (queue workers, recon
//! pages, REST writes) touch the same hot B-tree pages; one transaction writes each of them to
//! the WAL once instead of once per change set.

use super::keys;
use super::query::map_err;
use super::time::micros;
use crate::changes::{ChangeSet, CommitOutcome, Op};
use crate::error::{ConflictKind, RepoError, RepoResult};
use crate::model::{AuditEntry, Job, Link, SyncEvent};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde_json::Value;

/// A change set waiting for the writer, and its caller's answer channel.
pub type Waiting = (
    ChangeSet,
    tokio::sync::oneshot::Sender<RepoResult<CommitOutcome>>,
);

/// Commits `group` in one transaction (see the module doc) and answers every caller.
pub fn commit_group(conn: &mut Connection, group: Vec<Waiting>) {
    let (sets, replies): (Vec<ChangeSet>, Vec<_>) = group.into_iter().unzip();
    let outcomes = (|| -> RepoResult<Vec<RepoResult<CommitOutcome>>> {
        let mut tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(map_err)?;
        let mut outcomes = Vec::with_capacity(sets.len());
        let mut indexed = keys::Cache::default();
        for changes in sets {
            let sp = tx.savepoint().map_err(map_err)?;
            let outcome = apply_changes(&sp, changes, &mut indexed);
            if outcome.is_ok() {
                sp.commit().map_err(map_err)?;
            } // else dropped: rolled back to the savepoint
            outcomes.push(outcome);
        }
        tx.commit().map_err(map_err)?;
        Ok(outcomes)
    })();
    match outcomes {
        Ok(outcomes) => {
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(outcome);
            }
        }
        Err(e) => {
            // The transaction itself failed: nothing of the group was written.
            let message = e.to_string();
            for reply in replies {
                let _ = reply.send(Err(RepoError::Unavailable(message.clone())));
            }
        }
    }
}

fn apply_changes(
    tx: &Connection,
    changes: ChangeSet,
    indexed: &mut keys::Cache,
) -> RepoResult<CommitOutcome> {
    if let Some(fence) = &changes.fence {
        let token: Option<i64> = tx
            .prepare_cached("SELECT token FROM jobs WHERE id = ? AND state <> 'DONE'")
            .map_err(map_err)?
            .query_row([&fence.job_id], |r| r.get(0))
            .optional()
            .map_err(map_err)?;
        if token != Some(fence.token) {
            return Err(RepoError::StaleToken {
                job_id: fence.job_id.clone(),
            });
        }
    }
    let mut outcome = CommitOutcome::default();
    // A queue batch carries one lock fence per event: check each distinct one once.
    let mut fences: Vec<Op> = Vec::new();
    for op in changes.ops {
        if let Op::HoldsLock { .. } = op {
            if fences.contains(&op) {
                continue;
            }
            fences.push(op.clone());
        }
        apply(tx, op, &mut outcome, indexed)?;
    }
    Ok(outcome)
}

/// Sets `_id` and `_rev` in the object and serializes it.
fn with_meta(value: &mut Value, id: &str, rev: i64) -> RepoResult<String> {
    let Value::Object(map) = value else {
        return Err(RepoError::BadQuery(format!(
            "object {id} must be a JSON object"
        )));
    };
    map.insert("_id".into(), Value::String(id.to_string()));
    map.insert("_rev".into(), Value::String(rev.to_string()));
    serde_json::to_string(value).map_err(RepoError::internal)
}

fn current_rev(tx: &Connection, object_type: &str, id: &str) -> RepoResult<Option<i64>> {
    tx.prepare_cached("SELECT rev FROM objects WHERE object_type = ? AND id = ?")
        .map_err(map_err)?
        .query_row([object_type, id], |r| r.get(0))
        .optional()
        .map_err(map_err)
}

fn check_rev(id: &str, expected: Option<&String>, actual: i64) -> RepoResult<()> {
    match expected {
        Some(e) if *e != actual.to_string() => Err(RepoError::RevisionMismatch {
            id: id.to_string(),
            expected: e.clone(),
            actual: actual.to_string(),
        }),
        _ => Ok(()),
    }
}

fn apply(
    tx: &Connection,
    op: Op,
    out: &mut CommitOutcome,
    indexed: &mut keys::Cache,
) -> RepoResult<()> {
    match op {
        Op::CreateObject {
            object_type,
            id,
            mut value,
        } => {
            let text = with_meta(&mut value, &id, 1)?;
            let n = tx
                .prepare_cached(
                    "INSERT INTO objects (object_type, id, rev, obj) VALUES (?, ?, 1, ?) \
                     ON CONFLICT DO NOTHING",
                )
                .map_err(map_err)?
                .execute(params![object_type, id, text])
                .map_err(map_err)?;
            if n == 0 {
                return Err(RepoError::already_exists(
                    format!("managed/{object_type}"),
                    id,
                ));
            }
            let props = indexed.get(tx, &object_type)?;
            keys::write(tx, props, &object_type, &id, None, Some(&value))?;
            out.object_revs.push((object_type, id, "1".into()));
        }
        Op::UpdateObject {
            object_type,
            id,
            expected_rev,
            mut value,
        } => {
            let rev = current_rev(tx, &object_type, &id)?
                .ok_or_else(|| RepoError::NotFound(format!("managed/{object_type}/{id}")))?;
            check_rev(&id, expected_rev.as_ref(), rev)?;
            let props = indexed.get(tx, &object_type)?;
            let old = if props.is_empty() {
                None
            } else {
                keys::stored(tx, &object_type, &id)?
            };
            let text = with_meta(&mut value, &id, rev + 1)?;
            tx.prepare_cached(
                "UPDATE objects SET rev = ?, obj = ? WHERE object_type = ? AND id = ?",
            )
            .map_err(map_err)?
            .execute(params![rev + 1, text, object_type, id])
            .map_err(map_err)?;
            keys::write(tx, props, &object_type, &id, old.as_ref(), Some(&value))?;
            out.object_revs
                .push((object_type, id, (rev + 1).to_string()));
        }
        Op::DeleteObject {
            object_type,
            id,
            expected_rev,
        } => {
            let rev = current_rev(tx, &object_type, &id)?
                .ok_or_else(|| RepoError::NotFound(format!("managed/{object_type}/{id}")))?;
            check_rev(&id, expected_rev.as_ref(), rev)?;
            let props = indexed.get(tx, &object_type)?;
            let old = if props.is_empty() {
                None
            } else {
                keys::stored(tx, &object_type, &id)?
            };
            tx.prepare_cached("DELETE FROM objects WHERE object_type = ? AND id = ?")
                .map_err(map_err)?
                .execute(params![object_type, id])
                .map_err(map_err)?;
            keys::write(tx, props, &object_type, &id, old.as_ref(), None)?;
        }
        Op::CreateLink(link) => {
            let n = tx
                .prepare_cached(
                    "INSERT INTO links (id, rev, link_type, link_qualifier, first_id, second_id) \
                     VALUES (?, 1, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                )
                .map_err(map_err)?
                .execute(params![
                    link.id,
                    link.link_type,
                    link.link_qualifier,
                    link.first_id,
                    link.second_id
                ])
                .map_err(map_err)?;
            if n == 0 {
                return Err(link_conflict(tx, &link)?);
            }
            out.link_revs.push((link.id, "1".into()));
        }
        Op::UpdateLink { link, expected_rev } => {
            let rev: i64 = tx
                .prepare_cached("SELECT rev FROM links WHERE id = ?")
                .map_err(map_err)?
                .query_row([&link.id], |r| r.get(0))
                .optional()
                .map_err(map_err)?
                .ok_or_else(|| RepoError::NotFound(format!("repo/link/{}", link.id)))?;
            check_rev(&link.id, expected_rev.as_ref(), rev)?;
            let r = tx
                .prepare_cached(
                    "UPDATE links SET rev = ?, link_type = ?, link_qualifier = ?, first_id = ?, \
                     second_id = ? WHERE id = ?",
                )
                .map_err(map_err)?
                .execute(params![
                    rev + 1,
                    link.link_type,
                    link.link_qualifier,
                    link.first_id,
                    link.second_id,
                    link.id
                ]);
            match r {
                Ok(_) => out.link_revs.push((link.id, (rev + 1).to_string())),
                Err(rusqlite::Error::SqliteFailure(f, _))
                    if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    return Err(RepoError::Conflict(ConflictKind::Other(format!(
                        "link {}/{}: first or second id already linked",
                        link.link_type, link.link_qualifier
                    ))));
                }
                Err(e) => return Err(map_err(e)),
            }
        }
        Op::DeleteLink { id, expected_rev } => {
            let rev: i64 = tx
                .prepare_cached("SELECT rev FROM links WHERE id = ?")
                .map_err(map_err)?
                .query_row([&id], |r| r.get(0))
                .optional()
                .map_err(map_err)?
                .ok_or_else(|| RepoError::NotFound(format!("repo/link/{id}")))?;
            check_rev(&id, expected_rev.as_ref(), rev)?;
            tx.prepare_cached("DELETE FROM links WHERE id = ?")
                .map_err(map_err)?
                .execute([&id])
                .map_err(map_err)?;
        }
        Op::AppendAudit(entry) => insert_audit(tx, entry)?,
        Op::AddRunCounters {
            run_id,
            node_id,
            counters,
        } => {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO run_counters (run_id, node_id, key, value) VALUES (?, ?, ?, ?) \
                     ON CONFLICT (run_id, node_id, key) DO UPDATE SET value = value + excluded.value",
                )
                .map_err(map_err)?;
            for (k, v) in counters {
                stmt.execute(params![run_id, node_id, k, v])
                    .map_err(map_err)?;
            }
        }
        Op::AddPlanEntries(entries) => {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO plan_entries (run_id, id, entry) VALUES (?, ?, ?) \
                     ON CONFLICT (run_id, id) DO UPDATE SET entry = excluded.entry",
                )
                .map_err(map_err)?;
            for e in entries {
                let mut entry = e.entry;
                if let Value::Object(m) = &mut entry {
                    m.insert("_id".into(), Value::String(e.id.clone()));
                }
                stmt.execute(params![e.run_id, e.id, entry.to_string()])
                    .map_err(map_err)?;
            }
        }
        Op::RegisterTargetIds { run_id, ids } => {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO target_ids (run_id, target_id) VALUES (?, ?)",
                )
                .map_err(map_err)?;
            for id in ids {
                stmt.execute(params![run_id, id]).map_err(map_err)?;
            }
        }
        Op::RecordCreateIntents {
            run_id,
            job_id,
            source_ids,
        } => {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO create_intents (job_id, source_id, run_id) \
                     VALUES (?, ?, ?)",
                )
                .map_err(map_err)?;
            for s in source_ids {
                stmt.execute(params![job_id, s, run_id]).map_err(map_err)?;
            }
        }
        Op::EnqueueSyncEvent(ev) => insert_event(tx, &ev)?,
        Op::CompleteJob { job_id } => {
            let n = tx
                // A done job stays as a tombstone (until its run is pruned), so a re-run of
                // the page that scheduled it cannot schedule it again.
                .prepare_cached(
                    "UPDATE jobs SET state = 'DONE', owner_node = NULL, lease_until = NULL \
                     WHERE id = ? AND state <> 'DONE'",
                )
                .map_err(map_err)?
                .execute([&job_id])
                .map_err(map_err)?;
            if n == 0 {
                return Err(RepoError::NotFound(format!("job {job_id}")));
            }
        }
        Op::EnqueueJob(job) => insert_job(tx, &job)?,
        Op::SetSyncToken { source, token } => {
            tx.prepare_cached(
                "INSERT INTO sync_tokens (source, token) VALUES (?, ?) \
                 ON CONFLICT (source) DO UPDATE SET token = excluded.token",
            )
            .map_err(map_err)?
            .execute(params![source, token.to_string()])
            .map_err(map_err)?;
        }
        Op::DeleteDeadLetter { id } => {
            let n = tx
                .prepare_cached("DELETE FROM dead_letters WHERE id = ?")
                .map_err(map_err)?
                .execute([&id])
                .map_err(map_err)?;
            if n == 0 {
                return Err(RepoError::NotFound(format!("sync/deadletter/{id}")));
            }
        }
        Op::DeadLetterEvent { letter, node_id } => {
            let n = tx
                .prepare_cached(
                    "DELETE FROM sync_queue WHERE id = ? AND state = 'ACQUIRED' AND node_id = ?",
                )
                .map_err(map_err)?
                .execute(params![letter.event.id, node_id])
                .map_err(map_err)?;
            if n == 0 {
                return Err(RepoError::NotFound(format!(
                    "sync/queue/{} acquired by {node_id}",
                    letter.event.id
                )));
            }
            let event = serde_json::to_string(&letter.event).map_err(RepoError::internal)?;
            let doc = letter.to_json().to_string();
            let n = tx
                .prepare_cached(
                    "INSERT INTO dead_letters (id, event, failure_cause, retries, \
                     failed_date, doc) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                )
                .map_err(map_err)?
                .execute(params![
                    letter.id,
                    event,
                    letter.failure_cause,
                    letter.retries,
                    micros(&letter.failed_date),
                    doc
                ])
                .map_err(map_err)?;
            if n == 0 {
                return Err(RepoError::already_exists("sync/deadletter", letter.id));
            }
        }
        Op::UpdateRun { run_id, update } => {
            super::records::update_run(tx, &run_id, &update)?;
        }
        Op::DeleteSyncEvent { id, node_id } => {
            let n = tx
                .prepare_cached(
                    "DELETE FROM sync_queue WHERE id = ? AND state = 'ACQUIRED' AND node_id = ?",
                )
                .map_err(map_err)?
                .execute(params![id, node_id])
                .map_err(map_err)?;
            if n == 0 {
                return Err(RepoError::NotFound(format!(
                    "sync/queue/{id} acquired by {node_id}"
                )));
            }
        }
        // SQLite has one writer at a time: the lock cannot change hands during this commit.
        Op::HoldsLock {
            name,
            node_id,
            token,
        } => {
            let held: Option<i64> = tx
                .prepare_cached("SELECT 1 FROM locks WHERE name = ? AND node_id = ? AND token = ?")
                .map_err(map_err)?
                .query_row(params![name, node_id, token], |r| r.get(0))
                .optional()
                .map_err(map_err)?;
            if held.is_none() {
                return Err(RepoError::LockLost { name, node_id });
            }
        }
    }
    Ok(())
}

fn link_conflict(tx: &Connection, link: &Link) -> RepoResult<RepoError> {
    let exists: Option<i64> = tx
        .prepare_cached("SELECT 1 FROM links WHERE id = ?")
        .map_err(map_err)?
        .query_row([&link.id], |r| r.get(0))
        .optional()
        .map_err(map_err)?;
    Ok(if exists.is_some() {
        RepoError::already_exists("repo/link", link.id.clone())
    } else {
        RepoError::Conflict(ConflictKind::Other(format!(
            "link {}/{}: {} or {} already linked",
            link.link_type, link.link_qualifier, link.first_id, link.second_id
        )))
    })
}

pub fn insert_audit(conn: &Connection, mut entry: AuditEntry) -> RepoResult<()> {
    if let Some(values) = crate::recon_entry::narrow(&entry) {
        let mut stmt = conn
            .prepare_cached(&super::recon_entries::INSERT)
            .map_err(map_err)?;
        stmt.raw_bind_parameter(1, &entry.id).map_err(map_err)?;
        stmt.raw_bind_parameter(2, micros(&entry.timestamp))
            .map_err(map_err)?;
        for (i, v) in values.iter().enumerate() {
            stmt.raw_bind_parameter(i + 3, v).map_err(map_err)?;
        }
        stmt.raw_execute().map_err(map_err)?;
        return Ok(());
    }
    if let Value::Object(m) = &mut entry.entry
        && !m.contains_key("_id")
    {
        m.insert("_id".into(), Value::String(entry.id.clone()));
    }
    conn.prepare_cached(
        "INSERT INTO audit (id, kind, timestamp, recon_id, mapping, entry_type, entry) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .map_err(map_err)?
    .execute(params![
        entry.id,
        entry.kind.as_str(),
        micros(&entry.timestamp),
        entry.recon_id,
        entry.mapping,
        entry.entry_type,
        entry.entry.to_string()
    ])
    .map_err(map_err)?;
    Ok(())
}

pub fn insert_event(conn: &Connection, ev: &SyncEvent) -> RepoResult<()> {
    // Queue dates have millisecond precision; truncate so the stored value and the
    // rendered createDate agree.
    let create = micros(&ev.create_date) / 1000 * 1000;
    let n = conn
        .prepare_cached(
            "INSERT INTO sync_queue (id, rev, mapping, resource_id, resource_collection, \
             sync_action, state, node_id, remaining_retries, create_date, old_object, \
             new_object, object_rev, context) VALUES (?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT DO NOTHING",
        )
        .map_err(map_err)?
        .execute(params![
            ev.id,
            ev.mapping,
            ev.resource_id,
            ev.resource_collection,
            ev.sync_action.as_str(),
            ev.state.as_str(),
            ev.node_id,
            ev.remaining_retries,
            create,
            ev.old_object.as_ref().map(Value::to_string),
            ev.new_object.as_ref().map(Value::to_string),
            ev.object_rev,
            ev.context.to_string()
        ])
        .map_err(map_err)?;
    if n == 0 {
        return Err(RepoError::already_exists("sync/queue", ev.id.clone()));
    }
    Ok(())
}

pub fn insert_job(conn: &Connection, job: &Job) -> RepoResult<()> {
    let n = conn
        .prepare_cached(
            "INSERT INTO jobs (id, kind, run_id, payload, state, owner_node, lease_until, token, \
             not_before, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .map_err(map_err)?
        .execute(params![
            job.id,
            job.kind,
            job.run_id,
            job.payload.to_string(),
            job.state.as_str(),
            job.owner_node,
            job.lease_until.as_ref().map(micros),
            job.token,
            job.not_before.as_ref().map(micros),
            micros(&job.created)
        ])
        .map_err(map_err)?;
    if n == 0 {
        return Err(RepoError::already_exists("job", job.id.clone()));
    }
    Ok(())
}
