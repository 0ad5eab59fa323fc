//! Implicit sync of one source object (docs/ARCHITECTURE.md#one-managed-object-change-through-implicit-and-queued-sync, docs/configuration.md#mappings): the same assess → decide → act as
//! a recon's source phase, for a changed object (`notifyCreate`, `notifyUpdate`) or a deleted one
//! (`notifyDelete`, the delete branch), with one sync audit entry and one `/sync` result per
//! link qualifier. The caller commits the output's operations.

use super::ctx::RunCtx;
use super::op::{ChunkLookups, ChunkOutput, Op1, qualified};
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

    /// The delete branch (docs/configuration.md#mappings), then the decision and its action.
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
                    let mut reads = super::op::Reads::default();
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
