//! Links, runs, counters, plans, the target-id registry, the queue, dead letters, audit,
//! liveSync tokens and migrations.

use super::Backend;
use super::data::{audit as audit_entry, event, link, one, run};
use crate::changes::{ChangeSet, Op};
use crate::error::{ConflictKind, RepoError};
use crate::model::{AuditKind, DeadLetter, EventState, PlanEntry, RunUpdate};
use chrono::Utc;
use idsync_core::{QueryRequest, ReconStage, ReconState, SortKey, TotalPolicy};
use serde_json::{Value, json};

fn ids(results: &[Value]) -> Vec<String> {
    results
        .iter()
        .map(|v| v["_id"].as_str().unwrap().to_string())
        .collect()
}

fn q(filter: &str) -> QueryRequest {
    QueryRequest::with_filter(filter.parse().unwrap())
}

pub async fn links(b: &dyn Backend) {
    let (repo, _) = b.fresh().await;
    let mut cs = ChangeSet::new();
    for i in 0..25 {
        cs.push(Op::CreateLink(link(
            &format!("l{i:02}"),
            "hr",
            "default",
            &format!("s{i}"),
            &format!("t{i}"),
        )));
    }
    cs.push(Op::CreateLink(link("x1", "hr", "other", "s1", "t1")));
    cs.push(Op::CreateLink(link("x2", "ad", "default", "s1", "t1")));
    let out = repo.commit(cs).await.unwrap();
    assert_eq!(out.link_revs.len(), 27);
    // Both unique constraints, and the id.
    for dup in [
        link("new", "hr", "default", "s1", "tz"),
        link("new", "hr", "default", "sz", "t1"),
        link("l01", "zz", "default", "a", "b"),
    ] {
        let r = repo.commit(one(Op::CreateLink(dup.clone()))).await;
        assert!(matches!(r, Err(RepoError::Conflict(_))), "{dup:?} {r:?}");
    }
    let l = repo
        .link_by_first("hr", "default", "s3")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (l.id.as_str(), l.second_id.as_str(), l.rev.as_str()),
        ("l03", "t3", "1")
    );
    let l = repo
        .link_by_second("hr", "other", "t1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(l.id, "x1");
    assert!(
        repo.link_by_first("hr", "default", "nope")
            .await
            .unwrap()
            .is_none()
    );
    let got: Vec<String> = repo
        .links_for_targets("hr", &["t1".into(), "t2".into(), "nope".into()])
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.id)
        .collect();
    assert_eq!(got, vec!["l01", "l02", "x1"]);
    let got = repo.links_for_sources("ad", &["s1".into()]).await.unwrap();
    assert_eq!(got.len(), 1);
    // Keyset batches.
    let mut after: Option<String> = None;
    let mut all = Vec::new();
    loop {
        let batch = repo
            .load_links("hr", Some("default"), after.as_deref(), 10)
            .await
            .unwrap();
        if batch.is_empty() {
            break;
        }
        after = batch.last().map(|l| l.id.clone());
        all.extend(batch.into_iter().map(|l| l.id));
    }
    assert_eq!(all.len(), 25);
    assert_eq!(
        repo.load_links("hr", None, None, 100).await.unwrap().len(),
        26
    );
    assert_eq!(repo.count_links("hr").await.unwrap(), 26);
    // REST query.
    let p = repo
        .query_links(&q("linkType eq \"hr\" and firstId eq \"S1\""))
        .await
        .unwrap();
    assert_eq!(ids(&p.results), vec!["l01", "x1"]);
    assert_eq!(
        p.results[0],
        json!({"_id": "l01", "_rev": "1", "linkType": "hr", "linkQualifier": "default", "firstId": "s1", "secondId": "t1"})
    );
    // Update and delete with revisions.
    let mut l = link("l05", "hr", "default", "s5", "t5-new");
    let out = repo
        .commit(one(Op::UpdateLink {
            link: l.clone(),
            expected_rev: Some("1".into()),
        }))
        .await
        .unwrap();
    assert_eq!(out.link_revs, vec![("l05".to_string(), "2".to_string())]);
    assert_eq!(
        repo.get_link("l05").await.unwrap().unwrap().second_id,
        "t5-new"
    );
    l.second_id = "t6".into();
    assert!(matches!(
        repo.commit(one(Op::UpdateLink {
            link: l.clone(),
            expected_rev: None
        }))
        .await,
        Err(RepoError::Conflict(_))
    ));
    assert!(matches!(
        repo.commit(one(Op::UpdateLink {
            link: l,
            expected_rev: Some("1".into())
        }))
        .await,
        Err(RepoError::RevisionMismatch { .. })
    ));
    repo.commit(one(Op::DeleteLink {
        id: "l05".into(),
        expected_rev: Some("2".into()),
    }))
    .await
    .unwrap();
    assert!(repo.get_link("l05").await.unwrap().is_none());
    assert!(matches!(
        repo.commit(one(Op::DeleteLink {
            id: "l05".into(),
            expected_rev: None
        }))
        .await,
        Err(RepoError::NotFound(_))
    ));
}

pub async fn runs_one_active_per_mapping(b: &dyn Backend) {
    let (repo, _) = b.fresh().await;
    repo.create_run(&run("r1", "m")).await.unwrap();
    match repo.create_run(&run("r2", "m")).await {
        Err(RepoError::Conflict(ConflictKind::ActiveRun { active_run_id, .. })) => {
            assert_eq!(active_run_id, "r1")
        }
        other => panic!("expected an active-run conflict, got {other:?}"),
    }
    repo.create_run(&run("o1", "other")).await.unwrap();
    assert!(matches!(
        repo.create_run(&run("r1", "z")).await,
        Err(RepoError::Conflict(_))
    ));
    // Concurrent starters of one mapping: exactly one wins.
    let mut tasks = Vec::new();
    for i in 0..6 {
        let repo = repo.clone();
        tasks.push(tokio::spawn(async move {
            repo.create_run(&run(&format!("c{i}"), "race"))
                .await
                .is_ok()
        }));
    }
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap());
    }
    assert_eq!(wins, 1);

    assert!(repo.request_cancel("r1").await.unwrap());
    assert!(repo.get_run("r1").await.unwrap().unwrap().cancel_requested);
    assert!(matches!(
        repo.request_cancel("nope").await,
        Err(RepoError::NotFound(_))
    ));
    let ended = Utc::now();
    let r = repo
        .update_run(
            "r1",
            &RunUpdate {
                state: Some(ReconState::Canceled),
                stage: Some(ReconStage::CompletedCanceled),
                ended: Some(ended),
                summary: Some(json!({"state": "CANCELED"})),
                ..RunUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(r.state, ReconState::Canceled);
    assert_eq!(r.summary, json!({"state": "CANCELED"}));
    assert_eq!(r.parameters, json!({"p": 1}));
    assert_eq!(
        r.ended.unwrap().timestamp_millis(),
        ended.timestamp_millis()
    );
    assert!(!repo.request_cancel("r1").await.unwrap());
    assert!(repo.active_run("m").await.unwrap().is_none());
    repo.create_run(&run("r2", "m")).await.unwrap();
    assert_eq!(repo.active_run("m").await.unwrap().unwrap().id, "r2");
    assert_eq!(repo.list_runs(Some("m")).await.unwrap().len(), 2);
    assert_eq!(repo.list_runs(None).await.unwrap().len(), 4);
    assert!(matches!(
        repo.update_run("nope", &RunUpdate::default()).await,
        Err(RepoError::NotFound(_))
    ));
}

pub async fn run_counters_add_up(b: &dyn Backend) {
    let (repo, _) = b.fresh().await;
    let mut tasks = Vec::new();
    for node in 0..3 {
        let repo = repo.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..20 {
                let cs = one(Op::AddRunCounters {
                    run_id: "r".into(),
                    node_id: format!("n{node}"),
                    counters: [("FOUND".to_string(), 2), ("ABSENT".to_string(), 1)].into(),
                });
                repo.commit(cs).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let c = repo.run_counters("r").await.unwrap();
    assert_eq!(c.totals["FOUND"], 120);
    assert_eq!(c.totals["ABSENT"], 60);
    assert_eq!(c.by_node.len(), 3);
    assert_eq!(c.by_node["n1"]["FOUND"], 40);
    assert!(repo.run_counters("other").await.unwrap().totals.is_empty());
}

pub async fn prune_runs(b: &dyn Backend) {
    let (repo, _) = b.fresh().await;
    for i in 0..5 {
        let mut r = run(&format!("r{i}"), "m");
        r.started = Utc::now() - chrono::Duration::minutes(10 - i);
        r.state = ReconState::Success;
        r.stage = ReconStage::CompletedSuccess;
        repo.create_run(&r).await.unwrap();
        let cs = ChangeSet::new()
            .with(Op::AddRunCounters {
                run_id: r.id.clone(),
                node_id: "n".into(),
                counters: [("x".to_string(), 1)].into(),
            })
            .with(Op::RegisterTargetIds {
                run_id: r.id.clone(),
                ids: vec!["t".into()],
            })
            .with(Op::AddPlanEntries(vec![PlanEntry {
                id: "p".into(),
                run_id: r.id.clone(),
                entry: json!({"situation": "FOUND"}),
            }]));
        repo.commit(cs).await.unwrap();
    }
    repo.create_run(&run("active", "m")).await.unwrap();
    assert_eq!(repo.prune_runs("m", 2).await.unwrap(), 3);
    let left: Vec<String> = repo
        .list_runs(Some("m"))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(left, vec!["active", "r4", "r3"]);
    assert!(repo.run_counters("r0").await.unwrap().totals.is_empty());
    assert_eq!(repo.count_registered("r0").await.unwrap(), 0);
    assert_eq!(repo.count_registered("r4").await.unwrap(), 1);
    assert!(
        repo.query_plan("r0", &QueryRequest::all())
            .await
            .unwrap()
            .results
            .is_empty()
    );
    assert_eq!(repo.prune_runs("m", 2).await.unwrap(), 0);
}

pub async fn plan_queries(b: &dyn Backend) {
    let (repo, _) = b.fresh().await;
    let entries: Vec<PlanEntry> = (0..10)
        .map(|i| PlanEntry {
            id: format!("p{i}"),
            run_id: "r".into(),
            entry: json!({"reconId": "r", "phase": if i < 7 { "source" } else { "target" }, "sourceId": format!("s{i}"),
                "situation": if i % 2 == 0 { "FOUND" } else { "ABSENT" }, "action": if i % 2 == 0 { "UPDATE" } else { "CREATE" },
                "diff": [{"operation": "replace", "field": "/mail"}]}),
        })
        .collect();
    repo.commit(one(Op::AddPlanEntries(entries))).await.unwrap();
    repo.commit(one(Op::AddPlanEntries(vec![PlanEntry {
        id: "p0".into(),
        run_id: "other".into(),
        entry: json!({"situation": "FOUND"}),
    }])))
    .await
    .unwrap();
    let mut qq = q("situation eq \"found\" and phase eq \"source\"");
    qq.total_policy = TotalPolicy::Exact;
    let p = repo.query_plan("r", &qq).await.unwrap();
    assert_eq!(ids(&p.results), vec!["p0", "p2", "p4", "p6"]);
    assert_eq!(p.total, Some(4));
    assert_eq!(p.results[0]["action"], "UPDATE");
    let mut qq = QueryRequest {
        sort_keys: vec![SortKey::parse("-sourceId")],
        page_size: Some(3),
        ..QueryRequest::default()
    };
    let p = repo.query_plan("r", &qq).await.unwrap();
    assert_eq!(ids(&p.results), vec!["p9", "p8", "p7"]);
    qq.cookie = p.cookie;
    assert_eq!(
        ids(&repo.query_plan("r", &qq).await.unwrap().results),
        vec!["p6", "p5", "p4"]
    );
    assert_eq!(
        repo.query_plan("other", &QueryRequest::all())
            .await
            .unwrap()
            .results
            .len(),
        1
    );
}

pub async fn target_registry(b: &dyn Backend) {
    let (repo, _) = b.fresh().await;
    repo.commit(one(Op::RegisterTargetIds {
        run_id: "r".into(),
        ids: vec!["a".into(), "b".into(), "a".into()],
    }))
    .await
    .unwrap();
    repo.commit(one(Op::RegisterTargetIds {
        run_id: "r".into(),
        ids: vec!["c".into(), "b".into()],
    }))
    .await
    .unwrap();
    repo.commit(one(Op::RegisterTargetIds {
        run_id: "x".into(),
        ids: vec!["d".into()],
    }))
    .await
    .unwrap();
    assert_eq!(repo.count_registered("r").await.unwrap(), 3);
    let cand: Vec<String> = ["a", "d", "c", "z"].iter().map(|s| s.to_string()).collect();
    let mut claimed = repo.claimed_among("r", &cand).await.unwrap();
    claimed.sort();
    assert_eq!(claimed, vec!["a", "c"]);
    let mut unclaimed = repo.unclaimed_target_ids("r", &cand).await.unwrap();
    unclaimed.sort();
    assert_eq!(unclaimed, vec!["d", "z"]);
    assert_eq!(repo.delete_registry("r").await.unwrap(), 3);
    assert_eq!(repo.count_registered("x").await.unwrap(), 1);
}

/// A page job's create intents: recorded under the job's fence (a stale token records
/// nothing), read back by any attempt, duplicates ignored, deleted with the run's registry.
pub async fn create_intents(b: &dyn Backend) {
    let (repo, _) = b.fresh().await;
    let job = crate::model::Job::new(
        "r/source/1",
        "recon.sourcePage",
        Some("r".into()),
        json!({}),
    );
    repo.enqueue_job(&job).await.unwrap();
    let claimed = repo
        .claim_next(
            &["recon.sourcePage"],
            "n1",
            std::time::Duration::from_secs(30),
        )
        .await
        .unwrap()
        .unwrap();
    let record = |ids: &[&str]| Op::RecordCreateIntents {
        run_id: "r".into(),
        job_id: "r/source/1".into(),
        source_ids: ids.iter().map(|s| s.to_string()).collect(),
    };
    repo.commit(ChangeSet::fenced("r/source/1", claimed.token).with(record(&["s2", "s1"])))
        .await
        .unwrap();
    repo.commit(ChangeSet::fenced("r/source/1", claimed.token).with(record(&["s1", "s3"])))
        .await
        .unwrap();
    assert!(
        repo.commit(ChangeSet::fenced("r/source/1", claimed.token + 1).with(record(&["s9"])))
            .await
            .is_err(),
        "a stale token records nothing"
    );
    assert_eq!(
        repo.create_intents("r/source/1").await.unwrap(),
        vec!["s1", "s2", "s3"]
    );
    assert!(repo.create_intents("other").await.unwrap().is_empty());
    repo.delete_registry("r").await.unwrap();
    assert!(repo.create_intents("r/source/1").await.unwrap().is_empty());
}

pub async fn queue_order_and_states(b: &dyn Backend) {
    let (repo, _) = b.fresh().await;
    let base = Utc::now() - chrono::Duration::seconds(60);
    let mut cs = ChangeSet::new();
    // Commit order decides, never createDate (the writing node's clock): e4 was written after
    // e1 by a node whose clock is behind, and still runs after e1.
    for (i, (id, res, secs)) in [
        ("e1", "u1", 7),
        ("e2", "u2", 0),
        ("e3", "u3", 5),
        ("e4", "u1", 1),
        ("e5", "u5", 10),
    ]
    .into_iter()
    .enumerate()
    {
        let mut e = event(id, "m", res);
        e.create_date = base + chrono::Duration::seconds(secs);
        let _ = i;
        cs.push(Op::EnqueueSyncEvent(e));
    }
    cs.push(Op::EnqueueSyncEvent(event("o1", "other", "u1")));
    repo.commit(cs).await.unwrap();
    assert!(matches!(
        repo.commit(one(Op::EnqueueSyncEvent(event("e1", "m", "u1"))))
            .await,
        Err(RepoError::Conflict(_))
    ));

    let got = repo.acquire_events("m", "n1", 2).await.unwrap();
    assert_eq!(
        got.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        vec!["e1", "e2"]
    );
    assert!(
        got.iter()
            .all(|e| e.state == EventState::Acquired && e.node_id.as_deref() == Some("n1"))
    );
    // e4 waits for e1 (same object, earlier, acquired): per-object order.
    let got = repo.acquire_events("m", "n2", 10).await.unwrap();
    assert_eq!(
        got.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        vec!["e3", "e5"]
    );
    assert!(repo.acquire_events("m", "n2", 10).await.unwrap().is_empty());

    // Delete: ACQUIRED only by its owner.
    assert!(matches!(
        repo.delete_event("e1", None).await,
        Err(RepoError::Conflict(ConflictKind::AcquiredEvent { .. }))
    ));
    assert!(matches!(
        repo.delete_event("e1", Some("n2")).await,
        Err(RepoError::Conflict(_))
    ));
    repo.delete_event("e1", Some("n1")).await.unwrap();
    assert!(matches!(
        repo.delete_event("e1", Some("n1")).await,
        Err(RepoError::NotFound(_))
    ));
    let got = repo.acquire_events("m", "n1", 10).await.unwrap();
    assert_eq!(
        got.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        vec!["e4"]
    );

    // Only the owner puts an event back: not another node, not twice.
    assert!(matches!(
        repo.release_for_retry("e2", 3, "n2").await,
        Err(RepoError::Conflict(ConflictKind::AcquiredEvent { .. }))
    ));
    repo.release_for_retry("e2", 3, "n1").await.unwrap();
    assert!(matches!(
        repo.release_for_retry("e2", 3, "n1").await,
        Err(RepoError::Conflict(ConflictKind::AcquiredEvent { .. }))
    ));
    assert!(matches!(
        repo.release_for_retry("nope", 3, "n1").await,
        Err(RepoError::NotFound(_))
    ));
    let e2 = repo.get_event("e2").await.unwrap().unwrap();
    assert_eq!(
        (e2.state, e2.remaining_retries, e2.node_id.clone()),
        (EventState::Pending, 3, None)
    );
    repo.delete_event("e2", None).await.unwrap();

    assert_eq!(repo.return_acquired_to_pending("n2").await.unwrap(), 2);
    let stats = repo.queue_stats().await.unwrap();
    let m = stats.iter().find(|s| s.mapping == "m").unwrap();
    assert_eq!((m.pending, m.acquired), (2, 1));
    assert_eq!(
        m.oldest_create_date.unwrap().timestamp_millis(),
        (base + chrono::Duration::seconds(1)).timestamp_millis()
    );

    // REST query over the documented fields.
    let p = repo
        .query_queue(&q("mapping eq \"m\" and state eq \"PENDING\""))
        .await
        .unwrap();
    assert_eq!(ids(&p.results), vec!["e3", "e5"]);
    let e3 = &p.results[0];
    assert_eq!(e3["resourceId"], "u3");
    assert_eq!(e3["syncAction"], "notifyUpdate");
    assert_eq!(e3["remainingRetries"], -1);
    assert_eq!(e3["nodeId"], Value::Null);
    let date = e3["createDate"].as_str().unwrap();
    assert_eq!(
        date,
        crate::model::iso_millis(&(base + chrono::Duration::seconds(5)))
    );
    assert!(e3["_rev"].is_string());
    let p = repo.query_queue(&q("nodeId eq \"n1\"")).await.unwrap();
    assert_eq!(ids(&p.results), vec!["e4"]);
    let p = repo
        .query_queue(&q(
            "remainingRetries lt 0 and resourceCollection sw \"managed/\"",
        ))
        .await
        .unwrap();
    assert_eq!(p.results.len(), 4);
}

/// A consumer commits an event's deletion with the event's own writes, fenced by the queue
/// lock's token: an event it no longer holds, or a lock it lost (even if it took the lock again
/// since), refuses the whole commit — nothing is acked, nothing of the writes lands.
pub async fn queue_event_deleted_with_its_commit(b: &dyn Backend) {
    let (repo, _) = b.fresh().await;
    let mut cs = ChangeSet::new();
    for (id, res) in [("e1", "u1"), ("e2", "u2"), ("e3", "u3"), ("e4", "u4")] {
        cs.push(Op::EnqueueSyncEvent(event(id, "m", res)));
    }
    repo.commit(cs).await.unwrap();
    let lock = "sync-queue/m";
    let token = repo.try_acquire_lock(lock, "n1").await.unwrap().unwrap();
    assert_eq!(repo.acquire_events("m", "n1", 10).await.unwrap().len(), 4);
    // e3 went back to PENDING (as recovery does): its deletion by n1 must not take it.
    repo.release_for_retry("e3", -1, "n1").await.unwrap();
    let del = |id: &str, node: &str| Op::DeleteSyncEvent {
        id: id.into(),
        node_id: node.into(),
    };
    let holds = |node: &str, token: i64| Op::HoldsLock {
        name: lock.into(),
        node_id: node.into(),
        token,
    };
    let audit = |id: &str| Op::AppendAudit(audit_entry(id, AuditKind::Sync, "r1", "entry", 0));
    // An event the node no longer holds: the commit fails loudly and writes nothing.
    for other in [del("e3", "n1"), del("e2", "n2"), del("missing", "n1")] {
        let r = repo
            .commit(
                ChangeSet::new()
                    .with(holds("n1", token))
                    .with(del("e1", "n1"))
                    .with(other)
                    .with(audit("a0")),
            )
            .await;
        assert!(matches!(r, Err(RepoError::NotFound(_))), "{r:?}");
        assert_eq!(
            repo.get_event("e1").await.unwrap().unwrap().state,
            EventState::Acquired
        );
        assert!(sync_audit_ids(repo.as_ref()).await.is_empty());
    }
    // Held lock, held events: deleted with the writes.
    repo.commit(
        ChangeSet::new()
            .with(holds("n1", token))
            .with(del("e1", "n1"))
            .with(audit("a1")),
    )
    .await
    .unwrap();
    assert!(repo.get_event("e1").await.unwrap().is_none());
    assert_eq!(sync_audit_ids(repo.as_ref()).await, vec!["a1"]);
    // The lock lost to n2: n1's commit is refused although e2 is still ACQUIRED by n1.
    assert!(repo.release_lock(lock, "n1").await.unwrap());
    let token2 = repo.try_acquire_lock(lock, "n2").await.unwrap().unwrap();
    assert_ne!(token2, token);
    let lost = |token: i64| {
        ChangeSet::new()
            .with(holds("n1", token))
            .with(del("e2", "n1"))
            .with(audit("a2"))
    };
    let r = repo.commit(lost(token)).await;
    assert!(matches!(r, Err(RepoError::LockLost { .. })), "{r:?}");
    // ... and so is a commit with the old token once n1 holds the lock again.
    assert!(repo.release_lock(lock, "n2").await.unwrap());
    let token3 = repo.try_acquire_lock(lock, "n1").await.unwrap().unwrap();
    assert_ne!(token3, token);
    let r = repo.commit(lost(token)).await;
    assert!(matches!(r, Err(RepoError::LockLost { .. })), "{r:?}");
    assert_eq!(
        repo.get_event("e2").await.unwrap().unwrap().state,
        EventState::Acquired
    );
    assert_eq!(sync_audit_ids(repo.as_ref()).await, vec!["a1"]);
    repo.commit(lost(token3)).await.unwrap();
    assert!(repo.get_event("e2").await.unwrap().is_none());
}

async fn sync_audit_ids(repo: &dyn crate::repository::Repository) -> Vec<String> {
    let p = repo
        .query_audit(AuditKind::Sync, &QueryRequest::all())
        .await
        .unwrap();
    ids(&p.results)
}

pub async fn dead_letters(b: &dyn Backend) {
    let (repo, _) = b.fresh().await;
    for (i, m) in ["m", "m", "other"].iter().enumerate() {
        let l = DeadLetter {
            id: format!("d{i}"),
            event: event(&format!("e{i}"), m, &format!("u{i}")),
            failure_cause: "boom".into(),
            retries: 3,
            failed_date: Utc::now(),
        };
        repo.add_dead_letter(&l).await.unwrap();
    }
    let got = repo.get_dead_letter("d1").await.unwrap().unwrap();
    assert_eq!(got.event.resource_id, "u1");
    assert_eq!(got.event.new_object, Some(json!({"a": 2})));
    let p = repo
        .query_dead_letters(&q("mapping eq \"m\" and failureCause co \"OO\""))
        .await
        .unwrap();
    assert_eq!(ids(&p.results), vec!["d0", "d1"]);
    assert_eq!(p.results[0]["syncAction"], "notifyUpdate");
    assert_eq!(p.results[0]["retries"], 3);
    assert!(p.results[0]["failedDate"].is_string());
    repo.delete_dead_letter("d0").await.unwrap();
    assert!(matches!(
        repo.delete_dead_letter("d0").await,
        Err(RepoError::NotFound(_))
    ));
    assert!(repo.get_dead_letter("d0").await.unwrap().is_none());
}

/// Replay of a dead letter: the letter is deleted and the event queued again in one commit;
/// if either op fails, neither happens.
pub async fn dead_letter_replay_is_atomic(b: &dyn Backend) {
    let (repo, _) = b.fresh().await;
    for i in 0..2 {
        repo.add_dead_letter(&DeadLetter {
            id: format!("d{i}"),
            event: event(&format!("e{i}"), "m", &format!("u{i}")),
            failure_cause: "boom".into(),
            retries: 3,
            failed_date: Utc::now(),
        })
        .await
        .unwrap();
    }
    let letter = repo.get_dead_letter("d0").await.unwrap().unwrap();
    let mut again = letter.event.clone();
    again.id = "replayed".into();
    again.remaining_retries = 5;
    repo.commit(
        ChangeSet::new()
            .with(Op::DeleteDeadLetter { id: "d0".into() })
            .with(Op::EnqueueSyncEvent(again)),
    )
    .await
    .unwrap();
    assert!(repo.get_dead_letter("d0").await.unwrap().is_none());
    let ev = repo.get_event("replayed").await.unwrap().unwrap();
    assert_eq!(
        (ev.state, ev.remaining_retries, ev.resource_id.as_str()),
        (EventState::Pending, 5, "u0")
    );
    assert_eq!(ev.new_object, Some(json!({"a": 2})));

    // A missing letter fails the commit: the event is not queued.
    let r = repo
        .commit(
            ChangeSet::new()
                .with(Op::EnqueueSyncEvent(event("e9", "m", "u9")))
                .with(Op::DeleteDeadLetter { id: "d0".into() }),
        )
        .await;
    assert!(matches!(r, Err(RepoError::NotFound(_))), "{r:?}");
    assert!(repo.get_event("e9").await.unwrap().is_none());
    // A failing enqueue (duplicate id) keeps the letter.
    let r = repo
        .commit(
            ChangeSet::new()
                .with(Op::DeleteDeadLetter { id: "d1".into() })
                .with(Op::EnqueueSyncEvent(event("replayed", "m", "u1"))),
        )
        .await;
    assert!(matches!(r, Err(RepoError::Conflict(_))), "{r:?}");
    assert!(repo.get_dead_letter("d1").await.unwrap().is_some());
    let p = repo.query_dead_letters(&QueryRequest::all()).await.unwrap();
    assert_eq!(ids(&p.results), vec!["d1"]);
}

pub async fn audit(b: &dyn Backend) {
    let (repo, _) = b.fresh().await;
    repo.append_audit(&[
        audit_entry("a1", AuditKind::Recon, "r1", "start", 0),
        audit_entry("a2", AuditKind::Recon, "r1", "entry", 0),
        audit_entry("a3", AuditKind::Recon, "r2", "entry", 3600),
        audit_entry("s1", AuditKind::Sync, "r1", "entry", 0),
    ])
    .await
    .unwrap();
    repo.commit(one(Op::AppendAudit(audit_entry(
        "a4",
        AuditKind::Recon,
        "r1",
        "summary",
        0,
    ))))
    .await
    .unwrap();
    let p = repo
        .query_audit(AuditKind::Recon, &q("reconId eq \"r1\""))
        .await
        .unwrap();
    assert_eq!(ids(&p.results), vec!["a1", "a2", "a4"]);
    let p = repo
        .query_audit(
            AuditKind::Recon,
            &q("entryType eq \"entry\" and situation eq \"found\""),
        )
        .await
        .unwrap();
    assert_eq!(ids(&p.results), vec!["a3"]);
    assert_eq!(
        repo.query_audit(AuditKind::Sync, &QueryRequest::all())
            .await
            .unwrap()
            .results
            .len(),
        1
    );
    let n = repo
        .prune_audit(AuditKind::Recon, Utc::now() - chrono::Duration::seconds(60))
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(
        repo.query_audit(AuditKind::Recon, &QueryRequest::all())
            .await
            .unwrap()
            .results
            .len(),
        3
    );
}

/// A recon decision (the entry reconciliation writes per object, stored narrow where the
/// backend can) reads back exactly as written, filters and prunes like any other entry.
pub async fn recon_decisions_read_back_as_written(b: &dyn Backend) {
    let (repo, _) = b.fresh().await;
    let decision = |id: &str, situation: &str, message: Value, age_secs: i64| {
        let mut e = audit_entry(id, AuditKind::Recon, "r1", "entry", age_secs);
        e.entry = json!({
            "entryType": "entry", "reconId": "r1", "mapping": "m", "situation": situation,
            "action": "CREATE", "sourceObjectId": format!("system/hr/account/{id}"),
            "targetObjectId": null, "linkQualifier": "default", "status": "SUCCESS",
            "message": message, "messageDetail": null, "exception": null,
            "reconciling": "source", "ambiguousTargetObjectIds": null, "reconAction": "recon",
        });
        e
    };
    let narrow = decision("d1", "ABSENT", Value::Null, 0);
    // Not a decision's shape (a number where text goes): kept as a full document.
    let full = decision("d2", "FOUND", json!(7), 0);
    let old = decision("d3", "ABSENT", json!("x \"quoted\" ü"), 3600);
    repo.commit(
        ChangeSet::new()
            .with(Op::AppendAudit(narrow.clone()))
            .with(Op::AppendAudit(full.clone()))
            .with(Op::AppendAudit(old.clone())),
    )
    .await
    .unwrap();
    let with_id = |e: &crate::model::AuditEntry| {
        let mut v = e.entry.clone();
        v["_id"] = json!(e.id);
        v
    };
    let p = repo
        .query_audit(AuditKind::Recon, &q("reconId eq \"r1\""))
        .await
        .unwrap();
    assert_eq!(
        p.results,
        vec![with_id(&narrow), with_id(&full), with_id(&old)]
    );
    let p = repo
        .query_audit(
            AuditKind::Recon,
            &q("situation eq \"absent\" and targetObjectId pr"),
        )
        .await
        .unwrap();
    assert!(p.results.is_empty(), "{:?}", p.results);
    let p = repo
        .query_audit(AuditKind::Recon, &q("message co \"quoted\""))
        .await
        .unwrap();
    assert_eq!(ids(&p.results), vec!["d3"]);
    let n = repo
        .prune_audit(AuditKind::Recon, Utc::now() - chrono::Duration::seconds(60))
        .await
        .unwrap();
    assert_eq!(n, 1);
    let p = repo
        .query_audit(AuditKind::Recon, &QueryRequest::all())
        .await
        .unwrap();
    assert_eq!(ids(&p.results), vec!["d1", "d2"]);
}

pub async fn sync_tokens(b: &dyn Backend) {
    let (repo, _) = b.fresh().await;
    assert!(
        repo.get_sync_token("system/ldap/account")
            .await
            .unwrap()
            .is_none()
    );
    repo.set_sync_token("system/ldap/account", &json!({"csn": 1}))
        .await
        .unwrap();
    repo.commit(one(Op::SetSyncToken {
        source: "system/ldap/account".into(),
        token: json!({"csn": 2}),
    }))
    .await
    .unwrap();
    assert_eq!(
        repo.get_sync_token("system/ldap/account").await.unwrap(),
        Some(json!({"csn": 2}))
    );
    // The token advances atomically with the work it covers.
    let cs = ChangeSet::new()
        .with(Op::SetSyncToken {
            source: "system/ldap/account".into(),
            token: json!({"csn": 3}),
        })
        .with(Op::CompleteJob {
            job_id: "missing".into(),
        });
    assert!(repo.commit(cs).await.is_err());
    assert_eq!(
        repo.get_sync_token("system/ldap/account").await.unwrap(),
        Some(json!({"csn": 2}))
    );
}

/// The first key stored under a name wins, for every node on the repository, even when nodes
/// race to create it; other names are independent.
pub async fn shared_keys(b: &dyn Backend) {
    let (repo, url) = b.fresh().await;
    let other = crate::open(&url).await.unwrap();
    let racers: Vec<_> = (0u8..8)
        .map(|i| {
            let r = if i % 2 == 0 {
                repo.clone()
            } else {
                other.clone()
            };
            tokio::spawn(async move { r.shared_key("cookies", &[i; 32]).await.unwrap() })
        })
        .collect();
    let mut keys = Vec::new();
    for r in racers {
        keys.push(r.await.unwrap());
    }
    assert!(keys.iter().all(|k| *k == keys[0]), "{keys:?}");
    assert_eq!(keys[0].len(), 32);
    assert_eq!(
        repo.shared_key("cookies", &[99; 32]).await.unwrap(),
        keys[0]
    );
    let reopened = crate::open(&url).await.unwrap();
    assert_eq!(reopened.shared_key("cookies", &[]).await.unwrap(), keys[0]);
    assert_eq!(
        repo.shared_key("other", &[7; 16]).await.unwrap(),
        vec![7; 16]
    );
}

pub async fn migrations_are_idempotent(b: &dyn Backend) {
    let (repo, url) = b.fresh().await;
    repo.commit(one(super::data::create("user", "keep", json!({"a": 1}))))
        .await
        .unwrap();
    let again = crate::open(&url).await.unwrap();
    let third = crate::open(&url).await.unwrap();
    assert_eq!(
        again.get_object("user", "keep").await.unwrap().unwrap()["a"],
        1
    );
    assert_eq!(third.count_objects("user", None).await.unwrap(), 1);
    again
        .commit(one(super::data::create("user", "two", json!({}))))
        .await
        .unwrap();
    assert_eq!(repo.count_objects("user", None).await.unwrap(), 2);
}

/// `Op::UpdateRun` ends a run inside a fenced change set (with the job's completion, or not at
/// all); `Op::DeadLetterEvent` writes the letter and deletes its event only while the event is
/// ACQUIRED by the node; `job_exists` sees DONE tombstones; `db_now` is the database's clock.
pub async fn run_end_and_dead_letter_commit_in_change_sets(b: &dyn Backend) {
    let (repo, _) = b.fresh().await;
    repo.create_run(&run("r1", "m")).await.unwrap();
    repo.enqueue_job(&crate::model::Job::new(
        "r1/finish",
        "k",
        Some("r1".into()),
        json!({}),
    ))
    .await
    .unwrap();
    let claimed = repo
        .claim_next(&["k"], "n1", std::time::Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    let end = |token| {
        ChangeSet::fenced("r1/finish", token)
            .with(Op::UpdateRun {
                run_id: "r1".into(),
                update: RunUpdate {
                    state: Some(ReconState::Success),
                    stage: Some(ReconStage::CompletedSuccess),
                    ended: Some(Utc::now()),
                    ..RunUpdate::default()
                },
            })
            .with(Op::CompleteJob {
                job_id: "r1/finish".into(),
            })
    };
    // A stale token: neither the run's end nor the completion.
    assert!(matches!(
        repo.commit(end(claimed.token + 1)).await,
        Err(RepoError::StaleToken { .. })
    ));
    assert_eq!(
        repo.get_run("r1").await.unwrap().unwrap().state,
        ReconState::Active
    );
    repo.commit(end(claimed.token)).await.unwrap();
    assert_eq!(
        repo.get_run("r1").await.unwrap().unwrap().state,
        ReconState::Success
    );
    assert!(repo.active_run("m").await.unwrap().is_none());
    assert!(repo.get_job("r1/finish").await.unwrap().is_none());
    assert!(
        repo.job_exists("r1/finish").await.unwrap(),
        "a DONE tombstone"
    );
    assert!(!repo.job_exists("nope").await.unwrap());

    repo.commit(ChangeSet::new().with(Op::EnqueueSyncEvent(event("e1", "m", "u1"))))
        .await
        .unwrap();
    let acquired = repo.acquire_events("m", "n1", 10).await.unwrap();
    let letter = |id: &str| DeadLetter {
        id: id.into(),
        event: acquired[0].clone(),
        failure_cause: "boom".into(),
        retries: 1,
        failed_date: Utc::now(),
    };
    // Not the holder: nothing commits.
    assert!(matches!(
        repo.commit(ChangeSet::new().with(Op::DeadLetterEvent {
            letter: letter("d0"),
            node_id: "n2".into(),
        }))
        .await,
        Err(RepoError::NotFound(_))
    ));
    assert!(repo.get_dead_letter("d0").await.unwrap().is_none());
    assert!(repo.get_event("e1").await.unwrap().is_some());
    repo.commit(ChangeSet::new().with(Op::DeadLetterEvent {
        letter: letter("d1"),
        node_id: "n1".into(),
    }))
    .await
    .unwrap();
    assert!(repo.get_dead_letter("d1").await.unwrap().is_some());
    assert!(repo.get_event("e1").await.unwrap().is_none());

    let skew = (repo.db_now().await.unwrap() - Utc::now())
        .num_seconds()
        .abs();
    assert!(skew < 60, "db_now is a clock: {skew}s off");
}
