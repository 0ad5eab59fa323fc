//! Queued synchronization (docs/operations.md#queued-sync-and-dead-letters) with the real binary
//! and a real slapd target: writes return without waiting for LDAP, events wait in the repository
//! while slapd is down, retries end in the dead-letter queue and replay, a script postRetryAction,
//! backpressure, per-object order, and durability across a SIGKILL.

use crate::server::{Server, send};
use crate::slapd::{PEOPLE, Slapd};
use crate::support::Project;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const MAPPING: &str = "managedUser_ldap";

fn project(s: &Slapd, queued: Value) -> Project {
    let props: Value = serde_json::from_str(&s.configuration_properties()).unwrap();
    let p = Project {
        dir: tempfile::tempdir().unwrap(),
    };
    p.write(
        "conf/provisioner.openicf-ldap.json",
        &json!({
            "name": "ldap",
            "connectorRef": {"connectorName": "org.identityconnectors.ldap.LdapConnector"},
            "configurationProperties": props,
            "objectTypes": {"account": {"nativeType": "__ACCOUNT__", "properties": {
                "dn": {"type": "string", "nativeName": "__NAME__"},
                "uid": {"type": "string", "nativeName": "uid"},
                "cn": {"type": "string", "nativeName": "cn"},
                "sn": {"type": "string", "nativeName": "sn"},
                "mail": {"type": "string", "nativeName": "mail"}
            }}}
        })
        .to_string(),
    );
    p.write(
        "conf/managed.json",
        r#"{"objects":[{"name":"user","schema":{}}]}"#,
    );
    let mut q = json!({"enabled": true, "pollingInterval": 50, "retryDelay": 50});
    for (k, v) in queued.as_object().unwrap() {
        q[k] = v.clone();
    }
    p.write(
        "conf/sync.json",
        &json!({"mappings": [{
            "name": MAPPING,
            "source": "managed/user",
            "target": "system/ldap/account",
            "queuedSync": q,
            "properties": [
                {"source": "userName", "target": "dn", "transform": {"type": "text/javascript",
                    "source": format!("'uid=' + source + ',{PEOPLE}'")}},
                {"source": "userName", "target": "uid"},
                {"source": "userName", "target": "cn"},
                {"source": "sn", "target": "sn"},
                {"source": "mail", "target": "mail"}
            ],
            "policies": [
                {"situation": "ABSENT", "action": "CREATE"},
                {"situation": "CONFIRMED", "action": "UPDATE"},
                {"situation": "SOURCE_MISSING", "action": "DELETE"}
            ]
        }]})
        .to_string(),
    );
    p
}

async fn create(s: &Server, user: &str) -> String {
    let (status, body) =
        send(s.admin(Method::POST, "managed/user?_action=create").json(
            &json!({"userName": user, "sn": "Queued", "mail": format!("{user}@example.com")}),
        ))
        .await;
    assert_eq!(status, 201, "{body}");
    body["_id"].as_str().unwrap().to_string()
}

async fn count(s: &Server, path: &str) -> u64 {
    let sep = if path.contains('?') { '&' } else { '?' };
    let (status, body) = s
        .get(&format!(
            "{path}{sep}_pageSize=1&_totalPagedResultsPolicy=EXACT"
        ))
        .await;
    assert_eq!(status, 200, "{path}: {body}");
    body["totalPagedResults"].as_u64().unwrap()
}

async fn ldap_count(s: &Server) -> u64 {
    let (status, body) = s
        .get("system/ldap/account?_queryFilter=sn+eq+%22Queued%22&_fields=_id")
        .await;
    assert_eq!(status, 200, "{body}");
    body["result"].as_array().unwrap().len() as u64
}

/// Polls until `done` holds; panics with `what` after two minutes.
async fn eventually<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn queue_depth(s: &Server) -> u64 {
    count(s, "sync/queue?_queryFilter=true").await
}

#[tokio::test(flavor = "multi_thread")]
async fn creates_return_at_once_and_every_entry_arrives() {
    let slapd = Slapd::start();
    let p = project(&slapd, json!({"workers": 4}));
    let s = Server::start(p.path());
    for i in 0..200 {
        create(&s, &format!("q{i}")).await;
    }
    eventually("200 LDAP entries", || async { ldap_count(&s).await == 200 }).await;
    eventually("an empty queue", || async { queue_depth(&s).await == 0 }).await;
    assert_eq!(
        count(&s, "repo/link?_queryFilter=true").await,
        200,
        "one link per user"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn events_wait_while_ldap_is_down_and_are_delivered_after_it_returns() {
    let mut slapd = Slapd::start();
    let p = project(&slapd, json!({}));
    let s = Server::start(p.path());
    slapd.stop();
    for i in 0..20 {
        create(&s, &format!("down{i}")).await;
    }
    let (status, queue) = s
        .get(&format!(
            "sync/queue?_queryFilter=mapping+eq+%22{MAPPING}%22+and+syncAction+eq+%22notifyCreate%22"
        ))
        .await;
    assert_eq!(status, 200, "{queue}");
    assert_eq!(queue["resultCount"], 20, "{queue:#}");
    for e in queue["result"].as_array().unwrap() {
        assert!(e["state"] == "PENDING" || e["state"] == "ACQUIRED", "{e}");
        assert_eq!(e["remainingRetries"], -1, "unlimited retries: {e}");
        assert_eq!(e["resourceCollection"], "managed/user");
    }
    slapd.restart();
    eventually("20 LDAP entries", || async { ldap_count(&s).await == 20 }).await;
    eventually("an empty queue", || async { queue_depth(&s).await == 0 }).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn exhausted_retries_go_to_the_dead_letter_queue_and_replay_delivers_them() {
    let mut slapd = Slapd::start();
    let p = project(
        &slapd,
        json!({"maxRetries": 2, "postRetryAction": "dead-letter-queue"}),
    );
    let s = Server::start(p.path());
    slapd.stop();
    for i in 0..5 {
        create(&s, &format!("dead{i}")).await;
    }
    eventually("5 dead letters", || async {
        count(&s, "sync/deadletter?_queryFilter=true").await == 5
    })
    .await;
    eventually("an empty queue", || async { queue_depth(&s).await == 0 }).await;
    let (_, letters) = s
        .get(&format!(
            "sync/deadletter?_queryFilter=mapping+eq+%22{MAPPING}%22"
        ))
        .await;
    for l in letters["result"].as_array().unwrap() {
        assert_eq!(l["retries"], 2, "{l}");
        assert!(
            l["failureCause"].as_str().unwrap().contains("unavailable"),
            "{l}"
        );
    }
    slapd.restart();
    for l in letters["result"].as_array().unwrap() {
        let id = l["_id"].as_str().unwrap();
        let (status, body) = s
            .post(&format!("sync/deadletter/{id}?_action=replay"), None)
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "QUEUED");
    }
    eventually("5 LDAP entries", || async { ldap_count(&s).await == 5 }).await;
    assert_eq!(count(&s, "sync/deadletter?_queryFilter=true").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_script_post_retry_action_sees_the_failure_and_decides() {
    let mut slapd = Slapd::start();
    // The script asks for another retry (throws) while LDAP is unreachable, and lets any other
    // failure go.
    let p = project(
        &slapd,
        json!({"maxRetries": 0, "postRetryAction": {"script": {"type": "text/javascript",
            "source": "if (failureCause.indexOf('unavailable') >= 0 && syncFailure.mapping == 'managedUser_ldap') { throw 'retry: ' + syncFailure.resourceId; } 'dropped';"}}}),
    );
    let s = Server::start(p.path());
    slapd.stop();
    create(&s, "scripted").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(queue_depth(&s).await, 1, "the script kept the event");
    assert_eq!(count(&s, "sync/deadletter?_queryFilter=true").await, 0);
    slapd.restart();
    eventually("the entry", || async { ldap_count(&s).await == 1 }).await;
    eventually("an empty queue", || async { queue_depth(&s).await == 0 }).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_in_memory_queue_rejects_submissions_yet_delivers_everything() {
    let slapd = Slapd::start();
    let p = project(&slapd, json!({"maxQueueSize": 10, "pageSize": 100}));
    let s = Server::start(p.path());
    let mut tasks = tokio::task::JoinSet::new();
    let s = std::sync::Arc::new(s);
    for w in 0..8 {
        let s = s.clone();
        tasks.spawn(async move {
            for i in 0..63 {
                if w * 63 + i < 500 {
                    create(&s, &format!("bp{}", w * 63 + i)).await;
                }
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    eventually("500 LDAP entries", || async { ldap_count(&s).await == 500 }).await;
    eventually("an empty queue", || async { queue_depth(&s).await == 0 }).await;
    let (status, metrics) = send(s.admin(Method::GET, "metrics/prometheus")).await;
    assert_eq!(status, 200);
    let text = metrics.as_str().unwrap_or_default().to_string();
    let rejected: f64 = text
        .lines()
        .filter(|l| {
            l.starts_with("idsync_sync_queue_action_total")
                && l.contains("rejected-executions")
                && l.contains(MAPPING)
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(rejected > 0.0, "rejections counted:\n{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_update_sequence_ends_with_the_last_state_in_ldap() {
    let slapd = Slapd::start();
    let p = project(&slapd, json!({"workers": 4}));
    let s = Server::start(p.path());
    let id = create(&s, "seq").await;
    for i in 0..30 {
        let (status, body) = send(
            s.admin(Method::PATCH, &format!("managed/user/{id}")).json(
                &json!([{"operation": "replace", "field": "/mail", "value": format!("v{i}@example.com")}]),
            ),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    eventually("an empty queue", || async { queue_depth(&s).await == 0 }).await;
    let (_, entries) = s
        .get("system/ldap/account?_queryFilter=uid+eq+%22seq%22")
        .await;
    assert_eq!(
        entries["result"][0]["mail"], "v29@example.com",
        "{entries:#}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn no_change_is_lost_or_applied_twice_across_a_sigkill() {
    let mut slapd = Slapd::start();
    let p = project(&slapd, json!({}));
    let s = Server::start(p.path());
    slapd.stop();
    for i in 0..100 {
        create(&s, &format!("k{i}")).await;
    }
    drop(s); // SIGKILL: events ACQUIRED by this node stay so in the repository
    slapd.restart();
    let s = Server::start(p.path());
    eventually("100 LDAP entries", || async { ldap_count(&s).await == 100 }).await;
    eventually("an empty queue", || async { queue_depth(&s).await == 0 }).await;
    assert_eq!(
        count(
            &s,
            "audit/sync?_queryFilter=action+eq+%22CREATE%22+and+status+eq+%22SUCCESS%22"
        )
        .await,
        100,
        "each user created once"
    );
    assert_eq!(count(&s, "repo/link?_queryFilter=true").await, 100);
}

#[tokio::test(flavor = "multi_thread")]
async fn processing_pauses_while_the_target_connector_is_disabled_and_resumes_with_it() {
    let slapd = Slapd::start();
    // With no retries and dead-lettering, any attempt against the missing route would
    // dead-letter the event at once: a paused queue attempts nothing.
    let p = project(
        &slapd,
        json!({"maxRetries": 0, "postRetryAction": "dead-letter-queue"}),
    );
    let conf = "conf/provisioner.openicf-ldap.json";
    let enabled = p.read(conf);
    let mut disabled: Value = serde_json::from_str(&enabled).unwrap();
    disabled["enabled"] = json!(false);
    p.write(conf, &disabled.to_string());

    let mut s = Server::start(p.path());
    for i in 0..5 {
        create(&s, &format!("paused{i}")).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(queue_depth(&s).await, 5, "the events wait");
    assert_eq!(count(&s, "sync/deadletter?_queryFilter=true").await, 0);
    assert!(s.sigterm().success());

    p.write(conf, &enabled);
    let s = Server::start(p.path());
    eventually("5 LDAP entries", || async { ldap_count(&s).await == 5 }).await;
    eventually("an empty queue", || async { queue_depth(&s).await == 0 }).await;
    assert_eq!(count(&s, "sync/deadletter?_queryFilter=true").await, 0);
}

/// An event that failed stays ACQUIRED while it waits for its `retryDelay` and between its
/// attempts: sampled every 50 ms for 3 s while LDAP is down (unlimited retries, one worker), it
/// never reads PENDING once acquired.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_event_stays_acquired_between_its_retries() {
    let mut slapd = Slapd::start();
    let p = project(&slapd, json!({"workers": 1, "retryDelay": 200}));
    let s = Server::start(p.path());
    slapd.stop();
    create(&s, "waiting").await;
    let state = || async {
        let (status, body) = s.get("sync/queue?_queryFilter=true").await;
        assert_eq!(status, 200, "{body}");
        body["result"][0]["state"].as_str().map(str::to_string)
    };
    eventually("the event acquired", || async {
        state().await.as_deref() == Some("ACQUIRED")
    })
    .await;
    let mut samples = Vec::new();
    for _ in 0..60 {
        samples.push(state().await.unwrap_or_default());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pending = samples.iter().filter(|s| *s == "PENDING").count();
    assert_eq!(
        pending,
        0,
        "PENDING in {pending} of {} samples",
        samples.len()
    );
    slapd.restart();
    eventually("the entry in LDAP", || async { ldap_count(&s).await == 1 }).await;
    eventually("an empty queue", || async { queue_depth(&s).await == 0 }).await;
}
