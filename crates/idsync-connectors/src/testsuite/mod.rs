//! The connector conformance suite: one set of behaviour checks that every `ObjectSet`
//! implementation must pass against its real backend (CSV file, PostgreSQL, MariaDB, SQLite,
//! slapd). Compiled only for tests or with the `testsuite` feature; it panics on a failed check,
//! like any test.
//!
//! The suite works on an object type with the string properties `userName`, `givenName`, `sn`,
//! `mail` and `description` (see [`account_object_types`]); a connector whose objects need more
//! (an LDAP DN) adds it in [`SuiteOptions::prepare`]. It expects the object set to be empty when
//! it starts and leaves it empty when every check passes.
//!
//! Use: `idsync_connectors::testsuite::run_all(set, &SuiteOptions::default()).await`.

use crate::contract::{ConnectorError, ObjectSet};
use idsync_core::{Filter, JsonPointer, QueryRequest, SortKey, TotalPolicy};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

/// The property names the suite reads and writes.
pub const PROPERTIES: [&str; 5] = ["userName", "givenName", "sn", "mail", "description"];

/// An `objectTypes` block with an `account` type holding the suite's properties under their own
/// names (CSV columns, SQL columns).
pub fn account_object_types() -> Value {
    let props: serde_json::Map<String, Value> = PROPERTIES
        .iter()
        .map(|p| ((*p).to_owned(), json!({"type": "string", "nativeName": p})))
        .collect();
    json!({"account": {"nativeType": "__ACCOUNT__", "properties": props}})
}

type Prepare = Box<dyn Fn(&str, Value) -> Value + Send + Sync>;

/// What the suite must know about the connector under test.
pub struct SuiteOptions {
    /// Completes an object before it is created or updated: gets the suite's userName and the
    /// object with the suite properties; returns what the connector needs (identity by default).
    pub prepare: Prepare,
    /// Extended operators the connector must refuse with `BadRequest`.
    pub unsupported_operators: Vec<&'static str>,
    /// Whether the connector honours `_sortKeys`.
    pub supports_sort: bool,
    /// Whether `count()` must return a number.
    pub counts: bool,
    /// Whether `create` honours a client-assigned id.
    pub client_ids: bool,
    /// Number of objects seeded for the query checks.
    pub seed: usize,
}

impl std::fmt::Debug for SuiteOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SuiteOptions")
            .field("unsupported_operators", &self.unsupported_operators)
            .field("supports_sort", &self.supports_sort)
            .field("counts", &self.counts)
            .field("client_ids", &self.client_ids)
            .field("seed", &self.seed)
            .finish_non_exhaustive()
    }
}

impl Default for SuiteOptions {
    fn default() -> Self {
        Self {
            prepare: Box::new(|_, v| v),
            unsupported_operators: vec!["ew", "ca", "ne"],
            supports_sort: true,
            counts: true,
            client_ids: true,
            seed: 25,
        }
    }
}

/// Runs every check in order on an empty object set.
pub async fn run_all(set: Arc<dyn ObjectSet>, opts: &SuiteOptions) {
    if opts.counts {
        assert_eq!(
            set.count().await.expect("count"),
            Some(0),
            "the suite needs an empty set"
        );
    }
    crud(&*set, opts).await;
    duplicate_create(&*set, opts).await;
    let seeded = seed(&*set, opts).await;
    filters(&*set, opts, &seeded).await;
    unsupported_filters(&*set, opts).await;
    fields(&*set, &seeded).await;
    paging(&*set, &seeded).await;
    if opts.supports_sort {
        sorting(&*set, &seeded).await;
    }
    get_many(&*set, &seeded).await;
    if opts.counts {
        assert_eq!(
            set.count().await.expect("count"),
            Some(seeded.len() as u64),
            "count() after seeding"
        );
    }
    for o in &seeded {
        set.delete(id_of(o), None)
            .await
            .expect("delete seeded object");
    }
    if opts.counts {
        assert_eq!(
            set.count().await.expect("count"),
            Some(0),
            "count() after deleting all"
        );
    }
}

fn id_of(o: &Value) -> &str {
    o.get("_id")
        .and_then(Value::as_str)
        .expect("every object has a string _id")
}

fn person(i: usize) -> Value {
    let given = ["Alice", "Bob", "Carol", "Dave", "Erin"][i % 5];
    let sn = if i.is_multiple_of(3) {
        "Smith"
    } else {
        "Jones"
    };
    let mut v = json!({
        "userName": format!("user{i:02}"),
        "givenName": given,
        "sn": sn,
        "mail": format!("user{i:02}@example.com"),
    });
    if i.is_multiple_of(2) {
        v["description"] = json!(format!("employee {i}"));
    }
    v
}

/// Only the suite's properties of an object (connectors may add `_rev` or extra attributes).
fn suite_view(o: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for p in PROPERTIES {
        if let Some(v) = o.get(p).filter(|v| !v.is_null()) {
            // A single-valued string may come back as a one-element array from directories.
            let v = match v {
                Value::Array(items) if items.len() == 1 => items[0].clone(),
                other => other.clone(),
            };
            out.insert(p.to_owned(), v);
        }
    }
    Value::Object(out)
}

/// create → get → update → get → delete → get is None; NotFound for a missing object.
pub async fn crud(set: &dyn ObjectSet, opts: &SuiteOptions) {
    let original = person(90);
    let id_hint = opts.client_ids.then_some("crud-90");
    let created = set
        .create(id_hint, (opts.prepare)("user90", original.clone()))
        .await
        .expect("create");
    let id = id_of(&created).to_owned();
    if opts.client_ids {
        assert_eq!(id, "crud-90", "create keeps a client-assigned id");
    }
    assert_eq!(
        suite_view(&created),
        original,
        "create returns the object as stored"
    );
    let read = set
        .get(&id)
        .await
        .expect("get")
        .expect("the created object exists");
    assert_eq!(id_of(&read), id);
    assert_eq!(suite_view(&read), original, "get returns what was created");

    let mut changed = original.clone();
    changed["sn"] = json!("Changed");
    changed
        .as_object_mut()
        .expect("object")
        .remove("description");
    let updated = set
        .update(&id, None, (opts.prepare)("user90", changed.clone()))
        .await
        .expect("update");
    assert_eq!(
        suite_view(&updated),
        changed,
        "update replaces the object (a removed property is gone)"
    );
    let read = set.get(&id).await.expect("get").expect("still exists");
    assert_eq!(suite_view(&read), changed, "get after update");

    let deleted = set.delete(&id, None).await.expect("delete");
    if let Some(d) = deleted {
        assert_eq!(id_of(&d), id, "delete returns the deleted object");
    }
    assert_eq!(
        set.get(&id).await.expect("get after delete"),
        None,
        "deleted object is gone"
    );
    assert!(
        matches!(
            set.delete(&id, None).await,
            Err(ConnectorError::NotFound(_))
        ),
        "deleting a missing object is NotFound"
    );
    assert!(
        matches!(
            set.update(&id, None, (opts.prepare)("user90", changed))
                .await,
            Err(ConnectorError::NotFound(_))
        ),
        "updating a missing object is NotFound"
    );
}

/// A second create of the same object is `AlreadyExists` and changes nothing.
pub async fn duplicate_create(set: &dyn ObjectSet, opts: &SuiteOptions) {
    let obj = person(91);
    let first = set
        .create(
            opts.client_ids.then_some("dup-91"),
            (opts.prepare)("user91", obj.clone()),
        )
        .await
        .expect("first create");
    let id = id_of(&first).to_owned();
    let mut other = obj.clone();
    other["sn"] = json!("Other");
    let second = set.create(Some(&id), (opts.prepare)("user91", other)).await;
    assert!(
        matches!(second, Err(ConnectorError::AlreadyExists(_))),
        "duplicate create must be AlreadyExists, got {second:?}"
    );
    let read = set
        .get(&id)
        .await
        .expect("get")
        .expect("first object still there");
    assert_eq!(
        suite_view(&read),
        obj,
        "the failed duplicate changed nothing"
    );
    set.delete(&id, None).await.expect("delete");
}

/// Creates `opts.seed` objects concurrently (writes may be batched) and returns them as stored.
pub async fn seed(set: &dyn ObjectSet, opts: &SuiteOptions) -> Vec<Value> {
    let creates = (0..opts.seed).map(|i| {
        let id = format!("seed-{i:02}");
        let obj = (opts.prepare)(&format!("user{i:02}"), person(i));
        async move {
            let id = opts.client_ids.then_some(id);
            set.create(id.as_deref(), obj).await
        }
    });
    let created = futures::future::join_all(creates).await;
    let out: Vec<Value> = created
        .into_iter()
        .map(|r| r.expect("seed create"))
        .collect();
    let ids: HashSet<&str> = out.iter().map(id_of).collect();
    assert_eq!(ids.len(), opts.seed, "every seeded object has its own id");
    out
}

fn ids(objects: &[Value]) -> BTreeSet<String> {
    objects.iter().map(|o| id_of(o).to_owned()).collect()
}

async fn query_all(set: &dyn ObjectSet, filter: &Filter) -> Vec<Value> {
    let page = set
        .query(&QueryRequest::with_filter(filter.clone()))
        .await
        .unwrap_or_else(|e| panic!("query {filter}: {e}"));
    assert_eq!(page.cookie, None, "an unpaged query has no cookie");
    page.results
}

/// Every core operator, the boolean connectives and the literals, checked against the
/// in-memory evaluation of the same filter over the seeded objects.
pub async fn filters(set: &dyn ObjectSet, _opts: &SuiteOptions, seeded: &[Value]) {
    let some_id = id_of(&seeded[3]).to_owned();
    let cases = [
        r#"sn eq "Smith""#.to_owned(),
        r#"/mail co "er1""#.to_owned(),
        r#"userName sw "user1""#.to_owned(),
        r#"userName lt "user05""#.to_owned(),
        r#"userName le "user05""#.to_owned(),
        r#"userName gt "user20""#.to_owned(),
        r#"userName ge "user20""#.to_owned(),
        "description pr".to_owned(),
        "!(description pr)".to_owned(),
        r#"sn eq "Smith" and !(description pr)"#.to_owned(),
        r#"givenName eq "Alice" or givenName eq "Bob""#.to_owned(),
        r#"(sn eq "Jones" or userName eq "user03") and !(givenName eq "Carol")"#.to_owned(),
        r#"!(description eq "employee 4")"#.to_owned(),
        "true".to_owned(),
        "false".to_owned(),
        format!(r#"_id eq "{some_id}""#),
    ];
    for text in cases {
        let filter: Filter = text.parse().expect("suite filters parse");
        let expected: BTreeSet<String> = seeded
            .iter()
            .filter(|o| {
                let mut view = suite_view(o);
                view["_id"] = json!(id_of(o));
                filter.matches(&view)
            })
            .map(|o| id_of(o).to_owned())
            .collect();
        let got = ids(&query_all(set, &filter).await);
        assert_eq!(got, expected, "query {text}");
    }
}

/// Extended operators the connector cannot translate are `BadRequest`, never "no results".
pub async fn unsupported_filters(set: &dyn ObjectSet, opts: &SuiteOptions) {
    for op in &opts.unsupported_operators {
        let filter: Filter = format!(r#"sn {op} "th""#)
            .parse()
            .expect("extended op parses");
        let r = set.query(&QueryRequest::with_filter(filter)).await;
        assert!(
            matches!(r, Err(ConnectorError::BadRequest(_))),
            "operator {op} must be BadRequest, got {r:?}"
        );
    }
}

/// `_fields` returns `_id` and the listed fields only.
pub async fn fields(set: &dyn ObjectSet, seeded: &[Value]) {
    let request = QueryRequest {
        filter: Some(r#"userName eq "user04""#.parse().expect("parse")),
        fields: Some(vec![JsonPointer::parse("mail")]),
        ..QueryRequest::default()
    };
    let page = set.query(&request).await.expect("query with _fields");
    assert_eq!(page.results.len(), 1);
    let o = page.results[0].as_object().expect("object");
    let expected_id = seeded.iter().find(|s| s["userName"] == "user04").map(id_of);
    assert_eq!(o.get("_id").and_then(Value::as_str), expected_id);
    assert_eq!(o.get("mail"), Some(&json!("user04@example.com")));
    let extra: Vec<&String> = o
        .keys()
        .filter(|k| !matches!(k.as_str(), "_id" | "_rev" | "mail"))
        .collect();
    assert!(extra.is_empty(), "_fields=mail returned more: {extra:?}");

    let page = set
        .query(&QueryRequest::all_ids())
        .await
        .expect("query-all-ids");
    assert_eq!(
        ids(&page.results),
        ids(seeded),
        "_fields=_id returns every id"
    );
}

/// Paged queries return each object exactly once, with and without a filter; a bad cookie is
/// `BadRequest`.
pub async fn paging(set: &dyn ObjectSet, seeded: &[Value]) {
    for (filter, page_size) in [(None, 7usize), (Some(r#"sn eq "Jones""#), 4), (None, 1000)] {
        let filter: Option<Filter> = filter.map(|f| f.parse().expect("parse"));
        let expected: BTreeSet<String> = seeded
            .iter()
            .filter(|o| filter.as_ref().is_none_or(|f| f.matches(&suite_view(o))))
            .map(|o| id_of(o).to_owned())
            .collect();
        let mut request = QueryRequest {
            filter: filter.clone(),
            page_size: Some(page_size),
            total_policy: TotalPolicy::None,
            ..QueryRequest::default()
        };
        let mut seen: Vec<String> = Vec::new();
        let mut pages = 0;
        loop {
            let page = set.query(&request).await.expect("paged query");
            assert!(
                page.results.len() <= page_size,
                "a page holds at most _pageSize objects"
            );
            pages += 1;
            assert!(pages <= seeded.len() + 2, "paging does not terminate");
            seen.extend(page.results.iter().map(|o| id_of(o).to_owned()));
            match page.cookie {
                Some(c) => request.cookie = Some(c),
                None => break,
            }
        }
        let unique: BTreeSet<String> = seen.iter().cloned().collect();
        assert_eq!(
            unique.len(),
            seen.len(),
            "no object is returned twice (page size {page_size})"
        );
        assert_eq!(
            unique, expected,
            "paging returns every object (page size {page_size})"
        );
    }
    let bad = QueryRequest {
        page_size: Some(5),
        cookie: Some("not a cookie!".into()),
        ..QueryRequest::default()
    };
    assert!(
        matches!(set.query(&bad).await, Err(ConnectorError::BadRequest(_))),
        "a cookie the connector did not issue is BadRequest"
    );
}

fn sorted_user_names(seeded: &[Value], keys: &[(&str, bool)]) -> Vec<String> {
    let mut v: Vec<&Value> = seeded.iter().collect();
    v.sort_by(|a, b| {
        for (k, asc) in keys {
            let (x, y) = (a[*k].as_str().unwrap_or(""), b[*k].as_str().unwrap_or(""));
            let o = if *asc { x.cmp(y) } else { y.cmp(x) };
            if o.is_ne() {
                return o;
            }
        }
        std::cmp::Ordering::Equal
    });
    v.iter()
        .map(|o| o["userName"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// `_sortKeys`, unpaged and paged (keyset paging on a non-unique sort key).
pub async fn sorting(set: &dyn ObjectSet, seeded: &[Value]) {
    let request = QueryRequest {
        sort_keys: vec![SortKey::parse("-userName")],
        ..QueryRequest::default()
    };
    let page = set.query(&request).await.expect("sorted query");
    let got: Vec<String> = page
        .results
        .iter()
        .map(|o| suite_view(o)["userName"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(
        got,
        sorted_user_names(seeded, &[("userName", false)]),
        "_sortKeys=-userName"
    );

    let mut request = QueryRequest {
        sort_keys: SortKey::parse_list("sn,-userName"),
        page_size: Some(4),
        ..QueryRequest::default()
    };
    let mut got = Vec::new();
    loop {
        let page = set.query(&request).await.expect("sorted paged query");
        got.extend(
            page.results
                .iter()
                .map(|o| suite_view(o)["userName"].as_str().unwrap_or("").to_owned()),
        );
        match page.cookie {
            Some(c) => request.cookie = Some(c),
            None => break,
        }
        assert!(
            got.len() <= seeded.len(),
            "sorted paging does not terminate"
        );
    }
    assert_eq!(
        got,
        sorted_user_names(seeded, &[("sn", true), ("userName", false)]),
        "_sortKeys=sn,-userName across pages"
    );
}

/// `get_many` returns exactly the existing ones among the asked ids.
pub async fn get_many(set: &dyn ObjectSet, seeded: &[Value]) {
    let mut asked: Vec<String> = seeded.iter().take(5).map(|o| id_of(o).to_owned()).collect();
    asked.push("no-such-id".into());
    let got = set.get_many(&asked).await.expect("get_many");
    let expected: BTreeSet<String> = asked.iter().take(5).cloned().collect();
    assert_eq!(ids(&got), expected);
}
