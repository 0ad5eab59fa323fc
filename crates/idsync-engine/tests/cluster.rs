//! The cluster monitor (docs/operations.md#running-a-cluster) on one SQLite repository: a node that
//! stopped heartbeating is marked down and its jobs, ACQUIRED queue events and locks are released;
//! audit older than `auditRetentionDays` is deleted.

#![allow(clippy::unwrap_used)] // Tests may unwrap.

use chrono::Utc;
use idsync_engine::{Engine, Resources};
use idsync_repo::{
    AuditEntry, AuditKind, ChangeSet, EventState, Job, NodeState, Op, SyncAction, SyncEvent,
};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An engine over a project with only fast cluster timings and a one-day audit retention.
async fn engine(dir: &std::path::Path) -> Arc<Engine> {
    std::fs::create_dir_all(dir.join("conf")).unwrap();
    std::fs::write(
        dir.join("conf/idsync.json"),
        json!({"heartbeatIntervalMs": 100, "nodeTimeoutMs": 500, "auditRetentionDays": 1})
            .to_string(),
    )
    .unwrap();
    std::fs::write(dir.join("conf/sync.json"), r#"{"mappings":[]}"#).unwrap();
    let project = Arc::new(idsync_config::load_project_from_env(dir).unwrap().project);
    let repo = idsync_repo::open(&format!("sqlite://{}", dir.join("repo.db").display()))
        .await
        .unwrap();
    let resources = Resources::new(&project, repo.clone(), Default::default());
    Engine::new(project, repo, resources, "alive").unwrap()
}

fn event(id: &str) -> SyncEvent {
    SyncEvent {
        id: id.into(),
        rev: "0".into(),
        mapping: "m".into(),
        resource_id: id.into(),
        resource_collection: "managed/user".into(),
        sync_action: SyncAction::NotifyCreate,
        state: EventState::Pending,
        node_id: None,
        remaining_retries: -1,
        create_date: Utc::now(),
        old_object: None,
        new_object: Some(json!({"_id": id})),
        object_rev: None,
        context: json!({}),
        seq: 0,
    }
}

fn audit(id: &str, kind: AuditKind, age: chrono::Duration) -> AuditEntry {
    AuditEntry {
        id: id.into(),
        kind,
        timestamp: Utc::now() - age,
        recon_id: None,
        mapping: Some("m".into()),
        entry_type: None,
        entry: json!({"mapping": "m"}),
    }
}

async fn wait_for<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts the cluster monitor and waits until it marked `node` down; stop it with the sender.
async fn monitor_until_down(
    engine: &Arc<Engine>,
    node: &str,
) -> (
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
) {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let monitor = tokio::spawn(idsync_engine::cluster::run_cluster_monitor(
        engine.clone(),
        stop_rx,
    ));
    let repo = engine.repo.clone();
    wait_for("node marked down", || async {
        repo.list_nodes()
            .await
            .unwrap()
            .iter()
            .any(|n| n.id == node && n.state == NodeState::Down)
    })
    .await;
    (stop_tx, monitor)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_node_is_marked_down_and_its_work_released() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let repo = engine.repo.clone();

    // A node that held a job, two queue events and a lock, then went silent.
    let stale = Utc::now() - chrono::Duration::seconds(60);
    repo.heartbeat("ghost", "h", stale).await.unwrap();
    repo.commit(
        ChangeSet::new()
            .with(Op::EnqueueSyncEvent(event("e1")))
            .with(Op::EnqueueSyncEvent(event("e2")))
            .with(Op::EnqueueJob(Job::new("j1", "page", None, json!({})))),
    )
    .await
    .unwrap();
    assert_eq!(
        repo.acquire_events("m", "ghost", 10).await.unwrap().len(),
        2
    );
    let claimed = repo
        .claim_next(&["page"], "ghost", Duration::from_secs(3600))
        .await
        .unwrap()
        .unwrap();
    assert!(
        repo.try_acquire_lock("sync-queue/m", "ghost")
            .await
            .unwrap()
            .is_some()
    );
    // And a node that is alive.
    repo.heartbeat("alive", "h", Utc::now()).await.unwrap();

    let (stop_tx, monitor) = monitor_until_down(&engine, "ghost").await;
    let alive = repo.list_nodes().await.unwrap();
    assert!(
        alive
            .iter()
            .any(|n| n.id == "alive" && n.state == NodeState::Running),
        "{alive:?}"
    );
    assert!(repo.list_locks().await.unwrap().is_empty(), "lock freed");
    let stats = repo.queue_stats().await.unwrap();
    assert_eq!(
        (stats[0].pending, stats[0].acquired),
        (2, 0),
        "events PENDING"
    );
    let job = repo.get_job("j1").await.unwrap().unwrap();
    assert!(job.owner_node.is_none(), "job released: {job:?}");
    // The ghost's late commit on its job is refused once another node claims it.
    let again = repo
        .claim_next(&["page"], "alive", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert!(again.token > claimed.token);

    stop_tx.send(true).unwrap();
    monitor.await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_past_the_retention_is_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let repo = engine.repo.clone();
    let old = chrono::Duration::days(3);
    let fresh = chrono::Duration::hours(1);
    repo.append_audit(&[
        audit("r-old", AuditKind::Recon, old),
        audit("r-new", AuditKind::Recon, fresh),
        audit("s-old", AuditKind::Sync, old),
        audit("s-new", AuditKind::Sync, fresh),
    ])
    .await
    .unwrap();

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let monitor = tokio::spawn(idsync_engine::cluster::run_cluster_monitor(
        engine.clone(),
        stop_rx,
    ));
    let ids = |kind| {
        let repo = repo.clone();
        async move {
            repo.query_audit(kind, &idsync_core::QueryRequest::all())
                .await
                .unwrap()
                .results
                .iter()
                .map(|e| e["_id"].as_str().unwrap_or_default().to_string())
                .collect::<Vec<_>>()
        }
    };
    wait_for("old audit pruned", || async {
        ids(AuditKind::Recon).await == ["r-new"] && ids(AuditKind::Sync).await == ["s-new"]
    })
    .await;
    stop_tx.send(true).unwrap();
    monitor.await.unwrap();
}

/// A node that died between a run's two start commits (the run, then its first page job) left
/// a run no job would finish, holding its mapping: marking the node down gives it its page.
#[tokio::test(flavor = "multi_thread")]
async fn a_run_whose_start_was_interrupted_gets_its_first_page_when_its_node_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let repo = engine.repo.clone();
    repo.heartbeat("ghost", "h", Utc::now() - chrono::Duration::seconds(60))
        .await
        .unwrap();
    let run = |id: &str, node: &str, mapping: &str| idsync_repo::RunRecord {
        id: id.into(),
        mapping: mapping.into(),
        analyze: false,
        state: idsync_core::ReconState::Active,
        stage: idsync_core::ReconStage::ActiveInitialized,
        started: Utc::now(),
        ended: None,
        cancel_requested: false,
        message: None,
        parameters: json!({}),
        summary: serde_json::Value::Null,
        totals: json!({}),
        node_id: node.into(),
    };
    repo.create_run(&run("r-ghost", "ghost", "m1"))
        .await
        .unwrap();
    // A run of a live node without jobs yet is that node's business.
    repo.create_run(&run("r-alive", "alive", "m2"))
        .await
        .unwrap();
    assert_eq!(repo.count_jobs("r-ghost").await.unwrap(), 0);

    let (stop_tx, monitor) = monitor_until_down(&engine, "ghost").await;
    assert_eq!(repo.count_jobs("r-ghost").await.unwrap(), 1, "first page");
    assert_eq!(repo.count_jobs("r-alive").await.unwrap(), 0);
    stop_tx.send(true).unwrap();
    monitor.await.unwrap();
}

/// `maxConcurrentJobs` is a host's: running nodes on one host split it (each at least one),
/// and a node that goes down gives its share back.
#[tokio::test(flavor = "multi_thread")]
async fn nodes_sharing_a_host_split_its_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let repo = engine.repo.clone();
    assert_eq!(engine.job_slots(6), 6, "alone until the monitor looked");

    let now = Utc::now();
    repo.heartbeat("alive", "h1", now).await.unwrap();
    repo.heartbeat("b", "h1", now).await.unwrap();
    repo.heartbeat("c", "h1", now).await.unwrap();
    repo.heartbeat("elsewhere", "h2", now).await.unwrap();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let monitor = tokio::spawn(idsync_engine::cluster::run_cluster_monitor(
        engine.clone(),
        stop_rx,
    ));
    wait_for("three nodes on h1", || async { engine.job_slots(6) == 2 }).await;
    assert_eq!(engine.job_slots(2), 1, "at least one each");

    // b and c stop heartbeating (nodeTimeoutMs 500): once they are down, h1 is this node's.
    wait_for(
        "b and c down, the host's jobs this node's again",
        || async { engine.job_slots(6) == 6 },
    )
    .await;
    // (The share follows the heartbeat timeout; the rows say DOWN once their work is released.)
    wait_for("b, c and elsewhere marked down", || async {
        let nodes = repo.list_nodes().await.unwrap();
        nodes
            .iter()
            .filter(|n| n.id != "alive")
            .all(|n| n.state == NodeState::Down)
    })
    .await;
    assert_eq!(engine.job_slots(6), 6);
    stop_tx.send(true).unwrap();
    monitor.await.unwrap();
}
