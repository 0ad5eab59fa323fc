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

/// The PostgreSQL repository: a connection pool over a migrated database.
pub struct PgRepository {
    pool: Pool,
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
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| RepoError::Unavailable(format!("invalid PostgreSQL URL: {e}")))?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| RepoError::Unavailable(format!("PostgreSQL pool: {e}")))?;
        let repo = PgRepository {
            pool,
            stats: Arc::default(),
        };
        let mut client = repo.client().await?;
        migrate::apply(&mut client).await?;
        Ok(repo)
    }

    pub(crate) async fn client(&self) -> RepoResult<deadpool_postgres::Client> {
        self.pool
            .get()
            .await
            .map_err(|e| RepoError::Unavailable(format!("PostgreSQL: {e}")))
    }
}

/// Opens (and migrates) a PostgreSQL repository from a `postgres://` URL.
pub async fn open(url: &str) -> RepoResult<Arc<dyn Repository>> {
    Ok(Arc::new(PgRepository::connect(url).await?))
}
