//! The admin console's static files (docs/console.md), compiled into the binary from
//! `assets/admin/` and served at `/admin/` without credentials: they hold no data, and every
//! API call the page makes carries the token the user signs in with.
//!
//! The answers forbid inline scripts and foreign origins (Content-Security-Policy), framing and
//! MIME sniffing, and ask browsers to revalidate, so a new binary's console is picked up at once.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

/// One embedded file: its path under `/admin/` and its content.
struct Asset {
    path: &'static str,
    body: &'static str,
}

macro_rules! assets {
    ($($path:literal),* $(,)?) => {
        &[$(Asset {
            path: $path,
            body: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/admin/", $path)),
        }),*]
    };
}

/// Every file of the console (a unit test checks that none under `assets/admin/` is missing).
const ASSETS: &[Asset] = assets!(
    "index.html",
    "app.css",
    "favicon.svg",
    "js/api.js",
    "js/ui.js",
    "js/charts.js",
    "js/rates.js",
    "js/main.js",
    "js/pages/dashboard.js",
    "js/pages/mappings.js",
    "js/pages/runs.js",
    "js/pages/run.js",
    "js/pages/queue.js",
    "js/pages/schedules.js",
    "js/pages/objects.js",
    "js/pages/config.js",
);

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; \
                   form-action 'self'";

/// The routes of the console, to be served without authentication.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/admin", get(|| async { Redirect::permanent("/admin/") }))
        .route("/admin/", get(|| async { file("index.html") }))
        .route(
            "/admin/{*path}",
            get(|Path(path): Path<String>| async move { file(&path) }),
        )
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

fn file(path: &str) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.path == path) else {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("/admin/{path}: no such file in the console\n"),
        )
            .into_response();
    };
    let mut resp = asset.body.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path as FsPath, PathBuf};

    fn files_under(dir: &FsPath, base: &FsPath, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let p: PathBuf = entry.unwrap().path();
            if p.is_dir() {
                files_under(&p, base, out);
            } else {
                let rel = p
                    .strip_prefix(base)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push(rel);
            }
        }
    }

    #[test]
    fn every_asset_file_is_embedded() {
        let base = FsPath::new(env!("CARGO_MANIFEST_DIR")).join("assets/admin");
        let mut on_disk = Vec::new();
        files_under(&base, &base, &mut on_disk);
        on_disk.sort();
        let mut embedded: Vec<String> = ASSETS.iter().map(|a| a.path.to_string()).collect();
        embedded.sort();
        assert_eq!(
            embedded, on_disk,
            "list every file of assets/admin/ in ASSETS"
        );
    }

    #[test]
    fn every_module_import_resolves_to_an_embedded_file() {
        // A missing module only shows in the browser; catch it here.
        for a in ASSETS.iter().filter(|a| a.path.ends_with(".js")) {
            let dir = a.path.rsplit_once('/').map_or("", |(d, _)| d);
            for line in a.body.lines().filter(|l| l.starts_with("import ")) {
                let Some(spec) = line.split(['\'', '"']).nth(1) else {
                    continue;
                };
                let mut parts: Vec<&str> = if dir.is_empty() {
                    vec![]
                } else {
                    dir.split('/').collect()
                };
                for seg in spec.split('/') {
                    match seg {
                        "." => {}
                        ".." => {
                            parts.pop();
                        }
                        s => parts.push(s),
                    }
                }
                let target = parts.join("/");
                assert!(
                    ASSETS.iter().any(|x| x.path == target),
                    "{} imports {spec} ({target}), which is not embedded",
                    a.path
                );
            }
        }
    }
}
