//! PostgreSQL backend (placeholder until the PostgreSQL helper replaces this file).

use crate::error::{RepoError, RepoResult};
use crate::repository::Repository;
use std::sync::Arc;

pub async fn open(url: &str) -> RepoResult<Arc<dyn Repository>> {
    let _ = url;
    Err(RepoError::Unavailable(
        "postgres backend not built yet".to_string(),
    ))
}
