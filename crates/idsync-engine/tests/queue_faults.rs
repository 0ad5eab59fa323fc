//! Fault injection in queued sync (issue 20): an event waiting for its retry stays ACQUIRED;
//! a dead letter and the deletion of its event are one commit that survives a failure; a node
//! that lost the mapping's lock acks nothing; a crash between a target write and the event's
//! deletion applies the change once.

#![allow(clippy::unwrap_used)] // Tests may unwrap.

mod support;

use chrono::Utc;
use idsync_core::QueryRequest;
use idsync_engine::{Engine, Resources};
use idsync_repo::{ChangeSet, EventState, Op, SyncAction, SyncEvent};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::PgDb;

const MAPPING: &str = "managedUser_target";

async fn engine(dir: &std::path::Path, queued: Value) -> Arc<Engine> {
    let url = format!("sqlite://{}", dir.join("repo.db").display());
    engine_on(dir, queued, &url, "n1").await
}

/// A node `node` of a project in `dir` whose repository is `url` (the target CSV file is
/// created on the first call only: nodes share it).
async fn engine_on(dir: &std::path::Path, queued: Value, url: &str, node: &str) -> Arc<Engine> {
    std::fs::create_dir_all(dir.join("conf")).unwrap();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    if !dir.join("data/target.csv").exists() {
        std::fs::write(dir.join("data/target.csv"), "name,email\n").unwrap();
    }
    std::fs::write(
        dir.join("conf/managed.json"),
        r#"{"objects": [{"name": "user"}]}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("conf/provisioner.openicf-target.json"),
        json!({
            "name": "target",
            "connectorRef": {"connectorName": "org.forgerock.openicf.csvfile.CSVFileConnector"},
            "configurationProperties": {
                "csvFile": "&{launcher.project.location}/data/target.csv",
                "headerUid": "name"
            },
            "objectTypes": {"account": {"type": "object", "nativeType": "__ACCOUNT__",
                "properties": {
                    "name": {"type": "string", "nativeName": "__NAME__"},
                    "email": {"type": "string", "nativeName": "email"}
                }}}
        })
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.join("conf/sync.json"),
        json!({"mappings": [{
            "name": MAPPING,
            "source": "managed/user",
            "queuedSync": queued,
            "target": "system/target/account",
            "correlationQuery": {"type": "text/javascript",
                "source": "({'_queryFilter': 'name eq \"' + source.userName + '\"'})"},
            "properties": [
                {"source": "userName", "target": "name"},
                {"source": "mail", "target": "email", "transform": {"type": "text/javascript",
                    "source": "if (source === 'boom') { throw 'mail refused'; } source"}}
            ],
            "policies": [
                {"situation": "ABSENT", "action": "CREATE"},
                {"situation": "FOUND", "action": "UPDATE"},
                {"situation": "CONFIRMED", "action": "UPDATE"}
            ]
        }]})
        .to_string(),
    )
    .unwrap();
    let project = Arc::new(idsync_config::load_project_from_env(dir).unwrap().project);
    let repo = idsync_repo::open(url).await.unwrap();
    let connectors = project
        .connectors
        .iter()
        .map(|(name, cfg)| {
            let c = idsync_connectors::build_connector(cfg, &project.dir).unwrap();
            (name.clone(), c)
        })
        .collect();
    let resources = Resources::new(&project, repo.clone(), connectors);
    Engine::new(project, repo, resources, node).unwrap()
}

fn event(id: &str, user: &Value, retries: i64) -> SyncEvent {
    SyncEvent {
        id: format!("e-{id}"),
        rev: "0".into(),
        mapping: MAPPING.into(),
        resource_id: id.into(),
        resource_collection: "managed/user".into(),
        sync_action: SyncAction::NotifyCreate,
        state: EventState::Pending,
        node_id: None,
        remaining_retries: retries,
        create_date: Utc::now(),
        old_object: None,
        new_object: Some(user.clone()),
        object_rev: None,
        context: json!({}),
        seq: 0,
    }
}

/// Commits a user whose mapping fails (its mail transform throws) with its queue event.
async fn failing_user(engine: &Engine, retries: i64) -> String {
    let user = json!({"_id": "u1", "userName": "u1", "mail": "boom"});
    let ev = event("u1", &user, retries);
    engine
        .repo
        .commit(
            ChangeSet::new()
                .with(Op::CreateObject {
                    object_type: "user".into(),
                    id: "u1".into(),
                    value: user,
                })
                .with(Op::EnqueueSyncEvent(ev.clone())),
        )
        .await
        .unwrap();
    ev.id
}

fn consumers(engine: &Arc<Engine>) -> tokio::sync::watch::Sender<bool> {
    consumers_joined(engine).0
}

/// The consumers, their stop switch and their task (which ends once in-flight events are done).
fn consumers_joined(
    engine: &Arc<Engine>,
) -> (
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
) {
    let (stop, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(idsync_engine::sync::queue::run_queue_consumers(
        engine.clone(),
        rx,
    ));
    (stop, task)
}

/// Commits user `id` (whose mapping succeeds) with its queue event; returns the event id.
async fn user(engine: &Engine, id: &str) -> String {
    let user = json!({"_id": id, "userName": id, "mail": format!("{id}@example.com")});
    let ev = event(id, &user, -1);
    engine
        .repo
        .commit(
            ChangeSet::new()
                .with(Op::CreateObject {
                    object_type: "user".into(),
                    id: id.into(),
                    value: user,
                })
                .with(Op::EnqueueSyncEvent(ev.clone())),
        )
        .await
        .unwrap();
    ev.id
}

/// The target CSV file's rows for `name`.
fn target_rows(dir: &std::path::Path, name: &str) -> usize {
    std::fs::read_to_string(dir.join("data/target.csv"))
        .unwrap()
        .lines()
        .filter(|l| l.split(',').next() == Some(name))
        .count()
}

async fn until<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// With unlimited retries, a failing event is retried every `retryDelay` and never goes back
/// to PENDING in between (one worker; sampled every 25 ms for 1.5 s).
#[tokio::test(flavor = "multi_thread")]
async fn a_failing_event_stays_acquired_between_its_retries() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(
        dir.path(),
        json!({"enabled": true, "pollingInterval": 20, "retryDelay": 100, "workers": 1}),
    )
    .await;
    let id = failing_user(&engine, -1).await;
    let _stop = consumers(&engine);
    let repo = engine.repo.clone();
    until("the event acquired", || async {
        repo.get_event(&id).await.unwrap().unwrap().state == EventState::Acquired
    })
    .await;
    let mut pending = 0;
    for _ in 0..60 {
        if repo.get_event(&id).await.unwrap().unwrap().state == EventState::Pending {
            pending += 1;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(pending, 0, "PENDING in {pending} of 60 samples");
}

/// The dead-letter commit fails once (failpoint): the event is retried and dead-lettered
/// again — in the end one letter, no event, whatever failed in between.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_dead_letter_commit_is_retried_and_writes_one_letter() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(
        dir.path(),
        json!({"enabled": true, "pollingInterval": 20, "retryDelay": 20, "maxRetries": 1,
            "postRetryAction": "dead-letter-queue"}),
    )
    .await;
    fail::cfg("queue.deadletter.before_commit", "1*return").unwrap();
    let id = failing_user(&engine, 1).await;
    let _stop = consumers(&engine);
    let repo = engine.repo.clone();
    until("the event gone", || async {
        repo.get_event(&id).await.unwrap().is_none()
    })
    .await;
    let letters = repo
        .query_dead_letters(&QueryRequest::all())
        .await
        .unwrap()
        .results;
    assert_eq!(letters.len(), 1, "{letters:#?}");
}

/// A node that lost the mapping's lock while its batch was between the target write and the
/// commit (recovery took it for down, another node took the lock and the event) commits
/// nothing: no deletion of the event the other node now holds, no link. On PostgreSQL.
#[tokio::test(flavor = "multi_thread")]
async fn a_node_that_lost_the_queue_lock_acks_nothing_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let db = PgDb::create("qfault");
    // One poll, at the start: n1 does not take the lock back while the test plays recovery.
    let queued =
        json!({"enabled": true, "pollingInterval": 600_000, "retryDelay": 20, "workers": 1});
    let a = engine_on(dir.path(), queued, &db.url, "n1").await;
    let id = user(&a, "u1").await;
    // The batch stops after its target write, before its commit.
    fail::cfg("queue.event.before_delete", "pause").unwrap();
    let (stop, task) = consumers_joined(&a);
    until("the target written", || async {
        target_rows(dir.path(), "u1") == 1
    })
    .await;
    // Recovery gives n1's work away, and n2 takes the lock and the event.
    let repo = a.repo.clone();
    assert_eq!(repo.return_acquired_to_pending("n1").await.unwrap(), 1);
    assert_eq!(repo.release_locks_of_node("n1").await.unwrap(), 1);
    let lock = idsync_engine::sync::queue::lock_name(MAPPING);
    repo.try_acquire_lock(&lock, "n2").await.unwrap().unwrap();
    let taken = repo.acquire_events(MAPPING, "n2", 10).await.unwrap();
    assert_eq!(taken.len(), 1);
    // n1 resumes: its commit must be refused.
    fail::remove("queue.event.before_delete");
    stop.send(true).unwrap();
    task.await.unwrap();
    let ev = repo
        .get_event(&id)
        .await
        .unwrap()
        .expect("the event was acked by n1");
    assert_eq!(
        (ev.state, ev.node_id.as_deref()),
        (EventState::Acquired, Some("n2"))
    );
    assert_eq!(
        repo.count_links(MAPPING).await.unwrap(),
        0,
        "n1 wrote a link"
    );
}

/// A crash between the target write and the event's deletion (the failpoint fires on every
/// attempt of node n1, which then dies; recovery returns its event): node n2 runs the event
/// again and the change is applied once — one target row, one link, no event, no dead letter.
/// On PostgreSQL.
#[tokio::test(flavor = "multi_thread")]
async fn a_crash_between_target_write_and_event_delete_applies_the_change_once_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let db = PgDb::create("qfault");
    let queued = json!({"enabled": true, "pollingInterval": 20, "retryDelay": 3_600_000,
        "workers": 1, "postRetryAction": "dead-letter-queue"});
    let a = engine_on(dir.path(), queued.clone(), &db.url, "n1").await;
    let id = user(&a, "u1").await;
    fail::cfg("queue.event.before_delete", "return").unwrap();
    let (stop, task) = consumers_joined(&a);
    let repo = a.repo.clone();
    until("the target written", || async {
        target_rows(dir.path(), "u1") == 1
    })
    .await;
    // n1 dies (its batch, failed at the failpoint, is done once its task has ended; the retry
    // waits an hour), and the cluster monitor recovers it as a down node.
    stop.send(true).unwrap();
    task.await.unwrap();
    drop(a);
    assert_eq!(repo.return_acquired_to_pending("n1").await.unwrap(), 1);
    repo.release_locks_of_node("n1").await.unwrap();
    fail::remove("queue.event.before_delete");

    let b = engine_on(dir.path(), queued, &db.url, "n2").await;
    let _stop_b = consumers(&b);
    until("the event done", || async {
        repo.get_event(&id).await.unwrap().is_none()
    })
    .await;
    assert_eq!(target_rows(dir.path(), "u1"), 1, "the create was doubled");
    assert_eq!(repo.count_links(MAPPING).await.unwrap(), 1);
    let letters = repo
        .query_dead_letters(&QueryRequest::all())
        .await
        .unwrap()
        .results;
    assert!(letters.is_empty(), "{letters:#?}");
}
