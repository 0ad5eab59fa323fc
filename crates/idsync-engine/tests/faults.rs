//! Fault injection (issue 20): a run never stays ACTIVE once no job is left to end it, and a
//! lease survives database hiccups shorter than itself. Failpoints (src/faults.rs) stand for a
//! crash or a database error at the worst places; each test fires one and asserts the recovery.
//!
//! Every test runs in its own process under nextest, so the `fail` registry is the test's own.

#![allow(clippy::unwrap_used)] // Tests may unwrap.

use chrono::Utc;
use idsync_core::{ReconStage, ReconState};
use idsync_engine::{Engine, ReconOptions, Resources};
use idsync_repo::{ChangeSet, Job, Op, Repository, RunRecord};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "../../idsync-connectors/tests/support/slapd.rs"]
mod slapd;
mod support;

const MAPPING: &str = "hr_user";

/// A project reconciling `rows` CSV rows into `managed/user`, with fast cluster timings.
fn write_project(dir: &Path, rows: usize, lease_ms: u64) {
    std::fs::create_dir_all(dir.join("conf")).unwrap();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(
        dir.join("conf/provisioner.openicf-hr.json"),
        json!({
            "name": "hr",
            "connectorRef": {"connectorName": "org.forgerock.openicf.csvfile.CSVFileConnector"},
            "configurationProperties": {"csvFile": "data/hr.csv", "headerUid": "uid"},
            "objectTypes": {"account": {
                "id": "__ACCOUNT__", "type": "object", "nativeType": "__ACCOUNT__",
                "properties": {
                    "uid": {"type": "string", "nativeName": "__NAME__"},
                    "mail": {"type": "string", "nativeName": "mail"}
                }
            }}
        })
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.join("conf/managed.json"),
        json!({"objects": [{"name": "user", "schema": {"type": "object", "properties": {
            "userName": {"type": "string"}
        }}}]})
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.join("conf/sync.json"),
        json!({"mappings": [{
            "name": MAPPING,
            "source": "system/hr/account",
            "target": "managed/user",
            "properties": [{"source": "mail", "target": "userName"}],
            "policies": [
                {"situation": "ABSENT", "action": "CREATE"},
                {"situation": "CONFIRMED", "action": "UPDATE"},
                {"situation": "SOURCE_MISSING", "action": "DELETE"},
                {"situation": "UNASSIGNED", "action": "REPORT"}
            ]
        }]})
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.join("conf/idsync.json"),
        json!({"heartbeatIntervalMs": 100, "nodeTimeoutMs": 500, "leaseMs": lease_ms}).to_string(),
    )
    .unwrap();
    let mut csv = String::from("uid,mail\n");
    for i in 0..rows {
        csv.push_str(&format!("u{i:05},u{i}@example.com\n"));
    }
    std::fs::write(dir.join("data/hr.csv"), csv).unwrap();
}

async fn node(dir: &Path, repo: Arc<dyn Repository>, id: &str) -> Arc<Engine> {
    let project = Arc::new(idsync_config::load_project_from_env(dir).unwrap().project);
    let mut conns = BTreeMap::new();
    for (name, cfg) in &project.connectors {
        conns.insert(
            name.clone(),
            idsync_connectors::build_connector(cfg, &project.dir).unwrap(),
        );
    }
    let resources = Resources::new(&project, repo.clone(), conns);
    Engine::new(project, repo, resources, id).unwrap()
}

/// A node with its worker and cluster monitor running until the handle is dropped.
struct Running {
    engine: Arc<Engine>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Running {
    fn start(engine: Arc<Engine>) -> Running {
        let (stop, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(idsync_engine::worker::run_worker(
            engine.clone(),
            2,
            rx.clone(),
        ));
        tokio::spawn(idsync_engine::cluster::run_cluster_monitor(
            engine.clone(),
            rx,
        ));
        Running { engine, stop }
    }

    /// Runs a reconciliation of the mapping with the default options on this node and waits for
    /// its end: its summary.
    async fn recon(&self) -> Value {
        let run = self
            .engine
            .start_recon(MAPPING, ReconOptions::default())
            .await
            .unwrap();
        wait_ended(&self.engine, &run).await
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn sqlite(dir: &Path) -> Arc<dyn Repository> {
    idsync_repo::open(&format!("sqlite://{}", dir.join("repo.db").display()))
        .await
        .unwrap()
}

/// Polls the run's summary until it is no longer ACTIVE (30 s at most).
async fn wait_ended(engine: &Engine, run_id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = engine.recon_summary(run_id).await.unwrap();
        if s["state"] != "ACTIVE" {
            return s;
        }
        assert!(Instant::now() < deadline, "run stayed ACTIVE: {s:#}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A run whose chain of jobs broke: its first page is a done tombstone, no job is left, the run
/// is ACTIVE. With `finished`, its finish job is done too (a finish that committed its
/// completion but not the run's end, as the code before issue 20 could).
async fn stuck_run(repo: &dyn Repository, run_id: &str, finished: bool) {
    let run = RunRecord {
        id: run_id.into(),
        mapping: MAPPING.into(),
        analyze: false,
        state: ReconState::Active,
        stage: ReconStage::ActiveProcessingResults,
        started: Utc::now(),
        ended: None,
        cancel_requested: false,
        message: None,
        parameters: json!({}),
        summary: Value::Null,
        totals: json!({}),
        node_id: "n1".into(),
    };
    repo.create_run(&run).await.unwrap();
    let mut done = vec![format!("{run_id}/source/1")];
    if finished {
        done.push(format!("{run_id}/finish"));
    }
    for id in done {
        repo.commit(
            ChangeSet::new()
                .with(Op::EnqueueJob(Job::new(
                    &id,
                    "recon.source",
                    Some(run_id.to_string()),
                    json!({"run": run_id}),
                )))
                .with(Op::CompleteJob { job_id: id.clone() }),
        )
        .await
        .unwrap();
    }
    assert_eq!(repo.count_jobs(run_id).await.unwrap(), 0);
}

/// The finish job fails (a database error or a crash) right before it commits the run's end.
/// The run must not stay ACTIVE: it ends FAILED with the error, and the mapping starts again.
#[tokio::test(flavor = "multi_thread")]
async fn a_finish_that_fails_before_the_run_ends_leaves_no_active_run() {
    let dir = tempfile::tempdir().unwrap();
    write_project(dir.path(), 20, 5_000);
    let repo = sqlite(dir.path()).await;
    let n = Running::start(node(dir.path(), repo.clone(), "n1").await);
    fail::cfg("recon.finish.before_end", "1*return").unwrap();
    let s = n.recon().await;
    assert_eq!(s["state"], "FAILED", "{s:#}");
    let run = s["_id"].as_str().unwrap();
    let msg = repo.get_run(run).await.unwrap().unwrap().message.unwrap();
    assert!(msg.contains("recon.finish.before_end"), "{msg}");
    assert!(repo.active_run(MAPPING).await.unwrap().is_none());
    // The failure did not hold the mapping: the next run starts and succeeds.
    let again = n
        .engine
        .start_recon(MAPPING, ReconOptions::default())
        .await
        .unwrap();
    let s = wait_ended(&n.engine, &again).await;
    assert_eq!(s["state"], "SUCCESS", "{s:#}");
}

/// A run left ACTIVE with no job (its finish done): the cluster monitor ends it FAILED with a
/// message, so the mapping is free again.
#[tokio::test(flavor = "multi_thread")]
async fn the_cluster_monitor_ends_an_active_run_with_no_job_left() {
    let dir = tempfile::tempdir().unwrap();
    write_project(dir.path(), 5, 5_000);
    let repo = sqlite(dir.path()).await;
    stuck_run(&*repo, "stuck", true).await;
    let n = Running::start(node(dir.path(), repo.clone(), "n1").await);
    let s = wait_ended(&n.engine, "stuck").await;
    assert_eq!(s["state"], "FAILED", "{s:#}");
    let run = repo.get_run("stuck").await.unwrap().unwrap();
    assert_eq!(run.stage, ReconStage::CompletedFailed);
    assert_eq!(
        run.message.as_deref(),
        Some(idsync_engine::recon::jobs::ORPHANED_MESSAGE)
    );
    let next = n
        .engine
        .start_recon(MAPPING, ReconOptions::default())
        .await
        .unwrap();
    assert_eq!(wait_ended(&n.engine, &next).await["state"], "SUCCESS");
}

/// An ACTIVE run whose chain of jobs broke before its finish was scheduled (a crash between a
/// target phase's completion and its scheduling of the finish): the monitor schedules the
/// finish, and the run ends SUCCESS.
#[tokio::test(flavor = "multi_thread")]
async fn the_cluster_monitor_finishes_a_run_whose_finish_was_never_scheduled() {
    let dir = tempfile::tempdir().unwrap();
    write_project(dir.path(), 5, 5_000);
    let repo = sqlite(dir.path()).await;
    stuck_run(&*repo, "orphan", false).await;
    let n = Running::start(node(dir.path(), repo.clone(), "n1").await);
    let s = wait_ended(&n.engine, "orphan").await;
    assert_eq!(s["state"], "SUCCESS", "{s:#}");
}

/// Cancel ends a stuck run at once: no finish job would ever come to end it.
#[tokio::test(flavor = "multi_thread")]
async fn cancel_ends_a_stuck_run() {
    let dir = tempfile::tempdir().unwrap();
    write_project(dir.path(), 5, 5_000);
    let repo = sqlite(dir.path()).await;
    stuck_run(&*repo, "stuck", true).await;
    // No worker, no monitor: cancel alone must end it.
    let n = node(dir.path(), repo.clone(), "n1").await;
    n.cancel_recon("stuck").await.unwrap();
    let run = repo.get_run("stuck").await.unwrap().unwrap();
    assert_eq!(run.state, ReconState::Canceled);
    assert_eq!(run.stage, ReconStage::CompletedCanceled);
    assert!(repo.active_run(MAPPING).await.unwrap().is_none());
}

/// One database error on a lease renewal (two in a row here) must not lose the lease: the
/// renewal is retried until the lease would expire, and no other node takes the page.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_lease_renewal_is_retried_and_the_page_stays_with_its_node() {
    let dir = tempfile::tempdir().unwrap();
    write_project(dir.path(), 20, 1_000);
    let repo = sqlite(dir.path()).await;
    let a = Running::start(node(dir.path(), repo.clone(), "a").await);
    // The page takes longer than its lease, and its first two renewals fail.
    fail::cfg("recon.page.before_commit", "1*sleep(2500)").unwrap();
    fail::cfg("worker.lease.renew", "2*return").unwrap();
    let run = a
        .engine
        .start_recon(MAPPING, ReconOptions::default())
        .await
        .unwrap();
    let page = format!("{run}/source/1");
    let deadline = Instant::now() + Duration::from_secs(30);
    while repo
        .get_job(&page)
        .await
        .unwrap()
        .and_then(|j| j.owner_node)
        .as_deref()
        != Some("a")
    {
        assert!(Instant::now() < deadline, "page never claimed by a");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Another node tries to take lost work while the page runs.
    let mut stolen = Vec::new();
    while repo.get_run(&run).await.unwrap().unwrap().state == ReconState::Active {
        if let Some(j) = repo
            .claim_next(&["recon.source"], "thief", Duration::from_secs(60))
            .await
            .unwrap()
        {
            stolen.push(j.job.id);
            break;
        }
        assert!(Instant::now() < deadline, "run did not end");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(stolen.is_empty(), "the page's lease was lost: {stolen:?}");
    let s = wait_ended(&a.engine, &run).await;
    assert_eq!(s["state"], "SUCCESS", "{s:#}");
    assert_eq!(s["sourceProcessedByNode"], json!({"a": 20}), "{s:#}");
}

/// An unpaged source commits in chunks without completing its page. A crash after the first
/// chunk's commit (a panic: the page's lease expires and the page is claimed again) must not
/// count or write the committed chunk twice.
#[tokio::test(flavor = "multi_thread")]
async fn an_unpaged_source_resumed_after_a_crash_counts_every_object_once() {
    let dir = tempfile::tempdir().unwrap();
    write_project(dir.path(), 5_000, 1_000);
    let repo = sqlite(dir.path()).await;
    let a = Running::start(node(dir.path(), repo.clone(), "a").await);
    fail::cfg("recon.page.after_commit", "1*panic").unwrap();
    let s = a.recon().await;
    assert_eq!(s["state"], "SUCCESS", "{s:#}");
    assert_eq!(
        s["progress"]["source"]["existing"]["processed"], 5_000,
        "{s:#}"
    );
    assert_eq!(
        s["progress"]["source"]["existing"]["total"], "5000",
        "{s:#}"
    );
    assert_eq!(s["situationSummary"]["ABSENT"], 5_000, "{s:#}");
    assert_eq!(s["progress"]["target"]["created"], 5_000, "{s:#}");
    assert_eq!(repo.count_objects("user", None).await.unwrap(), 5_000);
}

/// The target phase commits in chunks too: a crash after its first chunk must not count that
/// chunk's targets again when the phase is re-run.
#[tokio::test(flavor = "multi_thread")]
async fn a_target_phase_resumed_after_a_crash_counts_every_target_once() {
    let dir = tempfile::tempdir().unwrap();
    write_project(dir.path(), 5, 1_000);
    let repo = sqlite(dir.path()).await;
    let mut cs = ChangeSet::new();
    for i in 0..4_500 {
        cs.ops.push(Op::CreateObject {
            object_type: "user".into(),
            id: format!("stale-{i:05}"),
            value: json!({"userName": format!("stale{i}")}),
        });
    }
    repo.commit(cs).await.unwrap();
    let a = Running::start(node(dir.path(), repo.clone(), "a").await);
    // The first commit is the source page's; the second, the target phase's first chunk.
    fail::cfg("recon.page.after_commit", "1*off->1*panic").unwrap();
    let s = a.recon().await;
    assert_eq!(s["state"], "SUCCESS", "{s:#}");
    assert_eq!(s["situationSummary"]["UNASSIGNED"], 4_500, "{s:#}");
    assert_eq!(s["situationSummary"]["ABSENT"], 5, "{s:#}");
    assert_eq!(
        s["progress"]["target"]["existing"]["processed"], 4_500,
        "{s:#}"
    );
}

/// A crash after a page's target writes were prepared but before its commit (a panic at the
/// failpoint): nothing of the page is committed, its lease expires, the page runs again and
/// every object is created and counted once.
#[tokio::test(flavor = "multi_thread")]
async fn a_crash_before_a_page_commit_reruns_the_page_once() {
    let dir = tempfile::tempdir().unwrap();
    write_project(dir.path(), 50, 1_000);
    let repo = sqlite(dir.path()).await;
    let a = Running::start(node(dir.path(), repo.clone(), "a").await);
    fail::cfg("recon.page.before_commit", "1*panic").unwrap();
    let s = a.recon().await;
    assert_eq!(s["state"], "SUCCESS", "{s:#}");
    assert_eq!(
        s["progress"]["source"]["existing"]["processed"], 50,
        "{s:#}"
    );
    assert_eq!(s["progress"]["target"]["created"], 50, "{s:#}");
    assert_eq!(repo.count_objects("user", None).await.unwrap(), 50);
    assert_eq!(repo.count_links(MAPPING).await.unwrap(), 50);
}

/// Where `external_project` sends the HR rows.
enum External {
    Csv,
    Postgres(String),
    /// The connector's configuration properties of a test slapd.
    Ldap(Value),
}

/// A project reconciling `rows` HR rows into a connected system (no correlation query, so a
/// re-run of a page finds its earlier creates only through the create intents), paged by 10.
fn external_project(dir: &Path, rows: usize, to: &External) {
    write_project(dir, rows, 1_000);
    let (connector, config, id_native) = match to {
        External::Csv => {
            std::fs::write(dir.join("data/out.csv"), "uid,mail\n").unwrap();
            (
                "org.forgerock.openicf.csvfile.CSVFileConnector",
                json!({"csvFile": "data/out.csv", "headerUid": "uid"}),
                "__NAME__",
            )
        }
        External::Postgres(url) => (
            "org.identityconnectors.databasetable.DatabaseTableConnector",
            json!({"url": url, "table": "out_accounts", "keyColumn": "uid"}),
            "__NAME__",
        ),
        // The id is the entryUUID the directory assigns; the DN names the entry.
        External::Ldap(props) => (
            "org.identityconnectors.ldap.LdapConnector",
            props.clone(),
            "uid",
        ),
    };
    std::fs::write(
        dir.join("conf/provisioner.openicf-out.json"),
        json!({
            "name": "out",
            "connectorRef": {"connectorName": connector},
            "configurationProperties": config,
            "objectTypes": {"account": {
                "nativeType": "__ACCOUNT__",
                "properties": object_type(to, id_native)
            }}
        })
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.join("conf/sync.json"),
        json!({"mappings": [{
            "name": MAPPING,
            "source": "system/hr/account",
            "target": "system/out/account",
            "reconSourceQueryPaging": true,
            "reconSourceQueryPageSize": 10,
            "properties": properties(to),
            "policies": [
                {"situation": "ABSENT", "action": "CREATE"},
                {"situation": "CONFIRMED", "action": "UPDATE"}
            ]
        }]})
        .to_string(),
    )
    .unwrap();
}

fn object_type(to: &External, id_native: &str) -> Value {
    let mut props = json!({
        "uid": {"type": "string", "nativeName": id_native},
        "mail": {"type": "string", "nativeName": "mail"}
    });
    if let External::Ldap(_) = to {
        props["dn"] = json!({"type": "string", "nativeName": "__NAME__"});
        props["cn"] = json!({"type": "string", "nativeName": "cn"});
        props["sn"] = json!({"type": "string", "nativeName": "sn"});
    }
    props
}

fn properties(to: &External) -> Value {
    match to {
        External::Ldap(_) => json!([
            {"source": "uid", "target": "dn", "transform": {"type": "text/javascript",
                "source": format!("'uid=' + source + ',{}'", slapd::PEOPLE)}},
            {"source": "uid", "target": "uid"},
            {"source": "uid", "target": "cn"},
            {"source": "uid", "target": "sn"},
            {"source": "mail", "target": "mail"}
        ]),
        _ => json!([
            {"source": "uid", "target": "uid"},
            {"source": "mail", "target": "mail"}
        ]),
    }
}

/// A page whose creates reached a connected system dies before its commit (its links and
/// audit never land): the page runs again on a node, finds the targets its earlier attempt
/// created and links them — no second object, no `AlreadyExists` failure, each counted once.
#[tokio::test(flavor = "multi_thread")]
async fn a_crash_after_external_creates_neither_duplicates_nor_fails_them() {
    let pg = support::PgDb::create("faults");
    support::psql(
        &pg.url,
        "CREATE TABLE out_accounts (uid TEXT PRIMARY KEY, mail TEXT)",
    );
    let ldap = slapd::Slapd::start();
    let ldap_props: Value = serde_json::from_str(&ldap.configuration_properties()).unwrap();
    for to in [
        External::Csv,
        External::Postgres(pg.url.clone()),
        External::Ldap(ldap_props),
    ] {
        let dir = tempfile::tempdir().unwrap();
        external_project(dir.path(), 30, &to);
        let repo = sqlite(dir.path()).await;
        let a = Running::start(node(dir.path(), repo.clone(), "a").await);
        // The second page's first attempt: its 10 creates are out, its commit never happens.
        fail::cfg("recon.page.before_commit", "1*off->1*panic").unwrap();
        let s = a.recon().await;
        fail::remove("recon.page.before_commit");
        assert_eq!(s["state"], "SUCCESS", "{s:#}");
        assert_eq!(s["statusSummary"]["FAILURE"], 0, "{s:#}");
        assert_eq!(s["situationSummary"]["ABSENT"], 30, "{s:#}");
        assert_eq!(s["progress"]["target"]["created"], 30, "{s:#}");
        assert_eq!(repo.count_links(MAPPING).await.unwrap(), 30);
        let out = a
            .engine
            .resources
            .object_set(&"system/out/account".parse().unwrap())
            .unwrap();
        let rows = out
            .query(&idsync_core::QueryRequest::all())
            .await
            .unwrap()
            .results;
        assert_eq!(rows.len(), 30, "one target per source: {rows:?}");
        drop(a);
    }
}

/// A source page that finds the repository (or its system) unreachable is not the end of the
/// run: the job runs again after a pause, and the run counts every object once. Only when the
/// error outlasts the attempts does the run end FAILED, saying why.
#[tokio::test(flavor = "multi_thread")]
async fn a_transient_error_is_retried_and_only_a_lasting_one_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    write_project(dir.path(), 50, 1_000);
    let repo = sqlite(dir.path()).await;
    let a = Running::start(node(dir.path(), repo.clone(), "a").await);

    fail::cfg("recon.source.unavailable", "2*return").unwrap();
    let s = a.recon().await;
    assert_eq!(s["state"], "SUCCESS", "{s:#}");
    assert_eq!(
        s["progress"]["source"]["existing"]["processed"], 50,
        "{s:#}"
    );
    assert_eq!(s["progress"]["target"]["created"], 50, "{s:#}");
    assert_eq!(repo.count_objects("user", None).await.unwrap(), 50);

    fail::cfg("recon.source.unavailable", "return").unwrap();
    let s = a.recon().await;
    fail::remove("recon.source.unavailable");
    assert_eq!(s["state"], "FAILED", "{s:#}");
    assert!(
        s["message"]
            .as_str()
            .is_some_and(|m| m.contains("unavailable")),
        "{s:#}"
    );
}

/// An object whose write finds its system unreachable (a target restarting) is not committed
/// as a FAILURE with the rest of its page: the page runs again, and the run ends with every
/// object written and no failure. Only an outage that outlasts the job's attempts is counted
/// as failures.
#[tokio::test(flavor = "multi_thread")]
async fn an_object_that_meets_an_unreachable_system_runs_again_not_as_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    write_project(dir.path(), 50, 1_000);
    let repo = sqlite(dir.path()).await;
    let a = Running::start(node(dir.path(), repo.clone(), "a").await);

    fail::cfg("recon.object.unavailable", "2*return").unwrap();
    let s = a.recon().await;
    fail::remove("recon.object.unavailable");
    assert_eq!(s["state"], "SUCCESS", "{s:#}");
    assert_eq!(s["statusSummary"]["FAILURE"], 0, "{s:#}");
    assert_eq!(
        s["progress"]["source"]["existing"]["processed"], 50,
        "{s:#}"
    );
    assert_eq!(s["progress"]["target"]["created"], 50, "{s:#}");
    assert_eq!(repo.count_objects("user", None).await.unwrap(), 50);

    // A system that stays unreachable: the job's last attempt commits the objects as failures
    // and the run ends, its failures counted (no run is failed by a down target).
    fail::cfg("recon.object.unavailable", "return").unwrap();
    let s = a.recon().await;
    fail::remove("recon.object.unavailable");
    assert_eq!(s["state"], "SUCCESS", "{s:#}");
    assert_eq!(s["statusSummary"]["FAILURE"], 50, "{s:#}");
}
