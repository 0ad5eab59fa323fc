//! `managed/<type>/<id>/<property>[/<relId>]` (docs/rest.md#relationships): the relationship
//! endpoints of a managed object's relationship properties, and the hooks the object's own
//! reads and writes call (docs/adr/0013-relationships.md).
//!
//! Entries live in the owning object's document, so each write here is a write of that object:
//! read, change the property, store with the object's `_rev` expected (retried when another
//! write got there first), in one commit with the other side of a reverse relationship. Such a
//! write runs no lifecycle script and no implicit sync of the owner: it changes no synchronized
//! value (see the ADR). The values themselves are computed by [`idsync_engine::relationships`].

use crate::error::{ApiError, ApiResult};
use crate::http::{JsonBody, OptionalJsonBody, Precondition, object_response};
use crate::params::{Params, envelope, page_in_memory};
use crate::state::ApiState;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use idsync_config::RelationshipField;
use idsync_core::JsonPointer;
use idsync_engine::relationships as rel;
use idsync_repo::{ChangeSet, Op, RepoError};
use serde_json::Value;
use std::collections::BTreeMap;

/// How often a write is retried when the owning object changed between its read and its write
/// (scripts of concurrent syncs adding entries to one object each lose at most once per rival).
const ATTEMPTS: usize = 16;

/// The routes of this resource.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route(
            "/openidm/managed/{object_type}/{id}/{field}",
            get(query).post(create),
        )
        .route(
            "/openidm/managed/{object_type}/{id}/{field}/{rel_id}",
            get(read).put(put).patch(patch).delete(delete),
        )
}

/// The relationship properties of a managed type (none for an unknown type).
pub(crate) fn fields_of(state: &ApiState, object_type: &str) -> Vec<RelationshipField> {
    state
        .project
        .managed_type(object_type)
        .map(|t| t.relationship_fields())
        .unwrap_or_default()
}

/// An object as a read or a write answers it: the relationship properties that are not
/// returned by default are left out unless `_fields` names them.
pub(crate) fn answer(
    state: &ApiState,
    object_type: &str,
    mut object: Value,
    requested: Option<&[JsonPointer]>,
) -> Value {
    let fields = fields_of(state, object_type);
    rel::hide_unrequested(&fields, &mut object, requested);
    object
}

/// Before a create, PUT or PATCH of the object is stored: its relationship entries get their
/// `_id` and `_rev` (a 400 for a malformed one).
pub(crate) fn prepare_write(
    state: &ApiState,
    object_type: &str,
    before: Option<&Value>,
    object: &mut Value,
) -> ApiResult<()> {
    let fields = fields_of(state, object_type);
    rel::prepare_write(&fields, before, object).map_err(ApiError::BadRequest)
}

/// A PUT replaces the whole object but keeps the relationship properties its body leaves out.
pub(crate) fn keep_absent(state: &ApiState, object_type: &str, before: &Value, object: &mut Value) {
    rel::keep_absent(&fields_of(state, object_type), before, object);
}

/// Checks the references of `validate` properties, then adds to `changes` the writes of the
/// other side of the object's reverse relationships that a write of the object (`before` →
/// `after`; `None` for a create or a delete) makes.
pub(crate) async fn mirror_writes(
    state: &ApiState,
    object_type: &str,
    id: &str,
    before: Option<&Value>,
    after: Option<&Value>,
    changes: &mut ChangeSet,
) -> ApiResult<()> {
    let fields = fields_of(state, object_type);
    mirror_ops(state, object_type, id, &fields, before, after, changes).await
}

/// The writes of the other side of `fields` (those that are reverse relationships) for a
/// write `before` → `after` of `managed/<object_type>/<id>`: one update per referenced object,
/// after the `validate` check of the new references.
async fn mirror_ops(
    state: &ApiState,
    object_type: &str,
    id: &str,
    fields: &[RelationshipField],
    before: Option<&Value>,
    after: Option<&Value>,
    changes: &mut ChangeSet,
) -> ApiResult<()> {
    check_references(state, fields, before, after).await?;
    type Changes = Vec<(RelationshipField, rel::MirrorChange)>;
    let mut by_object: BTreeMap<(String, String), Changes> = BTreeMap::new();
    for field in fields {
        let Some((other_type, other)) = reverse_of(state, object_type, field) else {
            continue;
        };
        for (t, tid, change) in rel::mirror_changes(field, object_type, id, before, after) {
            if t != other_type || (t == object_type && tid == id) {
                continue;
            }
            // A mirror entry that takes the place of another in a single relationship (a user
            // gets a new manager through the manager's `reports`) removes the displaced
            // entry's own mirror from the object it referred to.
            if let (false, rel::MirrorChange::Upsert(entry)) = (other.collection, &change)
                && let Some(target) = state.repo.get_object(&t, &tid).await?
                && let Some(current) = target.get(&other.name)
                && rel::entry_id(current) != rel::entry_id(entry)
                && let Some(old_id) = rel::entry_id(current)
                && let Some((xt, xid)) = current
                    .get("_ref")
                    .and_then(Value::as_str)
                    .and_then(rel::managed_ref)
                && xt == object_type
                && xid != id
            {
                by_object
                    .entry((xt.to_string(), xid.to_string()))
                    .or_default()
                    .push((field.clone(), rel::MirrorChange::Remove(old_id.to_string())));
            }
            by_object
                .entry((t, tid))
                .or_default()
                .push((other.clone(), change));
        }
    }
    for ((t, tid), list) in by_object {
        // A reference to an object that does not exist has no other side to keep.
        let Some(mut target) = state.repo.get_object(&t, &tid).await? else {
            continue;
        };
        let rev = target
            .get("_rev")
            .and_then(Value::as_str)
            .map(str::to_string);
        for (field, change) in &list {
            rel::apply_mirror(field, &mut target, change);
        }
        strip_meta(&mut target);
        changes.push(Op::UpdateObject {
            object_type: t,
            id: tid,
            expected_rev: rev,
            value: target,
        });
    }
    Ok(())
}

/// A 400 when an entry of a `validate` property newly refers to a managed object that does not
/// exist (references to other resources are not checked).
async fn check_references(
    state: &ApiState,
    fields: &[RelationshipField],
    before: Option<&Value>,
    after: Option<&Value>,
) -> ApiResult<()> {
    for field in fields.iter().filter(|f| f.validate) {
        for (t, id) in rel::new_managed_refs(field, before, after) {
            let exists = state.project.managed_type(&t).is_some()
                && state.repo.get_object(&t, &id).await?.is_some();
            if !exists {
                return Err(ApiError::BadRequest(format!(
                    "{} refers to managed/{t}/{id}, which does not exist",
                    field.name
                )));
            }
        }
    }
    Ok(())
}

/// The other side of a relationship property: the referenced managed type and its property,
/// when either side names the other with `reversePropertyName`.
fn reverse_of(
    state: &ApiState,
    object_type: &str,
    field: &RelationshipField,
) -> Option<(String, RelationshipField)> {
    for path in &field.resource_paths {
        let Some(other_type) = path.trim_matches('/').strip_prefix("managed/") else {
            continue;
        };
        let Some(t) = state.project.managed_type(other_type) else {
            continue;
        };
        for other in t.relationship_fields() {
            let named_here = field.reverse_property.as_deref() == Some(other.name.as_str());
            let named_there = other.reverse_property.as_deref() == Some(field.name.as_str())
                && other
                    .resource_paths
                    .iter()
                    .any(|p| p.trim_matches('/') == format!("managed/{object_type}"));
            if named_here || named_there {
                return Some((other_type.to_string(), other));
            }
        }
    }
    None
}

fn strip_meta(object: &mut Value) {
    if let Value::Object(m) = object {
        m.shift_remove("_id");
        m.shift_remove("_rev");
    }
}

/// The relationship property `field` of `managed/<object_type>`, or 404.
fn field_of(state: &ApiState, object_type: &str, field: &str) -> ApiResult<RelationshipField> {
    let t = state.project.managed_type(object_type).ok_or_else(|| {
        ApiError::NotFound(format!("managed object type {object_type} is not defined"))
    })?;
    t.relationship_field(field).ok_or_else(|| {
        ApiError::NotFound(format!(
            "managed/{object_type} has no relationship property {field}"
        ))
    })
}

async fn owner(state: &ApiState, object_type: &str, id: &str) -> ApiResult<Value> {
    state
        .repo
        .get_object(object_type, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("managed/{object_type}/{id} not found")))
}

fn entry_not_found(object_type: &str, id: &str, field: &str, rel_id: &str) -> ApiError {
    ApiError::NotFound(format!(
        "managed/{object_type}/{id}/{field}/{rel_id} not found"
    ))
}

/// `GET managed/<type>/<id>/<property>?_queryFilter=…|_queryId=query-all`: the entries, as a
/// CREST query answer. Without a query, a single relationship answers its entry.
async fn query(
    State(state): State<ApiState>,
    Path((object_type, id, field)): Path<(String, String, String)>,
    params: Params,
) -> ApiResult<Response> {
    let f = field_of(&state, &object_type, &field)?;
    let object = owner(&state, &object_type, &id).await?;
    let all = rel::entries(&f, &object);
    if !params.is_query() {
        if f.collection {
            return Err(ApiError::BadRequest(
                "reading a relationship collection needs _queryFilter or _queryId".into(),
            ));
        }
        return match all.into_iter().next() {
            Some(e) => Ok(object_response(StatusCode::OK, e)),
            None => Err(ApiError::NotFound(format!(
                "managed/{object_type}/{id}/{field} is not set"
            ))),
        };
    }
    let req = params.query_request(&state.limits)?;
    crate::limits::check_query(&req, &state.limits)?;
    let page = page_in_memory(&req, all);
    Ok(axum::Json(envelope(&req, page)).into_response())
}

/// Applies `change` to the owning object and stores it (with the other side of a reverse
/// relationship), retrying on a concurrent write; answers what `change` returned.
async fn write<F, T>(
    state: &ApiState,
    object_type: &str,
    id: &str,
    field: &RelationshipField,
    change: F,
) -> ApiResult<T>
where
    F: Fn(&mut Value) -> ApiResult<T>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        let before = owner(state, object_type, id).await?;
        let mut after = before.clone();
        let answer = change(&mut after)?;
        let expected = before
            .get("_rev")
            .and_then(Value::as_str)
            .map(str::to_string);
        let mut changes = ChangeSet::new();
        let one = std::slice::from_ref(field);
        mirror_ops(
            state,
            object_type,
            id,
            one,
            Some(&before),
            Some(&after),
            &mut changes,
        )
        .await?;
        strip_meta(&mut after);
        crate::limits::check_object(&after, &state.limits)?;
        changes.push(Op::UpdateObject {
            object_type: object_type.to_string(),
            id: id.to_string(),
            expected_rev: expected,
            value: after,
        });
        match state.repo.commit(changes).await {
            Ok(_) => return Ok(answer),
            Err(RepoError::RevisionMismatch { .. }) if attempt < ATTEMPTS => continue,
            Err(RepoError::NotFound(_)) => {
                return Err(ApiError::NotFound(format!(
                    "managed/{object_type}/{id} not found"
                )));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// `POST managed/<type>/<id>/<property>?_action=create`: a new entry (201).
async fn create(
    State(state): State<ApiState>,
    Path((object_type, id, field)): Path<(String, String, String)>,
    params: Params,
    OptionalJsonBody(body): OptionalJsonBody,
) -> ApiResult<Response> {
    match params.action()? {
        None | Some("create") => {}
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "unknown action \"{other}\" on a relationship property (supported: create)"
            )));
        }
    }
    let f = field_of(&state, &object_type, &field)?;
    let body = body.ok_or_else(|| ApiError::BadRequest("the request needs a JSON body".into()))?;
    let rel_id = rel::new_entry_id();
    let entry = rel::new_entry(&field, &body, &rel_id).map_err(ApiError::BadRequest)?;
    let created = write(&state, &object_type, &id, &f, |o| {
        rel::insert(&f, o, entry.clone());
        Ok(entry.clone())
    })
    .await?;
    Ok(object_response(StatusCode::CREATED, created))
}

/// `GET managed/<type>/<id>/<property>/<relId>`.
async fn read(
    State(state): State<ApiState>,
    Path((object_type, id, field, rel_id)): Path<(String, String, String, String)>,
) -> ApiResult<Response> {
    let f = field_of(&state, &object_type, &field)?;
    let object = owner(&state, &object_type, &id).await?;
    let entry = rel::find(&f, &object, &rel_id)
        .ok_or_else(|| entry_not_found(&object_type, &id, &field, &rel_id))?;
    Ok(object_response(StatusCode::OK, entry))
}

/// Checks an `If-Match` revision against the entry's.
fn check_rev(pre: &Precondition, entry: &Value) -> ApiResult<()> {
    if let Some(want) = pre.rev()
        && rel::entry_rev(entry) != Some(want)
    {
        return Err(ApiError::PreconditionFailed(format!(
            "revision mismatch: the relationship is at revision {}, not {want}",
            rel::entry_rev(entry).unwrap_or("none")
        )));
    }
    Ok(())
}

/// `PUT managed/<type>/<id>/<property>/<relId>`: replaces the entry (`If-Match` its `_rev`);
/// creates it with that id when absent (and not `If-Match`), as `openidm.create` with an id does.
async fn put(
    State(state): State<ApiState>,
    Path((object_type, id, field, rel_id)): Path<(String, String, String, String)>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let f = field_of(&state, &object_type, &field)?;
    let pre = Precondition::from_headers(&headers)?;
    let (answer, created) = write(&state, &object_type, &id, &f, |o| match rel::find(&f, o, &rel_id) {
        Some(old) => {
            if pre == Precondition::Absent {
                return Err(ApiError::PreconditionFailed(format!(
                    "managed/{object_type}/{id}/{field}/{rel_id} already exists (If-None-Match: *)"
                )));
            }
            check_rev(&pre, &old)?;
            let new = rel::updated_entry(&field, &old, &body).map_err(ApiError::BadRequest)?;
            rel::replace(&f, o, &rel_id, new.clone());
            Ok((new, false))
        }
        None => {
            if matches!(pre, Precondition::Exists | Precondition::Rev(_)) {
                return Err(entry_not_found(&object_type, &id, &field, &rel_id));
            }
            if rel_id.trim().is_empty() || rel_id.contains('/') {
                return Err(ApiError::BadRequest(
                    "a relationship _id must be non-empty and without '/'".into(),
                ));
            }
            let new = rel::new_entry(&field, &body, &rel_id).map_err(ApiError::BadRequest)?;
            rel::insert(&f, o, new.clone());
            Ok((new, true))
        }
    })
    .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(object_response(status, answer))
}

/// `PATCH managed/<type>/<id>/<property>/<relId>`: a CREST patch of the entry
/// (`{_ref, _refProperties}`); its `_id` stays.
async fn patch(
    State(state): State<ApiState>,
    Path((object_type, id, field, rel_id)): Path<(String, String, String, String)>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let f = field_of(&state, &object_type, &field)?;
    let pre = Precondition::from_headers(&headers)?;
    if pre == Precondition::Absent {
        return Err(ApiError::BadRequest(
            "If-None-Match cannot be used with PATCH".into(),
        ));
    }
    let max = state.limits.max_object_bytes;
    let answer = write(&state, &object_type, &id, &f, |o| {
        let old = rel::find(&f, o, &rel_id)
            .ok_or_else(|| entry_not_found(&object_type, &id, &field, &rel_id))?;
        check_rev(&pre, &old)?;
        let mut patched = old.clone();
        crate::patch::apply_patch(&mut patched, &body, max)?;
        let new = rel::updated_entry(&field, &old, &patched).map_err(ApiError::BadRequest)?;
        rel::replace(&f, o, &rel_id, new.clone());
        Ok(new)
    })
    .await?;
    Ok(object_response(StatusCode::OK, answer))
}

/// `DELETE managed/<type>/<id>/<property>/<relId>`: removes the entry and answers it.
async fn delete(
    State(state): State<ApiState>,
    Path((object_type, id, field, rel_id)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let f = field_of(&state, &object_type, &field)?;
    let pre = Precondition::from_headers(&headers)?;
    let answer = write(&state, &object_type, &id, &f, |o| {
        let old = rel::find(&f, o, &rel_id)
            .ok_or_else(|| entry_not_found(&object_type, &id, &field, &rel_id))?;
        check_rev(&pre, &old)?;
        rel::remove(&f, o, &rel_id);
        Ok(old)
    })
    .await?;
    Ok(object_response(StatusCode::OK, answer))
}
