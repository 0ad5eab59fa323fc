//! Fuzzes the REST query parameters down to the repositories' SQL, differentially against the
//! in-memory evaluator. The input is up to five lines: `_queryFilter`, `_sortKeys`, `_fields`,
//! `_pagedResultsCookie` and `_pageSize`. They go through the REST parser and its limits
//! (`Params::query_request`); what it accepts goes to SQLite and, when `IDSYNC_FUZZ_PG_URL`
//! names a database, to PostgreSQL, over 150 generated users. Checked:
//!
//! - no panic, and no error but `BadQuery` (a 400): never an internal error (a 500);
//! - the unpaged query returns exactly the objects the in-memory evaluator matches, each
//!   projected as `_fields` says, and `count_objects` and the EXACT total agree;
//! - with sort keys, walking the query in pages of 7 through the backend's cookies returns the
//!   unpaged order, every object once;
//! - the fuzzed cookie, given raw to the backend (as if its signature had been broken), is
//!   answered or refused as a `BadQuery`; given to the signature check it is refused.

#![no_main]

use idsync_api::Params;
use idsync_api::state::Limits;
use idsync_core::QueryRequest;
use idsync_repo::{ChangeSet, Op, RepoError, Repository};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

const USERS: usize = 150;

struct Ctx {
    rt: tokio::runtime::Runtime,
    repos: Vec<(&'static str, Arc<dyn Repository>)>,
    object_type: String,
    all: BTreeMap<String, Value>,
    _dir: tempfile::TempDir,
}

fn ctx() -> &'static Ctx {
    static CTX: OnceLock<Ctx> = OnceLock::new();
    CTX.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("temp dir");
        // One type per process: parallel fuzz jobs may share the PostgreSQL database.
        let object_type = format!("fuzz{}", std::process::id());
        let mut r = idsync_repo::testsuite::data::Lcg(20_261_207);
        let mut all = BTreeMap::new();
        let mut cs = ChangeSet::new();
        for i in 0..USERS {
            let id = format!("u{i:04}");
            let mut v = idsync_repo::testsuite::data::user(&mut r, i);
            if i % 25 == 0 {
                // Odd shapes the generator does not make.
                v["odd"] = json!({"": "empty key", "a/b": [[1, [2]], {"~": "tilde"}],
                                  "big": 1e300, "neg": -0.0, "uni": "\u{1F600}\u{0301}"});
            }
            let mut stored = v.clone();
            stored["_id"] = json!(id);
            stored["_rev"] = json!("1");
            all.insert(id.clone(), stored);
            cs.push(Op::CreateObject {
                object_type: object_type.clone(),
                id,
                value: v,
            });
        }
        let mut urls = vec![(
            "sqlite",
            format!("sqlite://{}/fuzz.db", dir.path().display()),
        )];
        if let Ok(url) = std::env::var("IDSYNC_FUZZ_PG_URL") {
            urls.push(("postgres", url));
        } else {
            eprintln!("IDSYNC_FUZZ_PG_URL is not set: SQLite only");
        }
        let repos = rt.block_on(async {
            let mut repos = Vec::new();
            for (name, url) in urls {
                let repo = idsync_repo::open(&url).await.expect("open the repository");
                repo.commit(cs.clone()).await.expect("seed the users");
                repos.push((name, repo));
            }
            repos
        });
        Ctx {
            rt,
            repos,
            object_type,
            all,
            _dir: dir,
        }
    })
}

fn ids(results: &[Value]) -> Vec<String> {
    results
        .iter()
        .map(|o| o["_id"].as_str().expect("an _id").to_string())
        .collect()
}

fn allowed(e: &RepoError) -> bool {
    matches!(e, RepoError::BadQuery(_))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.splitn(5, '\n');
    let mut pairs = Vec::new();
    for name in [
        "_queryFilter",
        "_sortKeys",
        "_fields",
        "_pagedResultsCookie",
        "_pageSize",
    ] {
        match lines.next() {
            Some(v) if !v.is_empty() || name == "_queryFilter" => {
                pairs.push((name.to_string(), v.to_string()));
            }
            _ => {}
        }
    }
    let params = Params(pairs);
    let Ok(req) = params.query_request(&Limits::default()) else {
        return;
    };
    if let Some(c) = &req.cookie {
        let key = [1u8; 32];
        let binding = idsync_api::cookie::binding("managed/user", &req);
        assert!(
            idsync_api::cookie::open(&key, &binding, c).is_err(),
            "a made-up cookie passed the signature check: {c:?}"
        );
    }
    let cx = ctx();
    let expected: Vec<String> = cx
        .all
        .iter()
        .filter(|(_, v)| req.filter.as_ref().is_none_or(|f| f.matches(v)))
        .map(|(k, _)| k.clone())
        .collect();
    cx.rt.block_on(async {
        for (name, repo) in &cx.repos {
            check(
                name,
                repo.as_ref(),
                &cx.object_type,
                &req,
                &expected,
                &cx.all,
            )
            .await;
        }
    });
});

async fn check(
    name: &str,
    repo: &dyn Repository,
    ty: &str,
    req: &QueryRequest,
    expected: &[String],
    all: &BTreeMap<String, Value>,
) {
    // As asked, the fuzzed cookie given raw.
    if let Err(e) = repo.query_objects(ty, req).await {
        assert!(allowed(&e), "{name}: {req:?}: {e}");
    }
    // Unpaged: exactly the in-memory matches.
    let unpaged = QueryRequest {
        page_size: None,
        cookie: None,
        offset: None,
        total_policy: idsync_core::TotalPolicy::Exact,
        ..req.clone()
    };
    let page = match repo.query_objects(ty, &unpaged).await {
        Ok(p) => p,
        Err(e) => {
            assert!(allowed(&e), "{name}: {unpaged:?}: {e}");
            return;
        }
    };
    let got = ids(&page.results);
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        expected,
        "{name}: filter {:?}",
        req.filter.as_ref().map(ToString::to_string)
    );
    if let Some(t) = page.total {
        assert_eq!(t, expected.len() as u64, "{name}: total of {unpaged:?}");
    }
    for o in &page.results {
        let id = o["_id"].as_str().unwrap_or_default();
        let want = idsync_repo::paging::project(all[id].clone(), req.fields.as_deref());
        assert_eq!(o, &want, "{name}: projection of {id} by {:?}", req.fields);
    }
    match repo.count_objects(ty, req.filter.as_ref()).await {
        Ok(n) => assert_eq!(n, expected.len() as u64, "{name}: count"),
        Err(e) => assert!(allowed(&e), "{name}: count: {e}"),
    }
    // Keyset pages through the backend's own cookies: the unpaged order, each object once.
    if req.sort_keys.is_empty() {
        return;
    }
    let mut walked = Vec::new();
    let mut cookie = None;
    for _ in 0..=expected.len() / 7 + 1 {
        let q = QueryRequest {
            page_size: Some(7),
            cookie: cookie.take(),
            offset: None,
            total_policy: idsync_core::TotalPolicy::None,
            ..req.clone()
        };
        let p = match repo.query_objects(ty, &q).await {
            Ok(p) => p,
            Err(e) => panic!("{name}: page after {} objects of {q:?}: {e}", walked.len()),
        };
        walked.extend(ids(&p.results));
        match p.cookie {
            Some(c) => cookie = Some(c),
            None => break,
        }
    }
    assert_eq!(walked, got, "{name}: pages of 7 by {:?}", req.sort_keys);
}
