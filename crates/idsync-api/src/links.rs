//! `GET repo/link[/<id>]` (docs/rest.md): CREST queries over the links table,
//! read-only (links are written by the engine only).

use crate::error::{ApiError, ApiResult};
use crate::http::object_response;
use crate::params::Params;
use crate::state::ApiState;
use crate::stream::query_response;
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
    let req = params.query_request(&state.limits)?;
    let repo = state.repo.clone();
    query_response(&state, "repo/link", req, move |q| {
        let repo = repo.clone();
        async move { Ok(repo.query_links(&q).await?) }
    })
    .await
}

async fn read(State(state): State<ApiState>, Path(id): Path<String>) -> ApiResult<Response> {
    let link = state
        .repo
        .get_link(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("repo/link/{id} not found")))?;
    Ok(object_response(StatusCode::OK, link.to_json()))
}
