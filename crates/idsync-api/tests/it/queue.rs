//! `sync/queue` and `sync/deadletter` (docs/rest.md): CREST queries filtered on every
//! event field, paging, reads, DELETE of a PENDING event (200) versus an ACQUIRED one (409),
//! dead-letter replay (letter gone, event PENDING again with the mapping's full retry budget,
//! in one commit), and the errors. Rows are seeded through the repository the server uses.

use crate::harness::*;
use chrono::{DateTime, Utc};
use idsync_repo::{
    ChangeSet, DeadLetter, EventState, Op, Repository, SyncAction, SyncEvent, iso_millis,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// managed/user → system/hr/account three times: queued with 5 retries, queued with unlimited
/// retries, and inline (not queued).
fn sync_json() -> Value {
    let mapping = |name: &str, queued: Value| {
        let mut m = json!({
            "name": name,
            "source": "managed/user", "target": "system/hr/account",
            "properties": [{"source": "userName", "target": "userName"}],
            "policies": [{"situation": "ABSENT", "action": "CREATE"}]
        });
        if !queued.is_null() {
            m["queuedSync"] = queued;
        }
        m
    };
    json!({"mappings": [
        mapping("userToHr", json!({"enabled": true, "maxRetries": 5,
                                   "postRetryAction": "dead-letter-queue"})),
        mapping("userToHrForever", json!({"enabled": true})),
        mapping("userToHrInline", Value::Null),
    ]})
}

fn event(id: &str, mapping: &str, resource: &str, action: SyncAction, retries: i64) -> SyncEvent {
    SyncEvent {
        id: id.into(),
        rev: String::new(),
        mapping: mapping.into(),
        resource_id: resource.into(),
        resource_collection: "managed/user".into(),
        sync_action: action,
        state: EventState::Pending,
        node_id: None,
        remaining_retries: retries,
        create_date: Utc::now(),
        old_object: Some(json!({"_id": resource, "userName": "old"})),
        new_object: Some(json!({"_id": resource, "userName": "new"})),
        object_rev: Some("2".into()),
        context: json!({"node": "node-test"}),
        seq: 0,
    }
}

async fn enqueue(repo: &dyn Repository, events: Vec<SyncEvent>) {
    let mut cs = ChangeSet::new();
    for e in events {
        cs.push(Op::EnqueueSyncEvent(e));
    }
    repo.commit(cs).await.unwrap();
}

async fn letter(repo: &dyn Repository, id: &str, ev: SyncEvent) {
    repo.add_dead_letter(&DeadLetter {
        id: id.into(),
        event: ev,
        failure_cause: "target unreachable".into(),
        retries: 5,
        failed_date: Utc::now(),
    })
    .await
    .unwrap();
}

fn ids(body: &Value) -> BTreeSet<String> {
    body["result"]
        .as_array()
        .unwrap_or_else(|| panic!("no result: {body}"))
        .iter()
        .map(|o| o["_id"].as_str().unwrap().to_string())
        .collect()
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

async fn query(s: &Server, path: &str, filter: &str) -> BTreeSet<String> {
    let (st, body) = send(
        s.reader(Method::GET, path)
            .query(&[("_queryFilter", filter)]),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{filter}: {body}");
    assert_eq!(
        body["resultCount"],
        body["result"].as_array().unwrap().len()
    );
    ids(&body)
}

/// e1 (ACQUIRED by node-x), e2 and e3 of userToHr; e4 of userToHrForever.
async fn seeded() -> (Server, DateTime<Utc>) {
    let s = Server::start_with_sync(sync_json()).await;
    let before = Utc::now() - chrono::Duration::seconds(1);
    enqueue(
        s.repo.as_ref(),
        vec![
            event("e1", "userToHr", "u1", SyncAction::NotifyCreate, 5),
            event("e2", "userToHr", "u2", SyncAction::NotifyUpdate, 5),
            event("e3", "userToHr", "u3", SyncAction::NotifyUpdate, 2),
            event("e4", "userToHrForever", "u1", SyncAction::NotifyDelete, -1),
        ],
    )
    .await;
    let got = s
        .repo
        .acquire_events("userToHr", "node-x", 1)
        .await
        .unwrap();
    assert_eq!(got[0].id, "e1");
    (s, before)
}

#[tokio::test]
async fn queue_queries_filter_on_every_field() {
    let (s, before) = seeded().await;
    let q = "sync/queue";
    assert_eq!(query(&s, q, "true").await, set(&["e1", "e2", "e3", "e4"]));
    assert_eq!(
        query(&s, q, "mapping eq \"userToHr\"").await,
        set(&["e1", "e2", "e3"])
    );
    assert_eq!(query(&s, q, "state eq \"ACQUIRED\"").await, set(&["e1"]));
    assert_eq!(
        query(&s, q, "state eq \"PENDING\"").await,
        set(&["e2", "e3", "e4"])
    );
    assert_eq!(
        query(&s, q, "syncAction eq \"notifyUpdate\"").await,
        set(&["e2", "e3"])
    );
    assert_eq!(
        query(&s, q, "syncAction eq \"notifyDelete\"").await,
        set(&["e4"])
    );
    assert_eq!(
        query(&s, q, "resourceId eq \"u1\"").await,
        set(&["e1", "e4"])
    );
    assert_eq!(query(&s, q, "nodeId eq \"node-x\"").await, set(&["e1"]));
    assert_eq!(query(&s, q, "!(nodeId pr)").await, set(&["e2", "e3", "e4"]));
    assert_eq!(
        query(&s, q, "remainingRetries eq 5").await,
        set(&["e1", "e2"])
    );
    assert_eq!(query(&s, q, "remainingRetries lt 0").await, set(&["e4"]));
    assert_eq!(
        query(
            &s,
            q,
            "resourceCollection eq \"managed/user\" and mapping eq \"userToHrForever\""
        )
        .await,
        set(&["e4"])
    );
    assert_eq!(
        query(&s, q, &format!("createDate ge \"{}\"", iso_millis(&before))).await,
        set(&["e1", "e2", "e3", "e4"])
    );
    assert_eq!(
        query(&s, q, &format!("createDate lt \"{}\"", iso_millis(&before))).await,
        set(&[])
    );
    assert_eq!(query(&s, q, "_id eq \"e3\"").await, set(&["e3"]));

    // The REST shape: exactly the documented fields.
    let (st, body) = send(
        s.reader(Method::GET, q)
            .query(&[("_queryFilter", "_id eq \"e1\"")]),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let e1 = &body["result"][0];
    let keys: BTreeSet<&str> = e1.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "_id",
            "_rev",
            "mapping",
            "resourceId",
            "resourceCollection",
            "syncAction",
            "state",
            "nodeId",
            "remainingRetries",
            "createDate"
        ]
        .into_iter()
        .collect()
    );
    assert_eq!(e1["state"], "ACQUIRED");
    assert_eq!(e1["nodeId"], "node-x");
    assert_eq!(e1["syncAction"], "notifyCreate");
    let date = e1["createDate"].as_str().unwrap();
    assert!(
        DateTime::parse_from_rfc3339(date).is_ok() && date.ends_with('Z') && date.len() == 24,
        "createDate {date} is not ISO-8601 UTC with milliseconds"
    );

    // One event.
    let (st, body) = send(s.reader(Method::GET, "sync/queue/e4")).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(
        (
            &body["_id"],
            &body["mapping"],
            &body["remainingRetries"],
            &body["nodeId"]
        ),
        (
            &json!("e4"),
            &json!("userToHrForever"),
            &json!(-1),
            &Value::Null
        )
    );
    let (st, body) = send(s.reader(Method::GET, "sync/queue/nope")).await;
    assert_crest_error(st, &body, 404, "nope");

    // Errors: no filter, bad filter, unauthenticated.
    let (st, body) = send(s.reader(Method::GET, q)).await;
    assert_crest_error(st, &body, 400, "_queryFilter");
    let (st, body) = send(
        s.reader(Method::GET, q)
            .query(&[("_queryFilter", "mapping eq")]),
    )
    .await;
    assert_crest_error(st, &body, 400, "");
    let (st, body) = send(s.anon(Method::GET, q).query(&[("_queryFilter", "true")])).await;
    assert_crest_error(st, &body, 401, "");
}

#[tokio::test]
async fn queue_pages_with_cookies() {
    let (s, _) = seeded().await;
    let mut seen = Vec::new();
    let mut cookie: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut params = vec![
            ("_queryFilter", "true".to_string()),
            ("_pageSize", "3".into()),
        ];
        if let Some(c) = &cookie {
            params.push(("_pagedResultsCookie", c.clone()));
        }
        let (st, body) = send(s.reader(Method::GET, "sync/queue").query(&params)).await;
        assert_eq!(st, StatusCode::OK, "{body}");
        pages += 1;
        let page = body["result"].as_array().unwrap();
        assert!(page.len() <= 3);
        seen.extend(page.iter().map(|o| o["_id"].as_str().unwrap().to_string()));
        match body["pagedResultsCookie"].as_str() {
            Some(c) => cookie = Some(c.to_string()),
            None => break,
        }
        assert!(pages < 10, "paging does not end");
    }
    assert_eq!(pages, 2);
    seen.sort();
    assert_eq!(seen, vec!["e1", "e2", "e3", "e4"]);
}

#[tokio::test]
async fn delete_removes_a_pending_event_but_not_an_acquired_one() {
    let (s, _) = seeded().await;
    // A reader may not delete.
    let (st, body) = send(s.reader(Method::DELETE, "sync/queue/e2")).await;
    assert_crest_error(st, &body, 403, "");
    assert!(s.repo.get_event("e2").await.unwrap().is_some());

    let (st, body) = send(s.admin(Method::DELETE, "sync/queue/e2")).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(
        (&body["_id"], &body["state"]),
        (&json!("e2"), &json!("PENDING"))
    );
    assert!(s.repo.get_event("e2").await.unwrap().is_none());
    let (st, body) = send(s.admin(Method::GET, "sync/queue/e2")).await;
    assert_crest_error(st, &body, 404, "e2");
    let (st, body) = send(s.admin(Method::DELETE, "sync/queue/e2")).await;
    assert_crest_error(st, &body, 404, "e2");

    // ACQUIRED: 409, and it stays.
    let (st, body) = send(s.admin(Method::DELETE, "sync/queue/e1")).await;
    assert_crest_error(st, &body, 409, "acquired");
    let e1 = s.repo.get_event("e1").await.unwrap().unwrap();
    assert_eq!(e1.state, EventState::Acquired);

    // Once released it can be deleted.
    let owner = e1.node_id.clone().unwrap();
    s.repo.release_for_retry("e1", 4, &owner).await.unwrap();
    let (st, body) = send(s.admin(Method::DELETE, "sync/queue/e1")).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["remainingRetries"], 4);
    assert_eq!(query(&s, "sync/queue", "true").await, set(&["e3", "e4"]));

    // No DELETE of the whole queue.
    let (st, body) = send(s.admin(Method::DELETE, "sync/queue")).await;
    assert_crest_error(st, &body, 501, "not supported");
    assert_eq!(query(&s, "sync/queue", "true").await, set(&["e3", "e4"]));
}

#[tokio::test]
async fn dead_letters_query_read_and_discard() {
    let s = Server::start_with_sync(sync_json()).await;
    let r = s.repo.as_ref();
    letter(
        r,
        "d1",
        event("x1", "userToHr", "u1", SyncAction::NotifyCreate, 0),
    )
    .await;
    letter(
        r,
        "d2",
        event("x2", "userToHrForever", "u2", SyncAction::NotifyDelete, 0),
    )
    .await;
    letter(
        r,
        "d3",
        event("x3", "userToHr", "u3", SyncAction::NotifyUpdate, 0),
    )
    .await;
    let q = "sync/deadletter";
    assert_eq!(query(&s, q, "true").await, set(&["d1", "d2", "d3"]));
    assert_eq!(
        query(&s, q, "mapping eq \"userToHr\"").await,
        set(&["d1", "d3"])
    );
    assert_eq!(
        query(
            &s,
            q,
            "syncAction eq \"notifyDelete\" or resourceId eq \"u3\""
        )
        .await,
        set(&["d2", "d3"])
    );
    assert_eq!(
        query(&s, q, "failureCause co \"UNREACHABLE\"").await,
        set(&["d1", "d2", "d3"])
    );

    let (st, body) = send(s.reader(Method::GET, "sync/deadletter/d2")).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let keys: BTreeSet<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "_id",
            "mapping",
            "resourceId",
            "resourceCollection",
            "syncAction",
            "failureCause",
            "retries",
            "createDate",
            "failedDate"
        ]
        .into_iter()
        .collect()
    );
    assert_eq!(body["failureCause"], "target unreachable");
    let (st, body) = send(s.reader(Method::GET, "sync/deadletter/none")).await;
    assert_crest_error(st, &body, 404, "none");
    let (st, body) = send(s.reader(Method::GET, q)).await;
    assert_crest_error(st, &body, 400, "_queryFilter");

    // Discard without replay (admin only).
    let (st, body) = send(s.reader(Method::DELETE, "sync/deadletter/d3")).await;
    assert_crest_error(st, &body, 403, "");
    let (st, body) = send(s.admin(Method::DELETE, "sync/deadletter/d3")).await;
    assert_eq!((st, &body["_id"]), (StatusCode::OK, &json!("d3")), "{body}");
    let (st, body) = send(s.admin(Method::DELETE, "sync/deadletter/d3")).await;
    assert_crest_error(st, &body, 404, "d3");
    assert_eq!(query(&s, q, "true").await, set(&["d1", "d2"]));
    // Nothing was queued by any of this.
    assert_eq!(query(&s, "sync/queue", "true").await, set(&[]));
}

#[tokio::test]
async fn replay_requeues_with_the_full_retry_budget() {
    let s = Server::start_with_sync(sync_json()).await;
    let r = s.repo.as_ref();
    let mut original = event("x1", "userToHr", "u1", SyncAction::NotifyUpdate, 0);
    original.create_date = Utc::now() - chrono::Duration::hours(2);
    letter(r, "d1", original.clone()).await;
    letter(
        r,
        "d2",
        event("x2", "userToHrForever", "u2", SyncAction::NotifyDelete, 0),
    )
    .await;
    let before = Utc::now();

    // A reader may not replay.
    let (st, body) = send(s.reader(Method::POST, "sync/deadletter/d1?_action=replay")).await;
    assert_crest_error(st, &body, 403, "");
    assert!(r.get_dead_letter("d1").await.unwrap().is_some());

    let (st, body) = send(s.admin(Method::POST, "sync/deadletter/d1?_action=replay")).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"_id": "d1", "action": "replay", "status": "QUEUED"})
    );
    assert!(r.get_dead_letter("d1").await.unwrap().is_none());
    let (st, body) = send(s.reader(Method::GET, "sync/deadletter/d1")).await;
    assert_crest_error(st, &body, 404, "d1");

    let (st, body) = send(
        s.reader(Method::GET, "sync/queue")
            .query(&[("_queryFilter", "mapping eq \"userToHr\"")]),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["resultCount"], 1, "{body}");
    let ev = &body["result"][0];
    assert_eq!(ev["state"], "PENDING");
    assert_eq!(ev["nodeId"], Value::Null);
    assert_eq!(ev["remainingRetries"], 5, "the mapping's maxRetries");
    assert_eq!(ev["resourceId"], "u1");
    assert_eq!(ev["resourceCollection"], "managed/user");
    assert_eq!(ev["syncAction"], "notifyUpdate");
    assert_ne!(ev["_id"], "x1", "a fresh event id");
    let created = DateTime::parse_from_rfc3339(ev["createDate"].as_str().unwrap()).unwrap();
    assert!(
        created.timestamp_millis() >= before.timestamp_millis(),
        "createDate {created} is not the replay time (>= {before})"
    );
    // The whole event is kept, so the consumer can replay it.
    let stored = r
        .get_event(ev["_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (&stored.old_object, &stored.new_object, &stored.object_rev),
        (
            &original.old_object,
            &original.new_object,
            &original.object_rev
        )
    );

    // Unlimited retries are -1.
    let (st, body) = send(s.admin(Method::POST, "sync/deadletter/d2?_action=replay")).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let (_, body) = send(
        s.reader(Method::GET, "sync/queue")
            .query(&[("_queryFilter", "mapping eq \"userToHrForever\"")]),
    )
    .await;
    assert_eq!(body["resultCount"], 1, "{body}");
    assert_eq!(body["result"][0]["remainingRetries"], -1);
    assert_eq!(body["result"][0]["syncAction"], "notifyDelete");

    // A second replay of the same letter finds nothing and queues nothing.
    let (st, body) = send(s.admin(Method::POST, "sync/deadletter/d1?_action=replay")).await;
    assert_crest_error(st, &body, 404, "d1");
    assert_eq!(
        query(&s, "sync/queue", "true").await.len(),
        2,
        "one event per replayed letter"
    );
}

#[tokio::test]
async fn replay_errors() {
    let s = Server::start_with_sync(sync_json()).await;
    let r = s.repo.as_ref();
    letter(
        r,
        "gone",
        event("x1", "removedMapping", "u1", SyncAction::NotifyUpdate, 0),
    )
    .await;
    letter(
        r,
        "inline",
        event("x2", "userToHrInline", "u2", SyncAction::NotifyUpdate, 0),
    )
    .await;
    letter(
        r,
        "ok",
        event("x3", "userToHr", "u3", SyncAction::NotifyUpdate, 0),
    )
    .await;

    let (st, body) = send(s.admin(Method::POST, "sync/deadletter/gone?_action=replay")).await;
    assert_crest_error(st, &body, 400, "removedMapping no longer exists");
    let (st, body) = send(s.admin(Method::POST, "sync/deadletter/inline?_action=replay")).await;
    assert_crest_error(st, &body, 400, "queued sync");
    let (st, body) = send(s.admin(Method::POST, "sync/deadletter/ok?_action=retry")).await;
    assert_crest_error(st, &body, 400, "unknown action");
    let (st, body) = send(s.admin(Method::POST, "sync/deadletter/ok")).await;
    assert_crest_error(st, &body, 400, "_action=replay");
    let (st, body) = send(s.admin(Method::POST, "sync/deadletter/none?_action=replay")).await;
    assert_crest_error(st, &body, 404, "none");

    // Nothing changed.
    assert_eq!(
        query(&s, "sync/deadletter", "true").await,
        set(&["gone", "inline", "ok"])
    );
    assert_eq!(query(&s, "sync/queue", "true").await, set(&[]));
}
