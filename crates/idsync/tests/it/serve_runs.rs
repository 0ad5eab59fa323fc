//! Runs over REST against the real binary (docs/rest.md#reconciliation): one active run per mapping
//! (a second start answers 409 in the CREST shape, naming the active run), cancel of a running
//! reconciliation (`INITIATED`, then `CANCELED` / `COMPLETED_CANCELED` with its counts), and the
//! mapping's slot free again afterwards — on SQLite, and across two nodes sharing PostgreSQL.
//!
//! The source is 300,000 generated people so that no run can finish before the cancel lands
//! (the test accepts only CANCELED, never SUCCESS); no step depends on timing.

use crate::server::{Server, assert_crest_error};
use crate::support::{PgDatabase, Project, idsync};
use serde_json::Value;

const ROWS: u64 = 300_000;
const MAPPING: &str = "systemHrAccounts_managedUser";

fn big_project() -> Project {
    let p = Project::copy_of("samples/hr-to-managed");
    let out = idsync()
        .args(["generate", "hr", "--rows", &ROWS.to_string(), "--out"])
        .arg(p.file("data/hr.csv"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "idsync generate hr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    p
}

/// Starts a run on `a` (no wait), checks that `b` (the same node or another one) refuses a
/// second run of the mapping with 409, cancels it through `b` and waits for the end on `a`.
async fn start_refuse_cancel(a: &Server, b: &Server) {
    let start = format!("recon?_action=recon&mapping={MAPPING}");
    let (status, started) = a.post(&start, None).await;
    assert_eq!(status, 200, "{started}");
    assert_eq!(started["state"], "ACTIVE", "{started}");
    let id = started["_id"].as_str().unwrap().to_string();

    // While it is active, a second start of the same mapping is a conflict naming the run.
    let (status, err) = b.post(&start, None).await;
    assert_crest_error(status, &err, 409, &id);
    assert_eq!(err["reason"], "Conflict", "{err}");
    assert_eq!(err["detail"]["_id"], id.as_str(), "{err}");
    // ... also with waitForCompletion (it must not wait for the other run).
    let (status, err) = b
        .post(&format!("{start}&waitForCompletion=true"), None)
        .await;
    assert_crest_error(status, &err, 409, &id);

    let (status, listed) = b.get(&format!("recon/{id}")).await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["state"], "ACTIVE", "{listed}");

    let (status, ack) = b.post(&format!("recon/{id}?_action=cancel"), None).await;
    assert_eq!(status, 200, "{ack}");
    assert_eq!(ack["_id"], id.as_str(), "{ack}");
    assert_eq!(ack["action"], "cancel", "{ack}");
    assert_eq!(ack["status"], "INITIATED", "{ack}");

    let summary = a.wait_run(&id).await;
    assert_canceled(&summary, &id);
    // Every node tells the same story.
    let (_, other) = b.get(&format!("recon/{id}")).await;
    assert_eq!(other["state"], "CANCELED", "{other}");

    // The slot is free again: a new run starts (and is canceled at once).
    let (status, again) = b.post(&start, None).await;
    assert_eq!(
        status, 200,
        "a run after a canceled one must start: {again}"
    );
    let again_id = again["_id"].as_str().unwrap().to_string();
    assert_ne!(again_id, id);
    let (status, _) = a
        .post(&format!("recon/{again_id}?_action=cancel"), None)
        .await;
    assert_eq!(status, 200);
    let summary = b.wait_run(&again_id).await;
    assert_canceled(&summary, &again_id);

    let (status, list) = a.get("recon").await;
    assert_eq!(status, 200, "{list}");
    let states: Vec<&Value> = list["reconciliations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["state"])
        .collect();
    assert_eq!(states.len(), 2, "{list:#}");
    assert!(states.iter().all(|s| *s == "CANCELED"), "{list:#}");
}

fn assert_canceled(summary: &Value, id: &str) {
    assert_eq!(summary["_id"], id, "{summary:#}");
    assert_eq!(summary["state"], "CANCELED", "{summary:#}");
    assert_eq!(summary["stage"], "COMPLETED_CANCELED", "{summary:#}");
    assert_eq!(
        summary["stageDescription"], "reconciliation aborted.",
        "{summary:#}"
    );
    assert!(summary["ended"].is_string(), "{summary:#}");
    // A canceled run keeps its counts, and did not get through the whole source.
    let processed = summary["progress"]["source"]["existing"]["processed"]
        .as_u64()
        .unwrap_or_else(|| panic!("no processed count: {summary:#}"));
    assert!(processed < ROWS, "{summary:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn second_run_is_refused_and_cancel_ends_the_run() {
    let p = big_project();
    let s = Server::start(p.path());
    start_refuse_cancel(&s, &s).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_nodes_on_postgres_share_the_run_slot_and_cancel() {
    let p = big_project();
    let db = PgDatabase::create();
    let a = Server::start_with(p.path(), &[], &["--repo", &db.url, "--node-id", "e2e-a"]);
    let b = Server::start_with(p.path(), &[], &["--repo", &db.url, "--node-id", "e2e-b"]);
    start_refuse_cancel(&a, &b).await;
    // Both nodes are listed by the cluster endpoint.
    let (status, cluster) = b.get("cluster").await;
    assert_eq!(status, 200, "{cluster}");
    let nodes: Vec<&str> = cluster["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["instanceId"].as_str().unwrap())
        .collect();
    assert!(
        nodes.contains(&"e2e-a") && nodes.contains(&"e2e-b"),
        "{cluster}"
    );
    drop((a, b));
}
