//! A run as jobs (ARCHITECTURE.md principle 2): source pages, the source-phase completion
//! check, the target phase and the finish. Every job's writes commit with a fence on its token,
//! so a node that lost its lease cannot commit late; ids are deterministic so a re-run job
//! schedules its successors at most once.
//!
//! This module owns the job records, their scheduling and tracking, the dispatch of a claimed
//! job ([`execute`]) and the commit of a chunk's work; each job kind is its own file.

mod finish;
mod source;
mod target;

pub use finish::{ORPHANED_MESSAGE, end_if_orphaned, fail_run};

use super::page::ChunkMetrics;
use crate::Engine;
use crate::error::{EngineError, EngineResult};
use crate::pipeline::ctx::RunCtx;
use crate::pipeline::op::ChunkOutput;
use crate::pipeline::stats::StatsDelta;
use idsync_core::ReconStage;
use idsync_repo::{ChangeSet, ClaimedJob, ConflictKind, Job, Op, RepoError, RunRecord, RunUpdate};
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
/// The run counter of source pages committed (with their job's completion).
pub const PAGES_DONE_KEY: &str = track::PAGES_DONE;

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
        KIND_SOURCE => source::source_page(engine, &job, &run_id).await,
        KIND_SOURCE_DONE => source::source_done(engine, &job, &run_id).await,
        KIND_TARGET => target::target_phase(engine, &job, &run_id).await,
        KIND_FINISH => finish::finish(engine, &job, &run_id).await,
        other => Err(EngineError::Internal(format!("unknown job kind {other}"))),
    };
    match result {
        Ok(()) => Ok(()),
        Err(EngineError::Repo(RepoError::StaleToken { .. })) => {
            tracing::warn!(job = %job.job.id, "lease lost; another node owns this job now");
            crate::metered::lease_taken_over(&job.job.kind);
            Ok(())
        }
        Err(e) if is_transient(&e) && job.token < MAX_ATTEMPTS => {
            // A database or system that is briefly unreachable must not fail the whole run:
            // the job runs again (on any node) after a pause, from what it committed — pages
            // resume by chunk, and their external creates by their intents (ADR 0012).
            let pause = retry_pause(engine.lease, job.token);
            tracing::warn!(
                job = %job.job.id, attempt = job.token, error = %e,
                "recon job hit a transient error; it runs again in {} ms",
                pause.as_millis()
            );
            tokio::time::sleep(pause).await;
            match engine.repo.release_job(&job.job.id, job.token).await {
                Ok(()) | Err(RepoError::StaleToken { .. }) => Ok(()),
                Err(e) => Err(e.into()),
            }
        }
        Err(e) => {
            tracing::error!(job = %job.job.id, error = %e, "recon job failed; failing the run");
            fail_run(engine, &run_id, &e.to_string()).await?;
            match complete_only(engine, &job, &run_id).await {
                Ok(()) | Err(EngineError::Repo(RepoError::StaleToken { .. })) => {}
                Err(e) => return Err(e),
            }
            // A failed finish job leaves no job to end the run: end it now (and if this fails
            // too, the cluster monitor does).
            if job.job.kind == KIND_FINISH {
                end_if_orphaned(engine, &run_id).await?;
            }
            Ok(())
        }
    }
}

/// How many times a recon job is claimed (its fencing token counts the claims) before a
/// transient error fails its run.
pub const MAX_ATTEMPTS: i64 = 5;

/// Errors that a later attempt may not meet: the repository or a connected system unreachable.
pub(crate) fn is_transient(e: &EngineError) -> bool {
    use idsync_connectors::ConnectorError;
    matches!(
        e,
        EngineError::Repo(RepoError::Unavailable(_))
            | EngineError::Connector(ConnectorError::Unavailable(_))
    )
}

/// A chunk in which an op met an unreachable system (slapd restarting, a database failing
/// over) is not committed with that op as a FAILURE: the job ends with the transient error and
/// runs again after its pause, from what it committed (an earlier attempt's external creates
/// are found again by their intents or the correlation). On the job's last attempt the chunk
/// commits as it is, each such op a FAILURE, so that a system that stays down ends the run
/// with its failures counted rather than failing it.
pub(super) fn retry_unavailable(job: &ClaimedJob, out: &ChunkOutput) -> EngineResult<()> {
    match &out.unavailable {
        Some(msg) if job.token < MAX_ATTEMPTS => Err(EngineError::Connector(
            idsync_connectors::ConnectorError::Unavailable(msg.clone()),
        )),
        _ => Ok(()),
    }
}

/// The pause before attempt `attempt + 1`: a tenth of the lease, doubling per attempt, at most
/// the lease (1 s, 2 s, 4 s, 8 s with the default 10 s lease).
fn retry_pause(lease: std::time::Duration, attempt: i64) -> std::time::Duration {
    let doublings = u32::try_from(attempt.clamp(1, 8) - 1).unwrap_or(0);
    (lease / 10 * 2u32.pow(doublings)).min(lease)
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
    mut out: ChunkOutput,
    extra: StatsDelta,
    tail: Vec<Op>,
    started: std::time::Instant,
) -> EngineResult<Option<String>> {
    let abort = out.abort.clone();
    let written = std::mem::take(&mut out.written);
    let mut managed_old = std::mem::take(&mut out.managed_old);
    let metrics = ChunkMetrics::tally(ctx, &out);
    let mut cs = ChangeSet::fenced(&job.job.id, job.token);
    cs.ops = chunk_ops(ctx, out, extra)?;
    cs.ops.extend(tail);
    // Managed objects this chunk wrote are changes of their own (docs/ARCHITECTURE.md#one-managed-object-change-through-implicit-and-queued-sync): queued
    // mappings get their events in this commit, inline ones run once it is committed.
    // So do the type's post-write scripts (postCreate, postUpdate, postDelete, onSync).
    let scripted = ctx
        .target_scripts
        .as_ref()
        .is_some_and(|s| s.has_after_hooks());
    let cascade = if ctx.target_managed_type.is_some()
        && !ctx.opts.analyze
        && (scripted || engine.has_sync_from(&ctx.config.target_str))
    {
        crate::sync::managed_changes(&cs.ops)
    } else {
        Vec::new()
    };
    for c in &cascade {
        cs.ops.extend(engine.queue_events(c));
    }
    let (n, t) = (cs.ops.len(), std::time::Instant::now());
    crate::failpoint!("recon.page.before_commit");
    engine.repo.commit(cs).await?;
    crate::failpoint!("recon.page.after_commit");
    ctx.note_written(written);
    for mut c in cascade {
        c.old = managed_old.remove(&c.id);
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

/// The run counter of a job's committed chunks: a job that commits in chunks without completing
/// (an unpaged source) adds one per chunk in the chunk's own commit, so a re-run of the job
/// (its node died, another claimed it) skips exactly the chunks already committed and counts
/// every object once.
fn chunks_key(job: &ClaimedJob) -> String {
    format!("jobs.chunks.{}", job.job.id)
}

fn chunk_done_op(engine: &Engine, job: &ClaimedJob, run_id: &str) -> Op {
    track_op(run_id, &engine.node_id, &chunks_key(job))
}

/// How many chunks of this job earlier attempts committed.
async fn chunks_done(engine: &Engine, job: &ClaimedJob, run_id: &str) -> EngineResult<usize> {
    let c = engine.repo.run_counters(run_id).await?;
    let n = c.totals.get(&chunks_key(job)).copied().unwrap_or(0);
    Ok(usize::try_from(n).unwrap_or(0))
}

fn complete(job: &ClaimedJob) -> Op {
    Op::CompleteJob {
        job_id: job.job.id.clone(),
    }
}
