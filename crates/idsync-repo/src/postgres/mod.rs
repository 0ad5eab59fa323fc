//! The PostgreSQL backend (cluster mode): every node of a cluster opens the same database.
//!
//! It owns the SQL for PostgreSQL only: schema migrations (under an advisory lock, so nodes may
//! start together), CREST filter → jsonb SQL translation, keyset paging, leases with
//! `FOR UPDATE SKIP LOCKED`, and fenced atomic commits. It must not decide anything the engine
//! decides, and never filters in memory what SQL can filter.

#[allow(dead_code)] // wired in as the backend lands
mod filter;

use crate::error::{RepoError, RepoResult};
use crate::repository::Repository;
use std::sync::Arc;

/// Opens (and migrates) a PostgreSQL repository from a `postgres://` URL.
pub async fn open(url: &str) -> RepoResult<Arc<dyn Repository>> {
    Err(RepoError::Unavailable(format!("postgres backend not built yet: {url}")))
}
