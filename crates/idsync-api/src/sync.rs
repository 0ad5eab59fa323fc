//! `sync` (docs/rest.md): `notifyCreate`, `notifyUpdate`, `notifyDelete`,
//! `performAction`, `getLinkedResources` and `GET sync/mappings`, over the engine; and
//! [`EngineHooks`], the engine plugged into managed-object writes (implicit and queued sync).

use crate::error::{ApiError, ApiResult};
use crate::http::{OptionalJsonBody, object_response};
use crate::params::{Params, envelope, page_in_memory};
use crate::state::{ApiState, ManagedChange, ManagedHooks};
use async_trait::async_trait;
use axum::Router;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use idsync_core::{Action, ErrorCode, ResourcePath, Situation};
use idsync_engine::Engine;
use idsync_engine::recon::object_sync::ExplicitAction;
use idsync_engine::sync::{Change, SyncOutcome, same_content};
use idsync_repo::{ChangeSet, SyncAction};
use serde_json::{Value, json};
use std::sync::Arc;

/// The routes of this resource; the engine travels as an extension.
pub fn routes(engine: Arc<Engine>) -> Router<ApiState> {
    Router::new()
        .route("/openidm/sync", post(action))
        .route("/openidm/sync/mappings", get(mappings))
        .layer(axum::Extension(engine))
}

/// The engine's part in managed-object writes: queue events commit with the write, inline
/// mappings run after it.
#[derive(Debug)]
pub struct EngineHooks(pub Arc<Engine>);

fn change_of(c: &ManagedChange) -> Option<Change> {
    let action = match (&c.before, &c.after) {
        (None, Some(_)) => SyncAction::NotifyCreate,
        (Some(_), None) => SyncAction::NotifyDelete,
        (Some(b), Some(a)) if !same_content(b, a) => SyncAction::NotifyUpdate,
        _ => return None,
    };
    Some(Change {
        collection: format!("managed/{}", c.object_type),
        id: c.id.clone(),
        action,
        old: c.before.clone(),
        new: c.after.clone(),
    })
}

#[async_trait]
impl ManagedHooks for EngineHooks {
    async fn before_commit(
        &self,
        change: &ManagedChange,
        changes: &mut ChangeSet,
    ) -> ApiResult<()> {
        if let Some(c) = change_of(change) {
            changes.ops.extend(self.0.queue_events(&c));
        }
        Ok(())
    }

    async fn after_commit(&self, change: &ManagedChange) -> ApiResult<Option<Value>> {
        let Some(c) = change_of(change) else {
            return Ok(None);
        };
        self.sync(&c).await
    }

    fn scripts(&self, object_type: &str) -> Option<Arc<idsync_engine::ManagedScripts>> {
        self.0.managed_scripts(object_type).cloned()
    }

    async fn sync_check(&self, change: &ManagedChange) -> ApiResult<Option<Value>> {
        let c = Change {
            collection: format!("managed/{}", change.object_type),
            id: change.id.clone(),
            action: SyncAction::NotifyUpdate,
            old: change.before.clone(),
            new: change.after.clone(),
        };
        self.sync(&c).await
    }
}

impl EngineHooks {
    /// Implicit sync of a stored write, then the type's `onSync`. A failed implicit sync does
    /// not fail the write (docs/ARCHITECTURE.md#one-managed-object-change-through-implicit-and-queued-sync):
    /// the sync audit and the log say what happened; only what `onSync` throws fails it.
    async fn sync(&self, c: &Change) -> ApiResult<Option<Value>> {
        match self.0.notify_managed(c).await {
            Ok(outcome) => {
                if let Some(m) = outcome.failure_message() {
                    tracing::warn!(collection = %c.collection, id = %c.id, "implicit sync failed: {m}");
                }
            }
            Err(idsync_engine::EngineError::Hook(e)) => return Err(ApiError::Hook(e)),
            Err(e) => {
                tracing::warn!(collection = %c.collection, id = %c.id, error = %e, "implicit sync failed");
            }
        }
        Ok(None)
    }
}

async fn action(
    State(state): State<ApiState>,
    Extension(engine): Extension<Arc<Engine>>,
    params: Params,
    OptionalJsonBody(body): OptionalJsonBody,
) -> ApiResult<Response> {
    let action = params.action()?.ok_or_else(|| {
        ApiError::BadRequest("POST sync needs _action (notifyCreate, notifyUpdate, notifyDelete, performAction, getLinkedResources)".into())
    })?;
    let body = body.unwrap_or(Value::Null);
    let outcome = match action {
        "notifyCreate" | "notifyUpdate" | "notifyDelete" => {
            let Some(change) = notify_change(&params, action, &body)? else {
                return Ok(object_response(StatusCode::OK, json!([])));
            };
            let events = engine.queue_events(&change);
            if !events.is_empty() {
                state
                    .repo
                    .commit(ChangeSet {
                        fence: None,
                        ops: events,
                    })
                    .await?;
            }
            engine.notify(&change).await?
        }
        "performAction" => {
            let mapping = required(&params, "mapping")?;
            let req = explicit_action(&params)?;
            engine.perform_action(mapping, &req).await?
        }
        "getLinkedResources" => {
            let name = required(&params, "resourceName")?;
            let linked = engine.linked_resources(name).await?;
            return Ok(object_response(StatusCode::OK, Value::Array(linked)));
        }
        other => {
            return Err(ApiError::BadRequest(format!(
                "unknown action \"{other}\" on sync (supported: notifyCreate, notifyUpdate, notifyDelete, performAction, getLinkedResources)"
            )));
        }
    };
    respond(action, outcome)
}

/// A sync whose mapping failed answers with the failure and every result as the detail
/// (docs/rest.md#synchronization); a connector that could not be reached makes it a 503.
fn respond(action: &str, outcome: SyncOutcome) -> ApiResult<Response> {
    if !outcome.failed {
        let body = if action == "performAction" {
            json!({"status": "OK", "results": outcome.to_json()})
        } else {
            outcome.to_json()
        };
        return Ok(object_response(StatusCode::OK, body));
    }
    let message = outcome
        .failure_message()
        .unwrap_or_else(|| "synchronization failed".into());
    // The cause's kind decides the status: 503 for an unreachable system, 4xx for data the
    // target refused; anything else is a conflict with the state of the systems.
    let code = match outcome.failure_status() {
        Some(503) => ErrorCode::Unavailable,
        Some(400) => ErrorCode::InvalidData,
        Some(404) => ErrorCode::NotFound,
        Some(412) => ErrorCode::PreconditionFailed,
        _ => ErrorCode::Conflict,
    };
    Err(ApiError::WithDetail {
        code,
        message,
        detail: outcome.to_json(),
    })
}

fn required<'a>(params: &'a Params, name: &str) -> ApiResult<&'a str> {
    params
        .get(name)?
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::BadRequest(format!("the parameter {name} is required")))
}

/// The change a `notify*` call describes; `None` for an update that changed nothing.
fn notify_change(params: &Params, action: &str, body: &Value) -> ApiResult<Option<Change>> {
    let container = required(params, "resourceContainer")?;
    let id = required(params, "resourceId")?;
    let collection = ResourcePath::parse(container)
        .map_err(|e| ApiError::BadRequest(format!("resourceContainer: {e}")))?
        .collection()
        .to_string();
    if !body.is_null() && !body.is_object() {
        return Err(ApiError::BadRequest(
            "the body must be an object with newValue and/or oldValue".into(),
        ));
    }
    let value = |key: &str| -> ApiResult<Option<Value>> {
        match body.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v @ Value::Object(_)) => Ok(Some(v.clone())),
            Some(_) => Err(ApiError::BadRequest(format!("{key} must be an object"))),
        }
    };
    let (old, new) = (value("oldValue")?, value("newValue")?);
    let action = match action {
        "notifyCreate" => SyncAction::NotifyCreate,
        "notifyUpdate" => {
            if let (Some(o), Some(n)) = (&old, &new)
                && same_content(o, n)
            {
                return Ok(None);
            }
            SyncAction::NotifyUpdate
        }
        _ => SyncAction::NotifyDelete,
    };
    Ok(Some(Change {
        collection,
        id: id.to_string(),
        action,
        old,
        new,
    }))
}

fn explicit_action(params: &Params) -> ApiResult<ExplicitAction> {
    let action: Action = required(params, "action")?
        .parse()
        .map_err(|e| ApiError::BadRequest(format!("action: {e}")))?;
    let situation = match params.get("situation")?.filter(|v| !v.is_empty()) {
        None => None,
        Some(s) => Some(
            s.parse::<Situation>()
                .map_err(|e| ApiError::BadRequest(format!("situation: {e}")))?,
        ),
    };
    let opt = |name: &str| -> ApiResult<Option<String>> {
        Ok(params
            .get(name)?
            .filter(|v| !v.is_empty())
            .map(str::to_string))
    };
    Ok(ExplicitAction {
        action,
        source_id: opt("sourceId")?,
        target_id: opt("targetId")?,
        link_qualifier: opt("linkQualifier")?.unwrap_or_else(|| "default".into()),
        situation,
        target_side: params.get("target")?.is_some(),
    })
}

/// `GET sync/mappings?_queryFilter=...`: the mappings with whether their routes are ready.
async fn mappings(
    State(state): State<ApiState>,
    Extension(engine): Extension<Arc<Engine>>,
    params: Params,
) -> ApiResult<Response> {
    if !params.is_query() {
        return Err(ApiError::BadRequest(
            "reading sync/mappings needs _queryFilter".into(),
        ));
    }
    let req = params.query_request(&state.limits)?;
    let all: Vec<Value> = state
        .project
        .mappings
        .iter()
        .map(|m| {
            let ready = |p: &ResourcePath| engine.resources.object_set(p).is_ok();
            json!({
                "_id": m.name,
                "name": m.name,
                "source": m.source_str,
                "target": m.target_str,
                "enableSync": m.enable_sync,
                "queuedSync": m.queued().is_some(),
                "links": m.links.as_ref().map(|l| l.mapping.clone()),
                "sourceRouteReady": ready(&m.source),
                "targetRouteReady": ready(&m.target),
            })
        })
        .collect();
    let page = page_in_memory(&req, all);
    Ok(object_response(StatusCode::OK, envelope(&req, page)))
}
