//! What the real `idsync serve` leaves on disk and reads from it (docs/SECURITY.md): its state
//! folder, repository and generated token readable by the user only, a rewritten CSV that keeps
//! its mode, and script files confined to the project folder.

use crate::server::{Server, send};
use crate::support::Project;
use reqwest::Method;
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test(flavor = "multi_thread")]
async fn state_files_are_private_and_a_rewritten_csv_keeps_its_mode() {
    let p = Project::copy_of("samples/hr-to-managed");
    // A folder left world-readable by an earlier version, and a CSV of personal data kept
    // private by its owner.
    std::fs::create_dir_all(p.file(".idsync")).unwrap();
    std::fs::set_permissions(p.file(".idsync"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        p.file("data/hr.csv"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    // No configured credential: the server generates the admin token file.
    let s = Server::start_with(p.path(), &[("IDSYNC_ADMIN_TOKEN", "")], &[]);
    let token = p.read(".idsync/admin-token").trim().to_string();
    let admin = |m: Method, path: &str| s.http().request(m, s.url(path)).bearer_auth(&token);
    // A managed write (the WAL) and a CSV rewrite.
    let (status, body) =
        send(admin(Method::PUT, "managed/user/m1").json(&json!({"userName": "m1"}))).await;
    assert_eq!(status, 201, "{body}");
    let (status, row) = send(admin(Method::GET, "system/hr/account/u00000001")).await;
    assert_eq!(status, 200, "{row}");
    let mut changed = row.clone();
    changed["sn"] = json!("Renamed");
    let (status, body) =
        send(admin(Method::PUT, "system/hr/account/u00000001").json(&changed)).await;
    assert_eq!(status, 200, "{body}");
    assert!(p.read("data/hr.csv").contains("Renamed"));

    assert_eq!(mode(&p.file(".idsync")), 0o700, ".idsync/");
    assert_eq!(mode(&p.file(".idsync/admin-token")), 0o600, "admin-token");
    assert_eq!(mode(&p.file(".idsync/repo.db")), 0o600, "repo.db");
    for side in ["repo.db-wal", "repo.db-shm"] {
        let f = p.file(&format!(".idsync/{side}"));
        if f.exists() {
            assert_eq!(mode(&f), 0o600, "{side}");
        }
    }
    assert_eq!(mode(&p.file("data/hr.csv")), 0o600, "the rewritten CSV");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_schedule_cannot_run_a_script_outside_the_project() {
    let p = Project::copy_of("samples/hr-to-managed");
    let s = Server::start(p.path());
    let (status, body) = send(s.admin(Method::PUT, "scheduler/job/evil").json(&json!({
        "schedule": "0 0 3 * * ?",
        "invokeService": "script",
        "invokeContext": {"script": {"type": "text/javascript", "file": "/etc/passwd"}}
    })))
    .await;
    if status == 201 {
        let (status, fired) = s.post("scheduler/job/evil?_action=trigger", None).await;
        assert!(status < 300, "{fired}");
        // Wait for the firing's outcome (the bound only turns a hang into a failure).
        let deadline = Instant::now() + Duration::from_secs(60);
        let firings = loop {
            let (status, firings) = s.get("scheduler/job/evil/firings?_queryFilter=true").await;
            assert_eq!(status, 200, "{firings}");
            let done = firings["result"].as_array().is_some_and(|r| {
                r.iter().any(|f| {
                    ["FAILED", "SUCCESS", "SKIPPED"].contains(&f["status"].as_str().unwrap_or(""))
                })
            });
            if done {
                break firings;
            }
            assert!(Instant::now() < deadline, "no outcome: {firings}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let text = firings.to_string();
        assert!(!text.contains("root:"), "the script file was read: {text}");
        assert!(text.contains("inside the project folder"), "{text}");
    } else {
        assert_eq!(status, 400, "{body}");
        assert!(!body.to_string().contains("root:"), "{body}");
    }
    let (_, runs) = s.get("recon").await;
    assert_eq!(runs["reconciliations"], Value::Array(vec![]));
}
