//! The host of scripts' `openidm` calls (docs/scripts.md, docs/adr/0011-script-host-api.md):
//! each call becomes an internal request through this API's own router, marked
//! [`InternalCall`] so it runs as the internal system user without credentials. A script's
//! `openidm.create("managed/user", ...)` therefore does exactly what `POST managed/user` does —
//! the same checks, limits, implicit and queued sync, lifecycle scripts — with no second copy of
//! those semantics.
//!
//! Threading: a script runs on a thread whose JavaScript engine is busy with it, so the request
//! is spawned on the runtime and this thread waits for it (`block_in_place` on a worker); the
//! scripts the request runs evaluate on other threads, inside the caller's call scope.

use crate::state::ApiState;
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use idsync_config::Project;
use idsync_script::host::{HostError, HostMethod, HostRequest, ScriptHost, scoped};
use serde_json::Value;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::runtime::{Handle, RuntimeFlavor};
use tower::ServiceExt;

/// Marks a request made by a script's `openidm` call: authentication lets it through as the
/// internal system user. Only code in this process can put it on a request.
#[derive(Debug, Clone, Copy)]
pub struct InternalCall;

/// The name of the internal system user in logs and audit.
pub const INTERNAL_USER: &str = "internal/system";

/// Largest response an `openidm` call takes (a bigger query answer must be paged).
const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

/// Most `openidm` calls waiting at once in this process: each holds a thread while it waits,
/// so this bounds the threads scripts can hold (tokio's blocking pool has 512), whatever the
/// call chains look like.
pub const MAX_CALLS_IN_FLIGHT: usize = 128;

/// Answers scripts' `openidm` calls through `router`, and `identityServer` from the project.
pub struct RouterHost {
    router: Router,
    project: Arc<Project>,
    handle: Handle,
    in_flight: AtomicUsize,
}

impl std::fmt::Debug for RouterHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouterHost")
            .field("project", &self.project.dir)
            .finish()
    }
}

/// Builds the host over the REST API of `state` plus `extra` routes (as [`crate::router_with`]
/// serves them) and makes it the host of every script compiled with `state.script_host`.
/// Must be called inside the tokio runtime that will serve the calls. The caller keeps the
/// returned `Arc` alive as long as scripts may call (the slot holds only a weak reference).
pub fn install(state: &ApiState, extra: Router<ApiState>) -> Arc<dyn ScriptHost> {
    let host: Arc<dyn ScriptHost> = Arc::new(RouterHost {
        router: crate::router_with(state.clone(), extra),
        project: state.project.clone(),
        handle: Handle::current(),
        in_flight: AtomicUsize::new(0),
    });
    state.script_host.set(&host);
    host
}

impl ScriptHost for RouterHost {
    fn call(&self, request: HostRequest) -> Result<Value, HostError> {
        let method = request.method;
        let http = to_http(&request)?;
        let router = self.router.clone();
        let work = scoped(request.scope.clone(), async move {
            let response = match router.oneshot(http).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), MAX_RESPONSE_BYTES).await;
            (status, body)
        });
        if self.in_flight.fetch_add(1, Ordering::SeqCst) >= MAX_CALLS_IN_FLIGHT {
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            return Err(HostError::new(
                503,
                format!("more than {MAX_CALLS_IN_FLIGHT} openidm calls are waiting at once"),
            ));
        }
        let ran = run_elsewhere(&self.handle, work);
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        let (status, body) = ran?;
        let body = body.map_err(|e| HostError::new(500, format!("reading the answer: {e}")))?;
        let value: Value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body)
                .map_err(|e| HostError::new(500, format!("the answer is not JSON: {e}")))?
        };
        if status.is_success() {
            return Ok(value);
        }
        if method == HostMethod::Read && status == StatusCode::NOT_FOUND {
            return Ok(Value::Null);
        }
        let message = value
            .get("message")
            .and_then(Value::as_str)
            .map_or_else(|| status.to_string(), str::to_owned);
        Err(HostError {
            code: status.as_u16(),
            message,
            detail: value.get("detail").cloned(),
        })
    }

    fn property(&self, name: &str) -> Option<String> {
        self.project.property(name)
    }

    fn project_location(&self) -> String {
        self.project.dir.display().to_string()
    }

    fn module(&self, name: &str) -> Result<idsync_script::ModuleSource, HostError> {
        use idsync_config::ScriptFileError as E;
        let (key, source) = idsync_config::read_module(&self.project.dir, name).map_err(|e| {
            let code = match e {
                E::NotFound(_) => 404,
                E::Outside(_) => 403,
                E::Refused(..) => 501,
                E::Unreadable(..) => 500,
            };
            HostError::new(code, format!("require('{name}'): {e}"))
        })?;
        Ok(idsync_script::ModuleSource { key, source })
    }
}

/// Runs `work` on the runtime's other threads and waits for it here: this thread's script
/// engine is busy, so the scripts `work` runs must evaluate elsewhere.
fn run_elsewhere<F>(handle: &Handle, work: F) -> Result<F::Output, HostError>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let joined = match Handle::try_current() {
        Ok(current) if current.runtime_flavor() == RuntimeFlavor::CurrentThread => {
            return Err(HostError::new(
                500,
                "openidm calls need the multi-threaded runtime (this thread cannot wait)",
            ));
        }
        Ok(_) => {
            let task = handle.spawn(work);
            tokio::task::block_in_place(|| handle.block_on(task))
        }
        Err(_) => {
            let task = handle.spawn(work);
            handle.block_on(task)
        }
    };
    joined.map_err(|e| HostError::new(500, format!("the call did not finish: {e}")))
}

/// The request the REST API gets for one call.
fn to_http(r: &HostRequest) -> Result<Request<Body>, HostError> {
    let name = r.method.name();
    let path = r
        .resource
        .trim_start_matches('/')
        .trim_start_matches("openidm/")
        .trim_end_matches('/');
    if path.is_empty() {
        return Err(HostError::new(
            400,
            format!("openidm.{name}: the resource path is empty"),
        ));
    }
    let mut uri = String::from("/openidm");
    for segment in path.split('/') {
        uri.push('/');
        encode(&mut uri, segment);
    }
    let mut query: Vec<(String, String)> = Vec::new();
    let (method, body, if_match, if_none) = match r.method {
        HostMethod::Create => match &r.new_id {
            Some(id) => {
                uri.push('/');
                encode(&mut uri, id);
                (Method::PUT, r.content.clone(), None, Some("*"))
            }
            None => {
                query.push(("_action".into(), "create".into()));
                (Method::POST, r.content.clone(), None, None)
            }
        },
        HostMethod::Read | HostMethod::Query => (Method::GET, None, None, None),
        HostMethod::Update => (Method::PUT, r.content.clone(), Some(r.rev.as_deref()), None),
        HostMethod::Patch => (
            Method::PATCH,
            r.content.clone(),
            Some(r.rev.as_deref()),
            None,
        ),
        HostMethod::Delete => (Method::DELETE, None, Some(r.rev.as_deref()), None),
        HostMethod::Action => {
            query.push(("_action".into(), r.action.clone().unwrap_or_default()));
            (Method::POST, r.content.clone(), None, None)
        }
    };
    if matches!(
        r.method,
        HostMethod::Create | HostMethod::Update | HostMethod::Patch
    ) && body.is_none()
    {
        return Err(HostError::new(
            400,
            format!("openidm.{name}: the content is required"),
        ));
    }
    for (k, v) in &r.params {
        let text = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        query.push((k.clone(), text));
    }
    if !r.fields.is_empty() {
        query.push(("_fields".into(), r.fields.join(",")));
    }
    for (i, (k, v)) in query.iter().enumerate() {
        uri.push(if i == 0 { '?' } else { '&' });
        encode(&mut uri, k);
        uri.push('=');
        encode(&mut uri, v);
    }
    let mut builder = Request::builder().method(method).uri(&uri);
    if let Some(rev) = if_match {
        let rev = rev.map_or_else(|| "*".to_owned(), |r| format!("\"{r}\""));
        builder = builder.header(header::IF_MATCH, rev);
    }
    if let Some(v) = if_none {
        builder = builder.header(header::IF_NONE_MATCH, v);
    }
    let body = match body {
        Some(v) => {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    let mut request = builder
        .body(body)
        .map_err(|e| HostError::new(400, format!("openidm.{name}: {e}")))?;
    request.extensions_mut().insert(InternalCall);
    Ok(request)
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(out: &mut String, text: &str) {
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}
