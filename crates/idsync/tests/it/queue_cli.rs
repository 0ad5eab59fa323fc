//! `idsync queue list` against a real `idsync serve` (docs/cli.md): an empty table, events written
//! to the server's repository listed as a table (across several pages) and as JSON lines, the
//! --mapping/--state filters, the URL and token from the environment, and clear failures with
//! a non-zero exit for a wrong token and for a server that is not there.
//!
//! Events are seeded straight into the server's SQLite repository for a mapping that is not in
//! the project, so no queue consumer ever takes them.

use crate::server::{ADMIN_TOKEN, Server};
use crate::support::{Project, idsync};
use chrono::Utc;
use idsync_repo::{ChangeSet, EventState, Op, SyncAction, SyncEvent};
use serde_json::{Value, json};
use std::process::Output;

/// `idsync queue list ARGS` with none of the CLI's environment variables inherited.
fn queue_list(args: &[&str], env: &[(&str, &str)]) -> Output {
    idsync()
        .args(["queue", "list"])
        .args(args)
        .env_remove("IDSYNC_URL")
        .env_remove("IDSYNC_TOKEN")
        .env_remove("IDSYNC_ADMIN_TOKEN")
        .envs(env.iter().copied())
        .output()
        .expect("run idsync queue list")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn event(i: usize, mapping: &str, state: EventState) -> SyncEvent {
    SyncEvent {
        id: format!("ev{i:05}"),
        rev: String::new(),
        mapping: mapping.into(),
        resource_id: format!("user{i}"),
        resource_collection: "managed/user".into(),
        sync_action: SyncAction::NotifyUpdate,
        state,
        node_id: None,
        remaining_retries: -1,
        create_date: Utc::now(),
        old_object: None,
        new_object: Some(json!({"_id": format!("user{i}")})),
        object_rev: Some("1".into()),
        context: json!({}),
        seq: 0,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn queue_list_prints_the_queue_and_fails_clearly() {
    let p = Project::copy_of("samples/getting-started");
    let mut server = Server::start(p.path());
    let url = server.base().to_string();

    // Empty queue: the header and the count, exit 0.
    let out = queue_list(&["--url", &url, "--token", ADMIN_TOKEN], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    for column in [
        "ID",
        "MAPPING",
        "RESOURCE ID",
        "SYNC ACTION",
        "STATE",
        "NODE",
        "CREATED",
    ] {
        assert!(lines[0].contains(column), "{column} missing: {stdout}");
    }
    assert_eq!(lines[1], "0 events");
    let out = queue_list(&["--url", &url, "--token", ADMIN_TOKEN, "--json"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");

    // 1,003 PENDING events of one mapping and 2 of another, one of them ACQUIRED: more than
    // one page of the CLI's paging.
    let repo = idsync_repo::open(&format!("sqlite://{}", p.file(".idsync/repo.db").display()))
        .await
        .unwrap();
    let mut cs = ChangeSet::new();
    for i in 0..1003 {
        cs.push(Op::EnqueueSyncEvent(event(
            i,
            "ghostMapping",
            EventState::Pending,
        )));
    }
    cs.push(Op::EnqueueSyncEvent(event(
        5000,
        "otherGhost",
        EventState::Pending,
    )));
    cs.push(Op::EnqueueSyncEvent(event(
        5001,
        "otherGhost",
        EventState::Pending,
    )));
    repo.commit(cs).await.unwrap();
    let acquired = repo
        .acquire_events("otherGhost", "some-node", 1)
        .await
        .unwrap();
    assert_eq!(acquired.len(), 1);

    let out = queue_list(&["--url", &url, "--token", ADMIN_TOKEN], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1 + 1005 + 1, "header, events, count");
    assert_eq!(lines[1005 + 1], "1005 events");
    let row = lines
        .iter()
        .find(|l| l.starts_with("ev00042 "))
        .unwrap_or_else(|| panic!("ev00042 not listed"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        &cells[..7],
        [
            "ev00042",
            "ghostMapping",
            "user42",
            "notifyUpdate",
            "PENDING",
            "-",
            "unlimited"
        ],
        "{row}"
    );

    // JSON lines, every event exactly once, with the REST fields.
    let out = queue_list(&["--url", &url, "--token", ADMIN_TOKEN, "--json"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let events: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut ids: Vec<&str> = events.iter().map(|e| e["_id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 1005);
    assert!(
        events
            .iter()
            .all(|e| e["remainingRetries"] == -1 && e["createDate"].is_string())
    );

    // Filters, with the URL and token from the environment.
    let env = [("IDSYNC_URL", url.as_str()), ("IDSYNC_TOKEN", ADMIN_TOKEN)];
    let out = queue_list(&["--mapping", "otherGhost", "--json"], &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    let out = queue_list(
        &["--mapping", "otherGhost", "--state", "ACQUIRED", "--json"],
        &env,
    );
    let stdout = text(&out.stdout);
    let only: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(only.len(), 1, "{stdout}");
    assert_eq!(
        (&only[0]["state"], &only[0]["nodeId"], &only[0]["mapping"]),
        (
            &json!("ACQUIRED"),
            &json!("some-node"),
            &json!("otherGhost")
        )
    );
    let out = queue_list(&["--state", "pending"], &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).ends_with("1004 events\n"));
    // IDSYNC_ADMIN_TOKEN is the last fallback.
    let out = queue_list(
        &["--url", &url, "--mapping", "otherGhost"],
        &[("IDSYNC_ADMIN_TOKEN", ADMIN_TOKEN)],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).ends_with("2 events\n"));

    // A wrong token: exit 1, the server's reason on stderr, nothing on stdout.
    let out = queue_list(&["--url", &url, "--token", "not-the-token"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("401"), "{stderr}");
    assert!(stderr.contains("--token"), "{stderr}");
    assert!(
        !stderr.contains("not-the-token"),
        "the token is echoed: {stderr}"
    );
    assert_eq!(text(&out.stdout), "");

    // No token at all: a usage error.
    let out = queue_list(&["--url", &url], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("IDSYNC_TOKEN"));

    // The server is gone: exit 1 with a message that says so.
    assert!(server.sigterm().success());
    let out = queue_list(&["--url", &url, "--token", ADMIN_TOKEN], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("cannot reach the idsync server"),
        "{stderr}"
    );
    assert!(stderr.contains(&url), "{stderr}");
}
