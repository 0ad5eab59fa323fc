//! The REST reference (`docs/rest.md`) against the routers: every route the code registers is
//! documented, and the reference documents no route that does not exist.
//!
//! axum cannot list a router's routes, so they are read from the source: every
//! `.route("PATH", get(..).post(..))` call of the workspace's crates. The reference documents
//! each route under a heading `` `METHOD PATH[?query]` ``; path parameters compare by position,
//! not name.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const METHODS: [&str; 7] = ["get", "post", "put", "patch", "delete", "head", "options"];

/// `/openidm/managed/{object_type}/{id}` → `/openidm/managed/{}/{}`.
fn normalise(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            c if !in_param => out.push(c),
            _ => {}
        }
    }
    out
}

/// `METHOD PATH` of every `.route(...)` call in `source`.
fn routes_in(source: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        let Some(start) = rest.find('"') else { break };
        let Some(len) = rest[start + 1..].find('"') else {
            break;
        };
        let path = &rest[start + 1..start + 1 + len];
        // The method router: up to the parenthesis that closes `.route(`.
        let mut depth = 1;
        let mut end = rest.len();
        for (i, c) in rest.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                end = i;
                break;
            }
        }
        let router = &rest[start + 1 + len..end];
        for m in METHODS {
            let mut from = 0;
            while let Some(i) = router[from..].find(&format!("{m}(")) {
                let pos = from + i;
                let before = router[..pos].chars().next_back();
                if !before.is_some_and(|b| b.is_alphanumeric() || b == '_') {
                    out.push(format!("{} {}", m.to_uppercase(), normalise(path)));
                }
                from = pos + m.len();
            }
        }
        rest = &rest[end..];
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every route registered by the source of the workspace's crates (not their tests).
fn served_routes() -> BTreeSet<String> {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for c in std::fs::read_dir(&crates).unwrap().flatten() {
        rust_files(&c.path().join("src"), &mut files);
    }
    files
        .iter()
        .flat_map(|f| routes_in(&std::fs::read_to_string(f).unwrap()))
        .collect()
}

/// `METHOD PATH` of every heading of the form `` `METHOD PATH[?query]` ``.
fn documented_routes(markdown: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in markdown.lines() {
        if !line.starts_with('#') {
            continue;
        }
        let heading = line.trim_start_matches('#').trim().trim_matches('`');
        let mut words = heading.split_whitespace();
        let (Some(method), Some(path)) = (words.next(), words.next()) else {
            continue;
        };
        if !METHODS.contains(&method.to_lowercase().as_str()) || method != method.to_uppercase() {
            continue;
        }
        let path = path.trim_end_matches('`');
        let path = path.split('?').next().unwrap_or(path);
        if path.starts_with('/') {
            out.insert(format!("{method} {}", normalise(path)));
        }
    }
    out
}

#[test]
fn the_rest_reference_documents_exactly_the_served_routes() {
    let served = served_routes();
    for probe in [
        "GET /openidm/info/ping",
        "PATCH /openidm/managed/{}/{}",
        "POST /openidm/recon",
    ] {
        assert!(served.contains(probe), "{probe} not found: {served:#?}");
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/rest.md");
    let documented = documented_routes(&std::fs::read_to_string(path).unwrap());
    let missing: Vec<_> = served.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&served).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "docs/rest.md is out of step with the routers.\n\
         Served but not documented: {missing:#?}\n\
         Documented but not served: {unknown:#?}"
    );
}

#[test]
fn routes_are_read_from_route_calls_and_headings() {
    let src = r#"Router::new()
        .route("/openidm/a/{id}", get(read).put(put).delete(delete_it))
        .route(
            "/openidm/b",
            post(action),
        )
        .layer(x(y))"#;
    assert_eq!(
        routes_in(src),
        [
            "GET /openidm/a/{}",
            "PUT /openidm/a/{}",
            "DELETE /openidm/a/{}",
            "POST /openidm/b"
        ]
    );
    let md = "## Managed\n### `GET /openidm/a/{type}`\ntext GET /nothing\n\
              #### `POST /openidm/b?_action=go`\n### Get started\n";
    let docs: Vec<String> = documented_routes(md).into_iter().collect();
    assert_eq!(docs, ["GET /openidm/a/{}", "POST /openidm/b"]);
}
