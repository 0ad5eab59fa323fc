//! `GET repo/link[/<id>]` (docs/rest.md): CREST queries over the links table,
//! read-only (links are written by the engine only).

use crate::error::{ApiError, ApiResult};
use crate::http::object_response;
use crate::managed::run_query;
use crate::params::{Params, envelope};
use crate::state::ApiState;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;

/// The routes of this resource.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/openidm/repo/link", get(query))
        .route("/openidm/repo/link/{id}", get(read))
}

async fn query(State(state): State<ApiState>, params: Params) -> ApiResult<Response> {
    if !params.is_query() {
        return Err(ApiError::BadRequest(
            "reading repo/link needs _queryFilter or _queryId".into(),
        ));
    }
    let req = params.query_request(state.limits.max_page_size)?;
    let repo = state.repo.clone();
    let page = run_query(
        &state,
        &req,
        |q| async move { Ok(repo.query_links(&q).await?) },
    )
    .await?;
    Ok(object_response(StatusCode::OK, envelope(&req, page)))
}

async fn read(State(state): State<ApiState>, Path(id): Path<String>) -> ApiResult<Response> {
    let link = state
        .repo
        .get_link(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("repo/link/{id} not found")))?;
    Ok(object_response(StatusCode::OK, link.to_json()))
}
