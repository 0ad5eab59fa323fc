//! The repository contract that both backends implement and the engine, the REST API and
//! queued sync are coded against. Everything a node persists goes through this trait; nothing
//! above it writes SQL.
//!
//! Conventions: times are UTC; ids are strings; JSON is `serde_json::Value`; every multi-row
//! write that must be atomic goes through [`Repository::commit`].

use crate::changes::{ChangeSet, CommitOutcome};
use crate::error::RepoResult;
use crate::model::{
    AuditEntry, AuditKind, ClaimedJob, DeadLetter, Job, Link, LockRecord, NodeRecord, NodeState,
    QueueStats, RunCounters, RunRecord, RunUpdate, SyncEvent,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use idsync_core::{Filter, QueryPage, QueryRequest};
use serde_json::Value;
use std::time::Duration;

/// The whole repository. Implementations are cheap to share (`Arc<dyn Repository>`).
#[async_trait]
pub trait Repository: Send + Sync + std::fmt::Debug {
    /// `"sqlite"` or `"postgres"`.
    fn backend(&self) -> &'static str;

    // ---------------------------------------------------------------- unit of work
    /// Applies every op of `changes` atomically. With a fence, first checks that the job's
    /// current token equals the fence token (else `StaleToken`, nothing written). The first
    /// failing op (Conflict, RevisionMismatch, NotFound) rolls everything back.
    async fn commit(&self, changes: ChangeSet) -> RepoResult<CommitOutcome>;

    // ---------------------------------------------------------------- managed objects
    /// One managed object (with `_id`, `_rev`), or `None`.
    async fn get_object(&self, object_type: &str, id: &str) -> RepoResult<Option<Value>>;
    /// Several managed objects by id in one round trip; missing ids are absent from the result.
    async fn get_objects(&self, object_type: &str, ids: &[String]) -> RepoResult<Vec<Value>>;
    /// A CREST query (`_queryFilter` translated to SQL with bound parameters; `_fields`,
    /// `_sortKeys`, `_pageSize` with keyset cookies, `_pagedResultsOffset`, EXACT totals).
    /// An extended operator or an unusable cookie → `BadQuery`.
    async fn query_objects(&self, object_type: &str, query: &QueryRequest)
    -> RepoResult<QueryPage>;
    /// The number of objects matching `filter` (`None` = all).
    async fn count_objects(&self, object_type: &str, filter: Option<&Filter>) -> RepoResult<u64>;
    /// Creates expression indexes on the given JSON-pointer properties of a type (e.g.
    /// `/userName`) so that `eq`/`sw`/sorting on them use an index. Idempotent.
    async fn ensure_indexes(&self, object_type: &str, properties: &[String]) -> RepoResult<()>;
    /// The query plan text of `query_objects(object_type, query)` (EXPLAIN), for tests and
    /// diagnostics.
    async fn explain_query(&self, object_type: &str, query: &QueryRequest) -> RepoResult<String>;

    // ---------------------------------------------------------------- links
    async fn get_link(&self, id: &str) -> RepoResult<Option<Link>>;
    async fn link_by_first(
        &self,
        link_type: &str,
        qualifier: &str,
        first_id: &str,
    ) -> RepoResult<Option<Link>>;
    async fn link_by_second(
        &self,
        link_type: &str,
        qualifier: &str,
        second_id: &str,
    ) -> RepoResult<Option<Link>>;
    /// Links of a mapping whose first id is among `first_ids` (batch lookup for a page).
    async fn links_for_sources(
        &self,
        link_type: &str,
        first_ids: &[String],
    ) -> RepoResult<Vec<Link>>;
    /// Links of a mapping whose second id is among `second_ids` (batch lookup for a page).
    async fn links_for_targets(
        &self,
        link_type: &str,
        second_ids: &[String],
    ) -> RepoResult<Vec<Link>>;
    /// Keyset batches of a mapping's links ordered by id: those with `id > after`, at most
    /// `limit`. `qualifier: None` = all qualifiers.
    async fn load_links(
        &self,
        link_type: &str,
        qualifier: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> RepoResult<Vec<Link>>;
    async fn count_links(&self, link_type: &str) -> RepoResult<u64>;
    /// `GET repo/link`: a CREST query over `{_id,_rev,linkType,linkQualifier,firstId,secondId}`.
    async fn query_links(&self, query: &QueryRequest) -> RepoResult<QueryPage>;

    // ---------------------------------------------------------------- runs
    /// Inserts a run. A second ACTIVE run of the same mapping → `Conflict(ActiveRun{..})`,
    /// enforced by the database (cluster-safe).
    async fn create_run(&self, run: &RunRecord) -> RepoResult<()>;
    /// Applies a partial update; `NotFound` if the run is missing.
    async fn update_run(&self, run_id: &str, update: &RunUpdate) -> RepoResult<RunRecord>;
    /// Sets the cancel flag of an ACTIVE run. `Ok(false)` if the run exists but is not active;
    /// `NotFound` if it does not exist.
    async fn request_cancel(&self, run_id: &str) -> RepoResult<bool>;
    async fn get_run(&self, run_id: &str) -> RepoResult<Option<RunRecord>>;
    /// Runs, newest first; optionally only one mapping's.
    async fn list_runs(&self, mapping: Option<&str>) -> RepoResult<Vec<RunRecord>>;
    /// The mapping's ACTIVE run, if any.
    async fn active_run(&self, mapping: &str) -> RepoResult<Option<RunRecord>>;
    /// Counter sums per node and key (from `Op::AddRunCounters`).
    async fn run_counters(&self, run_id: &str) -> RepoResult<RunCounters>;
    /// Keeps the newest `keep` completed runs of a mapping; deletes older completed runs with
    /// their counters, plan entries, registry rows and jobs. Returns how many runs were deleted.
    async fn prune_runs(&self, mapping: &str, keep: usize) -> RepoResult<u64>;

    // ---------------------------------------------------------------- plans
    /// A CREST query over a run's plan entries (filter on the entry fields).
    async fn query_plan(&self, run_id: &str, query: &QueryRequest) -> RepoResult<QueryPage>;

    // ---------------------------------------------------------------- target-id registry
    /// Those of `ids` registered for the run (computed in the database).
    async fn claimed_among(&self, run_id: &str, ids: &[String]) -> RepoResult<Vec<String>>;
    /// Those of `ids` NOT registered for the run.
    async fn unclaimed_target_ids(&self, run_id: &str, ids: &[String]) -> RepoResult<Vec<String>>;
    async fn count_registered(&self, run_id: &str) -> RepoResult<u64>;
    async fn delete_registry(&self, run_id: &str) -> RepoResult<u64>;
    /// The sources a page job recorded create intents for (`Op::RecordCreateIntents`), in any
    /// attempt so far.
    async fn create_intents(&self, job_id: &str) -> RepoResult<Vec<String>>;

    // ---------------------------------------------------------------- jobs and leases
    /// Inserts a job (existing id → Conflict). Same as committing `Op::EnqueueJob`.
    async fn enqueue_job(&self, job: &Job) -> RepoResult<()>;
    /// Claims one claimable job of one of `kinds` (PENDING and `not_before` passed, or CLAIMED
    /// with an expired lease) for `node_id` until now + `lease`; its token is incremented. Lost
    /// work comes first (a lease that expired, or a job released by
    /// [`Self::release_jobs_of_node`]), then the oldest job. Two concurrent claimers never get
    /// the same job.
    async fn claim_next(
        &self,
        kinds: &[&str],
        node_id: &str,
        lease: Duration,
    ) -> RepoResult<Option<ClaimedJob>>;
    /// Like [`Self::claim_next`], but only lost work: a job CLAIMED with an expired lease (its
    /// node died) or released by [`Self::release_jobs_of_node`] (its node was found down or
    /// shut down) — not one its owner gave back with [`Self::release_job`]. A worker whose
    /// slots are all busy still takes these, so that a dead node's work is re-claimed within
    /// the lease time whatever the page size.
    async fn claim_recovered(
        &self,
        kinds: &[&str],
        node_id: &str,
        lease: Duration,
    ) -> RepoResult<Option<ClaimedJob>>;
    /// Extends the lease; `StaleToken` if the token is no longer current (or the job is gone).
    async fn renew_lease(&self, job_id: &str, token: i64, lease: Duration) -> RepoResult<()>;
    /// Returns a claimed job to PENDING (token kept; the next claim increments it).
    /// `StaleToken` if the token is no longer current.
    async fn release_job(&self, job_id: &str, token: i64) -> RepoResult<()>;
    async fn get_job(&self, job_id: &str) -> RepoResult<Option<Job>>;
    /// Whether the job was ever enqueued: PENDING, CLAIMED or a DONE tombstone (until its run
    /// is pruned).
    async fn job_exists(&self, job_id: &str) -> RepoResult<bool>;
    /// Jobs of a run still in the table (pending or claimed).
    async fn count_jobs(&self, run_id: &str) -> RepoResult<u64>;
    /// Every CLAIMED job (the work nodes hold now), by owner node then id.
    async fn claimed_jobs(&self) -> RepoResult<Vec<Job>>;
    /// Returns every job claimed by `node_id` to PENDING (clean shutdown, restart, node found
    /// down), marked as lost work for [`Self::claim_recovered`] (its old lease end is kept).
    async fn release_jobs_of_node(&self, node_id: &str) -> RepoResult<u64>;

    // ---------------------------------------------------------------- cluster nodes
    /// The repository's clock (`now()` on PostgreSQL): heartbeats are written and compared on
    /// it, so nodes whose clocks disagree still agree on who is alive.
    async fn db_now(&self) -> RepoResult<DateTime<Utc>>;
    /// Upserts the node row as RUNNING on `host` with `last_heartbeat = now` (and
    /// `startup = now` on first insert, or after it was DOWN).
    async fn heartbeat(&self, node_id: &str, host: &str, now: DateTime<Utc>) -> RepoResult<()>;
    /// Sets a node's state (DOWN sets `shutdown = now`). `NotFound` if unknown.
    async fn set_node_state(&self, node_id: &str, state: NodeState) -> RepoResult<()>;
    async fn list_nodes(&self) -> RepoResult<Vec<NodeRecord>>;

    // ---------------------------------------------------------------- locks
    /// Acquires `name` for `node_id` if free (or already held by `node_id`). `Some(token)` on
    /// success, `None` if another node holds it.
    async fn try_acquire_lock(&self, name: &str, node_id: &str) -> RepoResult<Option<i64>>;
    /// Releases `name` if held by `node_id`; `Ok(false)` if it was not.
    async fn release_lock(&self, name: &str, node_id: &str) -> RepoResult<bool>;
    async fn locks_of_node(&self, node_id: &str) -> RepoResult<Vec<LockRecord>>;
    async fn list_locks(&self) -> RepoResult<Vec<LockRecord>>;
    async fn release_locks_of_node(&self, node_id: &str) -> RepoResult<u64>;

    // ---------------------------------------------------------------- sync queue
    /// A CREST query over the REST fields of queue events (see [`SyncEvent::to_json`]).
    async fn query_queue(&self, query: &QueryRequest) -> RepoResult<QueryPage>;
    async fn get_event(&self, id: &str) -> RepoResult<Option<SyncEvent>>;
    /// Marks up to `limit` PENDING events of `mapping` ACQUIRED by `node_id` and returns them in
    /// commit order (createDate, then sequence).
    async fn acquire_events(
        &self,
        mapping: &str,
        node_id: &str,
        limit: usize,
    ) -> RepoResult<Vec<SyncEvent>>;
    /// Puts an event this node holds back to PENDING with the given remaining retries (after
    /// its retry delay). Only the owner releases: an event ACQUIRED by another node, or PENDING
    /// again (recovery returned it and another node may take it), → `Conflict(AcquiredEvent)`
    /// and nothing changes. `NotFound` if missing.
    async fn release_for_retry(
        &self,
        id: &str,
        remaining_retries: i64,
        node_id: &str,
    ) -> RepoResult<()>;
    /// Deletes an event. An ACQUIRED event may only be deleted by its owner (`by_node` equal
    /// to its node id) → else `Conflict(AcquiredEvent)`. `NotFound` if missing.
    async fn delete_event(&self, id: &str, by_node: Option<&str>) -> RepoResult<()>;
    /// Returns every event ACQUIRED by `node_id` to PENDING.
    async fn return_acquired_to_pending(&self, node_id: &str) -> RepoResult<u64>;
    /// Depth and oldest event per mapping (mappings with events only).
    async fn queue_stats(&self) -> RepoResult<Vec<QueueStats>>;

    // ---------------------------------------------------------------- dead letters
    async fn add_dead_letter(&self, letter: &DeadLetter) -> RepoResult<()>;
    /// A CREST query over the dead-letter REST fields (see [`DeadLetter::to_json`]).
    async fn query_dead_letters(&self, query: &QueryRequest) -> RepoResult<QueryPage>;
    async fn get_dead_letter(&self, id: &str) -> RepoResult<Option<DeadLetter>>;
    /// `NotFound` if missing.
    async fn delete_dead_letter(&self, id: &str) -> RepoResult<()>;

    // ---------------------------------------------------------------- audit
    /// Appends entries outside a change set (batched).
    async fn append_audit(&self, entries: &[AuditEntry]) -> RepoResult<()>;
    /// A CREST query over the entries of one topic (filter on the entry JSON fields).
    async fn query_audit(&self, kind: AuditKind, query: &QueryRequest) -> RepoResult<QueryPage>;
    /// Deletes entries older than `before`; returns how many.
    async fn prune_audit(&self, kind: AuditKind, before: DateTime<Utc>) -> RepoResult<u64>;

    // ---------------------------------------------------------------- liveSync tokens
    async fn get_sync_token(&self, source: &str) -> RepoResult<Option<Value>>;
    /// Same as committing `Op::SetSyncToken`.
    async fn set_sync_token(&self, source: &str, token: &Value) -> RepoResult<()>;

    // ---------------------------------------------------------------- shared keys
    /// The secret key stored under `name`. The first call for a name stores `candidate` (fresh
    /// random bytes from the caller); every later call, on any node, returns that first key,
    /// even when nodes race to create it. The REST paging cookies are signed with one.
    async fn shared_key(&self, name: &str, candidate: &[u8]) -> RepoResult<Vec<u8>>;
}
