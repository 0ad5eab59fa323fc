//! Exactness of reconciliation (docs/reconciliation.md, "Exactness"): whatever the tuning knobs,
//! a run leaves what IDM's serial per-object semantics leave — source order, each object seeing
//! every target created, linked, changed or deleted by the objects before it.
//!
//! A generated HR source (shared e-mail addresses inside a page and across pages, pre-existing
//! users, pre-existing links, links of deleted sources, unqualified rows, a second run over a
//! changed source) is reconciled into `managed/user` once serially (`taskThreads` 0, no paging)
//! and once under a knob combination (threads, paging and page size, `prefetchLinks`,
//! id-only source queries, clustered pages on two nodes); the situations and actions per object,
//! the users, the links and the summary counts must be identical. Property-based: a failure
//! prints the case (proptest's seed and the shrunk dataset and knobs).
//!
//! The named tests below pin the two reports of issue 19: duplicate users from one shared
//! e-mail, and one contended target failing a whole run.

#![allow(clippy::unwrap_used)] // Tests may unwrap.

mod support;

use idsync_core::QueryRequest;
use idsync_engine::{Engine, ReconOptions, Resources};
use idsync_repo::{AuditKind, ChangeSet, Link, Op, Repository};
use proptest::prelude::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::PgDb;

const MAPPING: &str = "hr_user";

/// One HR row.
#[derive(Debug, Clone)]
struct Row {
    uid: String,
    mail: String,
    given: String,
    dept: String,
}

/// What exists before the first run.
#[derive(Debug, Clone)]
struct Dataset {
    rows: Vec<Row>,
    /// Pre-existing users: (id, userName).
    users: Vec<(String, String)>,
    /// Pre-existing links: (source uid, user id); a uid may be one that no row has.
    links: Vec<(String, String)>,
    /// The source of the second run.
    rows2: Vec<Row>,
}

/// The knobs a variant sets; the serial reference is `Knobs::serial()`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Knobs {
    task_threads: usize,
    page_size: Option<usize>,
    prefetch_links: bool,
    ids_only: bool,
    clustered: bool,
    correlate_empty: bool,
    /// A `sourceQuery` filter (`department eq "Eng"`): a source the run cannot count up front.
    filtered: bool,
    /// A `correlationScript` doing the same query with `openidm.query` instead of the
    /// `correlationQuery` (docs/scripts.md#speed-and-exactness): it must change nothing.
    script_correlation: bool,
}

impl Knobs {
    fn serial(correlate_empty: bool) -> Self {
        Knobs {
            task_threads: 0,
            page_size: None,
            prefetch_links: true,
            ids_only: false,
            clustered: false,
            correlate_empty,
            filtered: false,
            script_correlation: false,
        }
    }
}

fn csv(rows: &[Row]) -> String {
    let mut rows = rows.to_vec();
    // The source order: the query's order, by uid, whether paged or not.
    rows.sort_by(|a, b| a.uid.cmp(&b.uid));
    let mut out = String::from("uid,mail,givenName,department\n");
    for r in rows {
        out.push_str(&format!("{},{},{},{}\n", r.uid, r.mail, r.given, r.dept));
    }
    out
}

fn sync_json(k: &Knobs) -> Value {
    let mut m = json!({
        "name": MAPPING,
        "source": "system/hr/account",
        "target": "managed/user",
        "taskThreads": k.task_threads,
        "prefetchLinks": k.prefetch_links,
        "correlateEmptyTargetSet": k.correlate_empty,
        "validSource": {"type": "text/javascript", "source": "source.department !== 'Temp'"},
        "correlationQuery": {
            "type": "text/javascript",
            "source": "({'_queryFilter': 'userName eq \"' + source.mail + '\"'})"
        },
        "properties": [
            {"source": "mail", "target": "userName"},
            {"source": "givenName", "target": "givenName"},
            {"source": "department", "target": "department"}
        ],
        "policies": [
            {"situation": "CONFIRMED", "action": "UPDATE"},
            {"situation": "FOUND", "action": "UPDATE"},
            {"situation": "ABSENT", "action": "CREATE"},
            {"situation": "AMBIGUOUS", "action": "REPORT"},
            {"situation": "FOUND_ALREADY_LINKED", "action": "REPORT"},
            {"situation": "MISSING", "action": "CREATE"},
            {"situation": "SOURCE_MISSING", "action": "DELETE"},
            {"situation": "UNQUALIFIED", "action": "UNLINK"},
            {"situation": "UNASSIGNED", "action": "REPORT"}
        ]
    });
    if k.script_correlation {
        let o = m.as_object_mut().unwrap();
        o.remove("correlationQuery");
        o.insert(
            "correlationScript".into(),
            json!({
                "type": "text/javascript",
                "source": "openidm.query('managed/user', {'_queryFilter': 'userName eq \"' + source.mail + '\"'}).result"
            }),
        );
    }
    if let Some(n) = k.page_size {
        m["reconSourceQueryPaging"] = json!(true);
        m["reconSourceQueryPageSize"] = json!(n);
    }
    if k.clustered {
        m["clusteredSourceReconEnabled"] = json!(true);
    }
    if k.ids_only {
        m["sourceQueryFullEntry"] = json!(false);
    }
    if k.filtered {
        m["sourceQuery"] = json!({"_queryFilter": "department eq \"Eng\""});
    }
    json!({ "mappings": [m] })
}

fn write_project(dir: &Path, k: &Knobs, rows: &[Row]) {
    std::fs::create_dir_all(dir.join("conf")).unwrap();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(
        dir.join("conf/provisioner.openicf-hr.json"),
        json!({
            "name": "hr",
            "connectorRef": {"connectorName": "org.forgerock.openicf.csvfile.CSVFileConnector"},
            "configurationProperties": {"csvFile": "data/hr.csv", "headerUid": "uid"},
            "objectTypes": {"account": {
                "id": "__ACCOUNT__", "type": "object", "nativeType": "__ACCOUNT__",
                "properties": {
                    "uid": {"type": "string", "nativeName": "__NAME__"},
                    "mail": {"type": "string", "nativeName": "mail"},
                    "givenName": {"type": "string", "nativeName": "givenName"},
                    "department": {"type": "string", "nativeName": "department"}
                }
            }}
        })
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.join("conf/managed.json"),
        json!({"objects": [{"name": "user", "schema": {"type": "object", "properties": {
            "userName": {"type": "string", "index": true},
            "givenName": {"type": "string"},
            "department": {"type": "string"}
        }}}]})
        .to_string(),
    )
    .unwrap();
    std::fs::write(dir.join("conf/sync.json"), sync_json(k).to_string()).unwrap();
    std::fs::write(
        dir.join("conf/idsync.json"),
        json!({"heartbeatIntervalMs": 200, "nodeTimeoutMs": 2000, "leaseMs": 5000}).to_string(),
    )
    .unwrap();
    std::fs::write(dir.join("data/hr.csv"), csv(rows)).unwrap();
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// A project folder, a repository and the nodes reconciling in it.
struct World {
    dir: tempfile::TempDir,
    _pg: Option<PgDb>,
    nodes: Vec<Arc<Engine>>,
    repo: Arc<dyn Repository>,
    knobs: Knobs,
}

impl World {
    async fn new(backend: Backend, k: Knobs, d: &Dataset) -> World {
        let dir = tempfile::tempdir().unwrap();
        write_project(dir.path(), &k, &d.rows);
        let (url, pg) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}", dir.path().join("repo.db").display()),
                None,
            ),
            Backend::Postgres => {
                let db = PgDb::create("exact");
                (db.url.clone(), Some(db))
            }
        };
        let repo = idsync_repo::open(&url).await.unwrap();
        repo.ensure_indexes("user", &["/userName".to_string()])
            .await
            .unwrap();
        let mut cs = ChangeSet::new();
        for (id, name) in &d.users {
            cs.ops.push(Op::CreateObject {
                object_type: "user".into(),
                id: id.clone(),
                value: json!({"_id": id, "userName": name, "givenName": "Old", "department": "Old"}),
            });
        }
        for (i, (uid, user)) in d.links.iter().enumerate() {
            cs.ops.push(Op::CreateLink(Link {
                id: format!("pre-link-{i}"),
                rev: "0".into(),
                link_type: MAPPING.into(),
                link_qualifier: "default".into(),
                first_id: uid.clone(),
                second_id: user.clone(),
            }));
        }
        repo.commit(cs).await.unwrap();
        let node_count = if k.clustered { 2 } else { 1 };
        let mut nodes = Vec::new();
        for n in 0..node_count {
            nodes.push(node(dir.path(), repo.clone(), &format!("node{n}")).await);
        }
        World {
            dir,
            _pg: pg,
            nodes,
            repo,
            knobs: k,
        }
    }

    fn set_rows(&self, rows: &[Row]) {
        std::fs::write(self.dir.path().join("data/hr.csv"), csv(rows)).unwrap();
    }

    /// Runs one reconciliation to its end on every node's worker and returns its outcome.
    async fn recon(&self) -> Outcome {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut workers = Vec::new();
        for n in &self.nodes {
            workers.push(tokio::spawn(idsync_engine::worker::run_worker(
                n.clone(),
                2,
                stop_rx.clone(),
            )));
        }
        let first = &self.nodes[0];
        let run_id = first
            .start_recon(MAPPING, ReconOptions::default())
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let summary = loop {
            let s = first.recon_summary(&run_id).await.unwrap();
            if s["state"] != "ACTIVE" {
                break s;
            }
            assert!(Instant::now() < deadline, "run did not end: {s:#}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        stop_tx.send(true).unwrap();
        for w in workers {
            w.await.unwrap().unwrap();
        }
        outcome(&*self.repo, &run_id, summary, &self.knobs).await
    }
}

async fn node(dir: &Path, repo: Arc<dyn Repository>, id: &str) -> Arc<Engine> {
    let project = Arc::new(idsync_config::load_project_from_env(dir).unwrap().project);
    let mut conns = BTreeMap::new();
    for (name, cfg) in &project.connectors {
        conns.insert(
            name.clone(),
            idsync_connectors::build_connector(cfg, &project.dir).unwrap(),
        );
    }
    let resources = Resources::new(&project, repo.clone(), conns);
    Engine::new(project, repo, resources, id).unwrap()
}

/// What a run left, with generated user ids replaced by what identifies them.
#[derive(Debug, PartialEq)]
struct Outcome {
    state: String,
    /// Per object: (phase, source id, target, situation, action, status).
    decisions: BTreeSet<(String, String, String, String, String, String)>,
    /// userName, givenName, department of every user, and the id (pre-existing) or `new`.
    users: BTreeSet<(String, String, String, String)>,
    /// (source uid, user) of every link.
    links: BTreeSet<(String, String)>,
    situations: Value,
    statuses: Value,
    counts: Value,
}

async fn outcome(repo: &dyn Repository, run_id: &str, summary: Value, k: &Knobs) -> Outcome {
    let users = repo
        .query_objects("user", &QueryRequest::all())
        .await
        .unwrap()
        .results;
    let canon = |id: &str| -> String {
        if id.starts_with("pre-") {
            id.to_string()
        } else {
            let u = users.iter().find(|u| u["_id"] == id);
            format!(
                "new:{}",
                u.map_or("?".into(), |u| u["userName"].to_string())
            )
        }
    };
    let user_rows = users
        .iter()
        .map(|u| {
            (
                u["userName"].to_string(),
                u["givenName"].to_string(),
                u["department"].to_string(),
                canon(u["_id"].as_str().unwrap()),
            )
        })
        .collect();
    let mut links = BTreeSet::new();
    let mut req = QueryRequest::all();
    req.page_size = Some(10_000);
    for l in repo.query_links(&req).await.unwrap().results {
        links.insert((
            l["firstId"].as_str().unwrap().to_string(),
            canon(l["secondId"].as_str().unwrap()),
        ));
    }
    let filter = idsync_core::filter::parse(&format!("reconId eq \"{run_id}\"")).unwrap();
    let mut req = QueryRequest::with_filter(filter);
    req.page_size = Some(10_000);
    let entries = repo.query_audit(AuditKind::Recon, &req).await.unwrap();
    let s = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    };
    let decisions = entries
        .results
        .iter()
        .filter(|e| e["entryType"] == "entry")
        .map(|e| {
            let target = e["targetObjectId"]
                .as_str()
                .map_or("-".to_string(), |t| canon(t.rsplit('/').next().unwrap()));
            (
                s(&e["reconciling"]),
                s(&e["sourceObjectId"]),
                target,
                s(&e["situation"]),
                s(&e["action"]),
                s(&e["status"]),
            )
        })
        .collect();
    let p = &summary["progress"];
    Outcome {
        state: s(&summary["state"]),
        decisions,
        users: user_rows,
        links,
        situations: summary["situationSummary"].clone(),
        statuses: summary["statusSummary"].clone(),
        counts: json!({
            "source": p["source"]["existing"]["processed"],
            "target": [p["target"]["existing"]["processed"], p["target"]["created"],
                       p["target"]["updated"], p["target"]["deleted"], p["target"]["unchanged"]],
            "links": [p["links"]["existing"]["processed"], p["links"]["created"]],
            "sourceTotal": p["source"]["existing"]["total"],
            "knobsShownForDebugging": format!("{k:?}"),
        }),
    }
}

/// Runs the dataset (first run, then the second source) serially and under `k`, and returns
/// both pairs of outcomes.
async fn compare(backend: Backend, d: &Dataset, k: Knobs) -> Result<(), String> {
    let serial = World::new(backend, Knobs::serial(k.correlate_empty), d).await;
    let variant = World::new(backend, k, d).await;
    for (round, rows) in [(1, &d.rows), (2, &d.rows2)] {
        if round == 2 {
            serial.set_rows(rows);
            variant.set_rows(rows);
        }
        let a = serial.recon().await;
        let mut b = variant.recon().await;
        b.counts["knobsShownForDebugging"] = a.counts["knobsShownForDebugging"].clone();
        if a != b {
            return Err(format!(
                "run {round} differs under {k:?}\nserial: {a:#?}\nvariant: {b:#?}"
            ));
        }
        // An empty source fails the run by design (allowEmptySourceSet is false): the second
        // source is empty when the generator dropped every row, and then both runs must fail
        // alike, which the comparison above checked.
        let empty_source = rows.is_empty();
        if a.state != "SUCCESS" && !(empty_source && a.state == "FAILED") {
            return Err(format!("run {round} did not succeed: {a:#?}"));
        }
    }
    Ok(())
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

prop_compose! {
    fn a_row(uid: usize, mails: usize)(
        mail in 0..mails,
        given in prop::sample::select(vec!["Ann", "Bo", "Cy"]),
        temp in prop::bool::weighted(0.1),
    ) -> Row {
        Row {
            uid: format!("s{uid:03}"),
            mail: format!("m{mail}@example.com"),
            given: given.to_string(),
            dept: if temp { "Temp".into() } else { "Eng".into() },
        }
    }
}

fn rows(n: usize, mails: usize) -> impl Strategy<Value = Vec<Row>> {
    (0..n).map(|i| a_row(i, mails)).collect::<Vec<_>>()
}

fn dataset() -> impl Strategy<Value = Dataset> {
    (1usize..24, 2usize..10).prop_flat_map(|(n, mails)| {
        (
            rows(n, mails),
            prop::collection::vec(0..mails, 0..5),
            prop::collection::vec((0..n + 3, 0usize..5), 0..5),
            rows(n + 3, mails),
            prop::collection::vec(prop::bool::weighted(0.3), n + 3),
        )
            .prop_map(move |(rows, users, links, more, drop)| {
                let users: Vec<(String, String)> = users
                    .iter()
                    .enumerate()
                    .map(|(i, m)| (format!("pre-{i}"), format!("m{m}@example.com")))
                    .collect();
                let mut seen = BTreeSet::new();
                let links = links
                    .into_iter()
                    .filter(|(_, u)| *u < users.len())
                    .filter_map(|(s, u)| {
                        let uid = format!("s{s:03}");
                        // One link per source and per user, as the unique indexes allow.
                        (seen.insert(uid.clone()) && seen.insert(users[u].0.clone()))
                            .then(|| (uid, users[u].0.clone()))
                    })
                    .collect();
                // The second run: some rows gone, the others possibly changed, new ones added.
                let rows2 = more
                    .into_iter()
                    .zip(drop)
                    .filter(|(_, d)| !d)
                    .map(|(r, _)| r)
                    .collect();
                Dataset {
                    rows,
                    users,
                    links,
                    rows2,
                }
            })
    })
}

fn knobs() -> impl Strategy<Value = Knobs> {
    (
        prop::sample::select(vec![0usize, 1, 3]),
        prop::sample::select(vec![None, Some(2usize), Some(5)]),
        any::<bool>(),
        any::<bool>(),
        prop::bool::weighted(0.3),
        any::<bool>(),
        prop::bool::weighted(0.3),
    )
        .prop_map(|(t, p, prefetch, ids_only, clustered, ce, script)| Knobs {
            task_threads: t,
            page_size: if clustered { p.or(Some(3)) } else { p },
            prefetch_links: prefetch,
            ids_only,
            clustered,
            correlate_empty: ce,
            filtered: false,
            script_correlation: script,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_knob_leaves_what_the_serial_run_leaves_sqlite(d in dataset(), k in knobs()) {
        let r = rt().block_on(compare(Backend::Sqlite, &d, k));
        prop_assert!(r.is_ok(), "{}\ndataset: {d:?}", r.unwrap_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_knob_leaves_what_the_serial_run_leaves_postgres(d in dataset(), k in knobs()) {
        let r = rt().block_on(compare(Backend::Postgres, &d, k));
        prop_assert!(r.is_ok(), "{}\ndataset: {d:?}", r.unwrap_err());
    }
}

fn row(uid: &str, mail: &str) -> Row {
    Row {
        uid: uid.into(),
        mail: mail.into(),
        given: "Ann".into(),
        dept: "Eng".into(),
    }
}

/// Issue 19: two HR rows share an e-mail, serially, correlating on an empty target set: the
/// second finds the user the first created (FOUND_ALREADY_LINKED), so there is one user.
#[test]
fn issue_19_two_rows_sharing_an_email_make_one_user() {
    for (users, threads, page, script) in [
        (vec![], 0, None, false),
        (
            vec![("pre-0".to_string(), "other@example.com".to_string())],
            0,
            None,
            false,
        ),
        (vec![], 4, Some(10), false),
        // The same with a correlation script doing `openidm.query` (issue 25).
        (vec![], 0, None, true),
        (
            vec![("pre-0".to_string(), "other@example.com".to_string())],
            0,
            None,
            true,
        ),
        (vec![], 4, Some(10), true),
    ] {
        let d = Dataset {
            rows: vec![
                row("s001", "dup@example.com"),
                row("s002", "dup@example.com"),
            ],
            users,
            links: vec![],
            rows2: vec![],
        };
        let k = Knobs {
            task_threads: threads,
            page_size: page,
            script_correlation: script,
            ..Knobs::serial(true)
        };
        rt().block_on(async {
            let w = World::new(Backend::Sqlite, k, &d).await;
            let o = w.recon().await;
            assert_eq!(o.state, "SUCCESS", "{o:#?}");
            let dups = o
                .users
                .iter()
                .filter(|u| u.0 == "\"dup@example.com\"")
                .count();
            assert_eq!(dups, 1, "one user for one e-mail: {o:#?}");
            let second = o.decisions.iter().find(|d| d.1.ends_with("s002")).unwrap();
            assert_eq!(second.3, "FOUND_ALREADY_LINKED", "{o:#?}");
        });
    }
}

/// A second source the generator emptied (every row dropped): the run fails by design
/// (`allowEmptySourceSet` is false), alike serially and under the knobs, and the comparison
/// accepts it. The property test met this case about once in fifty runs and reported it as a
/// failure.
#[test]
fn an_emptied_source_fails_alike_serially_and_under_the_knobs() {
    let d = Dataset {
        rows: vec![row("s000", "m0@example.com")],
        users: vec![],
        links: vec![],
        rows2: vec![],
    };
    let k = Knobs {
        page_size: Some(5),
        ids_only: true,
        script_correlation: true,
        ..Knobs::serial(true)
    };
    let r = rt().block_on(compare(Backend::Sqlite, &d, k));
    assert!(r.is_ok(), "{}", r.unwrap_err());
}

/// Issue 19: two sources correlate to one existing user, in one page and across two pages
/// running at once on two nodes: the first in source order links it, the other is
/// FOUND_ALREADY_LINKED, and the run succeeds.
#[test]
fn issue_19_two_sources_contending_for_one_user_never_fail_the_run() {
    let mut rows: Vec<Row> = (0..40)
        .map(|i| row(&format!("s{i:03}"), &format!("u{i}@example.com")))
        .collect();
    rows.push(row("s100", "shared@example.com"));
    rows.push(row("s101", "shared@example.com"));
    rows.push(row("s102", "shared@example.com"));
    let d = Dataset {
        rows,
        users: vec![("pre-0".to_string(), "shared@example.com".to_string())],
        links: vec![],
        rows2: vec![],
    };
    for (backend, k) in [
        (
            Backend::Sqlite,
            Knobs {
                task_threads: 4,
                ..Knobs::serial(false)
            },
        ),
        (
            Backend::Sqlite,
            Knobs {
                task_threads: 2,
                page_size: Some(1),
                clustered: true,
                ..Knobs::serial(false)
            },
        ),
        (
            Backend::Postgres,
            Knobs {
                task_threads: 2,
                page_size: Some(1),
                clustered: true,
                ..Knobs::serial(false)
            },
        ),
    ] {
        rt().block_on(async {
            let w = World::new(backend, k, &d).await;
            let o = w.recon().await;
            assert_eq!(o.state, "SUCCESS", "{k:?}: {o:#?}");
            let linked: Vec<_> = o.links.iter().filter(|l| l.1 == "pre-0").collect();
            assert_eq!(
                linked,
                vec![&("s100".to_string(), "pre-0".to_string())],
                "{k:?}: {o:#?}"
            );
            for uid in ["s101", "s102"] {
                let dec = o.decisions.iter().find(|d| d.1.ends_with(uid)).unwrap();
                assert_eq!(dec.3, "FOUND_ALREADY_LINKED", "{k:?}: {o:#?}");
            }
        });
    }
}

/// A source the run cannot count up front (a filtered query) has its true total once its last
/// page is in: the source objects read, once each, whatever the paging or the number of nodes.
#[test]
fn a_filtered_source_has_its_true_total_at_the_end() {
    let mut rows: Vec<Row> = (0..7)
        .map(|i| row(&format!("s{i:03}"), &format!("u{i}@example.com")))
        .collect();
    for r in rows.iter_mut().skip(4) {
        r.dept = "Sales".into();
    }
    let d = Dataset {
        rows,
        users: vec![],
        links: vec![],
        rows2: vec![],
    };
    for k in [
        Knobs {
            filtered: true,
            ..Knobs::serial(false)
        },
        Knobs {
            filtered: true,
            page_size: Some(2),
            task_threads: 2,
            ..Knobs::serial(false)
        },
        Knobs {
            filtered: true,
            page_size: Some(1),
            clustered: true,
            ..Knobs::serial(false)
        },
    ] {
        rt().block_on(async {
            let w = World::new(Backend::Sqlite, k, &d).await;
            let o = w.recon().await;
            assert_eq!(o.state, "SUCCESS", "{o:#?}");
            assert_eq!(o.counts["sourceTotal"], "4", "{o:#?}");
            assert_eq!(o.counts["source"], 4, "{o:#?}");
        });
    }
}
