//! The README's main job: the getting-started sample, twice.

use crate::support::{Project, csv_rows};

const MAPPING: &str = "HumanResources_Engineering";

#[test]
fn first_run_updates_two_found_and_creates_the_absent_one_then_all_confirmed() {
    let p = Project::copy_of("samples/getting-started");

    let (code, s) = p.recon_json(MAPPING, &[]);
    assert_eq!(code, 0, "summary: {s:#}");
    assert_eq!(s["state"], "SUCCESS");
    assert_eq!(s["stage"], "COMPLETED_SUCCESS");
    assert_eq!(s["situationSummary"]["FOUND"], 2, "{s:#}");
    assert_eq!(s["situationSummary"]["ABSENT"], 1, "{s:#}");
    assert_eq!(s["statusSummary"]["SUCCESS"], 3);
    assert_eq!(s["statusSummary"]["FAILURE"], 0);
    assert_eq!(s["progress"]["source"]["existing"]["total"], "3");
    assert_eq!(s["progress"]["target"]["created"], 1);
    assert_eq!(s["progress"]["target"]["updated"], 2);
    assert_eq!(s["progress"]["links"]["created"], 3);

    let rows = csv_rows(&p.read("data/engineering.csv"));
    assert_eq!(rows.len(), 3, "{rows:?}");
    let scarter = rows
        .iter()
        .find(|r| r["name"] == "scarter@example.com")
        .unwrap();
    assert_eq!(scarter["lastname"], "Carter", "the typo is fixed");
    assert_eq!(scarter["telephoneNumber"], "N/A", "the default is applied");
    let jane = rows
        .iter()
        .find(|r| r["name"] == "jsanchez@example.com")
        .unwrap();
    assert_eq!(jane["firstname"], "Jane");
    assert_eq!(jane["roles"], "openidm-authorized");
    assert_eq!(
        scarter["roles"], "openidm-admin,openidm-authorized",
        "the transform ran"
    );

    let before = p.read("data/engineering.csv");
    let (code, s) = p.recon_json(MAPPING, &[]);
    assert_eq!(code, 0);
    assert_eq!(s["situationSummary"]["CONFIRMED"], 3, "{s:#}");
    assert_eq!(s["progress"]["target"]["unchanged"], 3, "{s:#}");
    assert_eq!(s["progress"]["target"]["updated"], 0);
    assert_eq!(s["progress"]["target"]["created"], 0);
    assert_eq!(
        p.read("data/engineering.csv"),
        before,
        "a no-change run writes nothing"
    );
}

#[test]
fn without_json_a_table_goes_to_stdout() {
    let p = Project::copy_of("samples/getting-started");
    let out = p.recon(MAPPING, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("SUCCESS"), "{stdout}");
    assert!(stdout.contains("ABSENT"), "{stdout}");
    assert!(stdout.contains("FOUND"), "{stdout}");
}

#[test]
fn an_unknown_mapping_is_a_usage_error() {
    let p = Project::copy_of("samples/getting-started");
    let out = p.recon("NoSuchMapping", &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("NoSuchMapping"), "{stderr}");
}

#[test]
fn recon_by_id_reconciles_one_source_object_without_a_target_phase() {
    let p = Project::copy_of("samples/getting-started");
    let (code, s) = p.recon_json(MAPPING, &["--id", "SCARTER"]);
    assert_eq!(code, 0, "{s:#}");
    assert_eq!(s["situationSummary"]["FOUND"], 1, "{s:#}");
    assert_eq!(s["progress"]["source"]["existing"]["processed"], 1);
    assert_eq!(s["parameters"]["sourceIds"][0], "SCARTER");
    let rows = csv_rows(&p.read("data/engineering.csv"));
    assert_eq!(rows.len(), 2, "only SCARTER was touched");
    let scarter = rows
        .iter()
        .find(|r| r["name"] == "scarter@example.com")
        .unwrap();
    assert_eq!(scarter["lastname"], "Carter");
}

/// The README's command, literally: the sample runs in its working copy, the checkout's files
/// never change, and every run from the second on prints the same all-CONFIRMED summary.
#[test]
fn issue_26_the_sample_runs_in_a_working_copy_and_leaves_its_files_alone() {
    let p = Project::sample_copy_of("samples/getting-started");
    let pristine = p.read("data/engineering.csv");

    let out = p.recon(MAPPING, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(".idsync/work"),
        "says where it runs: {stderr}"
    );
    let first = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        first.contains("FOUND") && first.contains("ABSENT"),
        "{first}"
    );
    assert_eq!(
        p.read("data/engineering.csv"),
        pristine,
        "the sample is not rewritten"
    );
    let rows = csv_rows(&p.read(".idsync/work/data/engineering.csv"));
    assert_eq!(rows.len(), 3, "the working copy is reconciled: {rows:?}");

    let (code, second) = p.recon_json(MAPPING, &[]);
    assert_eq!(code, 0, "{second:#}");
    assert_eq!(second["situationSummary"]["CONFIRMED"], 3, "{second:#}");
    let (_, third) = p.recon_json(MAPPING, &[]);
    assert_eq!(third["situationSummary"], second["situationSummary"]);
    assert_eq!(third["statusSummary"], second["statusSummary"]);
    assert_eq!(p.read("data/engineering.csv"), pristine);

    // An edit of the sample reaches the next run; what the runs wrote is kept.
    let hr = p.read("data/hr.csv").replace("Carter", "Karter");
    p.write("data/hr.csv", &hr);
    // A user's edit comes seconds after the copy; file times are coarser than a test's pace.
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    let f = std::fs::File::options()
        .write(true)
        .open(p.file("data/hr.csv"))
        .unwrap();
    f.set_modified(later).unwrap();
    let (code, s) = p.recon_json(MAPPING, &[]);
    assert_eq!(code, 0, "{s:#}");
    assert_eq!(s["situationSummary"]["CONFIRMED"], 3, "{s:#}");
    assert_eq!(
        s["progress"]["target"]["updated"], 1,
        "the edited person is updated: {s:#}"
    );
}
