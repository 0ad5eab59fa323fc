//! The source phase's jobs: a source page (query, reconcile, commit, schedule the next page),
//! the run's totals counted by the first page, and the completion check that starts the target
//! phase once every page is done.

use super::{
    CHUNK, KIND_SOURCE_DONE, KIND_TARGET, PAGES_DONE_KEY, chunk_done_op, chunks_done, commit_chunk,
    commit_tolerating_existing, complete, complete_only, fail_run, finish_job, outstanding,
    recheck_later, schedule, schedule_ops, schedule_page_ops, set_stage, singleton_job, track,
    track_op,
};
use crate::Engine;
use crate::error::EngineResult;
use crate::pipeline::ctx::RunCtx;
use crate::pipeline::lookups::Item;
use crate::pipeline::op::ChunkOutput;
use crate::pipeline::stats::{StatsDelta, keys};
use crate::recon::page::process;
use idsync_core::ReconStage;
use idsync_repo::{ChangeSet, ClaimedJob, Op, RunUpdate};
use serde_json::{Value, json};
use std::sync::Arc;

pub(super) async fn source_page(
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
    let mut chunk_started = std::time::Instant::now();
    let ctx = engine.run_ctx(&run).await?;
    let page_no = job
        .job
        .payload
        .get("page")
        .and_then(Value::as_u64)
        .unwrap_or(1);
    let cookie = job
        .job
        .payload
        .get("cookie")
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut extra = StatsDelta::default();
    // Chunks an earlier attempt of this page committed (an unpaged source commits per chunk):
    // their objects and the run's totals are counted already.
    let resumed = chunks_done(engine, job, run_id).await?;
    if page_no == 1 && resumed == 0 {
        set_stage(engine, &run, ReconStage::ActiveQueryEntries).await?;
        first_page_totals(&ctx, &mut extra).await?;
    }
    // Query this page.
    let t = std::time::Instant::now();
    let (entries, next_cookie) = match &ctx.opts.source_id {
        Some(id) => {
            let e = ctx.source_set.get(id).await?;
            (vec![e.unwrap_or_else(|| json!({"_id": id}))], None)
        }
        None => {
            let mut req = ctx.eff.source.request.clone();
            req.page_size = ctx.eff.source_page_size;
            req.cookie = cookie;
            let page = ctx.source_set.query(&req).await?;
            let next = if ctx.eff.source_page_size.is_some() {
                page.cookie
            } else {
                None
            };
            (page.results, next)
        }
    };
    extra.time("sourceQuery", t.elapsed());
    if page_no == 1 && entries.is_empty() && !ctx.eff.allow_empty_source_set {
        let msg = "the source set is empty and allowEmptySourceSet is false".to_string();
        tracing::warn!(run = run_id, "{msg}");
        let tail = vec![
            complete(job),
            track_op(run_id, &engine.node_id, track::PAGES_DONE),
        ];
        commit_chunk(
            engine,
            job,
            &ctx,
            ChunkOutput::default(),
            extra,
            tail,
            chunk_started,
        )
        .await?;
        return fail_run(engine, run_id, &msg).await;
    }
    // Schedule the next page before processing this one, so other nodes (or this node's
    // other worker) can query it while this page is reconciled (docs/operations.md#running-a-cluster).
    if let Some(c) = &next_cookie {
        let ops = schedule_page_ops(run_id, &engine.node_id, page_no + 1, Some(c.clone()));
        schedule_ops(engine, Some((&job.job.id, job.token)), ops).await?;
    }
    wait_for_earlier_pages(engine, &ctx, page_no).await?;
    ctx.check_caches(page_no);
    ctx.guard.reseed(&engine.repo, run_id).await?;
    set_stage(engine, &run, ReconStage::ActiveReconcilingSource).await?;
    let full = ctx.eff.source_full_entry.unwrap_or_else(|| {
        !ctx.eff.source.ids_only
            && entries
                .first()
                .is_some_and(crate::recon::effective::looks_full)
    });
    let items: Vec<Item> = entries
        .into_iter()
        .filter_map(|e| Item::source_from(e, full))
        .collect();
    let last_page = next_cookie.is_none();
    // A paged query commits per page; an unpaged one per chunk, so a huge unpaged source never
    // holds all its writes at once.
    let chunk = if ctx.eff.source_page_size.is_some() {
        items.len().max(1)
    } else {
        CHUNK
    };
    let mut remaining = items;
    if resumed > 0 {
        let skip = resumed.saturating_mul(chunk).min(remaining.len());
        tracing::info!(
            run = run_id,
            page = page_no,
            skipped = skip,
            "resuming a page after the chunks an earlier attempt committed"
        );
        remaining.drain(..skip);
    }
    loop {
        let rest = if remaining.len() > chunk {
            remaining.split_off(chunk)
        } else {
            Vec::new()
        };
        let out = process(engine, &ctx, remaining).await?;
        let abort = out.abort.clone();
        let stopped = abort.is_some() || ctx.is_canceled();
        let done = rest.is_empty() || stopped;
        let mut tail = Vec::new();
        if !done {
            tail.push(chunk_done_op(engine, job, run_id));
        }
        if done {
            tail.push(complete(job));
            tail.push(track_op(run_id, &engine.node_id, track::PAGES_DONE));
            // Only the last page has no next cookie, so exactly one page schedules the check.
            if last_page && !stopped {
                tail.push(Op::EnqueueJob(singleton_job(KIND_SOURCE_DONE, run_id)));
            }
        }
        let extra_now = std::mem::take(&mut extra);
        let objects = out.stats.get(keys::SOURCE_PROCESSED);
        commit_chunk(engine, job, &ctx, out, extra_now, tail, chunk_started).await?;
        if done {
            ctx.page_committed(page_no);
        }
        chunk_started = std::time::Instant::now();
        tracing::info!(run = run_id, page = page_no, objects, "page committed");
        if let Some(msg) = abort {
            return fail_run(engine, run_id, &msg).await;
        }
        if done && stopped {
            schedule(engine, None, finish_job(run_id)).await?;
        }
        if done {
            engine.wake_workers();
            return Ok(());
        }
        remaining = rest;
    }
}

/// Waits until every page before `page_no` has committed: a page is assessed only then, so it
/// sees their writes as a serial run would (ADR 0007). Its source query has run already, and
/// the next page is scheduled, so querying still overlaps reconciling. Returns early when the
/// run is canceled or ended (the page then takes no object).
async fn wait_for_earlier_pages(engine: &Engine, ctx: &RunCtx, page_no: u64) -> EngineResult<()> {
    let earlier = i64::try_from(page_no.saturating_sub(1)).unwrap_or(i64::MAX);
    let mut pause = std::time::Duration::from_millis(2);
    loop {
        let counters = engine.repo.run_counters(&ctx.run_id).await?;
        let done = counters.totals.get(PAGES_DONE_KEY).copied().unwrap_or(0);
        if done >= earlier || ctx.refresh_cancel(engine).await? {
            return Ok(());
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_millis(25));
    }
}

/// The run's totals, counted once by the first page: source and target totals and the link
/// count (docs/rest.md#reconciliation: `total` is the true total when known, `"?"` otherwise).
async fn first_page_totals(ctx: &RunCtx, extra: &mut StatsDelta) -> EngineResult<()> {
    if ctx.opts.source_id.is_some() {
        extra.add(keys::SOURCE_TOTAL, 1);
    } else if ctx.eff.source.request.filter.is_none()
        && let Some(n) = ctx.source_set.count().await?
    {
        extra.add(keys::SOURCE_TOTAL, n as i64);
    }
    if let Some(n) = ctx.target_count() {
        extra.add(keys::TARGET_TOTAL, n as i64);
    }
    if let Some(p) = &ctx.prefetched {
        extra.add(keys::LINKS_TOTAL, p.len() as i64);
    }
    Ok(())
}

pub(super) async fn source_done(
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
    if outstanding(engine, run_id).await?.0 > 0 && !run.cancel_requested {
        return recheck_later(engine, job).await;
    }
    let counters = engine.repo.run_counters(run_id).await?;
    let ctx = engine.run_ctx(&run).await?;
    let mut next = if run.cancel_requested || run.message.is_some() || !ctx.eff.run_target_phase {
        finish_job(run_id)
    } else {
        singleton_job(KIND_TARGET, run_id)
    };
    if let Some(min) = ctx.guard.min_source_size {
        let seen = counters
            .totals
            .get(keys::SOURCE_PROCESSED)
            .copied()
            .unwrap_or(0);
        if (seen as u64) < min && !run.cancel_requested {
            let msg = format!(
                "safety limit minSourceSize ({min}) not met: the source phase saw {seen} source objects; no target-phase action ran"
            );
            engine
                .repo
                .update_run(
                    run_id,
                    &RunUpdate {
                        message: Some(msg),
                        ..Default::default()
                    },
                )
                .await?;
            next = finish_job(run_id);
        }
    }
    let mut cs = ChangeSet::fenced(&job.job.id, job.token).with(complete(job));
    if next.kind == KIND_TARGET {
        cs.push(track_op(run_id, &engine.node_id, track::TARGET_SCHEDULED));
    }
    cs.push(Op::EnqueueJob(next));
    commit_tolerating_existing(engine, cs).await?;
    engine.wake_workers();
    Ok(())
}
