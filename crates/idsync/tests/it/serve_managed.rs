//! `idsync serve` over a reconciled store (docs/rest.md#queries): a generated HR CSV of
//! 2,500 people reconciled into `managed/user` over REST, then read back with CREST queries —
//! filters (`eq`, `sw`, `and`, `or`, `!`, `pr`), keyset paging with cookies (every object
//! exactly once, also under a sort key), `_fields`, `_sortKeys`, the EXACT count envelope — and
//! the links and recon audit entries the run left.

use crate::server::Server;
use crate::support::{Project, idsync};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

const ROWS: usize = 2_500;
const MAPPING: &str = "systemHrAccounts_managedUser";

type Row = BTreeMap<String, String>;

/// `samples/hr-to-managed` with `ROWS` generated people; every 7th has no telephone number
/// (an empty CSV field is a missing property,
/// docs/configuration.md#confprovisioneropenicf-namejson), so that `pr` has something to tell.
fn project() -> (Project, Vec<Row>) {
    let p = Project::copy_of("samples/hr-to-managed");
    let out = idsync()
        .args(["generate", "hr", "--rows", &ROWS.to_string(), "--out"])
        .arg(p.file("data/hr.csv"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "idsync generate hr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut reader = csv::Reader::from_path(p.file("data/hr.csv")).unwrap();
    let headers = reader.headers().unwrap().clone();
    let phone = headers.iter().position(|h| h == "telephoneNumber").unwrap();
    let mut writer = csv::Writer::from_path(p.file("data/hr.tmp")).unwrap();
    writer.write_record(&headers).unwrap();
    let mut rows = Vec::new();
    for (i, rec) in reader.records().enumerate() {
        let mut fields: Vec<String> = rec.unwrap().iter().map(str::to_string).collect();
        if i % 7 == 3 {
            fields[phone].clear();
        }
        writer.write_record(&fields).unwrap();
        rows.push(
            headers
                .iter()
                .map(str::to_string)
                .zip(fields)
                .filter(|(_, v)| !v.is_empty())
                .collect(),
        );
    }
    writer.flush().unwrap();
    drop(writer);
    std::fs::rename(p.file("data/hr.tmp"), p.file("data/hr.csv")).unwrap();
    assert_eq!(rows.len(), ROWS);
    (p, rows)
}

/// `GET path` with `params` (URL-encoded by the client); asserts 200.
async fn query(s: &Server, path: &str, params: &[(&str, &str)]) -> Value {
    let (status, body) =
        crate::server::send(s.admin(reqwest::Method::GET, path).query(params)).await;
    assert_eq!(status, 200, "GET {path} {params:?}: {body}");
    body
}

fn ids_of(page: &Value) -> Vec<String> {
    page["result"]
        .as_array()
        .unwrap_or_else(|| panic!("no result array: {page}"))
        .iter()
        .map(|o| o["_id"].as_str().unwrap().to_string())
        .collect()
}

/// The uids of the CSV rows that satisfy `pred`.
fn expected(rows: &[Row], pred: impl Fn(&Row) -> bool) -> BTreeSet<String> {
    rows.iter()
        .filter(|r| pred(r))
        .map(|r| r["uid"].clone())
        .collect()
}

fn field<'a>(r: &'a Row, k: &str) -> &'a str {
    r.get(k).map_or("", String::as_str)
}

/// Walks every page of `managed/user` for `params` + `_pageSize=page_size`; asserts that no
/// object comes twice and that only the last page has a null cookie. Returns the objects in
/// the order the pages gave them.
async fn walk(s: &Server, params: &[(&str, &str)], page_size: usize) -> Vec<Value> {
    let size = page_size.to_string();
    let mut cookie: Option<String> = None;
    let mut all = Vec::new();
    let mut seen = BTreeSet::new();
    for _ in 0..=ROWS / page_size + 1 {
        let mut p: Vec<(&str, &str)> = params.to_vec();
        p.push(("_pageSize", &size));
        if let Some(c) = &cookie {
            p.push(("_pagedResultsCookie", c));
        }
        let page = query(s, "managed/user", &p).await;
        let results = page["result"].as_array().unwrap();
        assert!(results.len() <= page_size, "page larger than _pageSize");
        assert_eq!(page["resultCount"], results.len());
        for o in results {
            let id = o["_id"].as_str().unwrap().to_string();
            assert!(seen.insert(id.clone()), "{id} returned twice ({params:?})");
            all.push(o.clone());
        }
        match page["pagedResultsCookie"].as_str() {
            Some(c) => cookie = Some(c.to_string()),
            None => return all,
        }
    }
    panic!("more pages than {ROWS} objects can fill ({params:?})");
}

#[tokio::test(flavor = "multi_thread")]
async fn reconciled_users_answer_crest_queries_paging_and_projection() {
    let (p, rows) = project();
    let s = Server::start(p.path());
    let all_ids = expected(&rows, |_| true);

    let (status, run) = s
        .post(
            &format!("recon?_action=recon&mapping={MAPPING}&waitForCompletion=true"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["state"], "SUCCESS", "{run}");
    let run_id = run["_id"].as_str().unwrap().to_string();

    // The EXACT envelope on a first page.
    let page = query(
        &s,
        "managed/user",
        &[
            ("_queryFilter", "true"),
            ("_pageSize", "1"),
            ("_totalPagedResultsPolicy", "EXACT"),
        ],
    )
    .await;
    assert_eq!(page["resultCount"], 1, "{page}");
    assert_eq!(page["result"].as_array().unwrap().len(), 1);
    assert_eq!(page["totalPagedResultsPolicy"], "EXACT");
    assert_eq!(page["totalPagedResults"], ROWS, "{page}");
    assert_eq!(page["remainingPagedResults"], ROWS - 1, "{page}");
    assert!(page["pagedResultsCookie"].is_string(), "{page}");
    // Without a policy the total is unknown (-1).
    let page = query(
        &s,
        "managed/user",
        &[("_queryFilter", "true"), ("_pageSize", "1")],
    )
    .await;
    assert_eq!(page["totalPagedResultsPolicy"], "NONE", "{page}");
    assert_eq!(page["totalPagedResults"], -1, "{page}");
    assert_eq!(page["remainingPagedResults"], -1, "{page}");
    // EXACT with a filter counts the matches, not the collection.
    let sales = expected(&rows, |r| r["department"] == "Sales");
    let page = query(
        &s,
        "managed/user",
        &[
            ("_queryFilter", "department eq \"Sales\""),
            ("_pageSize", "10"),
            ("_totalPagedResultsPolicy", "EXACT"),
        ],
    )
    .await;
    assert_eq!(page["totalPagedResults"], sales.len(), "{page}");
    assert_eq!(page["remainingPagedResults"], sales.len() - 10, "{page}");

    // Every page, by cookie: each object exactly once, together the whole CSV.
    let objects = walk(&s, &[("_queryFilter", "true")], 333).await;
    let got: BTreeSet<String> = objects
        .iter()
        .map(|o| o["_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(objects.len(), ROWS);
    assert_eq!(got, all_ids);

    // Filters, each compared with the same condition evaluated on the CSV.
    let target = &rows[1234];
    let page = query(
        &s,
        "managed/user",
        &[(
            "_queryFilter",
            &format!("userName eq \"{}\"", target["userName"]),
        )],
    )
    .await;
    assert_eq!(page["resultCount"], 1, "{page}");
    let user = &page["result"][0];
    assert_eq!(user["_id"], target["uid"].as_str());
    for k in ["userName", "givenName", "sn", "mail", "department", "city"] {
        assert_eq!(user[k], target[k].as_str(), "{k} of {user}");
    }
    assert!(user["_rev"].is_string(), "{user}");

    let cases: Vec<(&str, BTreeSet<String>)> = vec![
        (
            "userName sw \"a\"",
            expected(&rows, |r| r["userName"].starts_with('a')),
        ),
        (
            "department eq \"Sales\" and city eq \"Austin\"",
            expected(&rows, |r| {
                r["department"] == "Sales" && r["city"] == "Austin"
            }),
        ),
        (
            "department eq \"Legal\" or city eq \"Oslo\"",
            expected(&rows, |r| r["department"] == "Legal" || r["city"] == "Oslo"),
        ),
        (
            "(department eq \"Sales\" or department eq \"Finance\") and !(accountStatus eq \"active\")",
            expected(&rows, |r| {
                (r["department"] == "Sales" || r["department"] == "Finance")
                    && r["accountStatus"] != "active"
            }),
        ),
        (
            "telephoneNumber pr",
            expected(&rows, |r| !field(r, "telephoneNumber").is_empty()),
        ),
        (
            "!(telephoneNumber pr)",
            expected(&rows, |r| field(r, "telephoneNumber").is_empty()),
        ),
        (
            "telephoneNumber pr and city eq \"Lyon\"",
            expected(&rows, |r| {
                !field(r, "telephoneNumber").is_empty() && r["city"] == "Lyon"
            }),
        ),
    ];
    for (filter, want) in cases {
        assert!(
            !want.is_empty() && want.len() < ROWS,
            "{filter}: the data must make this filter selective ({} of {ROWS})",
            want.len()
        );
        let page = query(&s, "managed/user", &[("_queryFilter", filter)]).await;
        let got: BTreeSet<String> = ids_of(&page).into_iter().collect();
        assert_eq!(page["resultCount"], want.len(), "{filter}");
        assert_eq!(got, want, "{filter}");
    }
    // The no-phone users really have no telephoneNumber property.
    let page = query(
        &s,
        "managed/user",
        &[
            ("_queryFilter", "!(telephoneNumber pr)"),
            ("_pageSize", "5"),
        ],
    )
    .await;
    for o in page["result"].as_array().unwrap() {
        assert!(o.get("telephoneNumber").is_none_or(Value::is_null), "{o}");
    }

    // _fields: only _id, _rev and the named fields.
    let page = query(
        &s,
        "managed/user",
        &[
            ("_queryFilter", "department eq \"Finance\""),
            ("_fields", "userName,mail"),
            ("_pageSize", "20"),
        ],
    )
    .await;
    assert_eq!(page["resultCount"], 20, "{page}");
    for o in page["result"].as_array().unwrap() {
        let keys: BTreeSet<&str> = o.as_object().unwrap().keys().map(String::as_str).collect();
        assert!(
            keys.iter()
                .all(|k| ["_id", "_rev", "userName", "mail"].contains(k)),
            "{o}"
        );
        assert!(keys.contains("_id") && keys.contains("userName") && keys.contains("mail"));
        let row = rows.iter().find(|r| r["uid"] == o["_id"]).unwrap();
        assert_eq!(o["mail"], row["mail"].as_str());
    }

    // _sortKeys: the first page ascending, the first page descending, and a descending walk
    // over every page by cookie (keyset paging on the sort key).
    let mut names: Vec<String> = rows.iter().map(|r| r["userName"].clone()).collect();
    names.sort();
    let user_names = |page: &Value| -> Vec<String> {
        page["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["userName"].as_str().unwrap().to_string())
            .collect()
    };
    let page = query(
        &s,
        "managed/user",
        &[
            ("_queryFilter", "true"),
            ("_sortKeys", "userName"),
            ("_pageSize", "50"),
        ],
    )
    .await;
    assert_eq!(user_names(&page), names[..50]);
    let page = query(
        &s,
        "managed/user",
        &[
            ("_queryFilter", "true"),
            ("_sortKeys", "-userName"),
            ("_pageSize", "50"),
        ],
    )
    .await;
    let mut last50: Vec<String> = names[ROWS - 50..].to_vec();
    last50.reverse();
    assert_eq!(user_names(&page), last50);
    let walked = walk(
        &s,
        &[
            ("_queryFilter", "true"),
            ("_sortKeys", "-userName"),
            ("_fields", "userName"),
        ],
        400,
    )
    .await;
    let walked: Vec<String> = walked
        .iter()
        .map(|o| o["userName"].as_str().unwrap().to_string())
        .collect();
    let mut descending = names.clone();
    descending.reverse();
    assert_eq!(walked, descending);

    // The links the run made: one per user.
    let links = query(
        &s,
        "repo/link",
        &[
            ("_queryFilter", "true"),
            ("_pageSize", "10"),
            ("_totalPagedResultsPolicy", "EXACT"),
        ],
    )
    .await;
    assert_eq!(links["resultCount"], 10, "{links}");
    assert_eq!(links["totalPagedResults"], ROWS, "{links}");
    for l in links["result"].as_array().unwrap() {
        assert_eq!(l["linkType"], MAPPING, "{l}");
        for side in ["firstId", "secondId"] {
            assert!(all_ids.contains(l[side].as_str().unwrap()), "{l}");
        }
    }

    // The run's recon audit: a start, one entry per user, a summary.
    let entries = query(
        &s,
        "audit/recon",
        &[
            (
                "_queryFilter",
                &format!("reconId eq \"{run_id}\" and entryType eq \"entry\""),
            ),
            ("_pageSize", "25"),
            ("_totalPagedResultsPolicy", "EXACT"),
        ],
    )
    .await;
    assert_eq!(entries["totalPagedResults"], ROWS, "{entries}");
    assert_eq!(entries["resultCount"], 25, "{entries}");
    for e in entries["result"].as_array().unwrap() {
        assert_eq!(e["reconId"], run_id.as_str(), "{e}");
        assert_eq!(e["mapping"], MAPPING, "{e}");
        assert_eq!(e["situation"], "ABSENT", "{e}");
        assert_eq!(e["action"], "CREATE", "{e}");
        assert_eq!(e["status"], "SUCCESS", "{e}");
    }
    for kind in ["start", "summary"] {
        let page = query(
            &s,
            "audit/recon",
            &[(
                "_queryFilter",
                &format!("reconId eq \"{run_id}\" and entryType eq \"{kind}\""),
            )],
        )
        .await;
        assert_eq!(page["resultCount"], 1, "{kind}: {page}");
    }
    let none = query(
        &s,
        "audit/recon",
        &[("_queryFilter", "reconId eq \"no-such-run\"")],
    )
    .await;
    assert_eq!(none["resultCount"], 0, "{none}");
}
