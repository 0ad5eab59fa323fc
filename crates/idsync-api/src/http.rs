//! HTTP plumbing shared by every resource: the JSON body extractor (size cap, CREST 400s
//! instead of axum's plain-text rejections), revision headers, the request-timeout and
//! `_prettyPrint` middleware, and the CREST 404/501 fallbacks.

use crate::error::{ApiError, ApiResult};
use crate::state::ApiState;
use axum::body::Body;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// A JSON request body, read up to the state's `max_body_bytes`.
#[derive(Debug, Clone)]
pub struct JsonBody(pub Value);

impl FromRequest<ApiState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &ApiState) -> Result<Self, Self::Rejection> {
        let limit = state.limits.max_body_bytes;
        let bytes = axum::body::to_bytes(req.into_body(), limit)
            .await
            .map_err(|_| {
                ApiError::BadRequest(format!(
                    "the request body is larger than {limit} bytes or could not be read"
                ))
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::BadRequest("the request needs a JSON body".into()));
        }
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))?;
        Ok(JsonBody(value))
    }
}

impl JsonBody {
    /// The body as a JSON object (resources are objects).
    pub fn into_object(self) -> ApiResult<Value> {
        match self.0 {
            v @ Value::Object(_) => Ok(v),
            other => Err(ApiError::BadRequest(format!(
                "the body must be a JSON object, not {}",
                json_type(&other)
            ))),
        }
    }
}

/// An optional JSON body (actions whose body may be empty).
#[derive(Debug, Clone)]
pub struct OptionalJsonBody(pub Option<Value>);

impl FromRequest<ApiState> for OptionalJsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &ApiState) -> Result<Self, Self::Rejection> {
        let limit = state.limits.max_body_bytes;
        let bytes = axum::body::to_bytes(req.into_body(), limit)
            .await
            .map_err(|_| {
                ApiError::BadRequest(format!(
                    "the request body is larger than {limit} bytes or could not be read"
                ))
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJsonBody(None));
        }
        serde_json::from_slice(&bytes)
            .map(|v| OptionalJsonBody(Some(v)))
            .map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `If-Match` / `If-None-Match` as CREST uses them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    None,
    /// `If-Match: *`: the object must exist.
    Exists,
    /// `If-Match: "<rev>"`.
    Rev(String),
    /// `If-None-Match: *`: the object must not exist (create only).
    Absent,
}

impl Precondition {
    pub fn from_headers(headers: &HeaderMap) -> ApiResult<Self> {
        let read = |name: header::HeaderName| -> ApiResult<Option<String>> {
            headers
                .get(&name)
                .map(|v| {
                    v.to_str()
                        .map(|s| s.trim().trim_matches('"').to_string())
                        .map_err(|_| ApiError::BadRequest(format!("malformed {name} header")))
                })
                .transpose()
        };
        let if_match = read(header::IF_MATCH)?;
        let if_none = read(header::IF_NONE_MATCH)?;
        match (if_match, if_none) {
            (Some(_), Some(_)) => Err(ApiError::BadRequest(
                "If-Match and If-None-Match cannot be used together".into(),
            )),
            (Some(m), None) if m == "*" => Ok(Precondition::Exists),
            (Some(m), None) => Ok(Precondition::Rev(m)),
            (None, Some(n)) if n == "*" => Ok(Precondition::Absent),
            (None, Some(_)) => Err(ApiError::BadRequest(
                "only If-None-Match: * is supported".into(),
            )),
            (None, None) => Ok(Precondition::None),
        }
    }

    /// The revision to check on a write, if any.
    pub fn rev(&self) -> Option<&str> {
        match self {
            Precondition::Rev(r) => Some(r),
            _ => None,
        }
    }
}

/// A JSON answer with an `ETag` of the object's `_rev` when it has one.
pub fn object_response(status: StatusCode, object: Value) -> Response {
    let etag = object
        .get("_rev")
        .and_then(Value::as_str)
        .and_then(|r| HeaderValue::from_str(&format!("\"{r}\"")).ok());
    let mut resp = (status, axum::Json(object)).into_response();
    if let Some(etag) = etag {
        resp.headers_mut().insert(header::ETAG, etag);
    }
    resp
}

/// Answers 504 in CREST shape when a request runs past the limit. The handler's future is
/// dropped: work already committed stays committed, hence "effect unknown". A request that
/// waits for a run by design ([`waits_for_a_run`]) is not limited.
pub async fn timeout_layer(State(state): State<ApiState>, req: Request, next: Next) -> Response {
    if waits_for_a_run(&req) {
        return next.run(req).await;
    }
    let limit = state.limits.request_timeout;
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => ApiError::Timeout(format!(
            "the request did not finish within {} s; its effect is unknown",
            limit.as_secs_f64()
        ))
        .into_response(),
    }
}

/// `POST recon?_action=...&waitForCompletion=true`: the client asked to wait for the whole run
/// (however long a clustered run takes), so the request timeout does not apply. The
/// handler ends when the run does; a client that gives up just closes the connection.
pub fn waits_for_a_run(req: &Request) -> bool {
    req.method() == axum::http::Method::POST
        && req.uri().path().trim_end_matches('/') == "/openidm/recon"
        && req.uri().query().is_some_and(|q| {
            q.split('&').any(|kv| {
                kv.split_once('=').is_some_and(|(k, v)| {
                    k == "waitForCompletion" && v.eq_ignore_ascii_case("true")
                })
            })
        })
}

/// `_prettyPrint=true` re-renders a JSON answer indented.
pub async fn pretty_print_layer(req: Request, next: Next) -> Response {
    let pretty = req.uri().query().is_some_and(|q| {
        q.split('&')
            .any(|kv| kv.eq_ignore_ascii_case("_prettyPrint=true"))
    });
    let resp = next.run(req).await;
    if !pretty || !is_json(resp.headers()) {
        return resp;
    }
    // A streamed answer (no known size) stays compact: re-rendering it would hold it whole.
    if http_body::Body::size_hint(resp.body()).exact().is_none() {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    // Answers are small JSON documents built by this crate; the cap only guards memory.
    let Ok(bytes) = axum::body::to_bytes(body, 256 * 1024 * 1024).await else {
        return ApiError::Internal("response body could not be re-read".into()).into_response();
    };
    let text = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| serde_json::to_vec_pretty(&v).ok())
        .unwrap_or_else(|| bytes.to_vec());
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(text))
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// Turns every error answer that is not JSON (axum's and hyper's own rejections: a path that is
/// not UTF-8, a body over a route's limit, a missing content type) into the CREST error shape,
/// keeping its status and its text as the message. Handlers' own errors are JSON already and
/// pass untouched.
pub async fn crest_rejections(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(resp.headers()) {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    // Rejection texts are short; a long one is cut rather than buffered whole.
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text
    };
    let body = serde_json::json!({
        "code": status.as_u16(),
        "reason": status.canonical_reason().unwrap_or("Error"),
        "message": message,
    });
    let mut out = (status, axum::Json(body)).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

/// Unknown paths: CREST 404.
pub async fn not_found(req: Request) -> ApiError {
    ApiError::NotFound(format!("resource {} not found", req.uri().path()))
}

/// A known path with a method it does not support: CREST 501 (NotSupported).
pub async fn method_not_supported(req: Request) -> ApiError {
    ApiError::NotSupported(format!(
        "{} is not supported on {}",
        req.method(),
        req.uri().path()
    ))
}
