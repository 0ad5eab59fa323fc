//! The scheduler across nodes (docs/configuration.md#confschedule-namejson): two `Engine`s with
//! different node ids on one repository (the same SQLite file, or the same PostgreSQL database)
//! both see every firing, and each firing runs on exactly one of them; a firing is skipped while
//! the mapping's run is active; missed firings collapse into one; REST-created schedules are stored
//! and shared. And the job worker of a node sharing its host runs only its share of the host's
//! jobs.
//!
//! The project is a copy of `samples/getting-started` (CSV → CSV) plus a schedule file.

#![allow(clippy::unwrap_used)] // Tests may unwrap.

mod support;

use chrono::{DateTime, TimeDelta, Timelike, Utc};
use idsync_core::QueryRequest;
use idsync_engine::scheduler::{self, Firing, FiringStatus, Origin};
use idsync_engine::{Engine, EngineError, ReconOptions, Resources};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use support::PgDb;

const MAPPING: &str = "HumanResources_Engineering";
const SCHEDULE: &str = "everySecond";

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() == ".idsync" {
            continue;
        }
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

/// A temp copy of getting-started with a schedule reconciling its mapping every second.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples/getting-started");
    copy_dir(&sample, dir.path());
    std::fs::write(
        dir.path().join(format!("conf/schedule-{SCHEDULE}.json")),
        json!({
            "enabled": true,
            "type": "cron",
            "schedule": "0/1 * * * * ?",
            "persisted": true,
            "concurrentExecution": false,
            "invokeService": "sync",
            "invokeContext": {"action": "reconcile", "mapping": MAPPING}
        })
        .to_string(),
    )
    .unwrap();
    dir
}

/// One node: the project, the repository at `url`, its connectors, node id `node`.
async fn node(dir: &Path, url: &str, node: &str) -> Arc<Engine> {
    let project = Arc::new(idsync_config::load_project_from_env(dir).unwrap().project);
    assert!(scheduler::trigger_diagnostics(&project).is_empty());
    let repo = idsync_repo::open(url).await.unwrap();
    let mut conns = BTreeMap::new();
    for (name, cfg) in &project.connectors {
        conns.insert(
            name.clone(),
            idsync_connectors::build_connector(cfg, &project.dir).unwrap(),
        );
    }
    let resources = Resources::new(&project, repo.clone(), conns);
    Engine::new(project, repo, resources, node).unwrap()
}

fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("shared-repo.db").display())
}

/// A whole second in the future, as the trigger would produce.
fn a_slot() -> DateTime<Utc> {
    let now = Utc::now() + TimeDelta::seconds(5);
    now.with_nanosecond(0).unwrap()
}

async fn all_firings(e: &Engine, name: &str) -> Vec<Firing> {
    let page = e.query_firings(name, &QueryRequest::all()).await.unwrap();
    page.results
        .into_iter()
        .map(|v| serde_json::from_value(v).unwrap())
        .collect()
}

/// Both nodes fire the same instant at once: one wins and starts the run, the other sees the
/// firing taken; asking again later changes nothing. Then, with that run still active (no
/// worker runs its pages), the next firing is skipped and names the active run.
async fn one_firing_one_run_then_skip(a: Arc<Engine>, b: Arc<Engine>) {
    let entry = a.schedule(SCHEDULE).await.unwrap().unwrap();
    assert_eq!(entry.origin, Origin::Config);
    let t = a_slot();
    let (ra, rb) = tokio::join!(
        a.fire_scheduled(&entry, t, 0),
        b.fire_scheduled(&entry, t, 0)
    );
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    let won: Vec<&Firing> = ra.iter().chain(rb.iter()).collect();
    assert_eq!(
        won.len(),
        1,
        "exactly one node runs the firing: {ra:?} {rb:?}"
    );
    let firing = won[0];
    assert_eq!(firing.id, format!("{SCHEDULE}@{}", t.timestamp_millis()));
    assert_eq!(firing.status, FiringStatus::Started, "{firing:?}");
    let run_id = firing.run_id.clone().unwrap();
    // Late askers (a node whose clock is behind) find the firing taken.
    assert!(a.fire_scheduled(&entry, t, 0).await.unwrap().is_none());
    assert!(b.fire_scheduled(&entry, t, 0).await.unwrap().is_none());
    let runs = a.repo.list_runs(Some(MAPPING)).await.unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].id, run_id);

    // The run is still ACTIVE: the next firing, on whichever node, is skipped.
    let t2 = t + TimeDelta::seconds(1);
    let skipped = b.fire_scheduled(&entry, t2, 1).await.unwrap().unwrap();
    assert_eq!(skipped.status, FiringStatus::Skipped, "{skipped:?}");
    assert_eq!(skipped.active_run_id.as_deref(), Some(run_id.as_str()));
    assert!(
        skipped
            .message
            .as_deref()
            .unwrap()
            .contains("concurrentExecution is false")
    );
    assert_eq!(a.repo.list_runs(Some(MAPPING)).await.unwrap().len(), 1);
    // The rows say the same to every node.
    let rows = all_firings(&a, SCHEDULE).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0].id, skipped.id, "newest first");
    assert_eq!(rows[0].status, FiringStatus::Skipped);
    assert_eq!(rows[1].status, FiringStatus::Started);
    assert_eq!(rows[1].run_id.as_deref(), Some(run_id.as_str()));
    assert_eq!(rows[1].node, firing.node);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_one_firing_runs_on_one_node_and_skips_while_active() {
    let dir = project();
    let url = sqlite_url(dir.path());
    let a = node(dir.path(), &url, "node-a").await;
    let b = node(dir.path(), &url, "node-b").await;
    one_firing_one_run_then_skip(a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_one_firing_runs_on_one_node_and_skips_while_active() {
    let dir = project();
    let db = PgDb::create("sched");
    let a = node(dir.path(), &db.url, "node-a").await;
    let b = node(dir.path(), &db.url, "node-b").await;
    let outcome = tokio::spawn(one_firing_one_run_then_skip(a, b)).await;
    drop(db);
    outcome.unwrap();
}

/// Runs the scheduler loops (and job workers) of `nodes` for `secs` seconds.
async fn run_nodes(nodes: &[Arc<Engine>], secs: u64) {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for n in nodes {
        tasks.push(tokio::spawn(scheduler::run_scheduler(
            n.clone(),
            stop_rx.clone(),
        )));
        tasks.push(tokio::spawn(idsync_engine::worker::run_worker(
            n.clone(),
            2,
            stop_rx.clone(),
        )));
    }
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop_tx.send(true).unwrap();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
}

/// Two scheduler loops on one SQLite file for a few seconds: every firing is a slot of the
/// cron (a whole second, the same id on both nodes), each slot fired once, and every run was
/// started by exactly one firing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_scheduler_loops_fire_each_slot_once() {
    let dir = project();
    let url = sqlite_url(dir.path());
    let a = node(dir.path(), &url, "node-a").await;
    let b = node(dir.path(), &url, "node-b").await;
    let started_at = Utc::now();
    run_nodes(&[a.clone(), b.clone()], 5).await;

    let firings = all_firings(&b, SCHEDULE).await;
    assert!(firings.len() >= 2, "a 1-s cron fired over 5 s: {firings:?}");
    let mut slots = BTreeSet::new();
    for f in &firings {
        assert_eq!(
            f.fire_time % 1000,
            0,
            "fire times come from the cron: {f:?}"
        );
        assert!(f.fire_instant().unwrap() > started_at - TimeDelta::seconds(1));
        assert!(slots.insert(f.fire_time), "slot fired twice: {firings:?}");
        assert!(["node-a", "node-b"].contains(&f.node.as_str()), "{f:?}");
        assert!(!f.manual);
        match f.status {
            FiringStatus::Started => assert!(f.run_id.is_some(), "{f:?}"),
            FiringStatus::Skipped => assert!(f.active_run_id.is_some(), "{f:?}"),
            other => panic!("unexpected status {other:?}: {f:?}"),
        }
    }
    let runs = a.repo.list_runs(Some(MAPPING)).await.unwrap();
    let started: BTreeSet<&str> = firings.iter().filter_map(|f| f.run_id.as_deref()).collect();
    assert_eq!(
        started.len(),
        firings
            .iter()
            .filter(|f| f.status == FiringStatus::Started)
            .count(),
        "each started firing has a run of its own"
    );
    let run_ids: BTreeSet<&str> = runs.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(run_ids, started, "every run was started by one firing");
}

/// After downtime the missed slots collapse: one firing at once, for the latest missed slot,
/// not one per missed second.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn missed_firings_fire_once() {
    let dir = project();
    let url = sqlite_url(dir.path());
    let a = node(dir.path(), &url, "node-a").await;
    let entry = a.schedule(SCHEDULE).await.unwrap().unwrap();
    // The last firing before "downtime", an hour ago.
    let old = (Utc::now() - TimeDelta::hours(1))
        .with_nanosecond(0)
        .unwrap();
    let first = a.fire_scheduled(&entry, old, 0).await.unwrap().unwrap();
    assert_eq!(first.status, FiringStatus::Started);
    let run = first.run_id.clone().unwrap();
    // Let that run end, so the catch-up firing can start one.
    run_nodes_workers_until_done(&a, &run).await;

    let restarted_at = Utc::now();
    run_nodes(std::slice::from_ref(&a), 3).await;
    let firings = all_firings(&a, SCHEDULE).await;
    let after: Vec<&Firing> = firings.iter().filter(|f| f.id != first.id).collect();
    assert!(!after.is_empty(), "the scheduler fired after the restart");
    for f in &after {
        assert!(
            f.fire_instant().unwrap() >= restarted_at - TimeDelta::seconds(1),
            "a missed slot of the downtime was fired: {f:?}"
        );
    }
    assert!(
        after.len() <= 5,
        "missed firings collapse into one: {} firings",
        after.len()
    );
}

async fn run_nodes_workers_until_done(e: &Arc<Engine>, run: &str) {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let w = tokio::spawn(idsync_engine::worker::run_worker(e.clone(), 2, stop_rx));
    loop {
        let r = e.repo.get_run(run).await.unwrap().unwrap();
        if r.stage.is_completed() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop_tx.send(true).unwrap();
    w.await.unwrap().unwrap();
}

/// Schedules written through the engine's REST operations are stored, seen by the other node,
/// validated, and deleted with their firings; files stay read-only; a trigger fires at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stored_schedules_are_shared_validated_and_triggered() {
    let dir = project();
    let url = sqlite_url(dir.path());
    let a = node(dir.path(), &url, "node-a").await;
    let b = node(dir.path(), &url, "node-b").await;
    let body = json!({
        "schedule": "0 0 3 * * ?",
        "invokeService": "script",
        "invokeContext": {"script": {"type": "text/javascript", "source": "input.n * 2"}, "input": {"n": 21}}
    });
    let (entry, created) = a.put_schedule("doubler", &body, None, false).await.unwrap();
    assert!(created);
    assert!(matches!(entry.origin, Origin::Repository { .. }));
    // The other node sees it, with its next run at 03:00 UTC.
    let seen = b.schedule("doubler").await.unwrap().unwrap();
    let next = b.next_run_date(&seen).await.unwrap().unwrap();
    assert_eq!((next.hour(), next.minute(), next.second()), (3, 0, 0));
    let names: Vec<String> = b
        .schedules()
        .await
        .unwrap()
        .iter()
        .map(|e| e.name().to_string())
        .collect();
    assert_eq!(names, vec![SCHEDULE.to_string(), "doubler".to_string()]);

    // Trigger: runs now, once, on the node asked.
    let f = b.trigger_schedule("doubler").await.unwrap();
    assert_eq!(f.status, FiringStatus::Success, "{f:?}");
    assert_eq!(f.message.as_deref(), Some("result: 42"));
    assert!(f.manual);
    assert_eq!(f.node, "node-b");

    // A bad cron is refused with its pointer; the stored one is unchanged.
    let mut bad = body.clone();
    bad["schedule"] = json!("0 61 * * * ?");
    match a.put_schedule("doubler", &bad, None, false).await {
        Err(EngineError::BadRequest(m)) => assert!(m.starts_with("/schedule: "), "{m}"),
        other => panic!("{other:?}"),
    }
    // Unknown mappings are refused too.
    let unknown = json!({"schedule": "0 0 3 * * ?", "invokeService": "sync",
                         "invokeContext": {"action": "reconcile", "mapping": "nope"}});
    assert!(matches!(
        a.put_schedule("x", &unknown, None, false).await,
        Err(EngineError::BadRequest(m)) if m.contains("nope")
    ));
    // Files are read-only.
    assert!(matches!(
        a.put_schedule(SCHEDULE, &body, None, false).await,
        Err(EngineError::Conflict(m)) if m.contains("read-only")
    ));
    assert!(matches!(
        a.delete_schedule(SCHEDULE, None).await,
        Err(EngineError::Conflict(_))
    ));
    // Delete removes the schedule and its firings.
    a.delete_schedule("doubler", None).await.unwrap();
    assert!(b.schedule("doubler").await.unwrap().is_none());
    assert!(all_firings(&a, "doubler").await.is_empty());
    assert!(matches!(
        b.trigger_schedule("doubler").await,
        Err(EngineError::NotFound(_))
    ));
}

/// A config schedule with a bad cron is a diagnostic with file and pointer.
#[test]
fn bad_cron_in_a_file_is_a_diagnostic() {
    let dir = project();
    let file = dir.path().join("conf/schedule-bad.json");
    std::fs::write(
        &file,
        json!({"schedule": "0 0 25 * * ?", "invokeService": "sync",
               "invokeContext": {"action": "reconcile", "mapping": MAPPING}})
        .to_string(),
    )
    .unwrap();
    let project = idsync_config::load_project_from_env(dir.path())
        .unwrap()
        .project;
    let diags = scheduler::trigger_diagnostics(&project);
    assert_eq!(diags.len(), 1, "{diags:?}");
    let line = diags[0].to_string();
    assert!(
        line.starts_with("conf/schedule-bad.json: /schedule: "),
        "{line}"
    );
    assert!(line.contains("25"), "{line}");
    // The same from the files alone (when something else stops the project from loading).
    let from_files = scheduler::trigger_diagnostics_of_files(dir.path());
    assert_eq!(from_files, diags);
}

/// The one-active-run rule holds between a scheduled run and a REST start.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rest_start_is_refused_while_a_scheduled_run_is_active() {
    let dir = project();
    let url = sqlite_url(dir.path());
    let a = node(dir.path(), &url, "node-a").await;
    let entry = a.schedule(SCHEDULE).await.unwrap().unwrap();
    let f = a
        .fire_scheduled(&entry, a_slot(), 0)
        .await
        .unwrap()
        .unwrap();
    let run = f.run_id.unwrap();
    match a.start_recon(MAPPING, ReconOptions::default()).await {
        Err(EngineError::ActiveRun { run_id, .. }) => assert_eq!(run_id, run),
        other => panic!("{other:?}"),
    }
}

/// Firing rows do not grow forever: the newest `KEEP_FIRINGS` of a schedule stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn old_firings_are_pruned() {
    let dir = project();
    let url = sqlite_url(dir.path());
    let a = node(dir.path(), &url, "node-a").await;
    let entry = a.schedule(SCHEDULE).await.unwrap().unwrap();
    let first = a_slot();
    let extra = 5;
    for k in 0..(scheduler::KEEP_FIRINGS + extra) {
        let t = first + TimeDelta::seconds(k as i64);
        let f = a
            .fire_scheduled(&entry, t, k as u64)
            .await
            .unwrap()
            .unwrap();
        // The first starts a run that stays active (no worker): the rest are skipped.
        let want = if k == 0 {
            FiringStatus::Started
        } else {
            FiringStatus::Skipped
        };
        assert_eq!(f.status, want, "{f:?}");
    }
    let rows = all_firings(&a, SCHEDULE).await;
    assert_eq!(rows.len(), scheduler::KEEP_FIRINGS);
    let oldest_kept = first + TimeDelta::seconds(extra as i64);
    assert_eq!(
        rows.last().unwrap().fire_time,
        oldest_kept.timestamp_millis()
    );
    // The newest firing is still the history the trigger continues from.
    let (last, seq) = a.last_firing(&entry).await.unwrap().unwrap();
    assert_eq!(
        last,
        first + TimeDelta::seconds((scheduler::KEEP_FIRINGS + extra - 1) as i64)
    );
    assert_eq!(seq, (scheduler::KEEP_FIRINGS + extra - 1) as u64);
}

/// A liveSync firing runs one pass of its source on the node that claimed it: the first pass
/// records the source's sync record (its token) and starts no reconciliation.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn livesync_firings_run_a_pass() {
    let dir = project();
    let url = sqlite_url(dir.path());
    let a = node(dir.path(), &url, "node-a").await;
    let body = json!({
        "schedule": "0 0 3 * * ?",
        "invokeService": "provisioner",
        "invokeContext": {"action": "liveSync", "source": "system/hr/account"}
    });
    a.put_schedule("live", &body, None, false).await.unwrap();
    assert!(
        a.live_sync_record("system/hr/account")
            .await
            .unwrap()
            .is_none()
    );
    let f = a.trigger_schedule("live").await.unwrap();
    assert_eq!(f.status, FiringStatus::Success, "{f:?}");
    let rec = a
        .live_sync_record("system/hr/account")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec["_id"], "SYSTEMHRACCOUNT", "{rec}");
    assert!(rec["connectorData"]["syncToken"].is_object(), "{rec}");
    assert!(a.repo.list_runs(None).await.unwrap().is_empty());
}

/// The RUNNING firing row a node leaves behind when it dies right after claiming a firing.
async fn orphan_firing(e: &Engine, node: &str, fire_time: DateTime<Utc>) -> Firing {
    let entry = e.schedule(SCHEDULE).await.unwrap().unwrap();
    let f = Firing {
        id: idsync_scheduler::firing_id(SCHEDULE, fire_time),
        schedule: SCHEDULE.into(),
        fire_time: fire_time.timestamp_millis(),
        fire_date: scheduler::iso(fire_time),
        seq: 0,
        manual: false,
        trigger: entry.fingerprint(),
        node: node.into(),
        claimed: scheduler::iso(fire_time),
        status: FiringStatus::Running,
        run_id: None,
        active_run_id: None,
        message: None,
        finished: None,
    };
    e.repo
        .commit(
            idsync_repo::ChangeSet::new().with(idsync_repo::Op::CreateObject {
                object_type: scheduler::FIRING_TYPE.into(),
                id: f.id.clone(),
                value: f.to_json(),
            }),
        )
        .await
        .unwrap();
    f
}

async fn mark_dead(e: &Engine, node: &str) {
    e.repo
        .heartbeat(node, "h", Utc::now() - TimeDelta::minutes(1))
        .await
        .unwrap();
    e.repo
        .set_node_state(node, idsync_repo::NodeState::Down)
        .await
        .unwrap();
}

/// A node that dies between claiming a firing and starting its run does not lose the firing:
/// another node takes it over and starts the run, once; a live node's firing is left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_firing_whose_node_died_before_its_run_started_is_taken_over() {
    let dir = project();
    let url = sqlite_url(dir.path());
    let b = node(dir.path(), &url, "node-b").await;
    let fire_time = DateTime::from_timestamp_millis(Utc::now().timestamp_millis() - 1000).unwrap();
    let orphan = orphan_firing(&b, "node-a", fire_time).await;
    // node-a is alive: nothing to take over.
    b.repo.heartbeat("node-a", "h", Utc::now()).await.unwrap();
    assert!(b.recover_firings().await.unwrap().is_empty());
    assert!(b.recon_list().await.unwrap().is_empty());

    mark_dead(&b, "node-a").await;
    let taken = b.recover_firings().await.unwrap();
    assert_eq!(taken.len(), 1, "{taken:?}");
    let f = &taken[0];
    assert_eq!(f.id, orphan.id);
    assert_eq!(f.node, "node-b");
    assert_eq!(f.status, FiringStatus::Started, "{f:?}");
    let run = f.run_id.clone().unwrap();
    assert_eq!(
        run,
        scheduler::firing_run_id(&orphan.id, orphan.fire_time),
        "the firing's run id is the one every node computes"
    );
    assert!(f.message.as_deref().unwrap().contains("node-a"), "{f:?}");
    let stored = all_firings(&b, SCHEDULE).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].status, FiringStatus::Started);
    run_nodes_workers_until_done(&b, &run).await;
    assert_eq!(b.recon_summary(&run).await.unwrap()["state"], "SUCCESS");
    // Taken over once: nothing more to do, and still one run.
    assert!(b.recover_firings().await.unwrap().is_empty());
    assert_eq!(b.recon_list().await.unwrap().len(), 1);
}

/// A node that started the firing's run but died before recording it: the node taking the
/// firing over adopts that run instead of starting a second one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_taken_over_firing_adopts_the_run_its_node_started() {
    let dir = project();
    let url = sqlite_url(dir.path());
    let a = node(dir.path(), &url, "node-a").await;
    let b = node(dir.path(), &url, "node-b").await;
    let fire_time = DateTime::from_timestamp_millis(Utc::now().timestamp_millis() - 1000).unwrap();
    let orphan = orphan_firing(&a, "node-a", fire_time).await;
    let run_id = scheduler::firing_run_id(&orphan.id, orphan.fire_time);
    let opts = ReconOptions {
        analyze: false,
        source_id: None,
        overrides: Default::default(),
    };
    assert_eq!(
        a.start_recon_as(MAPPING, opts, run_id.clone())
            .await
            .unwrap(),
        run_id
    );
    mark_dead(&b, "node-a").await;
    let taken = b.recover_firings().await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].status, FiringStatus::Started, "{:?}", taken[0]);
    assert_eq!(taken[0].run_id.as_deref(), Some(run_id.as_str()));
    run_nodes_workers_until_done(&b, &run_id).await;
    let runs = b.recon_list().await.unwrap();
    assert_eq!(runs.len(), 1, "one run for the firing: {runs:?}");
    assert_eq!(runs[0]["state"], "SUCCESS");
    // The first page ran once: each of the 3 source rows processed once.
    let summary = b.recon_summary(&run_id).await.unwrap();
    assert_eq!(
        summary["progress"]["source"]["existing"]["processed"], 3,
        "{summary}"
    );
}

/// A firing orphaned long ago is not run any more: it is marked FAILED, and the schedule's
/// next firing does the work.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_old_orphaned_firing_is_failed_not_run() {
    let dir = project();
    let url = sqlite_url(dir.path());
    let b = node(dir.path(), &url, "node-b").await;
    let fire_time = DateTime::from_timestamp_millis(
        (Utc::now() - scheduler::TAKEOVER_WINDOW - TimeDelta::minutes(1)).timestamp_millis(),
    )
    .unwrap();
    orphan_firing(&b, "node-a", fire_time).await;
    mark_dead(&b, "node-a").await;
    let taken = b.recover_firings().await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].status, FiringStatus::Failed, "{:?}", taken[0]);
    assert!(b.recon_list().await.unwrap().is_empty());
    assert!(b.recover_firings().await.unwrap().is_empty());
}

/// The job worker of a node that shares its host runs only its share of `maxConcurrentJobs`
/// (`worker.rs`): two nodes on host `h` and a budget of 2 → one page at a time on node-a,
/// although a clustered run schedules its next page before it reconciles its own (with two
/// slots the next page would be claimed at once). Each page is one slow object (`validSource`
/// waits 300 ms), so two pages in flight could not go unseen.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_runs_only_its_share_of_the_hosts_jobs() {
    let dir = project();
    let sync = dir.path().join("conf/sync.json");
    let mut conf: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sync).unwrap()).unwrap();
    let m = &mut conf["mappings"][0];
    m["clusteredSourceReconEnabled"] = json!(true);
    m["reconSourceQueryPageSize"] = json!(1);
    m["validSource"] = json!({
        "type": "text/javascript",
        "source": "var t = Date.now(); while (Date.now() - t < 300) {} true"
    });
    std::fs::write(&sync, conf.to_string()).unwrap();
    let url = sqlite_url(dir.path());
    let a = node(dir.path(), &url, "node-a").await;
    a.repo.heartbeat("node-a", "h", Utc::now()).await.unwrap();
    a.repo.heartbeat("node-b", "h", Utc::now()).await.unwrap();

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let monitor = tokio::spawn(idsync_engine::cluster::run_cluster_monitor(
        a.clone(),
        stop_rx.clone(),
    ));
    for _ in 0..100 {
        if a.job_slots(2) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(a.job_slots(2), 1, "node-a sees node-b on its host");
    let worker = tokio::spawn(idsync_engine::worker::run_worker(a.clone(), 2, stop_rx));

    let run = a
        .start_recon(MAPPING, ReconOptions::default())
        .await
        .unwrap();
    let (mut most, mut seen) = (0, BTreeSet::new());
    loop {
        // One read of every claimed job: reading the pages one by one could see page 1 still
        // claimed and, a moment later, page 2 claimed after page 1 ended.
        let claimed: Vec<_> = a
            .repo
            .claimed_jobs()
            .await
            .unwrap()
            .into_iter()
            .filter(|j| j.id.starts_with(&format!("{run}/source/")))
            .collect();
        seen.extend(claimed.iter().map(|j| j.id.clone()));
        most = most.max(claimed.len());
        if a.repo
            .get_run(&run)
            .await
            .unwrap()
            .unwrap()
            .stage
            .is_completed()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop_tx.send(true).unwrap();
    worker.await.unwrap().unwrap();
    monitor.await.unwrap();
    let r = a.repo.get_run(&run).await.unwrap().unwrap();
    assert_eq!(r.state, idsync_core::ReconState::Success, "{r:?}");
    assert!(
        seen.len() >= 2,
        "pages were watched while claimed: {seen:?}"
    );
    assert_eq!(most, 1, "node-a ran one page at a time");
}
