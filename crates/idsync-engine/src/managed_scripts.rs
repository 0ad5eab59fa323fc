//! The lifecycle scripts and custom actions of one managed object type (`conf/managed.json`,
//! docs/configuration.md#confmanagedjson), compiled once when the engine starts.
//!
//! It owns which script runs at each step of a managed-object write, read or action, with which
//! variables, and what a failure of each means (a CREST error). Every script of this module is
//! evaluated by [`ManagedScripts::eval`]: it is the one place where what a lifecycle script sees
//! is decided. It must not write anything: callers (the REST API, the recon pipeline, implicit
//! sync) store what it returns and decide when each step runs.
//!
//! Order for a create: `onCreate` → virtual properties computed → properties' `onValidate` →
//! `onValidate` → properties' `onStore` → `onStore` → store → `postCreate` → implicit sync →
//! `onSync`; an update runs `onUpdate` in place of `onCreate` and `postUpdate`; a delete
//! `onDelete` → store → `postDelete` → implicit sync → `onSync`; a read properties' `onRetrieve`
//! → `onRetrieve` → `onRead`. Every script sees `request` and `context` ([`Caller`]).

use idsync_config::{ManagedType, PropertyScripts, ScriptSpec};
use idsync_core::{ErrorCode, HasErrorCode};
use idsync_script::{Bindings, Script, ScriptError, ScriptOrigin};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// A lifecycle script refused the operation or failed: the CREST error to answer with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct HookError {
    pub code: ErrorCode,
    pub message: String,
}

impl HasErrorCode for HookError {
    fn error_code(&self) -> ErrorCode {
        self.code
    }
}

/// Who asked for a managed-object operation and how, as its scripts see it: IDM's `context`, and
/// the parts of IDM's `request` that only the caller knows (docs/scripts.md#context-and-request).
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// IDM's `context`: `{"current": {"name": "http"|"sync"|...}, "security": {...}, ...}`.
    pub context: Value,
    /// The request's parameters (`request.additionalParameters`).
    pub params: Map<String, Value>,
    /// The operations of a PATCH (`request.patchOperations`; the request's method is `patch`).
    pub patch: Option<Value>,
}

impl Caller {
    /// A write the engine makes for a mapping (a reconciliation, implicit sync, liveSync, queued
    /// sync): `context.current.name` is `sync`, `context.sync.mapping` the mapping, and the
    /// security context the internal system user.
    pub fn sync(mapping: &str) -> Caller {
        Caller {
            context: json!({
                "current": {"name": "sync"},
                "sync": {"mapping": mapping},
                "security": system_security(),
            }),
            ..Caller::default()
        }
    }

    /// A write the engine follows up without knowing who asked (the `post*` and `onSync` scripts
    /// of a write a reconciliation or a sync committed): `context.current.name` is `internal`.
    pub fn internal() -> Caller {
        Caller {
            context: json!({"current": {"name": "internal"}, "security": system_security()}),
            ..Caller::default()
        }
    }

    /// An HTTP request of `user` (with `roles`): `context.current.name` is `http`.
    pub fn http(
        user: &str,
        roles: &[&str],
        method: &str,
        path: &str,
        params: Map<String, Value>,
    ) -> Caller {
        Caller {
            context: json!({
                "current": {"name": "http"},
                "security": {
                    "authenticationId": user,
                    "authorization": {"id": user, "roles": roles, "component": "idsync"},
                },
                "http": {"method": method, "path": path},
            }),
            params,
            patch: None,
        }
    }

    /// The same caller, for a PATCH with these operations.
    pub fn with_patch(mut self, operations: Value) -> Caller {
        self.patch = Some(operations);
        self
    }

    fn request(&self, method: &str, resource_path: String, content: Option<&Value>) -> Value {
        let mut r = json!({
            "method": if method == "update" && self.patch.is_some() { "patch" } else { method },
            "resourcePath": resource_path,
            "content": content.cloned().unwrap_or(Value::Null),
            "additionalParameters": self.params,
        });
        if let (Some(ops), Value::Object(m)) = (&self.patch, &mut r) {
            m.insert("patchOperations".into(), ops.clone());
        }
        r
    }
}

/// The security context of the engine's own writes.
fn system_security() -> Value {
    json!({
        "authenticationId": "internal/system",
        "authorization": {"id": "internal/system", "roles": ["system"], "component": "internal/user"},
    })
}

/// The step a script runs at; its name is the managed.json key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    OnCreate,
    OnUpdate,
    OnDelete,
    OnRead,
    OnRetrieve,
    OnValidate,
    OnStore,
    PostCreate,
    PostUpdate,
    PostDelete,
    OnSync,
    Action,
}

impl Hook {
    pub fn key(self) -> &'static str {
        match self {
            Hook::OnCreate => "onCreate",
            Hook::OnUpdate => "onUpdate",
            Hook::OnDelete => "onDelete",
            Hook::OnRead => "onRead",
            Hook::OnRetrieve => "onRetrieve",
            Hook::OnValidate => "onValidate",
            Hook::OnStore => "onStore",
            Hook::PostCreate => "postCreate",
            Hook::PostUpdate => "postUpdate",
            Hook::PostDelete => "postDelete",
            Hook::OnSync => "onSync",
            Hook::Action => "action",
        }
    }
}

/// The compiled scripts of one managed object type.
#[derive(Debug, Clone, Default)]
pub struct ManagedScripts {
    object_type: String,
    on_create: Option<Script>,
    on_update: Option<Script>,
    on_delete: Option<Script>,
    on_read: Option<Script>,
    on_retrieve: Option<Script>,
    on_validate: Option<Script>,
    on_store: Option<Script>,
    post_create: Option<Script>,
    post_update: Option<Script>,
    post_delete: Option<Script>,
    on_sync: Option<Script>,
    actions: BTreeMap<String, Script>,
    properties: Vec<PropertyHooks>,
}

/// The compiled scripts of one schema property.
#[derive(Debug, Clone)]
struct PropertyHooks {
    name: String,
    is_virtual: bool,
    on_retrieve: Option<Script>,
    on_validate: Option<Script>,
    on_store: Option<Script>,
}

/// What a custom action answered: the script's value, or (when it returned nothing) the object.
pub type ActionResult = Result<Value, HookError>;

impl ManagedScripts {
    /// Compiles the scripts of `t`; a syntax error names the type and the hook. With `host`,
    /// their `openidm` calls are answered by the host in that slot (docs/scripts.md).
    pub fn build(
        t: &ManagedType,
        host: Option<&idsync_script::HostSlot>,
    ) -> Result<ManagedScripts, ScriptError> {
        let compile = |spec: Option<&ScriptSpec>, place: &str| -> Result<Option<Script>, _> {
            spec.map(|s| {
                let origin = ScriptOrigin::file_used_by(
                    s.origin.clone(),
                    format!("managed object {} {place}", t.name),
                );
                let script = Script::compile(&s.source, origin, s.globals.clone())?;
                Ok(match host {
                    Some(h) => script.with_host(h.clone()),
                    None => script,
                })
            })
            .transpose()
        };
        let mut actions = BTreeMap::new();
        for (name, spec) in &t.actions {
            if let Some(s) = compile(Some(spec), &format!("action {name}"))? {
                actions.insert(name.clone(), s);
            }
        }
        let mut properties = Vec::new();
        for p in &t.property_scripts {
            let PropertyScripts {
                name,
                is_virtual,
                on_retrieve,
                on_validate,
                on_store,
            } = p;
            let place = |hook: &str| format!("property {name} {hook}");
            properties.push(PropertyHooks {
                name: name.clone(),
                is_virtual: *is_virtual,
                on_retrieve: compile(on_retrieve.as_ref(), &place("onRetrieve"))?,
                on_validate: compile(on_validate.as_ref(), &place("onValidate"))?,
                on_store: compile(on_store.as_ref(), &place("onStore"))?,
            });
        }
        Ok(ManagedScripts {
            object_type: t.name.clone(),
            on_create: compile(t.on_create.as_ref(), "onCreate")?,
            on_update: compile(t.on_update.as_ref(), "onUpdate")?,
            on_delete: compile(t.on_delete.as_ref(), "onDelete")?,
            on_read: compile(t.on_read.as_ref(), "onRead")?,
            on_retrieve: compile(t.on_retrieve.as_ref(), "onRetrieve")?,
            on_validate: compile(t.on_validate.as_ref(), "onValidate")?,
            on_store: compile(t.on_store.as_ref(), "onStore")?,
            post_create: compile(t.post_create.as_ref(), "postCreate")?,
            post_update: compile(t.post_update.as_ref(), "postUpdate")?,
            post_delete: compile(t.post_delete.as_ref(), "postDelete")?,
            on_sync: compile(t.on_sync.as_ref(), "onSync")?,
            actions,
            properties,
        })
    }

    pub fn object_type(&self) -> &str {
        &self.object_type
    }

    /// Whether a read answers through a script (`onRetrieve`, `onRead`, a property's
    /// `onRetrieve`).
    pub fn has_read_hooks(&self) -> bool {
        self.on_read.is_some()
            || self.on_retrieve.is_some()
            || self.properties.iter().any(|p| p.on_retrieve.is_some())
    }

    /// Whether anything runs after a write is stored (`post*`, `onSync`).
    pub fn has_after_hooks(&self) -> bool {
        self.post_create.is_some()
            || self.post_update.is_some()
            || self.post_delete.is_some()
            || self.on_sync.is_some()
    }

    /// Whether a custom action of this name exists.
    pub fn has_action(&self, name: &str) -> bool {
        self.actions.contains_key(name)
    }

    /// The custom actions' names.
    pub fn action_names(&self) -> impl Iterator<Item = &str> {
        self.actions.keys().map(String::as_str)
    }

    fn resource_name(&self, id: Option<&str>) -> Value {
        match id {
            Some(id) => Value::String(format!("managed/{}/{id}", self.object_type)),
            None => Value::String(format!("managed/{}", self.object_type)),
        }
    }

    /// Evaluates one lifecycle or action script: the one place that runs them, so what every
    /// such script sees beside its own variables (`resourceName`, and later the script API's
    /// objects) is decided here. Returns the script's value and the captured variables.
    #[allow(clippy::too_many_arguments)]
    fn eval<'b>(
        &self,
        hook: Hook,
        script: &Script,
        id: Option<&str>,
        mut bindings: Bindings<'b>,
        captures: &[&str],
        caller: &'b Caller,
        request: &'b Value,
    ) -> Result<(Value, Vec<Value>), HookError> {
        bindings.set_owned("resourceName", self.resource_name(id));
        bindings.set("request", request);
        bindings.set("context", &caller.context);
        script
            .eval_capturing(&bindings, captures)
            .map_err(|e| self.failure(hook, None, id, e))
    }

    /// Runs the property scripts of one step on `object`: each script's value becomes its
    /// property's value (`null` removes it). `step` picks the script; `only_virtual` the
    /// virtual properties alone (computed before a store).
    fn run_properties(
        &self,
        hook: Hook,
        id: Option<&str>,
        object: &mut Value,
        only_virtual: bool,
        caller: &Caller,
        request: &Value,
    ) -> Result<(), HookError> {
        for p in &self.properties {
            if only_virtual && !p.is_virtual {
                continue;
            }
            let script = match hook {
                Hook::OnRetrieve => &p.on_retrieve,
                Hook::OnValidate => &p.on_validate,
                Hook::OnStore => &p.on_store,
                _ => &None,
            };
            let Some(script) = script else { continue };
            let value = {
                let current = object.get(&p.name).cloned().unwrap_or(Value::Null);
                let mut bindings = Bindings::new()
                    .with("object", &*object)
                    .with_owned("property", current)
                    .with_owned("propertyName", Value::String(p.name.clone()));
                bindings.set_owned("resourceName", self.resource_name(id));
                bindings.set("request", request);
                bindings.set("context", &caller.context);
                script
                    .eval(&bindings)
                    .map_err(|e| self.failure(hook, Some(&p.name), id, e))?
            };
            if hook == Hook::OnValidate {
                continue;
            }
            if let Value::Object(m) = object {
                match value {
                    Value::Null => {
                        m.shift_remove(&p.name);
                    }
                    v => {
                        m.insert(p.name.clone(), v);
                    }
                }
            }
        }
        Ok(())
    }

    /// A script's failure as the CREST error of the request: a thrown `{"code":N,"message":M}`
    /// is that error; any other throw is a 400 from `onValidate` (its message is the answer)
    /// and a 500 from every other hook (the message is logged, not sent). `property` names the
    /// property whose script failed.
    fn failure(
        &self,
        hook: Hook,
        property: Option<&str>,
        id: Option<&str>,
        e: ScriptError,
    ) -> HookError {
        if let ScriptError::Thrown { message, .. } = &e {
            if let Some(coded) = coded_error(message) {
                return coded;
            }
            if hook == Hook::OnValidate {
                let bare = message.strip_prefix("Error: ").unwrap_or(message);
                return HookError {
                    code: ErrorCode::BadRequest,
                    message: bare.to_string(),
                };
            }
        }
        let target = id.map_or_else(
            || format!("managed/{}", self.object_type),
            |id| format!("managed/{}/{id}", self.object_type),
        );
        let hook = match property {
            Some(p) => format!("{} of property {p}", hook.key()),
            None => hook.key().to_string(),
        };
        HookError {
            code: ErrorCode::Internal,
            message: format!("{hook} of {target} failed: {e}"),
        }
    }

    /// `onCreate` (`object`, changes kept) → virtual properties → `onValidate` (`object`) →
    /// `onStore` (`object`, changes kept): the object to store.
    pub fn before_create(
        &self,
        id: &str,
        mut object: Value,
        caller: &Caller,
    ) -> Result<Value, HookError> {
        let mut request = caller.request(
            "create",
            format!("managed/{}", self.object_type),
            Some(&object),
        );
        if let Value::Object(m) = &mut request {
            m.insert("newResourceId".into(), Value::String(id.to_string()));
        }
        if let Some(s) = &self.on_create {
            let b = Bindings::new().with_owned("object", object);
            let (_, mut c) = self.eval(
                Hook::OnCreate,
                s,
                Some(id),
                b,
                &["object"],
                caller,
                &request,
            )?;
            object = c.remove(0);
        }
        self.validate_and_store(id, None, object, caller, &request)
    }

    /// `onUpdate` (`object` and `newObject` the new object, `oldObject` the stored one; changes
    /// to either kept) → `onValidate` → `onStore`: the object to store.
    pub fn before_update(
        &self,
        id: &str,
        old: &Value,
        mut new: Value,
        caller: &Caller,
    ) -> Result<Value, HookError> {
        let request = caller.request("update", self.path(id), Some(&new));
        if let Some(s) = &self.on_update {
            let b = Bindings::new()
                .with_owned("object", new.clone())
                .with("oldObject", old)
                .with_owned("newObject", new.clone());
            let (_, c) = self.eval(
                Hook::OnUpdate,
                s,
                Some(id),
                b,
                &["object", "newObject"],
                caller,
                &request,
            )?;
            let mut c = c.into_iter();
            let (object, new_object) = (c.next(), c.next());
            // `object` and `newObject` are one object in IDM: whichever the script changed wins.
            new = match (object, new_object) {
                (Some(o), _) if o != new => o,
                (_, Some(n)) => n,
                _ => new,
            };
        }
        self.validate_and_store(id, Some(old), new, caller, &request)
    }

    fn path(&self, id: &str) -> String {
        format!("managed/{}/{id}", self.object_type)
    }

    fn validate_and_store(
        &self,
        id: &str,
        old: Option<&Value>,
        mut object: Value,
        caller: &Caller,
        request: &Value,
    ) -> Result<Value, HookError> {
        let id = Some(id);
        self.run_properties(Hook::OnRetrieve, id, &mut object, true, caller, request)?;
        self.run_properties(Hook::OnValidate, id, &mut object, false, caller, request)?;
        if let Some(s) = &self.on_validate {
            let b = Bindings::new()
                .with("object", &object)
                .with("newObject", &object)
                .with_owned("oldObject", old.cloned().unwrap_or(Value::Null));
            self.eval(Hook::OnValidate, s, id, b, &[], caller, request)?;
        }
        self.run_properties(Hook::OnStore, id, &mut object, false, caller, request)?;
        if let Some(s) = &self.on_store {
            let b = Bindings::new().with_owned("object", object);
            let (_, mut c) = self.eval(Hook::OnStore, s, id, b, &["object"], caller, request)?;
            object = c.remove(0);
        }
        Ok(object)
    }

    /// `onDelete` (`object`, the stored object): throwing refuses the delete.
    pub fn before_delete(
        &self,
        id: &str,
        object: &Value,
        caller: &Caller,
    ) -> Result<(), HookError> {
        if let Some(s) = &self.on_delete {
            let request = caller.request("delete", self.path(id), None);
            let b = Bindings::new().with("object", object);
            self.eval(Hook::OnDelete, s, Some(id), b, &[], caller, &request)?;
        }
        Ok(())
    }

    /// `postCreate` (`newObject` the stored object, `oldObject` null).
    pub fn after_create(&self, id: &str, new: &Value, caller: &Caller) -> Result<(), HookError> {
        if let Some(s) = &self.post_create {
            let request =
                caller.request("create", format!("managed/{}", self.object_type), Some(new));
            let b = Bindings::new()
                .with("newObject", new)
                .with_owned("oldObject", Value::Null);
            self.eval(Hook::PostCreate, s, Some(id), b, &[], caller, &request)?;
        }
        Ok(())
    }

    /// `postUpdate` (`newObject` as stored, `oldObject` before the update).
    pub fn after_update(
        &self,
        id: &str,
        old: &Value,
        new: &Value,
        caller: &Caller,
    ) -> Result<(), HookError> {
        if let Some(s) = &self.post_update {
            let request = caller.request("update", self.path(id), Some(new));
            let b = Bindings::new()
                .with("newObject", new)
                .with("oldObject", old);
            self.eval(Hook::PostUpdate, s, Some(id), b, &[], caller, &request)?;
        }
        Ok(())
    }

    /// `postDelete` (`oldObject` as it was stored).
    pub fn after_delete(&self, id: &str, old: &Value, caller: &Caller) -> Result<(), HookError> {
        if let Some(s) = &self.post_delete {
            let request = caller.request("delete", self.path(id), None);
            let b = Bindings::new().with("oldObject", old);
            self.eval(Hook::PostDelete, s, Some(id), b, &[], caller, &request)?;
        }
        Ok(())
    }

    /// The `post*` hook of a stored write, chosen by which of `old` and `new` exist.
    pub fn after_write(
        &self,
        id: &str,
        old: Option<&Value>,
        new: Option<&Value>,
        caller: &Caller,
    ) -> Result<(), HookError> {
        match (old, new) {
            (None, Some(n)) => self.after_create(id, n, caller),
            (Some(o), Some(n)) => self.after_update(id, o, n, caller),
            (Some(o), None) => self.after_delete(id, o, caller),
            (None, None) => Ok(()),
        }
    }

    /// Properties' `onRetrieve`, then `onRetrieve`, then `onRead` (`object` as it will be
    /// returned; changes kept): the object a read, a query or a write answers with.
    pub fn on_read(
        &self,
        id: &str,
        mut object: Value,
        caller: &Caller,
    ) -> Result<Value, HookError> {
        let request = caller.request("read", self.path(id), None);
        self.run_properties(
            Hook::OnRetrieve,
            Some(id),
            &mut object,
            false,
            caller,
            &request,
        )?;
        for (hook, script) in [
            (Hook::OnRetrieve, &self.on_retrieve),
            (Hook::OnRead, &self.on_read),
        ] {
            if let Some(s) = script {
                let b = Bindings::new().with_owned("object", object);
                let (_, mut c) = self.eval(hook, s, Some(id), b, &["object"], caller, &request)?;
                object = c.remove(0);
            }
        }
        Ok(object)
    }

    /// `onSync` after the implicit sync of a write: `oldObject`, `newObject` and `syncResults`
    /// (`{"success", "action", "syncDetails"}`, IDM's shape). Throwing fails the request (the
    /// write stays stored unless the script reverted it).
    pub fn on_sync(
        &self,
        id: &str,
        old: Option<&Value>,
        new: Option<&Value>,
        sync_results: Value,
        caller: &Caller,
    ) -> Result<(), HookError> {
        if let Some(s) = &self.on_sync {
            let method = match (old, new) {
                (None, _) => "create",
                (Some(_), Some(_)) => "update",
                (Some(_), None) => "delete",
            };
            let request = caller.request(method, self.path(id), new);
            let b = Bindings::new()
                .with_owned("oldObject", old.cloned().unwrap_or(Value::Null))
                .with_owned("newObject", new.cloned().unwrap_or(Value::Null))
                .with_owned("syncResults", sync_results);
            self.eval(Hook::OnSync, s, Some(id), b, &[], caller, &request)?;
        }
        Ok(())
    }

    /// Whether an `onSync` hook exists (without it a failed implicit sync does not fail the
    /// write).
    pub fn has_on_sync(&self) -> bool {
        self.on_sync.is_some()
    }

    /// Runs the custom action `name` on the object `id` (`object` its stored value) or on the
    /// collection (`id` and `object` `None`). Variables: `object`, `request` (`{"method":
    /// "action", "action", "resourcePath", "content", "additionalParameters"}`), `context` and
    /// `resourceName`. `None` when there is no such action. The answer is the script's value, or
    /// the object when the script returns nothing.
    pub fn action(
        &self,
        name: &str,
        id: Option<&str>,
        object: Option<&Value>,
        content: &Value,
        caller: &Caller,
    ) -> Option<ActionResult> {
        let script = self.actions.get(name)?;
        let path = match id {
            Some(id) => self.path(id),
            None => format!("managed/{}", self.object_type),
        };
        let mut request = caller.request("action", path, Some(content));
        if let Value::Object(m) = &mut request {
            m.insert("action".into(), Value::String(name.to_string()));
        }
        let b = Bindings::new().with_owned("object", object.cloned().unwrap_or(Value::Null));
        Some(
            self.eval(Hook::Action, script, id, b, &[], caller, &request)
                .map(|(value, _)| match value {
                    Value::Null => object.cloned().unwrap_or(Value::Null),
                    v => v,
                }),
        )
    }
}

/// A thrown `{"code": N, "message": M}` (the description of a thrown object is its JSON).
fn coded_error(thrown: &str) -> Option<HookError> {
    let v: Value = serde_json::from_str(thrown).ok()?;
    let code = v.get("code")?.as_u64()?;
    if !(400..600).contains(&code) {
        return None;
    }
    let message = match v.get("message") {
        Some(Value::String(m)) => m.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    Some(HookError {
        code: code_of_status(code as u16),
        message,
    })
}

/// The CREST error code of an HTTP status a script chose. idsync has no code for every status:
/// another 4xx answers 400 and another 5xx 500 (docs/configuration.md#confmanagedjson).
fn code_of_status(status: u16) -> ErrorCode {
    match status {
        401 => ErrorCode::Unauthorized,
        403 => ErrorCode::Forbidden,
        404 => ErrorCode::NotFound,
        409 => ErrorCode::Conflict,
        412 => ErrorCode::PreconditionFailed,
        501 => ErrorCode::NotSupported,
        503 => ErrorCode::Unavailable,
        504 => ErrorCode::Indeterminate,
        s if s < 500 => ErrorCode::BadRequest,
        _ => ErrorCode::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(source: &str) -> Option<ScriptSpec> {
        Some(ScriptSpec {
            source: source.to_string(),
            file: None,
            globals: Map::new(),
            origin: "conf/managed.json test".into(),
        })
    }

    fn none() -> Caller {
        Caller::default()
    }

    fn user(f: impl FnOnce(&mut ManagedType)) -> ManagedScripts {
        let mut t = ManagedType {
            name: "user".into(),
            ..ManagedType::default()
        };
        f(&mut t);
        ManagedScripts::build(&t, None).unwrap()
    }

    #[test]
    fn on_update_keeps_what_the_script_changed_in_object_or_in_new_object() {
        let s = user(|t| t.on_update = spec("newObject.viaNew = oldObject.v; null"));
        let out = s
            .before_update("1", &json!({"v": 1}), json!({"v": 2}), &none())
            .unwrap();
        assert_eq!(out, json!({"v": 2, "viaNew": 1}));
        let s = user(|t| t.on_update = spec("object.viaObject = newObject.v; null"));
        let out = s
            .before_update("1", &json!({"v": 1}), json!({"v": 2}), &none())
            .unwrap();
        assert_eq!(out, json!({"v": 2, "viaObject": 2}));
    }

    #[test]
    fn reads_run_on_retrieve_then_on_read() {
        let s = user(|t| {
            t.on_retrieve = spec("object.order = ['onRetrieve']; null");
            t.on_read = spec("object.order.push('onRead'); null");
        });
        assert_eq!(
            s.on_read("1", json!({}), &none()).unwrap(),
            json!({"order": ["onRetrieve", "onRead"]})
        );
    }

    #[test]
    fn each_hook_fails_with_its_own_status() {
        let s = user(|t| {
            t.on_validate = spec("throw new Error('bad mail')");
            t.on_create = spec("if (object.x) { throw 'plain'; } null");
            t.on_delete = spec("throw {code: 404, message: 'gone'}");
        });
        let e = s.before_create("1", json!({}), &none()).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (ErrorCode::BadRequest, "bad mail")
        );
        let e = s
            .before_create("1", json!({"x": true}), &none())
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::Internal);
        assert!(e.message.contains("onCreate of managed/user/1"), "{e}");
        let e = s.before_delete("1", &json!({}), &none()).unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (ErrorCode::NotFound, "gone"));
    }

    #[test]
    fn an_action_without_a_value_answers_the_object() {
        let s = user(|t| {
            t.actions.insert("noop".into(), spec("var x = 1;").unwrap());
        });
        let object = json!({"_id": "1"});
        let out = s.action("noop", Some("1"), Some(&object), &Value::Null, &none());
        assert_eq!(out.unwrap().unwrap(), object);
        assert!(
            s.action("other", None, None, &Value::Null, &none())
                .is_none()
        );
    }

    #[test]
    fn a_thrown_code_and_message_is_that_crest_error() {
        let e = coded_error(r#"{"code":403,"message":"no"}"#).unwrap();
        assert_eq!((e.code, e.message.as_str()), (ErrorCode::Forbidden, "no"));
        assert_eq!(
            coded_error(r#"{"code":418,"message":"tea"}"#).unwrap().code,
            ErrorCode::BadRequest
        );
        assert!(coded_error(r#"{"code":200,"message":"ok"}"#).is_none());
        assert!(coded_error("Error: plain").is_none());
    }

    fn property(name: &str, f: impl FnOnce(&mut PropertyScripts)) -> PropertyScripts {
        let mut p = PropertyScripts {
            name: name.into(),
            ..PropertyScripts::default()
        };
        f(&mut p);
        p
    }

    #[test]
    fn a_virtual_property_is_computed_before_the_store_and_on_every_read() {
        let s = user(|t| {
            t.property_scripts.push(property("fullName", |p| {
                p.is_virtual = true;
                p.on_retrieve = spec("object.givenName + ' ' + object.sn");
            }));
            t.property_scripts.push(property("sn", |p| {
                p.on_store = spec("property.toUpperCase()");
                p.on_validate =
                    spec("if (property === '') { throw new Error('sn is empty'); } null");
            }));
        });
        let stored = s
            .before_create("1", json!({"givenName": "Ada", "sn": "Lovelace"}), &none())
            .unwrap();
        assert_eq!(
            stored,
            json!({"givenName": "Ada", "sn": "LOVELACE", "fullName": "Ada Lovelace"})
        );
        let read = s
            .on_read("1", json!({"givenName": "Ada", "sn": "Byron"}), &none())
            .unwrap();
        assert_eq!(read["fullName"], "Ada Byron");
        let e = s
            .before_create("1", json!({"givenName": "Ada", "sn": ""}), &none())
            .unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (ErrorCode::BadRequest, "sn is empty")
        );
    }

    #[test]
    fn hooks_see_the_request_and_its_context() {
        let s = user(|t| {
            t.on_update = spec(
                "object.seen = [request.method, request.resourcePath, \
                 request.patchOperations[0].field, request.additionalParameters.reason, \
                 context.current.name, context.security.authenticationId]; null",
            );
            t.on_create = spec(
                "object.seen = [request.method, request.resourcePath, request.newResourceId, \
                 context.current.name, context.sync.mapping]; null",
            );
        });
        let mut params = Map::new();
        params.insert("reason".into(), json!("audit"));
        let caller = Caller::http(
            "alice",
            &["admin"],
            "PATCH",
            "/openidm/managed/user/1",
            params,
        )
        .with_patch(json!([{"operation": "replace", "field": "/sn", "value": "B"}]));
        let out = s
            .before_update("1", &json!({"sn": "A"}), json!({"sn": "B"}), &caller)
            .unwrap();
        assert_eq!(
            out["seen"],
            json!(["patch", "managed/user/1", "/sn", "audit", "http", "alice"])
        );
        let out = s
            .before_create("2", json!({}), &Caller::sync("hr_user"))
            .unwrap();
        assert_eq!(
            out["seen"],
            json!(["create", "managed/user", "2", "sync", "hr_user"])
        );
    }
}
