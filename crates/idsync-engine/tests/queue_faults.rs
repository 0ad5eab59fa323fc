//! Fault injection in queued sync (issue 20): an event waiting for its retry stays ACQUIRED,
//! and a dead letter and the deletion of its event are one commit that survives a failure.

#![allow(clippy::unwrap_used)] // Tests may unwrap.

use chrono::Utc;
use idsync_core::QueryRequest;
use idsync_engine::{Engine, Resources};
use idsync_repo::{ChangeSet, EventState, Op, SyncAction, SyncEvent};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MAPPING: &str = "managedUser_target";

async fn engine(dir: &std::path::Path, queued: Value) -> Arc<Engine> {
    std::fs::create_dir_all(dir.join("conf")).unwrap();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(dir.join("data/target.csv"), "name,email\n").unwrap();
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
    let repo = idsync_repo::open(&format!("sqlite://{}", dir.join("repo.db").display()))
        .await
        .unwrap();
    let connectors = project
        .connectors
        .iter()
        .map(|(name, cfg)| {
            let c = idsync_connectors::build_connector(cfg, &project.dir).unwrap();
            (name.clone(), c)
        })
        .collect();
    let resources = Resources::new(&project, repo.clone(), connectors);
    Engine::new(project, repo, resources, "n1").unwrap()
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
    let (stop, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(idsync_engine::sync::queue::run_queue_consumers(
        engine.clone(),
        rx,
    ));
    stop
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
