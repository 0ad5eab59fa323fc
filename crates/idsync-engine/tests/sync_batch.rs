//! A batch of queued changes through one mapping (what a queue worker runs): each change ends
//! as it would alone — a failing one fails only itself, and a change whose link conflicts with
//! a batch-mate's fails alone while the others commit — and a change's `on_success` ops (the
//! deletion of its queue event) commit only when it succeeded.

#![allow(clippy::unwrap_used)] // Tests may unwrap.

use chrono::Utc;
use idsync_engine::sync::{BatchItem, Change};
use idsync_engine::{Engine, Resources};
use idsync_repo::{ChangeSet, EventState, Op, SyncAction, SyncEvent};
use serde_json::{Value, json};
use std::sync::Arc;

const MAPPING: &str = "managedUser_target";

async fn engine(dir: &std::path::Path) -> Arc<Engine> {
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

fn event(id: &str, user: &Value) -> SyncEvent {
    SyncEvent {
        id: format!("e-{id}"),
        rev: "0".into(),
        mapping: MAPPING.into(),
        resource_id: id.into(),
        resource_collection: "managed/user".into(),
        sync_action: SyncAction::NotifyCreate,
        state: EventState::Pending,
        node_id: None,
        remaining_retries: -1,
        create_date: Utc::now(),
        old_object: None,
        new_object: Some(user.clone()),
        object_rev: None,
        context: json!({}),
        seq: 0,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn each_change_of_a_batch_succeeds_or_fails_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let users = [
        (
            "u1",
            json!({"_id": "u1", "userName": "alice", "mail": "a@x"}),
        ),
        // The transform throws: this change fails.
        (
            "u2",
            json!({"_id": "u2", "userName": "bob", "mail": "boom"}),
        ),
        // u3 creates "dup"; u4 then correlates to it and would link it too: the batch's
        // commit is refused on the link's unique key, and u4 fails alone.
        (
            "u3",
            json!({"_id": "u3", "userName": "dup", "mail": "d3@x"}),
        ),
        (
            "u4",
            json!({"_id": "u4", "userName": "dup", "mail": "d4@x"}),
        ),
    ];
    let mut cs = ChangeSet::new();
    for (id, u) in &users {
        cs.push(Op::EnqueueSyncEvent(event(id, u)));
    }
    engine.repo.commit(cs).await.unwrap();
    assert_eq!(
        engine
            .repo
            .acquire_events(MAPPING, "n1", 10)
            .await
            .unwrap()
            .len(),
        4
    );

    let changes: Vec<Change> = users
        .iter()
        .map(|(id, u)| Change {
            collection: "managed/user".into(),
            id: (*id).into(),
            action: SyncAction::NotifyCreate,
            old: None,
            new: Some(u.clone()),
        })
        .collect();
    let items = changes
        .iter()
        .map(|c| BatchItem {
            change: c.view(),
            on_success: vec![Op::DeleteSyncEvent {
                id: format!("e-{}", c.id),
                node_id: "n1".into(),
            }],
        })
        .collect();
    let results = engine.sync_mapping_batch(MAPPING, items, 1).await.unwrap();
    let failed: Vec<bool> = results
        .iter()
        .map(|r| r.as_ref().map_or(true, |o| o.failed))
        .collect();
    assert_eq!(failed, vec![false, true, false, true], "{results:#?}");
    let cause = |i: usize| results[i].as_ref().unwrap().failure_message().unwrap();
    assert!(cause(1).contains("mail refused"), "{}", cause(1));
    // u4 acted fine (FOUND → UPDATE); its commit alone was refused.
    assert!(cause(3).to_lowercase().contains("link"), "{}", cause(3));

    // Done events are gone, failed ones still ACQUIRED for their retry.
    for (id, gone) in [("u1", true), ("u2", false), ("u3", true), ("u4", false)] {
        let ev = engine.repo.get_event(&format!("e-{id}")).await.unwrap();
        match gone {
            true => assert!(ev.is_none(), "{id}'s event deleted"),
            false => assert_eq!(ev.unwrap().state, EventState::Acquired, "{id}"),
        }
    }
    assert_eq!(engine.repo.count_links(MAPPING).await.unwrap(), 2);
    let csv = std::fs::read_to_string(dir.path().join("data/target.csv")).unwrap();
    let mut rows: Vec<&str> = csv.lines().skip(1).collect();
    rows.sort();
    // u4's update of "dup" reached the system before its link was refused (system writes are
    // not transactional with the repository); a retry of u4 finds "dup" linked to u3.
    assert_eq!(rows, vec!["alice,a@x", "dup,d4@x"]);
}
