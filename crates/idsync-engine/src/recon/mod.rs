//! Reconciliation: runs of one mapping as page jobs in the repository (docs/rest.md#reconciliation, docs/operations.md#running-a-cluster;
//! docs/rest.md#reconciliation). `Engine::start_recon` creates the run and its first page job; any
//! node's worker (crate::worker) then claims the jobs; summaries are assembled from committed
//! counters, so every node shows the same progress for every run.

pub mod effective;
pub mod guard;
pub mod jobs;
pub mod page;
pub mod summary;

/// The path other crates name an explicit sync action by; the action runs in the pipeline.
pub mod object_sync {
    pub use crate::pipeline::explicit::ExplicitAction;
}

use crate::Engine;
use crate::error::{EngineError, EngineResult};
use crate::managed_set::new_id;
use chrono::Utc;
use effective::{EffectiveRecon, ReconOptions};
use idsync_core::{ReconStage, ReconState};
use idsync_repo::{
    AuditEntry, AuditKind, ChangeSet, ConflictKind, Op, RepoError, RunRecord, RunUpdate,
};
use serde_json::{Value, json};
use summary::{RunCounters, SummaryHead, build_summary};

impl Engine {
    /// Starts a run of `mapping` and returns its id. A second active run of the mapping is
    /// refused (`EngineError::ActiveRun`).
    pub async fn start_recon(&self, mapping: &str, opts: ReconOptions) -> EngineResult<String> {
        self.start_recon_as(mapping, opts, new_id()).await
    }

    /// [`Self::start_recon`] with a given run id, for a start that may be retried by another
    /// node (a scheduler firing whose node died): if the run already exists, this
    /// start finishes what the earlier attempt may not have (its first page) and returns its
    /// id instead of starting a second run.
    pub async fn start_recon_as(
        &self,
        mapping: &str,
        opts: ReconOptions,
        run_id: String,
    ) -> EngineResult<String> {
        if let Some(run) = self.repo.get_run(&run_id).await? {
            self.finish_start(&run).await?;
            return Ok(run_id);
        }
        let (config, _) = self.mapping(mapping)?;
        let eff = EffectiveRecon::new(&config, &opts)?;
        // Resolving the source refuses an unknown or disabled connector before a run exists.
        self.resources.object_set(&eff.source.resource)?;
        let target_set = self.resources.object_set(&eff.target.resource)?;
        let now = Utc::now();
        // Populations at the start, for percentage safety limits.
        let mut totals = json!({"options": crate::pipeline::ctx::options_to_json(&opts)});
        // A clustered run queries no target ids; for `correlateEmptyTargetSet` it needs to know
        // what a single node's target query would have told (ADR 0007).
        if eff.clustered && eff.run_target_phase && !eff.correlate_empty_target_set {
            let mut probe = eff.target.request.clone();
            probe.page_size = Some(1);
            probe.cookie = None;
            totals["targetEmptyAtStart"] =
                json!(target_set.query(&probe).await?.results.is_empty());
        }
        if config.safety.is_some() {
            totals["targetsAtStart"] = json!(target_set.count().await?);
            let links = crate::links::LinkView::of(&self.project, &config);
            totals["linksAtStart"] = json!(self.repo.count_links(&links.link_type).await?);
        }
        let run = RunRecord {
            id: run_id.clone(),
            mapping: mapping.to_string(),
            analyze: opts.analyze,
            state: ReconState::Active,
            stage: ReconStage::ActiveInitialized,
            started: now,
            ended: None,
            cancel_requested: false,
            message: None,
            parameters: eff.parameters(&opts),
            summary: Value::Null,
            totals,
            node_id: self.node_id.clone(),
        };
        match self.repo.create_run(&run).await {
            Ok(()) => {}
            // Another attempt of the same start got there first.
            Err(RepoError::Conflict(ConflictKind::ActiveRun {
                ref active_run_id, ..
            })) if *active_run_id == run_id => {
                return self.adopt_start(run_id).await;
            }
            Err(RepoError::Conflict(ConflictKind::AlreadyExists { .. })) => {
                return self.adopt_start(run_id).await;
            }
            Err(RepoError::Conflict(ConflictKind::ActiveRun {
                mapping,
                active_run_id,
            })) => {
                return Err(EngineError::ActiveRun {
                    mapping,
                    run_id: active_run_id,
                });
            }
            Err(e) => return Err(e.into()),
        }
        self.commit_start(&run_id, mapping).await?;
        tracing::info!(run = %run_id, mapping, analyze = opts.analyze, "reconciliation started");
        Ok(run_id)
    }

    /// A start that found its run already created by another attempt.
    async fn adopt_start(&self, run_id: String) -> EngineResult<String> {
        match self.repo.get_run(&run_id).await? {
            Some(run) => {
                self.finish_start(&run).await?;
                Ok(run_id)
            }
            None => Err(EngineError::Conflict(format!(
                "reconciliation {run_id} is being started by another node"
            ))),
        }
    }

    /// The second step of a start: its audit entry and first page job, in one commit.
    async fn commit_start(&self, run_id: &str, mapping: &str) -> EngineResult<()> {
        let start = AuditEntry {
            id: new_id(),
            kind: AuditKind::Recon,
            timestamp: Utc::now(),
            recon_id: Some(run_id.to_string()),
            mapping: Some(mapping.to_string()),
            entry_type: Some("start".into()),
            entry: json!({
                "entryType": "start",
                "reconId": run_id,
                "mapping": mapping,
                "message": format!("Reconciliation initiated by node {}", self.node_id),
                "status": "SUCCESS",
            }),
        };
        let mut cs = ChangeSet::new().with(Op::AppendAudit(start));
        cs.ops
            .extend(jobs::schedule_page_ops(run_id, &self.node_id, 1, None));
        self.repo.commit(cs).await?;
        self.wake_workers();
        Ok(())
    }

    /// An existing run whose start may have stopped between its two commits (the node died):
    /// commits the first page unless it exists (or existed: done jobs stay as tombstones).
    /// The cluster monitor calls it for every unfinished run of a node it marks down.
    pub(crate) async fn finish_start(&self, run: &RunRecord) -> EngineResult<()> {
        if run.stage.is_completed() {
            return Ok(());
        }
        match self.commit_start(&run.id, &run.mapping).await {
            Ok(()) => {
                tracing::info!(run = %run.id, mapping = %run.mapping, "an interrupted reconciliation start was completed");
                Ok(())
            }
            Err(EngineError::Repo(RepoError::Conflict(ConflictKind::AlreadyExists { .. }))) => {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Requests the cancel of a run from any node. `NotFound` for an unknown id;
    /// a run that already ended is left as it is.
    pub async fn cancel_recon(&self, run_id: &str) -> EngineResult<()> {
        let Some(run) = self.repo.get_run(run_id).await? else {
            return Err(EngineError::NotFound(format!("no reconciliation {run_id}")));
        };
        if run.stage.is_completed() {
            return Ok(());
        }
        if self.repo.request_cancel(run_id).await? {
            let stage = run.stage.transition(ReconStage::ActiveCanceling, true);
            self.repo
                .update_run(
                    run_id,
                    &RunUpdate {
                        stage: Some(stage),
                        ..Default::default()
                    },
                )
                .await?;
            jobs::schedule(self, None, jobs::finish_job(run_id)).await?;
        }
        // A run with no job left (its finish done, or its chain of jobs broken) would wait
        // forever for a finish that never comes: cancel ends it here.
        jobs::end_if_orphaned(self, run_id).await?;
        Ok(())
    }

    /// A run's summary: the stored one when it ended, else assembled from the live counters.
    pub async fn recon_summary(&self, run_id: &str) -> EngineResult<Value> {
        let Some(run) = self.repo.get_run(run_id).await? else {
            return Err(EngineError::NotFound(format!("no reconciliation {run_id}")));
        };
        self.summary_of(&run).await
    }

    pub async fn summary_of(&self, run: &RunRecord) -> EngineResult<Value> {
        if run.stage.is_completed() && run.summary.is_object() {
            return Ok(run.summary.clone());
        }
        let c = self.repo.run_counters(&run.id).await?;
        let counters = RunCounters { by_node: c.by_node };
        let head = SummaryHead {
            id: &run.id,
            mapping: &run.mapping,
            stage: run.stage,
            analyze: run.analyze,
            started: Some(run.started),
            ended: run.ended,
            parameters: &run.parameters,
            message: run.message.as_deref(),
        };
        Ok(build_summary(&head, &counters, Utc::now()))
    }

    /// Every stored run's summary, oldest first (`GET recon`).
    pub async fn recon_list(&self) -> EngineResult<Vec<Value>> {
        let mut runs = self.repo.list_runs(None).await?;
        runs.reverse();
        let mut out = Vec::with_capacity(runs.len());
        for r in &runs {
            out.push(self.summary_of(r).await?);
        }
        Ok(out)
    }
}
