//! `idsync recon`: one reconciliation in-process, with a progress bar on stderr and the summary
//! on stdout (docs/cli.md). Exit 0 on SUCCESS, 1 on FAILED or CANCELED, 2 on a usage or
//! configuration error. Ctrl-C cancels the run (in-flight objects finish) and still prints it.

use super::setup;
use super::summary_table;
use crate::cli::ReconArgs;
use anyhow::{Result, bail};
use idsync_engine::{Engine, EngineError, ReconOptions};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

pub async fn run(args: ReconArgs) -> Result<ExitCode> {
    if let Some(command) = args.action {
        return Ok(super::recon_server::run(command).await);
    }
    // clap requires both without a subcommand (`subcommand_negates_reqs`).
    let (Some(project_dir), Some(mapping)) = (&args.project, &args.mapping) else {
        bail!("--project and --mapping are required");
    };
    let project = setup::load(project_dir)?;
    if project.mapping(mapping).is_none() {
        let known: Vec<&str> = project.mappings.iter().map(|m| m.name.as_str()).collect();
        return Err(setup::ConfigInvalid(format!(
            "unknown mapping \"{mapping}\" (known: {})",
            known.join(", ")
        ))
        .into());
    }
    let repo = setup::open_repo(&project, args.repo.as_deref()).await?;
    let base = args
        .node_id
        .clone()
        .or_else(|| project.settings.node_id.clone())
        .unwrap_or_else(setup::host_name);
    // A node id of this process's own: an `idsync serve` on this host (same default id, or the
    // same IDSYNC_NODE_ID) keeps its in-flight jobs — this process neither releases nor renews
    // them. Work an earlier CLI process left is taken over once its leases expire.
    let node_id = cli_node_id(&base);
    let engine = setup::engine(project.clone(), repo, node_id).await?;
    let _script_host = setup::script_host(&engine).await?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(idsync_engine::worker::run_worker(
        engine.clone(),
        usize::try_from(project.settings.max_concurrent_jobs).unwrap_or(usize::MAX),
        stop_rx,
    ));
    let opts = ReconOptions {
        analyze: args.analyze,
        source_id: args.id.clone(),
        ..Default::default()
    };
    let run_id = loop {
        match engine.start_recon(mapping, opts.clone()).await {
            Ok(id) => break id,
            Err(EngineError::ActiveRun { run_id, .. }) => {
                let run = engine.repo.get_run(&run_id).await?;
                if run
                    .as_ref()
                    .is_some_and(|r| is_cli_node_of(&r.node_id, &base))
                {
                    eprintln!(
                        "finishing run {run_id} of mapping {mapping} left by an earlier idsync recon on this host"
                    );
                    wait(&engine, &run_id, None).await?;
                    continue;
                }
                bail!(
                    "mapping {mapping} already has an active reconciliation {run_id} (cancel it with `idsync recon cancel {run_id}` or wait for it)"
                );
            }
            Err(e) => return Err(e.into()),
        }
    };
    let bar = (!args.json).then(progress_bar);
    let summary = wait(&engine, &run_id, bar.as_ref()).await?;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let _ = stop_tx.send(true);
    worker.await??;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", summary_table::render(&summary));
        if args.analyze {
            let plan = engine
                .repo
                .query_plan(&run_id, &idsync_core::QueryRequest::all())
                .await?;
            print!("{}", summary_table::render_plan(&plan.results));
        }
    }
    Ok(match summary["state"].as_str() {
        Some("SUCCESS") => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    })
}

/// The node id of one `idsync recon` process: `<base>/cli-<pid>-<random>`, never the id of a
/// server or of another CLI process.
fn cli_node_id(base: &str) -> String {
    // The end of the id: its random part (the start of a time-ordered uuid is its time).
    let nonce: String = idsync_engine::managed_set::new_id()
        .chars()
        .rev()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect();
    format!("{base}{CLI_MARK}{}-{nonce}", std::process::id())
}

const CLI_MARK: &str = "/cli-";

/// Whether `node` is the id of an `idsync recon` process with this base.
fn is_cli_node_of(node: &str, base: &str) -> bool {
    node.strip_prefix(base)
        .is_some_and(|rest| rest.starts_with(CLI_MARK))
}

fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// Waits for a run to end, updating the bar; Ctrl-C requests a cancel.
async fn wait(engine: &Arc<Engine>, run_id: &str, bar: Option<&ProgressBar>) -> Result<Value> {
    let mut cancel_sent = false;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let summary = engine.recon_summary(run_id).await?;
        if let Some(b) = bar {
            update_bar(b, &summary);
        }
        if summary["state"] != "ACTIVE" {
            return Ok(summary);
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = &mut ctrl_c, if !cancel_sent => {
                cancel_sent = true;
                eprintln!("canceling run {run_id}: in-flight objects finish first");
                engine.cancel_recon(run_id).await?;
            }
        }
    }
}

fn update_bar(bar: &ProgressBar, s: &Value) {
    let src = &s["progress"]["source"]["existing"];
    let done = src["processed"].as_u64().unwrap_or(0);
    let total = src["total"].as_str().and_then(|t| t.parse::<u64>().ok());
    let stage = s["stageDescription"].as_str().unwrap_or("");
    match total {
        Some(t) if t > 0 => {
            if bar.length() != Some(t) {
                bar.set_length(t);
                bar.set_style(
                    ProgressStyle::with_template(
                        "{spinner} {msg} [{bar:40}] {pos}/{len} ({rate}, ETA {eta})",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .with_key("rate", rate_key)
                    .progress_chars("=> "),
                );
            }
            bar.set_position(done.min(t));
        }
        _ => {
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} {pos} objects ({rate})")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner())
                    .with_key("rate", rate_key),
            );
            bar.set_position(done);
        }
    }
    bar.set_message(stage.to_string());
}

/// The bar's rate as whole objects per second with thousands separators (`6,820/s`), not
/// indicatif's `{per_sec}` with four decimals.
fn rate_key(state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write) {
    let per_sec = state.per_sec();
    let shown = if per_sec.is_finite() && per_sec > 0.0 {
        summary_table::thousands(per_sec.round() as u64)
    } else {
        "0".to_string()
    };
    let _ = write!(w, "{shown}/s");
}
