//! Managed objects: CRUD and revisions, atomic change sets, CREST queries (differential filter
//! test against `Filter::matches`, keyset paging under concurrent inserts, sort keys, fields,
//! offsets, totals) and index use.

use super::Backend;
use super::data::{Lcg, create, one, user};
use crate::changes::{ChangeSet, Op};
use crate::error::{ConflictKind, RepoError};
use crate::repository::Repository;
use idsync_core::{Filter, JsonPointer, QueryRequest, SortKey, TotalPolicy};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

fn ids(results: &[Value]) -> Vec<String> {
    results
        .iter()
        .map(|v| v["_id"].as_str().unwrap().to_string())
        .collect()
}

async fn seed(
    repo: &Arc<dyn Repository>,
    ty: &str,
    n: usize,
    seed: u64,
) -> BTreeMap<String, Value> {
    let mut r = Lcg(seed);
    let mut cs = ChangeSet::new();
    let mut all = BTreeMap::new();
    for i in 0..n {
        let id = format!("u{i:05}");
        let v = user(&mut r, i);
        let mut stored = v.clone();
        stored["_id"] = json!(id);
        stored["_rev"] = json!("1");
        all.insert(id.clone(), stored);
        cs.push(create(ty, &id, v));
    }
    repo.commit(cs).await.unwrap();
    all
}

pub async fn objects_crud(b: &dyn Backend) {
    let (repo, _) = b.fresh().await;
    let out = repo
        .commit(one(create("user", "1", json!({"userName": "a"}))))
        .await
        .unwrap();
    assert_eq!(out.rev_of("user", "1"), Some("1"));
    let got = repo.get_object("user", "1").await.unwrap().unwrap();
    assert_eq!(got, json!({"userName": "a", "_id": "1", "_rev": "1"}));
    assert!(repo.get_object("role", "1").await.unwrap().is_none());
    assert!(repo.get_object("user", "2").await.unwrap().is_none());

    let dup = repo.commit(one(create("user", "1", json!({})))).await;
    assert!(matches!(
        dup,
        Err(RepoError::Conflict(ConflictKind::AlreadyExists { .. }))
    ));

    let upd = |rev: Option<&str>, v: Value| Op::UpdateObject {
        object_type: "user".into(),
        id: "1".into(),
        expected_rev: rev.map(str::to_string),
        value: v,
    };
    let out = repo
        .commit(one(upd(Some("1"), json!({"userName": "b"}))))
        .await
        .unwrap();
    assert_eq!(out.rev_of("user", "1"), Some("2"));
    let stale = repo
        .commit(one(upd(Some("1"), json!({"userName": "c"}))))
        .await;
    assert!(
        matches!(stale, Err(RepoError::RevisionMismatch { .. })),
        "{stale:?}"
    );
    let out = repo
        .commit(one(upd(None, json!({"userName": "d"}))))
        .await
        .unwrap();
    assert_eq!(out.rev_of("user", "1"), Some("3"));
    let got = repo.get_object("user", "1").await.unwrap().unwrap();
    assert_eq!(got, json!({"userName": "d", "_id": "1", "_rev": "3"}));

    let missing = Op::UpdateObject {
        object_type: "user".into(),
        id: "nope".into(),
        expected_rev: None,
        value: json!({}),
    };
    assert!(matches!(
        repo.commit(one(missing)).await,
        Err(RepoError::NotFound(_))
    ));

    repo.commit(one(create("user", "2", json!({"x": 1}))))
        .await
        .unwrap();
    let many = repo
        .get_objects("user", &["2".into(), "1".into(), "zz".into()])
        .await
        .unwrap();
    let mut got = ids(&many);
    got.sort();
    assert_eq!(got, vec!["1", "2"]);

    let del = |rev: Option<&str>| Op::DeleteObject {
        object_type: "user".into(),
        id: "1".into(),
        expected_rev: rev.map(str::to_string),
    };
    assert!(matches!(
        repo.commit(one(del(Some("2")))).await,
        Err(RepoError::RevisionMismatch { .. })
    ));
    repo.commit(one(del(Some("3")))).await.unwrap();
    assert!(repo.get_object("user", "1").await.unwrap().is_none());
    assert!(matches!(
        repo.commit(one(del(None))).await,
        Err(RepoError::NotFound(_))
    ));
    assert_eq!(repo.count_objects("user", None).await.unwrap(), 1);
}

pub async fn change_set_is_atomic(b: &dyn Backend) {
    let (repo, _) = b.fresh().await;
    repo.commit(one(create("user", "exists", json!({}))))
        .await
        .unwrap();
    let cs = ChangeSet::new()
        .with(create("user", "new1", json!({})))
        .with(Op::CreateLink(super::data::link(
            "l1", "m", "default", "new1", "t1",
        )))
        .with(create("user", "exists", json!({})));
    assert!(matches!(repo.commit(cs).await, Err(RepoError::Conflict(_))));
    assert!(repo.get_object("user", "new1").await.unwrap().is_none());
    assert!(repo.get_link("l1").await.unwrap().is_none());

    // A later revision mismatch rolls back earlier writes too.
    let cs = ChangeSet::new()
        .with(create("user", "new2", json!({})))
        .with(Op::UpdateObject {
            object_type: "user".into(),
            id: "exists".into(),
            expected_rev: Some("9".into()),
            value: json!({}),
        });
    assert!(matches!(
        repo.commit(cs).await,
        Err(RepoError::RevisionMismatch { .. })
    ));
    assert!(repo.get_object("user", "new2").await.unwrap().is_none());
    assert_eq!(repo.count_objects("user", None).await.unwrap(), 1);
}

/// Many change sets committed at once (as queue workers and recon pages do): each is atomic on
/// its own — the failing ones leave nothing behind, and they take none of the others with them.
pub async fn concurrent_change_sets_stay_atomic_each(b: &dyn Backend) {
    let (repo, _) = b.fresh().await;
    repo.commit(one(create("user", "taken", json!({}))))
        .await
        .unwrap();
    let commits = (0..40).map(|i| {
        let repo = repo.clone();
        async move {
            let mut cs = ChangeSet::new()
                .with(create("user", &format!("c{i:02}"), json!({"i": i})))
                .with(Op::CreateLink(super::data::link(
                    &format!("l{i:02}"),
                    "m",
                    "default",
                    &format!("c{i:02}"),
                    &format!("t{i:02}"),
                )));
            if i % 5 == 0 {
                cs.push(create("user", "taken", json!({})));
            }
            (i, repo.commit(cs).await)
        }
    });
    for (i, outcome) in futures::future::join_all(commits).await {
        let (object, link) = (
            repo.get_object("user", &format!("c{i:02}")).await.unwrap(),
            repo.get_link(&format!("l{i:02}")).await.unwrap(),
        );
        if i % 5 == 0 {
            assert!(
                matches!(outcome, Err(RepoError::Conflict(_))),
                "{i}: {outcome:?}"
            );
            assert!(object.is_none() && link.is_none(), "{i} left writes behind");
        } else {
            assert!(outcome.is_ok(), "{i}: {outcome:?}");
            assert_eq!(object.unwrap()["i"], json!(i));
            assert!(link.is_some(), "{i} lost its link");
        }
    }
    assert_eq!(repo.count_objects("user", None).await.unwrap(), 1 + 32);
}

pub async fn managed_write_and_event_are_atomic(b: &dyn Backend) {
    let (repo, _) = b.fresh().await;
    let ev = super::data::event("e1", "m", "u1");
    let cs = ChangeSet::new()
        .with(create("user", "u1", json!({"a": 1})))
        .with(Op::EnqueueSyncEvent(ev.clone()))
        .with(Op::DeleteObject {
            object_type: "user".into(),
            id: "missing".into(),
            expected_rev: None,
        });
    assert!(repo.commit(cs).await.is_err());
    assert!(repo.get_object("user", "u1").await.unwrap().is_none());
    assert!(repo.get_event("e1").await.unwrap().is_none());

    let cs = ChangeSet::new()
        .with(create("user", "u1", json!({"a": 1})))
        .with(Op::EnqueueSyncEvent(ev));
    repo.commit(cs).await.unwrap();
    assert!(repo.get_object("user", "u1").await.unwrap().is_some());
    let e = repo.get_event("e1").await.unwrap().unwrap();
    assert_eq!(e.new_object, Some(json!({"a": 2})));
    assert_eq!(e.rev, "1");
}

pub async fn paging_is_stable_under_concurrent_inserts(b: &dyn Backend) {
    let (repo, _) = b.fresh().await;
    let before = seed(&repo, "user", 600, 7).await;
    for sort in [
        vec![],
        vec![SortKey::parse("userName")],
        vec![SortKey::parse("-age"), SortKey::parse("name")],
    ] {
        let writer = {
            let repo = repo.clone();
            tokio::spawn(async move {
                for batch in 0..20 {
                    let mut cs = ChangeSet::new();
                    for i in 0..15 {
                        let id = format!("new-{}-{batch}-{i}", uuid::Uuid::new_v4());
                        cs.push(create(
                            "user",
                            &id,
                            json!({"userName": format!("m{i}"), "age": i, "name": "x"}),
                        ));
                    }
                    repo.commit(cs).await.unwrap();
                    tokio::task::yield_now().await;
                }
            })
        };
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        let mut q = QueryRequest {
            page_size: Some(37),
            sort_keys: sort.clone(),
            ..QueryRequest::default()
        };
        let mut pages = 0;
        loop {
            let page = repo.query_objects("user", &q).await.unwrap();
            assert!(page.results.len() <= 37);
            for id in ids(&page.results) {
                *seen.entry(id).or_default() += 1;
            }
            pages += 1;
            assert!(pages < 1000, "paging does not end");
            match page.cookie {
                Some(c) => q.cookie = Some(c),
                None => break,
            }
        }
        writer.await.unwrap();
        for id in before.keys() {
            assert_eq!(
                seen.get(id),
                Some(&1),
                "object {id} seen {:?} times (sort {sort:?})",
                seen.get(id)
            );
        }
        assert!(
            seen.values().all(|n| *n == 1),
            "an object was returned twice"
        );
    }
}

/// Filters covering every operator and combinator over the generated data.
fn filters() -> Vec<String> {
    let fields = [
        "userName",
        "name",
        "age",
        "score",
        "active",
        "tags",
        "manager/id",
        "manager/level",
        "manager/x/y",
        "mixed",
        "missing",
        "tags/0",
        "obj",
        "_id",
    ];
    let values = [
        "\"alice\"",
        "\"ALI\"",
        "\"Émile\"",
        "\"10\"",
        "\"\"",
        "\"a'quote\"",
        "'Bob smith'",
        "10",
        "10.5",
        "0",
        "-3",
        "3.25",
        "true",
        "false",
        "\"STRASSE\"",
        "\"straße\"",
    ];
    let ops = ["eq", "co", "sw", "lt", "le", "gt", "ge"];
    let mut out = Vec::new();
    for f in fields {
        out.push(format!("/{f} pr"));
        out.push(format!("!({f} pr)"));
        for op in ops {
            for v in values {
                out.push(format!("{f} {op} {v}"));
            }
        }
    }
    out.extend(
        [
            "true",
            "false",
            "!(true)",
            "userName sw \"al\" and age gt 20",
            "name eq \"alice\" or active eq true",
            "!(name eq \"alice\")",
            "!(age lt 30 or tags eq \"bob\")",
            "(age ge 10 and age le 40) or !(score pr)",
            "!(mixed eq 3) and !(mixed eq \"alice\")",
            "manager/level gt 2 and !(manager/x/y pr)",
            "tags co \"li\" and tags eq 5",
            "!(tags co \"li\")",
            "/manager/id eq \"ALICE\" or (active eq false and !(age pr))",
            // Several string equalities of one field in an `or` (a batched correlation) are
            // translated as one set test per field.
            "userName eq \"alice\" or userName eq \"ALI\" or userName eq \"Émile\" or name eq \"x\" or userName eq \"straße\"",
            "tags eq \"alice\" or tags eq \"BOB\" or tags eq 5 or age gt 30",
            "!(userName eq \"alice\" or userName eq \"STRASSE\")",
            "name eq \"alice\" or name eq \"Bob smith\" or name eq \"\" or mixed eq \"alice\" or mixed eq \"10\" or mixed eq 3",
            "manager/id eq \"alice\" or manager/id eq \"bob\" or missing eq \"a\" or missing eq \"b\"",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    let mut r = Lcg(99);
    let leaves = out.clone();
    for _ in 0..150 {
        let a = r.pick(&leaves).clone();
        let b = r.pick(&leaves).clone();
        out.push(match r.below(4) {
            0 => format!("({a}) and ({b})"),
            1 => format!("({a}) or ({b})"),
            2 => format!("!(({a}) and !({b}))"),
            _ => format!("!(({a}) or ({b}))"),
        });
    }
    out
}

/// The fields `filters()` compares, as pointers.
const FILTER_FIELDS: [&str; 13] = [
    "/userName",
    "/name",
    "/age",
    "/score",
    "/active",
    "/tags",
    "/manager/id",
    "/manager/level",
    "/manager/x/y",
    "/mixed",
    "/missing",
    "/tags/0",
    "/obj",
];

/// Every filter of `filters()` gives what the in-memory evaluator gives on `all`.
async fn check_filters(repo: &Arc<dyn Repository>, all: &BTreeMap<String, Value>, stage: &str) {
    let mut checked = 0;
    for text in filters() {
        let filter: Filter = text.parse().unwrap_or_else(|e| panic!("{text}: {e:?}"));
        let expected: Vec<String> = all
            .iter()
            .filter(|(_, v)| filter.matches(v))
            .map(|(k, _)| k.clone())
            .collect();
        let page = repo
            .query_objects("user", &QueryRequest::with_filter(filter.clone()))
            .await
            .unwrap_or_else(|e| panic!("{stage}: {text}: {e}"));
        let mut got = ids(&page.results);
        got.sort();
        assert_eq!(got, expected, "{stage}: filter {text}");
        assert_eq!(
            repo.count_objects("user", Some(&filter)).await.unwrap(),
            expected.len() as u64,
            "{stage}: count {text}"
        );
        checked += 1;
    }
    assert!(checked > 1000);
}

pub async fn filter_matches_in_memory_evaluator(b: &dyn Backend) {
    let (repo, _) = b.fresh().await;
    let mut all = seed(&repo, "user", 300, 42).await;
    check_filters(&repo, &all, "no index").await;
    // The same with every compared field indexed (built over the existing objects), and again
    // after updates and deletes have changed the indexed values.
    let props: Vec<String> = FILTER_FIELDS.iter().map(|f| f.to_string()).collect();
    repo.ensure_indexes("user", &props).await.unwrap();
    check_filters(&repo, &all, "indexed").await;
    let mut r = Lcg(7);
    let mut cs = ChangeSet::new();
    for (n, id) in all
        .keys()
        .cloned()
        .collect::<Vec<_>>()
        .into_iter()
        .enumerate()
    {
        match n % 3 {
            0 => {
                cs.push(Op::DeleteObject {
                    object_type: "user".into(),
                    id: id.clone(),
                    expected_rev: None,
                });
                all.remove(&id);
            }
            1 => {
                let v = user(&mut r, n + 1000);
                let mut stored = v.clone();
                stored["_id"] = json!(id);
                stored["_rev"] = json!("2");
                all.insert(id.clone(), stored);
                cs.push(Op::UpdateObject {
                    object_type: "user".into(),
                    id,
                    expected_rev: None,
                    value: v,
                });
            }
            _ => {}
        }
    }
    repo.commit(cs).await.unwrap();
    check_filters(&repo, &all, "indexed, after updates and deletes").await;
    // Hand-checked anchors, so a shared bug in the evaluator and the backend cannot hide.
    let (repo, _) = b.fresh().await;
    let cs = ChangeSet::new()
        .with(create(
            "t",
            "a",
            json!({"n": "Alice", "tags": ["X", 5], "m": {"k": 2}}),
        ))
        .with(create("t", "b", json!({"n": "bob", "tags": "x", "v": 2.0})))
        .with(create("t", "c", json!({"n": null, "tags": [], "v": true})));
    repo.commit(cs).await.unwrap();
    for (f, want) in [
        ("n eq \"ALICE\"", vec!["a"]),
        ("tags eq \"x\"", vec!["a", "b"]),
        ("tags eq 5", vec!["a"]),
        ("m/k ge 2", vec!["a"]),
        ("v eq 2", vec!["b"]),
        ("v eq true", vec!["c"]),
        ("n pr", vec!["a", "b"]),
        ("!(n pr)", vec!["c"]),
        ("n lt \"B\"", vec!["a"]),
        ("n co \"LI\"", vec!["a"]),
        ("n sw \"bo\"", vec!["b"]),
        ("v gt 1", vec!["b"]),
        ("!(v gt 1)", vec!["a", "c"]),
    ] {
        let q = QueryRequest::with_filter(f.parse().unwrap());
        let mut got = ids(&repo.query_objects("t", &q).await.unwrap().results);
        got.sort();
        assert_eq!(got, want, "{f}");
    }
}

pub async fn sort_fields_offsets_totals(b: &dyn Backend) {
    let (repo, _) = b.fresh().await;
    let mut cs = ChangeSet::new();
    for (id, name, age) in [
        ("a", "carol", 30),
        ("b", "alice", 30),
        ("c", "bob", 20),
        ("d", "dave", 40),
        ("e", "eve", 20),
    ] {
        cs.push(create(
            "user",
            id,
            json!({"name": name, "age": age, "extra": {"x": id}}),
        ));
    }
    cs.push(create("role", "r", json!({"name": "admin"})));
    repo.commit(cs).await.unwrap();
    let q = |sort: &str| QueryRequest {
        sort_keys: SortKey::parse_list(sort),
        ..QueryRequest::default()
    };
    let got = ids(&repo
        .query_objects("user", &q("name"))
        .await
        .unwrap()
        .results);
    assert_eq!(got, vec!["b", "c", "a", "d", "e"]);
    let got = ids(&repo
        .query_objects("user", &q("-name"))
        .await
        .unwrap()
        .results);
    assert_eq!(got, vec!["e", "d", "a", "c", "b"]);
    let got = ids(&repo
        .query_objects("user", &q("age,-name"))
        .await
        .unwrap()
        .results);
    assert_eq!(got, vec!["e", "c", "a", "b", "d"]);
    let got = ids(&repo
        .query_objects("user", &q("-age,_id"))
        .await
        .unwrap()
        .results);
    assert_eq!(got, vec!["d", "a", "b", "c", "e"]);

    // Paged with a descending multi-key sort.
    let mut qq = q("-age,name");
    qq.page_size = Some(2);
    let mut all = Vec::new();
    loop {
        let p = repo.query_objects("user", &qq).await.unwrap();
        all.extend(ids(&p.results));
        match p.cookie {
            Some(c) => qq.cookie = Some(c),
            None => break,
        }
    }
    assert_eq!(all, vec!["d", "b", "a", "c", "e"]);

    // Fields: _id and _rev are always returned.
    let mut qf = q("_id");
    qf.fields = Some(vec![
        JsonPointer::parse("name"),
        JsonPointer::parse("extra/x"),
    ]);
    let p = repo.query_objects("user", &qf).await.unwrap();
    assert_eq!(
        p.results[0],
        json!({"_id": "a", "_rev": "1", "name": "carol", "extra": {"x": "a"}})
    );
    let p = repo
        .query_objects("user", &QueryRequest::all_ids())
        .await
        .unwrap();
    assert_eq!(p.results[0], json!({"_id": "a", "_rev": "1"}));
    // Ids only, sorted and paged by another field, after a write: the current revisions.
    let a = repo.get_object("user", "a").await.unwrap().unwrap();
    repo.commit(one(Op::UpdateObject {
        object_type: "user".into(),
        id: "a".into(),
        expected_rev: None,
        value: a,
    }))
    .await
    .unwrap();
    let mut qi = q("name");
    qi.fields = Some(vec![JsonPointer::parse("_id"), JsonPointer::parse("_rev")]);
    qi.page_size = Some(2);
    let mut got = Vec::new();
    loop {
        let p = repo.query_objects("user", &qi).await.unwrap();
        got.extend(p.results);
        match p.cookie {
            Some(c) => qi.cookie = Some(c),
            None => break,
        }
    }
    let revs: Vec<(String, String)> = got
        .iter()
        .map(|v| {
            (
                v["_id"].as_str().unwrap().into(),
                v["_rev"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        got.iter().map(|v| v.as_object().unwrap().len()).max(),
        Some(2)
    );
    assert_eq!(
        revs.iter()
            .find(|(id, _)| id == "a")
            .map(|(_, r)| r.as_str()),
        Some("2")
    );
    assert_eq!(revs.len(), 5);

    // Offsets and exact totals.
    let mut qo = q("name");
    qo.offset = Some(3);
    qo.total_policy = TotalPolicy::Exact;
    let p = repo.query_objects("user", &qo).await.unwrap();
    assert_eq!(ids(&p.results), vec!["d", "e"]);
    assert_eq!(p.total, Some(5));
    qo.page_size = Some(1);
    qo.offset = Some(1);
    qo.filter = Some("age eq 20 or age eq 30".parse().unwrap());
    let p = repo.query_objects("user", &qo).await.unwrap();
    assert_eq!(ids(&p.results), vec!["c"]);
    assert_eq!(p.total, Some(4));
    assert!(p.cookie.is_some());
    let p = repo
        .query_objects("user", &QueryRequest::all())
        .await
        .unwrap();
    assert_eq!(p.total, None);
    assert_eq!(p.cookie, None);
    assert_eq!(repo.count_objects("role", None).await.unwrap(), 1);
}

pub async fn bad_queries_are_rejected(b: &dyn Backend) {
    let (repo, _) = b.fresh().await;
    repo.commit(one(create("user", "a", json!({"n": "x"}))))
        .await
        .unwrap();
    let q = QueryRequest::with_filter("n ew \"x\"".parse().unwrap());
    assert!(matches!(
        repo.query_objects("user", &q).await,
        Err(RepoError::BadQuery(_))
    ));
    let q = QueryRequest {
        cookie: Some("not a cookie!".into()),
        page_size: Some(1),
        ..QueryRequest::default()
    };
    assert!(matches!(
        repo.query_objects("user", &q).await,
        Err(RepoError::BadQuery(_))
    ));
}

/// Whether a query plan reads what `ensure_indexes` built (see the module doc of `testsuite`).
fn uses_index(plan: &str) -> bool {
    let lower = plan.to_lowercase();
    lower.contains("ix_obj") || lower.contains("object_keys")
}

pub async fn eq_query_uses_index(b: &dyn Backend) {
    let (repo, _) = b.fresh().await;
    let mut cs = ChangeSet::new();
    for i in 0..3000 {
        cs.push(create(
            "user",
            &format!("{i}"),
            json!({"userName": format!("User{i}"), "mail": format!("u{i}@x")}),
        ));
    }
    repo.commit(cs).await.unwrap();
    repo.ensure_indexes("user", &["/userName".to_string()])
        .await
        .unwrap();
    repo.ensure_indexes("user", &["/userName".to_string()])
        .await
        .unwrap();
    let q = QueryRequest::with_filter("userName eq \"user17\"".parse().unwrap());
    let plan = repo.explain_query("user", &q).await.unwrap();
    eprintln!("{} plan for userName eq:\n{plan}", repo.backend());
    assert!(uses_index(&plan), "plan does not use the index:\n{plan}");
    let p = repo.query_objects("user", &q).await.unwrap();
    assert_eq!(ids(&p.results), vec!["17"]);
    // A batched correlation: the `or` of many equalities is one index lookup per value.
    let many = (0..500)
        .map(|i| format!("userName eq \"USER{}\"", i * 7))
        .collect::<Vec<_>>()
        .join(" or ");
    let q = QueryRequest::with_filter(many.parse().unwrap());
    let plan = repo.explain_query("user", &q).await.unwrap();
    eprintln!(
        "{} plan for an or of 500 userName eq:\n{plan}",
        repo.backend()
    );
    let lower = plan.to_lowercase();
    assert!(
        uses_index(&plan) && !lower.contains("seq scan") && !lower.contains("scan objects"),
        "plan does not use the index:\n{plan}"
    );
    let p = repo.query_objects("user", &q).await.unwrap();
    let mut got = ids(&p.results);
    got.sort();
    let mut want: Vec<String> = (0..500)
        .map(|i| i * 7)
        .filter(|n| *n < 3000)
        .map(|n| n.to_string())
        .collect();
    want.sort();
    assert_eq!(got, want);
    let ids_all: BTreeSet<String> = ids(&repo
        .query_objects(
            "user",
            &QueryRequest::with_filter("userName sw \"USER29\"".parse().unwrap()),
        )
        .await
        .unwrap()
        .results)
    .into_iter()
    .collect();
    assert_eq!(ids_all.len(), 1 + 10 + 100);
}
