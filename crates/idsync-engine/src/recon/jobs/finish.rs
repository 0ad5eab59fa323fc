//! The end of a run: its finish job (wait for outstanding jobs, the `result` script, the
//! summary, the final stage and audit entry) and how a failure ends a run.

use super::{complete, complete_only, finish_job, outstanding, recheck_later, schedule, set_stage};
use crate::Engine;
use crate::error::EngineResult;
use crate::managed_set::new_id;
use crate::pipeline::stats::keys;
use crate::recon::summary::{RunCounters, SummaryHead, build_summary, summary_message};
use chrono::{DateTime, Utc};
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
    let update = end_update(&run, stage, message, &counters, ended);
    let summary = update.summary.clone().unwrap_or_default();
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
    // The job's completion and the run's end are one fenced commit: a crash or a database
    // error cannot leave a done finish job beside an ACTIVE run (which would refuse every later
    // start of the mapping).
    crate::failpoint!("recon.finish.before_end");
    let cs = ChangeSet::fenced(&job.job.id, job.token)
        .with(Op::AppendAudit(audit))
        .with(Op::UpdateRun {
            run_id: run_id.to_string(),
            update,
        })
        .with(complete(job));
    engine.repo.commit(cs).await?;
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

/// The message of a run ended by [`end_if_orphaned`] when its finish job left it ACTIVE.
pub const ORPHANED_MESSAGE: &str = "the run's finish job ended without recording the run's end; the run was ended by the cluster monitor";

/// Ends a run that has no job left to end it, and returns whether it acted. A run whose chain
/// of jobs broke (a crash or a database error between a job's completion and the scheduling of
/// its successor, or a finish job that failed) would otherwise stay ACTIVE forever and refuse
/// every later start of its mapping. The cluster monitor calls this for every ACTIVE run, and
/// cancel for the run it cancels.
///
/// A run that never got its first page is a start in progress (or one whose node died, which
/// the monitor's down detection completes) and is left alone. Otherwise, with no PENDING or
/// CLAIMED job: without a finish job, one is scheduled (a deterministic id, so a job racing to
/// schedule it too is harmless); with a finish job already done, the run is ended here —
/// CANCELED when a cancel was requested, else FAILED with its message (or
/// [`ORPHANED_MESSAGE`]).
pub async fn end_if_orphaned(engine: &Engine, run_id: &str) -> EngineResult<bool> {
    let active = |r: &Option<RunRecord>| r.as_ref().is_some_and(|r| !r.stage.is_completed());
    if !active(&engine.repo.get_run(run_id).await?) || engine.repo.count_jobs(run_id).await? > 0 {
        return Ok(false);
    }
    let first = super::source_job(run_id, 1, None);
    if !engine.repo.job_exists(&first.id).await? {
        return Ok(false);
    }
    let finish = finish_job(run_id);
    if !engine.repo.job_exists(&finish.id).await? {
        tracing::warn!(
            run = run_id,
            "an ACTIVE run had no job left: scheduling its finish"
        );
        schedule(engine, None, finish).await?;
        return Ok(true);
    }
    // Read after the finish job: a finish commits its completion with the run's end, so a run
    // still ACTIVE now was left so by a finish that failed (or by a version that committed the
    // two apart).
    let run = engine.repo.get_run(run_id).await?;
    let Some(run) = run.filter(|r| !r.stage.is_completed()) else {
        return Ok(false);
    };
    let stage = if run.cancel_requested {
        ReconStage::CompletedCanceled
    } else {
        ReconStage::CompletedFailed
    };
    let message = match (&run.message, stage) {
        (Some(m), _) => Some(m.clone()),
        (None, ReconStage::CompletedFailed) => Some(ORPHANED_MESSAGE.to_string()),
        (None, _) => None,
    };
    let counters = RunCounters {
        by_node: engine.repo.run_counters(run_id).await?.by_node,
    };
    let update = end_update(&run, stage, message, &counters, Utc::now());
    engine.repo.update_run(run_id, &update).await?;
    engine.forget_run(run_id);
    tracing::warn!(
        run = run_id,
        state = stage.state().as_str(),
        "an ACTIVE run whose finish job was done has been ended"
    );
    Ok(true)
}

/// The run record's end: its final stage, end time, message and summary.
fn end_update(
    run: &RunRecord,
    stage: ReconStage,
    message: Option<String>,
    counters: &RunCounters,
    ended: DateTime<Utc>,
) -> RunUpdate {
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
    RunUpdate {
        state: Some(stage.state()),
        stage: Some(stage),
        ended: Some(ended),
        summary: Some(build_summary(&head, counters, ended)),
        message,
        totals: None,
    }
}
