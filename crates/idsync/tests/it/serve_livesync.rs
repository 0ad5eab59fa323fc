//! liveSync with the real binary: a PostgreSQL table (`changeLogColumn` from a sequence) →
//! `managed/user` in a PostgreSQL repository, by `POST system/hr/account?_action=liveSync` and
//! by a provisioner schedule. The first pass applies nothing, a pass with no change writes
//! nothing, the token survives a restart, a failing change stops the pass and is dead-lettered
//! after its retry, readers get 403, and the token can be read and reset.

use crate::server::{Server, send};
use crate::support::{PgDatabase, Project, psql_query};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const READER_TOKEN: &str = "e2e-reader-token-77aa";
const MAPPING: &str = "hrAccount_managedUser";

/// A source table whose `seq` column takes the next value of a sequence on every write.
fn source_db() -> PgDatabase {
    let db = PgDatabase::create();
    psql_query(
        &db.url,
        "CREATE SEQUENCE people_seq; \
         CREATE TABLE people (id text PRIMARY KEY, username text NOT NULL, mail text, \
                              seq bigint NOT NULL DEFAULT nextval('people_seq'))",
    );
    db
}

fn upsert(db: &PgDatabase, id: &str, username: &str) {
    psql_query(
        &db.url,
        &format!(
            "INSERT INTO people (id, username, mail) VALUES ('{id}', '{username}', '{username}@example.com') \
             ON CONFLICT (id) DO UPDATE SET username = EXCLUDED.username, mail = EXCLUDED.mail, \
             seq = nextval('people_seq')"
        ),
    );
}

fn project(source: &PgDatabase, schedule: bool) -> Project {
    project_with_handler(
        source,
        schedule,
        json!({"maxRetries": 1, "postRetryAction": "dead-letter-queue"}),
    )
}

fn project_with_handler(source: &PgDatabase, schedule: bool, handler: Value) -> Project {
    let p = Project {
        dir: tempfile::tempdir().unwrap(),
    };
    p.write(
        "conf/authentication.json",
        &json!({"tokens": [{"name": "r", "roles": ["reader"],
                            "sha256": idsync_api::sha256_hex(READER_TOKEN)}]})
        .to_string(),
    );
    p.write(
        "conf/provisioner.openicf-hr.json",
        &json!({
            "name": "hr",
            "connectorRef": {"connectorName": "sql"},
            "configurationProperties": {
                "url": source.url, "table": "people", "keyColumn": "id", "changeLogColumn": "seq"
            },
            "syncFailureHandler": handler,
            "objectTypes": {"account": {"nativeType": "__ACCOUNT__", "properties": {
                "id": {"type": "string", "nativeName": "__NAME__"},
                "userName": {"type": "string", "nativeName": "username"},
                "mail": {"type": "string", "nativeName": "mail"}
            }}}
        })
        .to_string(),
    );
    p.write(
        "conf/managed.json",
        r#"{"objects":[{"name":"user","schema":{}}]}"#,
    );
    p.write(
        "conf/sync.json",
        &json!({"mappings": [{
            "name": MAPPING,
            "source": "system/hr/account",
            "target": "managed/user",
            "properties": [
                {"source": "_id", "target": "_id"},
                // A user named "bad" cannot be mapped: its change fails.
                {"source": "userName", "target": "userName", "transform": {
                    "type": "text/javascript",
                    "source": "if (source == 'bad') { throw 'bad row'; } source"}},
                {"source": "mail", "target": "mail"}
            ],
            "policies": [
                {"situation": "ABSENT", "action": "CREATE"},
                {"situation": "FOUND", "action": "UPDATE"},
                {"situation": "CONFIRMED", "action": "UPDATE"},
                {"situation": "MISSING", "action": "CREATE"},
                {"situation": "SOURCE_MISSING", "action": "DELETE"}
            ]
        }]})
        .to_string(),
    );
    if schedule {
        p.write(
            "conf/schedule-liveSyncHr.json",
            &json!({"enabled": true, "type": "simple", "repeatInterval": 1000,
                    "invokeService": "provisioner",
                    "invokeContext": {"action": "liveSync", "source": "system/hr/account"}})
            .to_string(),
        );
    }
    p
}

async fn users(s: &Server) -> Vec<(String, String)> {
    let (status, body) = s.get("managed/user?_queryFilter=true&_sortKeys=_id").await;
    assert_eq!(status, 200, "{body}");
    body["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["_id"].as_str().unwrap_or("").to_string(),
                u["userName"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

async fn live_sync(s: &Server) -> Value {
    let (status, body) = s.post("system/hr/account?_action=liveSync", None).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn live_sync_moves_table_changes_to_managed_users() {
    let source = source_db();
    let repo = PgDatabase::create();
    let p = project(&source, false);
    upsert(&source, "u0", "before");
    let mut s = Server::start_with(p.path(), &[], &["--repo", &repo.url]);

    // The first pass records where the table is and applies nothing.
    let first = live_sync(&s).await;
    assert_eq!(first["_id"], "SYSTEMHRACCOUNT", "{first}");
    assert_eq!(
        first["connectorData"]["syncToken"],
        json!({"value": 1, "keys": []}),
        "{first}"
    );
    assert!(first.get("lastException").is_none(), "{first}");
    assert!(users(&s).await.is_empty());

    // Creates and an update reach managed/user.
    upsert(&source, "u1", "alice");
    upsert(&source, "u2", "bob");
    upsert(&source, "u0", "carol");
    let second = live_sync(&s).await;
    assert!(second.get("lastException").is_none(), "{second}");
    assert_eq!(
        users(&s).await,
        pairs(&[("u0", "carol"), ("u1", "alice"), ("u2", "bob")])
    );
    upsert(&source, "u1", "alicia");
    live_sync(&s).await;
    assert_eq!(
        users(&s).await,
        pairs(&[("u0", "carol"), ("u1", "alicia"), ("u2", "bob")])
    );

    // A pass with no change writes nothing, not even the record.
    let quiet = live_sync(&s).await;
    let again = live_sync(&s).await;
    assert_eq!(quiet["_rev"], again["_rev"], "{quiet} {again}");
    assert_eq!(quiet["connectorData"], again["connectorData"]);

    // The system-wide form does the same.
    let (status, body) = s
        .post("system?_action=liveSync&source=system/hr/account", None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["_rev"], again["_rev"], "{body}");

    // A failing change stops the pass: the token stays before it, later changes wait.
    upsert(&source, "u3", "bad");
    upsert(&source, "u4", "dave");
    let failed = live_sync(&s).await;
    assert!(
        failed["lastException"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("bad row"),
        "{failed}"
    );
    assert_eq!(
        failed["connectorData"]["syncToken"], again["connectorData"]["syncToken"],
        "{failed}"
    );
    assert_eq!(users(&s).await.len(), 3);
    // Its one retry (maxRetries 1) fails too: it goes to the dead letters, and the later
    // change goes through.
    let after = live_sync(&s).await;
    assert!(after.get("lastException").is_none(), "{after}");
    assert_eq!(
        users(&s).await,
        pairs(&[
            ("u0", "carol"),
            ("u1", "alicia"),
            ("u2", "bob"),
            ("u4", "dave")
        ])
    );
    let (status, letters) = s.get("sync/deadletter?_queryFilter=true").await;
    assert_eq!(status, 200, "{letters}");
    let letters = letters["result"].as_array().unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["resourceId"], "u3");
    assert_eq!(letters[0]["resourceCollection"], "system/hr/account");

    // The record: admins read it; readers get 403, as on the action.
    let (status, rec) = s
        .get("repo/synchronisation/pooledSyncStage/SYSTEMHRACCOUNT")
        .await;
    assert_eq!(status, 200, "{rec}");
    assert_eq!(rec["connectorData"], after["connectorData"]);
    let reader = |m: Method, path: &str| s.http().request(m, s.url(path)).bearer_auth(READER_TOKEN);
    let (status, body) = send(reader(
        Method::GET,
        "repo/synchronisation/pooledSyncStage/SYSTEMHRACCOUNT",
    ))
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = send(reader(Method::POST, "system/hr/account?_action=liveSync")).await;
    assert_eq!(status, 403, "{body}");

    // The token survives a restart: only what changed since is applied.
    assert!(s.sigterm().success());
    upsert(&source, "u5", "erin");
    let s = Server::start_with(p.path(), &[], &["--repo", &repo.url]);
    live_sync(&s).await;
    assert_eq!(users(&s).await.len(), 5);
    assert!(users(&s).await.contains(&("u5".into(), "erin".into())));

    // A reset forgets the token: the next pass starts from "now" again.
    let (status, body) = send(s.admin(
        Method::DELETE,
        "repo/synchronisation/pooledSyncStage/SYSTEMHRACCOUNT",
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    upsert(&source, "u6", "frank");
    let fresh = live_sync(&s).await;
    assert_eq!(users(&s).await.len(), 5, "{fresh}");
    let (status, body) = s
        .get("repo/synchronisation/pooledSyncStage/SYSTEMUNKNOWNTYPE")
        .await;
    assert_eq!(status, 404, "{body}");
}

/// `postRetryAction: logged-ignore`: a change that still fails after `maxRetries` retries is
/// logged and passed over (no dead letter); the later changes of the source then go through,
/// and the ignored one is not tried again.
#[tokio::test(flavor = "multi_thread")]
async fn logged_ignore_passes_over_a_failing_change_after_its_retries() {
    let source = source_db();
    let repo = PgDatabase::create();
    let p = project_with_handler(
        &source,
        false,
        json!({"maxRetries": 2, "postRetryAction": "logged-ignore"}),
    );
    let s = Server::start_with(p.path(), &[], &["--repo", &repo.url]);
    let first = live_sync(&s).await;

    upsert(&source, "u1", "bad");
    upsert(&source, "u2", "dave");
    // The first attempt and the first retry fail; the later change waits behind them.
    for attempt in 1..=2 {
        let failed = live_sync(&s).await;
        assert_eq!(
            failed["lastException"]["attempts"], attempt,
            "attempt {attempt}: {failed}"
        );
        assert_eq!(
            failed["connectorData"]["syncToken"], first["connectorData"]["syncToken"],
            "{failed}"
        );
        assert!(users(&s).await.is_empty());
    }
    // The last retry fails too: it is ignored, the token moves past it, and the later change
    // goes through in the same pass.
    let after = live_sync(&s).await;
    assert!(after.get("lastException").is_none(), "{after}");
    assert_eq!(users(&s).await, pairs(&[("u2", "dave")]));
    let (status, letters) = s.get("sync/deadletter?_queryFilter=true").await;
    assert_eq!(status, 200, "{letters}");
    assert_eq!(
        letters["result"],
        json!([]),
        "logged-ignore writes no dead letter"
    );
    // The failures are in the sync audit, one per attempt.
    let (status, audit) = s
        .get("audit/sync?_queryFilter=sourceObjectId+eq+%22system/hr/account/u1%22")
        .await;
    assert_eq!(status, 200, "{audit}");
    let failures = audit["result"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["status"] == "FAILURE")
        .count();
    assert_eq!(failures, 3, "{audit}");
    // Nothing is tried again: the next pass is quiet, and later changes flow.
    let quiet = live_sync(&s).await;
    assert_eq!(quiet["_rev"], after["_rev"], "{quiet} {after}");
    upsert(&source, "u3", "erin");
    live_sync(&s).await;
    assert_eq!(users(&s).await, pairs(&[("u2", "dave"), ("u3", "erin")]));
}

/// A `postRetryAction` script as IDM's `syncfailure` sample writes it hands the change to IDM's
/// dead-letter handler (`failureHandlers.deadLetterQueue.invoke`): the change is dead-lettered,
/// the token moves past it and the later change goes through.
#[tokio::test(flavor = "multi_thread")]
async fn a_failure_script_hands_a_change_to_the_dead_letter_queue() {
    let source = source_db();
    let repo = PgDatabase::create();
    let p = project_with_handler(
        &source,
        false,
        json!({"maxRetries": 0, "postRetryAction": {"script": {"type": "text/javascript", "source":
            "(function () {\n  logger.info('giving up on {}', syncFailure.uid);\n  \
             failureHandlers.deadLetterQueue.invoke(syncFailure, failureCause);\n}());"}}}),
    );
    let s = Server::start_with(p.path(), &[], &["--repo", &repo.url]);
    live_sync(&s).await;
    upsert(&source, "u1", "bad");
    upsert(&source, "u2", "dave");
    let after = live_sync(&s).await;
    assert!(after.get("lastException").is_none(), "{after}");
    assert_eq!(users(&s).await, pairs(&[("u2", "dave")]));
    let (status, letters) = s.get("sync/deadletter?_queryFilter=true").await;
    assert_eq!(status, 200, "{letters}");
    let letters = letters["result"].as_array().unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert!(
        letters[0].to_string().contains("u1"),
        "the dead letter is u1's: {letters:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_provisioner_schedule_keeps_managed_users_in_step() {
    let source = source_db();
    let repo = PgDatabase::create();
    let p = project(&source, true);
    let s = Server::start_with(p.path(), &[], &["--repo", &repo.url]);
    // The schedule's first firing records the token; wait for it before changing the table.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, _) = s
            .get("repo/synchronisation/pooledSyncStage/SYSTEMHRACCOUNT")
            .await;
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no liveSync firing recorded a token"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    upsert(&source, "s1", "sam");
    upsert(&source, "s2", "sue");
    let deadline = Instant::now() + Duration::from_secs(60);
    while users(&s).await != pairs(&[("s1", "sam"), ("s2", "sue")]) {
        assert!(
            Instant::now() < deadline,
            "the schedule did not apply the changes: {:?}",
            users(&s).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A CSV file has no change log: liveSync compares it with the last snapshot, so creates,
/// updates and deletes of rows all reach `managed/user`.
#[tokio::test(flavor = "multi_thread")]
async fn csv_live_sync_sees_creates_updates_and_deletes() {
    let repo = PgDatabase::create();
    let p = Project {
        dir: tempfile::tempdir().unwrap(),
    };
    p.write(
        "conf/provisioner.openicf-hr.json",
        &json!({
            "name": "hr",
            "connectorRef": {"connectorName": "org.forgerock.openicf.csvfile.CSVFileConnector"},
            "configurationProperties": {"csvFile": "data/hr.csv", "headerUid": "uid"},
            // No retry: a failing change goes to the script at once, which disposes of it
            // unless its uid is "keep".
            "syncFailureHandler": {"maxRetries": 0, "postRetryAction": {"script": {
                "type": "text/javascript",
                "source": "if (syncFailure.uid == 'keep') { throw 'not disposed: ' + failureCause; }"
            }}},
            "objectTypes": {"account": {"nativeType": "__ACCOUNT__", "properties": {
                "uid": {"type": "string", "nativeName": "__NAME__"},
                "userName": {"type": "string", "nativeName": "userName"}
            }}}
        })
        .to_string(),
    );
    p.write(
        "conf/managed.json",
        r#"{"objects":[{"name":"user","schema":{}}]}"#,
    );
    p.write(
        "conf/sync.json",
        &json!({"mappings": [{
            "name": MAPPING,
            "source": "system/hr/account",
            "target": "managed/user",
            "properties": [
                {"source": "_id", "target": "_id"},
                {"source": "userName", "target": "userName", "transform": {
                    "type": "text/javascript",
                    "source": "if (source == 'bad') { throw 'bad row'; } source"}}
            ],
            "policies": [
                {"situation": "ABSENT", "action": "CREATE"},
                {"situation": "FOUND", "action": "UPDATE"},
                {"situation": "CONFIRMED", "action": "UPDATE"},
                {"situation": "SOURCE_MISSING", "action": "DELETE"}
            ]
        }]})
        .to_string(),
    );
    p.write("data/hr.csv", "uid,userName\nc0,zero\n");
    let s = Server::start_with(p.path(), &[], &["--repo", &repo.url]);
    live_sync(&s).await;
    assert!(users(&s).await.is_empty());

    p.write("data/hr.csv", "uid,userName\nc0,zero\nc1,one\nc2,two\n");
    live_sync(&s).await;
    assert_eq!(users(&s).await, pairs(&[("c1", "one"), ("c2", "two")]));

    // c1 renamed, c2 removed, c0 untouched (it was there before the first pass).
    p.write("data/hr.csv", "uid,userName\nc0,zero\nc1,uno\n");
    let rec = live_sync(&s).await;
    assert!(rec.get("lastException").is_none(), "{rec}");
    assert_eq!(users(&s).await, pairs(&[("c1", "uno")]));
    let quiet = live_sync(&s).await;
    assert_eq!(quiet["_rev"], live_sync(&s).await["_rev"]);

    // A failing row is disposed of by the script; the rows after it go through.
    p.write(
        "data/hr.csv",
        "uid,userName\nc0,zero\nc1,uno\nc3,bad\nc4,four\n",
    );
    let rec = live_sync(&s).await;
    assert!(rec.get("lastException").is_none(), "{rec}");
    assert_eq!(users(&s).await, pairs(&[("c1", "uno"), ("c4", "four")]));
    // One the script refuses to dispose of blocks the source, with the script's error.
    p.write(
        "data/hr.csv",
        "uid,userName\nc0,zero\nc1,uno\nc3,bad\nc4,four\nkeep,bad\nc5,five\n",
    );
    let rec = live_sync(&s).await;
    let message = rec["lastException"]["message"].as_str().unwrap_or("");
    assert!(message.contains("not disposed"), "{rec}");
    assert_eq!(users(&s).await, pairs(&[("c1", "uno"), ("c4", "four")]));
}

async fn total(s: &Server, path: &str) -> u64 {
    let (status, body) = s
        .get(&format!(
            "{path}&_pageSize=1&_totalPagedResultsPolicy=EXACT"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    body["totalPagedResults"].as_u64().unwrap()
}

/// A SIGKILL in the middle of a pass loses nothing and applies nothing twice: each change
/// committed with its token, so the next pass starts right after the last committed one.
#[tokio::test(flavor = "multi_thread")]
async fn a_sigkill_mid_pass_neither_skips_nor_repeats_a_change() {
    const ROWS: u64 = 1500;
    let source = source_db();
    let repo = PgDatabase::create();
    let p = project(&source, false);
    let s = Server::start_with(p.path(), &[], &["--repo", &repo.url]);
    live_sync(&s).await;
    psql_query(
        &source.url,
        &format!(
            "INSERT INTO people (id, username) \
             SELECT 'k' || g, 'user' || g FROM generate_series(1, {ROWS}) g"
        ),
    );
    // The pass runs while the test watches managed/user fill up, and kills the server once
    // some, not all, changes are in.
    let url = s.url("system/hr/account?_action=liveSync");
    let pass = tokio::spawn(
        reqwest::Client::new()
            .post(url)
            .bearer_auth(crate::server::ADMIN_TOKEN)
            .send(),
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let n = total(&s, "managed/user?_queryFilter=true").await;
        if n > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the pass applied nothing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(s); // SIGKILL
    let _ = pass.await;

    let s = Server::start_with(p.path(), &[], &["--repo", &repo.url]);
    let before = total(&s, "managed/user?_queryFilter=true").await;
    let rec = live_sync(&s).await;
    assert!(rec.get("lastException").is_none(), "{rec}");
    assert_eq!(
        total(&s, "managed/user?_queryFilter=true").await,
        ROWS,
        "{before} before the pass, which ended at {rec}"
    );
    // One CREATE per row, whichever server applied it.
    assert_eq!(
        total(&s, "audit/sync?_queryFilter=action+eq+%22CREATE%22").await,
        ROWS
    );
    assert!(live_sync(&s).await.get("lastException").is_none());
    assert_eq!(
        total(&s, "audit/sync?_queryFilter=action+eq+%22CREATE%22").await,
        ROWS
    );
}
