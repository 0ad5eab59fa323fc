//! The hook order of a first-time CREATE (docs/configuration.md#mappings): properties → onCreate → target
//! create → onLink → link → postAction. A hook that throws stops the operation at its place, so
//! what was written before it shows where it runs.

use crate::support::{Project, csv_rows};
use serde_json::{Value, json};

const MAPPING: &str = "HumanResources_Engineering";

fn with_hook(p: &Project, key: &str, script: &str) {
    let mut sync: Value = serde_json::from_str(&p.read("conf/sync.json")).unwrap();
    let m = &mut sync["mappings"][0];
    let hook = json!({"type": "text/javascript", "source": script});
    if key == "postAction" {
        for pol in m["policies"].as_array_mut().unwrap() {
            if pol["situation"] == "ABSENT" {
                pol["postAction"] = hook.clone();
            }
        }
    } else {
        m[key] = hook;
    }
    p.write(
        "conf/sync.json",
        &serde_json::to_string_pretty(&sync).unwrap(),
    );
}

fn without_hooks(p: &Project) {
    let fresh = Project::copy_of("samples/getting-started");
    p.write("conf/sync.json", &fresh.read("conf/sync.json"));
}

fn jane_in_target(p: &Project) -> bool {
    csv_rows(&p.read("data/engineering.csv"))
        .iter()
        .any(|r| r["name"] == "jsanchez@example.com")
}

/// Runs once with the throwing hook, then once without, and returns (first, second) summaries.
fn run_with_throwing(key: &str) -> (Project, Value, Value) {
    let p = Project::copy_of("samples/getting-started");
    with_hook(
        &p,
        key,
        "if (source.email === 'jsanchez@example.com') { throw new Error('stop here'); } null;",
    );
    let (_, first) = p.recon_json(MAPPING, &[]);
    without_hooks(&p);
    let (code, second) = p.recon_json(MAPPING, &[]);
    assert_eq!(code, 0, "{second:#}");
    (p, first, second)
}

#[test]
fn on_create_runs_before_the_target_is_created() {
    let (p, first, second) = run_with_throwing("onCreate");
    assert_eq!(first["statusSummary"]["FAILURE"], 1, "{first:#}");
    assert!(jane_in_target(&p), "the second run created her");
    assert_eq!(
        second["situationSummary"]["ABSENT"], 1,
        "nothing was written the first time: {second:#}"
    );
}

#[test]
fn on_link_runs_after_the_target_is_created_and_before_the_link() {
    let p = Project::copy_of("samples/getting-started");
    with_hook(
        &p,
        "onLink",
        "if (source.email === 'jsanchez@example.com') { throw new Error('stop here'); } null;",
    );
    let (_, first) = p.recon_json(MAPPING, &[]);
    assert_eq!(first["statusSummary"]["FAILURE"], 1, "{first:#}");
    assert!(
        jane_in_target(&p),
        "the target was created before onLink ran"
    );
    without_hooks(&p);
    let (_, second) = p.recon_json(MAPPING, &[]);
    assert_eq!(
        second["situationSummary"]["FOUND"], 1,
        "no link was made: she is correlated: {second:#}"
    );
    assert_eq!(second["situationSummary"]["CONFIRMED"], 2, "{second:#}");
}

#[test]
fn post_action_runs_after_the_link() {
    let (p, first, second) = run_with_throwing("postAction");
    assert_eq!(first["statusSummary"]["FAILURE"], 1, "{first:#}");
    assert!(jane_in_target(&p));
    assert_eq!(
        second["situationSummary"]["CONFIRMED"], 3,
        "the link was made before postAction: {second:#}"
    );
}
