//! One object's reconciliation, per link qualifier: gather the facts the decision trees ask for
//! (link, target existence, correlation), assess (pure), decide (pure), act. Writes to a managed
//! target and every link, audit, plan and registry write become operations of the page's change
//! set; writes to a connected system go out at once (they cannot join a database transaction).
//!
//! Hook order for a first-time CREATE (reference §2.6): properties → onCreate → target create →
//! onLink → link create → postAction.

use super::ctx::{CtxMode, RunCtx};
use super::stats::{OpOutcome, StatsDelta, TargetEffect};
use crate::error::{EngineError, EngineResult};
use crate::managed_set::new_id;
use chrono::Utc;
use idsync_connectors::ConnectorError;
use idsync_core::{Action, Situation};
use idsync_mapping::{
    Assessment, CorrelationOutcome, DecisionContext, HookContext, LinkedSource, SourceFacts,
    SourceLink, TargetFacts, TargetState, assess_source, assess_target, is_full_object,
};
use idsync_repo::{AuditEntry, AuditKind, Link, Op, PlanEntry};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
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
    /// Sync mode: one result per operation, in the `/sync` response shape (reference §3.8).
    pub sync_results: Vec<Value>,
}

impl ChunkOutput {
    pub fn merge(&mut self, other: ChunkOutput) {
        self.ops.extend(other.ops);
        self.plan.extend(other.plan);
        self.claimed.extend(other.claimed);
        self.stats.merge(other.stats);
        self.sync_results.extend(other.sync_results);
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
    /// Correlations run for the whole chunk at once, by (qualifier, normalised source id).
    pub correlated: HashMap<(String, String), Candidates>,
    /// Correlation requests evaluated for the chunk but not batched (scripts' candidates,
    /// filters without an equality to index on), so that no script runs twice.
    pub correlations: HashMap<(String, String), idsync_mapping::Correlation>,
    /// The links of the batched correlations' single candidates, read in one call.
    pub candidate_links: Option<CandidateLinks>,
    /// How long the chunk's batched correlation took.
    pub correlation_time: std::time::Duration,
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
    pub(super) qualifier: &'a str,
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
}

impl<'a> Op1<'a> {
    pub(super) fn new(qualifier: &'a str, phase: &'static str) -> Self {
        Self {
            qualifier,
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
            link_qualifier: op.qualifier,
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

    /// Reads a target: the run's snapshot, the chunk's batch, or one read.
    pub(super) async fn read_target(
        &self,
        look: &ChunkLookups,
        id: &str,
    ) -> EngineResult<Option<Value>> {
        let norm = self.links.norm_target(id);
        if let Some(values) = self
            .target_snapshot
            .as_ref()
            .and_then(|s| s.values.as_ref())
        {
            return Ok(values.get(&norm).cloned());
        }
        if let Some(snap) = &self.target_snapshot
            && !snap.ids.contains(&norm)
        {
            return Ok(None);
        }
        if let Some(v) = look.targets.get(&norm) {
            return Ok(Some(v.clone()));
        }
        Ok(self.target_set.get(id).await?)
    }

    /// The source phase for one source object (every qualifier). `source` is the preloaded
    /// entry when the source query returned full objects.
    pub async fn reconcile_source(
        &self,
        engine: &crate::Engine,
        look: &ChunkLookups,
        source_id: &str,
        preloaded: Option<Value>,
        out: &mut ChunkOutput,
    ) {
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
                self.finish(op, true, out);
                return;
            }
        };
        for q in &qualifiers {
            let mut op = Op1::new(q, "source");
            op.source_id = Some(source_id.to_string());
            let result = match &source {
                Ok(Some(s)) => self.source_op(engine, look, s, &mut op, out).await,
                Ok(None) => Err(EngineError::NotFound(format!(
                    "source {}/{source_id} disappeared during the run",
                    self.config.source_str
                ))),
                Err(e) => Err(EngineError::Connector(e.clone())),
            };
            if let Err(e) = result {
                op.error = Some(e.to_string());
            }
            self.finish(op, true, out);
            if out.abort.is_some() {
                return;
            }
        }
    }

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
        let q = op.qualifier;
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
                target = self.read_target(look, &tid).await?;
                SourceLink::Linked {
                    target_id: tid,
                    target_exists: target.is_some(),
                }
            }
            None => {
                let t = Instant::now();
                let corr = self.correlate(look, source, &source_id, q).await?;
                out.stats.time("correlationQuery", t.elapsed());
                match corr {
                    None => SourceLink::Unlinked(CorrelationOutcome::Skipped),
                    Some((ids, mut values)) => {
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
        out.claimed.extend(
            assessment
                .claimed_target_ids()
                .into_iter()
                .map(str::to_string),
        );
        Ok((target, link))
    }

    /// The target phase for one unclaimed target id, every qualifier (reference §2.3).
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
        let q = op.qualifier;
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

    pub(super) async fn decide_and_act(
        &self,
        source: Option<&Value>,
        target: Option<Value>,
        link: Option<Link>,
        op: &mut Op1<'_>,
        out: &mut ChunkOutput,
        source_action: bool,
    ) -> EngineResult<()> {
        let situation = op
            .situation
            .ok_or_else(|| EngineError::Internal("no situation".into()))?;
        let t = Instant::now();
        let decision = self.mapping.decide(
            situation,
            &DecisionContext {
                source,
                target: target.as_ref(),
                link_qualifier: op.qualifier,
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
            op.old_target.clone_from(&target);
        }
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
        let ctx = DecisionContext {
            source,
            target: None,
            link_qualifier: op.qualifier,
            source_action,
            recon_id: self.recon_id(),
            source_id: op.source_id.as_deref(),
            target_id: op.target_id.as_deref(),
            ambiguous_target_ids: &op.ambiguous,
        };
        if !self.opts.analyze {
            let t = Instant::now();
            if self.mapping.post_action(&decision, &ctx)? {
                out.stats.time("activePolicyPostActionScript", t.elapsed());
            }
        }
        Ok(())
    }

    /// Performs an action (reference §2.6). In a dry run, records what would happen instead.
    pub(super) async fn act(
        &self,
        action: Action,
        source: Option<&Value>,
        target: Option<Value>,
        link: Option<Link>,
        op: &mut Op1<'_>,
        out: &mut ChunkOutput,
    ) -> EngineResult<()> {
        let analyze = self.opts.analyze;
        match action {
            Action::Create => {
                let source = source
                    .ok_or_else(|| EngineError::Conflict("CREATE needs a source object".into()))?;
                if target.is_some() {
                    return Err(EngineError::Conflict("target object already exists".into()));
                }
                let t = Instant::now();
                let mut new_target = self.mapping.prepare_create(source, &self.hook(op))?;
                out.stats.time("onCreateScript", t.elapsed());
                if analyze {
                    let diff = idsync_mapping::diff(&Value::Null, &new_target);
                    self.plan(op, Some(diff), out);
                    op.target_effect = TargetEffect::Created;
                    return Ok(());
                }
                let id = self.create_target(&mut new_target, out).await?;
                op.target_id = Some(id.clone());
                op.target_effect = TargetEffect::Created;
                out.claimed.push(id.clone());
                if self.config.enable_linking {
                    self.write_link(source, &new_target, link.as_ref(), op, out)?;
                }
            }
            Action::Update | Action::Link => {
                let tid = op
                    .target_id
                    .clone()
                    .ok_or_else(|| EngineError::Conflict(format!("{action} needs a target id")))?;
                let Some(current) = target else {
                    // IDM: UPDATE with a link but no target object does nothing and does not
                    // fail (ObjectMappingTest.testUpdateActionWithNullTargetObject).
                    self.plan(op, None, out);
                    return Ok(());
                };
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
                    if plan.changed && !analyze {
                        self.update_target(&tid, &current, plan.new_target, out)
                            .await?;
                    }
                    diff_out = Some(plan.diff);
                }
                if analyze {
                    self.plan(op, diff_out, out);
                    return Ok(());
                }
                let linked_here = link.as_ref().is_some_and(|l| {
                    self.links.norm_target(self.links.target_id(l)) == self.links.norm_target(&tid)
                });
                if self.config.enable_linking
                    && !linked_here
                    && let Some(s) = source
                {
                    self.write_link(s, &current, link.as_ref(), op, out)?;
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
                    return Ok(());
                }
                if let (Some(t), Some(tid)) = (&target, op.target_id.clone()) {
                    let tm = Instant::now();
                    self.mapping.on_delete(source, t, &self.hook(op))?;
                    out.stats.time("onDeleteScript", tm.elapsed());
                    self.delete_target(&tid, t, out).await?;
                    op.target_effect = TargetEffect::Deleted;
                }
                if let Some(l) = link {
                    let null = Value::Null;
                    self.mapping.on_unlink(
                        source,
                        target.as_ref().unwrap_or(&null),
                        &self.hook(op),
                    )?;
                    out.ops.push(Op::DeleteLink {
                        id: l.id,
                        expected_rev: None,
                    });
                }
            }
            Action::Unlink => {
                if analyze {
                    self.plan(op, None, out);
                    return Ok(());
                }
                if let Some(l) = link {
                    let null = Value::Null;
                    self.mapping.on_unlink(
                        source,
                        target.as_ref().unwrap_or(&null),
                        &self.hook(op),
                    )?;
                    out.ops.push(Op::DeleteLink {
                        id: l.id,
                        expected_rev: None,
                    });
                }
            }
            Action::Exception => {
                let message = format!(
                    "Situation {} marked as EXCEPTION",
                    op.situation.map_or("?", Situation::as_str)
                );
                // Implicit sync rethrows it: the mapping fails and later ones are skipped
                // (reference §2.6); a recon keeps SUCCESS with the message.
                if self.mode == CtxMode::Sync {
                    return Err(EngineError::Conflict(message));
                }
                op.message = Some(message);
                if analyze {
                    self.plan(op, None, out);
                }
            }
            Action::Ignore | Action::Report | Action::Noreport | Action::Async => {
                if analyze {
                    self.plan(op, None, out);
                }
            }
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
        let mut link = self.links.new_link(op.qualifier, &sid, &tid);
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
    pub(super) fn finish(&self, op: Op1<'_>, source_phase: bool, out: &mut ChunkOutput) {
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
