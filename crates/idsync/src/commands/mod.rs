//! One module per subcommand.

mod auth;
mod bench;
mod client;
mod connector;
mod docs;
pub mod generate;
mod queue;
mod recon;
mod recon_server;
mod sample;
mod serve;
pub mod setup;
mod summary_table;
mod table;
mod validate;

use crate::cli::{AuthCommand, Cli, Command, ConfigCommand, ConnectorCommand, GenerateCommand};
use anyhow::Result;
use std::process::ExitCode;

pub fn init_logging(verbose: u8) {
    let default = match verbose {
        // Scripts' `logger` lines at info and above are part of the default log (docs/scripts.md).
        0 => "warn,idsync::script=info",
        1 => "info",
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

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
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
        Command::Config(ConfigCommand::Validate(p)) => validate::run(&p.project),
        Command::Recon(args) => runtime()?.block_on(recon::run(args)),
        Command::Serve(args) => runtime()?.block_on(serve::run(args)),
        Command::Connector(ConnectorCommand::Test { project, name }) => {
            runtime()?.block_on(connector::test(&project.project, &name))
        }
        Command::Queue(crate::cli::QueueCommand::List(args)) => {
            runtime()?.block_on(queue::list(args))
        }
        Command::Auth(AuthCommand::NewToken { name, role }) => auth::new_token(&name, role),
        Command::Auth(AuthCommand::HashPassword) => auth::hash_password(),
        Command::Bench(crate::cli::BenchCommand::Queue(args)) => {
            runtime()?.block_on(bench::queue(args))
        }
        Command::Docs(crate::cli::DocsCommand::Cli) => {
            print!("{}", docs::cli_markdown());
            Ok(ExitCode::SUCCESS)
        }
    }
}
