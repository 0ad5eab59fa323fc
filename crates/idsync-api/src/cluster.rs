//! `GET cluster` (docs/rest.md): the nodes known to the repository, this one included even before
//! its first heartbeat is written.

use crate::error::ApiResult;
use crate::http::object_response;
use crate::state::ApiState;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use chrono::Utc;
use idsync_repo::{NodeState, iso_millis};
use serde_json::{Value, json};

/// The routes of this resource.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/openidm/cluster", get(list))
        .route("/openidm/cluster/{node_id}", get(read))
}

/// `GET cluster/<nodeId>`: one node, 404 when the repository never heard of it.
async fn read(
    State(state): State<ApiState>,
    axum::extract::Path(node_id): axum::extract::Path<String>,
) -> ApiResult<Response> {
    let nodes = node_list(&state).await?;
    let node = nodes
        .into_iter()
        .find(|n| n["instanceId"] == node_id.as_str())
        .ok_or_else(|| {
            crate::error::ApiError::NotFound(format!("cluster node {node_id} not found"))
        })?;
    Ok(object_response(StatusCode::OK, node))
}

async fn list(State(state): State<ApiState>) -> ApiResult<Response> {
    let results = node_list(&state).await?;
    Ok(object_response(StatusCode::OK, json!({"results": results})))
}

async fn node_list(state: &ApiState) -> ApiResult<Vec<Value>> {
    let nodes = state.repo.list_nodes().await?;
    let mut results: Vec<Value> = nodes
        .iter()
        .map(|n| {
            json!({
                "instanceId": n.id,
                "state": n.state.as_str(),
                "startup": iso_millis(&n.startup),
                "shutdown": n.shutdown.as_ref().map(iso_millis),
                "lastHeartbeat": iso_millis(&n.last_heartbeat),
            })
        })
        .collect();
    if !nodes.iter().any(|n| n.id == state.node_id) {
        // The answering node is running by definition, heartbeat or not.
        let now = iso_millis(&Utc::now());
        results.push(json!({
            "instanceId": state.node_id,
            "state": NodeState::Running.as_str(),
            "startup": now,
            "shutdown": null,
            "lastHeartbeat": now,
        }));
    }
    Ok(results)
}
