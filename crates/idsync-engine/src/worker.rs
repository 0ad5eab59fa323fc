//! The job worker of a node: claims jobs of the kinds it serves, keeps each lease alive while
//! the job runs, and runs a bounded number at once. One node and a cluster run this same loop.

use crate::Engine;
use crate::error::EngineResult;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, watch};

/// How many jobs a node runs at once: two lets a node query its next page while it
/// reconciles the current one; each page is itself parallel over `taskThreads`.
pub const DEFAULT_CONCURRENCY: usize = 2;
const IDLE_POLL: Duration = Duration::from_millis(50);
const EVICT_EVERY: Duration = Duration::from_secs(5);

/// Runs until `stop` turns true, then waits for the jobs in flight.
pub async fn run_worker(
    engine: Arc<Engine>,
    concurrency: usize,
    mut stop: watch::Receiver<bool>,
) -> EngineResult<()> {
    let slots = Arc::new(Semaphore::new(concurrency.max(1)));
    let kinds: Vec<&str> = crate::recon::jobs::KINDS.to_vec();
    let mut last_evict = tokio::time::Instant::now();
    loop {
        if *stop.borrow() {
            break;
        }
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.map_err(|e| crate::EngineError::Internal(e.to_string()))?,
            _ = stop.changed() => break,
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
            Some(job) => {
                crate::metered::job_claimed(&job.job.kind);
                let engine = engine.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    let renew = spawn_lease_renewal(engine.clone(), job.job.id.clone(), job.token);
                    if let Err(e) = crate::recon::jobs::execute(&engine, job).await {
                        tracing::error!(error = %e, "job failed");
                    }
                    renew.abort();
                });
            }
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
    // Wait for the jobs in flight: in-flight objects finish (SPEC §15 graceful shutdown).
    let _all = slots.acquire_many(concurrency.max(1) as u32).await;
    Ok(())
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
            if let Err(e) = engine.repo.renew_lease(&job_id, token, engine.lease).await {
                // A renewal can race the job's own final commit, which deletes the job: that is
                // not a lost lease. Anything else is, and the job's fenced commit will fail.
                let gone = matches!(engine.repo.get_job(&job_id).await, Ok(None));
                if !gone {
                    tracing::warn!(job = %job_id, error = %e, "lease renewal failed");
                }
                return;
            }
        }
    })
}
