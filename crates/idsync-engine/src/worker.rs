//! The job worker of a node: claims jobs of the kinds it serves, keeps each lease alive while
//! the job runs, and runs a bounded number at once. One node and a cluster run this same loop.

use crate::Engine;
use crate::error::EngineResult;
use idsync_repo::ClaimedJob;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};

const IDLE_POLL: Duration = Duration::from_millis(50);
const EVICT_EVERY: Duration = Duration::from_secs(5);

/// While every slot is busy, how often the worker looks for lost work (see `run_worker`).
const RECOVERY_POLL: Duration = Duration::from_millis(250);

/// Runs until `stop` turns true, then waits for the jobs in flight.
///
/// `concurrency` (`maxConcurrentJobs`) is what one *host* runs at once: nodes that share a host
/// share its cores, so each runs [`Engine::job_slots`] of them — the same load on the machine
/// whether one node or three run there.
///
/// Besides its `concurrency` slots the worker keeps one spare slot for lost work: a source page
/// or target phase whose node died (lease expired, or released by down detection). Claims put
/// lost work first, but a claim only happens when a slot frees, and with big pages every slot
/// of every survivor may stay busy for longer than the lease; so while all slots are busy the
/// worker still claims lost work every [`RECOVERY_POLL`] into the spare slot, and a dead node's
/// page is re-claimed within the lease time whatever the page size.
pub async fn run_worker(
    engine: Arc<Engine>,
    concurrency: usize,
    mut stop: watch::Receiver<bool>,
) -> EngineResult<()> {
    let concurrency = concurrency.max(1);
    let slots = Arc::new(Semaphore::new(concurrency));
    let spare = Arc::new(Semaphore::new(1));
    // Rings when a job ends: a node at its share claims again at once.
    let finished = Arc::new(Notify::new());
    let kinds: Vec<&str> = crate::recon::jobs::KINDS.to_vec();
    let recoverable = crate::recon::jobs::RECOVERABLE_KINDS;
    let mut last_evict = tokio::time::Instant::now();
    loop {
        if *stop.borrow() {
            break;
        }
        let in_flight = concurrency - slots.available_permits();
        let permit = if in_flight < engine.job_slots(concurrency) {
            tokio::select! {
                p = slots.clone().acquire_owned() => Some(p.map_err(|e| crate::EngineError::Internal(e.to_string()))?),
                _ = tokio::time::sleep(RECOVERY_POLL) => None,
                _ = stop.changed() => break,
            }
        } else {
            // This node runs its share of the host's jobs: wait for one to end.
            tokio::select! {
                _ = finished.notified() => continue,
                _ = tokio::time::sleep(RECOVERY_POLL) => None,
                _ = stop.changed() => break,
            }
        };
        let Some(permit) = permit else {
            // Every slot of this node's share is busy: lost work does not wait for one to free.
            if let Ok(spare) = spare.clone().try_acquire_owned() {
                match engine
                    .repo
                    .claim_recovered(&recoverable, &engine.node_id, engine.lease)
                    .await
                {
                    Ok(Some(job)) => {
                        tracing::info!(job = %job.job.id, "lost work re-claimed into the spare slot");
                        spawn_job(&engine, job, spare, finished.clone());
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "claiming lost work failed; retrying"),
                }
            }
            continue;
        };
        let claimed = match engine
            .repo
            .claim_next(&kinds, &engine.node_id, engine.lease)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "claiming a job failed; retrying");
                None
            }
        };
        match claimed {
            Some(job) => spawn_job(&engine, job, permit, finished.clone()),
            None => {
                drop(permit);
                if last_evict.elapsed() > EVICT_EVERY {
                    last_evict = tokio::time::Instant::now();
                    let _ = engine.evict_finished_runs().await;
                }
                let notified = engine.work.notified();
                tokio::select! {
                    _ = notified => {}
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                    _ = stop.changed() => break,
                }
            }
        }
    }
    // Wait for the jobs in flight: in-flight objects finish (graceful shutdown).
    let _all = slots.acquire_many(concurrency as u32).await;
    let _spare = spare.acquire().await;
    Ok(())
}

/// Runs a claimed job on its own task, holding `permit` (its slot) and renewing its lease;
/// rings `finished` at its end.
fn spawn_job(
    engine: &Arc<Engine>,
    job: ClaimedJob,
    permit: OwnedSemaphorePermit,
    finished: Arc<Notify>,
) {
    crate::metered::job_claimed(&job.job.kind);
    let engine = engine.clone();
    tokio::spawn(async move {
        let renew = spawn_lease_renewal(engine.clone(), job.job.id.clone(), job.token);
        let id = job.job.id.clone();
        // The job on a task of its own: if it panics, its lease renewal stops with it and the
        // lease expires, so the job is re-claimed as lost work instead of held forever.
        let run = tokio::spawn({
            let engine = engine.clone();
            async move { crate::recon::jobs::execute(&engine, job).await }
        });
        match run.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "job failed"),
            Err(e) => tracing::error!(job = %id, error = %e, "job panicked; its lease will expire"),
        }
        renew.abort();
        drop(permit);
        finished.notify_one();
    });
}

fn spawn_lease_renewal(
    engine: Arc<Engine>,
    job_id: String,
    token: i64,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let every = engine.lease / 3;
        loop {
            tokio::time::sleep(every).await;
            if !renew_until_lost(&engine, &job_id, token).await {
                return;
            }
        }
    })
}

/// One renewal, retried while it fails for another reason than a lost lease, until the lease
/// would have expired: one database hiccup on a long page must not hand the page to another
/// node. Returns whether the lease is still held.
async fn renew_until_lost(engine: &Engine, job_id: &str, token: i64) -> bool {
    // The lease was last renewed at most `lease / 3` ago; give up a little before it expires,
    // when another node may claim the job anyway.
    let deadline = tokio::time::Instant::now() + engine.lease * 2 / 3;
    let mut pause = Duration::from_millis(50);
    loop {
        match renew_once(engine, job_id, token).await {
            Ok(()) => return true,
            // A renewal can race the job's own final commit, which marks the job done: that
            // is not a lost lease, and there is nothing left to renew.
            Err(idsync_repo::RepoError::StaleToken { .. }) => {
                if !matches!(engine.repo.get_job(job_id).await, Ok(None)) {
                    tracing::warn!(job = %job_id, "lease lost; the job's fenced commits will fail");
                }
                return false;
            }
            Err(e) => {
                if tokio::time::Instant::now() + pause >= deadline {
                    tracing::warn!(job = %job_id, error = %e, "lease renewal kept failing until the lease expired");
                    return false;
                }
                tracing::warn!(job = %job_id, error = %e, "lease renewal failed; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2)
                    .min(engine.lease / 10)
                    .max(Duration::from_millis(10));
            }
        }
    }
}

async fn renew_once(
    engine: &Engine,
    job_id: &str,
    token: i64,
) -> Result<(), idsync_repo::RepoError> {
    fail::fail_point!("worker.lease.renew", |_| Err(
        idsync_repo::RepoError::Internal("failpoint worker.lease.renew fired".into())
    ));
    engine.repo.renew_lease(job_id, token, engine.lease).await
}
