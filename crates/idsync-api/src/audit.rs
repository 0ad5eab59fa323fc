//! `GET audit/recon` and `GET audit/sync` (docs/rest.md): CREST queries over the audit topics.
//! Read-only; entries are written by the engine with the work they describe.

use crate::error::{ApiError, ApiResult};
use crate::params::Params;
use crate::state::ApiState;
use crate::stream::query_response;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use idsync_repo::AuditKind;

/// The routes of this resource.
pub fn routes() -> Router<ApiState> {
    Router::new().route("/openidm/audit/{topic}", get(query))
}

async fn query(
    State(state): State<ApiState>,
    Path(topic): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let kind = match topic.as_str() {
        "recon" => AuditKind::Recon,
        "sync" => AuditKind::Sync,
        other => {
            return Err(ApiError::NotFound(format!(
                "audit/{other} not found (available: recon, sync)"
            )));
        }
    };
    if !params.is_query() {
        return Err(ApiError::BadRequest(format!(
            "reading audit/{topic} needs _queryFilter or _queryId"
        )));
    }
    let req = params.query_request(&state.limits)?;
    let repo = state.repo.clone();
    query_response(&state, &format!("audit/{topic}"), req, move |q| {
        let repo = repo.clone();
        async move { Ok(repo.query_audit(kind, &q).await?) }
    })
    .await
}
