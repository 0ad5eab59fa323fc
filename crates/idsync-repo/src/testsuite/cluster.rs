//! Jobs, leases and fencing; concurrent claimers; nodes; locks.

use super::Backend;
use super::data::{create, job, one};
use crate::changes::{ChangeSet, Op};
use crate::error::RepoError;
use crate::model::{ClaimedJob, JobState, NodeState};
use chrono::Utc;
use serde_json::json;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const LEASE: Duration = Duration::from_secs(60);

pub async fn fenced_commit_after_lease_loss(b: &dyn Backend) {
    let (repo, _) = b.fresh().await;
    repo.enqueue_job(&job("j1", "page", Some("r1")))
        .await
        .unwrap();
    // Node A claims with a zero lease: it is expired as soon as the clock moves.
    let a = repo
        .claim_next(&["page"], "node-a", Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.job.owner_node.as_deref(), Some("node-a"));
    assert_eq!(a.job.state, JobState::Claimed);
    // Node B re-claims it once the lease has expired (poll with a deadline, no sleep).
    let deadline = Instant::now() + Duration::from_secs(10);
    let b_claim = loop {
        if let Some(c) = repo.claim_next(&["page"], "node-b", LEASE).await.unwrap() {
            break c;
        }
        assert!(Instant::now() < deadline, "expired lease never reclaimed");
        tokio::task::yield_now().await;
    };
    assert_eq!(b_claim.job.id, "j1");
    assert!(b_claim.token > a.token, "token must increase on re-claim");
    assert_eq!(b_claim.job.owner_node.as_deref(), Some("node-b"));

    // A's late commit is refused and writes nothing.
    let late = ChangeSet::fenced("j1", a.token)
        .with(create("user", "from-a", json!({})))
        .with(Op::AddRunCounters {
            run_id: "r1".into(),
            node_id: "node-a".into(),
            counters: [("processed".to_string(), 10)].into(),
        })
        .with(Op::CompleteJob {
            job_id: "j1".into(),
        });
    assert!(matches!(
        repo.commit(late).await,
        Err(RepoError::StaleToken { .. })
    ));
    assert!(repo.get_object("user", "from-a").await.unwrap().is_none());
    assert!(repo.run_counters("r1").await.unwrap().totals.is_empty());
    assert!(matches!(
        repo.renew_lease("j1", a.token, LEASE).await,
        Err(RepoError::StaleToken { .. })
    ));
    assert!(matches!(
        repo.release_job("j1", a.token).await,
        Err(RepoError::StaleToken { .. })
    ));

    // B's commit goes through and completes the job.
    let ok = ChangeSet::fenced("j1", b_claim.token)
        .with(create("user", "from-b", json!({})))
        .with(Op::CompleteJob {
            job_id: "j1".into(),
        });
    repo.commit(ok).await.unwrap();
    assert!(repo.get_object("user", "from-b").await.unwrap().is_some());
    assert!(repo.get_job("j1").await.unwrap().is_none());
    // A fence on a job that is gone is stale too.
    let gone = ChangeSet::fenced("j1", b_claim.token).with(create("user", "x", json!({})));
    assert!(matches!(
        repo.commit(gone).await,
        Err(RepoError::StaleToken { .. })
    ));
    // A done job cannot be scheduled again (a re-run of the page that scheduled it must not
    // re-run it), nor completed twice, nor claimed.
    assert!(matches!(
        repo.commit(ChangeSet::new().with(Op::EnqueueJob(job("j1", "page", Some("r1")))))
            .await,
        Err(RepoError::Conflict(_))
    ));
    assert!(matches!(
        repo.commit(ChangeSet::new().with(Op::CompleteJob {
            job_id: "j1".into()
        }))
        .await,
        Err(RepoError::NotFound(_))
    ));
    assert!(
        repo.claim_next(&["page"], "node-c", LEASE)
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn concurrent_claimers_never_share_a_job(b: &dyn Backend) {
    let (repo, _) = b.fresh().await;
    let n = 300;
    let mut cs = ChangeSet::new();
    for i in 0..n {
        cs.push(Op::EnqueueJob(job(&format!("j{i:04}"), "page", Some("r"))));
    }
    repo.commit(cs).await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..8 {
        let repo = repo.clone();
        tasks.push(tokio::spawn(async move {
            let node = format!("node-{t}");
            let mut mine = Vec::new();
            while let Some(c) = repo.claim_next(&["page"], &node, LEASE).await.unwrap() {
                // Complete through a fenced commit that also records work.
                let cs = ChangeSet::fenced(c.job.id.clone(), c.token)
                    .with(Op::AddRunCounters {
                        run_id: "r".into(),
                        node_id: node.clone(),
                        counters: [("processed".to_string(), 1)].into(),
                    })
                    .with(Op::CompleteJob {
                        job_id: c.job.id.clone(),
                    });
                repo.commit(cs).await.unwrap();
                mine.push(c.job.id);
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let unique: BTreeSet<_> = all.iter().cloned().collect();
    assert_eq!(all.len(), n, "some job was claimed twice or not at all");
    assert_eq!(unique.len(), n);
    assert_eq!(repo.count_jobs("r").await.unwrap(), 0);
    let counters = repo.run_counters("r").await.unwrap();
    assert_eq!(counters.totals["processed"], n as i64);
    let by_node: i64 = counters.by_node.values().map(|m| m["processed"]).sum();
    assert_eq!(by_node, n as i64);
}

pub async fn job_lifecycle(b: &dyn Backend) {
    let (repo, _) = b.fresh().await;
    repo.enqueue_job(&job("a", "page", Some("r1")))
        .await
        .unwrap();
    assert!(matches!(
        repo.enqueue_job(&job("a", "page", None)).await,
        Err(RepoError::Conflict(_))
    ));
    let mut later = job("later", "page", Some("r1"));
    later.not_before = Some(Utc::now() + chrono::Duration::hours(1));
    repo.enqueue_job(&later).await.unwrap();
    repo.enqueue_job(&job("other", "check", Some("r2")))
        .await
        .unwrap();
    assert_eq!(repo.count_jobs("r1").await.unwrap(), 2);

    assert!(
        repo.claim_next(&["nothing"], "n1", LEASE)
            .await
            .unwrap()
            .is_none()
    );
    let c = repo
        .claim_next(&["page"], "n1", LEASE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.job.id, "a");
    assert_eq!(c.token, 1);
    assert_eq!(c.job.payload, json!({"page": "a"}));
    // `later` is not due; `a` is leased.
    assert!(
        repo.claim_next(&["page"], "n2", LEASE)
            .await
            .unwrap()
            .is_none()
    );
    repo.renew_lease("a", c.token, LEASE).await.unwrap();
    repo.release_job("a", c.token).await.unwrap();
    let j = repo.get_job("a").await.unwrap().unwrap();
    assert_eq!(j.state, JobState::Pending);
    assert_eq!(j.owner_node, None);
    let c2 = repo
        .claim_next(&["page", "check"], "n2", LEASE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c2.job.id, "a");
    assert_eq!(c2.token, 2);
    let c3 = repo
        .claim_next(&["page", "check"], "n2", LEASE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c3.job.id, "other");
    // What nodes hold now (the admin console's cluster view), by node then id.
    let held: Vec<_> = repo
        .claimed_jobs()
        .await
        .unwrap()
        .into_iter()
        .map(|j| (j.owner_node.unwrap(), j.id, j.state))
        .collect();
    assert_eq!(
        held,
        vec![
            ("n2".to_string(), "a".to_string(), JobState::Claimed),
            ("n2".to_string(), "other".to_string(), JobState::Claimed)
        ]
    );
    assert_eq!(repo.release_jobs_of_node("n2").await.unwrap(), 2);
    assert!(repo.claimed_jobs().await.unwrap().is_empty());
    assert_eq!(
        repo.get_job("other").await.unwrap().unwrap().state,
        JobState::Pending
    );
    assert!(matches!(
        repo.commit(one(Op::CompleteJob {
            job_id: "zz".into()
        }))
        .await,
        Err(RepoError::NotFound(_))
    ));
}

/// Work a node lost (its lease expired, or it was released when the node was found down or
/// shut down) is claimed before pending jobs, also before ones queued earlier;
/// `claim_recovered` takes only such work; the token increases on every re-claim.
pub async fn recovered_jobs_are_claimed_first(b: &dyn Backend) {
    let (repo, _) = b.fresh().await;
    const BOTH: [&str; 2] = ["page", "late"];
    repo.enqueue_job(&job("a1", "page", Some("r1")))
        .await
        .unwrap();
    repo.enqueue_job(&job("b1", "late", Some("r1")))
        .await
        .unwrap();
    // A node claims b1 and dies at once (its lease ends immediately).
    let lost = repo
        .claim_next(&["late"], "dying", Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lost.job.id, "b1");
    // A node whose slots are busy takes only lost work: b1, not the older fresh a1.
    let deadline = Instant::now() + Duration::from_secs(10);
    let r1 = loop {
        if let Some(c) = repo
            .claim_recovered(&BOTH, "survivor", LEASE)
            .await
            .unwrap()
        {
            break c;
        }
        assert!(
            Instant::now() < deadline,
            "an expired lease was never recovered"
        );
        tokio::task::yield_now().await;
    };
    assert_eq!(r1.job.id, "b1");
    assert!(r1.token > lost.token, "a re-claim takes a new token");
    assert!(
        repo.claim_recovered(&BOTH, "survivor", LEASE)
            .await
            .unwrap()
            .is_none(),
        "a fresh job is not lost work"
    );
    // The survivor is found down: its work is released and claimed before the older a1.
    assert_eq!(repo.release_jobs_of_node("survivor").await.unwrap(), 1);
    let r2 = repo
        .claim_next(&BOTH, "third", LEASE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        r2.job.id, "b1",
        "released work goes before older fresh work"
    );
    assert!(r2.token > r1.token);
    // Given back by its owner (a check that waits, a page not started), a job is ordinary
    // pending work again: not recovered, and claimed in queue order.
    repo.release_job("b1", r2.token).await.unwrap();
    assert!(
        repo.claim_recovered(&BOTH, "fourth", LEASE)
            .await
            .unwrap()
            .is_none()
    );
    repo.enqueue_job(&job("a0", "page", Some("r1")))
        .await
        .unwrap();
    let order: Vec<ClaimedJob> = vec![
        repo.claim_next(&BOTH, "fourth", LEASE)
            .await
            .unwrap()
            .unwrap(),
        repo.claim_next(&BOTH, "fourth", LEASE)
            .await
            .unwrap()
            .unwrap(),
        repo.claim_next(&BOTH, "fourth", LEASE)
            .await
            .unwrap()
            .unwrap(),
    ];
    let ids: Vec<&str> = order.iter().map(|c| c.job.id.as_str()).collect();
    assert_eq!(ids, ["a1", "b1", "a0"]);
    let r3 = &order[1];
    assert!(r3.token > r2.token);
    // Every earlier holder of b1 is fenced out; the current one commits.
    for stale in [lost.token, r1.token, r2.token] {
        assert!(matches!(
            repo.commit(ChangeSet::fenced("b1", stale).with(Op::CompleteJob {
                job_id: "b1".into()
            }))
            .await,
            Err(RepoError::StaleToken { .. })
        ));
    }
    repo.commit(ChangeSet::fenced("b1", r3.token).with(Op::CompleteJob {
        job_id: "b1".into(),
    }))
    .await
    .unwrap();
}

pub async fn nodes(b: &dyn Backend) {
    let (repo, _) = b.fresh().await;
    let t0 = Utc::now();
    repo.heartbeat("n1", "host-a", t0).await.unwrap();
    repo.heartbeat("n2", "host-b", t0).await.unwrap();
    let t1 = t0 + chrono::Duration::seconds(5);
    repo.heartbeat("n1", "host-a", t1).await.unwrap();
    let nodes = repo.list_nodes().await.unwrap();
    assert_eq!(nodes.len(), 2);
    assert_eq!(nodes[0].id, "n1");
    assert_eq!(nodes[0].state, NodeState::Running);
    assert_eq!(
        nodes[0].last_heartbeat.timestamp_millis(),
        t1.timestamp_millis()
    );
    assert_eq!(nodes[0].startup.timestamp_millis(), t0.timestamp_millis());
    assert_eq!(nodes[0].host.as_deref(), Some("host-a"));
    assert_eq!(nodes[1].host.as_deref(), Some("host-b"));
    // A node that moved (a restart on another machine) says so with its next heartbeat.
    repo.heartbeat("n1", "host-c", t1).await.unwrap();
    assert_eq!(
        repo.list_nodes().await.unwrap()[0].host.as_deref(),
        Some("host-c")
    );
    repo.set_node_state("n2", NodeState::Down).await.unwrap();
    let n2 = repo.list_nodes().await.unwrap().remove(1);
    assert_eq!(n2.state, NodeState::Down);
    assert!(n2.shutdown.is_some());
    // A node coming back is running again with a new startup time.
    repo.heartbeat("n2", "host-b", t1).await.unwrap();
    let n2 = repo.list_nodes().await.unwrap().remove(1);
    assert_eq!(n2.state, NodeState::Running);
    assert_eq!(n2.startup.timestamp_millis(), t1.timestamp_millis());
    assert!(n2.shutdown.is_none());
    assert!(matches!(
        repo.set_node_state("zz", NodeState::Down).await,
        Err(RepoError::NotFound(_))
    ));
}

pub async fn locks(b: &dyn Backend) {
    let (repo, _) = b.fresh().await;
    let t1 = repo
        .try_acquire_lock("queue/m1", "n1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        repo.try_acquire_lock("queue/m1", "n1").await.unwrap(),
        Some(t1)
    );
    assert_eq!(repo.try_acquire_lock("queue/m1", "n2").await.unwrap(), None);
    repo.try_acquire_lock("queue/m2", "n1")
        .await
        .unwrap()
        .unwrap();
    repo.try_acquire_lock("queue/m3", "n2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(repo.locks_of_node("n1").await.unwrap().len(), 2);
    assert_eq!(repo.list_locks().await.unwrap().len(), 3);
    assert!(!repo.release_lock("queue/m1", "n2").await.unwrap());
    assert!(repo.release_lock("queue/m1", "n1").await.unwrap());
    let t2 = repo
        .try_acquire_lock("queue/m1", "n2")
        .await
        .unwrap()
        .unwrap();
    assert!(t2 > t1, "lock token must increase on each acquisition");
    assert_eq!(repo.release_locks_of_node("n1").await.unwrap(), 1);
    let names: Vec<String> = repo
        .list_locks()
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.name)
        .collect();
    assert_eq!(names, vec!["queue/m1", "queue/m3"]);
    // Concurrent acquirers: exactly one wins.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let repo = repo.clone();
        tasks.push(tokio::spawn(async move {
            repo.try_acquire_lock("race", &format!("n{i}"))
                .await
                .unwrap()
        }));
    }
    let mut winners = 0;
    for t in tasks {
        if t.await.unwrap().is_some() {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
}
