//! The engine of one node: the project, the repository, the resolved resources, the compiled
//! mappings, and the per-run caches of the runs this node works on.

use crate::error::{EngineError, EngineResult};
use crate::managed_scripts::ManagedScripts;
use crate::pipeline::ctx::RunCtx;
use crate::resources::Resources;
use idsync_config::{Mapping, Project};
use idsync_mapping::CompiledMapping;
use idsync_repo::{Repository, RunRecord};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

#[derive(Debug)]
pub struct Engine {
    pub project: Arc<Project>,
    pub repo: Arc<dyn Repository>,
    pub resources: Resources,
    pub node_id: String,
    /// How long a claimed job stays this node's without a renewal.
    pub lease: Duration,
    mappings: BTreeMap<String, Arc<CompiledMapping>>,
    /// The lifecycle scripts and actions of each managed type of managed.json.
    managed_scripts: BTreeMap<String, Arc<ManagedScripts>>,
    runs: Mutex<HashMap<String, Arc<RunCtx>>>,
    /// This node's share of the queued-mapping locks (see `cluster.rs`).
    pub queue_balance: crate::cluster::QueueBalance,
    /// Implicit-sync contexts by mapping name, built on first use.
    sync_ctxs: Mutex<HashMap<String, Arc<RunCtx>>>,
    /// Rings when this node scheduled work, so its workers claim it at once.
    pub(crate) work: Notify,
    /// Running nodes on this node's host, itself included (1 until the cluster monitor looked).
    host_nodes: AtomicUsize,
    /// The host of every script this engine compiles (docs/adr/0011-script-host-api.md): filled
    /// by `idsync serve` or `idsync recon` once the API router exists.
    script_host: idsync_script::HostSlot,
}

/// Every script of `project` that does not compile, one message each (naming the script's file
/// or configuration place and the JavaScript error): what `idsync config validate` reports, so
/// that a syntax error shows before `serve` or `recon` refuses to start.
pub fn script_errors(project: &Project) -> Vec<String> {
    let mut errors = Vec::new();
    for m in &project.mappings {
        if let Err(e) = CompiledMapping::build_hosted(m, None) {
            errors.push(format!("mapping {}: {e}", m.name));
        }
    }
    for t in &project.managed {
        if let Err(e) = ManagedScripts::build(t, None) {
            errors.push(format!("managed object type {}: {e}", t.name));
        }
    }
    errors
}

impl Engine {
    /// Compiles every mapping's scripts and every managed type's lifecycle scripts (a syntax
    /// error is reported now, naming the mapping or the type).
    pub fn new(
        project: Arc<Project>,
        repo: Arc<dyn Repository>,
        resources: Resources,
        node_id: impl Into<String>,
    ) -> EngineResult<Arc<Engine>> {
        let script_host = idsync_script::HostSlot::new();
        let mut mappings = BTreeMap::new();
        for m in &project.mappings {
            mappings.insert(
                m.name.clone(),
                Arc::new(CompiledMapping::build_hosted(m, Some(&script_host))?),
            );
        }
        let mut managed_scripts = BTreeMap::new();
        for t in &project.managed {
            managed_scripts.insert(
                t.name.clone(),
                Arc::new(ManagedScripts::build(t, Some(&script_host))?),
            );
        }
        let lease = Duration::from_millis(project.settings.lease_ms.max(1000));
        Ok(Arc::new(Engine {
            project,
            repo,
            resources,
            node_id: node_id.into(),
            lease,
            mappings,
            managed_scripts,
            runs: Mutex::new(HashMap::new()),
            sync_ctxs: Mutex::new(HashMap::new()),
            queue_balance: crate::cluster::QueueBalance::default(),
            work: Notify::new(),
            host_nodes: AtomicUsize::new(1),
            script_host,
        }))
    }

    /// The slot of the host that answers the `openidm` calls of this engine's scripts. Code
    /// that compiles a script for this engine attaches it (`Script::with_host`); the
    /// integrator sets the host (idsync-api's `script_host::install`).
    pub fn script_host(&self) -> &idsync_script::HostSlot {
        &self.script_host
    }

    /// How many jobs this node runs at once when its host runs `per_host`: the host's nodes
    /// split them, each at least one.
    pub fn job_slots(&self, per_host: usize) -> usize {
        (per_host / self.host_nodes.load(Ordering::Relaxed).max(1)).max(1)
    }

    /// The cluster monitor saw `n` running nodes on this node's host (itself included).
    /// Returns whether that changed.
    pub(crate) fn set_host_nodes(&self, n: usize) -> bool {
        self.host_nodes.swap(n.max(1), Ordering::Relaxed) != n.max(1)
    }

    /// A mapping's configuration and its compiled form.
    pub fn mapping(&self, name: &str) -> EngineResult<(Mapping, Arc<CompiledMapping>)> {
        let compiled = self.mappings.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.mappings.keys().map(String::as_str).collect();
            EngineError::BadRequest(format!(
                "unknown mapping \"{name}\" (known: {})",
                known.join(", ")
            ))
        })?;
        Ok((compiled.config().clone(), compiled.clone()))
    }

    /// The lifecycle scripts of a managed type (`None` for a type without managed.json entry).
    pub fn managed_scripts(&self, object_type: &str) -> Option<&Arc<ManagedScripts>> {
        self.managed_scripts.get(object_type)
    }

    pub(crate) async fn run_ctx(&self, run: &RunRecord) -> EngineResult<Arc<RunCtx>> {
        if let Some(c) = self.lock_runs()?.get(&run.id) {
            return Ok(c.clone());
        }
        let ctx = Arc::new(RunCtx::build(self, run).await?);
        let mut runs = self.lock_runs()?;
        Ok(runs.entry(run.id.clone()).or_insert(ctx).clone())
    }

    pub(crate) fn forget_run(&self, run_id: &str) {
        if let Ok(mut runs) = self.runs.lock() {
            runs.remove(run_id);
        }
    }

    /// Drops the caches of runs that ended (possibly finished by another node).
    pub async fn evict_finished_runs(&self) -> EngineResult<()> {
        let ids: Vec<String> = self.lock_runs()?.keys().cloned().collect();
        for id in ids {
            let done = self
                .repo
                .get_run(&id)
                .await?
                .is_none_or(|r| r.stage.is_completed());
            if done {
                self.forget_run(&id);
            }
        }
        Ok(())
    }

    fn lock_runs(&self) -> EngineResult<std::sync::MutexGuard<'_, HashMap<String, Arc<RunCtx>>>> {
        self.runs
            .lock()
            .map_err(|_| EngineError::Internal("run cache lock poisoned".into()))
    }

    pub(crate) fn lock_sync_ctxs(
        &self,
    ) -> EngineResult<std::sync::MutexGuard<'_, HashMap<String, Arc<RunCtx>>>> {
        self.sync_ctxs
            .lock()
            .map_err(|_| EngineError::Internal("sync context lock poisoned".into()))
    }

    pub(crate) fn wake_workers(&self) {
        self.work.notify_waiters();
    }
}
