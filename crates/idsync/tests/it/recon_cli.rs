//! `idsync recon list|show|cancel` against a real `idsync serve` (docs/cli.md): a finished run
//! listed and shown as `idsync recon` prints it, `--json` as the server answers, a running run
//! canceled from the CLI, and clear failures (unknown id, no token, no server, a missing
//! `--mapping` for an in-process run).
//!
//! The run to cancel checks each source object for 200 ms (`validSource`), 500 objects, so it
//! cannot end before the cancel lands; the test accepts only CANCELED.

use crate::server::{ADMIN_TOKEN, Server};
use crate::support::{Project, idsync};
use serde_json::Value;
use std::process::Output;

const MAPPING: &str = "HumanResources_Engineering";

/// `idsync recon ARGS` with none of the CLI's environment variables inherited.
fn recon(args: &[&str]) -> Output {
    idsync()
        .arg("recon")
        .args(args)
        .env_remove("IDSYNC_URL")
        .env_remove("IDSYNC_TOKEN")
        .env_remove("IDSYNC_ADMIN_TOKEN")
        .env_remove("IDSYNC_PROJECT")
        .output()
        .expect("run idsync recon")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn list_show_and_cancel_runs_of_a_server() {
    let p = Project::copy_of("samples/getting-started");
    let mut server = Server::start(p.path());
    let url = server.base().to_string();
    let auth = ["--url", url.as_str(), "--token", ADMIN_TOKEN];

    let (status, done) = server
        .post(
            &format!("recon?_action=recon&mapping={MAPPING}&waitForCompletion=true"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{done}");
    let id = done["_id"].as_str().unwrap().to_string();

    // list: a table with the run and its count.
    let out = recon(&[&["list"], &auth[..]].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("STATE"),
        "{stdout}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&id) && l.contains(MAPPING) && l.contains("SUCCESS")),
        "{stdout}"
    );
    assert_eq!(lines.last(), Some(&"1 run"), "{stdout}");
    // ... filtered by a mapping that has none, and as JSON lines.
    let out = recon(&[&["list", "--mapping", "other"], &auth[..]].concat());
    assert!(
        text(&out.stdout).ends_with("0 runs\n"),
        "{}",
        text(&out.stdout)
    );
    let out = recon(&[&["list", "--json"], &auth[..]].concat());
    let listed: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["_id"], id.as_str());

    // show: the table `idsync recon` prints; --json: the server's summary.
    let out = recon(&[&["show", &id], &auth[..]].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(table.contains(&format!("Reconciliation {id}")), "{table}");
    assert!(table.contains("State     SUCCESS"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("Duration  ") && (l.contains(" s") || l.contains(" ms"))),
        "{table}"
    );
    let out = recon(&[&["show", &id, "--json"], &auth[..]].concat());
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["_id"], id.as_str());
    assert_eq!(shown["state"], "SUCCESS");

    // An unknown id is the server's 404, exit 1.
    let out = recon(&[&["show", "no-such-run"], &auth[..]].concat());
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("404"), "{}", text(&out.stderr));

    // cancel: a slow run of 500 objects is canceled from the CLI and ends CANCELED.
    let rows: String = (0..500)
        .map(|i| format!("\"P\",\"p{i}\",\"L\",\"p{i}@example.com\",\"6{i:03}\"\n"))
        .collect();
    let header = p.read("data/hr.csv").lines().next().unwrap().to_string();
    p.write("data/hr.csv", &format!("{header}\n{rows}"));
    let mut conf: Value = serde_json::from_str(&p.read("conf/sync.json")).unwrap();
    conf["mappings"][0]["validSource"] = serde_json::json!({
        "type": "text/javascript",
        "source": "var t = Date.now(); while (Date.now() - t < 200) {} true"
    });
    p.write("conf/sync.json", &conf.to_string());
    server.sigterm();
    let server = Server::start(p.path());
    let url = server.base().to_string();
    let auth = ["--url", url.as_str(), "--token", ADMIN_TOKEN];
    let (status, started) = server
        .post(&format!("recon?_action=recon&mapping={MAPPING}"), None)
        .await;
    assert_eq!(status, 200, "{started}");
    let slow = started["_id"].as_str().unwrap().to_string();
    let out = recon(&[&["cancel", &slow], &auth[..]].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("INITIATED"),
        "{}",
        text(&out.stdout)
    );
    let summary = server.wait_run(&slow).await;
    assert_eq!(summary["state"], "CANCELED", "{summary}");
    let out = recon(&[&["show", &slow], &auth[..]].concat());
    assert!(
        text(&out.stdout).contains("State     CANCELED"),
        "{}",
        text(&out.stdout)
    );

    // Usage errors: no token (exit 2), no server (exit 1), no --mapping for a run (exit 2).
    let out = recon(&["list", "--url", &url]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("no API token"),
        "{}",
        text(&out.stderr)
    );
    let out = recon(&["list", "--url", "http://127.0.0.1:9", "--token", "t"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("cannot reach"),
        "{}",
        text(&out.stderr)
    );
    let out = recon(&["--project", p.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("--mapping"),
        "{}",
        text(&out.stderr)
    );
}
