//! One object's operation, per link qualifier, up to its action: gather the facts the decision
//! trees ask for (link, target existence, correlation), assess (pure), decide (pure); and the
//! source phase's two steps around the action — speculate (assess, decide and prepare without
//! writing) and apply a settled op (`settle.rs`). The action itself is `act.rs`, the accounting
//! `account.rs`, the values passed between them `op.rs`.

use super::ctx::{CtxMode, RunCtx};
use super::op::*;
use crate::error::{EngineError, EngineResult};
use idsync_mapping::{
    Assessment, CorrelationOutcome, Decision, DecisionContext, HookContext, LinkedSource,
    SourceFacts, SourceLink, TargetFacts, TargetState, assess_source, assess_target,
    is_full_object,
};
use idsync_repo::Link;
use serde_json::Value;
use std::sync::Arc;
use std::time::Instant;

impl RunCtx {
    pub(super) fn hook<'b>(&'b self, op: &'b Op1<'_>) -> HookContext<'b> {
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
                    op.error = Some(out.op_error(&EngineError::Connector(e.clone())));
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
                op.error = Some(out.op_error(&e));
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
                crate::failpoint_unavailable!("recon.object.unavailable");
                self.apply(intent, source.as_deref(), target, link, &mut op, out)
                    .await?;
                self.post_action(&decision, source.as_deref(), &op, true, out)
            }
            .await;
            match applied {
                Ok(()) if creates => created.clone_from(&op.target_id),
                Ok(()) => {}
                Err(e) => op.error = Some(out.op_error(&e)),
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
                op.error = Some(out.op_error(&e));
            }
            self.finish(op, false, out);
            if out.abort.is_some() {
                return;
            }
        }
    }

    pub(super) async fn target_op(
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
}
