//! The PostgreSQL backend (cluster mode): every node of a cluster opens the same database.
//!
//! It owns the SQL for PostgreSQL only: schema migrations (under an advisory lock, so nodes may
//! start together), CREST filter → jsonb SQL translation, keyset paging, leases with
//! `FOR UPDATE SKIP LOCKED`, and fenced atomic commits. It must not decide anything the engine
//! decides, and never filters in memory what SQL can filter.
//!
//! Storage conventions (see `migrations/postgres/0001_init.sql`): revisions are counters shown
//! as decimal strings, times are `bigint` nanoseconds since the epoch, ids are `COLLATE "C"`.

mod audit;
mod cluster;
mod commit;
mod convert;
mod filter;
mod jobs;
mod links;
mod migrate;
mod objects;
mod query;
mod queue;
mod repo_impl;
mod runs;
mod stats;

use crate::error::{RepoError, RepoResult};
use crate::repository::Repository;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::sync::Arc;
use tokio_postgres::NoTls;

/// Connections per node. Recon workers, queue consumers and the REST API share them.
const POOL_SIZE: usize = 16;

/// Prepared statements kept per connection before its cache is emptied. CREST queries are
/// prepared and cached by their text, which depends on the filter's shape and not on its values
/// (bound), so a workload's hot statements stay far below this; a client sending ever new
/// filter shapes cannot grow the sessions without bound.
const MAX_CACHED_STATEMENTS: usize = 256;

/// Turns PostgreSQL's JIT off for the repository's sessions, unless the URL's `options` set it.
/// The repository's statements are short lookups and writes whose cost estimates can still pass
/// `jit_above_cost` (a batch link lookup of a page: a recursive CTE and a few thousand ids), and
/// compiling them costs far more than running them: measured 287 ms of JIT for a 42 ms lookup,
/// on every call because each is planned afresh — it tripled PostgreSQL's CPU per object in a
/// 3-node clustered recon.
fn without_jit(config: &mut tokio_postgres::Config) {
    default_option(config, "jit", "off");
}

/// Adds `-c name=value` to the connection's options unless the URL's `options` set `name`.
fn default_option(config: &mut tokio_postgres::Config, name: &str, value: &str) {
    let options = config.get_options().unwrap_or_default().to_string();
    if !options.contains(name) {
        config.options(format!("{options} -c {name}={value}").trim());
    }
}

fn build_pool(config: tokio_postgres::Config) -> RepoResult<Pool> {
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(POOL_SIZE)
        .build()
        .map_err(|e| RepoError::Unavailable(format!("PostgreSQL pool: {e}")))
}

/// The PostgreSQL repository: connection pools over a migrated database.
///
/// Two pools: `pool` for everything, and `generic` for object queries whose filter only tests
/// equality (correlation queries: one per source object of a recon). Those are prepared once per
/// connection and must run on PostgreSQL's generic plan — their custom plan is the same plan,
/// made afresh on every call (measured: 0.27 ms to plan, 0.025 ms to run). PostgreSQL's own
/// choice does not get there: it compares the generic plan with the average of every custom plan
/// made so far, and during a first load the early ones were planned on an almost empty table and
/// look cheap, so a statement prepared early plans on every call for the rest of the run. The
/// `generic` pool's sessions set `plan_cache_mode = force_generic_plan`; a value-dependent
/// filter (`sw`, `co`, ranges, a paging cookie) never goes there, since its plan may depend on
/// the value (a prefix match uses the index only with the value known).
pub struct PgRepository {
    pool: Pool,
    generic: Pool,
    stats: Arc<stats::StatsKeeper>,
}

impl std::fmt::Debug for PgRepository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgRepository")
            .field("pool", &self.pool.status())
            .finish()
    }
}

impl PgRepository {
    /// Connects, applies pending migrations and returns the repository.
    pub async fn connect(url: &str) -> RepoResult<Self> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| RepoError::Unavailable(format!("invalid PostgreSQL URL: {e}")))?;
        without_jit(&mut config);
        let mut generic = config.clone();
        default_option(&mut generic, "plan_cache_mode", "force_generic_plan");
        let repo = PgRepository {
            pool: build_pool(config)?,
            generic: build_pool(generic)?,
            stats: Arc::default(),
        };
        let mut client = repo.client().await?;
        migrate::apply(&mut client).await?;
        Ok(repo)
    }

    pub(crate) async fn client(&self) -> RepoResult<deadpool_postgres::Client> {
        Self::client_of(&self.pool).await
    }

    /// A session that runs prepared statements on their generic plan (see [`PgRepository`]).
    pub(crate) async fn generic_plan_client(&self) -> RepoResult<deadpool_postgres::Client> {
        Self::client_of(&self.generic).await
    }

    async fn client_of(pool: &Pool) -> RepoResult<deadpool_postgres::Client> {
        let client = pool
            .get()
            .await
            .map_err(|e| RepoError::Unavailable(format!("PostgreSQL: {e}")))?;
        if client.statement_cache.size() > MAX_CACHED_STATEMENTS {
            client.statement_cache.clear();
        }
        Ok(client)
    }
}

/// Opens (and migrates) a PostgreSQL repository from a `postgres://` URL.
pub async fn open(url: &str) -> RepoResult<Arc<dyn Repository>> {
    Ok(Arc::new(PgRepository::connect(url).await?))
}

#[cfg(test)]
mod jit_tests {
    use super::without_jit;

    fn options(url: &str) -> Option<String> {
        let mut c: tokio_postgres::Config = url.parse().expect("a valid URL");
        without_jit(&mut c);
        c.get_options().map(str::to_string)
    }

    #[test]
    fn jit_is_turned_off_unless_the_url_chooses() {
        assert_eq!(options("postgres://h/db").as_deref(), Some("-c jit=off"));
        assert_eq!(
            options("postgres://h/db?options=-c%20statement_timeout%3D5s").as_deref(),
            Some("-c statement_timeout=5s -c jit=off")
        );
        assert_eq!(
            options("postgres://h/db?options=-c%20jit%3Don").as_deref(),
            Some("-c jit=on")
        );
    }
}
