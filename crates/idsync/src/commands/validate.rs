//! `idsync config validate`: every problem as `FILE: /json/pointer: message` (SPEC §15, §16).

use anyhow::Result;
use std::path::Path;
use std::process::ExitCode;

pub fn run(dir: &Path) -> Result<ExitCode> {
    match idsync_config::load_project_from_env(dir) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                eprintln!("warning: {w}");
            }
            println!(
                "{}: valid ({} mapping(s), {} connector(s))",
                dir.display(),
                loaded.project.mappings.len(),
                loaded.project.connectors.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(diags) => {
            eprint!("{diags}");
            eprintln!("{} error(s)", diags.errors.len());
            Ok(ExitCode::from(2))
        }
    }
}
