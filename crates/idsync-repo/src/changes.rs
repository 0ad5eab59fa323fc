//! The unit of work as a value: a [`ChangeSet`] of [`Op`]s, optionally fenced by a job token,
//! committed atomically by [`crate::Repository::commit`]. Either every op is applied or none.
//! This module only describes changes; backends apply them.

use crate::model::{AuditEntry, DeadLetter, Job, Link, PlanEntry, RunUpdate, SyncEvent};
use serde_json::Value;
use std::collections::BTreeMap;

/// A fencing token check: the commit is refused with `RepoError::StaleToken` (and writes
/// nothing) unless job `job_id` exists and its current token equals `token`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub job_id: String,
    pub token: i64,
}

/// One write. Ops are applied in order inside one transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Creates a managed object; `id` is always given (callers generate uuids). The stored
    /// value gets `_id` and `_rev: "1"`. An existing id → Conflict.
    CreateObject {
        object_type: String,
        id: String,
        value: Value,
    },
    /// Replaces a managed object; `expected_rev` (if given) must match → else RevisionMismatch.
    /// Missing object → NotFound. The revision is incremented.
    UpdateObject {
        object_type: String,
        id: String,
        expected_rev: Option<String>,
        value: Value,
    },
    /// Deletes a managed object (NotFound if missing; RevisionMismatch on a wrong rev).
    DeleteObject {
        object_type: String,
        id: String,
        expected_rev: Option<String>,
    },
    /// Creates a link (its `rev` is ignored and set to "1"); a duplicate id or either unique
    /// key → Conflict.
    CreateLink(Link),
    /// Replaces a link's fields by id (`expected_rev` checked when given).
    UpdateLink {
        link: Link,
        expected_rev: Option<String>,
    },
    /// Deletes a link by id (NotFound if missing).
    DeleteLink {
        id: String,
        expected_rev: Option<String>,
    },
    /// Appends an audit entry.
    AppendAudit(AuditEntry),
    /// Adds (never overwrites) per-key deltas to a run's counters for one node.
    AddRunCounters {
        run_id: String,
        node_id: String,
        counters: BTreeMap<String, i64>,
    },
    /// Stores dry-run plan entries.
    AddPlanEntries(Vec<PlanEntry>),
    /// Records target ids claimed by a run's source phase (duplicates are ignored).
    RegisterTargetIds { run_id: String, ids: Vec<String> },
    /// Records that a page job is about to create external targets for these sources
    /// (duplicates are ignored); [`crate::Repository::create_intents`] reads them back, and
    /// [`crate::Repository::delete_registry`] deletes them with the run's registry.
    RecordCreateIntents {
        run_id: String,
        job_id: String,
        source_ids: Vec<String>,
    },
    /// Persists a queue event (its `rev` and `seq` are assigned by the repository).
    EnqueueSyncEvent(SyncEvent),
    /// Marks a job DONE (a tombstone until its run is pruned: enqueueing the same id again
    /// conflicts). Missing or already done → NotFound.
    CompleteJob { job_id: String },
    /// Inserts a new job (existing id → Conflict).
    EnqueueJob(Job),
    /// Sets a liveSync token (upsert).
    SetSyncToken { source: String, token: Value },
    /// Deletes a dead letter (replay: removed with the re-queued event in one commit).
    /// Missing dead letter → NotFound.
    DeleteDeadLetter { id: String },
    /// Removes a queue event that `node_id` holds ACQUIRED: the queue consumer commits it with
    /// the event's own sync writes, so a finished event and its effect are one commit. An event
    /// that is no longer ACQUIRED by `node_id` (gone, or returned to PENDING by recovery and
    /// perhaps taken by another node) → NotFound and nothing commits: a node must not ack an
    /// event it no longer owns (the consumer also fences the commit with [`Op::HoldsLock`]).
    DeleteSyncEvent { id: String, node_id: String },
    /// A fence on a named lock (a queued mapping's consumer lock): the commit is refused with
    /// `RepoError::LockLost` (and writes nothing) unless `node_id` holds lock `name` with
    /// `token`, and the lock cannot change hands until the commit ends. A node that lost the
    /// lock — even one that took it again since, with a new token — commits nothing for the
    /// events it still had in memory.
    HoldsLock {
        name: String,
        node_id: String,
        token: i64,
    },
    /// Applies a partial update to a run (as [`crate::Repository::update_run`]) inside the
    /// commit: a finish job commits its own completion and the run's end together, so no crash
    /// can leave a finished job with an ACTIVE run. Missing run → NotFound.
    UpdateRun { run_id: String, update: RunUpdate },
    /// Dead-letters a queue event: inserts the letter and deletes its event, which must be
    /// ACQUIRED by `node_id` — else NotFound and nothing commits (a node that lost the
    /// mapping's lock writes no letter for an event another node now runs).
    DeadLetterEvent { letter: DeadLetter, node_id: String },
}

/// A set of ops committed atomically, optionally fenced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChangeSet {
    pub fence: Option<Fence>,
    pub ops: Vec<Op>,
}

impl ChangeSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// A change set that only commits if `job_id` still has `token`.
    pub fn fenced(job_id: impl Into<String>, token: i64) -> Self {
        ChangeSet {
            fence: Some(Fence {
                job_id: job_id.into(),
                token,
            }),
            ops: Vec::new(),
        }
    }

    pub fn push(&mut self, op: Op) -> &mut Self {
        self.ops.push(op);
        self
    }

    pub fn with(mut self, op: Op) -> Self {
        self.ops.push(op);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }
}

/// What a commit produced: the new revisions of written objects and links, in op order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommitOutcome {
    /// (object_type, id, new `_rev`) per CreateObject/UpdateObject.
    pub object_revs: Vec<(String, String, String)>,
    /// (link id, new rev) per CreateLink/UpdateLink.
    pub link_revs: Vec<(String, String)>,
}

impl CommitOutcome {
    /// The new `_rev` of a managed object written by this commit.
    pub fn rev_of(&self, object_type: &str, id: &str) -> Option<&str> {
        self.object_revs
            .iter()
            .rev()
            .find(|(t, i, _)| t == object_type && i == id)
            .map(|(_, _, r)| r.as_str())
    }
}
