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

/// Answers `req` over the resource `scope` (e.g. `managed/user`) with pages from `run`: one
/// document when paged, a stream when unpaged. The client's paging cookie is checked and the
/// next page's cookie signed here ([`crate::cookie`]): `run` sees only its backend's own.
pub async fn query_response<F, Fut>(
    state: &ApiState,
    scope: &str,
    mut req: QueryRequest,
    run: F,
) -> ApiResult<Response>
where
    F: Fn(QueryRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ApiResult<QueryPage>> + Send + 'static,
{
    crate::cookie::open_request(state, scope, &mut req).await?;
    if req.page_size.is_some() {
        let mut page = run(req.clone()).await?;
        crate::cookie::seal_page(state, scope, &req, &mut page.cookie).await?;
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
    let total = first.total;
    let policy = req.total_policy.as_str();
    Ok(stream_response(state, move |out| async move {
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
            out.send(std::mem::take(&mut text)).await?;
            let Some(c) = cookie.take() else { break };
            if count >= cap {
                // Past the cap mid-stream: the transfer breaks, no client takes it as whole.
                return Err(too_many(cap).to_string());
            }
            let mut next = req.clone();
            next.page_size = Some(STREAM_PAGE);
            next.cookie = Some(c);
            next.offset = None;
            next.total_policy = idsync_core::TotalPolicy::None;
            let page = run(next).await.map_err(|e| e.to_string())?;
            cookie = page.cookie;
            results = page.results;
        }
        let tail = json!({
            "resultCount": count,
            "pagedResultsCookie": null,
            "totalPagedResultsPolicy": policy,
            "totalPagedResults": total.map_or(-1, |t| t as i64),
            "remainingPagedResults": if total.is_some() { 0 } else { -1 },
        })
        .to_string();
        // `{"resultCount":...}` without its opening brace, after the array.
        out.send(format!("],{}", &tail[1..])).await
    }))
}

/// Where a streamed answer writes its text.
#[derive(Debug, Clone)]
pub struct Out {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    idle: std::time::Duration,
}

impl Out {
    /// Sends one piece of the answer; an error when the client has gone or has read nothing
    /// for the idle timeout (the producer then stops).
    pub async fn send(&self, chunk: String) -> Result<(), String> {
        match tokio::time::timeout(self.idle, self.tx.send(Ok(Bytes::from(chunk)))).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err("the client has gone".into()),
            Err(_) => Err("the client stopped reading".into()),
        }
    }
}

/// A 200 JSON answer whose body `produce` writes piece by piece from a task of its own, with
/// the state's idle timeout. When `produce` fails after the status is sent, the body ends in
/// an error: the client sees a broken transfer, never a short document that looks whole.
pub fn stream_response<F, Fut>(state: &ApiState, produce: F) -> Response
where
    F: FnOnce(Out) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(2);
    let idle = state.limits.header_timeout;
    let out = Out {
        tx: tx.clone(),
        idle,
    };
    tokio::spawn(idsync_script::host::inherit(async move {
        if let Err(e) = produce(out).await {
            tracing::warn!(error = %e, "a streamed answer stopped before its end");
            let _ = tokio::time::timeout(idle, tx.send(Err(std::io::Error::other(e)))).await;
        }
    }));
    let mut resp = Body::new(ChannelBody(rx)).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp
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
