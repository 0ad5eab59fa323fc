//! `system/<name>[/<type>[/<id>]]` (docs/rest.md): objects of connected systems through the
//! connector contract, `?_action=test` and `?_action=schema`. Connector errors map to CREST
//! statuses through their error codes (an unreachable system is a 503). This module must not
//! know any connector's implementation.

use crate::error::{ApiError, ApiResult};
use crate::http::{JsonBody, OptionalJsonBody, Precondition, object_response};
use crate::params::{Params, project_fields};
use crate::state::ApiState;
use crate::stream::query_response;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use idsync_connectors::{Connector, ObjectSet};
use serde_json::{Value, json};
use std::sync::Arc;

/// The routes of this resource.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/openidm/system", post(all_action))
        .route("/openidm/system/{name}", post(connector_action))
        .route(
            "/openidm/system/{name}/{object_type}",
            get(query).post(create),
        )
        .route(
            "/openidm/system/{name}/{object_type}/{id}",
            get(read).put(put).patch(patch).delete(delete),
        )
}

fn connector(state: &ApiState, name: &str) -> ApiResult<Arc<dyn Connector>> {
    state
        .connectors
        .get(name)
        .cloned()
        .ok_or_else(|| ApiError::NotFound(format!("system/{name}: no such enabled connector")))
}

/// The object set of a configured object type; an unknown type is a 404 (not the connector's
/// "bad request"), since the resource does not exist.
fn object_set(state: &ApiState, name: &str, object_type: &str) -> ApiResult<Arc<dyn ObjectSet>> {
    let conn = connector(state, name)?;
    if let Some(cfg) = state.project.connector(name)
        && !cfg.object_types.contains_key(object_type)
    {
        return Err(ApiError::NotFound(format!(
            "system/{name}/{object_type}: the connector has no object type {object_type}"
        )));
    }
    Ok(conn.object_set(object_type)?)
}

async fn test_result(conn: &Arc<dyn Connector>) -> Value {
    match conn.test().await {
        Ok(()) => json!({"name": conn.name(), "ok": true}),
        Err(e) => json!({"name": conn.name(), "ok": false, "error": e.to_string()}),
    }
}

/// `POST system?_action=test`: every connector's test result; other actions with a
/// `source=system/<name>/<type>` go to the extra system actions (`liveSync`).
async fn all_action(
    State(state): State<ApiState>,
    params: Params,
    body: OptionalJsonBody,
) -> ApiResult<Response> {
    let source = params.get("source")?.map(str::to_string);
    match params.action()? {
        Some(action) if action != "test" && source.is_some() => {
            let source = source.unwrap_or_default();
            let parts: Vec<&str> = source.split('/').collect();
            let ["system", name, object_type] = parts.as_slice() else {
                return Err(ApiError::BadRequest(format!(
                    "source must be system/<name>/<type>, not {source}"
                )));
            };
            object_set(&state, name, object_type)?;
            if let Some(handler) = &state.system_actions
                && let Some(answer) = handler.action(name, object_type, action, body.0).await?
            {
                return Ok(object_response(StatusCode::OK, answer));
            }
            Err(ApiError::BadRequest(format!(
                "unknown action \"{action}\" on system"
            )))
        }
        Some("test") => {
            let mut results = Vec::new();
            for conn in state.connectors.values() {
                results.push(test_result(conn).await);
            }
            Ok(object_response(StatusCode::OK, Value::Array(results)))
        }
        other => Err(ApiError::BadRequest(format!(
            "unknown action {:?} on system (supported: test)",
            other.unwrap_or("")
        ))),
    }
}

async fn connector_action(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let conn = connector(&state, &name)?;
    match params.action()? {
        Some("test") => Ok(object_response(StatusCode::OK, test_result(&conn).await)),
        Some("schema") => Ok(object_response(StatusCode::OK, conn.schema())),
        other => Err(ApiError::BadRequest(format!(
            "unknown action {:?} on system/{name} (supported: test, schema)",
            other.unwrap_or("")
        ))),
    }
}

async fn query(
    State(state): State<ApiState>,
    Path((name, object_type)): Path<(String, String)>,
    params: Params,
) -> ApiResult<Response> {
    let set = object_set(&state, &name, &object_type)?;
    if !params.is_query() {
        return Err(ApiError::BadRequest(
            "reading a collection needs _queryFilter or _queryId".into(),
        ));
    }
    let req = params.query_request(&state.limits)?;
    query_response(
        &state,
        &format!("system/{name}/{object_type}"),
        req,
        move |q| {
            let set = set.clone();
            async move { Ok(set.query(&q).await?) }
        },
    )
    .await
}

async fn read(
    State(state): State<ApiState>,
    Path((name, object_type, id)): Path<(String, String, String)>,
    params: Params,
) -> ApiResult<Response> {
    let set = object_set(&state, &name, &object_type)?;
    let obj = set
        .get(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("system/{name}/{object_type}/{id} not found")))?;
    let fields = params.fields()?;
    Ok(object_response(
        StatusCode::OK,
        project_fields(obj, fields.as_deref()),
    ))
}

async fn create(
    State(state): State<ApiState>,
    Path((name, object_type)): Path<(String, String)>,
    params: Params,
    body: OptionalJsonBody,
) -> ApiResult<Response> {
    let set = object_set(&state, &name, &object_type)?;
    match params.action()? {
        None | Some("create") => {}
        Some(other) => {
            if let Some(handler) = &state.system_actions
                && let Some(answer) = handler.action(&name, &object_type, other, body.0).await?
            {
                return Ok(object_response(StatusCode::OK, answer));
            }
            return Err(ApiError::BadRequest(format!(
                "unknown action \"{other}\" on system/{name}/{object_type} (supported: create)"
            )));
        }
    }
    let object = JsonBody(
        body.0
            .ok_or_else(|| ApiError::BadRequest("the request needs a JSON body".into()))?,
    )
    .into_object()?;
    let id = object
        .get("_id")
        .and_then(Value::as_str)
        .map(str::to_string);
    crate::limits::check_object(&object, &state.limits)?;
    let created = set.create(id.as_deref(), object).await?;
    Ok(object_response(StatusCode::CREATED, created))
}

async fn put(
    State(state): State<ApiState>,
    Path((name, object_type, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: JsonBody,
) -> ApiResult<Response> {
    let set = object_set(&state, &name, &object_type)?;
    let pre = Precondition::from_headers(&headers)?;
    let object = body.into_object()?;
    crate::limits::check_object(&object, &state.limits)?;
    let existing = set.get(&id).await?;
    match (pre, existing) {
        (Precondition::Absent, Some(_)) => Err(ApiError::PreconditionFailed(format!(
            "system/{name}/{object_type}/{id} already exists (If-None-Match: *)"
        ))),
        (Precondition::Absent | Precondition::None, None) => {
            let created = set.create(Some(&id), object).await?;
            Ok(object_response(StatusCode::CREATED, created))
        }
        (Precondition::Exists | Precondition::Rev(_), None) => Err(ApiError::NotFound(format!(
            "system/{name}/{object_type}/{id} not found"
        ))),
        (pre, Some(_)) => {
            let updated = set.update(&id, pre.rev(), object).await?;
            Ok(object_response(StatusCode::OK, updated))
        }
    }
}

async fn patch(
    State(state): State<ApiState>,
    Path((name, object_type, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: JsonBody,
) -> ApiResult<Response> {
    let set = object_set(&state, &name, &object_type)?;
    let pre = Precondition::from_headers(&headers)?;
    let mut object = set
        .get(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("system/{name}/{object_type}/{id} not found")))?;
    crate::patch::apply_patch(&mut object, &body.0, state.limits.max_object_bytes)?;
    crate::limits::check_object(&object, &state.limits)?;
    let updated = set.update(&id, pre.rev(), object).await?;
    Ok(object_response(StatusCode::OK, updated))
}

async fn delete(
    State(state): State<ApiState>,
    Path((name, object_type, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let set = object_set(&state, &name, &object_type)?;
    let pre = Precondition::from_headers(&headers)?;
    let before = set
        .get(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("system/{name}/{object_type}/{id} not found")))?;
    let deleted = set.delete(&id, pre.rev()).await?;
    Ok(object_response(StatusCode::OK, deleted.unwrap_or(before)))
}
