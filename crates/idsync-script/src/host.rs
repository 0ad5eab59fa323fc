//! What scripts see of the process that runs them: `openidm` (CRUD, query and actions over the
//! REST API's resource paths), `identityServer` and `logger` (docs/scripts.md). This module owns
//! the contract only — the [`ScriptHost`] trait a caller implements, the request and error
//! shapes, the bounds on nested calls, and how the current call finds its host. It must not
//! know what a resource path means: the host (idsync-api's router host) answers every call.
//!
//! How a call finds its host: a [`Script`](crate::Script) carries a [`HostSlot`] attached by
//! whoever compiled it ([`Script::with_host`](crate::Script::with_host)); the slot holds a weak
//! reference that the server (or `idsync recon`) fills once its host exists. Code that runs a
//! script may put a host in front of the slot for one synchronous evaluation
//! ([`with_override`]): recon answers a correlation script's queries on its own target set that
//! way, from what the page already holds.
//!
//! Nesting: a host call may run other scripts (a managed write runs implicit sync and lifecycle
//! scripts). Those run under the caller's [`CallScope`] — carried across threads and tasks by
//! wrapping the nested work in [`scoped`] — so a chain of calls is bounded in depth
//! ([`MAX_DEPTH`]) and one top-level evaluation in its number of calls ([`MAX_CALLS`]).

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::task::{Context, Poll};

use serde_json::{Map, Value};

use crate::origin::ScriptOrigin;

/// The deepest chain of `openidm` calls: a script's call that runs a script that calls, and so
/// on. The call that would go deeper fails with a CREST 400 naming the limit, so a hook
/// that creates an object of its own type stops instead of recursing without end.
pub const MAX_DEPTH: u32 = 8;

/// The most `openidm` calls one top-level evaluation makes, nested calls included.
pub const MAX_CALLS: u32 = 10_000;

/// The operation of one `openidm` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostMethod {
    Create,
    Read,
    Update,
    Patch,
    Delete,
    Query,
    Action,
}

impl HostMethod {
    /// The `openidm` function's name.
    pub fn name(self) -> &'static str {
        match self {
            HostMethod::Create => "create",
            HostMethod::Read => "read",
            HostMethod::Update => "update",
            HostMethod::Patch => "patch",
            HostMethod::Delete => "delete",
            HostMethod::Query => "query",
            HostMethod::Action => "action",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "create" => HostMethod::Create,
            "read" => HostMethod::Read,
            "update" => HostMethod::Update,
            "patch" => HostMethod::Patch,
            "delete" => HostMethod::Delete,
            "query" => HostMethod::Query,
            "action" => HostMethod::Action,
            _ => return None,
        })
    }
}

/// One `openidm` call, as the script made it.
#[derive(Debug, Clone)]
pub struct HostRequest {
    pub method: HostMethod,
    /// The resource path, e.g. `managed/user/42` (a leading `/` or `openidm/` is the host's to
    /// accept or refuse).
    pub resource: String,
    /// `create`'s `newId` (`null` or absent: the server assigns one).
    pub new_id: Option<String>,
    /// `update`'s, `patch`'s and `delete`'s revision (`null`: any).
    pub rev: Option<String>,
    /// `create`'s and `update`'s object, `patch`'s operations, `action`'s content.
    pub content: Option<Value>,
    /// `action`'s action name.
    pub action: Option<String>,
    /// Request parameters (`_queryFilter`, `_pageSize`, ...), values as given.
    pub params: Map<String, Value>,
    /// `fields`: the fields to return (empty: all).
    pub fields: Vec<String>,
    /// The scope nested work must run in (see [`scoped`]).
    pub scope: CallScope,
    /// The script that made the call.
    pub origin: ScriptOrigin,
}

/// A failed call, thrown to the script as an `Error` with `code` and `message` (and `detail`).
#[derive(Debug, Clone, PartialEq)]
pub struct HostError {
    /// The CREST code (HTTP status): 404 not found, 412 revision mismatch, ...
    pub code: u16,
    pub message: String,
    pub detail: Option<Value>,
}

impl HostError {
    pub fn new(code: u16, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            detail: None,
        }
    }
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.message)
    }
}

/// A module `require(name)` loads: its resolved name (the file it came from, used in error
/// messages) and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleSource {
    pub key: String,
    pub source: String,
}

/// What answers a script's `openidm` calls and `identityServer` questions.
///
/// `call` is synchronous and runs on the thread evaluating the script; an implementation that
/// does async work must not poll it on this thread if it may evaluate scripts (this thread's
/// engine is busy), and must run it inside [`scoped`] with the request's scope.
pub trait ScriptHost: Send + Sync {
    /// Answers one `openidm` call.
    fn call(&self, request: HostRequest) -> Result<Value, HostError>;

    /// `identityServer.getProperty(name)`: the value `&{name}` would take in the configuration.
    fn property(&self, name: &str) -> Option<String>;

    /// `identityServer.getProjectLocation()` and `getInstallLocation()`.
    fn project_location(&self) -> String;

    /// Whether `logger` lines are dropped: a host that runs a script only to see what it would
    /// ask (recon's probe of correlation scripts) keeps its log clean.
    fn quiet(&self) -> bool {
        false
    }

    /// `require(name)`: the module's text, found as script files are (docs/scripts.md#require-modules).
    /// Called on every `require`, so an edited file is picked up; the engine recompiles a
    /// module only when its text changed.
    fn module(&self, name: &str) -> Result<ModuleSource, HostError> {
        Err(HostError::new(
            501,
            format!("require('{name}'): modules are not available to this script"),
        ))
    }
}

/// Where the scripts one engine (or server) compiled find their host: a shared, late-bound weak
/// reference. Compile scripts with the slot first ([`Script::with_host`](crate::Script::with_host)),
/// build the host, then [`HostSlot::set`] it; the slot never keeps the host alive.
#[derive(Clone, Default)]
pub struct HostSlot(Arc<RwLock<Option<Weak<dyn ScriptHost>>>>);

impl HostSlot {
    /// An empty slot: until it is set, `openidm` calls fail with a 503 naming the reason.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes `host` the host of every script compiled with this slot (replacing any earlier one).
    pub fn set(&self, host: &Arc<dyn ScriptHost>) {
        if let Ok(mut slot) = self.0.write() {
            *slot = Some(Arc::downgrade(host));
        }
    }

    /// The host, if one is set and still alive.
    pub fn get(&self) -> Option<Arc<dyn ScriptHost>> {
        self.0.read().ok()?.as_ref()?.upgrade()
    }
}

impl fmt::Debug for HostSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostSlot")
            .field("set", &self.get().is_some())
            .finish()
    }
}

/// The depth and the shared call counter of one chain of nested evaluations.
#[derive(Debug, Clone)]
pub struct CallScope {
    depth: u32,
    calls: Arc<AtomicU32>,
}

impl CallScope {
    /// The scope of a top-level evaluation: depth 0, no calls yet.
    pub fn top() -> Self {
        Self {
            depth: 0,
            calls: Arc::new(AtomicU32::new(0)),
        }
    }

    /// How many `openidm` calls deep this scope is.
    pub fn depth(&self) -> u32 {
        self.depth
    }

    /// Counts one call made from this scope and gives the scope of the work it runs, or the
    /// error of a limit reached.
    fn enter_call(&self) -> Result<CallScope, HostError> {
        if self.depth >= MAX_DEPTH {
            return Err(HostError::new(
                400,
                format!(
                    "script calls nested deeper than {MAX_DEPTH} (a script whose openidm call runs itself again?)"
                ),
            ));
        }
        let made = self.calls.fetch_add(1, Ordering::Relaxed);
        if made >= MAX_CALLS {
            return Err(HostError::new(
                400,
                format!("more than {MAX_CALLS} openidm calls from one script evaluation"),
            ));
        }
        Ok(CallScope {
            depth: self.depth + 1,
            calls: Arc::clone(&self.calls),
        })
    }
}

thread_local! {
    /// The scope of the nested work being polled on this thread ([`scoped`]).
    static AMBIENT: RefCell<Option<CallScope>> = const { RefCell::new(None) };
    /// A host put in front of the scripts' own for one synchronous evaluation.
    static OVERRIDE: RefCell<Option<Arc<dyn ScriptHost>>> = const { RefCell::new(None) };
    /// What the evaluation in progress on this thread calls with.
    static CURRENT: RefCell<Option<Current>> = const { RefCell::new(None) };
}

struct Current {
    host: Option<Arc<dyn ScriptHost>>,
    scope: CallScope,
    origin: ScriptOrigin,
}

/// Runs `f` (which evaluates scripts on this thread, synchronously) with `host` answering their
/// `openidm` calls and `identityServer` questions instead of the scripts' own host.
pub fn with_override<R>(host: Arc<dyn ScriptHost>, f: impl FnOnce() -> R) -> R {
    let previous = OVERRIDE.with(|o| o.borrow_mut().replace(host));
    let out = f();
    OVERRIDE.with(|o| *o.borrow_mut() = previous);
    out
}

/// The future `fut`, every poll of which runs in `scope`: the scripts it evaluates, on whatever
/// thread polls it, count as nested in the call that made the scope.
pub fn scoped<F: Future>(scope: CallScope, fut: F) -> Scoped<F> {
    Scoped {
        scope: Some(scope),
        fut: Box::pin(fut),
    }
}

/// The future `fut` in the call scope of the code calling this, if any: wrap work spawned as a
/// task of its own (`tokio::spawn`, a `JoinSet`) where scripts may run, so that the scripts of
/// a script's call stay counted in its chain — a task does not inherit the thread-local scope.
pub fn inherit<F: Future>(fut: F) -> Scoped<F> {
    Scoped {
        scope: AMBIENT.with(|a| a.borrow().clone()),
        fut: Box::pin(fut),
    }
}

/// See [`scoped`] and [`inherit`].
pub struct Scoped<F> {
    scope: Option<CallScope>,
    fut: Pin<Box<F>>,
}

impl<F> fmt::Debug for Scoped<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scoped")
            .field("scope", &self.scope)
            .finish()
    }
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let Some(scope) = self.scope.clone() else {
            return self.fut.as_mut().poll(cx);
        };
        let previous = AMBIENT.with(|a| a.borrow_mut().replace(scope));
        let out = self.fut.as_mut().poll(cx);
        AMBIENT.with(|a| *a.borrow_mut() = previous);
        out
    }
}

/// Makes `slot`'s host (or the override) the one of the evaluation `f` runs, under the ambient
/// scope or a new top-level one.
pub(crate) fn evaluating<R>(
    slot: Option<&HostSlot>,
    origin: &ScriptOrigin,
    f: impl FnOnce() -> R,
) -> R {
    let host = OVERRIDE
        .with(|o| o.borrow().clone())
        .or_else(|| slot.and_then(HostSlot::get));
    let scope = AMBIENT
        .with(|a| a.borrow().clone())
        .unwrap_or_else(CallScope::top);
    let previous = CURRENT.with(|c| {
        c.borrow_mut().replace(Current {
            host,
            scope,
            origin: origin.clone(),
        })
    });
    let out = f();
    CURRENT.with(|c| *c.borrow_mut() = previous);
    out
}

/// Whether the evaluation in progress drops `logger` lines ([`ScriptHost::quiet`]).
pub(crate) fn current_quiet() -> bool {
    CURRENT.with(|c| {
        c.borrow()
            .as_ref()
            .and_then(|c| c.host.as_ref())
            .is_some_and(|h| h.quiet())
    })
}

/// The origin of the evaluation in progress (for `logger`).
pub(crate) fn current_origin() -> Option<ScriptOrigin> {
    CURRENT.with(|c| c.borrow().as_ref().map(|c| c.origin.clone()))
}

fn current_host() -> Result<(Arc<dyn ScriptHost>, CallScope, ScriptOrigin), HostError> {
    CURRENT.with(|c| {
        let c = c.borrow();
        let Some(current) = c.as_ref() else {
            return Err(HostError::new(500, "openidm is not available outside a script call"));
        };
        match &current.host {
            Some(host) => Ok((
                Arc::clone(host),
                current.scope.clone(),
                current.origin.clone(),
            )),
            None => Err(HostError::new(
                503,
                "openidm is not available here: this script was not compiled by a server or recon that provides it",
            )),
        }
    })
}

/// Answers the JavaScript side's call: `request` is `{"method", "resource", ...}` as the
/// `openidm` wrapper builds it. The host runs without this thread's JavaScript borrowed, so
/// nothing here may touch the engine.
pub(crate) fn dispatch(request: Value) -> Result<Value, HostError> {
    let (host, scope, origin) = current_host()?;
    let Value::Object(mut m) = request else {
        return Err(HostError::new(500, "malformed openidm call"));
    };
    let method = m
        .get("method")
        .and_then(Value::as_str)
        .and_then(HostMethod::parse)
        .ok_or_else(|| HostError::new(500, "malformed openidm call"))?;
    let name = method.name();
    let resource = match m.remove("resource") {
        Some(Value::String(s)) => s,
        _ => {
            return Err(HostError::new(
                400,
                format!("openidm.{name}: the resource path must be a string"),
            ));
        }
    };
    let opt_string = |v: Option<Value>, what: &str| -> Result<Option<String>, HostError> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(HostError::new(
                400,
                format!("openidm.{name}: {what} must be a string or null"),
            )),
        }
    };
    let new_id = opt_string(m.remove("newId"), "newId")?;
    let rev = opt_string(m.remove("rev"), "rev")?;
    let action = opt_string(m.remove("action"), "the action name")?;
    if method == HostMethod::Action && action.is_none() {
        return Err(HostError::new(
            400,
            "openidm.action: the action name is required",
        ));
    }
    let content = match m.remove("content") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v),
    };
    let params = match m.remove("params") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(p)) => p,
        Some(_) => {
            return Err(HostError::new(
                400,
                format!("openidm.{name}: params must be an object"),
            ));
        }
    };
    let fields = match m.remove("fields") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(str::to_owned)
            .collect(),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|f| match f {
                Value::String(s) => Ok(s),
                _ => Err(HostError::new(
                    400,
                    format!("openidm.{name}: fields must be strings"),
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(HostError::new(
                400,
                format!("openidm.{name}: fields must be an array of names or a string"),
            ));
        }
    };
    let scope = scope.enter_call()?;
    crate::engine::waiting_on_host(|| {
        host.call(HostRequest {
            method,
            resource,
            new_id,
            rev,
            content,
            action,
            params,
            fields,
            scope,
            origin,
        })
    })
}

/// `require(name)`'s module text, from the evaluation's host.
pub(crate) fn module(name: &str) -> Result<ModuleSource, HostError> {
    current_host()?.0.module(name)
}

/// `identityServer.getProperty(name)`.
pub(crate) fn property(name: &str) -> Result<Option<String>, HostError> {
    Ok(current_host()?.0.property(name))
}

/// `identityServer.getProjectLocation()`.
pub(crate) fn project_location() -> Result<String, HostError> {
    Ok(current_host()?.0.project_location())
}
