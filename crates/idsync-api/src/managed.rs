//! `managed/<type>[/<id>]` (docs/rest.md): reads and queries through the repository, writes as
//! [`ChangeSet`]s so that the engine's hooks (implicit and queued sync) commit with them.
//! CREST preconditions: `If-Match` (412 on a revision mismatch), `If-None-Match: *` on PUT
//! (create only). This module must not decide sync actions: it calls [`ManagedHooks`].
//!
//! The type's lifecycle scripts (docs/configuration.md#confmanagedjson) run here in IDM's
//! order: for a create `onCreate` → `onValidate` → `onStore` → store → `postCreate` → implicit
//! sync → `onSync`; an update `onUpdate` … `postUpdate`; a delete `onDelete` → store →
//! `postDelete`; a read or query result `onRetrieve` → `onRead`. Custom actions and
//! `triggerSyncCheck` answer `POST …?_action=`.
//!
//! Relationship properties (docs/adr/0013-relationships.md) are [`crate::relationships`]'s: it
//! is called before a write is stored, into its change set and on every answer.

use crate::caller::RequestCaller;
use crate::error::{ApiError, ApiResult};
use crate::http::{JsonBody, OptionalJsonBody, Precondition, object_response};
use crate::params::{Params, project_fields};
use crate::relationships as rel;
use crate::state::{ApiState, ManagedChange};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use idsync_core::ResourcePath;
use idsync_engine::{Caller, ManagedScripts};
use idsync_repo::{ChangeSet, Op, RepoError};
use serde_json::Value;
use std::sync::Arc;

/// The routes of this resource.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route(
            "/openidm/managed/{object_type}",
            get(query).post(create_action),
        )
        .route(
            "/openidm/managed/{object_type}/{id}",
            get(read)
                .put(put)
                .patch(patch)
                .delete(delete)
                .post(object_action),
        )
}

/// Known managed types: those in managed.json and those a mapping reads or writes.
fn check_type(state: &ApiState, object_type: &str) -> ApiResult<()> {
    let p = &state.project;
    let in_mappings = p.mappings.iter().any(|m| {
        [&m.source, &m.target]
            .iter()
            .any(|r| matches!(r, ResourcePath::Managed { object_type: t, .. } if t == object_type))
    });
    if p.managed_type(object_type).is_some() || in_mappings {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!(
            "managed object type {object_type} is not defined"
        )))
    }
}

/// The lifecycle scripts of a type, when the engine is plugged in and the type has any.
fn scripts(state: &ApiState, object_type: &str) -> Option<Arc<ManagedScripts>> {
    state.hooks.as_ref().and_then(|h| h.scripts(object_type))
}

/// The object as a read (or a write's answer) gives it: properties' `onRetrieve`, `onRetrieve`
/// and `onRead` applied.
fn as_read(
    state: &ApiState,
    object_type: &str,
    id: &str,
    object: Value,
    caller: &Caller,
) -> ApiResult<Value> {
    match scripts(state, object_type) {
        Some(s) if s.has_read_hooks() => Ok(s.on_read(id, object, caller)?),
        _ => Ok(object),
    }
}

async fn get_existing(state: &ApiState, object_type: &str, id: &str) -> ApiResult<Value> {
    state
        .repo
        .get_object(object_type, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("managed/{object_type}/{id} not found")))
}

async fn query(
    State(state): State<ApiState>,
    Path(object_type): Path<String>,
    RequestCaller(caller): RequestCaller,
    params: Params,
) -> ApiResult<Response> {
    check_type(&state, &object_type)?;
    if !params.is_query() {
        return Err(ApiError::BadRequest(
            "reading a collection needs _queryFilter or _queryId".into(),
        ));
    }
    let req = params.query_request(&state.limits)?;
    let repo = state.repo.clone();
    let readers = scripts(&state, &object_type).filter(|s| s.has_read_hooks());
    let relationships = rel::fields_of(&state, &object_type);
    crate::stream::query_response(&state, &format!("managed/{object_type}"), req, move |q| {
        let repo = repo.clone();
        let object_type = object_type.clone();
        let readers = readers.clone();
        let caller = caller.clone();
        let relationships = relationships.clone();
        async move {
            let mut page = repo.query_objects(&object_type, &q).await?;
            if let Some(s) = readers {
                for r in &mut page.results {
                    let id = r
                        .get("_id")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    *r = s.on_read(&id, std::mem::take(r), &caller)?;
                }
            }
            for r in &mut page.results {
                idsync_engine::relationships::hide_unrequested(
                    &relationships,
                    r,
                    q.fields.as_deref(),
                );
            }
            Ok(page)
        }
    })
    .await
}

async fn read(
    State(state): State<ApiState>,
    Path((object_type, id)): Path<(String, String)>,
    RequestCaller(caller): RequestCaller,
    params: Params,
) -> ApiResult<Response> {
    check_type(&state, &object_type)?;
    let obj = get_existing(&state, &object_type, &id).await?;
    let obj = as_read(&state, &object_type, &id, obj, &caller)?;
    let fields = params.fields()?;
    let obj = rel::answer(&state, &object_type, obj, fields.as_deref());
    Ok(object_response(
        StatusCode::OK,
        project_fields(obj, fields.as_deref()),
    ))
}

async fn create_action(
    State(state): State<ApiState>,
    Path(object_type): Path<String>,
    RequestCaller(caller): RequestCaller,
    params: Params,
    OptionalJsonBody(body): OptionalJsonBody,
) -> ApiResult<Response> {
    check_type(&state, &object_type)?;
    match params.action()? {
        None | Some("create") => {}
        Some(other) => {
            let body = body.unwrap_or(Value::Null);
            if let Some(answer) = custom_action(&state, &object_type, other, None, &body, &caller) {
                return Ok(object_response(StatusCode::OK, answer?));
            }
            return Err(unknown_action(&state, &object_type, other, "create"));
        }
    }
    let Some(body) = body else {
        return Err(ApiError::BadRequest("the request needs a JSON body".into()));
    };
    let mut object = JsonBody(body).into_object()?;
    let id = match object.get("_id") {
        None | Some(Value::Null) => uuid::Uuid::new_v4().to_string(),
        Some(Value::String(s)) if !s.is_empty() && !s.contains('/') => s.clone(),
        Some(_) => {
            return Err(ApiError::BadRequest(
                "_id must be a non-empty string without '/'".into(),
            ));
        }
    };
    strip_meta(&mut object);
    let (created, extra) = create_object(&state, &object_type, &id, object, &caller).await?;
    Ok(answer(
        &state,
        &object_type,
        StatusCode::CREATED,
        merge(created, extra),
    ))
}

/// A write's answer: the object without the relationships it does not return by default.
fn answer(state: &ApiState, object_type: &str, status: StatusCode, object: Value) -> Response {
    object_response(status, rel::answer(state, object_type, object, None))
}

/// `POST managed/<type>/<id>?_action=`: `triggerSyncCheck` or a custom action.
async fn object_action(
    State(state): State<ApiState>,
    Path((object_type, id)): Path<(String, String)>,
    RequestCaller(caller): RequestCaller,
    params: Params,
    OptionalJsonBody(body): OptionalJsonBody,
) -> ApiResult<Response> {
    check_type(&state, &object_type)?;
    let action = params.action()?.unwrap_or("");
    if action == "triggerSyncCheck" {
        // The object as it reads (onRead applied) runs through implicit sync as if it had
        // changed; the answer is that object.
        let stored = get_existing(&state, &object_type, &id).await?;
        let object = as_read(&state, &object_type, &id, stored, &caller)?;
        if let Some(h) = state.hooks.clone() {
            let change = ManagedChange {
                object_type: object_type.clone(),
                id: id.clone(),
                before: Some(object.clone()),
                after: Some(object.clone()),
            };
            tokio::spawn(async move { h.sync_check(&change).await })
                .await
                .map_err(|e| ApiError::Internal(format!("implicit sync task failed: {e}")))??;
        }
        return Ok(answer(&state, &object_type, StatusCode::OK, object));
    }
    let has_action = scripts(&state, &object_type).is_some_and(|s| s.has_action(action));
    if has_action {
        let stored = get_existing(&state, &object_type, &id).await?;
        let body = body.unwrap_or(Value::Null);
        if let Some(answer) = custom_action(
            &state,
            &object_type,
            action,
            Some((&id, &stored)),
            &body,
            &caller,
        ) {
            return Ok(object_response(StatusCode::OK, answer?));
        }
    }
    Err(unknown_action(
        &state,
        &object_type,
        action,
        "triggerSyncCheck",
    ))
}

/// Runs the custom action `action` of the type on an object or on the collection; `None` when
/// the type has no such action.
fn custom_action(
    state: &ApiState,
    object_type: &str,
    action: &str,
    object: Option<(&str, &Value)>,
    body: &Value,
    caller: &Caller,
) -> Option<ApiResult<Value>> {
    let s = scripts(state, object_type)?;
    let (id, object) = match object {
        Some((id, o)) => (Some(id), Some(o)),
        None => (None, None),
    };
    s.action(action, id, object, body, caller)
        .map(|r| r.map_err(ApiError::from))
}

fn unknown_action(state: &ApiState, object_type: &str, action: &str, built_in: &str) -> ApiError {
    let mut known = vec![built_in.to_string()];
    if let Some(s) = scripts(state, object_type) {
        known.extend(s.action_names().map(str::to_string));
    }
    ApiError::BadRequest(format!(
        "unknown action \"{action}\" on managed/{object_type} (supported: {})",
        known.join(", ")
    ))
}

async fn put(
    State(state): State<ApiState>,
    Path((object_type, id)): Path<(String, String)>,
    RequestCaller(caller): RequestCaller,
    headers: HeaderMap,
    body: JsonBody,
) -> ApiResult<Response> {
    check_type(&state, &object_type)?;
    let pre = Precondition::from_headers(&headers)?;
    let mut object = body.into_object()?;
    match object.get("_id") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if *s == id => {}
        Some(_) => {
            return Err(ApiError::BadRequest(format!(
                "the body's _id does not match the path's id {id}"
            )));
        }
    }
    strip_meta(&mut object);
    let existing = state.repo.get_object(&object_type, &id).await?;
    match (pre, existing) {
        (Precondition::Absent, Some(_)) => Err(ApiError::PreconditionFailed(format!(
            "managed/{object_type}/{id} already exists (If-None-Match: *)"
        ))),
        (Precondition::Absent | Precondition::None, None) => {
            let (created, extra) =
                create_object(&state, &object_type, &id, object, &caller).await?;
            Ok(answer(
                &state,
                &object_type,
                StatusCode::CREATED,
                merge(created, extra),
            ))
        }
        (Precondition::Exists | Precondition::Rev(_), None) => Err(ApiError::NotFound(format!(
            "managed/{object_type}/{id} not found"
        ))),
        (pre, Some(before)) => {
            // A PUT keeps the relationships its body leaves out (docs/rest.md#relationships).
            rel::keep_absent(&state, &object_type, &before, &mut object);
            let (after, extra) = update_object(
                &state,
                &object_type,
                &id,
                before,
                object,
                pre.rev(),
                &caller,
            )
            .await?;
            Ok(answer(
                &state,
                &object_type,
                StatusCode::OK,
                merge(after, extra),
            ))
        }
    }
}

async fn patch(
    State(state): State<ApiState>,
    Path((object_type, id)): Path<(String, String)>,
    RequestCaller(caller): RequestCaller,
    headers: HeaderMap,
    body: JsonBody,
) -> ApiResult<Response> {
    check_type(&state, &object_type)?;
    let caller = caller.with_patch(body.0.clone());
    let pre = Precondition::from_headers(&headers)?;
    if pre == Precondition::Absent {
        return Err(ApiError::BadRequest(
            "If-None-Match cannot be used with PATCH".into(),
        ));
    }
    // Without If-Match the patch applies to whatever is current: a concurrent write between
    // our read and our write is retried on the fresh object, as CREST does.
    let mut attempts = 0;
    loop {
        attempts += 1;
        let before = get_existing(&state, &object_type, &id).await?;
        let mut after = before.clone();
        crate::patch::apply_patch(&mut after, &body.0, state.limits.max_object_bytes)?;
        strip_meta(&mut after);
        let expected = match pre.rev() {
            Some(r) => Some(r.to_string()),
            None => before
                .get("_rev")
                .and_then(Value::as_str)
                .map(str::to_string),
        };
        match update_object(
            &state,
            &object_type,
            &id,
            before,
            after,
            expected.as_deref(),
            &caller,
        )
        .await
        {
            Err(ApiError::Repo(RepoError::RevisionMismatch { .. }))
                if pre.rev().is_none() && attempts < 5 =>
            {
                continue;
            }
            Err(ApiError::Repo(RepoError::NotFound(_))) => {
                return Err(ApiError::NotFound(format!(
                    "managed/{object_type}/{id} not found"
                )));
            }
            Err(e) => return Err(e),
            Ok((after, extra)) => {
                return Ok(answer(
                    &state,
                    &object_type,
                    StatusCode::OK,
                    merge(after, extra),
                ));
            }
        }
    }
}

async fn delete(
    State(state): State<ApiState>,
    Path((object_type, id)): Path<(String, String)>,
    RequestCaller(caller): RequestCaller,
    headers: HeaderMap,
) -> ApiResult<Response> {
    check_type(&state, &object_type)?;
    let pre = Precondition::from_headers(&headers)?;
    let before = get_existing(&state, &object_type, &id).await?;
    let scripts = scripts(&state, &object_type);
    if let Some(s) = &scripts {
        s.before_delete(&id, &before, &caller)?;
    }
    let expected = pre.rev().map(str::to_string).or_else(|| {
        before
            .get("_rev")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    let change = ManagedChange {
        object_type: object_type.clone(),
        id: id.clone(),
        before: Some(before.clone()),
        after: None,
    };
    let mut changes = ChangeSet::new().with(Op::DeleteObject {
        object_type: object_type.clone(),
        id: id.clone(),
        expected_rev: expected,
    });
    rel::mirror_writes(&state, &object_type, &id, Some(&before), None, &mut changes).await?;
    commit(&state, &change, &mut changes).await?;
    if let Some(s) = &scripts {
        s.after_delete(&id, &before, &caller)?;
    }
    let extra = after_commit(&state, &change).await?;
    Ok(answer(
        &state,
        &object_type,
        StatusCode::OK,
        merge(before, extra),
    ))
}

/// `_id` comes from the path and `_rev` from the repository: a body's copies are dropped.
fn strip_meta(object: &mut Value) {
    if let Value::Object(m) = object {
        m.shift_remove("_id");
        m.shift_remove("_rev");
    }
}

/// Creates the object through its type's lifecycle; answers the object as a read gives it
/// (`onRetrieve`/`onRead` applied) and the hooks' extra response fields.
async fn create_object(
    state: &ApiState,
    object_type: &str,
    id: &str,
    object: Value,
    caller: &Caller,
) -> ApiResult<(Value, Option<Value>)> {
    let scripts = scripts(state, object_type);
    let object = match &scripts {
        Some(s) => {
            let mut o = s.before_create(id, with_id(object, id), caller)?;
            strip_meta(&mut o);
            o
        }
        None => object,
    };
    let mut object = object;
    rel::prepare_write(state, object_type, None, &mut object)?;
    // Before anything is stored: an object the repository could not parse back would break
    // every later read and query of its type.
    crate::limits::check_object(&object, &state.limits)?;
    let mut change = ManagedChange {
        object_type: object_type.to_string(),
        id: id.to_string(),
        before: None,
        after: Some(with_id(object.clone(), id)),
    };
    let mut changes = ChangeSet::new().with(Op::CreateObject {
        object_type: object_type.to_string(),
        id: id.to_string(),
        value: object,
    });
    rel::mirror_writes(
        state,
        object_type,
        id,
        None,
        change.after.as_ref(),
        &mut changes,
    )
    .await?;
    commit(state, &change, &mut changes)
        .await
        .map_err(|e| match e {
            ApiError::Repo(RepoError::Conflict(_)) => {
                ApiError::PreconditionFailed(format!("managed/{object_type}/{id} already exists"))
            }
            other => other,
        })?;
    let stored = get_existing(state, object_type, id).await?;
    if let Some(s) = &scripts {
        s.after_create(id, &stored, caller)?;
    }
    change.after = Some(stored.clone());
    let extra = after_commit(state, &change).await?;
    Ok((as_read(state, object_type, id, stored, caller)?, extra))
}

/// Updates the object through its type's lifecycle; answers as [`create_object`] does.
async fn update_object(
    state: &ApiState,
    object_type: &str,
    id: &str,
    before: Value,
    object: Value,
    expected_rev: Option<&str>,
    caller: &Caller,
) -> ApiResult<(Value, Option<Value>)> {
    let scripts = scripts(state, object_type);
    let object = match &scripts {
        Some(s) => {
            let mut o = s.before_update(id, &before, with_id(object, id), caller)?;
            strip_meta(&mut o);
            o
        }
        None => object,
    };
    let mut object = object;
    rel::prepare_write(state, object_type, Some(&before), &mut object)?;
    // The result of a PATCH or PUT, checked before it is stored (see `create_object`).
    crate::limits::check_object(&object, &state.limits)?;
    let mut change = ManagedChange {
        object_type: object_type.to_string(),
        id: id.to_string(),
        before: Some(before),
        after: Some(with_id(object.clone(), id)),
    };
    let mut changes = ChangeSet::new().with(Op::UpdateObject {
        object_type: object_type.to_string(),
        id: id.to_string(),
        expected_rev: expected_rev.map(str::to_string),
        value: object,
    });
    rel::mirror_writes(
        state,
        object_type,
        id,
        change.before.as_ref(),
        change.after.as_ref(),
        &mut changes,
    )
    .await?;
    commit(state, &change, &mut changes).await?;
    let stored = get_existing(state, object_type, id).await?;
    if let (Some(s), Some(before)) = (&scripts, &change.before) {
        s.after_update(id, before, &stored, caller)?;
    }
    change.after = Some(stored.clone());
    let extra = after_commit(state, &change).await?;
    Ok((as_read(state, object_type, id, stored, caller)?, extra))
}

fn with_id(mut object: Value, id: &str) -> Value {
    if let Value::Object(m) = &mut object {
        m.insert("_id".into(), Value::String(id.to_string()));
    }
    object
}

async fn commit(
    state: &ApiState,
    change: &ManagedChange,
    changes: &mut ChangeSet,
) -> ApiResult<()> {
    if let Some(hooks) = &state.hooks {
        hooks.before_commit(change, changes).await?;
    }
    let taken = std::mem::take(changes);
    state.repo.commit(taken).await?;
    Ok(())
}

/// Runs the post-commit hooks (implicit sync) in a task of their own: the write is committed, so
/// what follows from it must finish even if the client goes away or the request times out
/// (dropping the handler's future would cut a sync in the middle).
async fn after_commit(state: &ApiState, change: &ManagedChange) -> ApiResult<Option<Value>> {
    let Some(h) = state.hooks.clone() else {
        return Ok(None);
    };
    let change = change.clone();
    tokio::spawn(idsync_script::host::inherit(async move {
        h.after_commit(&change).await
    }))
    .await
    .map_err(|e| ApiError::Internal(format!("implicit sync task failed: {e}")))?
}

/// Adds the hook's response fields to the object answered.
fn merge(mut object: Value, extra: Option<Value>) -> Value {
    if let (Value::Object(m), Some(Value::Object(x))) = (&mut object, extra) {
        for (k, v) in x {
            m.insert(k, v);
        }
    }
    object
}
