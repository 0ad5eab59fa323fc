//! The end of a run: its finish job (wait for outstanding jobs, the `result` script, the
//! summary, the final stage and audit entry) and how a failure ends a run.

use super::{complete, complete_only, finish_job, outstanding, recheck_later, schedule, set_stage};
use crate::Engine;
use crate::error::EngineResult;
use crate::managed_set::new_id;
use crate::pipeline::stats::keys;
use crate::recon::summary::{RunCounters, SummaryHead, build_summary, summary_message};
use chrono::Utc;
use idsync_core::ReconStage;
use idsync_repo::{AuditEntry, AuditKind, ChangeSet, ClaimedJob, Op, RunRecord, RunUpdate};
use serde_json::{Value, json};
use std::sync::Arc;

/// Records why a run failed and schedules its finish.
pub async fn fail_run(engine: &Engine, run_id: &str, message: &str) -> EngineResult<()> {
    let run = engine.repo.get_run(run_id).await?;
    if let Some(run) = run {
        if run.stage.is_completed() {
            return Ok(());
        }
        if run.message.is_none() {
            engine
                .repo
                .update_run(
                    run_id,
                    &RunUpdate {
                        message: Some(message.to_string()),
                        ..Default::default()
                    },
                )
                .await?;
        }
    }
    schedule(engine, None, finish_job(run_id)).await
}

pub(super) async fn finish(
    engine: &Arc<Engine>,
    job: &ClaimedJob,
    run_id: &str,
) -> EngineResult<()> {
    let Some(run) = engine.repo.get_run(run_id).await? else {
        return complete_only(engine, job, run_id).await;
    };
    if run.stage.is_completed() {
        return complete_only(engine, job, run_id).await;
    }
    let (pages, target) = outstanding(engine, run_id).await?;
    if pages > 0 || target > 0 {
        // Pages of a canceled or failed run are still finishing (or waiting to be claimed and
        // dropped): look again shortly.
        return recheck_later(engine, job).await;
    }
    set_stage(engine, &run, ReconStage::ActiveProcessingResults).await?;
    let counters = engine.repo.run_counters(run_id).await?;
    let counters = RunCounters {
        by_node: counters.by_node,
    };
    let mut message = run.message.clone();
    let ended = Utc::now();
    // The result script runs on every path: success, failure and cancel (docs/configuration.md#mappings).
    if let Ok(ctx) = engine.run_ctx(&run).await {
        let stats = result_stats(&run, &counters, ended);
        if let Err(e) = ctx.mapping.result(&stats) {
            message.get_or_insert_with(|| format!("result script failed: {e}"));
        }
    }
    let stage = if run.cancel_requested {
        ReconStage::CompletedCanceled
    } else if message.is_some() {
        ReconStage::CompletedFailed
    } else {
        ReconStage::CompletedSuccess
    };
    let head = SummaryHead {
        id: &run.id,
        mapping: &run.mapping,
        stage,
        analyze: run.analyze,
        started: Some(run.started),
        ended: Some(ended),
        parameters: &run.parameters,
        message: message.as_deref(),
    };
    let summary = build_summary(&head, &counters, ended);
    let update = RunUpdate {
        state: Some(stage.state()),
        stage: Some(stage),
        ended: Some(ended),
        message: message.clone(),
        summary: Some(summary.clone()),
        totals: None,
    };
    let audit = AuditEntry {
        id: new_id(),
        kind: AuditKind::Recon,
        timestamp: ended,
        recon_id: Some(run.id.clone()),
        mapping: Some(run.mapping.clone()),
        entry_type: Some("summary".into()),
        entry: json!({
            "entryType": "summary",
            "reconId": run.id,
            "mapping": run.mapping,
            "status": if stage == ReconStage::CompletedSuccess { "SUCCESS" } else { "FAILURE" },
            "message": summary_message(&counters),
            "messageDetail": summary,
        }),
    };
    let cs = ChangeSet::fenced(&job.job.id, job.token)
        .with(Op::AppendAudit(audit))
        .with(complete(job));
    engine.repo.commit(cs).await?;
    engine.repo.update_run(run_id, &update).await?;
    engine.repo.delete_registry(run_id).await?;
    engine.repo.prune_runs(&run.mapping, 100).await?;
    engine.forget_run(run_id);
    tracing::info!(
        run = run_id,
        state = stage.state().as_str(),
        "reconciliation finished"
    );
    Ok(())
}

/// The maps the `result` script receives (docs/rest.md#reconciliation), from the committed counters.
fn result_stats(run: &RunRecord, c: &RunCounters, ended: chrono::DateTime<Utc>) -> Value {
    let situations: serde_json::Map<String, Value> = idsync_core::Situation::ALL
        .iter()
        .map(|s| {
            (
                s.as_str().to_string(),
                json!({"count": c.total(&keys::situation(*s)), "ids": []}),
            )
        })
        .collect();
    json!({
        "global": {
            "startTime": crate::recon::summary::iso(run.started),
            "endTime": crate::recon::summary::iso(ended),
            "duration": (ended - run.started).num_milliseconds(),
            "reconId": run.id,
            "mappingName": run.mapping,
        },
        "source": {"name": "source", "processed": c.total(keys::SOURCE_PROCESSED), "entries": situations},
        "target": {"name": "target", "processed": c.total(keys::TARGET_PROCESSED)},
    })
}
