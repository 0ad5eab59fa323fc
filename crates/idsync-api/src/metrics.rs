//! Prometheus metrics (docs/operations.md#monitoring): `GET metrics/prometheus` renders the
//! installed recorder in the text exposition format, and a middleware records every request by
//! method, matched route template and status.
//!
//! The route label is axum's [`MatchedPath`] (`/openidm/managed/{type}/{id}`), never the raw URI:
//! ids in paths would make one series per object. Requests that match no route are labelled
//! `unmatched`; unknown methods `OTHER`.

use crate::error::{ApiError, ApiResult};
use crate::state::ApiState;
use ::metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, histogram};
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use idsync_core::ErrorCode;
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use std::time::{Duration, Instant};

/// Counter, labels `method`, `route`, `status`.
pub const HTTP_REQUESTS: &str = "idsync_http_requests_total";
/// Histogram, seconds, labels `method`, `route`.
pub const HTTP_REQUEST_DURATION: &str = "idsync_http_request_duration_seconds";
/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Histogram buckets of every `*_seconds` metric: from a fast repository read to a slow page.
const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 120.0, 300.0,
];
/// How often histogram samples are folded into their buckets when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The routes of this resource.
pub fn routes() -> Router<ApiState> {
    Router::new().route("/openidm/metrics/prometheus", get(prometheus))
}

/// Installs the process-wide Prometheus recorder (durations as histograms with
/// [`SECONDS_BUCKETS`]), describes the API's and the engine's metrics and turns the engine's on.
/// Inside a tokio runtime it also spawns the upkeep task that keeps unscraped histogram samples
/// from piling up. A process has one global recorder: a second call fails.
pub fn install_recorder() -> Result<PrometheusHandle, BuildError> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)?
        .install_recorder()?;
    describe_histogram!(
        HTTP_REQUEST_DURATION,
        Unit::Seconds,
        "REST request duration until the response head, per method and route template"
    );
    describe_counter!(
        HTTP_REQUESTS,
        "REST requests answered, per method, route template and status"
    );
    describe_counter!(
        crate::auth::PASSWORD_CHECKS,
        "password verifications run (unknown users included)"
    );
    describe_gauge!(
        crate::auth::PASSWORD_CHECKS_RUNNING,
        "password verifications running now (at most maxConcurrentLogins)"
    );
    describe_gauge!(
        crate::auth::PASSWORD_CHECKS_WAITING,
        "password checks waiting for their turn"
    );
    idsync_engine::metered::enable();
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        let upkeep = handle.clone();
        rt.spawn(async move {
            loop {
                tokio::time::sleep(UPKEEP_EVERY).await;
                upkeep.run_upkeep();
            }
        });
    }
    Ok(handle)
}

/// `GET metrics/prometheus`: the recorder's metrics as Prometheus text; 503 without a recorder.
async fn prometheus(State(state): State<ApiState>) -> ApiResult<Response> {
    let Some(handle) = &state.metrics else {
        return Err(ApiError::WithDetail {
            code: ErrorCode::Unavailable,
            message: "metrics are not recorded by this process (idsync serve records them)".into(),
            detail: json!({"metrics": "disabled"}),
        });
    };
    let mut resp = handle.render().into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    Ok(resp)
}

/// A bounded method label: the standard methods by name, anything else `OTHER`.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Middleware: counts and times every request by method, route template and status.
pub async fn record_request(req: Request, next: Next) -> Response {
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let started = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    histogram!(HTTP_REQUEST_DURATION, "method" => method, "route" => route.clone())
        .record(started.elapsed().as_secs_f64());
    counter!(HTTP_REQUESTS, "method" => method, "route" => route, "status" => status).increment(1);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_a_bounded_set() {
        assert_eq!(method_label(&Method::GET), "GET");
        let odd = Method::from_bytes(b"PROPFIND").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(method_label(&odd), "OTHER");
    }
}
