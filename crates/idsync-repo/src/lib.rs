//! idsync-repo: the repository of idsync — managed objects, links, runs, plans, the target-id
//! registry, jobs and leases, nodes, locks, the sync queue, dead letters, audit and liveSync
//! tokens — behind one async [`Repository`] trait with two backends: SQLite (embedded, one
//! node) and PostgreSQL (cluster).
//!
//! This crate owns persistence only: it never decides situations or actions, and it never
//! filters in memory what the database can filter (CREST filters are translated to SQL).
//! Atomic multi-row writes are values ([`ChangeSet`]) committed with [`Repository::commit`],
//! optionally fenced by a job token.

pub mod changes;
pub mod error;
pub mod model;
pub mod paging;
pub mod postgres;
pub mod recon_entry;
pub mod repository;
pub mod sqlite;
#[cfg(any(test, feature = "testsuite"))]
pub mod testsuite;

pub use changes::{ChangeSet, CommitOutcome, Fence, Op};
pub use error::{ConflictKind, RepoError, RepoResult};
pub use model::*;
pub use repository::Repository;

use std::sync::Arc;

/// Opens a repository from a URL: `sqlite://PATH` (file and parent directories created; WAL)
/// or `postgres://...` / `postgresql://...`. Migrations are applied before it returns.
pub async fn open(url: &str) -> RepoResult<Arc<dyn Repository>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        postgres::open(url).await
    } else if url.starts_with("sqlite:") {
        sqlite::open(url).await
    } else {
        Err(RepoError::Unavailable(format!(
            "unsupported repository URL (expected sqlite:// or postgres://): {url}"
        )))
    }
}
