//! The end of a recon op: its statistics and its recon audit entry (implicit sync's are in
//! `changed.rs`).

use super::ctx::{CtxMode, RunCtx};
use super::op::*;
use super::stats::{OpOutcome, TargetEffect};
use crate::managed_set::new_id;
use chrono::Utc;
use idsync_core::{Action, Situation};
use idsync_repo::{AuditEntry, AuditKind, Op};
use serde_json::{Map, Value, json};

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
        // One entry per object: built at its final size (the `json!` macro grows the map three
        // times), in the key order the narrow row expects (idsync_repo::recon_entry::FIELDS).
        let text = |s: Option<&str>| s.map_or(Value::Null, |s| Value::String(s.to_owned()));
        let mut entry = Map::with_capacity(16);
        entry.insert("entryType".into(), "entry".into());
        entry.insert("reconId".into(), self.run_id.clone().into());
        entry.insert("mapping".into(), self.mapping_name.clone().into());
        entry.insert(
            "situation".into(),
            text(op.situation.map(Situation::as_str)),
        );
        entry.insert("action".into(), text(op.action.map(Action::as_str)));
        entry.insert(
            "sourceObjectId".into(),
            json!(qualified(&self.config.source_str, &op.source_id)),
        );
        entry.insert(
            "targetObjectId".into(),
            json!(qualified(&self.config.target_str, &op.target_id)),
        );
        entry.insert("linkQualifier".into(), json!(op.qualifier));
        entry.insert(
            "status".into(),
            (if failed { "FAILURE" } else { "SUCCESS" }).into(),
        );
        entry.insert(
            "message".into(),
            json!(op.error.clone().or(op.message.clone())),
        );
        entry.insert("messageDetail".into(), Value::Null);
        entry.insert("exception".into(), json!(op.error));
        entry.insert("reconciling".into(), json!(op.phase));
        entry.insert(
            "ambiguousTargetObjectIds".into(),
            if op.ambiguous.is_empty() {
                Value::Null
            } else {
                op.ambiguous.join(", ").into()
            },
        );
        entry.insert(
            "reconAction".into(),
            (if self.opts.source_id.is_some() {
                "reconById"
            } else {
                "recon"
            })
            .into(),
        );
        let entry = Value::Object(entry);
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
