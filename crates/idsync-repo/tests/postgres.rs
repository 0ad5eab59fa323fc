//! The PostgreSQL backend against the real server on 127.0.0.1 (`IDSYNC_TEST_PG_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`). Every test creates its own database
//! `idsync_test_<random>` and drops it when done, also when the test fails. A missing server
//! fails the tests: it is never a skip.

#![allow(clippy::unwrap_used)] // a test binary: a failed setup step should panic right there

use idsync_core::{Filter, JsonPointer, QueryRequest, SortKey, TotalPolicy};
use idsync_core::{ReconStage, ReconState};
use idsync_repo::{
    ChangeSet, ConflictKind, Job, Link, Op, RepoError, Repository, RunRecord, RunUpdate,
};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

fn create(object_type: &str, id: &str, value: Value) -> Op {
    Op::CreateObject {
        object_type: object_type.into(),
        id: id.into(),
        value,
    }
}

async fn load(repo: &Arc<dyn Repository>, object_type: &str, objects: &[Value]) {
    let mut cs = ChangeSet::new();
    for (i, o) in objects.iter().enumerate() {
        cs.push(create(object_type, &format!("o{i:04}"), o.clone()));
    }
    repo.commit(cs).await.unwrap();
}

fn run(id: &str, mapping: &str) -> RunRecord {
    RunRecord {
        id: id.into(),
        mapping: mapping.into(),
        analyze: false,
        state: ReconState::Active,
        stage: ReconStage::ActiveInitialized,
        started: chrono::Utc::now(),
        ended: None,
        cancel_requested: false,
        message: None,
        parameters: json!({}),
        summary: json!({}),
        totals: json!({}),
        node_id: "node1".into(),
    }
}

fn link(id: &str, first: &str, second: &str) -> Link {
    Link {
        id: id.into(),
        rev: String::new(),
        link_type: "hr_user".into(),
        link_qualifier: "default".into(),
        first_id: first.into(),
        second_id: second.into(),
    }
}

/// The SQL translation answers exactly what the in-memory evaluator answers (docs/rest.md#the-query-language),
/// on data that exercises every rule: case, arrays, type mismatches, numbers, nesting, `pr`.
#[tokio::test]
async fn filters_match_the_in_memory_evaluator() {
    let db = TestDb::create().await;
    let repo = db.open().await;
    let objects = vec![
        json!({"name": "Jensen", "city": "apple", "school": "École", "age": 30, "active": true,
               "tags": ["A", "b", 3], "nested": {"x": [1, {"y": "Z"}]}}),
        json!({"name": "smith", "age": 30.0, "active": false, "tags": "a", "n": null}),
        json!({"name": 5, "age": "30", "tags": [["a"]], "nested": {"x": "q"}}),
        json!({"name": ["jensen", "X"], "age": [29, 31], "active": [true], "-1": "neg", "0": "zero"}),
        json!({"arr": ["p", "q"], "a": {"-1": 1}, "it's": "quoted"}),
        json!({}),
        json!({"name": "ζeta", "city": "Zürich", "age": -1.5e3, "big": 18446744073709551615u64}),
        json!({"name": "O'Brien", "mail": "OBRIEN@example.com", "age": 0.1}),
    ];
    load(&repo, "user", &objects).await;
    let stored: Vec<Value> = repo
        .query_objects("user", &QueryRequest::all())
        .await
        .unwrap()
        .results;
    assert_eq!(stored.len(), objects.len());
    let filters = [
        "true",
        "false",
        r#"name eq "jensen""#,
        r#"name eq "JENSEN""#,
        r#"!(name eq "jensen")"#,
        "name pr",
        "!(name pr)",
        "n pr",
        "!(n pr)",
        "age eq 30",
        "age gt 29",
        "age lt 30",
        r#"age ge "30""#,
        "active eq true",
        "active lt true",
        "!(active eq true)",
        r#"tags eq "a""#,
        "tags eq 3",
        r#"tags co "B""#,
        r#"name sw "J""#,
        r#"name co """#,
        r#"school eq "ÉCOLE""#,
        r#"school gt "ECOLE""#,
        r#"nested/x/1/y eq "z""#,
        "nested/x/0 eq 1",
        r#"nested/x eq "Q""#,
        r#"arr/-1 eq "q""#,
        r#"arr/1 eq "q""#,
        "a/-1 eq 1",
        r#"-1 eq "NEG""#,
        r#"0 eq "zero""#,
        r#"name lt "k" or age gt 100"#,
        r#"city ge "z""#,
        "big gt 1e19",
        "age le -1000",
        r#"!(tags eq "a" and age eq 30)"#,
        r#"name co "en" and !(city pr)"#,
        "age co 3",
        r#"name eq "o'brien""#,
        r#"mail sw "obrien@""#,
        "age lt 0.2",
        r#"_id eq "O0003""#,
        r#"_rev eq "1""#,
        r#"_id gt "o0005""#,
    ];
    let mut cases: Vec<(String, Filter)> = filters
        .iter()
        .map(|f| (f.to_string(), f.parse().unwrap()))
        .collect();
    // Names the grammar cannot spell: a quote (inlined SQL must be escaped), a leading blank.
    for (tokens, value) in [
        (vec!["it's"], json!("QUOTED")),
        (vec!["arr", " 1"], json!("q")),
    ] {
        let field = JsonPointer::from_tokens(tokens);
        cases.push((
            format!("{field} eq {value}"),
            Filter::Compare {
                field,
                op: idsync_core::CompareOp::Eq,
                value,
            },
        ));
    }
    for (text, filter) in cases {
        let want: Vec<&str> = stored
            .iter()
            .filter(|o| filter.matches(o))
            .map(|o| o["_id"].as_str().unwrap())
            .collect();
        let page = repo
            .query_objects("user", &QueryRequest::with_filter(filter.clone()))
            .await
            .unwrap();
        let got: Vec<&str> = page
            .results
            .iter()
            .map(|o| o["_id"].as_str().unwrap())
            .collect();
        assert_eq!(got, want, "filter {text}");
        assert_eq!(
            repo.count_objects("user", Some(&filter)).await.unwrap(),
            want.len() as u64,
            "{text}"
        );
    }
}

#[tokio::test]
async fn extended_operators_and_bad_cookies_are_bad_queries() {
    let db = TestDb::create().await;
    let repo = db.open().await;
    let q = QueryRequest::with_filter(r#"mail ew "x""#.parse().unwrap());
    assert!(matches!(
        repo.query_objects("user", &q).await,
        Err(RepoError::BadQuery(_))
    ));
    let q = QueryRequest {
        page_size: Some(2),
        cookie: Some("!!".into()),
        ..QueryRequest::default()
    };
    assert!(matches!(
        repo.query_objects("user", &q).await,
        Err(RepoError::BadQuery(_))
    ));
}

/// `userName eq "x"` — the correlation query — is an index scan once `ensure_indexes` ran.
#[tokio::test]
async fn correlation_query_uses_the_expression_index() {
    let db = TestDb::create().await;
    let repo = db.open().await;
    let mut cs = ChangeSet::new();
    for i in 0..20_000 {
        cs.push(create(
            "user",
            &format!("u{i}"),
            json!({"userName": format!("User{i}"), "mail": format!("u{i}@x")}),
        ));
    }
    repo.commit(cs).await.unwrap();
    repo.ensure_indexes("user", &["/userName".into()])
        .await
        .unwrap();
    repo.ensure_indexes("user", &["/userName".into()])
        .await
        .unwrap();
    let q = QueryRequest::with_filter(r#"userName eq "user42""#.parse().unwrap());
    let plan = repo.explain_query("user", &q).await.unwrap();
    assert!(
        plan.contains("Index") && !plan.contains("Seq Scan"),
        "{plan}"
    );
    let page = repo.query_objects("user", &q).await.unwrap();
    assert_eq!(page.results.len(), 1);
    assert_eq!(page.results[0]["userName"], "User42");
    // Without an index on mail the same query shape scans: the index is what makes the
    // difference, not the query.
    let q = QueryRequest::with_filter(r#"mail eq "u42@x""#.parse().unwrap());
    assert!(
        repo.explain_query("user", &q)
            .await
            .unwrap()
            .contains("Seq Scan")
    );
}

/// A first load grows `links` from empty while every page looks its ids up in one batch: the
/// lookup stays one index probe per id (no plan that filters every link of the type against
/// the array, which made a 1M-row first load quadratic), and the repository analyzes the table
/// once it has grown, so that cached plans of the other link statements are made again.
#[tokio::test]
async fn link_batch_lookup_stays_one_pass_as_links_grow() {
    let db = TestDb::create().await;
    let repo = db.open().await;
    let pg = idsync_repo::postgres::PgRepository::connect(&db.url)
        .await
        .unwrap();
    let (client, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    // Statistics taken while `links` is empty, as an autoanalyze (or an operator) at the start
    // of a first load leaves them: they make "one link type" look like a handful of rows.
    client.batch_execute("ANALYZE links").await.unwrap();
    let batch: usize = 1000;
    for b in 0..20 {
        // This page's ids: the first half already linked, the second half new.
        let ids: Vec<String> = ((b * batch).saturating_sub(batch / 2)..b * batch + batch / 2)
            .map(|i| format!("s{i}"))
            .collect();
        let found = repo.links_for_sources("hr_user", &ids).await.unwrap();
        assert_eq!(found.len(), if b == 0 { 0 } else { batch / 2 });
        assert!(found.iter().all(|l| ids.contains(&l.first_id)));
        let mut cs = ChangeSet::new();
        for i in b * batch..(b + 1) * batch {
            cs.push(Op::CreateLink(link(
                &format!("l{i:06}"),
                &format!("s{i}"),
                &format!("t{i}"),
            )));
        }
        repo.commit(cs).await.unwrap();
        // The point lookups of implicit sync run all along too (prepared statements).
        assert!(
            repo.link_by_first("hr_user", "default", &format!("s{}", b * batch))
                .await
                .unwrap()
                .is_some()
        );
    }
    let ids: Vec<String> = (19_500..20_500).map(|i| format!("s{i}")).collect();
    let mut with_dup = ids.clone();
    with_dup.push("s19600".into());
    assert_eq!(
        repo.links_for_sources("hr_user", &with_dup)
            .await
            .unwrap()
            .len(),
        500,
        "a repeated id is one link"
    );
    let targets: Vec<String> = (0..10).map(|i| format!("t{i}")).collect();
    assert_eq!(
        repo.links_for_targets("hr_user", &targets)
            .await
            .unwrap()
            .len(),
        10
    );
    for side in ["first_id", "second_id"] {
        let plan = pg.explain_links_for(side, "hr_user", &ids).await.unwrap();
        // One pass: probes of the side's own index, or one read of the type's links against
        // the hashed ids — never a loop that compares each id with every link (the plan the
        // old (type, qualifier, side) indexes got on these statistics: minutes per page).
        assert!(!plan.contains("Nested Loop"), "{plan}");
        assert_eq!(plan.matches(&format!("{side} = ANY")).count(), 1, "{plan}");
    }
    // The repository analyzed the grown table (its check runs in the background).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let analyzed: bool = client
            .query_one(
                "SELECT analyze_count + autoanalyze_count > 1 \
                 FROM pg_stat_user_tables WHERE relname = 'links'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if analyzed {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "links was never analyzed"
        );
        // Lookups are what give the repository the chance to look.
        repo.links_for_sources("hr_user", &ids).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Keyset pages return every object exactly once even when rows are inserted between pages,
/// for the id order and for sort keys in both directions; totals are exact.
#[tokio::test]
async fn keyset_pages_are_stable_under_inserts() {
    let db = TestDb::create().await;
    let repo = db.open().await;
    let objects: Vec<Value> = (0..250)
        .map(|i| json!({"n": i % 7, "s": format!("S{}", i % 11)}))
        .collect();
    load(&repo, "user", &objects).await;
    for sort in ["", "n", "-n,s", "-s,-_id"] {
        let sort_keys = SortKey::parse_list(sort);
        let mut seen = Vec::new();
        let mut cookie = None;
        let mut extra = 0;
        loop {
            let q = QueryRequest {
                sort_keys: sort_keys.clone(),
                page_size: Some(40),
                cookie: cookie.clone(),
                total_policy: TotalPolicy::Exact,
                ..QueryRequest::default()
            };
            let page = repo.query_objects("user", &q).await.unwrap();
            assert!(page.total.unwrap() >= 250);
            seen.extend(
                page.results
                    .iter()
                    .map(|o| o["_id"].as_str().unwrap().to_string()),
            );
            // A concurrent writer adds objects between pages.
            extra += 1;
            repo.commit(ChangeSet::new().with(create(
                "user",
                &format!("z-new-{sort}-{extra}"),
                json!({"n": 3, "s": "S5"}),
            )))
            .await
            .unwrap();
            match page.cookie {
                Some(c) => cookie = Some(c),
                None => break,
            }
        }
        let unique: HashSet<&String> = seen.iter().collect();
        assert_eq!(
            unique.len(),
            seen.len(),
            "sort {sort}: an object came twice"
        );
        for i in 0..250 {
            assert!(
                unique.contains(&format!("o{i:04}")),
                "sort {sort}: o{i:04} missing"
            );
        }
    }
    // The order itself: by n descending, then s descending.
    let q = QueryRequest {
        sort_keys: SortKey::parse_list("-n,-s"),
        ..QueryRequest::default()
    };
    let all = repo.query_objects("user", &q).await.unwrap().results;
    let keys: Vec<(i64, String)> = all
        .iter()
        .map(|o| {
            (
                o["n"].as_i64().unwrap(),
                o["s"].as_str().unwrap().to_lowercase(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(keys, sorted);
    // Offsets and _fields.
    let q = QueryRequest {
        fields: Some(vec![JsonPointer::parse("n")]),
        offset: Some(10),
        page_size: Some(5),
        ..QueryRequest::default()
    };
    let page = repo.query_objects("user", &q).await.unwrap();
    assert_eq!(page.results[0]["_id"], "o0010");
    assert_eq!(
        page.results[0],
        json!({"_id": "o0010", "_rev": "1", "n": 3})
    );
}

#[tokio::test]
async fn commits_are_atomic_and_revisions_checked() {
    let db = TestDb::create().await;
    let repo = db.open().await;
    let out = repo
        .commit(ChangeSet::new().with(create("user", "a", json!({"x": 1}))))
        .await
        .unwrap();
    assert_eq!(out.rev_of("user", "a"), Some("1"));
    let a = repo.get_object("user", "a").await.unwrap().unwrap();
    assert_eq!(a, json!({"_id": "a", "_rev": "1", "x": 1}));

    // A duplicate create rolls back the earlier ops of the same change set.
    let cs = ChangeSet::new()
        .with(create("user", "b", json!({})))
        .with(create("user", "a", json!({})));
    assert!(matches!(
        repo.commit(cs).await,
        Err(RepoError::Conflict(ConflictKind::AlreadyExists { .. }))
    ));
    assert!(repo.get_object("user", "b").await.unwrap().is_none());

    // A stale revision rolls back too.
    let cs = ChangeSet::new()
        .with(create("user", "b", json!({})))
        .with(Op::UpdateObject {
            object_type: "user".into(),
            id: "a".into(),
            expected_rev: Some("7".into()),
            value: json!({"x": 2}),
        });
    assert!(matches!(
        repo.commit(cs).await,
        Err(RepoError::RevisionMismatch { .. })
    ));
    assert!(repo.get_object("user", "b").await.unwrap().is_none());

    let out = repo
        .commit(ChangeSet::new().with(Op::UpdateObject {
            object_type: "user".into(),
            id: "a".into(),
            expected_rev: Some("1".into()),
            value: json!({"x": 2, "_rev": "99"}),
        }))
        .await
        .unwrap();
    assert_eq!(out.rev_of("user", "a"), Some("2"));
    assert_eq!(
        repo.get_object("user", "a").await.unwrap().unwrap(),
        json!({"_id": "a", "_rev": "2", "x": 2})
    );
    let missing = Op::DeleteObject {
        object_type: "user".into(),
        id: "zz".into(),
        expected_rev: None,
    };
    assert!(matches!(
        repo.commit(ChangeSet::new().with(missing)).await,
        Err(RepoError::NotFound(_))
    ));
    let del = Op::DeleteObject {
        object_type: "user".into(),
        id: "a".into(),
        expected_rev: Some("2".into()),
    };
    repo.commit(ChangeSet::new().with(del)).await.unwrap();
    assert!(repo.get_object("user", "a").await.unwrap().is_none());
}

/// Large pages go through binary COPY: an existing id still fails the whole change set with a
/// Conflict naming it, and a clean page is written whole. The page interleaves its writes per
/// object as a recon page does (object, link, audit entry), and replaces an existing link in
/// between (delete, then create on the same side): the order within a table is kept.
#[tokio::test]
async fn bulk_creates_by_copy_are_atomic() {
    let db = TestDb::create().await;
    let repo = db.open().await;
    repo.commit(
        ChangeSet::new()
            .with(create("user", "b0777", json!({})))
            .with(Op::CreateLink(link("old", "src-x", "b0777"))),
    )
    .await
    .unwrap();
    let page = |prefix: &str| {
        let mut cs = ChangeSet::new();
        for i in 0..1500 {
            let id = format!("{prefix}{i:04}");
            cs.push(create("user", &id, json!({"i": i})));
            if i == 700 {
                cs.push(Op::DeleteLink {
                    id: "old".into(),
                    expected_rev: None,
                });
                cs.push(Op::CreateLink(link(&format!("{prefix}-l"), "src-x", &id)));
            } else {
                cs.push(Op::CreateLink(link(
                    &format!("{prefix}-l{i}"),
                    &format!("src-{i}"),
                    &id,
                )));
            }
            cs.push(Op::AppendAudit(idsync_repo::AuditEntry {
                id: format!("{prefix}-audit{i}"),
                kind: idsync_repo::AuditKind::Recon,
                timestamp: chrono::Utc::now(),
                recon_id: Some("r".into()),
                mapping: None,
                entry_type: Some("entry".into()),
                entry: json!({"reconId": "r"}),
            }));
        }
        cs
    };
    match repo.commit(page("b")).await {
        Err(RepoError::Conflict(ConflictKind::AlreadyExists { id, .. })) => assert_eq!(id, "b0777"),
        other => panic!("{other:?}"),
    }
    assert_eq!(repo.count_objects("user", None).await.unwrap(), 1);
    let out = repo.commit(page("c")).await.unwrap();
    assert_eq!(out.object_revs.len(), 1500);
    assert_eq!(repo.count_objects("user", None).await.unwrap(), 1501);
    let c = repo.get_object("user", "c1499").await.unwrap().unwrap();
    assert_eq!(c, json!({"_id": "c1499", "_rev": "1", "i": 1499}));
    let q = QueryRequest::with_filter(r#"reconId eq "R""#.parse().unwrap());
    assert_eq!(
        repo.query_audit(idsync_repo::AuditKind::Recon, &q)
            .await
            .unwrap()
            .results
            .len(),
        1500
    );
    let links = repo
        .links_for_sources("hr_user", &["src-x".to_string(), "src-3".to_string()])
        .await
        .unwrap();
    let mut pairs: Vec<(String, String)> = links.into_iter().map(|l| (l.id, l.second_id)).collect();
    pairs.sort();
    assert_eq!(
        pairs,
        vec![
            ("c-l".to_string(), "c0700".to_string()),
            ("c-l3".to_string(), "c0003".to_string())
        ]
    );
}

/// A job re-claimed after its lease expired fences out the first claimer: its late commit
/// writes nothing.
#[tokio::test]
async fn fencing_refuses_commits_of_a_lost_lease() {
    let db = TestDb::create().await;
    let repo = db.open().await;
    repo.enqueue_job(&Job::new(
        "j1",
        "page",
        Some("r1".into()),
        json!({"cookie": null}),
    ))
    .await
    .unwrap();
    let first = repo
        .claim_next(&["page"], "n1", Duration::from_millis(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.token, 1);
    // Poll until the 1 ms lease has expired and another node re-claims the job.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let second = loop {
        if let Some(c) = repo
            .claim_next(&["page"], "n2", Duration::from_secs(60))
            .await
            .unwrap()
        {
            break c;
        }
        assert!(std::time::Instant::now() < deadline, "lease never expired");
    };
    assert_eq!(second.token, 2);
    assert_eq!(second.job.owner_node.as_deref(), Some("n2"));
    assert!(
        repo.claim_next(&["page"], "n3", Duration::from_secs(60))
            .await
            .unwrap()
            .is_none()
    );

    let late = ChangeSet::fenced("j1", first.token).with(create("user", "late", json!({})));
    assert!(matches!(
        repo.commit(late).await,
        Err(RepoError::StaleToken { .. })
    ));
    assert!(repo.get_object("user", "late").await.unwrap().is_none());
    assert!(matches!(
        repo.renew_lease("j1", first.token, Duration::from_secs(5))
            .await,
        Err(RepoError::StaleToken { .. })
    ));

    let mut counters = BTreeMap::new();
    counters.insert("processed".to_string(), 10);
    let done = ChangeSet::fenced("j1", second.token)
        .with(create("user", "ok", json!({})))
        .with(Op::AddRunCounters {
            run_id: "r1".into(),
            node_id: "n2".into(),
            counters: counters.clone(),
        })
        .with(Op::AddRunCounters {
            run_id: "r1".into(),
            node_id: "n2".into(),
            counters,
        })
        .with(Op::CompleteJob {
            job_id: "j1".into(),
        });
    repo.commit(done).await.unwrap();
    assert!(repo.get_object("user", "ok").await.unwrap().is_some());
    assert_eq!(repo.count_jobs("r1").await.unwrap(), 0);
    assert_eq!(
        repo.run_counters("r1").await.unwrap().totals["processed"],
        20
    );
}

/// While a fenced commit is in progress its job cannot be claimed by another node, even with
/// the lease expired, yet the owner's lease renewals go through instead of queueing behind the
/// commit. The commit is held open by a row it must wait for: an uncommitted insert of the same
/// object id on a connection of the test's own.
#[tokio::test]
async fn a_commit_in_progress_keeps_claimers_out_but_lets_renewals_through() {
    let db = TestDb::create().await;
    let repo = db.open().await;
    repo.enqueue_job(&Job::new("j1", "page", Some("r1".into()), json!({})))
        .await
        .unwrap();
    let owner = repo
        .claim_next(&["page"], "n1", Duration::from_millis(1))
        .await
        .unwrap()
        .unwrap();

    let (mut raw, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let blocker = raw.transaction().await.unwrap();
    blocker
        .execute(
            "INSERT INTO objects (object_type, id, rev, obj) VALUES ('user', 'x', 1, '{}')",
            &[],
        )
        .await
        .unwrap();

    let committing = {
        let repo = repo.clone();
        let cs = ChangeSet::fenced("j1", owner.token)
            .with(create("user", "x", json!({"by": "page"})))
            .with(Op::CompleteJob {
                job_id: "j1".into(),
            });
        tokio::spawn(async move { repo.commit(cs).await })
    };
    // Wait until the commit is blocked on the test's row (it then holds its fence lock).
    let (watch, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let waiting: i64 = watch
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO objects%'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if waiting > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the commit never blocked"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    assert!(
        repo.claim_next(&["page"], "n2", Duration::from_secs(60))
            .await
            .unwrap()
            .is_none(),
        "a job whose commit is in progress was claimed by another node"
    );
    tokio::time::timeout(
        Duration::from_secs(5),
        repo.renew_lease("j1", owner.token, Duration::from_secs(60)),
    )
    .await
    .expect("the renewal waited for the commit")
    .unwrap();

    blocker.rollback().await.unwrap();
    committing.await.unwrap().unwrap();
    assert_eq!(
        repo.get_object("user", "x").await.unwrap().unwrap()["by"],
        "page"
    );
    assert_eq!(repo.count_jobs("r1").await.unwrap(), 0);
}

/// Queue events run in the commit order of the transactions that wrote them
/// (docs/adr/0009-queue-commit-order.md), not in insert order and not by `createDate` (the
/// writer's clock): two transactions write an event of the same object, the first to insert
/// (with the earlier clock) commits last, and its event runs second.
#[tokio::test]
async fn queue_events_run_in_commit_order() {
    let db = TestDb::create().await;
    let repo = db.open().await;
    let connect = || async {
        let (client, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
    };
    let (mut a, mut b) = (connect().await, connect().await);
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap();
    let sql = "INSERT INTO syncqueue (id, rev, mapping, resource_id, resource_collection, \
        sync_action, state, remaining_retries, create_date_ns, context) \
        VALUES ($1, 1, 'm', 'u1', 'managed/user', 'notifyUpdate', 'PENDING', -1, $2, '{}')";
    let ta = a.transaction().await.unwrap();
    ta.execute(sql, &[&"inserted-first", &(now - 60_000_000_000)])
        .await
        .unwrap();
    let tb = b.transaction().await.unwrap();
    tb.execute(sql, &[&"inserted-second", &now]).await.unwrap();
    tb.commit().await.unwrap();
    ta.commit().await.unwrap();

    let polled = repo.acquire_events("m", "n1", 10).await.unwrap();
    assert_eq!(
        polled.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        vec!["inserted-second", "inserted-first"],
        "the event committed first runs first"
    );
    assert!(polled[0].seq < polled[1].seq, "{polled:?}");
}

/// Eight concurrent claimers over 200 jobs: every job is claimed exactly once.
#[tokio::test]
async fn concurrent_claims_never_share_a_job() {
    let db = TestDb::create().await;
    let repo = db.open().await;
    for i in 0..200 {
        repo.enqueue_job(&Job::new(format!("j{i:03}"), "page", None, json!({})))
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for w in 0..8 {
        let repo = repo.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while let Some(c) = repo
                .claim_next(
                    &["page", "other"],
                    &format!("n{w}"),
                    Duration::from_secs(60),
                )
                .await
                .unwrap()
            {
                mine.push(c.job.id);
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let unique: HashSet<&String> = all.iter().collect();
    assert_eq!(all.len(), 200);
    assert_eq!(unique.len(), 200);
    // A node's clean shutdown returns its claimed jobs; they are claimable again.
    let released = repo.release_jobs_of_node("n0").await.unwrap();
    let mut reclaimed = 0;
    while repo
        .claim_next(&["page"], "n9", Duration::from_secs(60))
        .await
        .unwrap()
        .is_some()
    {
        reclaimed += 1;
    }
    assert_eq!(reclaimed, released);
}

/// Two nodes starting runs of one mapping at once: exactly one wins; the other sees its id.
#[tokio::test]
async fn one_active_run_per_mapping_cluster_wide() {
    let db = TestDb::create().await;
    let a = db.open().await;
    let b = db.open().await;
    let (r1, r2) = (run("r1", "m"), run("r2", "m"));
    let (ra, rb) = tokio::join!(a.create_run(&r1), b.create_run(&r2));
    let (winner, err) = match (ra, rb) {
        (Ok(()), Err(e)) => ("r1", e),
        (Err(e), Ok(())) => ("r2", e),
        other => panic!("exactly one run must start: {other:?}"),
    };
    match err {
        RepoError::Conflict(ConflictKind::ActiveRun { active_run_id, .. }) => {
            assert_eq!(active_run_id, winner)
        }
        e => panic!("{e:?}"),
    }
    a.create_run(&run("r3", "other")).await.unwrap();
    assert!(a.request_cancel(winner).await.unwrap());
    let done = RunUpdate {
        state: Some(ReconState::Canceled),
        stage: Some(ReconStage::CompletedCanceled),
        ended: Some(chrono::Utc::now()),
        ..RunUpdate::default()
    };
    let r = a.update_run(winner, &done).await.unwrap();
    assert!(r.cancel_requested && r.state == ReconState::Canceled);
    assert!(!a.request_cancel(winner).await.unwrap());
    a.create_run(&run("r4", "m")).await.unwrap();
    assert_eq!(a.active_run("m").await.unwrap().unwrap().id, "r4");
    assert_eq!(
        a.list_runs(Some("m"))
            .await
            .unwrap()
            .iter()
            .map(|r| r.id.as_str())
            .collect::<Vec<_>>(),
        ["r4", winner]
    );
    assert!(matches!(
        a.request_cancel("nope").await,
        Err(RepoError::NotFound(_))
    ));
    a.update_run("r4", &done).await.unwrap();
    assert_eq!(a.prune_runs("m", 1).await.unwrap(), 1);
    assert!(a.get_run(winner).await.unwrap().is_none());
}

#[tokio::test]
async fn links_are_unique_per_side_and_batch_loadable() {
    let db = TestDb::create().await;
    let repo = db.open().await;
    let mut cs = ChangeSet::new();
    for i in 0..50 {
        cs.push(Op::CreateLink(link(
            &format!("l{i:02}"),
            &format!("s{i}"),
            &format!("t{i}"),
        )));
    }
    cs.push(Op::CreateLink(Link {
        link_qualifier: "other".into(),
        ..link("q1", "s1", "t1")
    }));
    repo.commit(cs).await.unwrap();
    let dup_first = ChangeSet::new().with(Op::CreateLink(link("x", "s1", "tx")));
    assert!(matches!(
        repo.commit(dup_first).await,
        Err(RepoError::Conflict(_))
    ));
    let dup_second = ChangeSet::new().with(Op::CreateLink(link("x", "sx", "t1")));
    assert!(matches!(
        repo.commit(dup_second).await,
        Err(RepoError::Conflict(_))
    ));
    assert!(repo.get_link("x").await.unwrap().is_none());

    assert_eq!(
        repo.link_by_first("hr_user", "default", "s7")
            .await
            .unwrap()
            .unwrap()
            .second_id,
        "t7"
    );
    assert_eq!(
        repo.link_by_second("hr_user", "other", "t1")
            .await
            .unwrap()
            .unwrap()
            .id,
        "q1"
    );
    let found = repo
        .links_for_sources("hr_user", &["s1".into(), "s2".into(), "nope".into()])
        .await
        .unwrap();
    assert_eq!(
        found.iter().map(|l| l.id.as_str()).collect::<Vec<_>>(),
        ["l01", "l02", "q1"]
    );
    let found = repo
        .links_for_targets("hr_user", &["t3".into()])
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    let mut after: Option<String> = None;
    let mut loaded = 0;
    loop {
        let batch = repo
            .load_links("hr_user", Some("default"), after.as_deref(), 7)
            .await
            .unwrap();
        if batch.is_empty() {
            break;
        }
        loaded += batch.len();
        after = batch.last().map(|l| l.id.clone());
    }
    assert_eq!(loaded, 50);
    assert_eq!(repo.count_links("hr_user").await.unwrap(), 51);

    let q =
        QueryRequest::with_filter(r#"linkQualifier eq "OTHER" and firstId pr"#.parse().unwrap());
    let page = repo.query_links(&q).await.unwrap();
    assert_eq!(
        page.results,
        vec![
            json!({"_id": "q1", "_rev": "1", "linkType": "hr_user", "linkQualifier": "other", "firstId": "s1", "secondId": "t1"})
        ]
    );

    let upd = Op::UpdateLink {
        link: link("l05", "s5", "t5b"),
        expected_rev: Some("1".into()),
    };
    let out = repo.commit(ChangeSet::new().with(upd)).await.unwrap();
    assert_eq!(out.link_revs, vec![("l05".to_string(), "2".to_string())]);
    let clash = Op::UpdateLink {
        link: link("l05", "s5", "t6"),
        expected_rev: None,
    };
    assert!(matches!(
        repo.commit(ChangeSet::new().with(clash)).await,
        Err(RepoError::Conflict(_))
    ));
    let del = Op::DeleteLink {
        id: "l05".into(),
        expected_rev: Some("1".into()),
    };
    assert!(matches!(
        repo.commit(ChangeSet::new().with(del)).await,
        Err(RepoError::RevisionMismatch { .. })
    ));
}

#[tokio::test]
async fn registry_tokens_nodes_and_locks() {
    let db = TestDb::create().await;
    let repo = db.open().await;
    let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    repo.commit(
        ChangeSet::new()
            .with(Op::RegisterTargetIds {
                run_id: "r".into(),
                ids: ids(&["a", "b", "b"]),
            })
            .with(Op::SetSyncToken {
                source: "system/x/account".into(),
                token: json!({"t": 5}),
            }),
    )
    .await
    .unwrap();
    assert_eq!(
        repo.claimed_among("r", &ids(&["c", "b", "a"]))
            .await
            .unwrap(),
        ids(&["b", "a"])
    );
    assert_eq!(
        repo.unclaimed_target_ids("r", &ids(&["c", "b", "d"]))
            .await
            .unwrap(),
        ids(&["c", "d"])
    );
    assert_eq!(repo.count_registered("r").await.unwrap(), 2);
    assert_eq!(repo.delete_registry("r").await.unwrap(), 2);
    assert_eq!(
        repo.get_sync_token("system/x/account").await.unwrap(),
        Some(json!({"t": 5}))
    );

    let t0 = chrono::Utc::now();
    repo.heartbeat("n1", "h", t0).await.unwrap();
    repo.heartbeat("n1", "h", t0 + chrono::Duration::seconds(2))
        .await
        .unwrap();
    let nodes = repo.list_nodes().await.unwrap();
    assert_eq!(nodes[0].startup, t0);
    assert_eq!(nodes[0].last_heartbeat, t0 + chrono::Duration::seconds(2));
    repo.set_node_state("n1", idsync_repo::NodeState::Down)
        .await
        .unwrap();
    assert!(repo.list_nodes().await.unwrap()[0].shutdown.is_some());

    let t1 = repo
        .try_acquire_lock("queue/m1", "n1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        repo.try_acquire_lock("queue/m1", "n1").await.unwrap(),
        Some(t1)
    );
    assert_eq!(repo.try_acquire_lock("queue/m1", "n2").await.unwrap(), None);
    assert!(!repo.release_lock("queue/m1", "n2").await.unwrap());
    assert_eq!(repo.locks_of_node("n1").await.unwrap().len(), 1);
    assert_eq!(repo.release_locks_of_node("n1").await.unwrap(), 1);
    assert!(
        repo.try_acquire_lock("queue/m1", "n2")
            .await
            .unwrap()
            .unwrap()
            > t1
    );
}

#[tokio::test]
async fn migrations_apply_once_when_nodes_start_together() {
    let db = TestDb::create().await;
    let (a, b, c) = tokio::join!(
        idsync_repo::open(&db.url),
        idsync_repo::open(&db.url),
        idsync_repo::open(&db.url)
    );
    a.unwrap();
    b.unwrap();
    c.unwrap();
    let repo = db.open().await;
    assert_eq!(repo.backend(), "postgres");
}

/// The shared conformance suite: each case gets a `Pg` value that owns the databases its
/// `fresh()` calls created, and drops them when the case ends (also on panic).
struct Pg {
    dbs: std::sync::Mutex<Vec<TestDb>>,
}

impl Pg {
    fn new() -> Self {
        Pg {
            dbs: std::sync::Mutex::new(Vec::new()),
        }
    }
}

#[async_trait::async_trait]
impl idsync_repo::testsuite::Backend for Pg {
    async fn fresh(&self) -> (Arc<dyn Repository>, String) {
        let db = TestDb::create().await;
        let repo = db.open().await;
        let url = db.url.clone();
        self.dbs.lock().unwrap().push(db);
        (repo, url)
    }
}

mod conformance {
    use super::Pg;
    idsync_repo::conformance_suite!(Pg::new());
}

/// A database of its own per test, dropped on drop (also when the test panics).
struct TestDb {
    name: String,
    url: String,
    admin_url: String,
}

impl TestDb {
    async fn create() -> Self {
        let admin_url = std::env::var("IDSYNC_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
        let (client, conn) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| {
                panic!("these tests need PostgreSQL at {admin_url} (set IDSYNC_TEST_PG_URL): {e}")
            });
        tokio::spawn(conn);
        let name = format!("idsync_test_{}", uuid::Uuid::new_v4().simple());
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let url = with_database(&admin_url, &name);
        TestDb {
            name,
            url,
            admin_url,
        }
    }

    async fn open(&self) -> Arc<dyn Repository> {
        idsync_repo::open(&self.url).await.unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime: use a thread with its own runtime.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let (client, conn) =
                    tokio_postgres::connect(&admin_url, tokio_postgres::NoTls).await?;
                tokio::spawn(conn);
                client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}: {dropped:?}", self.name);
        }
    }
}

/// The same server URL with another database name.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    format!("{}/{db}{query}", &base[..host_end])
}
