//! The end of a recon op: its statistics and its recon audit entry (implicit sync's are in
//! `changed.rs`).

use super::ctx::{CtxMode, RunCtx};
use super::op::*;
use super::stats::{OpOutcome, TargetEffect};
use crate::managed_set::new_id;
use chrono::Utc;
use idsync_core::{Action, Situation};
use idsync_repo::{AuditEntry, AuditKind, Op};
use serde_json::{Value, json};

impl RunCtx {
    pub(super) fn recon_id(&self) -> Option<&str> {
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
