//! Command-line syntax. Every subcommand has `--help`; the flags are a stable
//! interface (docs/cli.md, generated from this file).

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "idsync",
    version,
    about = "Identity synchronization engine: reconciliation and sync between CSV, SQL, LDAP and managed objects, with IDM's configuration files"
)]
pub struct Cli {
    /// More log output on stderr (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the REST API (under /openidm) and run this node's jobs.
    Serve(ServeArgs),
    /// Run one reconciliation in-process and print its summary; or list, show and cancel the
    /// runs of a running server (`recon list|show|cancel`).
    Recon(ReconArgs),
    /// Project configuration commands.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Connector commands.
    #[command(subcommand)]
    Connector(ConnectorCommand),
    /// Generate test data.
    #[command(subcommand)]
    Generate(GenerateCommand),
    /// Queued-sync commands against a running server.
    #[command(subcommand)]
    Queue(QueueCommand),
    /// Credentials for conf/authentication.json.
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Benchmarks on a throw-away project (BENCHMARKS.md quotes them).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// The manual's generated pages (docs/cli.md).
    #[command(subcommand, hide = true)]
    Docs(DocsCommand),
}

#[derive(Debug, Subcommand)]
pub enum DocsCommand {
    /// Print the CLI reference (docs/cli.md) as markdown.
    Cli,
}

#[derive(Debug, Args)]
pub struct ProjectArg {
    /// The project folder (holding conf/).
    #[arg(long, env = "IDSYNC_PROJECT")]
    pub project: PathBuf,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ReconArgs {
    #[command(subcommand)]
    pub action: Option<ReconCommand>,
    /// The project folder (holding conf/).
    #[arg(long, env = "IDSYNC_PROJECT", required = true)]
    pub project: Option<PathBuf>,
    /// The mapping to reconcile.
    #[arg(long, required = true)]
    pub mapping: Option<String>,
    /// Repository URL: sqlite://PATH or postgres://... (default: sqlite://DIR/.idsync/repo.db).
    #[arg(long, env = "IDSYNC_REPO")]
    pub repo: Option<String>,
    /// The base of this process's node id, which is `<base>/cli-<pid>-<random>` so that it never
    /// takes or releases a server's work (default: the host name).
    #[arg(long, env = "IDSYNC_NODE_ID")]
    pub node_id: Option<String>,
    /// Dry run: assess and decide, write nothing, store the plan.
    #[arg(long)]
    pub analyze: bool,
    /// Print the run summary JSON as the only output on stdout (no progress bar).
    #[arg(long)]
    pub json: bool,
    /// Reconcile only this source id (IDM's reconById).
    #[arg(long)]
    pub id: Option<String>,
}

/// The runs of a running server (`GET /openidm/recon`, docs/rest.md).
#[derive(Debug, Subcommand)]
pub enum ReconCommand {
    /// List the server's runs, newest first, as a table (or one summary JSON per line).
    List(ReconListArgs),
    /// Show one run's summary as `idsync recon` prints it (or its JSON).
    Show(ReconRunArgs),
    /// Cancel an active run (in-flight objects finish first) and show what it answered.
    Cancel(ReconRunArgs),
}

#[derive(Debug, Args)]
pub struct ReconListArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Only this mapping's runs.
    #[arg(long)]
    pub mapping: Option<String>,
    /// One run summary JSON per line instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ReconRunArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The run's id (`idsync recon list` shows them).
    pub id: String,
    /// Print the server's JSON answer instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub project: ProjectArg,
    /// Address to listen on (port 0 picks a free port; the bound address is printed).
    #[arg(long, env = "IDSYNC_BIND")]
    pub bind: Option<String>,
    /// Repository URL: sqlite://PATH or postgres://... (default: sqlite://DIR/.idsync/repo.db).
    #[arg(long, env = "IDSYNC_REPO")]
    pub repo: Option<String>,
    /// This node's id (default: the host name).
    #[arg(long, env = "IDSYNC_NODE_ID")]
    pub node_id: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a project: print every error as `FILE: /json/pointer: message`.
    Validate(ProjectArg),
}

#[derive(Debug, Subcommand)]
pub enum ConnectorCommand {
    /// Check that a connector reaches its system.
    Test {
        #[command(flatten)]
        project: ProjectArg,
        /// The connector name (`system/<name>`).
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum GenerateCommand {
    /// HR-style users: uid and 9 attributes, deterministic for a seed.
    Hr {
        #[arg(long)]
        rows: u64,
        #[arg(long)]
        out: PathBuf,
        /// Index of the first row (to extend an earlier file with new people).
        #[arg(long, default_value_t = 0)]
        start: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Create a random API token: prints the token alone on the first line, then the JSON entry
    /// to add to the "tokens" of conf/authentication.json (it holds only the token's SHA-256).
    NewToken {
        /// The token's name (shown in logs and audit as the caller).
        #[arg(long)]
        name: String,
        /// What the token may do.
        #[arg(long, value_enum)]
        role: RoleArg,
    },
    /// Read a password (one line) on stdin and print its argon2 PHC string, the "password" of a
    /// user in conf/authentication.json.
    HashPassword,
}

/// API roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    /// Everything.
    Admin,
    /// GET requests only.
    Reader,
}

/// How to reach a running server (`idsync queue list`, ...).
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// The server's base URL.
    #[arg(long, env = "IDSYNC_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// API token sent as `Authorization: Bearer` (default: IDSYNC_TOKEN, then
    /// IDSYNC_ADMIN_TOKEN).
    #[arg(long, env = "IDSYNC_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// List queued-sync events (GET /openidm/sync/queue) as a table, or JSON lines with --json.
    List(QueueListArgs),
}

#[derive(Debug, Args)]
pub struct QueueListArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Only this mapping's events.
    #[arg(long)]
    pub mapping: Option<String>,
    /// Only events in this state.
    #[arg(long, value_enum, ignore_case = true)]
    pub state: Option<EventStateArg>,
    /// One event JSON per line instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The state of a queue event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EventStateArg {
    /// Waiting to be executed.
    #[value(name = "PENDING")]
    Pending,
    /// Taken by a node (executing, or waiting for its retry delay).
    #[value(name = "ACQUIRED")]
    Acquired,
}

impl EventStateArg {
    pub fn as_str(self) -> &'static str {
        match self {
            EventStateArg::Pending => "PENDING",
            EventStateArg::Acquired => "ACQUIRED",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Queued-sync drain rate: commit N managed users with their queue events, start the queue
    /// consumers and time them until the queue is empty; check the target holds N rows.
    Queue(BenchQueueArgs),
}

/// The target of `idsync bench queue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchTarget {
    /// A CSV file written by the CSV connector.
    Csv,
    /// A table of a fresh PostgreSQL database (made with psql on --pg-admin-url, dropped after).
    Sql,
}

#[derive(Debug, Args)]
pub struct BenchQueueArgs {
    /// Managed users created, one queue event each.
    #[arg(long, default_value_t = 50_000)]
    pub events: u64,
    /// Where the mapping writes.
    #[arg(long, value_enum)]
    pub target: BenchTarget,
    /// The mapping's queuedSync.workers.
    #[arg(long, default_value_t = 1)]
    pub workers: u64,
    /// The mapping's queuedSync.pageSize.
    #[arg(long, default_value_t = 100)]
    pub page_size: u64,
    /// The mapping's queuedSync.pollingInterval (ms).
    #[arg(long, default_value_t = 10)]
    pub polling_interval: u64,
    /// The mapping's queuedSync.maxQueueSize.
    #[arg(long, default_value_t = 20_000)]
    pub max_queue_size: u64,
    /// Repository URL (default: a new SQLite file in the temp project). It must hold no queue
    /// events of the benchmark's mapping.
    #[arg(long)]
    pub repo: Option<String>,
    /// Use a fresh PostgreSQL database as the repository (made on --pg-admin-url, dropped after).
    #[arg(long, conflicts_with = "repo")]
    pub pg_repo: bool,
    /// PostgreSQL server for the sql target and --pg-repo; psql must be on the PATH.
    #[arg(
        long,
        env = "IDSYNC_BENCH_PG",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub pg_admin_url: String,
    /// Keep the temp project folder (its path is printed).
    #[arg(long)]
    pub keep: bool,
    /// Print one JSON summary instead of text.
    #[arg(long)]
    pub json: bool,
}
