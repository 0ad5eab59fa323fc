//! Metrics (docs/operations.md#monitoring): `GET metrics/prometheus` renders the process's
//! Prometheus recorder; requests are counted and timed by method, route template (never the raw
//! path) and status.
//!
//! A process has one global recorder, so every test here shares the one installed by
//! [`recorder`]; tests in the same process (plain `cargo test`) add to the same counters, so
//! assertions compare a series before and after this test's own requests.

use crate::harness::*;
use axum::Router;
use idsync_api::Limits;
use metrics_exporter_prometheus::PrometheusHandle;
use reqwest::Method;
use std::collections::BTreeMap;
use std::sync::OnceLock;

fn recorder() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| idsync_api::metrics::install_recorder().unwrap())
        .clone()
}

async fn metered_server() -> Server {
    let handle = recorder();
    Server::start_full(
        Limits::default(),
        5,
        move |s| s.with_metrics(handle),
        Router::new(),
    )
    .await
}

/// One sample line `name{k="v",...} value`, parsed.
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.strip_suffix('}').unwrap()),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|kv| !kv.is_empty())
                .map(|kv| {
                    let (k, v) = kv.split_once("=\"").unwrap();
                    (k.to_string(), v.trim_end_matches('"').to_string())
                })
                .collect();
            Sample {
                name: name.to_string(),
                labels,
                value: value.parse().unwrap(),
            }
        })
        .collect()
}

/// The value of the series `name` with exactly `labels`, 0 when it is absent.
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let want: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    samples(text)
        .into_iter()
        .find(|s| s.name == name && s.labels == want)
        .map_or(0.0, |s| s.value)
}

async fn scrape(s: &Server) -> String {
    let resp = s
        .reader(Method::GET, "metrics/prometheus")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let ctype = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(
        ctype.starts_with("text/plain; version=0.0.4"),
        "content type {ctype}"
    );
    resp.text().await.unwrap()
}

#[tokio::test]
async fn requests_are_counted_by_route_template_never_by_raw_path() {
    let s = metered_server().await;
    let managed_item = [
        ("method", "GET"),
        ("route", "/openidm/managed/{object_type}/{id}"),
        ("status", "404"),
    ];
    let system_item = [
        ("method", "GET"),
        ("route", "/openidm/system/{name}/{object_type}/{id}"),
        ("status", "200"),
    ];
    let before = scrape(&s).await;

    for id in ["no-such-id-7f3a", "no-such-id-91bc"] {
        let (status, body) = send(s.admin(Method::GET, &format!("managed/user/{id}"))).await;
        assert_eq!(status, 404, "{body}");
    }
    let (status, body) = send(s.reader(Method::GET, "system/hr/account/u0003")).await;
    assert_eq!(status, 200, "{body}");

    let after = scrape(&s).await;
    let name = "idsync_http_requests_total";
    assert_eq!(
        value(&after, name, &managed_item) - value(&before, name, &managed_item),
        2.0,
        "{after}"
    );
    assert_eq!(
        value(&after, name, &system_item) - value(&before, name, &system_item),
        1.0,
        "{after}"
    );
    // The first scrape is itself counted by the time of the second.
    let scrapes = [
        ("method", "GET"),
        ("route", "/openidm/metrics/prometheus"),
        ("status", "200"),
    ];
    assert!(value(&after, name, &scrapes) >= 1.0, "{after}");
    // Durations are Prometheus histograms per method and route.
    let hist = [
        ("method", "GET"),
        ("route", "/openidm/managed/{object_type}/{id}"),
    ];
    let count = "idsync_http_request_duration_seconds_count";
    assert_eq!(
        value(&after, count, &hist) - value(&before, count, &hist),
        2.0,
        "{after}"
    );
    assert!(
        after.contains("idsync_http_request_duration_seconds_bucket{"),
        "{after}"
    );
    assert!(
        after.contains("# TYPE idsync_http_request_duration_seconds histogram"),
        "{after}"
    );
    // No raw path (object ids) ever becomes a label value.
    for raw in ["no-such-id-7f3a", "no-such-id-91bc", "u0003"] {
        assert!(
            !after.contains(raw),
            "{raw} leaked into the metrics: {after}"
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn unmatched_paths_share_one_label() {
    let s = metered_server().await;
    let series = [("method", "GET"), ("route", "unmatched"), ("status", "404")];
    let before = scrape(&s).await;
    let (status, body) = send(s.admin(Method::GET, "no/such/thing-5d2e")).await;
    assert_crest_error(status, &body, 404, "not found");
    let after = scrape(&s).await;
    let name = "idsync_http_requests_total";
    assert_eq!(
        value(&after, name, &series) - value(&before, name, &series),
        1.0,
        "{after}"
    );
    assert!(!after.contains("thing-5d2e"), "{after}");
    s.stop().await;
}

#[tokio::test]
async fn metrics_need_credentials_and_refusals_are_counted() {
    let s = metered_server().await;
    let refused = [
        ("method", "GET"),
        ("route", "/openidm/metrics/prometheus"),
        ("status", "401"),
    ];
    let before = scrape(&s).await;
    let (status, body) = send(s.anon(Method::GET, "metrics/prometheus")).await;
    assert_crest_error(status, &body, 401, "authentication required");
    let (status, body) = send(
        s.anon(Method::GET, "metrics/prometheus")
            .bearer_auth("wrong-token"),
    )
    .await;
    assert_crest_error(status, &body, 401, "invalid credentials");
    let after = scrape(&s).await;
    let name = "idsync_http_requests_total";
    assert_eq!(
        value(&after, name, &refused) - value(&before, name, &refused),
        2.0,
        "{after}"
    );
    // Metrics are a read: a reader may scrape (scrape() uses the reader token), a write is
    // refused.
    let (status, body) = send(s.reader(Method::POST, "metrics/prometheus")).await;
    assert_crest_error(status, &body, 403, "may not");
    s.stop().await;
}

#[tokio::test]
async fn without_a_recorder_the_endpoint_is_unavailable() {
    let s = Server::start().await;
    let (status, body) = send(s.admin(Method::GET, "metrics/prometheus")).await;
    assert_crest_error(status, &body, 503, "metrics are not recorded");
    assert_eq!(body["reason"], "Service Unavailable");
    s.stop().await;
}
