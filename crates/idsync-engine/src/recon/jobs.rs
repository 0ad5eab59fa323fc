//! A run as jobs (ARCHITECTURE.md principle 2): source pages, the source-phase completion
//! check, the target phase and the finish. Every job's writes commit with a fence on its token,
//! so a node that lost its lease cannot commit late; ids are deterministic so a re-run job
//! schedules its successors at most once.

use super::page::{ChunkMetrics, process};
use super::summary::{RunCounters, SummaryHead, build_summary, summary_message};
use crate::Engine;
use crate::error::{EngineError, EngineResult};
use crate::managed_set::new_id;
use crate::pipeline::ctx::RunCtx;
use crate::pipeline::lookups::Item;
use crate::pipeline::object::ChunkOutput;
use crate::pipeline::stats::{StatsDelta, keys};
use chrono::Utc;
use idsync_core::ReconStage;
use idsync_repo::{
    AuditEntry, AuditKind, ChangeSet, ClaimedJob, ConflictKind, Job, Op, RepoError, RunRecord,
    RunUpdate,
};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

pub const KIND_SOURCE: &str = "recon.source";
pub const KIND_SOURCE_DONE: &str = "recon.source_done";
pub const KIND_TARGET: &str = "recon.target";
pub const KIND_FINISH: &str = "recon.finish";
pub const KINDS: [&str; 4] = [KIND_SOURCE, KIND_SOURCE_DONE, KIND_TARGET, KIND_FINISH];
/// The kinds whose lost jobs a busy worker still takes (the run's work, not its checks).
pub const RECOVERABLE_KINDS: [&str; 2] = [KIND_SOURCE, KIND_TARGET];

/// How many source entries of an unpaged query, or target ids, one commit covers.
const CHUNK: usize = 2000;
/// How long a check waits before it looks again.
const RECHECK: Duration = Duration::from_millis(100);

pub fn source_job(run_id: &str, page: u64, cookie: Option<String>) -> Job {
    Job::new(
        format!("{run_id}/source/{page}"),
        KIND_SOURCE,
        Some(run_id.to_string()),
        json!({"run": run_id, "page": page, "cookie": cookie}),
    )
}

/// The run's one job of a kind (completion check, target phase, finish): a deterministic id,
/// so scheduling it twice is harmless.
fn singleton_job(kind: &str, run_id: &str) -> Job {
    let name = kind.trim_start_matches("recon.");
    Job::new(
        format!("{run_id}/{name}"),
        kind,
        Some(run_id.to_string()),
        json!({"run": run_id}),
    )
}

pub fn finish_job(run_id: &str) -> Job {
    singleton_job(KIND_FINISH, run_id)
}

/// Counters that track outstanding jobs. They commit with the work (scheduled with the enqueue,
/// done with the job's last commit), so "all pages done" is exact on every node.
mod track {
    pub const PAGES_SCHEDULED: &str = "jobs.pages.scheduled";
    pub const PAGES_DONE: &str = "jobs.pages.done";
    pub const TARGET_SCHEDULED: &str = "jobs.target.scheduled";
    pub const TARGET_DONE: &str = "jobs.target.done";
}

fn track_op(run_id: &str, node_id: &str, key: &str) -> Op {
    Op::AddRunCounters {
        run_id: run_id.to_string(),
        node_id: node_id.to_string(),
        counters: std::collections::BTreeMap::from([(key.to_string(), 1)]),
    }
}

/// The "done" tracking op of a job that completes, if its kind is tracked.
fn done_op(engine: &Engine, job: &ClaimedJob, run_id: &str) -> Option<Op> {
    match job.job.kind.as_str() {
        KIND_SOURCE => Some(track_op(run_id, &engine.node_id, track::PAGES_DONE)),
        KIND_TARGET => Some(track_op(run_id, &engine.node_id, track::TARGET_DONE)),
        _ => None,
    }
}

/// Completes a job without other work (its run is gone, finished or canceled).
pub async fn complete_only(engine: &Engine, job: &ClaimedJob, run_id: &str) -> EngineResult<()> {
    let mut cs = ChangeSet::fenced(&job.job.id, job.token).with(complete(job));
    if let Some(op) = done_op(engine, job, run_id) {
        cs.push(op);
    }
    engine.repo.commit(cs).await?;
    Ok(())
}

/// Source pages and target-phase jobs not yet done.
async fn outstanding(engine: &Engine, run_id: &str) -> EngineResult<(i64, i64)> {
    let c = engine.repo.run_counters(run_id).await?;
    let get = |k: &str| c.totals.get(k).copied().unwrap_or(0);
    Ok((
        get(track::PAGES_SCHEDULED) - get(track::PAGES_DONE),
        get(track::TARGET_SCHEDULED) - get(track::TARGET_DONE),
    ))
}

/// Puts a check job back to wait a little, keeping its single id.
async fn recheck_later(engine: &Engine, job: &ClaimedJob) -> EngineResult<()> {
    tokio::time::sleep(RECHECK).await;
    engine.repo.release_job(&job.job.id, job.token).await?;
    Ok(())
}

/// Enqueues a source page job and counts it as scheduled, in one commit.
pub fn schedule_page_ops(
    run_id: &str,
    node_id: &str,
    page: u64,
    cookie: Option<String>,
) -> Vec<Op> {
    vec![
        Op::EnqueueJob(source_job(run_id, page, cookie)),
        track_op(run_id, node_id, track::PAGES_SCHEDULED),
    ]
}

/// Commits a change set; a job that already exists is fine (scheduled by an earlier attempt).
async fn commit_tolerating_existing(engine: &Engine, cs: ChangeSet) -> EngineResult<()> {
    match engine.repo.commit(cs).await {
        Ok(_) => Ok(()),
        Err(RepoError::Conflict(ConflictKind::AlreadyExists { .. })) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Schedules a job outside the current job's own commit.
pub async fn schedule(engine: &Engine, fence: Option<(&str, i64)>, job: Job) -> EngineResult<()> {
    schedule_ops(engine, fence, vec![Op::EnqueueJob(job)]).await
}

/// Commits scheduling ops (an enqueue and its tracking) on their own.
async fn schedule_ops(
    engine: &Engine,
    fence: Option<(&str, i64)>,
    ops: Vec<Op>,
) -> EngineResult<()> {
    let mut cs = match fence {
        Some((id, token)) => ChangeSet::fenced(id, token),
        None => ChangeSet::new(),
    };
    cs.ops = ops;
    commit_tolerating_existing(engine, cs).await?;
    engine.wake_workers();
    Ok(())
}

fn payload_run(job: &ClaimedJob) -> EngineResult<String> {
    job.job
        .payload
        .get("run")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| EngineError::Internal(format!("job {} has no run", job.job.id)))
}

/// Runs one claimed job to its end. A failure of the run's own work (a source query that
/// fails, a repository error) fails the run; a lost lease just stops.
pub async fn execute(engine: &Arc<Engine>, job: ClaimedJob) -> EngineResult<()> {
    let run_id = payload_run(&job)?;
    let result = match job.job.kind.as_str() {
        KIND_SOURCE => source_page(engine, &job, &run_id).await,
        KIND_SOURCE_DONE => source_done(engine, &job, &run_id).await,
        KIND_TARGET => target_phase(engine, &job, &run_id).await,
        KIND_FINISH => finish(engine, &job, &run_id).await,
        other => Err(EngineError::Internal(format!("unknown job kind {other}"))),
    };
    match result {
        Ok(()) => Ok(()),
        Err(EngineError::Repo(RepoError::StaleToken { .. })) => {
            tracing::warn!(job = %job.job.id, "lease lost; another node owns this job now");
            crate::metered::lease_taken_over(&job.job.kind);
            Ok(())
        }
        Err(e) => {
            tracing::error!(job = %job.job.id, error = %e, "recon job failed; failing the run");
            fail_run(engine, &run_id, &e.to_string()).await?;
            match complete_only(engine, &job, &run_id).await {
                Ok(()) | Err(EngineError::Repo(RepoError::StaleToken { .. })) => Ok(()),
                Err(e) => Err(e),
            }
        }
    }
}

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

async fn set_stage(engine: &Engine, run: &RunRecord, stage: ReconStage) -> EngineResult<()> {
    let next = run.stage.transition(stage, run.cancel_requested);
    if next != run.stage {
        engine
            .repo
            .update_run(
                &run.id,
                &RunUpdate {
                    stage: Some(next),
                    state: Some(next.state()),
                    ..Default::default()
                },
            )
            .await?;
    }
    Ok(())
}

/// The ops that account a chunk: its outputs, plan, registry rows and counters.
fn chunk_ops(ctx: &RunCtx, out: ChunkOutput, extra: StatsDelta) -> EngineResult<Vec<Op>> {
    let mut ops = out.ops;
    if !out.plan.is_empty() {
        ops.push(Op::AddPlanEntries(out.plan));
    }
    // Claimed target ids feed the target phase; a dry run registers them too (the registry is
    // bookkeeping, not a write to any system), so its target phase plans the right objects.
    // With a snapshot of the target ids, the target phase only visits ids of the snapshot, so
    // ids created by this run need no row.
    if ctx.eff.run_target_phase && !out.claimed.is_empty() {
        let ids: HashSet<String> = out
            .claimed
            .iter()
            .map(|i| ctx.links.norm_target(i))
            .filter(|i| {
                ctx.target_snapshot
                    .as_ref()
                    .is_none_or(|s| s.ids.contains(i))
            })
            .collect();
        if !ids.is_empty() {
            ops.push(Op::RegisterTargetIds {
                run_id: ctx.run_id.clone(),
                ids: ids.into_iter().collect(),
            });
        }
    }
    let mut stats = out.stats;
    stats.merge(extra);
    let counters = {
        let mut ext = ctx
            .extremes
            .lock()
            .map_err(|_| EngineError::Internal("statistics lock poisoned".into()))?;
        stats.into_counters(&mut ext)
    };
    if !counters.is_empty() {
        ops.push(Op::AddRunCounters {
            run_id: ctx.run_id.clone(),
            node_id: ctx.node_id.clone(),
            counters,
        });
    }
    Ok(ops)
}

async fn commit_chunk(
    engine: &Engine,
    job: &ClaimedJob,
    ctx: &RunCtx,
    out: ChunkOutput,
    extra: StatsDelta,
    tail: Vec<Op>,
    started: std::time::Instant,
) -> EngineResult<Option<String>> {
    let abort = out.abort.clone();
    let metrics = ChunkMetrics::tally(ctx, &out);
    let mut cs = ChangeSet::fenced(&job.job.id, job.token);
    cs.ops = chunk_ops(ctx, out, extra)?;
    cs.ops.extend(tail);
    // Managed objects this chunk wrote are changes of their own (reference §6.1): queued
    // mappings get their events in this commit, inline ones run once it is committed.
    let cascade = if ctx.target_managed_type.is_some()
        && !ctx.opts.analyze
        && engine.has_sync_from(&ctx.config.target_str)
    {
        crate::sync::managed_changes(&cs.ops)
    } else {
        Vec::new()
    };
    for c in &cascade {
        cs.ops.extend(engine.queue_events(c));
    }
    let (n, t) = (cs.ops.len(), std::time::Instant::now());
    engine.repo.commit(cs).await?;
    for c in cascade {
        engine.notify_committed(c).await;
    }
    let phase = if job.job.kind == KIND_TARGET {
        "target"
    } else {
        "source"
    };
    metrics.emit(&ctx.mapping_name, phase, started.elapsed());
    tracing::debug!(
        ops = n,
        ms = t.elapsed().as_millis() as u64,
        "chunk committed"
    );
    Ok(abort)
}

fn complete(job: &ClaimedJob) -> Op {
    Op::CompleteJob {
        job_id: job.job.id.clone(),
    }
}

async fn source_page(engine: &Arc<Engine>, job: &ClaimedJob, run_id: &str) -> EngineResult<()> {
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
    if page_no == 1 {
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
    // other worker) can query it while this page is reconciled (reference §4).
    if let Some(c) = &next_cookie {
        let ops = schedule_page_ops(run_id, &engine.node_id, page_no + 1, Some(c.clone()));
        schedule_ops(engine, Some((&job.job.id, job.token)), ops).await?;
    }
    set_stage(engine, &run, ReconStage::ActiveReconcilingSource).await?;
    let full = ctx.eff.source_full_entry.unwrap_or_else(|| {
        !ctx.eff.source.ids_only && entries.first().is_some_and(super::effective::looks_full)
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

/// The run's totals, counted once by the first page: source and target totals and the link
/// count (reference §3.4: `total` is the true total when known, `"?"` otherwise).
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

async fn source_done(engine: &Arc<Engine>, job: &ClaimedJob, run_id: &str) -> EngineResult<()> {
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

async fn target_phase(engine: &Arc<Engine>, job: &ClaimedJob, run_id: &str) -> EngineResult<()> {
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
            process(&engine, &ctx, items).await
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
                        let full = super::effective::looks_full(&e);
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

async fn finish(engine: &Arc<Engine>, job: &ClaimedJob, run_id: &str) -> EngineResult<()> {
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
    // The result script runs on every path: success, failure and cancel (reference §1.1).
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

/// The maps the `result` script receives (reference §3.6), from the committed counters.
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
            "startTime": super::summary::iso(run.started),
            "endTime": super::summary::iso(ended),
            "duration": (ended - run.started).num_milliseconds(),
            "reconId": run.id,
            "mappingName": run.mapping,
        },
        "source": {"name": "source", "processed": c.total(keys::SOURCE_PROCESSED), "entries": situations},
        "target": {"name": "target", "processed": c.total(keys::TARGET_PROCESSED)},
    })
}
