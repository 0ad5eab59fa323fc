//! `recon` (docs/rest.md#reconciliation): start (`_action=recon|reconById`, with
//! `waitForCompletion`), list, read, cancel and the dry-run plan, over the engine. Runs are rows
//! in the repository, so every node answers for every run.

use crate::error::{ApiError, ApiResult};
use crate::http::object_response;
use crate::params::Params;
use crate::state::ApiState;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use idsync_core::HasErrorCode;
use idsync_engine::{Engine, EngineError, ReconOptions};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Duration;

/// The routes of this resource; the engine travels as an extension.
pub fn routes(engine: Arc<Engine>) -> Router<ApiState> {
    Router::new()
        .route("/openidm/recon", get(list).post(start))
        .route("/openidm/recon/{id}", get(read).post(action))
        .route("/openidm/recon/{id}/plan", get(plan))
        .layer(axum::Extension(engine))
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::BadRequest(m) => ApiError::BadRequest(m),
            EngineError::NotFound(m) => ApiError::NotFound(m),
            EngineError::ActiveRun { mapping, run_id } => ApiError::WithDetail {
                code: idsync_core::ErrorCode::Conflict,
                message: format!("mapping {mapping} already has an active reconciliation {run_id}"),
                detail: json!({"_id": run_id, "mapping": mapping}),
            },
            EngineError::Conflict(m) => ApiError::Conflict(m),
            EngineError::Repo(e) => ApiError::Repo(e),
            EngineError::Connector(e) => ApiError::Connector(e),
            EngineError::Hook(e) => ApiError::Hook(e),
            other => match other.error_code() {
                idsync_core::ErrorCode::Internal => ApiError::Internal(other.to_string()),
                code => ApiError::WithDetail {
                    code,
                    message: other.to_string(),
                    detail: Value::Null,
                },
            },
        }
    }
}

async fn start(
    Extension(engine): Extension<Arc<Engine>>,
    params: Params,
    body: Bytes,
) -> ApiResult<Response> {
    let action = params.action()?.ok_or_else(|| {
        ApiError::BadRequest("POST recon needs _action=recon or _action=reconById".into())
    })?;
    let mapping = params
        .get("mapping")?
        .ok_or_else(|| ApiError::BadRequest("the mapping parameter is required".into()))?
        .to_string();
    let overrides: Map<String, Value> = if body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(m)) => m,
            Ok(other) => {
                return Err(ApiError::BadRequest(format!(
                    "the body must be a JSON object, not {other}"
                )));
            }
            Err(e) => {
                return Err(ApiError::BadRequest(format!(
                    "the body is not valid JSON: {e}"
                )));
            }
        }
    };
    let source_id = match action {
        "recon" => None,
        "reconById" => Some(
            params
                .get("id")?
                .or(params.get("ids")?)
                .ok_or_else(|| ApiError::BadRequest("reconById needs the id parameter".into()))?
                .to_string(),
        ),
        other => return Err(ApiError::BadRequest(format!("unknown action \"{other}\""))),
    };
    let analyze = params.flag("analyze", false)?;
    let wait = params.flag("waitForCompletion", false)?;
    let opts = ReconOptions {
        analyze,
        source_id,
        overrides,
    };
    let run_id = engine.start_recon(&mapping, opts).await?;
    if !wait {
        return Ok(object_response(
            StatusCode::OK,
            json!({"_id": run_id, "state": "ACTIVE"}),
        ));
    }
    loop {
        let s = engine.recon_summary(&run_id).await?;
        if s["state"] != "ACTIVE" {
            return Ok(object_response(
                StatusCode::OK,
                json!({"_id": run_id, "state": s["state"]}),
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `GET recon`: every run, newest first, each with its summary. Streamed: the summaries are
/// built one at a time as the client reads (a project keeps every run it ever made).
async fn list(
    State(state): State<ApiState>,
    Extension(engine): Extension<Arc<Engine>>,
) -> ApiResult<Response> {
    let mut runs = engine.repo.list_runs(None).await?;
    runs.reverse();
    Ok(crate::stream::stream_response(
        &state,
        move |out| async move {
            out.send("{\"reconciliations\":[".into()).await?;
            for (i, run) in runs.iter().enumerate() {
                let summary = engine.summary_of(run).await.map_err(|e| e.to_string())?;
                let sep = if i == 0 { "" } else { "," };
                out.send(format!("{sep}{summary}")).await?;
            }
            out.send("]}".into()).await
        },
    ))
}

async fn read(
    Extension(engine): Extension<Arc<Engine>>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    Ok(object_response(
        StatusCode::OK,
        engine.recon_summary(&id).await?,
    ))
}

async fn action(
    Extension(engine): Extension<Arc<Engine>>,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    match params.action()? {
        Some("cancel") => {
            engine.cancel_recon(&id).await?;
            Ok(object_response(
                StatusCode::OK,
                json!({"_id": id, "action": "cancel", "status": "INITIATED"}),
            ))
        }
        Some(other) => Err(ApiError::BadRequest(format!("unknown action \"{other}\""))),
        None => Err(ApiError::BadRequest(
            "POST recon/<id> needs _action=cancel".into(),
        )),
    }
}

async fn plan(
    State(state): State<ApiState>,
    Extension(engine): Extension<Arc<Engine>>,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    if engine.repo.get_run(&id).await?.is_none() {
        return Err(ApiError::NotFound(format!("no reconciliation {id}")));
    }
    let req = if params.is_query() {
        params.query_request(&state.limits)?
    } else {
        idsync_core::QueryRequest::all()
    };
    // Without _pageSize the plan streams page by page (a run's plan can be as large as its
    // source).
    let repo = engine.repo.clone();
    crate::stream::query_response(&state, &format!("recon/{id}/plan"), req, move |q| {
        let repo = repo.clone();
        let id = id.clone();
        async move {
            let mut page = repo.query_plan(&id, &q).await?;
            page.results.iter_mut().for_each(mask_plan_entry);
            Ok(page)
        }
    })
    .await
}

/// Hides the values of secret attributes (`/password`, `/userPassword`...) in a plan entry's
/// `diff`: readers see that a secret would change, not what it is or becomes.
fn mask_plan_entry(entry: &mut Value) {
    let Some(diff) = entry.get_mut("diff").and_then(Value::as_array_mut) else {
        return;
    };
    for change in diff {
        let secret = change
            .get("field")
            .and_then(Value::as_str)
            .is_some_and(|f| f.split('/').any(idsync_core::secrets::is_secret_key));
        if !secret {
            continue;
        }
        for key in ["oldValue", "value"] {
            if let Some(v) = change.get_mut(key)
                && !v.is_null()
            {
                *v = Value::String(idsync_core::secrets::MASK.into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_diffs_hide_secret_values() {
        let mut entry = json!({"_id": "e", "diff": [
            {"operation": "replace", "field": "/userPassword", "oldValue": "old-secret", "value": "new-secret"},
            {"operation": "add", "field": "/credentials/value", "value": "cred-secret"},
            {"operation": "remove", "field": "/password", "oldValue": "gone-secret", "value": null},
            {"operation": "replace", "field": "/mail", "oldValue": "a@x", "value": "b@x"}
        ]});
        mask_plan_entry(&mut entry);
        let text = entry.to_string();
        assert!(!text.contains("secret"), "{text}");
        assert_eq!(entry["diff"][0]["value"], "********");
        assert_eq!(entry["diff"][2]["value"], Value::Null);
        assert_eq!(entry["diff"][3]["value"], "b@x");
    }
}
