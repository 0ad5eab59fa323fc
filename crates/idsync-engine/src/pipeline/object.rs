//! One object's reconciliation, per link qualifier: gather the facts the decision trees ask for
//! (link, target existence, correlation), assess (pure), decide (pure), act. Writes to a managed
//! target and every link, audit, plan and registry write become operations of the page's change
//! set; writes to a connected system go out at once (they cannot join a database transaction).
//!
//! Hook order for a first-time CREATE (docs/configuration.md#mappings): properties → onCreate → target create →
//! onLink → link create → postAction.

use super::ctx::{CtxMode, RunCtx};
use super::settle::Overlay;
use super::stats::{OpOutcome, StatsDelta, TargetEffect};
use crate::error::{EngineError, EngineResult};
use crate::managed_set::new_id;
use chrono::Utc;
use idsync_connectors::ConnectorError;
use idsync_core::filter::Filter;
use idsync_core::{Action, Situation};
use idsync_mapping::{
    Assessment, CorrelationOutcome, Decision, DecisionContext, HookContext, LinkedSource,
    SourceFacts, SourceLink, TargetFacts, TargetState, assess_source, assess_target,
    is_full_object,
};
use idsync_repo::{AuditEntry, AuditKind, Link, Op, PlanEntry};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

/// Everything one chunk of objects produced, merged into the chunk's commit.
#[derive(Debug, Default)]
pub struct ChunkOutput {
    pub ops: Vec<Op>,
    pub plan: Vec<PlanEntry>,
    pub claimed: Vec<String>,
    pub stats: StatsDelta,
    /// Set when the safety guard stopped the run: the message for the run's failure.
    pub abort: Option<String>,
    /// Sync mode: one result per operation, in the `/sync` response shape (docs/rest.md#synchronization).
    pub sync_results: Vec<Value>,
    /// Normalised ids of the targets written (created, updated, deleted).
    pub written: Vec<String>,
}

impl ChunkOutput {
    pub fn merge(&mut self, other: ChunkOutput) {
        self.ops.extend(other.ops);
        self.plan.extend(other.plan);
        self.claimed.extend(other.claimed);
        self.stats.merge(other.stats);
        self.sync_results.extend(other.sync_results);
        self.written.extend(other.written);
        if self.abort.is_none() {
            self.abort = other.abort;
        }
    }
}

/// Targets and links the chunk looked up in bulk before its objects ran.
#[derive(Debug, Default)]
pub struct ChunkLookups {
    /// Links of the chunk's sources by (qualifier, normalised source id), when not prefetched.
    pub links: Option<HashMap<(String, String), Link>>,
    /// Linked targets read in one call, by normalised id.
    pub targets: HashMap<String, Value>,
    /// Correlations run for the whole chunk at once, by (qualifier, normalised source id): the
    /// candidates and the filter that found them.
    pub correlated: HashMap<(String, String), (Candidates, Filter)>,
    /// Correlation requests evaluated for the chunk but not batched (scripts' candidates,
    /// filters without an equality to index on), so that no script runs twice.
    pub correlations: HashMap<(String, String), idsync_mapping::Correlation>,
    /// The links of the batched correlations' single candidates, read in one call.
    pub candidate_links: Option<CandidateLinks>,
    /// How long the chunk's batched correlation took.
    pub correlation_time: std::time::Duration,
    /// When an object is assessed again while its chunk settles: what the objects before it in
    /// the chunk wrote, which reads consult first (see `settle.rs`).
    pub overlay: Option<Overlay>,
}

/// What an assessment read that an earlier object's writes could change: the targets it read
/// by id (the linked target, the correlation's candidates) and the correlation query (any
/// target an earlier object created or changed to match it).
#[derive(Debug, Default, Clone)]
pub struct Reads {
    /// Normalised target ids.
    pub targets: Vec<String>,
    pub filter: Option<Filter>,
}

/// What an action writes, prepared but not yet done: the scripts that run before the write
/// have run and the new target is computed. A reconciliation settles its chunk's objects in
/// source order before any write goes out (`settle.rs`).
#[derive(Debug)]
pub enum Intent {
    /// Nothing to write: REPORT, IGNORE, EXCEPTION, a dry run, an UPDATE without a target.
    Nothing,
    /// CREATE: the new target (`onCreate` ran; a managed target has its `_id`), then its link.
    Create { value: Value },
    /// UPDATE or LINK of the target `id`: `new` when the target changed; `link` when the op
    /// links (or re-points its link to) it.
    Write {
        id: String,
        current: Value,
        new: Option<Value>,
        link: bool,
    },
    /// DELETE: the target (when it exists; `onDelete` ran), then the link.
    Delete { target: Option<(String, Value)> },
    /// UNLINK: the link.
    Unlink,
}

/// One source-phase operation — a source object and a link qualifier — assessed, decided and
/// prepared, not yet applied.
#[derive(Debug)]
pub struct Spec {
    pub(super) op: Op1<'static>,
    pub(super) source: Option<Arc<Value>>,
    pub(super) target: Option<Value>,
    pub(super) link: Option<Link>,
    pub(super) decision: Option<Decision>,
    pub(super) intent: Intent,
    /// The op ended before its action (an error, a vanished source): it is only finished.
    pub(super) done: bool,
}

impl Spec {
    fn ended(op: Op1<'static>) -> Spec {
        Spec {
            op,
            source: None,
            target: None,
            link: None,
            decision: None,
            intent: Intent::Nothing,
            done: true,
        }
    }
}

/// Which of some targets are linked already, from one lookup.
#[derive(Debug, Default)]
pub struct CandidateLinks {
    /// The normalised target ids asked about.
    pub asked: HashSet<String>,
    /// The (qualifier, normalised target id) pairs found linked.
    pub linked: HashSet<(String, String)>,
}

/// What a correlation found: candidate ids in the order returned, and the full objects among
/// them by id.
pub type Candidates = (Vec<String>, HashMap<String, Value>);

/// The state of one operation as it proceeds; it becomes the audit entry and the statistics.
#[derive(Debug)]
pub(super) struct Op1<'a> {
    pub(super) qualifier: String,
    pub(super) phase: &'static str,
    pub(super) source_id: Option<String>,
    pub(super) target_id: Option<String>,
    pub(super) situation: Option<Situation>,
    pub(super) action: Option<Action>,
    pub(super) ambiguous: Vec<String>,
    pub(super) link_existed: bool,
    pub(super) link_created: bool,
    pub(super) target_effect: TargetEffect,
    pub(super) had_target: bool,
    pub(super) message: Option<String>,
    pub(super) error: Option<String>,
    /// Implicit sync: the source before the change (`oldValue`).
    pub(super) old_source: Option<&'a Value>,
    /// Sync mode: the target as it was before the action (`oldTargetValue`).
    pub(super) old_target: Option<Value>,
    /// The kind of `error` (sync results report it).
    pub(super) error_code: Option<idsync_core::ErrorCode>,
    /// What the assessment read that an earlier object's writes could change.
    pub(super) reads: Reads,
    /// Target ids the source phase visited (the target phase skips them), added at finish.
    pub(super) claimed: Vec<String>,
}

impl<'a> Op1<'a> {
    pub(super) fn new(qualifier: impl Into<String>, phase: &'static str) -> Self {
        Self {
            qualifier: qualifier.into(),
            phase,
            source_id: None,
            target_id: None,
            situation: None,
            action: None,
            ambiguous: Vec::new(),
            link_existed: false,
            link_created: false,
            target_effect: TargetEffect::None,
            had_target: false,
            message: None,
            error: None,
            old_source: None,
            old_target: None,
            error_code: None,
            reads: Reads::default(),
            claimed: Vec::new(),
        }
    }

    pub(super) fn fail(&mut self, e: &EngineError) {
        use idsync_core::HasErrorCode;
        self.error = Some(e.to_string());
        self.error_code = Some(e.error_code());
    }
}

pub(super) fn qualified(set: &str, id: &Option<String>) -> Value {
    id.as_ref()
        .map_or(Value::Null, |i| Value::String(format!("{set}/{i}")))
}

impl RunCtx {
    fn hook<'b>(&'b self, op: &'b Op1<'_>) -> HookContext<'b> {
        HookContext {
            situation: op.situation,
            link_qualifier: &op.qualifier,
            source_id: op.source_id.as_deref(),
            target_id: op.target_id.as_deref(),
            old_source: op.old_source,
            context: None,
        }
    }

    /// The link of a source id for a qualifier, from the prefetched map, the chunk's batch, or
    /// the repository.
    pub(super) async fn source_link(
        &self,
        repo: &std::sync::Arc<dyn idsync_repo::Repository>,
        look: &ChunkLookups,
        qualifier: &str,
        source_id: &str,
    ) -> EngineResult<Option<Link>> {
        if !self.config.enable_linking {
            return Ok(None);
        }
        let norm = self.links.norm_source(source_id);
        if let Some(p) = &self.prefetched {
            return Ok(p.get(&self.links, qualifier, &norm));
        }
        if let Some(map) = &look.links {
            return Ok(map.get(&(qualifier.to_string(), norm)).cloned());
        }
        self.links.by_source(repo, qualifier, source_id).await
    }

    /// Reads a target: what an earlier object of the chunk wrote, the run's snapshot (unless
    /// the run wrote the target since), the chunk's batch, or one read.
    pub(super) async fn read_target(
        &self,
        look: &ChunkLookups,
        id: &str,
    ) -> EngineResult<Option<Value>> {
        let norm = self.links.norm_target(id);
        if let Some(v) = look.overlay.as_ref().and_then(|o| o.target(&norm)) {
            return Ok(v.cloned());
        }
        if let Some(snap) = self.target_snapshot.as_ref()
            && self.snapshot_holds(&norm)
        {
            if let Some(values) = &snap.values {
                return Ok(values.get(&norm).cloned());
            }
            if !snap.ids.contains(&norm) {
                return Ok(None);
            }
        }
        if let Some(v) = look.targets.get(&norm) {
            return Ok(Some(v.clone()));
        }
        Ok(self.target_set.get(id).await?)
    }

    /// The source phase for one source object (every qualifier), assessed, decided and
    /// prepared but not applied: one [`Spec`] per qualifier, in qualifier order. `source` is the
    /// preloaded entry when the source query returned full objects.
    pub async fn speculate_source(
        &self,
        engine: &crate::Engine,
        look: &ChunkLookups,
        source_id: &str,
        preloaded: Option<Value>,
        out: &mut ChunkOutput,
    ) -> Vec<Spec> {
        let source = match preloaded {
            Some(v) => Ok(Some(v)),
            None => {
                let t = Instant::now();
                let r = self.source_set.get(source_id).await;
                out.stats.time("sourceObjectQuery", t.elapsed());
                r
            }
        };
        let qualifiers = match &source {
            Ok(Some(s)) => self.mapping.link_qualifiers(Some(s), None, false),
            Ok(None) => Ok(self.all_qualifiers.clone()),
            Err(_) => Ok(vec![idsync_mapping::DEFAULT_QUALIFIER.to_string()]),
        };
        let qualifiers = match qualifiers {
            Ok(q) => q,
            Err(e) => {
                let mut op = Op1::new(idsync_mapping::DEFAULT_QUALIFIER, "source");
                op.source_id = Some(source_id.to_string());
                op.error = Some(e.to_string());
                return vec![Spec::ended(op)];
            }
        };
        let source = source.map(|s| s.map(Arc::new));
        let mut specs = Vec::with_capacity(qualifiers.len());
        for q in qualifiers {
            let mut op = Op1::new(q, "source");
            op.source_id = Some(source_id.to_string());
            let spec = match &source {
                Ok(Some(s)) => self.speculate_op(engine, look, s.clone(), op, out).await,
                Ok(None) => {
                    op.error = Some(
                        EngineError::NotFound(format!(
                            "source {}/{source_id} disappeared during the run",
                            self.config.source_str
                        ))
                        .to_string(),
                    );
                    Spec::ended(op)
                }
                Err(e) => {
                    op.error = Some(EngineError::Connector(e.clone()).to_string());
                    Spec::ended(op)
                }
            };
            specs.push(spec);
        }
        specs
    }

    /// Assesses, decides and prepares one source op; a failure ends it.
    pub(super) async fn speculate_op(
        &self,
        engine: &crate::Engine,
        look: &ChunkLookups,
        source: Arc<Value>,
        mut op: Op1<'static>,
        out: &mut ChunkOutput,
    ) -> Spec {
        let prepared: EngineResult<_> = async {
            let (target, link) = self
                .assess_source_op(engine, look, &source, &mut op, out)
                .await?;
            let decision = self.decide(Some(&source), target.as_ref(), &mut op, out, true)?;
            let intent =
                self.prepare(decision.action, Some(&source), &target, &link, &mut op, out)?;
            Ok((target, link, decision, intent))
        }
        .await;
        match prepared {
            Ok((target, link, decision, intent)) => Spec {
                op,
                source: Some(source),
                target,
                link,
                decision: Some(decision),
                intent,
                done: false,
            },
            Err(e) => {
                op.error = Some(e.to_string());
                Spec::ended(op)
            }
        }
    }

    /// Applies a settled op (its write, link, post-write hooks and `postAction`) and finishes
    /// it into `out`. Returns the id of the target it created, if it created one.
    pub(super) async fn apply_spec(&self, spec: Spec, out: &mut ChunkOutput) -> Option<String> {
        let Spec {
            mut op,
            source,
            target,
            link,
            decision,
            intent,
            done,
        } = spec;
        let mut created = None;
        if !done && let Some(decision) = decision {
            let creates = matches!(intent, Intent::Create { .. });
            let applied: EngineResult<()> = async {
                self.apply(intent, source.as_deref(), target, link, &mut op, out)
                    .await?;
                self.post_action(&decision, source.as_deref(), &op, true, out)
            }
            .await;
            match applied {
                Ok(()) if creates => created.clone_from(&op.target_id),
                Ok(()) => {}
                Err(e) => op.error = Some(e.to_string()),
            }
        }
        self.finish(op, true, out);
        created
    }

    /// Implicit sync's source op: assess, decide and act at once.
    pub(super) async fn source_op(
        &self,
        engine: &crate::Engine,
        look: &ChunkLookups,
        source: &Value,
        op: &mut Op1<'_>,
        out: &mut ChunkOutput,
    ) -> EngineResult<()> {
        let (target, link) = self.assess_source_op(engine, look, source, op, out).await?;
        self.decide_and_act(Some(source), target, link, op, out, true)
            .await
    }

    /// The source-side facts and situation of one op (into `op`); returns the target and link
    /// the decision needs.
    pub(super) async fn assess_source_op(
        &self,
        engine: &crate::Engine,
        look: &ChunkLookups,
        source: &Value,
        op: &mut Op1<'_>,
        out: &mut ChunkOutput,
    ) -> EngineResult<(Option<Value>, Option<Link>)> {
        let q = op.qualifier.clone();
        let q = q.as_str();
        let source_id = op.source_id.clone().unwrap_or_default();
        let t = Instant::now();
        let qualifies = self.mapping.source_qualifies(source, q)?;
        out.stats.time("validSourceScript", t.elapsed());
        let link = self.source_link(&engine.repo, look, q, &source_id).await?;
        op.link_existed = link.is_some();
        let mut target: Option<Value> = None;
        let facts_link = match &link {
            Some(l) => {
                let tid = self.links.target_id(l).to_string();
                op.reads.targets.push(self.links.norm_target(&tid));
                target = self.read_target(look, &tid).await?;
                SourceLink::Linked {
                    target_id: tid,
                    target_exists: target.is_some(),
                }
            }
            None => {
                let t = Instant::now();
                let corr = self
                    .correlate(look, source, &source_id, q, &mut op.reads)
                    .await?;
                out.stats.time("correlationQuery", t.elapsed());
                match corr {
                    None => SourceLink::Unlinked(CorrelationOutcome::Skipped),
                    Some((ids, mut values)) => {
                        op.reads
                            .targets
                            .extend(ids.iter().map(|i| self.links.norm_target(i)));
                        let outcome = match <[String; 1]>::try_from(ids) {
                            Ok([tid]) => {
                                let already_linked =
                                    self.candidate_linked(engine, look, q, &tid).await?;
                                target = match values.remove(&tid) {
                                    Some(v) if is_full_object(&v) => Some(v),
                                    _ => self.read_target(look, &tid).await?,
                                };
                                CorrelationOutcome::One {
                                    target_id: tid,
                                    already_linked,
                                }
                            }
                            Err(ids) if ids.is_empty() => CorrelationOutcome::None,
                            Err(ids) => CorrelationOutcome::Many(ids),
                        };
                        SourceLink::Unlinked(outcome)
                    }
                }
            }
        };
        let assessment: Assessment = assess_source(&SourceFacts {
            qualifies,
            link: facts_link,
        });
        op.situation = Some(assessment.situation);
        op.target_id = assessment.target_id.clone();
        op.ambiguous = assessment.ambiguous_target_ids.clone();
        op.had_target = target.is_some();
        op.claimed.extend(
            assessment
                .claimed_target_ids()
                .into_iter()
                .map(str::to_string),
        );
        Ok((target, link))
    }

    /// The target phase for one unclaimed target id, every qualifier (docs/configuration.md#mappings).
    pub async fn reconcile_target(
        &self,
        engine: &crate::Engine,
        target_id: &str,
        preloaded: Option<Value>,
        out: &mut ChunkOutput,
    ) {
        for q in &self.all_qualifiers {
            let mut op = Op1::new(q, "target");
            op.target_id = Some(target_id.to_string());
            if let Err(e) = self
                .target_op(engine, preloaded.clone(), &mut op, out)
                .await
            {
                op.error = Some(e.to_string());
            }
            self.finish(op, false, out);
            if out.abort.is_some() {
                return;
            }
        }
    }

    async fn target_op(
        &self,
        engine: &crate::Engine,
        preloaded: Option<Value>,
        op: &mut Op1<'_>,
        out: &mut ChunkOutput,
    ) -> EngineResult<()> {
        let (source, target, link) = self.assess_target_op(engine, preloaded, op).await?;
        self.decide_and_act(source.as_ref(), target, link, op, out, false)
            .await
    }

    /// The target-side facts and situation of one op (into `op`); returns the linked source, the
    /// target and the link.
    pub(super) async fn assess_target_op(
        &self,
        engine: &crate::Engine,
        preloaded: Option<Value>,
        op: &mut Op1<'_>,
    ) -> EngineResult<(Option<Value>, Option<Value>, Option<Link>)> {
        let q = op.qualifier.clone();
        let q = q.as_str();
        let tid = op.target_id.clone().unwrap_or_default();
        let link = if self.config.enable_linking {
            self.links.by_target(&engine.repo, q, &tid).await?
        } else {
            None
        };
        op.link_existed = link.is_some();
        let target = match preloaded {
            Some(v) if crate::recon::effective::looks_full(&v) => Some(v),
            _ => self.target_set.get(&tid).await?,
        };
        op.had_target = target.is_some();
        let target_state = match &target {
            None => TargetState::Gone,
            Some(t) => {
                if self.mapping.target_valid(t, q)? {
                    TargetState::Valid
                } else {
                    TargetState::Invalid
                }
            }
        };
        let mut source = None;
        let linked_source = match &link {
            None => LinkedSource::Unlinked,
            Some(l) => {
                let sid = self.links.source_id(l).to_string();
                op.source_id = Some(sid.clone());
                source = self.source_set.get(&sid).await?;
                match &source {
                    None => LinkedSource::Missing,
                    Some(s) => LinkedSource::Exists {
                        valid_source: self.mapping.valid_source(s, q)?,
                    },
                }
            }
        };
        let situation = assess_target(&TargetFacts {
            target: target_state,
            source: linked_source,
        });
        op.situation = Some(situation);
        Ok((source, target, link))
    }

    /// Decides, then acts at once: the target phase's ops and implicit sync, whose objects do
    /// not settle against each other.
    pub(super) async fn decide_and_act(
        &self,
        source: Option<&Value>,
        target: Option<Value>,
        link: Option<Link>,
        op: &mut Op1<'_>,
        out: &mut ChunkOutput,
        source_action: bool,
    ) -> EngineResult<()> {
        let decision = self.decide(source, target.as_ref(), op, out, source_action)?;
        if !self.opts.analyze
            && let Err(msg) = self.guard.admit(decision.action)
        {
            op.action = None;
            op.message = Some(msg.clone());
            out.abort = Some(msg);
            return Ok(());
        }
        self.act(decision.action, source, target, link, op, out)
            .await?;
        self.post_action(&decision, source, op, source_action, out)
    }

    /// The policy's decision for the op's situation (into `op.action`).
    pub(super) fn decide(
        &self,
        source: Option<&Value>,
        target: Option<&Value>,
        op: &mut Op1<'_>,
        out: &mut ChunkOutput,
        source_action: bool,
    ) -> EngineResult<Decision> {
        let situation = op
            .situation
            .ok_or_else(|| EngineError::Internal("no situation".into()))?;
        let t = Instant::now();
        let decision = self.mapping.decide(
            situation,
            &DecisionContext {
                source,
                target,
                link_qualifier: &op.qualifier,
                source_action,
                recon_id: self.recon_id(),
                source_id: op.source_id.as_deref(),
                target_id: op.target_id.as_deref(),
                ambiguous_target_ids: &op.ambiguous,
            },
        )?;
        out.stats.time("activePolicyScript", t.elapsed());
        op.action = Some(decision.action);
        if self.mode == CtxMode::Sync {
            op.old_target = target.cloned();
        }
        Ok(decision)
    }

    /// The policy's `postAction`, after the action (not in a dry run).
    pub(super) fn post_action(
        &self,
        decision: &Decision,
        source: Option<&Value>,
        op: &Op1<'_>,
        source_action: bool,
        out: &mut ChunkOutput,
    ) -> EngineResult<()> {
        if self.opts.analyze || op.action.is_none() {
            return Ok(());
        }
        let ctx = DecisionContext {
            source,
            target: None,
            link_qualifier: &op.qualifier,
            source_action,
            recon_id: self.recon_id(),
            source_id: op.source_id.as_deref(),
            target_id: op.target_id.as_deref(),
            ambiguous_target_ids: &op.ambiguous,
        };
        let t = Instant::now();
        if self.mapping.post_action(decision, &ctx)? {
            out.stats.time("activePolicyPostActionScript", t.elapsed());
        }
        Ok(())
    }

    /// Performs an action (docs/configuration.md#mappings). In a dry run, records what would happen instead.
    pub(super) async fn act(
        &self,
        action: Action,
        source: Option<&Value>,
        target: Option<Value>,
        link: Option<Link>,
        op: &mut Op1<'_>,
        out: &mut ChunkOutput,
    ) -> EngineResult<()> {
        let intent = self.prepare(action, source, &target, &link, op, out)?;
        self.apply(intent, source, target, link, op, out).await
    }

    /// The part of an action before its write: the scripts that precede it run and the new
    /// target is computed; nothing is written. A dry run records its plan entry here.
    pub(super) fn prepare(
        &self,
        action: Action,
        source: Option<&Value>,
        target: &Option<Value>,
        link: &Option<Link>,
        op: &mut Op1<'_>,
        out: &mut ChunkOutput,
    ) -> EngineResult<Intent> {
        let analyze = self.opts.analyze;
        Ok(match action {
            Action::Create => {
                let source = source
                    .ok_or_else(|| EngineError::Conflict("CREATE needs a source object".into()))?;
                if target.is_some() {
                    return Err(EngineError::Conflict("target object already exists".into()));
                }
                let t = Instant::now();
                let mut value = self.mapping.prepare_create(source, &self.hook(op))?;
                out.stats.time("onCreateScript", t.elapsed());
                if analyze {
                    op.target_effect = TargetEffect::Created;
                    let diff = idsync_mapping::diff(&Value::Null, &value);
                    self.plan(op, Some(diff), out);
                    return Ok(Intent::Nothing);
                }
                // A managed target's id is chosen now, so that the objects after this one in
                // the chunk can see the new target by its id before the commit.
                if self.target_managed_type.is_some()
                    && let Some(o) = value.as_object_mut()
                    && !o.get("_id").is_some_and(Value::is_string)
                {
                    o.insert("_id".into(), Value::String(new_id()));
                }
                Intent::Create { value }
            }
            Action::Update | Action::Link => {
                let tid = op
                    .target_id
                    .clone()
                    .ok_or_else(|| EngineError::Conflict(format!("{action} needs a target id")))?;
                let Some(current) = target.clone() else {
                    // IDM: UPDATE with a link but no target object does nothing and does not
                    // fail (ObjectMappingTest.testUpdateActionWithNullTargetObject).
                    self.plan(op, None, out);
                    return Ok(Intent::Nothing);
                };
                let mut new = None;
                let mut diff_out = None;
                if action == Action::Update {
                    let source = source.ok_or_else(|| {
                        EngineError::Conflict("UPDATE needs a source object".into())
                    })?;
                    let t = Instant::now();
                    let plan = self
                        .mapping
                        .prepare_update(source, &current, &self.hook(op))?;
                    out.stats.time("onUpdateScript", t.elapsed());
                    op.target_effect = if plan.changed {
                        TargetEffect::Updated
                    } else {
                        TargetEffect::Unchanged
                    };
                    if plan.changed {
                        new = Some(plan.new_target);
                    }
                    diff_out = Some(plan.diff);
                }
                if analyze {
                    self.plan(op, diff_out, out);
                    return Ok(Intent::Nothing);
                }
                let linked_here = link.as_ref().is_some_and(|l| {
                    self.links.norm_target(self.links.target_id(l)) == self.links.norm_target(&tid)
                });
                Intent::Write {
                    id: tid,
                    current,
                    new,
                    link: self.config.enable_linking && !linked_here && source.is_some(),
                }
            }
            Action::Delete => {
                if analyze {
                    op.target_effect = if target.is_some() {
                        TargetEffect::Deleted
                    } else {
                        TargetEffect::None
                    };
                    self.plan(op, None, out);
                    return Ok(Intent::Nothing);
                }
                match (target, op.target_id.clone()) {
                    (Some(t), Some(tid)) => {
                        let tm = Instant::now();
                        self.mapping.on_delete(source, t, &self.hook(op))?;
                        out.stats.time("onDeleteScript", tm.elapsed());
                        Intent::Delete {
                            target: Some((tid, t.clone())),
                        }
                    }
                    _ => Intent::Delete { target: None },
                }
            }
            Action::Unlink => {
                if analyze {
                    self.plan(op, None, out);
                    return Ok(Intent::Nothing);
                }
                Intent::Unlink
            }
            Action::Exception => {
                let message = format!(
                    "Situation {} marked as EXCEPTION",
                    op.situation.map_or("?", Situation::as_str)
                );
                // Implicit sync rethrows it: the mapping fails and later ones are skipped
                // (docs/configuration.md#mappings); a recon keeps SUCCESS with the message.
                if self.mode == CtxMode::Sync {
                    return Err(EngineError::Conflict(message));
                }
                op.message = Some(message);
                if analyze {
                    self.plan(op, None, out);
                }
                Intent::Nothing
            }
            Action::Ignore | Action::Report | Action::Noreport | Action::Async => {
                if analyze {
                    self.plan(op, None, out);
                }
                Intent::Nothing
            }
        })
    }

    /// The write of a prepared action and what follows it: the target write, `onLink` and the
    /// link, or `onUnlink` and the link's removal.
    pub(super) async fn apply(
        &self,
        intent: Intent,
        source: Option<&Value>,
        target: Option<Value>,
        link: Option<Link>,
        op: &mut Op1<'_>,
        out: &mut ChunkOutput,
    ) -> EngineResult<()> {
        match intent {
            Intent::Nothing => {}
            Intent::Create { mut value } => {
                let id = self.create_target(&mut value, out).await?;
                out.written.push(self.links.norm_target(&id));
                op.target_id = Some(id.clone());
                op.target_effect = TargetEffect::Created;
                op.claimed.push(id);
                if self.config.enable_linking
                    && let Some(source) = source
                {
                    self.write_link(source, &value, link.as_ref(), op, out)?;
                }
            }
            Intent::Write {
                id,
                current,
                new,
                link: links,
            } => {
                if let Some(new) = new {
                    self.update_target(&id, &current, new, out).await?;
                    out.written.push(self.links.norm_target(&id));
                }
                if links && let Some(s) = source {
                    self.write_link(s, &current, link.as_ref(), op, out)?;
                }
            }
            Intent::Delete { target: doomed } => {
                if let Some((tid, t)) = &doomed {
                    self.delete_target(tid, t, out).await?;
                    out.written.push(self.links.norm_target(tid));
                    op.target_effect = TargetEffect::Deleted;
                }
                self.remove_link(source, target.as_ref(), link, op, out)?;
            }
            Intent::Unlink => self.remove_link(source, target.as_ref(), link, op, out)?,
        }
        Ok(())
    }

    /// `onUnlink`, then the link's removal (when there is a link).
    fn remove_link(
        &self,
        source: Option<&Value>,
        target: Option<&Value>,
        link: Option<Link>,
        op: &Op1<'_>,
        out: &mut ChunkOutput,
    ) -> EngineResult<()> {
        if let Some(l) = link {
            let null = Value::Null;
            self.mapping
                .on_unlink(source, target.unwrap_or(&null), &self.hook(op))?;
            out.ops.push(Op::DeleteLink {
                id: l.id,
                expected_rev: None,
            });
        }
        Ok(())
    }

    /// Creates the target: a managed object joins the commit, a system object is created now.
    async fn create_target(&self, obj: &mut Value, out: &mut ChunkOutput) -> EngineResult<String> {
        let given = obj.get("_id").and_then(Value::as_str).map(str::to_string);
        match &self.target_managed_type {
            Some(object_type) => {
                let id = given.unwrap_or_else(new_id);
                if let Some(o) = obj.as_object_mut() {
                    o.insert("_id".into(), Value::String(id.clone()));
                }
                out.ops.push(Op::CreateObject {
                    object_type: object_type.clone(),
                    id: id.clone(),
                    value: obj.clone(),
                });
                Ok(id)
            }
            None => {
                // The connector gets the object itself; `obj` becomes what it created.
                let created = self
                    .target_set
                    .create(given.as_deref(), std::mem::take(obj))
                    .await?;
                let id = created
                    .get("_id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        EngineError::Connector(ConnectorError::Internal(
                            "created object has no _id".into(),
                        ))
                    })?
                    .to_string();
                *obj = created;
                Ok(id)
            }
        }
    }

    async fn update_target(
        &self,
        id: &str,
        current: &Value,
        mut new: Value,
        out: &mut ChunkOutput,
    ) -> EngineResult<()> {
        let rev = current
            .get("_rev")
            .and_then(Value::as_str)
            .map(str::to_string);
        let t = Instant::now();
        match &self.target_managed_type {
            Some(object_type) => {
                if let Some(o) = new.as_object_mut() {
                    o.remove("_rev");
                }
                out.ops.push(Op::UpdateObject {
                    object_type: object_type.clone(),
                    id: id.to_string(),
                    expected_rev: rev,
                    value: new,
                });
            }
            None => {
                self.target_set.update(id, rev.as_deref(), new).await?;
            }
        }
        out.stats.time("updateTargetObject", t.elapsed());
        Ok(())
    }

    async fn delete_target(
        &self,
        id: &str,
        current: &Value,
        out: &mut ChunkOutput,
    ) -> EngineResult<()> {
        let rev = current
            .get("_rev")
            .and_then(Value::as_str)
            .map(str::to_string);
        let t = Instant::now();
        match &self.target_managed_type {
            Some(object_type) => {
                out.ops.push(Op::DeleteObject {
                    object_type: object_type.clone(),
                    id: id.to_string(),
                    expected_rev: rev,
                });
            }
            None => match self.target_set.delete(id, rev.as_deref()).await {
                Ok(_) | Err(ConnectorError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            },
        }
        out.stats.time("deleteTargetObject", t.elapsed());
        Ok(())
    }

    /// Creates (or re-points) the link of this op: `onLink`, then the link record.
    fn write_link(
        &self,
        source: &Value,
        target: &Value,
        existing: Option<&Link>,
        op: &mut Op1<'_>,
        out: &mut ChunkOutput,
    ) -> EngineResult<()> {
        let (Some(sid), Some(tid)) = (op.source_id.clone(), op.target_id.clone()) else {
            return Ok(());
        };
        let t = Instant::now();
        self.mapping.on_link(Some(source), target, &self.hook(op))?;
        out.stats.time("onLinkScript", t.elapsed());
        let mut link = self.links.new_link(&op.qualifier, &sid, &tid);
        match existing {
            Some(l) => {
                link.id = l.id.clone();
                link.rev = l.rev.clone();
                out.ops.push(Op::UpdateLink {
                    link,
                    expected_rev: None,
                });
            }
            None => {
                out.ops.push(Op::CreateLink(link));
                op.link_created = true;
            }
        }
        Ok(())
    }

    fn plan(
        &self,
        op: &Op1<'_>,
        diff: Option<Vec<idsync_mapping::DiffEntry>>,
        out: &mut ChunkOutput,
    ) {
        if !self.opts.analyze {
            return;
        }
        let diff: Vec<Value> = diff
            .unwrap_or_default()
            .into_iter()
            .map(|d| serde_json::to_value(&d).unwrap_or(Value::Null))
            .collect();
        out.plan.push(PlanEntry {
            id: new_id(),
            run_id: self.run_id.clone(),
            entry: json!({
                "reconId": self.run_id,
                "phase": op.phase,
                "sourceId": op.source_id,
                "targetId": op.target_id,
                "linkQualifier": op.qualifier,
                "situation": op.situation.map(Situation::as_str),
                "action": op.action.map(Action::as_str),
                "ambiguousTargetIds": if op.ambiguous.is_empty() { Value::Null } else { json!(op.ambiguous) },
                "diff": diff,
            }),
        });
    }

    fn recon_id(&self) -> Option<&str> {
        match self.mode {
            CtxMode::Recon => Some(&self.run_id),
            CtxMode::Sync => None,
        }
    }

    /// Turns a finished op into statistics and its audit entry.
    pub(super) fn finish(&self, mut op: Op1<'_>, source_phase: bool, out: &mut ChunkOutput) {
        out.claimed.append(&mut op.claimed);
        if self.mode == CtxMode::Sync {
            self.finish_sync(op, out);
            return;
        }
        let failed = op.error.is_some();
        if let (Some(situation), Some(action)) = (op.situation, op.action) {
            out.stats.record(&OpOutcome {
                situation,
                action,
                had_source: op.source_id.is_some() && (source_phase || op.link_existed),
                had_target: op.had_target
                    || op.target_id.is_some() && op.target_effect != TargetEffect::None,
                link_existed: op.link_existed,
                link_created: op.link_created,
                target_effect: op.target_effect,
                failed,
            });
        } else {
            if let Some(s) = op.situation {
                out.stats.add(super::stats::keys::situation(s), 1);
            }
            out.stats.add(
                if failed {
                    super::stats::keys::STATUS_FAILURE
                } else {
                    super::stats::keys::STATUS_SUCCESS
                },
                1,
            );
            if source_phase {
                out.stats.add(super::stats::keys::SOURCE_PROCESSED, 1);
            }
        }
        if op.action == Some(Action::Noreport) && !failed {
            return;
        }
        let entry = json!({
            "entryType": "entry",
            "reconId": self.run_id,
            "mapping": self.mapping_name,
            "situation": op.situation.map(Situation::as_str),
            "action": op.action.map(Action::as_str),
            "sourceObjectId": qualified(&self.config.source_str, &op.source_id),
            "targetObjectId": qualified(&self.config.target_str, &op.target_id),
            "linkQualifier": op.qualifier,
            "status": if failed { "FAILURE" } else { "SUCCESS" },
            "message": op.error.clone().or(op.message.clone()),
            "messageDetail": Value::Null,
            "exception": op.error,
            "reconciling": op.phase,
            "ambiguousTargetObjectIds": if op.ambiguous.is_empty() { Value::Null } else { json!(op.ambiguous.join(", ")) },
            "reconAction": if self.opts.source_id.is_some() { "reconById" } else { "recon" },
        });
        out.ops.push(Op::AppendAudit(AuditEntry {
            id: new_id(),
            kind: AuditKind::Recon,
            timestamp: Utc::now(),
            recon_id: Some(self.run_id.clone()),
            mapping: Some(self.mapping_name.clone()),
            entry_type: Some("entry".into()),
            entry,
        }));
    }
}

/// Ids of a chunk's entries, and the entries when they are full objects.
pub fn entry_id(entry: &Value) -> Option<&str> {
    entry.get("_id").and_then(Value::as_str)
}
