//! Firing rows: one per fire time of a schedule, the claim that makes a firing run on one node,
//! and the record of what it did ([`Firing`], [`FiringStatus`]). Claiming, reading the newest,
//! querying and pruning them; the deterministic run id of a firing's reconciliation.

use super::entry::ScheduleEntry;
use super::{FIRING_TYPE, KEEP_FIRINGS, iso};
use crate::Engine;
use crate::error::EngineResult;
use chrono::{DateTime, TimeDelta, Utc};
use idsync_core::filter::CompareOp;
use idsync_core::{Filter, JsonPointer, QueryPage, QueryRequest, SortKey};
use idsync_repo::{ChangeSet, Op, RepoError};
use idsync_scheduler::firing_id;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The run id of a firing's reconciliation: the same on every node, so that a node taking a
/// firing over finds the run if the dead node had started it. UUID v7-shaped (the fire time in
/// its timestamp bits), like the ids of other runs.
pub fn firing_run_id(firing_id: &str, fire_time_ms: i64) -> String {
    let fnv = |seed: u64| {
        firing_id.bytes().fold(seed, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    };
    let (a, b) = (fnv(0xcbf2_9ce4_8422_2325), fnv(0x8422_2325_cbf2_9ce4));
    let mut rand = [0u8; 10];
    rand[..8].copy_from_slice(&a.to_be_bytes());
    rand[8..].copy_from_slice(&b.to_be_bytes()[..2]);
    let ms = u64::try_from(fire_time_ms).unwrap_or(0);
    uuid::Builder::from_unix_timestamp_millis(ms, &rand)
        .into_uuid()
        .to_string()
}

/// What became of a firing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FiringStatus {
    /// Claimed; its work has not finished (or its node died).
    Running,
    /// A reconciliation was started (`runId`).
    Started,
    /// Nothing ran: the mapping's previous run is active (`activeRunId`), or the service is not
    /// supported; `message` says why.
    Skipped,
    /// A script ran to its end.
    Success,
    Failed,
}

/// One firing: the claim row of a schedule's fire time, and what it did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Firing {
    #[serde(rename = "_id")]
    pub id: String,
    pub schedule: String,
    /// The scheduled instant, epoch milliseconds (the id's suffix).
    pub fire_time: i64,
    pub fire_date: String,
    /// How many scheduled firings of this definition came before (for `repeatCount`).
    pub seq: u64,
    /// Fired by `_action=trigger` rather than by the trigger.
    pub manual: bool,
    /// The definition's fingerprint ([`ScheduleEntry::fingerprint`]).
    pub trigger: String,
    /// The node that claimed (and ran) it.
    pub node: String,
    pub claimed: String,
    pub status: FiringStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<String>,
}

impl Firing {
    pub fn fire_instant(&self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp_millis(self.fire_time)
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

pub(super) fn eq(field: &str, value: Value) -> Filter {
    Filter::Compare {
        field: JsonPointer::parse(field),
        op: CompareOp::Eq,
        value,
    }
}

pub(super) fn firings_of(name: &str) -> Filter {
    eq("schedule", json!(name))
}

impl Engine {
    /// The newest scheduled firing of this definition: its instant and sequence number.
    pub async fn last_firing(
        &self,
        entry: &ScheduleEntry,
    ) -> EngineResult<Option<(DateTime<Utc>, u64)>> {
        let req = QueryRequest {
            filter: Some(Filter::And(vec![
                firings_of(entry.name()),
                eq("manual", json!(false)),
            ])),
            sort_keys: vec![SortKey::parse("-fireTime")],
            page_size: Some(1),
            ..QueryRequest::default()
        };
        let page = self.repo.query_objects(FIRING_TYPE, &req).await?;
        let Some(row) = page.results.first() else {
            return Ok(None);
        };
        let Ok(f) = serde_json::from_value::<Firing>(row.clone()) else {
            return Ok(None);
        };
        if f.trigger != entry.fingerprint() {
            return Ok(None);
        }
        Ok(f.fire_instant().map(|t| (t, f.seq)))
    }

    /// Where the trigger continues from: after the newest firing, else after the stored
    /// anchor (a simple trigger's first firing is at its start, so just before it), else now.
    pub(super) async fn start_point(
        &self,
        entry: &ScheduleEntry,
        now: DateTime<Utc>,
    ) -> EngineResult<(DateTime<Utc>, u64)> {
        Ok(match self.last_firing(entry).await? {
            Some((t, seq)) => (t, seq + 1),
            None => (
                entry.anchor.map_or(now, |a| a - TimeDelta::milliseconds(1)),
                0,
            ),
        })
    }

    /// Creates the firing row of `fire_time`: `Some` when this node won it, `None` when another
    /// node already has it.
    pub(super) async fn claim(
        &self,
        entry: &ScheduleEntry,
        fire_time: DateTime<Utc>,
        seq: u64,
        manual: bool,
    ) -> EngineResult<Option<Firing>> {
        let firing = Firing {
            id: firing_id(entry.name(), fire_time),
            schedule: entry.name().to_string(),
            fire_time: fire_time.timestamp_millis(),
            fire_date: iso(fire_time),
            seq,
            manual,
            trigger: entry.fingerprint(),
            node: self.node_id.clone(),
            claimed: iso(Utc::now()),
            status: FiringStatus::Running,
            run_id: None,
            active_run_id: None,
            message: None,
            finished: None,
        };
        let op = Op::CreateObject {
            object_type: FIRING_TYPE.into(),
            id: firing.id.clone(),
            value: firing.to_json(),
        };
        match self.repo.commit(ChangeSet::new().with(op)).await {
            Ok(_) => Ok(Some(firing)),
            Err(RepoError::Conflict(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// A CREST query over a schedule's firing rows (newest first unless sorted otherwise).
    pub async fn query_firings(&self, name: &str, query: &QueryRequest) -> EngineResult<QueryPage> {
        let mut q = query.clone();
        q.filter = Some(match q.filter.take() {
            Some(f) => Filter::And(vec![firings_of(name), f]),
            None => firings_of(name),
        });
        if q.sort_keys.is_empty() && q.cookie.is_none() {
            q.sort_keys = vec![SortKey::parse("-fireTime")];
        }
        Ok(self.repo.query_objects(FIRING_TYPE, &q).await?)
    }

    /// Keeps the newest [`KEEP_FIRINGS`] rows of a schedule. Failures are logged only: the
    /// next winner prunes again.
    pub(super) async fn prune_firings(&self, name: &str) {
        if let Err(e) = self.delete_firings(name, KEEP_FIRINGS).await {
            tracing::debug!(schedule = name, error = %e, "pruning old firings failed; the next firing retries");
        }
    }

    /// Deletes the firing rows of a schedule after the newest `keep`.
    pub(super) async fn delete_firings(&self, name: &str, keep: usize) -> EngineResult<u64> {
        let mut deleted = 0;
        loop {
            let req = QueryRequest {
                filter: Some(firings_of(name)),
                fields: Some(vec![JsonPointer::parse("_id")]),
                sort_keys: vec![SortKey::parse("-fireTime")],
                page_size: Some(500),
                offset: (keep > 0).then_some(keep),
                ..QueryRequest::default()
            };
            let page = self.repo.query_objects(FIRING_TYPE, &req).await?;
            if page.results.is_empty() {
                return Ok(deleted);
            }
            let mut cs = ChangeSet::new();
            for r in &page.results {
                if let Some(id) = r["_id"].as_str() {
                    cs.push(Op::DeleteObject {
                        object_type: FIRING_TYPE.into(),
                        id: id.to_string(),
                        expected_rev: None,
                    });
                }
            }
            deleted += cs.len() as u64;
            self.repo.commit(cs).await?;
        }
    }
}
