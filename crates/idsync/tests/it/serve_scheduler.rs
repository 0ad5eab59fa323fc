//! The scheduler of `idsync serve` (docs/configuration.md#confschedule-namejson): a cron schedule
//! reconciling getting-started's mapping on three nodes sharing one PostgreSQL database fires each
//! slot on exactly one node and starts exactly one run per started firing; `scheduler/job` CRUD,
//! trigger and errors; `config validate` reports a bad cron with its file and pointer.

use crate::server::{Server, assert_crest_error};
use crate::support::{PgDatabase, Project, idsync};
use chrono::{DateTime, SecondsFormat, TimeDelta, Timelike, Utc};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const MAPPING: &str = "HumanResources_Engineering";

fn recon_schedule(cron: &str, end: Option<DateTime<Utc>>) -> Value {
    let mut s = json!({
        "enabled": true,
        "type": "cron",
        "schedule": cron,
        "persisted": true,
        "concurrentExecution": false,
        "invokeService": "sync",
        "invokeContext": {"action": "reconcile", "mapping": MAPPING}
    });
    if let Some(e) = end {
        s["endTime"] = json!(e.to_rfc3339_opts(SecondsFormat::Secs, true));
    }
    s
}

fn millis(v: &Value) -> i64 {
    DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a date: {v}")))
        .unwrap()
        .timestamp_millis()
}

/// Polls `check` on `s` until it returns `Some`; the 2-minute bound only turns a hang into a
/// failure.
async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn three_nodes_fire_each_cron_slot_once_and_start_one_run_per_firing() {
    let p = Project::copy_of("samples/getting-started");
    // Every 2 s for about 10 s: the endTime makes the firings stop, so that the counts below
    // are final when they are compared.
    let end = (Utc::now() + TimeDelta::seconds(12))
        .with_nanosecond(0)
        .unwrap();
    p.write(
        "conf/schedule-reconcile.json",
        &recon_schedule("0/2 * * * * ?", Some(end)).to_string(),
    );
    let db = PgDatabase::create();
    let nodes: Vec<Server> = ["e2e-s1", "e2e-s2", "e2e-s3"]
        .iter()
        .map(|n| Server::start_with(p.path(), &[], &["--repo", &db.url, "--node-id", n]))
        .collect();

    // Wait past the end, until no firing is RUNNING and no run is ACTIVE.
    let a = &nodes[0];
    let firings: Vec<Value> = eventually("the last firing and its run", async || {
        if Utc::now() < end + TimeDelta::seconds(1) {
            return None;
        }
        let (status, page) = a
            .get("scheduler/job/reconcile/firings?_queryFilter=true")
            .await;
        assert_eq!(status, 200, "{page}");
        let rows = page["result"].as_array().unwrap().clone();
        let (_, runs) = a.get("recon").await;
        let busy = rows.iter().any(|f| f["status"] == "RUNNING")
            || runs["reconciliations"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["state"] == "ACTIVE");
        (!busy).then_some(rows)
    })
    .await;
    assert!(
        firings.len() >= 2,
        "a 2-s cron fired during ~10 s: {firings:#?}"
    );

    // Each firing is one cron slot (an even second), fired once, by one of the three nodes.
    let mut slots = BTreeSet::new();
    let mut by_node: BTreeMap<String, usize> = BTreeMap::new();
    for f in &firings {
        let t = f["fireTime"].as_i64().unwrap();
        assert_eq!(t % 2000, 0, "fire times are the cron's slots: {f}");
        assert!(t <= end.timestamp_millis(), "fired after endTime: {f}");
        assert_eq!(f["_id"], format!("reconcile@{t}"));
        assert!(slots.insert(t), "slot fired twice: {firings:#?}");
        let node = f["node"].as_str().unwrap().to_string();
        assert!(node.starts_with("e2e-s"), "{f}");
        *by_node.entry(node).or_default() += 1;
        assert!(
            f["status"] == "STARTED" || f["status"] == "SKIPPED",
            "unexpected outcome: {f}"
        );
    }

    // Every run was started by exactly one firing, and every started firing has its run.
    let (status, list) = nodes[2].get("recon").await;
    assert_eq!(status, 200, "{list}");
    let runs = list["reconciliations"].as_array().unwrap();
    let run_ids: BTreeSet<&str> = runs.iter().map(|r| r["_id"].as_str().unwrap()).collect();
    let started: Vec<&str> = firings
        .iter()
        .filter(|f| f["status"] == "STARTED")
        .map(|f| f["runId"].as_str().unwrap())
        .collect();
    assert_eq!(
        runs.len(),
        started.len(),
        "one run per started firing: runs {list:#} firings {firings:#?}"
    );
    assert_eq!(
        run_ids,
        started.iter().copied().collect::<BTreeSet<_>>(),
        "each firing's run id appears once"
    );
    for f in firings.iter().filter(|f| f["status"] == "SKIPPED") {
        let active = f["activeRunId"].as_str().unwrap();
        assert!(run_ids.contains(active), "{f}");
    }
    // No two runs started in the same 2-s slot.
    let mut run_slots = BTreeSet::new();
    for r in runs {
        assert_eq!(r["state"], "SUCCESS", "{r}");
        assert!(
            run_slots.insert(millis(&r["started"]).div_euclid(2000)),
            "two runs in one slot: {list:#}"
        );
    }
    // The schedule has ended: no next run.
    let (status, job) = nodes[1].get("scheduler/job/reconcile").await;
    assert_eq!(status, 200, "{job}");
    assert_eq!(job["nextRunDate"], Value::Null, "{job}");
    assert_eq!(job["origin"], "conf/schedule-reconcile.json");
    eprintln!("firings per node: {by_node:?}");
    drop(nodes);
    drop(db);
}

#[tokio::test(flavor = "multi_thread")]
async fn scheduler_job_crud_trigger_and_errors() {
    let p = Project::copy_of("samples/getting-started");
    // A file schedule that does not fire during the test (03:00 UTC daily).
    p.write(
        "conf/schedule-fromfile.json",
        &recon_schedule("0 0 3 * * ?", None).to_string(),
    );
    let s = Server::start(p.path());

    // Query: the file's schedule, with its next run.
    let (status, page) = s.get("scheduler/job?_queryFilter=true").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["resultCount"], 1, "{page}");
    let job = &page["result"][0];
    assert_eq!(job["_id"], "fromfile");
    assert_eq!(job["schedule"], "0 0 3 * * ?");
    assert!(
        job["nextRunDate"]
            .as_str()
            .unwrap()
            .ends_with("T03:00:00.000Z"),
        "{job}"
    );
    let (status, body) = s.get("scheduler/job").await;
    assert_crest_error(status, &body, 400, "_queryFilter");

    // Create with PUT: 201, stored, with a revision and the next run.
    let nightly = recon_schedule("0 30 1 * * ?", None);
    let (status, created) =
        crate::server::send(s.admin(Method::PUT, "scheduler/job/nightly").json(&nightly)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["_id"], "nightly");
    assert_eq!(created["_rev"], "1");
    assert_eq!(created["origin"], "repository");
    assert!(
        created["nextRunDate"]
            .as_str()
            .unwrap()
            .ends_with("T01:30:00.000Z"),
        "{created}"
    );
    let (status, read) = s.get("scheduler/job/nightly").await;
    assert_eq!(status, 200);
    assert_eq!(read, created);

    // Replace: 200 and a new revision; a stale If-Match is refused.
    let mut changed = nightly.clone();
    changed["schedule"] = json!("0 45 1 * * ?");
    let (status, updated) = crate::server::send(
        s.admin(Method::PUT, "scheduler/job/nightly")
            .header("If-Match", "\"1\"")
            .json(&changed),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["_rev"], "2");
    assert_eq!(updated["schedule"], "0 45 1 * * ?");
    let (status, body) = crate::server::send(
        s.admin(Method::PUT, "scheduler/job/nightly")
            .header("If-Match", "\"1\"")
            .json(&changed),
    )
    .await;
    assert_eq!(status, 412, "{body}");

    // A bad cron: 400 naming the key, for PUT and for _action=create; nothing stored.
    let mut bad = nightly.clone();
    bad["schedule"] = json!("0 61 * * * ?");
    let (status, body) =
        crate::server::send(s.admin(Method::PUT, "scheduler/job/broken").json(&bad)).await;
    assert_crest_error(status, &body, 400, "/schedule: ");
    assert!(body["message"].as_str().unwrap().contains("61"), "{body}");
    let (status, body) = s.post("scheduler/job?_action=create", Some(bad)).await;
    assert_crest_error(status, &body, 400, "/schedule");
    let (status, _) = s.get("scheduler/job/broken").await;
    assert_eq!(status, 404);
    // An unknown mapping and a wrong type are 400s too.
    let mut unknown = nightly.clone();
    unknown["invokeContext"]["mapping"] = json!("nope");
    let (status, body) = s.post("scheduler/job?_action=create", Some(unknown)).await;
    assert_crest_error(status, &body, 400, "nope");
    let (status, body) = s
        .post(
            "scheduler/job?_action=create",
            Some(
                json!({"schedule": "0 0 * * * ?", "enabled": "yes", "invokeService": "sync",
                         "invokeContext": {"action": "reconcile", "mapping": MAPPING}}),
            ),
        )
        .await;
    assert_crest_error(status, &body, 400, "/enabled");

    // _action=create with a generated id.
    let (status, made) = s
        .post("scheduler/job?_action=create", Some(nightly.clone()))
        .await;
    assert_eq!(status, 201, "{made}");
    let made_id = made["_id"].as_str().unwrap().to_string();
    assert!(!made_id.is_empty());

    // Queries over all three; ids only; a filter.
    let (_, ids) = s.get("scheduler/job?_queryId=query-all-ids").await;
    let mut got: Vec<&str> = ids["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["_id"].as_str().unwrap())
        .collect();
    got.sort_unstable();
    let mut want = vec!["fromfile", "nightly", made_id.as_str()];
    want.sort_unstable();
    assert_eq!(got, want, "{ids}");
    let (_, filtered) = s
        .get("scheduler/job?_queryFilter=schedule%20eq%20%220%2045%201%20*%20*%20%3F%22")
        .await;
    assert_eq!(filtered["resultCount"], 1, "{filtered}");
    assert_eq!(filtered["result"][0]["_id"], "nightly");

    // Trigger: fires now, once, and starts a run.
    let (status, fired) = s.post("scheduler/job/nightly?_action=trigger", None).await;
    assert_eq!(status, 200, "{fired}");
    assert_eq!(fired["success"], true, "{fired}");
    assert_eq!(fired["status"], "STARTED", "{fired}");
    let run = fired["runId"].as_str().unwrap().to_string();
    assert_eq!(s.wait_run(&run).await["state"], "SUCCESS");
    let (status, hist) = s
        .get("scheduler/job/nightly/firings?_queryFilter=true")
        .await;
    assert_eq!(status, 200, "{hist}");
    assert_eq!(hist["resultCount"], 1, "{hist}");
    assert_eq!(hist["result"][0]["runId"], run.as_str());
    assert_eq!(hist["result"][0]["manual"], true);
    // A file schedule can be triggered too.
    let (status, fired) = s.post("scheduler/job/fromfile?_action=trigger", None).await;
    assert_eq!(status, 200, "{fired}");
    let run = fired["runId"].as_str().unwrap().to_string();
    assert_eq!(s.wait_run(&run).await["state"], "SUCCESS");

    // ... but not changed or deleted over REST.
    let (status, body) = crate::server::send(
        s.admin(Method::PUT, "scheduler/job/fromfile")
            .json(&nightly),
    )
    .await;
    assert_crest_error(status, &body, 409, "conf/schedule-fromfile.json");
    let (status, body) = send_delete(&s, "scheduler/job/fromfile").await;
    assert_crest_error(status, &body, 409, "read-only");

    // Unknown ids are 404s; unknown actions 400s.
    let (status, body) = s.get("scheduler/job/nope").await;
    assert_crest_error(status, &body, 404, "nope");
    let (status, body) = s.post("scheduler/job/nope?_action=trigger", None).await;
    assert_crest_error(status, &body, 404, "nope");
    let (status, body) = s.post("scheduler/job/nightly?_action=pause", None).await;
    assert_crest_error(status, &body, 400, "pause");

    // IDM's cron check.
    let (status, ok) = s
        .post(
            "scheduler?_action=validateQuartzCronExpression",
            Some(json!({"cronExpression": "0 0/5 14,18 * * ?"})),
        )
        .await;
    assert_eq!((status, &ok["valid"]), (200, &json!(true)), "{ok}");
    let (_, bad) = s
        .post(
            "scheduler?_action=validateQuartzCronExpression",
            Some(json!({"cronExpression": "0 0 25 * * ?"})),
        )
        .await;
    assert_eq!(bad["valid"], false, "{bad}");

    // Delete: the schedule and its firings go.
    let (status, gone) = send_delete(&s, "scheduler/job/nightly").await;
    assert_eq!(status, 200, "{gone}");
    assert_eq!(gone["_id"], "nightly");
    let (status, _) = s.get("scheduler/job/nightly").await;
    assert_eq!(status, 404);
    let (status, _) = send_delete(&s, "scheduler/job/nightly").await;
    assert_eq!(status, 404);
}

async fn send_delete(s: &Server, path: &str) -> (u16, Value) {
    crate::server::send(s.admin(Method::DELETE, path)).await
}

#[test]
fn config_validate_reports_a_bad_cron_with_its_pointer() {
    let p = Project::copy_of("samples/getting-started");
    p.write(
        "conf/schedule-bad.json",
        &recon_schedule("0 61 * * * ?", None).to_string(),
    );
    let validate = |p: &Project| {
        idsync()
            .args(["config", "validate", "--project"])
            .arg(p.path())
            .output()
            .unwrap()
    };
    let out = validate(&p);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.lines().any(
            |l| l.starts_with("conf/schedule-bad.json: /schedule: invalid minute field \"61\"")
        ),
        "{stderr}"
    );

    // With another error in the project, both are reported at once.
    let mut other = recon_schedule("0 0 3 * * ?", None);
    other["invokeContext"]["mapping"] = json!("nope");
    p.write("conf/schedule-other.json", &other.to_string());
    let out = validate(&p);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("conf/schedule-bad.json: /schedule: ")),
        "{stderr}"
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("conf/schedule-other.json: /invokeContext/mapping: ")),
        "{stderr}"
    );

    // The commands that load the project refuse it the same way.
    std::fs::remove_file(p.file("conf/schedule-other.json")).unwrap();
    let out = p.recon(MAPPING, &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("conf/schedule-bad.json: /schedule: "),
        "{stderr}"
    );
}
