//! Records stored by the repository: links, runs, plan entries, jobs, nodes, locks, queue
//! events, dead letters, audit entries. Plain data; no I/O and no backend types here.
//!
//! Managed objects are plain `serde_json::Value` objects that always carry `_id` and `_rev`.
//! Revisions are decimal counters as strings: `"1"` on create, `"2"` after the first update, …

use chrono::{DateTime, Utc};
use idsync_core::{ReconStage, ReconState};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// A link between a source id and a target id for one mapping (docs/configuration.md#mappings). Unique per
/// (link_type, link_qualifier, first_id) and per (link_type, link_qualifier, second_id).
/// Case-insensitive ids are lower-cased by the caller; the repository stores them as given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub id: String,
    /// Assigned by the repository on write; ignored in `CreateLink`.
    pub rev: String,
    /// The mapping name (or the `links` mapping it reuses).
    pub link_type: String,
    pub link_qualifier: String,
    /// The source-side id.
    pub first_id: String,
    /// The target-side id.
    pub second_id: String,
}

impl Link {
    /// The `repo/link` REST shape: `{_id,_rev,linkType,linkQualifier,firstId,secondId}`.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "_id": self.id,
            "_rev": self.rev,
            "linkType": self.link_type,
            "linkQualifier": self.link_qualifier,
            "firstId": self.first_id,
            "secondId": self.second_id,
        })
    }
}

/// A reconciliation run as stored. `summary` is the latest docs/rest.md#reconciliation summary
/// JSON written by the engine; counters of clustered pages are kept separately (see
/// [`RunCounters`]) and merged by the engine when it renders a summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: String,
    pub mapping: String,
    /// A dry run.
    pub analyze: bool,
    pub state: ReconState,
    pub stage: ReconStage,
    pub started: DateTime<Utc>,
    pub ended: Option<DateTime<Utc>>,
    pub cancel_requested: bool,
    pub message: Option<String>,
    /// The recon request parameters / overrides.
    pub parameters: Value,
    /// The latest summary JSON (docs/rest.md#reconciliation).
    pub summary: Value,
    /// Totals known so far (e.g. `{"source": 10000, "target": 12}`).
    pub totals: Value,
    /// The node that started the run.
    pub node_id: String,
}

/// A partial update of a run: `None` leaves a field unchanged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunUpdate {
    pub state: Option<ReconState>,
    pub stage: Option<ReconStage>,
    pub ended: Option<DateTime<Utc>>,
    pub message: Option<String>,
    pub summary: Option<Value>,
    pub totals: Option<Value>,
}

/// Counter sums of a run: per node and key, and per key over all nodes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunCounters {
    pub by_node: BTreeMap<String, BTreeMap<String, i64>>,
    pub totals: BTreeMap<String, i64>,
}

/// One dry-run plan entry (docs/rest.md#reconciliation). `entry` is the whole JSON entry
/// (`{"_id","reconId","phase","sourceId","targetId","linkQualifier","situation","action",
/// "ambiguousTargetIds","diff"}`); `query_plan` filters over its fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanEntry {
    pub id: String,
    pub run_id: String,
    pub entry: Value,
}

/// The state of a job row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobState {
    /// Waiting to be claimed (or released back).
    Pending,
    /// Claimed by `owner_node` until `lease_until`; re-claimable after expiry.
    Claimed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "PENDING",
            JobState::Claimed => "CLAIMED",
        }
    }
}

/// A unit of clustered work: a source page, a completion check, a target phase, …
/// Completed jobs are deleted (`Op::CompleteJob`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    /// What to do, e.g. `"recon.sourcePage"`; `claim_next` filters on it.
    pub kind: String,
    pub run_id: Option<String>,
    pub payload: Value,
    pub state: JobState,
    pub owner_node: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    /// The fencing token: incremented on every claim; 0 until first claimed.
    pub token: i64,
    /// Not claimable before this instant (retry delays, scheduling).
    pub not_before: Option<DateTime<Utc>>,
    pub created: DateTime<Utc>,
}

impl Job {
    /// A new PENDING job with token 0, created now.
    pub fn new(
        id: impl Into<String>,
        kind: impl Into<String>,
        run_id: Option<String>,
        payload: Value,
    ) -> Self {
        Job {
            id: id.into(),
            kind: kind.into(),
            run_id,
            payload,
            state: JobState::Pending,
            owner_node: None,
            lease_until: None,
            token: 0,
            not_before: None,
            created: Utc::now(),
        }
    }
}

/// A job just claimed; `token` is what the claimer must put in its [`crate::Fence`].
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedJob {
    pub job: Job,
    pub token: i64,
}

/// Cluster node states as shown by `GET cluster`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NodeState {
    #[serde(rename = "STATE_RUNNING")]
    Running,
    #[serde(rename = "STATE_PROCESSING_DOWN")]
    ProcessingDown,
    #[serde(rename = "STATE_DOWN")]
    Down,
}

impl NodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Running => "STATE_RUNNING",
            NodeState::ProcessingDown => "STATE_PROCESSING_DOWN",
            NodeState::Down => "STATE_DOWN",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "STATE_RUNNING" => Some(NodeState::Running),
            "STATE_PROCESSING_DOWN" => Some(NodeState::ProcessingDown),
            "STATE_DOWN" => Some(NodeState::Down),
            _ => None,
        }
    }
}

/// A cluster node row. The stored `state` is what the node last wrote; whether it is down by
/// heartbeat timeout is decided by the caller from `last_heartbeat`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub id: String,
    pub state: NodeState,
    pub startup: DateTime<Utc>,
    pub shutdown: Option<DateTime<Utc>>,
    pub last_heartbeat: DateTime<Utc>,
    /// The host it runs on, as its last heartbeat said (`None` for a row older than that).
    pub host: Option<String>,
}

/// A held lock (queued-sync mapping locks and others).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRecord {
    pub name: String,
    pub node_id: String,
    /// Increases on every acquisition of this lock name.
    pub token: i64,
    pub acquired: DateTime<Utc>,
}

/// `syncAction` of a queue event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SyncAction {
    NotifyCreate,
    NotifyUpdate,
    NotifyDelete,
}

impl SyncAction {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncAction::NotifyCreate => "notifyCreate",
            SyncAction::NotifyUpdate => "notifyUpdate",
            SyncAction::NotifyDelete => "notifyDelete",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "notifyCreate" => Some(SyncAction::NotifyCreate),
            "notifyUpdate" => Some(SyncAction::NotifyUpdate),
            "notifyDelete" => Some(SyncAction::NotifyDelete),
            _ => None,
        }
    }
}

/// `state` of a queue event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventState {
    Pending,
    Acquired,
}

impl EventState {
    pub fn as_str(self) -> &'static str {
        match self {
            EventState::Pending => "PENDING",
            EventState::Acquired => "ACQUIRED",
        }
    }
}

/// A queued-sync event (docs/rest.md). `rev` is assigned by the repository.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncEvent {
    pub id: String,
    pub rev: String,
    pub mapping: String,
    /// The managed object's id.
    pub resource_id: String,
    /// e.g. `managed/user`.
    pub resource_collection: String,
    pub sync_action: SyncAction,
    pub state: EventState,
    pub node_id: Option<String>,
    /// -1 = unlimited.
    pub remaining_retries: i64,
    pub create_date: DateTime<Utc>,
    pub old_object: Option<Value>,
    pub new_object: Option<Value>,
    /// The managed object's `_rev` after the write.
    pub object_rev: Option<String>,
    /// Request context (caller, transaction id) for audit.
    pub context: Value,
    /// Commit order tiebreak within one `create_date`; assigned by the repository.
    pub seq: i64,
}

impl SyncEvent {
    /// The REST shape: `_id,_rev,mapping,resourceId,resourceCollection,syncAction,state,nodeId,
    /// remainingRetries,createDate` (ISO-8601 UTC with milliseconds).
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "_id": self.id,
            "_rev": self.rev,
            "mapping": self.mapping,
            "resourceId": self.resource_id,
            "resourceCollection": self.resource_collection,
            "syncAction": self.sync_action.as_str(),
            "state": self.state.as_str(),
            "nodeId": self.node_id,
            "remainingRetries": self.remaining_retries,
            "createDate": iso_millis(&self.create_date),
        })
    }
}

/// A dead letter: the failed event kept whole so that replay can queue it again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub id: String,
    pub event: SyncEvent,
    pub failure_cause: String,
    pub retries: i64,
    pub failed_date: DateTime<Utc>,
}

impl DeadLetter {
    /// The REST shape: `_id,mapping,resourceId,resourceCollection,syncAction,failureCause,
    /// retries,createDate,failedDate`.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "_id": self.id,
            "mapping": self.event.mapping,
            "resourceId": self.event.resource_id,
            "resourceCollection": self.event.resource_collection,
            "syncAction": self.event.sync_action.as_str(),
            "failureCause": self.failure_cause,
            "retries": self.retries,
            "createDate": iso_millis(&self.event.create_date),
            "failedDate": iso_millis(&self.failed_date),
        })
    }
}

/// Which audit topic an entry belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditKind {
    Recon,
    Sync,
}

impl AuditKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::Recon => "recon",
            AuditKind::Sync => "sync",
        }
    }
}

/// An audit entry. `entry` is the full JSON (docs/configuration.md#mappings fields); `recon_id`, `mapping`,
/// `entry_type` and `timestamp` are also stored in indexed columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: String,
    pub kind: AuditKind,
    pub timestamp: DateTime<Utc>,
    pub recon_id: Option<String>,
    pub mapping: Option<String>,
    /// `start`, `entry`, `summary`, …
    pub entry_type: Option<String>,
    pub entry: Value,
}

/// Queue depth and oldest event age of one mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueStats {
    pub mapping: String,
    pub pending: u64,
    pub acquired: u64,
    pub oldest_create_date: Option<DateTime<Utc>>,
}

/// ISO-8601 UTC with milliseconds, as in IDM (`2026-01-01T00:00:00.000Z`).
pub fn iso_millis(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
