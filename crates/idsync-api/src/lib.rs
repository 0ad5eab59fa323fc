//! idsync's REST API (docs/rest.md): axum routers under `/openidm`, CREST query
//! parameters and envelopes, CREST error bodies, authentication and roles.
//!
//! This crate owns HTTP only: it must not contain sync or recon logic (it calls the engine, the
//! repository and the connectors), and it is the only crate that depends on axum.
//!
//! Layout: one module per resource (`managed` and its `relationships`, `system`, `links`, `config`, `audit`, `cluster`),
//! each exposing `routes()`; `http` holds the shared extractors and middleware, `params` the
//! CREST query parameters and envelope, `auth` the credentials, `error` the one error enum.
//! The integrator adds recon and sync routes with [`router_with`], so they share the same
//! authentication, limits and error shapes.

pub mod admin;
pub mod audit;
pub mod auth;
pub mod caller;
pub mod cluster;
pub mod config;
pub mod cookie;
pub mod error;
pub mod http;
pub mod limits;
pub mod links;
pub mod livesync;
pub mod managed;
pub mod metrics;
pub mod params;
pub mod patch;
pub mod queue;
pub mod recon;
pub mod relationships;
pub mod scheduler;
pub mod script_host;
pub mod server;
pub mod session;
pub mod state;
pub mod stream;
pub mod sync;
pub mod system;

pub use auth::{
    AdminTokenFile, AuthState, Principal, ensure_admin_token_file, hash_password, new_token,
    sha256_hex, verify_password,
};
pub use error::{ApiError, ApiResult};
pub use http::{JsonBody, OptionalJsonBody, Precondition, object_response};
pub use params::{Params, envelope};
pub use state::{ApiContext, ApiState, Limits, ManagedChange, ManagedHooks, SystemActions};

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use std::future::Future;

/// The whole REST API for `state`.
pub fn router(state: ApiState) -> Router {
    router_with(state, Router::new())
}

/// The REST API plus `extra` routes (e.g. `/openidm/recon`, `/openidm/sync`), which get the
/// same authentication, roles, limits, `_prettyPrint` and CREST fallbacks.
pub fn router_with(state: ApiState, extra: Router<ApiState>) -> Router {
    let protected = Router::new()
        .merge(managed::routes())
        .merge(relationships::routes())
        .merge(system::routes())
        .merge(links::routes())
        .merge(config::routes())
        .merge(audit::routes())
        .merge(cluster::routes())
        .merge(crate::metrics::routes())
        .merge(queue::routes())
        .merge(session::routes())
        .merge(extra)
        .fallback(http::not_found)
        .method_not_allowed_fallback(http::method_not_supported)
        .layer(from_fn_with_state(state.clone(), require_auth));
    Router::new()
        .route("/openidm/info/ping", get(ping))
        .merge(session::login_routes())
        .merge(admin::routes())
        .merge(protected)
        .layer(from_fn_with_state(state.clone(), http::timeout_layer))
        .layer(from_fn(http::crest_rejections))
        .layer(from_fn(http::pretty_print_layer))
        .layer(from_fn(log_request))
        .layer(from_fn(crate::metrics::record_request))
        .with_state(state)
}

/// The routes the engine answers beyond the core API: recon, sync, scheduler and liveSync, as
/// `idsync serve` adds them (and `idsync recon`'s script host, so scripts see the same API).
pub fn engine_routes(engine: std::sync::Arc<idsync_engine::Engine>) -> Router<ApiState> {
    recon::routes(engine.clone())
        .merge(sync::routes(engine.clone()))
        .merge(scheduler::routes(engine.clone()))
        .merge(livesync::routes(engine))
}

/// Serves the API on `listener` until `shutdown` completes, then lets in-flight requests
/// finish. The connections get the state's header timeout and connection cap.
pub async fn serve(
    state: ApiState,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(state, Router::new(), listener, shutdown).await
}

/// Like [`serve`] with extra routes (see [`router_with`]).
pub async fn serve_with(
    state: ApiState,
    extra: Router<ApiState>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = server::ConnectionLimits {
        header_timeout: state.limits.header_timeout,
        max_connections: state.limits.max_connections,
    };
    server::serve_router(router_with(state, extra), listener, limits, shutdown).await
}

/// `GET info/ping`: liveness, no authentication (docs/rest.md).
async fn ping() -> Response {
    axum::Json(json!({"_id": "", "state": "ACTIVE_READY", "shortDesc": "OpenIDM ready"}))
        .into_response()
}

/// Authenticates every protected request and enforces roles: 401 without or with wrong
/// credentials, 403 for a role that may not use the method. The principal is put in the
/// request's extensions for handlers that want it.
async fn require_auth(State(state): State<ApiState>, mut req: Request, next: Next) -> Response {
    // A script's `openidm` call runs as the internal system user (docs/scripts.md).
    if req
        .extensions()
        .get::<script_host::InternalCall>()
        .is_some()
    {
        req.extensions_mut().insert(Principal {
            name: script_host::INTERNAL_USER.to_owned(),
            roles: vec![idsync_config::Role::Admin],
        });
        return next.run(req).await;
    }
    match state.auth.authenticate(req.headers()).await {
        Ok(Some(principal)) => {
            if !principal.may(req.method()) {
                return ApiError::Forbidden(format!(
                    "{} may not {} {}",
                    principal.name,
                    req.method(),
                    req.uri().path()
                ))
                .into_response();
            }
            req.extensions_mut().insert(principal);
            next.run(req).await
        }
        Ok(None) => ApiError::Unauthorized(
            "authentication required: Authorization: Bearer <token> or X-OpenIDM-Username/X-OpenIDM-Password"
                .into(),
        )
        .into_response(),
        Err(e) => e.into_response(),
    }
}

/// One debug line per request: method, path and status. Never the query string or headers
/// (they may carry filters with personal data or credentials).
async fn log_request(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = next.run(req).await;
    tracing::debug!(%method, %path, status = resp.status().as_u16(), "request");
    resp
}
