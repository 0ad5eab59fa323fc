//! `GET cluster` (docs/rest.md): the nodes known to the repository, this one included even before
//! its first heartbeat is written, each with the work it holds now: its claimed jobs (recon
//! pages and phases) and its locks (the queued mappings it consumes).

use crate::error::ApiResult;
use crate::http::object_response;
use crate::state::ApiState;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use chrono::Utc;
use idsync_engine::sync::queue::LOCK_PREFIX;
use idsync_repo::{Job, LockRecord, NodeState, iso_millis};
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

fn job_json(j: &Job) -> Value {
    json!({
        "_id": j.id,
        "kind": j.kind,
        "runId": j.run_id,
        "leaseUntil": j.lease_until.as_ref().map(iso_millis),
    })
}

fn lock_json(l: &LockRecord) -> Value {
    json!({
        "name": l.name,
        "mapping": l.name.strip_prefix(LOCK_PREFIX),
        "token": l.token,
        "acquired": iso_millis(&l.acquired),
    })
}

async fn node_list(state: &ApiState) -> ApiResult<Vec<Value>> {
    let (nodes, jobs, locks) = tokio::try_join!(
        state.repo.list_nodes(),
        state.repo.claimed_jobs(),
        state.repo.list_locks()
    )?;
    let held = |node: &str| {
        let jobs: Vec<Value> = jobs
            .iter()
            .filter(|j| j.owner_node.as_deref() == Some(node))
            .map(job_json)
            .collect();
        let locks: Vec<Value> = locks
            .iter()
            .filter(|l| l.node_id == node)
            .map(lock_json)
            .collect();
        (jobs, locks)
    };
    let mut results: Vec<Value> = nodes
        .iter()
        .map(|n| {
            let (jobs, locks) = held(&n.id);
            json!({
                "instanceId": n.id,
                "state": n.state.as_str(),
                "startup": iso_millis(&n.startup),
                "shutdown": n.shutdown.as_ref().map(iso_millis),
                "lastHeartbeat": iso_millis(&n.last_heartbeat),
                "jobs": jobs,
                "locks": locks,
            })
        })
        .collect();
    if !nodes.iter().any(|n| n.id == state.node_id) {
        // The answering node is running by definition, heartbeat or not.
        let now = iso_millis(&Utc::now());
        let (jobs, locks) = held(&state.node_id);
        results.push(json!({
            "instanceId": state.node_id,
            "state": NodeState::Running.as_str(),
            "startup": now,
            "shutdown": null,
            "lastHeartbeat": now,
            "jobs": jobs,
            "locks": locks,
        }));
    }
    Ok(results)
}
