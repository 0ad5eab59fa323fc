//! One module per subcommand.

pub mod generate;

use crate::cli::{Cli, Command, GenerateCommand};
use anyhow::Result;
use std::process::ExitCode;

pub fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info,idsync=info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("IDSYNC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Generate(GenerateCommand::Hr {
            rows,
            out,
            start,
            seed,
        }) => {
            generate::write_hr_csv(&out, rows, start, seed)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Recon(_) | Command::Config(_) | Command::Connector(_) => {
            anyhow::bail!("not available in this build yet")
        }
    }
}
