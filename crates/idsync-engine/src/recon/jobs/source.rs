//! The source phase's jobs: a source page (query, reconcile, commit, schedule the next page),
//! the run's totals counted by the first page, and the completion check that starts the target
//! phase once every page is done.

use super::{
    CHUNK, KIND_SOURCE_DONE, KIND_TARGET, PAGES_DONE_KEY, chunk_done_op, chunks_done, commit_chunk,
    commit_tolerating_existing, complete, complete_only, fail_run, finish_job, outstanding,
    recheck_later, retry_unavailable, schedule, schedule_ops, schedule_page_ops, set_stage,
    singleton_job, track, track_op,
};
use crate::Engine;
use crate::error::{EngineError, EngineResult};
use crate::pipeline::ctx::RunCtx;
use crate::pipeline::lookups::Item;
use crate::pipeline::op::{ChunkOutput, PageFence};
use crate::pipeline::stats::{StatsDelta, keys};
use crate::recon::page::process;
use idsync_connectors::{ConnectorResult, ObjectSet};
use idsync_core::{QueryPage, QueryRequest, ReconStage};
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
    // Query this page. An unpaged source (IDM's default) is one page job, read from the
    // connector in internal pages of CHUNK entries — the same entries in the same order, since
    // every connector orders a query by its sort keys and id whether it pages or not — so the
    // run holds one chunk of its source at a time, not all of it.
    crate::failpoint_unavailable!("recon.source.unavailable");
    let t = std::time::Instant::now();
    let mut feed = Feed::default();
    let (entries, next_cookie) = match &ctx.opts.source_id {
        Some(id) => {
            let e = ctx.source_set.get(id).await?;
            (vec![e.unwrap_or_else(|| json!({"_id": id}))], None)
        }
        None => {
            let mut req = ctx.eff.source.request.clone();
            let paged = ctx.eff.source_page_size.is_some();
            req.page_size = ctx.eff.source_page_size.or(Some(CHUNK));
            req.cookie = cookie;
            // Page jobs go to whatever node claims them, and a page re-runs after its node
            // died: their cookies must be resumable anywhere. The internal pages of an
            // unpaged source stay in this job, so any cookie does.
            let page = if paged {
                ctx.source_set.query_resumable(&req).await?
            } else {
                ctx.source_set.query(&req).await?
            };
            if paged {
                (page.results, page.cookie)
            } else {
                feed.follow(&ctx, req, page.cookie);
                (page.results, None)
            }
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
    let to_items = |entries: Vec<Value>| -> Vec<Item> {
        entries
            .into_iter()
            .filter_map(|e| Item::source_from(e, full))
            .collect()
    };
    let items = to_items(entries);
    let last_page = next_cookie.is_none();
    let fence = page_fence(engine, &ctx, job, run_id).await?;
    // A paged query commits per page; an unpaged one per chunk, so a huge unpaged source never
    // holds all its writes at once.
    let chunk = if ctx.eff.source_page_size.is_some() {
        items.len().max(1)
    } else {
        CHUNK
    };
    let mut remaining = items;
    if resumed > 0 {
        let mut skip = resumed.saturating_mul(chunk);
        tracing::info!(
            run = run_id,
            page = page_no,
            skipped = skip,
            "resuming a page after the chunks an earlier attempt committed"
        );
        loop {
            let n = skip.min(remaining.len());
            remaining.drain(..n);
            skip -= n;
            if !remaining.is_empty() || feed.is_done() {
                break;
            }
            remaining = to_items(feed.next(&mut extra).await?);
        }
    }
    loop {
        let mut rest = if remaining.len() > chunk {
            remaining.split_off(chunk)
        } else {
            Vec::new()
        };
        if rest.is_empty() && !feed.is_done() {
            rest = to_items(feed.next(&mut extra).await?);
        }
        extra.add(keys::SOURCE_READ, remaining.len() as i64);
        let out = process(engine, &ctx, remaining, fence.clone()).await?;
        if let Err(e) = retry_unavailable(job, &out) {
            ctx.drop_caches();
            return Err(e);
        }
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
        // Recorded before the commit: the next page may be assessed the moment this commit is
        // visible, possibly before this task runs again, and must find the caches current.
        if done {
            ctx.page_committed(page_no);
        }
        if let Err(e) = commit_chunk(engine, job, &ctx, out, extra_now, tail, chunk_started).await {
            ctx.drop_caches();
            return Err(e);
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

/// The internal pages of an unpaged source after the first: the next one is queried while the
/// current one is reconciled.
#[derive(Default)]
struct Feed {
    set: Option<Arc<dyn ObjectSet>>,
    next: Option<tokio::task::JoinHandle<(QueryRequest, ConnectorResult<QueryPage>)>>,
}

impl Feed {
    /// Starts reading the page after `cookie` (none: the source has been read).
    fn follow(&mut self, ctx: &RunCtx, req: QueryRequest, cookie: Option<String>) {
        self.set = Some(ctx.source_set.clone());
        self.spawn(req, cookie);
    }

    fn spawn(&mut self, mut req: QueryRequest, cookie: Option<String>) {
        self.next = match (cookie, &self.set) {
            (Some(c), Some(set)) => {
                req.cookie = Some(c);
                let set = set.clone();
                Some(tokio::spawn(async move {
                    let page = set.query(&req).await;
                    (req, page)
                }))
            }
            _ => None,
        };
    }

    fn is_done(&self) -> bool {
        self.next.is_none()
    }

    /// The next internal page's entries (the one after it is then being read); none once done.
    async fn next(&mut self, extra: &mut StatsDelta) -> EngineResult<Vec<Value>> {
        let Some(handle) = self.next.take() else {
            return Ok(Vec::new());
        };
        let t = std::time::Instant::now();
        let (req, page) = handle
            .await
            .map_err(|e| EngineError::Internal(format!("source query task failed: {e}")))?;
        extra.time("sourceQuery", t.elapsed());
        let page = page?;
        // A cookie with no entries ends the read too: never spin on an empty page.
        let cookie = page.cookie.filter(|_| !page.results.is_empty());
        self.spawn(req, cookie);
        Ok(page.results)
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

/// The page's fence for the create intents of a connected-system target, with the intents its
/// earlier attempts committed (read only when there was one: the token counts the claims).
async fn page_fence(
    engine: &Engine,
    ctx: &RunCtx,
    job: &ClaimedJob,
    run_id: &str,
) -> EngineResult<Option<Arc<PageFence>>> {
    if ctx.target_managed_type.is_some() || ctx.opts.analyze {
        return Ok(None);
    }
    let earlier = if job.token > 1 {
        engine
            .repo
            .create_intents(&job.job.id)
            .await?
            .into_iter()
            .collect()
    } else {
        Default::default()
    };
    Ok(Some(Arc::new(PageFence {
        run_id: run_id.to_string(),
        job_id: job.job.id.clone(),
        token: job.token,
        earlier,
    })))
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
    // A source that could not be counted up front (LDAP, a filtered query) has its true total
    // once every page is in (docs/rest.md#reconciliation).
    if !counters.totals.contains_key(keys::SOURCE_TOTAL)
        && !run.cancel_requested
        && run.message.is_none()
    {
        let read = counters.totals.get(keys::SOURCE_READ).copied().unwrap_or(0);
        cs.push(Op::AddRunCounters {
            run_id: run_id.to_string(),
            node_id: engine.node_id.clone(),
            counters: std::collections::BTreeMap::from([(keys::SOURCE_TOTAL.to_string(), read)]),
        });
    }
    if next.kind == KIND_TARGET {
        cs.push(track_op(run_id, &engine.node_id, track::TARGET_SCHEDULED));
    }
    cs.push(Op::EnqueueJob(next));
    commit_tolerating_existing(engine, cs).await?;
    engine.wake_workers();
    Ok(())
}
