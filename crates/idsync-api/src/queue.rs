//! The queued-sync queue and its dead letters (docs/rest.md,
//! docs/operations.md#queued-sync-and-dead-letters): `GET sync/queue[/<id>]` (CREST query over the
//! events' REST fields), `DELETE sync/queue/<id>` (a PENDING event only: an ACQUIRED one is being
//! executed and answers 409), `GET sync/deadletter[/<id>]`, `DELETE sync/deadletter/<id>` and
//! `POST sync/deadletter/<id>?_action=replay`.
//!
//! Replay removes the dead letter and queues the event again in one commit, so a letter is
//! never both replayed and kept, nor lost, and two concurrent replays queue it once. Events are
//! executed by the engine's queue consumer; this module only reads and edits the rows.

use crate::error::{ApiError, ApiResult};
use crate::http::object_response;
use crate::params::{Params, project_fields};
use crate::state::ApiState;
use crate::stream::query_response;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use idsync_repo::{ChangeSet, DeadLetter, EventState, Op, RepoError, SyncEvent};
use serde_json::json;

/// The routes of this resource.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/openidm/sync/queue", get(query_events))
        .route(
            "/openidm/sync/queue/{id}",
            get(read_event).delete(delete_event),
        )
        .route("/openidm/sync/deadletter", get(query_letters))
        .route(
            "/openidm/sync/deadletter/{id}",
            get(read_letter).delete(delete_letter).post(letter_action),
        )
}

async fn query_events(State(state): State<ApiState>, params: Params) -> ApiResult<Response> {
    if !params.is_query() {
        return Err(ApiError::BadRequest(
            "reading sync/queue needs _queryFilter or _queryId".into(),
        ));
    }
    let req = params.query_request(&state.limits)?;
    let repo = state.repo.clone();
    query_response(&state, "sync/queue", req, move |q| {
        let repo = repo.clone();
        async move { Ok(repo.query_queue(&q).await?) }
    })
    .await
}

async fn get_event(state: &ApiState, id: &str) -> ApiResult<SyncEvent> {
    state
        .repo
        .get_event(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("sync/queue/{id} not found")))
}

async fn read_event(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let event = get_event(&state, &id).await?;
    let fields = params.fields()?;
    Ok(object_response(
        StatusCode::OK,
        project_fields(event.to_json(), fields.as_deref()),
    ))
}

/// Deletes a PENDING event and answers it. An ACQUIRED event belongs to the node executing it
/// (or waiting out its retry delay): 409, it stays.
async fn delete_event(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let event = get_event(&state, &id).await?;
    match state.repo.delete_event(&id, None).await {
        Ok(()) => Ok(object_response(StatusCode::OK, event.to_json())),
        Err(RepoError::NotFound(_)) => {
            Err(ApiError::NotFound(format!("sync/queue/{id} not found")))
        }
        Err(RepoError::Conflict(kind)) => Err(ApiError::Conflict(format!(
            "{kind}: only a PENDING event can be deleted"
        ))),
        Err(e) => Err(e.into()),
    }
}

async fn query_letters(State(state): State<ApiState>, params: Params) -> ApiResult<Response> {
    if !params.is_query() {
        return Err(ApiError::BadRequest(
            "reading sync/deadletter needs _queryFilter or _queryId".into(),
        ));
    }
    let req = params.query_request(&state.limits)?;
    let repo = state.repo.clone();
    query_response(&state, "sync/deadletter", req, move |q| {
        let repo = repo.clone();
        async move { Ok(repo.query_dead_letters(&q).await?) }
    })
    .await
}

async fn get_letter(state: &ApiState, id: &str) -> ApiResult<DeadLetter> {
    state
        .repo
        .get_dead_letter(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("sync/deadletter/{id} not found")))
}

async fn read_letter(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let letter = get_letter(&state, &id).await?;
    let fields = params.fields()?;
    Ok(object_response(
        StatusCode::OK,
        project_fields(letter.to_json(), fields.as_deref()),
    ))
}

/// Discards a dead letter without replaying it; answers the deleted letter.
async fn delete_letter(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let letter = get_letter(&state, &id).await?;
    match state.repo.delete_dead_letter(&id).await {
        Ok(()) => Ok(object_response(StatusCode::OK, letter.to_json())),
        Err(RepoError::NotFound(_)) => Err(ApiError::NotFound(format!(
            "sync/deadletter/{id} not found"
        ))),
        Err(e) => Err(e.into()),
    }
}

async fn letter_action(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    match params.action()? {
        Some("replay") => replay(&state, &id).await,
        Some(other) => Err(ApiError::BadRequest(format!(
            "unknown action \"{other}\" on sync/deadletter (supported: replay)"
        ))),
        None => Err(ApiError::BadRequest(
            "POST sync/deadletter/<id> needs _action=replay".into(),
        )),
    }
}

/// Queues the dead letter's event again as a new PENDING event (fresh id, created now) with the
/// mapping's full retry budget, and removes the letter, in one commit.
async fn replay(state: &ApiState, id: &str) -> ApiResult<Response> {
    let letter = get_letter(state, id).await?;
    let mapping_name = &letter.event.mapping;
    let mapping = state.project.mapping(mapping_name).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "cannot replay sync/deadletter/{id}: mapping {mapping_name} no longer exists"
        ))
    })?;
    let queued = mapping.queued().ok_or_else(|| {
        ApiError::BadRequest(format!(
            "cannot replay sync/deadletter/{id}: mapping {mapping_name} does not use queued \
             sync (queuedSync.enabled is not true)"
        ))
    })?;
    let event = SyncEvent {
        id: uuid::Uuid::now_v7().to_string(),
        rev: "0".into(),
        state: EventState::Pending,
        node_id: None,
        remaining_retries: queued
            .max_retries
            .map_or(-1, |r| i64::try_from(r).unwrap_or(i64::MAX)),
        create_date: chrono::Utc::now(),
        seq: 0,
        ..letter.event
    };
    let changes = ChangeSet::new()
        .with(Op::DeleteDeadLetter { id: id.to_string() })
        .with(Op::EnqueueSyncEvent(event));
    match state.repo.commit(changes).await {
        Ok(_) => Ok(object_response(
            StatusCode::OK,
            json!({"_id": id, "action": "replay", "status": "QUEUED"}),
        )),
        // Replayed (or discarded) by another request since it was read.
        Err(RepoError::NotFound(_)) => Err(ApiError::NotFound(format!(
            "sync/deadletter/{id} not found"
        ))),
        Err(e) => Err(e.into()),
    }
}
