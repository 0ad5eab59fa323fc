//! The `idsync` binary: the command line over the engine (docs/cli.md).
//!
//! Exit codes: 0 success; 1 a run that ended FAILED or CANCELED; 2 a usage or configuration
//! error. Progress goes to stderr, results to stdout, so `--json` output can be piped.

mod cli;
mod commands;
mod splitmix;

use clap::Parser;
use std::process::ExitCode;

/// mimalloc instead of the system allocator: sync and recon allocate many small JSON values on
/// several threads at once, where glibc's malloc spent a third of a queue drain's CPU (ADR 0006).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    commands::init_logging(cli.verbose);
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            if let Some(c) = e.downcast_ref::<commands::setup::ConfigInvalid>() {
                eprintln!("{c}");
            } else {
                eprintln!("error: {e:#}");
            }
            ExitCode::from(2)
        }
    }
}
