//! Row ↔ record conversions and the read/write helpers for links and runs.

use super::query::map_err;
use super::time::{from_micros, micros};
use crate::error::{ConflictKind, RepoError, RepoResult};
use crate::model::{Job, JobState, Link, RunCounters, RunRecord, RunUpdate, SyncEvent};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::Value;

pub fn parse_json(s: Option<String>) -> rusqlite::Result<Value> {
    Ok(s.and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null))
}

fn enum_from<T: serde::de::DeserializeOwned>(s: String) -> rusqlite::Result<T> {
    serde_json::from_value(Value::String(s.clone())).map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            format!("unknown value {s}").into(),
        )
    })
}

pub const LINK_COLS: &str = "id, rev, link_type, link_qualifier, first_id, second_id";

pub fn link_row(r: &Row<'_>) -> rusqlite::Result<Link> {
    Ok(Link {
        id: r.get(0)?,
        rev: r.get::<_, i64>(1)?.to_string(),
        link_type: r.get(2)?,
        link_qualifier: r.get(3)?,
        first_id: r.get(4)?,
        second_id: r.get(5)?,
    })
}

pub fn links_where(
    conn: &Connection,
    cond: &str,
    params: &[&dyn rusqlite::ToSql],
) -> RepoResult<Vec<Link>> {
    links_from(conn, "links", cond, params)
}

/// Links of `from` (the table, possibly with an `INDEXED BY` clause) matching `cond`.
pub fn links_from(
    conn: &Connection,
    from: &str,
    cond: &str,
    params: &[&dyn rusqlite::ToSql],
) -> RepoResult<Vec<Link>> {
    let sql = format!("SELECT {LINK_COLS} FROM {from} WHERE {cond}");
    let mut stmt = conn.prepare_cached(&sql).map_err(map_err)?;
    let rows = stmt.query_map(params, link_row).map_err(map_err)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(map_err)
}

pub const RUN_COLS: &str = "id, mapping, analyze, state, stage, started, ended, \
    cancel_requested, message, parameters, summary, totals, node_id";

pub fn run_row(r: &Row<'_>) -> rusqlite::Result<RunRecord> {
    Ok(RunRecord {
        id: r.get(0)?,
        mapping: r.get(1)?,
        analyze: r.get(2)?,
        state: enum_from(r.get(3)?)?,
        stage: enum_from(r.get(4)?)?,
        started: from_micros(r.get(5)?),
        ended: r.get::<_, Option<i64>>(6)?.map(from_micros),
        cancel_requested: r.get(7)?,
        message: r.get(8)?,
        parameters: parse_json(r.get(9)?)?,
        summary: parse_json(r.get(10)?)?,
        totals: parse_json(r.get(11)?)?,
        node_id: r.get(12)?,
    })
}

pub fn get_run(conn: &Connection, id: &str) -> RepoResult<Option<RunRecord>> {
    conn.prepare_cached(&format!("SELECT {RUN_COLS} FROM runs WHERE id = ?"))
        .map_err(map_err)?
        .query_row([id], run_row)
        .optional()
        .map_err(map_err)
}

pub fn active_run(conn: &Connection, mapping: &str) -> RepoResult<Option<RunRecord>> {
    conn.prepare_cached(&format!(
        "SELECT {RUN_COLS} FROM runs WHERE mapping = ? AND state = 'ACTIVE'"
    ))
    .map_err(map_err)?
    .query_row([mapping], run_row)
    .optional()
    .map_err(map_err)
}

pub fn create_run(conn: &Connection, run: &RunRecord) -> RepoResult<()> {
    let r = conn
        .prepare_cached(&format!(
            "INSERT INTO runs ({RUN_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .map_err(map_err)?
        .execute(params![
            run.id,
            run.mapping,
            run.analyze,
            run.state.as_str(),
            run.stage.as_str(),
            micros(&run.started),
            run.ended.as_ref().map(micros),
            run.cancel_requested,
            run.message,
            run.parameters.to_string(),
            run.summary.to_string(),
            run.totals.to_string(),
            run.node_id
        ]);
    match r {
        Ok(_) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(f, _))
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            // Either the id exists or the partial unique index refused a second active run.
            if get_run(conn, &run.id)?.is_some() {
                return Err(RepoError::already_exists("run", run.id.clone()));
            }
            let active = active_run(conn, &run.mapping)?
                .map(|r| r.id)
                .unwrap_or_default();
            Err(RepoError::Conflict(ConflictKind::ActiveRun {
                mapping: run.mapping.clone(),
                active_run_id: active,
            }))
        }
        Err(e) => Err(map_err(e)),
    }
}

pub fn update_run(conn: &Connection, id: &str, u: &RunUpdate) -> RepoResult<RunRecord> {
    let n = conn
        .prepare_cached(
            "UPDATE runs SET state = COALESCE(?, state), stage = COALESCE(?, stage), \
             ended = COALESCE(?, ended), message = COALESCE(?, message), \
             summary = COALESCE(?, summary), totals = COALESCE(?, totals) WHERE id = ?",
        )
        .map_err(map_err)?
        .execute(params![
            u.state.map(|s| s.as_str()),
            u.stage.map(|s| s.as_str()),
            u.ended.as_ref().map(micros),
            u.message,
            u.summary.as_ref().map(Value::to_string),
            u.totals.as_ref().map(Value::to_string),
            id
        ])
        .map_err(map_err)?;
    if n == 0 {
        return Err(RepoError::NotFound(format!("recon/{id}")));
    }
    get_run(conn, id)?.ok_or_else(|| RepoError::NotFound(format!("recon/{id}")))
}

pub fn run_counters(conn: &Connection, run_id: &str) -> RepoResult<RunCounters> {
    let mut stmt = conn
        .prepare_cached("SELECT node_id, key, value FROM run_counters WHERE run_id = ?")
        .map_err(map_err)?;
    let rows = stmt
        .query_map([run_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .map_err(map_err)?;
    let mut out = RunCounters::default();
    for row in rows {
        let (node, key, value) = row.map_err(map_err)?;
        *out.totals.entry(key.clone()).or_default() += value;
        *out.by_node.entry(node).or_default().entry(key).or_default() += value;
    }
    Ok(out)
}

pub const JOB_COLS: &str =
    "id, kind, run_id, payload, state, owner_node, lease_until, token, not_before, created";

pub fn job_row(r: &Row<'_>) -> rusqlite::Result<Job> {
    let state: String = r.get(4)?;
    Ok(Job {
        id: r.get(0)?,
        kind: r.get(1)?,
        run_id: r.get(2)?,
        payload: parse_json(r.get(3)?)?,
        state: if state == "CLAIMED" {
            JobState::Claimed
        } else {
            JobState::Pending
        },
        owner_node: r.get(5)?,
        lease_until: r.get::<_, Option<i64>>(6)?.map(from_micros),
        token: r.get(7)?,
        not_before: r.get::<_, Option<i64>>(8)?.map(from_micros),
        created: from_micros(r.get(9)?),
    })
}

pub const EVENT_COLS: &str = "id, rev, mapping, resource_id, resource_collection, sync_action, \
    state, node_id, remaining_retries, create_date, old_object, new_object, object_rev, context, seq";

pub fn event_row(r: &Row<'_>) -> rusqlite::Result<SyncEvent> {
    raw_event_row(r).map(RawEvent::parse)
}

/// A queue row as read, its JSON columns still text: the queue poll reads rows on the writer
/// connection and parses them after giving it back, so parsing never holds up other writers.
#[derive(Debug)]
pub struct RawEvent {
    event: SyncEvent,
    old_object: Option<String>,
    new_object: Option<String>,
    context: Option<String>,
}

impl RawEvent {
    /// Queue order: creation date, then insertion order.
    /// Commit order (one writer at a time: the insert sequence is the commit order).
    pub fn order(&self) -> i64 {
        self.event.seq
    }

    pub fn parse(self) -> SyncEvent {
        let json = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
        SyncEvent {
            old_object: json(self.old_object),
            new_object: json(self.new_object),
            context: json(self.context).unwrap_or(Value::Null),
            ..self.event
        }
    }
}

pub fn raw_event_row(r: &Row<'_>) -> rusqlite::Result<RawEvent> {
    let action: String = r.get(5)?;
    let state: String = r.get(6)?;
    Ok(RawEvent {
        event: SyncEvent {
            id: r.get(0)?,
            rev: r.get::<_, i64>(1)?.to_string(),
            mapping: r.get(2)?,
            resource_id: r.get(3)?,
            resource_collection: r.get(4)?,
            sync_action: crate::model::SyncAction::parse(&action).ok_or_else(|| {
                rusqlite::Error::FromSqlConversionFailure(
                    5,
                    rusqlite::types::Type::Text,
                    format!("unknown syncAction {action}").into(),
                )
            })?,
            state: if state == "ACQUIRED" {
                crate::model::EventState::Acquired
            } else {
                crate::model::EventState::Pending
            },
            node_id: r.get(7)?,
            remaining_retries: r.get(8)?,
            create_date: from_micros(r.get(9)?),
            old_object: None,
            new_object: None,
            object_rev: r.get(12)?,
            context: Value::Null,
            seq: r.get(14)?,
        },
        old_object: r.get(10)?,
        new_object: r.get(11)?,
        context: r.get(13)?,
    })
}
