//! Implicit sync of one source object (reference §6.1, §2.4): the same assess → decide → act as
//! a recon's source phase, for a changed object (`notifyCreate`, `notifyUpdate`) or a deleted one
//! (`notifyDelete`, the delete branch), with one sync audit entry and one `/sync` result per
//! link qualifier. The caller commits the output's operations.

use super::object::{ChunkLookups, ChunkOutput, Op1, qualified};
use super::run_ctx::RunCtx;
use crate::error::EngineResult;
use crate::managed_set::new_id;
use chrono::Utc;
use idsync_core::{Action, ErrorCode, Situation};
use idsync_mapping::{
    CorrelationOutcome, DEFAULT_QUALIFIER, DeleteFacts, OldValueFacts, TargetState, assess_delete,
};
use idsync_repo::{AuditEntry, AuditKind, Op};
use serde_json::{Value, json};

impl RunCtx {
    /// `notifyCreate` / `notifyUpdate`: `new` is the object after the change, `old` before it.
    /// `look` holds what a batch looked up in advance (default: nothing, read as needed).
    pub async fn sync_changed(
        &self,
        engine: &crate::Engine,
        look: &ChunkLookups,
        source_id: &str,
        new: &Value,
        old: Option<&Value>,
        out: &mut ChunkOutput,
    ) {
        let qualifiers = match self.mapping.link_qualifiers(Some(new), old, false) {
            Ok(q) => q,
            Err(e) => {
                self.failed_before_start(source_id, e.to_string(), out);
                return;
            }
        };
        for q in &qualifiers {
            let mut op = Op1::new(q, "source");
            op.source_id = Some(source_id.to_string());
            op.old_source = old;
            if let Err(e) = self.source_op(engine, look, new, &mut op, out).await {
                op.fail(&e);
            }
            self.finish(op, true, out);
        }
    }

    /// `notifyDelete`: the source is gone; `old` is its last value when known.
    pub async fn sync_deleted(
        &self,
        engine: &crate::Engine,
        look: &ChunkLookups,
        source_id: &str,
        old: Option<&Value>,
        out: &mut ChunkOutput,
    ) {
        let qualifiers = match old {
            Some(o) => self.mapping.link_qualifiers(Some(o), None, false),
            None => Ok(self.all_qualifiers.clone()),
        };
        let qualifiers = match qualifiers {
            Ok(q) => q,
            Err(e) => {
                self.failed_before_start(source_id, e.to_string(), out);
                return;
            }
        };
        for q in &qualifiers {
            let mut op = Op1::new(q, "source");
            op.source_id = Some(source_id.to_string());
            op.old_source = old;
            if let Err(e) = self.delete_op(engine, look, old, &mut op, out).await {
                op.fail(&e);
            }
            self.finish(op, true, out);
        }
    }

    fn failed_before_start(&self, source_id: &str, error: String, out: &mut ChunkOutput) {
        let mut op = Op1::new(DEFAULT_QUALIFIER, "source");
        op.source_id = Some(source_id.to_string());
        op.error = Some(error);
        self.finish(op, true, out);
    }

    /// The delete branch (reference §2.4), then the decision and its action.
    async fn delete_op(
        &self,
        engine: &crate::Engine,
        look: &ChunkLookups,
        old: Option<&Value>,
        op: &mut Op1<'_>,
        out: &mut ChunkOutput,
    ) -> EngineResult<()> {
        let q = op.qualifier.clone();
        let q = q.as_str();
        let source_id = op.source_id.clone().unwrap_or_default();
        let link = self.source_link(&engine.repo, look, q, &source_id).await?;
        op.link_existed = link.is_some();
        let mut target = None;
        let facts = match &link {
            Some(l) => {
                let tid = self.links.target_id(l).to_string();
                target = self.read_target(look, &tid).await?;
                let state = match &target {
                    None => TargetState::Gone,
                    Some(t) if self.mapping.target_valid(t, q)? => TargetState::Valid,
                    Some(_) => TargetState::Invalid,
                };
                DeleteFacts::Linked {
                    target_id: tid,
                    target: state,
                }
            }
            None => match old {
                None => DeleteFacts::Unlinked { old_value: None },
                Some(old) => {
                    let valid_source = self.mapping.valid_source(old, q)?;
                    let mut reads = super::object::Reads::default();
                    let correlation =
                        match self.correlate(look, old, &source_id, q, &mut reads).await? {
                            None => CorrelationOutcome::Skipped,
                            Some((ids, _)) => match <[String; 1]>::try_from(ids) {
                                Ok([tid]) => {
                                    target = self.target_set.get(&tid).await?;
                                    CorrelationOutcome::One {
                                        target_id: tid,
                                        already_linked: false,
                                    }
                                }
                                Err(ids) if ids.is_empty() => CorrelationOutcome::None,
                                Err(ids) => CorrelationOutcome::Many(ids),
                            },
                        };
                    DeleteFacts::Unlinked {
                        old_value: Some(OldValueFacts {
                            valid_source,
                            correlation,
                        }),
                    }
                }
            },
        };
        let assessment = assess_delete(&facts);
        op.situation = Some(assessment.situation);
        op.target_id = assessment.target_id.clone();
        op.ambiguous = assessment.ambiguous_target_ids.clone();
        op.had_target = target.is_some();
        self.decide_and_act(None, target, link, op, out, true).await
    }

    /// Sync mode's end of an operation: the `audit/sync` entry (written for every decision,
    /// whatever the action) and the `/sync` result.
    pub(super) fn finish_sync(&self, op: Op1<'_>, out: &mut ChunkOutput) {
        let failed = op.error.is_some();
        let situation = op.situation.map(Situation::as_str);
        let action = op.action.map(Action::as_str);
        let ambiguous = if op.ambiguous.is_empty() {
            Value::Null
        } else {
            json!(op.ambiguous)
        };
        let entry = json!({
            "eventName": "sync",
            "mapping": self.mapping_name,
            "situation": situation,
            "action": action,
            "sourceObjectId": qualified(&self.config.source_str, &op.source_id),
            "targetObjectId": qualified(&self.config.target_str, &op.target_id),
            "linkQualifier": op.qualifier,
            "status": if failed { "FAILURE" } else { "SUCCESS" },
            "message": op.error.clone().or(op.message.clone()),
            "messageDetail": Value::Null,
            "exception": op.error,
        });
        out.ops.push(Op::AppendAudit(AuditEntry {
            id: new_id(),
            kind: AuditKind::Sync,
            timestamp: Utc::now(),
            recon_id: None,
            mapping: Some(self.mapping_name.clone()),
            entry_type: None,
            entry,
        }));
        let mut result = json!({
            "reconId": Value::Null,
            "mapping": self.mapping_name,
            "situation": situation,
            "action": action,
            "sourceId": op.source_id,
            "linkQualifier": op.qualifier,
            "targetId": op.target_id,
            "ambiguousTargetIds": ambiguous,
            "oldTargetValue": op.old_target,
            "result": if failed { "FAILED" } else { "SUCCESSFUL" },
            "targetObjectSet": self.config.target_str,
        });
        if let (Some(e), Some(m)) = (&op.error, result.as_object_mut()) {
            let code = op.error_code.unwrap_or(ErrorCode::Internal);
            m.insert(
                "cause".into(),
                json!({ "message": e, "code": code.http_status(), "reason": code.reason() }),
            );
        }
        out.sync_results.push(result);
    }
}

/// `POST sync?_action=performAction` (reference §3.8): an explicit action without assessment.
#[derive(Debug, Clone, PartialEq)]
pub struct ExplicitAction {
    pub action: Action,
    pub source_id: Option<String>,
    pub target_id: Option<String>,
    pub link_qualifier: String,
    /// When given, the situation is assessed again first and the action refused if it changed.
    pub situation: Option<Situation>,
    /// A target-side operation (IDM's `target` parameter): the situation is the target phase's.
    pub target_side: bool,
}

impl RunCtx {
    /// Performs an explicit action on one source/target pair, with its hooks and link handling
    /// and a sync audit entry; no situation is assessed and no `postAction` runs.
    pub async fn perform(
        &self,
        engine: &crate::Engine,
        req: &ExplicitAction,
        out: &mut ChunkOutput,
    ) {
        let mut op = Op1::new(&req.link_qualifier, "source");
        op.source_id.clone_from(&req.source_id);
        op.target_id.clone_from(&req.target_id);
        op.action = Some(req.action);
        let result: EngineResult<()> = async {
            let source = match &req.source_id {
                Some(id) => Some(self.source_set.get(id).await?.ok_or_else(|| {
                    crate::EngineError::NotFound(format!(
                        "{}/{id} not found",
                        self.config.source_str
                    ))
                })?),
                None => None,
            };
            let target = match &req.target_id {
                Some(id) => self.target_set.get(id).await?,
                None => None,
            };
            let link = match (&req.source_id, &req.target_id) {
                _ if !self.config.enable_linking => None,
                (Some(sid), _) => {
                    self.links
                        .by_source(&engine.repo, &req.link_qualifier, sid)
                        .await?
                }
                (None, Some(tid)) => {
                    self.links
                        .by_target(&engine.repo, &req.link_qualifier, tid)
                        .await?
                }
                (None, None) => None,
            };
            if let Some(expected) = req.situation {
                self.check_situation(engine, req, source.as_ref(), expected)
                    .await?;
            }
            if op.target_id.is_none()
                && let Some(l) = &link
            {
                op.target_id = Some(self.links.target_id(l).to_string());
            }
            op.link_existed = link.is_some();
            op.had_target = target.is_some();
            if self.mode == super::run_ctx::CtxMode::Sync {
                op.old_target.clone_from(&target);
            }
            self.act(req.action, source.as_ref(), target, link, &mut op, out)
                .await
        }
        .await;
        if let Err(e) = result {
            op.fail(&e);
        }
        self.finish(op, true, out);
    }

    /// Assesses the pair again (source or target side) and fails when the situation is no
    /// longer `expected` (reference §3.8).
    async fn check_situation(
        &self,
        engine: &crate::Engine,
        req: &ExplicitAction,
        source: Option<&Value>,
        expected: Situation,
    ) -> EngineResult<()> {
        let mut scratch = Op1::new(&req.link_qualifier, "source");
        scratch.source_id.clone_from(&req.source_id);
        scratch.target_id.clone_from(&req.target_id);
        let mut ignored = ChunkOutput::default();
        match (req.target_side, source) {
            (true, _) => {
                self.assess_target_op(engine, None, &mut scratch).await?;
            }
            (false, Some(source)) => {
                self.assess_source_op(
                    engine,
                    &ChunkLookups::default(),
                    source,
                    &mut scratch,
                    &mut ignored,
                )
                .await?;
            }
            (false, None) => {
                return Err(crate::EngineError::BadRequest(
                    "a situation to re-check on the source side needs sourceId".into(),
                ));
            }
        }
        match scratch.situation {
            Some(now) if now == expected => Ok(()),
            now => Err(crate::EngineError::Conflict(format!(
                "the situation changed: expected {expected}, now {}",
                now.map_or("none", Situation::as_str)
            ))),
        }
    }
}
