//! `scheduler/job` (docs/rest.md): the schedules of the project's
//! `conf/schedule-<name>.json` files and the ones created over REST, with `nextRunDate`.
//!
//! - `GET scheduler/job?_queryFilter=...` (or `_queryId=query-all-ids|query-all`): a CREST query
//!   over every schedule, evaluated in memory (`_fields`, `_sortKeys`, `_pageSize`,
//!   `_pagedResultsOffset`).
//! - `GET/PUT/DELETE scheduler/job/<id>`: read, create or replace (`If-None-Match: *` to create
//!   only, `If-Match` with the `_rev`), delete. REST-created schedules are stored in the
//!   repository and every node fires them; `conf/` schedules are read-only here (409).
//! - `POST scheduler/job?_action=create`: a new schedule with the body's `_id` or a fresh id.
//! - `POST scheduler/job/<id>?_action=trigger`: fires the schedule now, once, on the node that
//!   received the request.
//! - `POST scheduler[/job]?_action=validateQuartzCronExpression` with `{"cronExpression"}`:
//!   `{"valid": bool}` (and idsync's `message` when it is not).
//! - `GET scheduler/job/<id>/firings?_queryFilter=...`: the firings of a schedule, newest first
//!   (idsync's own: which node ran each one and what it did, with `runId` for a recon).
//!
//! A bad definition (a bad cron expression, an unknown mapping, a wrong type) is a 400 whose
//! message starts with the JSON pointer, e.g. `/schedule: invalid minute field "61": ...`.

use crate::error::{ApiError, ApiResult};
use crate::http::{JsonBody, OptionalJsonBody, Precondition, object_response};
use crate::params::{Params, envelope, page_in_memory, project_fields};
use crate::state::ApiState;
use crate::stream::query_response;
use axum::Router;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use idsync_core::QueryRequest;
use idsync_engine::Engine;
use idsync_engine::scheduler::{FiringStatus, ScheduleEntry};
use serde_json::{Value, json};
use std::sync::Arc;

/// The routes of this resource; the engine travels as an extension.
pub fn routes(engine: Arc<Engine>) -> Router<ApiState> {
    Router::new()
        .route("/openidm/scheduler", post(scheduler_action))
        .route("/openidm/scheduler/job", get(query).post(collection_action))
        .route(
            "/openidm/scheduler/job/{id}",
            get(read).put(put).delete(delete).post(job_action),
        )
        .route("/openidm/scheduler/job/{id}/firings", get(firings))
        .layer(axum::Extension(engine))
}

async fn to_json(engine: &Engine, entry: &ScheduleEntry) -> ApiResult<Value> {
    let next = engine.next_run_date(entry).await?;
    Ok(entry.to_json(next))
}

async fn existing(engine: &Engine, id: &str) -> ApiResult<ScheduleEntry> {
    engine
        .schedule(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("scheduler/job/{id} not found")))
}

async fn query(
    State(state): State<ApiState>,
    Extension(engine): Extension<Arc<Engine>>,
    params: Params,
) -> ApiResult<Response> {
    if !params.is_query() {
        return Err(ApiError::BadRequest(
            "reading scheduler/job needs _queryFilter or _queryId".into(),
        ));
    }
    let req = params.query_request(&state.limits)?;
    let mut all = Vec::new();
    for entry in engine.schedules().await? {
        all.push(to_json(&engine, &entry).await?);
    }
    let page = page_in_memory(&req, all);
    Ok(object_response(StatusCode::OK, envelope(&req, page)))
}

async fn read(
    Extension(engine): Extension<Arc<Engine>>,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let entry = existing(&engine, &id).await?;
    let v = to_json(&engine, &entry).await?;
    let fields = params.fields()?;
    Ok(object_response(
        StatusCode::OK,
        project_fields(v, fields.as_deref()),
    ))
}

async fn put(
    Extension(engine): Extension<Arc<Engine>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: JsonBody,
) -> ApiResult<Response> {
    let pre = Precondition::from_headers(&headers)?;
    let body = body.into_object()?;
    check_body_id(&body, &id)?;
    if pre == Precondition::Exists && engine.schedule(&id).await?.is_none() {
        return Err(ApiError::PreconditionFailed(format!(
            "scheduler/job/{id} does not exist (If-Match: *)"
        )));
    }
    let (entry, created) = engine
        .put_schedule(&id, &body, pre.rev(), pre == Precondition::Absent)
        .await
        .map_err(|e| match e {
            idsync_engine::EngineError::Repo(idsync_repo::RepoError::Conflict(_))
                if pre == Precondition::Absent =>
            {
                ApiError::PreconditionFailed(format!(
                    "scheduler/job/{id} already exists (If-None-Match: *)"
                ))
            }
            other => other.into(),
        })?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(object_response(status, to_json(&engine, &entry).await?))
}

fn check_body_id(body: &Value, id: &str) -> ApiResult<()> {
    match body.get("_id") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) if s == id => Ok(()),
        Some(other) => Err(ApiError::BadRequest(format!(
            "the body's _id {other} differs from the schedule id \"{id}\" in the path"
        ))),
    }
}

async fn delete(
    Extension(engine): Extension<Arc<Engine>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let pre = Precondition::from_headers(&headers)?;
    let entry = engine.delete_schedule(&id, pre.rev()).await?;
    Ok(object_response(StatusCode::OK, entry.to_json(None)))
}

async fn collection_action(
    Extension(engine): Extension<Arc<Engine>>,
    params: Params,
    body: OptionalJsonBody,
) -> ApiResult<Response> {
    match params.action()? {
        Some("create") => {
            let body = JsonBody(body.0.ok_or_else(|| {
                ApiError::BadRequest("_action=create needs the schedule as the body".into())
            })?)
            .into_object()?;
            let id = match body.get("_id") {
                None | Some(Value::Null) => uuid::Uuid::new_v4().to_string(),
                Some(Value::String(s)) if !s.is_empty() => s.clone(),
                Some(other) => {
                    return Err(ApiError::BadRequest(format!(
                        "_id must be a non-empty string, not {other}"
                    )));
                }
            };
            let (entry, _) = engine.put_schedule(&id, &body, None, true).await?;
            Ok(object_response(
                StatusCode::CREATED,
                to_json(&engine, &entry).await?,
            ))
        }
        Some("validateQuartzCronExpression") => validate_cron(body.0),
        Some(other) => Err(ApiError::BadRequest(format!(
            "unknown action \"{other}\" on scheduler/job (supported: create, validateQuartzCronExpression)"
        ))),
        None => Err(ApiError::BadRequest(
            "POST scheduler/job needs _action=create".into(),
        )),
    }
}

async fn scheduler_action(params: Params, body: OptionalJsonBody) -> ApiResult<Response> {
    match params.action()? {
        Some("validateQuartzCronExpression") => validate_cron(body.0),
        Some(other) => Err(ApiError::BadRequest(format!(
            "unknown action \"{other}\" on scheduler (supported: validateQuartzCronExpression)"
        ))),
        None => Err(ApiError::BadRequest(
            "POST scheduler needs _action=validateQuartzCronExpression".into(),
        )),
    }
}

/// IDM's `validateQuartzCronExpression`: `{"cronExpression": "..."}` → `{"valid": bool}`.
fn validate_cron(body: Option<Value>) -> ApiResult<Response> {
    let expr = body
        .as_ref()
        .and_then(|b| b.get("cronExpression"))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ApiError::BadRequest(
                "validateQuartzCronExpression needs a body {\"cronExpression\": \"...\"}".into(),
            )
        })?;
    let answer = match idsync_scheduler::CronExpr::parse(expr) {
        Ok(_) => json!({"valid": true}),
        Err(e) => json!({"valid": false, "message": e.to_string()}),
    };
    Ok(object_response(StatusCode::OK, answer))
}

async fn job_action(
    Extension(engine): Extension<Arc<Engine>>,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    match params.action()? {
        Some("trigger") => {
            let f = engine.trigger_schedule(&id).await?;
            let mut out = json!({
                "_id": id,
                "action": "trigger",
                "success": f.status != FiringStatus::Failed,
                "firingId": f.id,
                "status": f.status,
            });
            for (k, v) in [
                ("runId", &f.run_id),
                ("activeRunId", &f.active_run_id),
                ("message", &f.message),
            ] {
                if let Some(v) = v {
                    out[k] = json!(v);
                }
            }
            Ok(object_response(StatusCode::OK, out))
        }
        Some(other) => Err(ApiError::BadRequest(format!(
            "unknown action \"{other}\" on scheduler/job/{id} (supported: trigger)"
        ))),
        None => Err(ApiError::BadRequest(format!(
            "POST scheduler/job/{id} needs _action=trigger (create a schedule with PUT or POST scheduler/job?_action=create)"
        ))),
    }
}

async fn firings(
    State(state): State<ApiState>,
    Extension(engine): Extension<Arc<Engine>>,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    existing(&engine, &id).await?;
    let req = if params.is_query() {
        params.query_request(&state.limits)?
    } else {
        QueryRequest::all()
    };
    query_response(
        &state,
        &format!("scheduler/job/{id}/firings"),
        req,
        move |q| {
            let engine = engine.clone();
            let id = id.clone();
            async move { Ok(engine.query_firings(&id, &q).await?) }
        },
    )
    .await
}
