//! CSV → `managed/user` through the binary: IDM's sample1 flow (ABSENT, then CONFIRMED plus the
//! new ABSENT), a dry run that writes nothing, and cancel with Ctrl-C mid-run.

use crate::support::{Project, idsync};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

const MAPPING: &str = "systemHrAccounts_managedUser";

fn generate(p: &Project, rows: u64, start: u64, out: &str) {
    let status = idsync()
        .args([
            "generate",
            "hr",
            "--rows",
            &rows.to_string(),
            "--start",
            &start.to_string(),
            "--out",
        ])
        .arg(p.file(out))
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn first_load_creates_then_second_run_confirms_and_adds_the_new_one() {
    let p = Project::copy_of("samples/hr-to-managed");
    let (code, s) = p.recon_json(MAPPING, &[]);
    assert_eq!(code, 0, "{s:#}");
    assert_eq!(s["situationSummary"]["ABSENT"], 10, "{s:#}");
    assert_eq!(s["progress"]["target"]["created"], 10);
    assert_eq!(s["progress"]["links"]["created"], 10);
    assert_eq!(s["sourceProcessedByNode"].as_object().unwrap().len(), 1);

    // One more person in the export.
    generate(&p, 11, 0, "data/hr.csv");
    let (code, s) = p.recon_json(MAPPING, &[]);
    assert_eq!(code, 0, "{s:#}");
    assert_eq!(s["situationSummary"]["CONFIRMED"], 10, "{s:#}");
    assert_eq!(s["situationSummary"]["ABSENT"], 1, "{s:#}");
    assert_eq!(s["progress"]["target"]["unchanged"], 10);
    assert_eq!(s["progress"]["target"]["existing"]["total"], "10");
    assert_eq!(s["progress"]["links"]["existing"]["total"], "10");
}

#[test]
fn a_dry_run_writes_nothing_and_reports_what_it_would_do() {
    let p = Project::copy_of("samples/getting-started");
    let before = p.read("data/engineering.csv");
    let (code, s) = p.recon_json("HumanResources_Engineering", &["--analyze"]);
    assert_eq!(code, 0, "{s:#}");
    assert_eq!(s["analyze"], true);
    assert_eq!(s["actionSummary"]["UPDATE"], 2, "{s:#}");
    assert_eq!(s["actionSummary"]["CREATE"], 1, "{s:#}");
    assert_eq!(
        p.read("data/engineering.csv"),
        before,
        "a dry run writes nothing"
    );
    // Nothing was linked either: the real run sees the same situations.
    let (code, s) = p.recon_json("HumanResources_Engineering", &[]);
    assert_eq!(code, 0);
    assert_eq!(s["situationSummary"]["FOUND"], 2, "{s:#}");
    assert_eq!(s["situationSummary"]["ABSENT"], 1, "{s:#}");
}

#[test]
fn a_guarded_run_stops_at_its_limit_and_fails() {
    let p = Project::copy_of("samples/getting-started");
    let (code, _) = p.recon_json("HumanResources_Engineering", &[]);
    assert_eq!(code, 0);
    // Allow one delete, then make the HR export lose two people.
    let sync = p.read("conf/sync.json").replacen(
        "\"policies\"",
        "\"safety\": {\"maxDeletes\": 1},\n            \"policies\"",
        1,
    );
    p.write("conf/sync.json", &sync);
    let hr: String = p
        .read("data/hr.csv")
        .lines()
        .filter(|l| !l.contains("BJENSEN") && !l.contains("SCARTER"))
        .map(|l| format!("{l}\n"))
        .collect();
    p.write("data/hr.csv", &hr);
    let (code, s) = p.recon_json("HumanResources_Engineering", &[]);
    assert_eq!(code, 1, "{s:#}");
    assert_eq!(s["state"], "FAILED");
    assert_eq!(s["stage"], "COMPLETED_FAILED");
    let msg = s["message"].as_str().unwrap_or_default();
    assert!(msg.contains("maxDeletes"), "{msg}");
    assert_eq!(
        s["progress"]["target"]["deleted"], 1,
        "exactly the limit executes: {s:#}"
    );
    let rows = crate::support::csv_rows(&p.read("data/engineering.csv"));
    assert_eq!(rows.len(), 2, "one of the two deletes ran: {rows:?}");
}

#[test]
fn ctrl_c_cancels_a_run_mid_way_and_it_ends_canceled_with_its_counts() {
    let p = Project::copy_of("samples/hr-to-managed");
    generate(&p, 200_000, 0, "data/hr.csv");
    let sync = p.read("conf/sync.json").replace(
        "\"reconSourceQueryPageSize\": 10000",
        "\"reconSourceQueryPageSize\": 1000",
    );
    p.write("conf/sync.json", &sync);
    let mut child = idsync()
        .args(["-v", "recon", "--json", "--project"])
        .arg(p.path())
        .args(["--mapping", MAPPING])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the first committed page, then press Ctrl-C.
    let stderr = child.stderr.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut lines = BufReader::new(stderr).lines();
    loop {
        assert!(Instant::now() < deadline, "no page was committed in time");
        let line = lines
            .next()
            .expect("stderr closed before a page committed")
            .unwrap();
        if line.contains("page committed") {
            break;
        }
    }
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    std::thread::spawn(move || for _ in lines {});
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "a canceled run exits 1");
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["state"], "CANCELED", "{s:#}");
    assert_eq!(s["stage"], "COMPLETED_CANCELED");
    assert_eq!(s["stageDescription"], "reconciliation aborted.");
    let processed = s["progress"]["source"]["existing"]["processed"]
        .as_i64()
        .unwrap();
    assert!((1000..200_000).contains(&processed), "{processed}");
    assert_eq!(
        s["progress"]["target"]["created"].as_i64().unwrap(),
        processed,
        "{s:#}"
    );
}

#[test]
fn the_same_runs_on_a_postgresql_repository() {
    let db = crate::support::PgDatabase::create();
    let p = Project::copy_of("samples/hr-to-managed");
    let (code, s) = p.recon_json(MAPPING, &["--repo", &db.url]);
    assert_eq!(code, 0, "{s:#}");
    assert_eq!(s["situationSummary"]["ABSENT"], 10, "{s:#}");
    generate(&p, 11, 0, "data/hr.csv");
    let (code, s) = p.recon_json(MAPPING, &["--repo", &db.url]);
    assert_eq!(code, 0, "{s:#}");
    assert_eq!(s["situationSummary"]["CONFIRMED"], 10, "{s:#}");
    assert_eq!(s["situationSummary"]["ABSENT"], 1, "{s:#}");
}

#[test]
fn a_second_run_of_an_active_mapping_is_refused() {
    let p = Project::copy_of("samples/hr-to-managed");
    generate(&p, 30_000, 0, "data/hr.csv");
    let mut first = idsync()
        .args(["-v", "recon", "--json", "--node-id", "node-a", "--project"])
        .arg(p.path())
        .args(["--mapping", MAPPING])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(first.stderr.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(Instant::now() < deadline, "the first run never started");
        let line = lines.next().expect("first run ended early").unwrap();
        if line.contains("reconciliation started") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let second = p.recon(MAPPING, &["--node-id", "node-b"]);
    let first = first.wait_with_output().unwrap();
    assert_eq!(
        second.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains("already has an active reconciliation"),
        "{err}"
    );
    assert_eq!(
        first.status.code(),
        Some(0),
        "the first run is not disturbed"
    );
}

/// Rewrites `data/hr.csv`: `edit` gets its lines split into fields (line 0 is the header).
fn edit_hr(p: &Project, edit: impl FnOnce(&mut [Vec<String>])) {
    let mut rows: Vec<Vec<String>> = p
        .read("data/hr.csv")
        .lines()
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    edit(&mut rows);
    let text: String = rows.iter().map(|r| r.join(",") + "\n").collect();
    p.write("data/hr.csv", &text);
}

/// A page's correlations run as batched queries when the target is managed; the situations must
/// be exactly those of one correlation query per source (an id-only source query takes that
/// path): a case-insensitive match is FOUND, two managed users with the source's userName are
/// AMBIGUOUS, a new person is ABSENT.
fn batched_correlation_matches_per_source(pg: bool) {
    let mut summaries = Vec::new();
    for id_only in [false, true] {
        // Each variant on its own repository (SQLite: the project's own file).
        let db = pg.then(crate::support::PgDatabase::create);
        let repo_args: Vec<&str> = db.as_ref().map_or(vec![], |d| vec!["--repo", &d.url]);
        let p = Project::copy_of("samples/hr-to-managed");
        // Rows 3 and 4 share a userName: the first load creates two managed users with it.
        let mut name3 = String::new();
        edit_hr(&p, |rows| {
            name3 = rows[4][1].clone();
            rows[5][1] = name3.clone();
        });
        let (code, s) = p.recon_json(MAPPING, &repo_args);
        assert_eq!(code, 0, "{s:#}");
        assert_eq!(s["situationSummary"]["ABSENT"], 10, "{s:#}");

        // A second mapping of the same source and target has no links yet: every source
        // correlates. Row 2's userName changes case; one new person joins.
        let mut sync: serde_json::Value = serde_json::from_str(&p.read("conf/sync.json")).unwrap();
        let mut again = sync["mappings"][0].clone();
        again["name"] = "hrAgain_managedUser".into();
        if id_only {
            again["sourceQuery"] = serde_json::json!({"_queryId": "query-all-ids"});
        }
        sync["mappings"].as_array_mut().unwrap().push(again);
        p.write(
            "conf/sync.json",
            &serde_json::to_string_pretty(&sync).unwrap(),
        );
        generate(&p, 11, 0, "data/hr.csv");
        edit_hr(&p, |rows| {
            rows[3][1] = rows[3][1].to_uppercase();
            rows[5][1] = name3.clone();
        });
        let (code, s) = p.recon_json("hrAgain_managedUser", &repo_args);
        assert_eq!(code, 0, "{s:#}");
        assert_eq!(
            s["situationSummary"]["FOUND"], 8,
            "id-only {id_only}: {s:#}"
        );
        assert_eq!(
            s["situationSummary"]["AMBIGUOUS"], 2,
            "id-only {id_only}: {s:#}"
        );
        assert_eq!(
            s["situationSummary"]["ABSENT"], 1,
            "id-only {id_only}: {s:#}"
        );
        assert_eq!(
            s["progress"]["links"]["created"], 9,
            "id-only {id_only}: {s:#}"
        );
        summaries.push(s["situationSummary"].clone());

        // Row 0 comes back under a new id: it correlates to the user that row 0's old link
        // holds, which is FOUND_ALREADY_LINKED.
        edit_hr(&p, |rows| rows[1][0] = "z00000000".into());
        let (code, s) = p.recon_json("hrAgain_managedUser", &repo_args);
        assert_eq!(code, 0, "{s:#}");
        assert_eq!(
            s["situationSummary"]["FOUND_ALREADY_LINKED"], 1,
            "id-only {id_only}: {s:#}"
        );
        summaries.push(s["situationSummary"].clone());
    }
    assert_eq!(summaries[0], summaries[2]);
    assert_eq!(summaries[1], summaries[3]);
}

#[test]
fn a_page_correlates_in_batches_with_the_answers_of_one_query_per_source() {
    batched_correlation_matches_per_source(false);
}

#[test]
fn a_page_correlates_in_batches_on_postgresql_too() {
    batched_correlation_matches_per_source(true);
}

/// A `correlationScript` (candidates, not a query) is evaluated while the page prepares its
/// batched correlation and its answer is used as is.
#[test]
fn a_correlation_script_finds_its_candidates_on_a_managed_target() {
    let p = Project::copy_of("samples/hr-to-managed");
    let (code, s) = p.recon_json(MAPPING, &[]);
    assert_eq!(code, 0, "{s:#}");
    let mut sync: serde_json::Value = serde_json::from_str(&p.read("conf/sync.json")).unwrap();
    let mut again = sync["mappings"][0].clone();
    again["name"] = "hrAgain_managedUser".into();
    again.as_object_mut().unwrap().remove("correlationQuery");
    again["correlationScript"] = serde_json::json!({
        "type": "text/javascript",
        "source": "source._id == 'u00000010' ? [] : [{'_id': source._id}]"
    });
    sync["mappings"].as_array_mut().unwrap().push(again);
    p.write(
        "conf/sync.json",
        &serde_json::to_string_pretty(&sync).unwrap(),
    );
    generate(&p, 11, 0, "data/hr.csv");
    let (code, s) = p.recon_json("hrAgain_managedUser", &[]);
    assert_eq!(code, 0, "{s:#}");
    assert_eq!(s["situationSummary"]["FOUND"], 10, "{s:#}");
    assert_eq!(s["situationSummary"]["ABSENT"], 1, "{s:#}");
    assert_eq!(s["progress"]["links"]["created"], 11, "{s:#}");
}

/// `idsync recon` on a host where `idsync serve` runs with the same node id (the default host
/// name, or the same IDSYNC_NODE_ID) must leave the server's in-flight job alone: not released
/// to PENDING, not claimed, its lease and token untouched.
#[test]
fn a_cli_run_leaves_a_server_with_the_same_node_id_its_jobs() {
    let p = Project::copy_of("samples/hr-to-managed");
    let (code, _) = p.recon_json(MAPPING, &["--node-id", "srv"]);
    assert_eq!(code, 0);
    let url = format!("sqlite://{}", p.file(".idsync/repo.db").display());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let claimed = rt.block_on(async {
        let repo = idsync_repo::open(&url).await.unwrap();
        repo.enqueue_job(&idsync_repo::Job::new(
            "server-job",
            "recon.source",
            None,
            serde_json::json!({}),
        ))
        .await
        .unwrap();
        repo.claim_next(&["recon.source"], "srv", Duration::from_secs(3600))
            .await
            .unwrap()
            .unwrap()
    });
    let (code, s) = p.recon_json(MAPPING, &["--node-id", "srv"]);
    assert_eq!(code, 0, "{s:#}");
    let job = rt.block_on(async {
        let repo = idsync_repo::open(&url).await.unwrap();
        repo.get_job("server-job").await.unwrap().unwrap()
    });
    assert_eq!(job.state, idsync_repo::JobState::Claimed, "{job:?}");
    assert_eq!(job.owner_node.as_deref(), Some("srv"));
    assert_eq!(job.token, claimed.token);
    let by_node = s["sourceProcessedByNode"].as_object().unwrap();
    assert!(
        by_node.keys().all(|k| k.starts_with("srv/cli-")),
        "the CLI's own node id: {s:#}"
    );
}
