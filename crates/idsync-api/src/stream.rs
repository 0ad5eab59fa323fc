//! Query answers of any size with bounded memory (docs/SECURITY.md). A paged query is answered
//! as one JSON document. An unpaged one (`_queryFilter` without `_pageSize`) returns every match,
//! as IDM does: its backend is read page by page through the keyset cookie, and the envelope is
//! written as the pages arrive, so the server holds one page at a time whatever the total.
//!
//! A streamed answer has an idle timeout instead of the request ceiling: a client that stops
//! reading for `header_timeout` loses its connection. An operator may cap unpaged queries
//! (`max_unpaged_results`, off by default); past the cap the client is told to page.

use crate::error::{ApiError, ApiResult};
use crate::http::object_response;
use crate::params::envelope;
use crate::state::ApiState;
use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use idsync_core::{QueryPage, QueryRequest};
use serde_json::json;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

/// Objects read from the backend at a time for an unpaged query.
pub const STREAM_PAGE: usize = 1000;

/// Answers `req` with pages from `run`: one document when paged, a stream when unpaged.
pub async fn query_response<F, Fut>(
    state: &ApiState,
    req: QueryRequest,
    run: F,
) -> ApiResult<Response>
where
    F: Fn(QueryRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ApiResult<QueryPage>> + Send + 'static,
{
    if req.page_size.is_some() {
        let page = run(req.clone()).await?;
        return Ok(object_response(StatusCode::OK, envelope(&req, page)));
    }
    let cap = state.limits.max_unpaged_results;
    let mut first_req = req.clone();
    first_req.page_size = Some(STREAM_PAGE.min(cap.saturating_add(1)).max(1));
    // The first page is read before answering: a bad filter or an unreachable backend is still
    // a CREST error with its status.
    let mut first = run(first_req).await?;
    if first.results.len() > cap {
        return Err(too_many(cap));
    }
    if first.cookie.is_none() {
        return Ok(object_response(StatusCode::OK, envelope(&req, first)));
    }
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(2);
    let idle = state.limits.header_timeout;
    let total = first.total;
    let policy = req.total_policy.as_str();
    tokio::spawn(async move {
        let send = |chunk: String| {
            let tx = tx.clone();
            async move {
                // A client that reads nothing for `idle` is given up on.
                matches!(
                    tokio::time::timeout(idle, tx.send(Ok(Bytes::from(chunk)))).await,
                    Ok(Ok(()))
                )
            }
        };
        let mut count = 0usize;
        let mut text = String::from("{\"result\":[");
        let mut cookie = first.cookie.take();
        let mut results = std::mem::take(&mut first.results);
        loop {
            for obj in results.drain(..) {
                if count > 0 {
                    text.push(',');
                }
                count += 1;
                text.push_str(&obj.to_string());
            }
            if !send(std::mem::take(&mut text)).await {
                return;
            }
            let Some(c) = cookie.take() else { break };
            if count >= cap {
                // Past the cap mid-stream: the transfer breaks, no client takes it as whole.
                tracing::warn!(
                    cap,
                    "an unpaged query passed the configured cap while streaming"
                );
                let _ = tx
                    .send(Err(std::io::Error::other(too_many(cap).to_string())))
                    .await;
                return;
            }
            let mut next = req.clone();
            next.page_size = Some(STREAM_PAGE);
            next.cookie = Some(c);
            next.offset = None;
            next.total_policy = idsync_core::TotalPolicy::None;
            match run(next).await {
                Ok(page) => {
                    cookie = page.cookie;
                    results = page.results;
                }
                Err(e) => {
                    // The status is sent: the body ends in an error, so the client sees a
                    // broken transfer rather than a short document that looks whole.
                    tracing::warn!(error = %e, "a streamed query failed after its first page");
                    let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                    return;
                }
            }
        }
        let tail = json!({
            "resultCount": count,
            "pagedResultsCookie": null,
            "totalPagedResultsPolicy": policy,
            "totalPagedResults": total.map_or(-1, |t| t as i64),
            "remainingPagedResults": if total.is_some() { 0 } else { -1 },
        });
        let tail = tail.to_string();
        // `{"resultCount":...}` without its opening brace, after the array.
        let _ = send(format!("],{}", &tail[1..])).await;
    });
    let mut resp = Body::new(ChannelBody(rx)).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

fn too_many(cap: usize) -> ApiError {
    ApiError::BadRequest(format!(
        "the query matches more than {cap} objects: page it with _pageSize"
    ))
}

/// A response body fed by a channel; it ends when the sender is dropped.
struct ChannelBody(mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| c.map(http_body::Frame::data)))
    }
}
