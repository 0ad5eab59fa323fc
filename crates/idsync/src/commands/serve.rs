//! `idsync serve` (docs/cli.md): the REST API under `/openidm`, this node's job worker and its
//! heartbeat. Prints `listening on http://ADDR` once it serves; SIGTERM or SIGINT stop accepting,
//! let in-flight jobs finish, mark the node down and exit 0.

use super::setup;
use crate::cli::ServeArgs;
use anyhow::{Context, Result};
use idsync_api::auth::{AuthState, ensure_admin_token_file, sha256_hex};
use idsync_api::state::ApiState;
use idsync_repo::NodeState;
use std::process::ExitCode;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};

pub async fn run(args: ServeArgs) -> Result<ExitCode> {
    // First, so that every metric handle made from here on records.
    let metrics =
        idsync_api::metrics::install_recorder().context("installing the metrics recorder")?;
    let project = setup::load(&args.project.project)?;
    let repo = setup::open_repo(&project, args.repo.as_deref()).await?;
    let node_id = args
        .node_id
        .clone()
        .or_else(|| project.settings.node_id.clone())
        .unwrap_or_else(setup::host_name);
    // Work this node held in an earlier life is released at once
    // (docs/operations.md#when-something-fails).
    repo.release_jobs_of_node(&node_id).await?;
    repo.return_acquired_to_pending(&node_id).await?;
    repo.release_locks_of_node(&node_id).await?;
    // A member before it claims anything: the first look of every node's cluster monitor at
    // the nodes of its host (their share of maxConcurrentJobs) already counts this one.
    let host = setup::host_name();
    let now = repo.db_now().await?;
    repo.heartbeat(&node_id, &host, now).await?;
    idsync_engine::metered::heartbeat(true);
    let engine = setup::engine(project.clone(), repo.clone(), node_id.clone()).await?;

    let env_token = std::env::var("IDSYNC_ADMIN_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    let mut admin_hash = env_token.as_deref().map(sha256_hex);
    if admin_hash.is_none() && project.auth.tokens.is_empty() && project.auth.users.is_empty() {
        let file = ensure_admin_token_file(&project.dir)?;
        eprintln!(
            "no credentials configured: the admin token is in {}",
            file.path.display()
        );
        admin_hash = Some(file.sha256);
    }
    let auth = AuthState::new(&project.auth, admin_hash.as_deref())?
        .with_concurrent_password_checks(to_usize(project.settings.max_concurrent_logins));
    let connectors = setup::connectors(&project).await?;
    let state = ApiState::new(
        project.clone(),
        repo.clone(),
        connectors,
        node_id.clone(),
        auth,
    )
    .with_limits(idsync_api::Limits {
        request_timeout: Duration::from_millis(project.settings.request_timeout_ms),
        header_timeout: Duration::from_millis(project.settings.header_timeout_ms),
        max_connections: to_usize(project.settings.max_connections),
        max_sort_keys: to_usize(project.settings.max_sort_keys),
        max_json_depth: to_usize(project.settings.max_json_depth),
        max_object_bytes: to_usize(project.settings.max_object_bytes),
        max_filter_terms: to_usize(project.settings.max_filter_terms),
        max_unpaged_results: project
            .settings
            .max_unpaged_results
            .map_or(usize::MAX, to_usize),
        ..Default::default()
    })
    .with_metrics(metrics)
    .with_hooks(std::sync::Arc::new(idsync_api::sync::EngineHooks(
        engine.clone(),
    )))
    .with_system_actions(std::sync::Arc::new(idsync_api::livesync::LiveSyncActions(
        engine.clone(),
    )))
    .with_script_host(engine.script_host().clone());

    let bind = args
        .bind
        .clone()
        .unwrap_or_else(|| project.settings.bind.clone());
    let listener = tokio::net::TcpListener::bind(&bind)
        .await
        .with_context(|| format!("binding {bind}"))?;
    let addr = listener.local_addr()?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(idsync_engine::worker::run_worker(
        engine.clone(),
        usize::try_from(project.settings.max_concurrent_jobs).unwrap_or(usize::MAX),
        stop_rx.clone(),
    ));
    let monitor = tokio::spawn(idsync_engine::cluster::run_cluster_monitor(
        engine.clone(),
        stop_rx.clone(),
    ));
    let scheduler = tokio::spawn(idsync_engine::scheduler::run_scheduler(
        engine.clone(),
        stop_rx.clone(),
    ));
    let queues = tokio::spawn(idsync_engine::sync::queue::run_queue_consumers(
        engine.clone(),
        stop_rx.clone(),
    ));
    let heartbeat = {
        let repo = repo.clone();
        let node_id = node_id.clone();
        let every = Duration::from_millis(project.settings.heartbeat_interval_ms.max(100));
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            // The first beat was the one before startup.
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stop.changed() => return,
                }
                // The database's clock, which the monitors compare heartbeats on.
                let beat = match repo.db_now().await {
                    Ok(now) => repo.heartbeat(&node_id, &host, now).await,
                    Err(e) => Err(e),
                };
                idsync_engine::metered::heartbeat(beat.is_ok());
                if let Err(e) = beat {
                    tracing::warn!(error = %e, "heartbeat failed");
                }
            }
        })
    };

    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let shutdown = async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    };
    println!("listening on http://{addr}");
    let extra = idsync_api::engine_routes(engine.clone());
    // Scripts' `openidm` calls go through the same API (docs/scripts.md); kept alive while
    // serving and until the jobs have finished.
    let script_host = idsync_api::script_host::install(&state, extra.clone());
    idsync_api::serve_with(state, extra, listener, shutdown).await?;

    // Stop taking jobs, let in-flight ones finish, then say goodbye to the cluster.
    let _ = stop_tx.send(true);
    worker.await??;
    scheduler.await??;
    queues.await?;
    drop(script_host);
    monitor.await?;
    heartbeat.await?;
    // Hand over at once what others can take: jobs, queue events polled but not run, locks.
    repo.release_jobs_of_node(&node_id).await?;
    repo.return_acquired_to_pending(&node_id).await?;
    repo.release_locks_of_node(&node_id).await?;
    if let Err(e) = repo.set_node_state(&node_id, NodeState::Down).await {
        tracing::warn!(error = %e, "could not mark this node down");
    }
    Ok(ExitCode::SUCCESS)
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}
