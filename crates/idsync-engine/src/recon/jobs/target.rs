//! The target phase's job: the target ids no source claimed, reconciled in chunks (from the
//! run's target snapshot, or queried per chunk when the run is clustered).

use super::{
    CHUNK, commit_chunk, complete, complete_only, fail_run, finish_job, retry_unavailable,
    schedule, set_stage, track, track_op,
};
use crate::Engine;
use crate::error::EngineResult;
use crate::pipeline::lookups::Item;
use crate::pipeline::op::ChunkOutput;
use crate::pipeline::stats::StatsDelta;
use crate::recon::page::process;
use idsync_core::ReconStage;
use idsync_repo::ClaimedJob;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;

pub(super) async fn target_phase(
    engine: &Arc<Engine>,
    job: &ClaimedJob,
    run_id: &str,
) -> EngineResult<()> {
    let Some(run) = engine.repo.get_run(run_id).await? else {
        return complete_only(engine, job, run_id).await;
    };
    if run.stage.is_completed() || run.cancel_requested {
        complete_only(engine, job, run_id).await?;
        return schedule(engine, None, finish_job(run_id)).await;
    }
    set_stage(engine, &run, ReconStage::ActiveReconcilingTarget).await?;
    let mut chunk_started = std::time::Instant::now();
    let ctx = engine.run_ctx(&run).await?;
    // Every source page has committed: the guard counts what the whole cluster did.
    ctx.guard.reseed(&engine.repo, run_id).await?;
    // The target ids: the run's snapshot, or (clustered) a fresh target query.
    let mut batch: Vec<(String, Option<Value>)> = Vec::new();
    let mut stopped = false;
    let flush = |batch: Vec<(String, Option<Value>)>| {
        let engine = engine.clone();
        let ctx = ctx.clone();
        async move {
            let ids: Vec<String> = batch
                .iter()
                .map(|(i, _)| ctx.links.norm_target(i))
                .collect();
            let unclaimed: HashSet<String> = engine
                .repo
                .unclaimed_target_ids(&ctx.run_id, &ids)
                .await?
                .into_iter()
                .collect();
            let items: Vec<Item> = batch
                .into_iter()
                .filter(|(i, _)| unclaimed.contains(&ctx.links.norm_target(i)))
                .map(|(id, entry)| Item::Target { id, entry })
                .collect();
            let mut out = process(&engine, &ctx, items, None).await?;
            retry_unavailable(job, &out)?;
            // The chunk's ids join the run's registry in the chunk's commit: a re-run of this
            // job (its node died mid-phase) skips them, so every target is counted once.
            if !unclaimed.is_empty() {
                out.ops.push(idsync_repo::Op::RegisterTargetIds {
                    run_id: ctx.run_id.clone(),
                    ids: unclaimed.into_iter().collect(),
                });
            }
            Ok::<_, crate::EngineError>(out)
        }
    };
    let mut t_total = StatsDelta::default();
    match ctx.target_snapshot.as_ref() {
        Some(snap) => {
            for id in &snap.ids {
                let entry = snap.values.as_ref().and_then(|v| v.get(id)).cloned();
                batch.push((id.clone(), entry));
                if batch.len() >= CHUNK {
                    let out = flush(std::mem::take(&mut batch)).await?;
                    stopped = out.abort.is_some() || ctx.is_canceled();
                    let aborted = commit_chunk(
                        engine,
                        job,
                        &ctx,
                        out,
                        std::mem::take(&mut t_total),
                        vec![],
                        chunk_started,
                    )
                    .await?;
                    chunk_started = std::time::Instant::now();
                    if let Some(msg) = aborted {
                        complete_only(engine, job, run_id).await?;
                        return fail_run(engine, run_id, &msg).await;
                    }
                    if stopped {
                        break;
                    }
                }
            }
        }
        None => {
            let mut req = ctx.eff.target.request.clone();
            req.page_size = Some(ctx.eff.target_page_size.unwrap_or(CHUNK));
            loop {
                let t = std::time::Instant::now();
                let page = ctx.target_set.query(&req).await?;
                t_total.time("targetQuery", t.elapsed());
                for e in page.results {
                    if let Some(id) = e.get("_id").and_then(Value::as_str) {
                        let full = crate::recon::effective::looks_full(&e);
                        batch.push((id.to_string(), full.then_some(e.clone())));
                    }
                }
                if batch.len() >= CHUNK || page.cookie.is_none() {
                    let out = flush(std::mem::take(&mut batch)).await?;
                    stopped = out.abort.is_some() || ctx.is_canceled();
                    let aborted = commit_chunk(
                        engine,
                        job,
                        &ctx,
                        out,
                        std::mem::take(&mut t_total),
                        vec![],
                        chunk_started,
                    )
                    .await?;
                    chunk_started = std::time::Instant::now();
                    if let Some(msg) = aborted {
                        complete_only(engine, job, run_id).await?;
                        return fail_run(engine, run_id, &msg).await;
                    }
                }
                match page.cookie {
                    Some(c) if !stopped => req.cookie = Some(c),
                    _ => break,
                }
            }
        }
    }
    let out = if stopped {
        ChunkOutput::default()
    } else {
        flush(std::mem::take(&mut batch)).await?
    };
    let tail = vec![
        complete(job),
        track_op(run_id, &engine.node_id, track::TARGET_DONE),
    ];
    let abort = commit_chunk(engine, job, &ctx, out, t_total, tail, chunk_started).await?;
    if let Some(msg) = abort {
        return fail_run(engine, run_id, &msg).await;
    }
    schedule(engine, None, finish_job(run_id)).await?;
    Ok(())
}
