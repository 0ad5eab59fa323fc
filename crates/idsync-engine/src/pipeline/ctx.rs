//! The mapping context the pipeline runs in: a reconciliation run's, or one mapping's for
//! implicit and queued sync ([`CtxMode`]).
//!
//! For a run, it is what one node knows about the run while it works on the run's jobs: the
//! effective configuration (rebuilt from the run record, so every node uses the same), the object sets,
//! and the run-wide caches IDM keeps — the target-id set of the target query and the prefetched
//! links. Built once per node per run, on the first job of the run the node claims.

use super::stats::NodeExtremes;
use crate::Engine;
use crate::error::{EngineError, EngineResult};
use crate::links::{LinkView, PrefetchedLinks};
use crate::recon::effective::{EffectiveRecon, ReconOptions, looks_full};
use crate::recon::guard::SafetyGuard;
use crate::resources::managed_type;
use idsync_config::Mapping;
use idsync_connectors::ObjectSet;
use idsync_mapping::CompiledMapping;
use idsync_repo::RunRecord;
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The target set as the target query saw it at the start of the run (non-clustered runs
/// with a target phase, docs/rest.md#reconciliation step 3).
#[derive(Debug, Default)]
pub struct TargetSnapshot {
    /// Normalised target ids.
    pub ids: HashSet<String>,
    /// Full entries by normalised id, when the target query returned full objects.
    pub values: Option<HashMap<String, Value>>,
}

/// What the context serves: a reconciliation run, or implicit/queued sync of single objects
/// (the same per-object assess/decide/act, with sync audit entries and sync results).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CtxMode {
    Recon,
    Sync,
}

#[derive(Debug)]
pub struct RunCtx {
    pub mode: CtxMode,
    /// The run's id (empty in sync mode).
    pub run_id: String,
    pub mapping_name: String,
    pub config: Mapping,
    pub mapping: Arc<CompiledMapping>,
    pub eff: EffectiveRecon,
    pub opts: ReconOptions,
    pub source_set: Arc<dyn ObjectSet>,
    pub target_set: Arc<dyn ObjectSet>,
    /// `Some(type)` when the target is `managed/<type>`: its writes join the page's commit.
    pub target_managed_type: Option<String>,
    /// The lifecycle scripts of the managed target type: its writes run them as REST writes do.
    pub target_scripts: Option<Arc<crate::managed_scripts::ManagedScripts>>,
    /// Who those scripts see as the caller (`context`): this mapping's sync.
    pub caller: crate::managed_scripts::Caller,
    pub links: LinkView,
    pub all_qualifiers: Vec<String>,
    pub target_snapshot: Option<TargetSnapshot>,
    /// Every link of the mapping, when `prefetchLinks` (non-clustered runs).
    pub prefetched: Option<PrefetchedLinks>,
    pub guard: SafetyGuard,
    /// Clustered runs, which query no target ids: whether the target query found nothing when
    /// the run started (for `correlateEmptyTargetSet`, as the snapshot tells a single node).
    pub target_empty_at_start: Option<bool>,
    /// Targets the run wrote in chunks this node committed (normalised ids): the snapshot no
    /// longer tells their state.
    written: std::sync::RwLock<HashSet<String>>,
    /// The last page whose writes the run-wide caches reflect, while they reflect every
    /// committed page; `None` once a page this node did not see committed (another node's)
    /// came after them, and the snapshot is no longer used for reads.
    caches_page: std::sync::Mutex<Option<u64>>,
    pub extremes: std::sync::Mutex<NodeExtremes>,
    canceled: AtomicBool,
    last_cancel_check: std::sync::Mutex<Instant>,
    pub node_id: String,
    /// The engine's script host, behind the run's own answers to correlation scripts.
    pub script_host: idsync_script::HostSlot,
}

/// How the run's options are stored in the run record, so any node can rebuild them.
pub fn options_to_json(opts: &ReconOptions) -> Value {
    json!({
        "analyze": opts.analyze,
        "sourceId": opts.source_id,
        "overrides": Value::Object(opts.overrides.clone()),
    })
}

pub fn options_from_json(v: &Value) -> ReconOptions {
    ReconOptions {
        analyze: v.get("analyze").and_then(Value::as_bool).unwrap_or(false),
        source_id: v
            .get("sourceId")
            .and_then(Value::as_str)
            .map(str::to_string),
        overrides: v
            .get("overrides")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_else(Map::new),
    }
}

impl RunCtx {
    pub async fn build(engine: &Engine, run: &RunRecord) -> EngineResult<RunCtx> {
        let opts = options_from_json(&run.totals["options"]);
        let mut ctx = RunCtx::base(engine, &run.mapping, opts, CtxMode::Recon)?;
        ctx.run_id = run.id.clone();
        ctx.canceled = AtomicBool::new(run.cancel_requested);
        ctx.target_empty_at_start = run
            .totals
            .get("targetEmptyAtStart")
            .and_then(Value::as_bool);
        // The pages committed before the caches are loaded are in them.
        let done = engine.repo.run_counters(&run.id).await?;
        let done = done
            .totals
            .get(crate::recon::jobs::PAGES_DONE_KEY)
            .copied()
            .unwrap_or(0);
        ctx.caches_page = std::sync::Mutex::new(Some(u64::try_from(done).unwrap_or(0)));
        // IDM's clustered pages neither prefetch links nor pre-query target ids (docs/operations.md#running-a-cluster);
        // they look both up per page. Single-node runs do both once, up front.
        if ctx.eff.run_target_phase && !ctx.eff.clustered {
            ctx.target_snapshot = Some(ctx.load_target_snapshot().await?);
        }
        if ctx.eff.prefetch_links && !ctx.eff.clustered && ctx.config.enable_linking {
            ctx.prefetched = Some(ctx.load_links(engine).await?);
        }
        ctx.guard = SafetyGuard::new(
            ctx.config.safety.as_ref(),
            &run.totals,
            &engine.repo,
            &run.id,
        )
        .await?;
        Ok(ctx)
    }

    /// The context of implicit sync for one mapping: no run, no run-wide caches, no guard.
    /// Built once per mapping and node, and reused for every change.
    pub fn for_sync(engine: &Engine, mapping_name: &str) -> EngineResult<RunCtx> {
        RunCtx::base(engine, mapping_name, ReconOptions::default(), CtxMode::Sync)
    }

    /// What every context has: the mapping, its effective configuration, the object sets, the
    /// link view and the qualifiers.
    fn base(
        engine: &Engine,
        mapping_name: &str,
        opts: ReconOptions,
        mode: CtxMode,
    ) -> EngineResult<RunCtx> {
        let (config, mapping) = engine.mapping(mapping_name)?;
        let eff = EffectiveRecon::new(&config, &opts)?;
        let source_set = engine.resources.object_set(&eff.source.resource)?;
        let target_set = engine.resources.object_set(&eff.target.resource)?;
        let target_managed_type = managed_type(&eff.target.resource).map(str::to_string);
        let target_scripts = target_managed_type
            .as_deref()
            .and_then(|t| engine.managed_scripts(t).cloned());
        let links = LinkView::of(&engine.project, &config);
        let all_qualifiers = mapping.link_qualifiers(None, None, true)?;
        Ok(RunCtx {
            mode,
            run_id: String::new(),
            mapping_name: mapping_name.to_string(),
            config,
            mapping,
            eff,
            opts,
            source_set,
            target_set,
            target_managed_type,
            target_scripts,
            caller: crate::managed_scripts::Caller::sync(mapping_name),
            links,
            all_qualifiers,
            target_snapshot: None,
            prefetched: None,
            guard: SafetyGuard::default(),
            target_empty_at_start: None,
            script_host: engine.script_host().clone(),
            written: std::sync::RwLock::new(HashSet::new()),
            caches_page: std::sync::Mutex::new(Some(0)),
            extremes: std::sync::Mutex::new(NodeExtremes::default()),
            canceled: AtomicBool::new(false),
            last_cancel_check: std::sync::Mutex::new(Instant::now()),
            node_id: engine.node_id.clone(),
        })
    }

    async fn load_target_snapshot(&self) -> EngineResult<TargetSnapshot> {
        let mut snap = TargetSnapshot::default();
        let mut req = self.eff.target.request.clone();
        // An id-only snapshot is read in pages even when target paging is off: the result is the
        // same, and the peak memory is the id set, not the id set plus one huge result page.
        let page_size = self
            .eff
            .target_page_size
            .or(self.eff.target.ids_only.then_some(10_000));
        req.page_size = page_size;
        let mut full = self.eff.target_full_entry;
        loop {
            let page = self.target_set.query(&req).await?;
            for entry in page.results {
                let Some(id) = entry.get("_id").and_then(Value::as_str) else {
                    continue;
                };
                let id = self.links.norm_target(id);
                let keep = *full.get_or_insert_with(|| looks_full(&entry));
                if keep {
                    snap.values
                        .get_or_insert_with(HashMap::new)
                        .insert(id.clone(), entry);
                }
                snap.ids.insert(id);
            }
            match (page.cookie, page_size) {
                (Some(c), Some(_)) => req.cookie = Some(c),
                _ => break,
            }
        }
        Ok(snap)
    }

    async fn load_links(&self, engine: &Engine) -> EngineResult<PrefetchedLinks> {
        let mut map = PrefetchedLinks::default();
        let mut after: Option<String> = None;
        loop {
            let batch = engine
                .repo
                .load_links(&self.links.link_type, None, after.as_deref(), 10_000)
                .await?;
            let Some(last) = batch.last() else {
                break;
            };
            after = Some(last.id.clone());
            for l in batch {
                map.insert(&self.links, l);
            }
        }
        Ok(map)
    }

    /// The number of target ids the target query returned, when it ran.
    pub fn target_count(&self) -> Option<usize> {
        self.target_snapshot.as_ref().map(|s| s.ids.len())
    }

    /// Whether the target set was empty when the run started, when known: from the snapshot,
    /// or (clustered runs) from the run record.
    pub fn target_set_was_empty(&self) -> Option<bool> {
        self.target_count()
            .map(|n| n == 0)
            .or(self.target_empty_at_start)
    }

    /// Whether the snapshot still tells the state of this target: the run has not written it
    /// and no page committed elsewhere came after the snapshot.
    pub fn snapshot_holds(&self, norm_id: &str) -> bool {
        let current = self
            .caches_page
            .lock()
            .map(|p| p.is_some())
            .unwrap_or(false);
        current
            && self
                .written
                .read()
                .map(|w| !w.contains(norm_id))
                .unwrap_or(false)
    }

    /// A chunk this node committed wrote these targets.
    pub fn note_written(&self, norm_ids: Vec<String>) {
        if self.target_snapshot.is_none() || norm_ids.is_empty() {
            return;
        }
        if let Ok(mut w) = self.written.write() {
            w.extend(norm_ids);
        }
    }

    /// Page `page` is about to be assessed, every earlier page committed: the caches stay in use
    /// only if they reflect all of those.
    pub fn check_caches(&self, page: u64) {
        if let Ok(mut p) = self.caches_page.lock()
            && p.is_some_and(|last| last + 1 < page)
        {
            tracing::debug!(run = %self.run_id, page, "pages committed on other nodes: the run-wide snapshot is no longer read");
            *p = None;
        }
    }

    /// The run-wide caches are no longer read (a commit of this node failed: what they
    /// assume written was not).
    pub fn drop_caches(&self) {
        if let Ok(mut p) = self.caches_page.lock() {
            *p = None;
        }
    }

    /// This node committed page `page` (called just before its commit, which a failure
    /// follows with `drop_caches`).
    pub fn page_committed(&self, page: u64) {
        if let Ok(mut p) = self.caches_page.lock()
            && *p == Some(page.saturating_sub(1))
        {
            *p = Some(page);
        }
    }

    pub fn is_canceled(&self) -> bool {
        self.canceled.load(Ordering::Relaxed)
    }

    pub fn mark_canceled(&self) {
        self.canceled.store(true, Ordering::Relaxed);
    }

    /// Checks the run's cancel flag in the repository at most every 200 ms, so that a cancel
    /// from any node is seen quickly without a query per object.
    pub async fn refresh_cancel(&self, engine: &Engine) -> EngineResult<bool> {
        if self.is_canceled() {
            return Ok(true);
        }
        {
            let mut last = self
                .last_cancel_check
                .lock()
                .map_err(|_| EngineError::Internal("cancel-check lock poisoned".into()))?;
            if last.elapsed() < Duration::from_millis(200) {
                return Ok(false);
            }
            *last = Instant::now();
        }
        let run = engine.repo.get_run(&self.run_id).await?;
        let canceled = run.is_none_or(|r| r.cancel_requested || r.stage.is_completed());
        if canceled {
            self.mark_canceled();
        }
        Ok(canceled)
    }
}
