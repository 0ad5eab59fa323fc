//! The state every handler shares: the loaded project, the repository, the built connectors,
//! this node's id, the accepted credentials, the request limits, the hooks the engine plugs
//! into managed-object writes (implicit sync) and the metrics recorder's handle. Cheap to clone
//! (one `Arc`).

use crate::auth::AuthState;
use crate::error::ApiResult;
use async_trait::async_trait;
use idsync_config::Project;
use idsync_connectors::Connector;
use idsync_repo::{ChangeSet, Repository};
use serde_json::Value;
use std::collections::BTreeMap;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

/// Request limits: every request is bounded (docs/SECURITY.md lists them with their defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Largest `_pageSize` a client may ask for.
    pub max_page_size: usize,
    /// Most results an unpaged query may return; past it the client is told to page. Off
    /// (`usize::MAX`) unless an operator sets it: unpaged queries stream with bounded memory.
    pub max_unpaged_results: usize,
    /// Time after which a request is answered 504 (its effect unknown).
    pub request_timeout: Duration,
    /// Time a client has to send a request's headers, and that a kept-alive connection may
    /// stay idle between requests.
    pub header_timeout: Duration,
    /// Most connections served at once.
    pub max_connections: usize,
    /// Most `_sortKeys` in a query.
    pub max_sort_keys: usize,
    /// An object whose arrays and objects nest this deep is refused (at most 128, the depth
    /// at which JSON parsers stop).
    pub max_json_depth: usize,
    /// Largest object stored, as compact JSON.
    pub max_object_bytes: usize,
    /// Most terms in a `_queryFilter`.
    pub max_filter_terms: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 10 * 1024 * 1024,
            max_page_size: 10_000,
            max_unpaged_results: usize::MAX,
            request_timeout: Duration::from_secs(300),
            header_timeout: Duration::from_secs(30),
            max_connections: 1024,
            max_sort_keys: 16,
            max_json_depth: 128,
            max_object_bytes: 10 * 1024 * 1024,
            max_filter_terms: 1000,
        }
    }
}

/// One managed-object write, as the hooks see it.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagedChange {
    /// `managed/<type>` without the id, e.g. `user`.
    pub object_type: String,
    pub id: String,
    /// The object before the write (`None` for a create).
    pub before: Option<Value>,
    /// The object after the write as committed (`None` for a delete). Before the commit its
    /// `_rev` is the old one.
    pub after: Option<Value>,
}

/// What the engine does around managed-object writes (implicit and queued sync, reference
/// §6.1). The API calls `before_commit` so that queue events commit with the write
/// (ARCHITECTURE principle 8), then `after_commit` to run inline mappings; an `after_commit`
/// value is merged into the response under its keys (IDM's sync response details).
#[async_trait]
pub trait ManagedHooks: Send + Sync + std::fmt::Debug {
    async fn before_commit(
        &self,
        change: &ManagedChange,
        changes: &mut ChangeSet,
    ) -> ApiResult<()> {
        let _ = (change, changes);
        Ok(())
    }

    async fn after_commit(&self, change: &ManagedChange) -> ApiResult<Option<Value>> {
        let _ = change;
        Ok(None)
    }

    /// The lifecycle scripts and custom actions of a managed type (docs/configuration.md#confmanagedjson),
    /// when the engine has them.
    fn scripts(&self, object_type: &str) -> Option<Arc<idsync_engine::ManagedScripts>> {
        let _ = object_type;
        None
    }

    /// `triggerSyncCheck`: runs implicit sync for an unchanged object (`change.before` and
    /// `change.after` are both the object) as if it had changed.
    async fn sync_check(&self, change: &ManagedChange) -> ApiResult<Option<Value>> {
        let _ = change;
        Ok(None)
    }
}

/// Actions on `system/<name>/<type>` beyond `create` (e.g. `liveSync`), answered by the
/// engine. Routes cannot be registered twice on one path and method, so the integrator plugs
/// them in here instead of with extra routes.
#[async_trait]
pub trait SystemActions: Send + Sync + std::fmt::Debug {
    /// Answers `POST system/<connector>/<object_type>?_action=<action>`; `Ok(None)` means the
    /// action is unknown (the API answers 400).
    async fn action(
        &self,
        connector: &str,
        object_type: &str,
        action: &str,
        body: Option<Value>,
    ) -> ApiResult<Option<Value>>;
}

/// Everything the handlers share. Use [`ApiState`], which derefs to this.
#[derive(Debug)]
pub struct ApiContext {
    pub project: Arc<Project>,
    pub repo: Arc<dyn Repository>,
    /// Enabled connectors by instance name (`system/<name>`).
    pub connectors: BTreeMap<String, Arc<dyn Connector>>,
    pub node_id: String,
    pub auth: AuthState,
    pub limits: Limits,
    pub hooks: Option<Arc<dyn ManagedHooks>>,
    pub system_actions: Option<Arc<dyn SystemActions>>,
    /// The installed Prometheus recorder, rendered by `GET metrics/prometheus`
    /// (docs/operations.md#monitoring); `None` when this process records no metrics.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// The paging cookies' signing key, read from the repository on first use
    /// ([`crate::cookie`]).
    pub cookie_key: Arc<tokio::sync::OnceCell<Vec<u8>>>,
    /// The host of the `openidm` calls of scripts this API compiles (lifecycle scripts): attach
    /// it with `Script::with_host(state.script_host.clone())`. [`crate::script_host::install`]
    /// fills it; the integrator passes the engine's slot so that one host serves all scripts.
    pub script_host: idsync_script::HostSlot,
}

/// The shared state of the router.
#[derive(Debug, Clone)]
pub struct ApiState(Arc<ApiContext>);

impl Deref for ApiState {
    type Target = ApiContext;
    fn deref(&self) -> &ApiContext {
        &self.0
    }
}

impl ApiState {
    /// State with default [`Limits`] and no hooks.
    pub fn new(
        project: Arc<Project>,
        repo: Arc<dyn Repository>,
        connectors: BTreeMap<String, Arc<dyn Connector>>,
        node_id: impl Into<String>,
        auth: AuthState,
    ) -> Self {
        Self(Arc::new(ApiContext {
            project,
            repo,
            connectors,
            node_id: node_id.into(),
            auth,
            limits: Limits::default(),
            hooks: None,
            system_actions: None,
            metrics: None,
            cookie_key: Arc::default(),
            script_host: idsync_script::HostSlot::new(),
        }))
    }

    /// The same state with other limits (call before building the router).
    pub fn with_limits(self, limits: Limits) -> Self {
        self.map(|c| c.limits = limits)
    }

    /// The same state with managed-write hooks (implicit sync).
    pub fn with_hooks(self, hooks: Arc<dyn ManagedHooks>) -> Self {
        self.map(|c| c.hooks = Some(hooks))
    }

    /// The same state with a handler of extra system actions (liveSync).
    pub fn with_system_actions(self, actions: Arc<dyn SystemActions>) -> Self {
        self.map(|c| c.system_actions = Some(actions))
    }

    /// The same state with the handle of the installed metrics recorder.
    pub fn with_metrics(self, handle: metrics_exporter_prometheus::PrometheusHandle) -> Self {
        self.map(|c| c.metrics = Some(handle))
    }

    /// The same state with the slot its scripts' host goes in (the engine's, so that mapping
    /// and lifecycle scripts share one host).
    pub fn with_script_host(self, slot: idsync_script::HostSlot) -> Self {
        self.map(|c| c.script_host = slot)
    }

    fn map(self, f: impl FnOnce(&mut ApiContext)) -> Self {
        let mut ctx = match Arc::try_unwrap(self.0) {
            Ok(ctx) => ctx,
            Err(shared) => ApiContext {
                project: shared.project.clone(),
                repo: shared.repo.clone(),
                connectors: shared.connectors.clone(),
                node_id: shared.node_id.clone(),
                auth: shared.auth.clone(),
                limits: shared.limits.clone(),
                hooks: shared.hooks.clone(),
                system_actions: shared.system_actions.clone(),
                metrics: shared.metrics.clone(),
                cookie_key: shared.cookie_key.clone(),
                script_host: shared.script_host.clone(),
            },
        };
        f(&mut ctx);
        Self(Arc::new(ctx))
    }
}
