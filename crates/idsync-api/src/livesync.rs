//! liveSync over REST (the engine's `sync/livesync.rs`): `POST system/<name>/<type>?_action=liveSync`
//! and `POST system?_action=liveSync&source=system/<name>/<type>` run one pass and answer the
//! source's sync record; `GET`/`DELETE repo/synchronisation/pooledSyncStage/<ID>` (IDM's
//! path of the record, `<ID>` = `SYSTEM<NAME><TYPE>` upper case) read it or reset the token.
//! Reading the record is for admins too: it may hold row values in its token.

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::http::object_response;
use crate::state::{ApiState, SystemActions};
use async_trait::async_trait;
use axum::Router;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use idsync_engine::Engine;
use idsync_engine::sync::record_id;
use serde_json::Value;
use std::sync::Arc;

/// The engine answering `?_action=liveSync` on system object sets.
#[derive(Debug)]
pub struct LiveSyncActions(pub Arc<Engine>);

#[async_trait]
impl SystemActions for LiveSyncActions {
    async fn action(
        &self,
        connector: &str,
        object_type: &str,
        action: &str,
        _body: Option<Value>,
    ) -> ApiResult<Option<Value>> {
        if action != "liveSync" {
            return Ok(None);
        }
        let source = format!("system/{connector}/{object_type}");
        // The pass runs as a task of its own: a client that goes away (or the request timeout)
        // does not cut it between a change's commit and the release of the source's lock.
        let engine = self.0.clone();
        let pass = tokio::spawn(async move { engine.live_sync(&source).await });
        let record = pass
            .await
            .map_err(|e| ApiError::Internal(format!("the liveSync pass stopped: {e}")))?;
        // A pass already running on another node is a 409 (the engine's Conflict).
        Ok(Some(record?))
    }
}

/// The record routes; the engine travels as an extension.
pub fn routes(engine: Arc<Engine>) -> Router<ApiState> {
    Router::new()
        .route(
            "/openidm/repo/synchronisation/pooledSyncStage/{id}",
            get(read).delete(reset),
        )
        .layer(axum::Extension(engine))
}

/// The source whose record id is `id`, among the configured object types.
fn source_of(state: &ApiState, id: &str) -> ApiResult<String> {
    state
        .project
        .connectors
        .values()
        .flat_map(|c| {
            c.object_types
                .keys()
                .map(move |t| format!("system/{}/{t}", c.name))
        })
        .find(|s| record_id(s) == id.to_uppercase())
        .ok_or_else(|| ApiError::NotFound(format!("no liveSync source has the record id {id}")))
}

fn admin_only(p: &Principal) -> ApiResult<()> {
    if p.roles.contains(&idsync_config::Role::Admin) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "the liveSync record is for admins".into(),
        ))
    }
}

async fn read(
    State(state): State<ApiState>,
    Extension(engine): Extension<Arc<Engine>>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    admin_only(&principal)?;
    let source = source_of(&state, &id)?;
    match engine.live_sync_record(&source).await? {
        Some(rec) => Ok(object_response(StatusCode::OK, rec)),
        None => Err(ApiError::NotFound(format!(
            "{source} has no liveSync token yet"
        ))),
    }
}

async fn reset(
    State(state): State<ApiState>,
    Extension(engine): Extension<Arc<Engine>>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    admin_only(&principal)?;
    let source = source_of(&state, &id)?;
    let before = engine
        .live_sync_record(&source)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("{source} has no liveSync token yet")))?;
    engine.reset_live_sync(&source).await?;
    Ok(object_response(StatusCode::OK, before))
}
