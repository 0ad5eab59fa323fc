//! `idsync config validate`: every problem as `FILE: /json/pointer: message` (docs/cli.md).
//! The loader checks the files' shapes and references; the schedules' triggers (Quartz cron
//! syntax, time zones, start and end times) are checked by the scheduler, and every script is
//! compiled by the engine.

use anyhow::Result;
use idsync_engine::scheduler::{trigger_diagnostics, trigger_diagnostics_of_files};
use std::path::Path;
use std::process::ExitCode;

pub fn run(dir: &Path) -> Result<ExitCode> {
    match idsync_config::load_project_from_env(dir) {
        Ok(loaded) => {
            let errors = trigger_diagnostics(&loaded.project);
            for e in &errors {
                eprintln!("{e}");
            }
            // Scripts are compiled as serve and recon compile them: a syntax error is an error
            // of the configuration.
            let script_errors = idsync_engine::script_errors(&loaded.project);
            for e in &script_errors {
                eprintln!("{e}");
            }
            for w in &loaded.warnings {
                eprintln!("warning: {w}");
            }
            let count = errors.len() + script_errors.len();
            if count > 0 {
                eprintln!("{count} error(s)");
                return Ok(ExitCode::from(2));
            }
            println!(
                "{}: valid ({} mapping(s), {} connector(s))",
                dir.display(),
                loaded.project.mappings.len(),
                loaded.project.connectors.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(mut diags) => {
            // Report the trigger errors too, so that one run shows every error.
            for d in trigger_diagnostics_of_files(dir) {
                let known = diags
                    .errors
                    .iter()
                    .any(|e| e.file == d.file && e.pointer == d.pointer);
                if !known {
                    diags.errors.push(d);
                }
            }
            eprint!("{diags}");
            eprintln!("{} error(s)", diags.errors.len());
            Ok(ExitCode::from(2))
        }
    }
}
