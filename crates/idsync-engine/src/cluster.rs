//! Cluster membership and the queued-sync lock protocol across nodes
//! (docs/operations.md#running-a-cluster).
//!
//! Every node runs [`run_cluster_monitor`]:
//! - **Down detection**: a node whose heartbeat is older than `nodeTimeoutMs` is marked
//!   `STATE_PROCESSING_DOWN`, its work is recovered (its jobs back to PENDING — their leases
//!   would expire anyway —, its ACQUIRED queue events back to PENDING, its locks freed), then
//!   `STATE_DOWN`. Several nodes may do this at once: every step is idempotent.
//! - **Queue recovery** (`queueRecovery`, every 300 s, and at once when a node is seen down):
//!   locks held by nodes that are not running are freed with their events.
//! - **Stuck runs** (every [`STUCK_RUNS_EVERY`] at most): an ACTIVE run with no job left to
//!   run is finished, or ended FAILED with a message (`recon::jobs::end_if_orphaned`).
//! - **Audit retention**: hourly, audit older than `auditRetentionDays` is deleted.
//! - **Balancing** (`queueBalancing`, every 5 s): a node keeps at most
//!   `ceil(queued mappings / running nodes)` mapping locks. Above it, it asks consumers to
//!   *surrender*: a surrendering consumer stops polling, finishes what it holds in memory, then
//!   releases the lock, so no event is ever run by two nodes. Below it, consumers may take free
//!   locks.

use crate::Engine;
use chrono::{DateTime, Utc};
use idsync_repo::{NodeRecord, NodeState};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// This node's share of the queued-mapping locks, shared by the balancer and the consumers.
#[derive(Debug)]
pub struct QueueBalance {
    /// How many mapping locks this node may hold (every one until the balancer has run).
    target: AtomicUsize,
    /// How many it holds now.
    held: AtomicUsize,
    /// Mappings whose consumer should hand its lock over.
    surrender: Mutex<HashSet<String>>,
}

impl Default for QueueBalance {
    fn default() -> Self {
        Self {
            target: AtomicUsize::new(usize::MAX),
            held: AtomicUsize::new(0),
            surrender: Mutex::new(HashSet::new()),
        }
    }
}

impl QueueBalance {
    /// Whether a consumer without its lock may try to take it.
    pub fn may_take(&self) -> bool {
        self.held.load(Ordering::Relaxed) < self.target.load(Ordering::Relaxed)
    }

    pub fn took(&self) {
        self.held.fetch_add(1, Ordering::Relaxed);
    }

    pub fn gave_up(&self) {
        let _ = self
            .held
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |h| h.checked_sub(1));
    }

    /// Whether the balancer asked this mapping's consumer to surrender its lock.
    pub fn must_surrender(&self, mapping: &str) -> bool {
        self.lock().contains(mapping)
    }

    /// The consumer released the lock: the request is served.
    pub fn surrendered(&self, mapping: &str) {
        self.lock().remove(mapping);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.surrender.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Runs membership, recovery and balancing until `stop` turns true.
pub async fn run_cluster_monitor(engine: Arc<Engine>, mut stop: watch::Receiver<bool>) {
    let s = &engine.project.settings;
    let tick = Duration::from_millis(s.heartbeat_interval_ms.clamp(100, 2_000));
    let recovery = &engine.project.queue_recovery;
    let balancing = &engine.project.queue_balancing;
    let recovery_every = Duration::from_millis(recovery.recovery_interval_ms.max(1_000));
    let balance_every = Duration::from_millis(balancing.balance_interval_ms.max(100));
    let (mut last_recovery, mut last_balance) = (Instant::now(), None::<Instant>);
    let mut last_prune = None::<Instant>;
    let stuck_every = Duration::from_millis(s.node_timeout_ms).min(STUCK_RUNS_EVERY);
    let mut last_stuck = Instant::now();
    loop {
        if last_prune.is_none_or(|t| t.elapsed() >= AUDIT_PRUNE_EVERY) {
            prune_audit(&engine).await;
            last_prune = Some(Instant::now());
        }
        match nodes_and_now(&engine).await {
            Ok((nodes, now)) => {
                let sharing = nodes_on_this_host(&engine, &nodes, now);
                if engine.set_host_nodes(sharing) {
                    let jobs = usize::try_from(s.max_concurrent_jobs).unwrap_or(usize::MAX);
                    tracing::info!(
                        nodes = sharing,
                        jobs = engine.job_slots(jobs),
                        "running nodes on this host changed: this node's share of maxConcurrentJobs"
                    );
                }
                let downed = mark_down_nodes(&engine, &nodes, now).await;
                if recovery.enabled && (downed || last_recovery.elapsed() >= recovery_every) {
                    recover_orphaned_locks(&engine).await;
                    last_recovery = Instant::now();
                }
                if balancing.enabled && last_balance.is_none_or(|t| t.elapsed() >= balance_every) {
                    balance(&engine).await;
                    last_balance = Some(Instant::now());
                }
            }
            Err(e) => tracing::warn!(error = %e, "cluster monitor: cannot list nodes"),
        }
        if last_stuck.elapsed() >= stuck_every {
            end_stuck_runs(&engine).await;
            last_stuck = Instant::now();
        }
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = stop.changed() => return,
        }
    }
}

/// How often, at most, ACTIVE runs are checked for a job left to end them.
const STUCK_RUNS_EVERY: Duration = Duration::from_secs(5);

/// Ends every ACTIVE run that has no job left to end it (see
/// `recon::jobs::end_if_orphaned`). Every node may do it at once: scheduling the run's finish
/// is idempotent, and ending a run whose finish is done writes the same record twice.
async fn end_stuck_runs(engine: &Engine) {
    let runs = match engine.repo.list_runs(None).await {
        Ok(runs) => runs,
        Err(e) => return tracing::warn!(error = %e, "cluster monitor: cannot list runs"),
    };
    for run in runs.iter().filter(|r| !r.stage.is_completed()) {
        if let Err(e) = crate::recon::jobs::end_if_orphaned(engine, &run.id).await {
            tracing::warn!(run = %run.id, error = %e, "cluster monitor: cannot end a stuck run");
        }
    }
}

/// How often audit older than `auditRetentionDays` is deleted.
const AUDIT_PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Deletes recon and sync audit entries older than `auditRetentionDays`, when set.
/// Every node may do it; deleting twice is harmless.
async fn prune_audit(engine: &Engine) {
    let Some(days) = engine.project.settings.audit_retention_days else {
        return;
    };
    let before = Utc::now() - chrono::Duration::days(days as i64);
    for kind in [idsync_repo::AuditKind::Recon, idsync_repo::AuditKind::Sync] {
        match engine.repo.prune_audit(kind, before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(kind = kind.as_str(), deleted = n, days, "audit retention"),
            Err(e) => tracing::warn!(kind = kind.as_str(), error = %e, "audit retention failed"),
        }
    }
}

/// The node rows and the repository's clock, which heartbeats are written and compared on (a
/// node's own clock may be skewed).
async fn nodes_and_now(
    engine: &Engine,
) -> idsync_repo::RepoResult<(Vec<NodeRecord>, DateTime<Utc>)> {
    let nodes = engine.repo.list_nodes().await?;
    Ok((nodes, engine.repo.db_now().await?))
}

/// Nodes that run and heartbeat in time by the repository's clock `now` (this one always
/// counts).
fn running_nodes(engine: &Engine, nodes: &[NodeRecord], now: DateTime<Utc>) -> HashSet<String> {
    let timeout = chrono::Duration::milliseconds(engine.project.settings.node_timeout_ms as i64);
    let mut running: HashSet<String> = nodes
        .iter()
        .filter(|n| n.state == NodeState::Running && now - n.last_heartbeat <= timeout)
        .map(|n| n.id.clone())
        .collect();
    running.insert(engine.node_id.clone());
    running
}

/// Running nodes on the host this node's heartbeat named, itself included (1 before its first
/// heartbeat, or when the rows carry no host).
fn nodes_on_this_host(engine: &Engine, nodes: &[NodeRecord], now: DateTime<Utc>) -> usize {
    let Some(host) = nodes
        .iter()
        .find(|n| n.id == engine.node_id)
        .and_then(|n| n.host.as_deref())
    else {
        return 1;
    };
    let running = running_nodes(engine, nodes, now);
    nodes
        .iter()
        .filter(|n| n.host.as_deref() == Some(host) && running.contains(&n.id))
        .count()
        .max(1)
}

/// Marks nodes past their heartbeat timeout down and recovers their work. Returns whether one
/// was found.
async fn mark_down_nodes(engine: &Engine, nodes: &[NodeRecord], now: DateTime<Utc>) -> bool {
    let running = running_nodes(engine, nodes, now);
    let mut found = false;
    for n in nodes {
        let stale = n.state != NodeState::Down && !running.contains(&n.id);
        if !stale {
            continue;
        }
        found = true;
        tracing::warn!(node = %n.id, last_heartbeat = %n.last_heartbeat, "node missed its heartbeats: recovering its work");
        let repo = &engine.repo;
        let result = async {
            repo.set_node_state(&n.id, NodeState::ProcessingDown)
                .await?;
            let jobs = repo.release_jobs_of_node(&n.id).await?;
            let events = repo.return_acquired_to_pending(&n.id).await?;
            let locks = repo.release_locks_of_node(&n.id).await?;
            finish_interrupted_starts(engine, &n.id).await?;
            repo.set_node_state(&n.id, NodeState::Down).await?;
            Ok::<_, idsync_repo::RepoError>((jobs, events, locks))
        }
        .await;
        match result {
            Ok((jobs, events, locks)) => {
                metrics::counter!("idsync_cluster_nodes_recovered_total").increment(1);
                tracing::info!(node = %n.id, jobs, events, locks, "node is down; its work was released");
            }
            Err(e) => tracing::warn!(node = %n.id, error = %e, "recovering a down node failed"),
        }
    }
    found
}

/// A run starts with two commits (the run, then its first page job): a node that died between
/// them left a run that no job would ever finish, holding its mapping's one active run. Every
/// unfinished run the node started gets its first page now (a no-op when it has one).
async fn finish_interrupted_starts(engine: &Engine, node: &str) -> idsync_repo::RepoResult<()> {
    for run in engine.repo.list_runs(None).await? {
        if run.node_id != node || run.stage.is_completed() {
            continue;
        }
        if let Err(e) = engine.finish_start(&run).await {
            tracing::warn!(run = %run.id, node, error = %e, "could not resume a run whose start was interrupted");
        }
    }
    Ok(())
}

/// Frees queue locks whose holder is not a running node, with its ACQUIRED events.
async fn recover_orphaned_locks(engine: &Engine) {
    let (Ok(locks), Ok((nodes, now))) =
        (engine.repo.list_locks().await, nodes_and_now(engine).await)
    else {
        return;
    };
    let running = running_nodes(engine, &nodes, now);
    let orphans: HashSet<&str> = locks
        .iter()
        .filter(|l| l.name.starts_with(crate::sync::queue::LOCK_PREFIX))
        .filter(|l| !running.contains(&l.node_id))
        .map(|l| l.node_id.as_str())
        .collect();
    for node in orphans {
        let r = async {
            let events = engine.repo.return_acquired_to_pending(node).await?;
            let locks = engine.repo.release_locks_of_node(node).await?;
            Ok::<_, idsync_repo::RepoError>((events, locks))
        }
        .await;
        match r {
            Ok((events, locks)) => {
                tracing::info!(
                    node,
                    events,
                    locks,
                    "queue recovery freed the locks of a node that is not running"
                )
            }
            Err(e) => tracing::warn!(node, error = %e, "queue recovery failed"),
        }
    }
}

/// Sets this node's lock target and asks surplus consumers to surrender.
async fn balance(engine: &Engine) {
    let queued: Vec<&str> = engine
        .project
        .mappings
        .iter()
        .filter(|m| m.queued().is_some())
        .map(|m| m.name.as_str())
        .collect();
    if queued.is_empty() {
        return;
    }
    let Ok((nodes, now)) = nodes_and_now(engine).await else {
        return;
    };
    let running = running_nodes(engine, &nodes, now).len().max(1);
    let target = queued.len().div_ceil(running);
    let b = &engine.queue_balance;
    b.target.store(target, Ordering::Relaxed);
    let Ok(mine) = engine.repo.locks_of_node(&engine.node_id).await else {
        return;
    };
    let mut held: Vec<&str> = mine
        .iter()
        .filter_map(|l| l.name.strip_prefix(crate::sync::queue::LOCK_PREFIX))
        .collect();
    held.sort_unstable();
    if held.len() > target {
        for m in &held[target..] {
            if b.lock().insert((*m).to_string()) {
                tracing::info!(
                    mapping = m,
                    target,
                    running,
                    "balancing: handing this queue's lock over"
                );
            }
        }
    }
}
