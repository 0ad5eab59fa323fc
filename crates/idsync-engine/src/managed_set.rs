//! `managed/<type>` as an object set: the repository's managed objects behind the same contract
//! as every connector, so a mapping reads and writes them like any system.
//!
//! It lives in the engine, not in idsync-connectors, because recon writes managed targets
//! through the page's change set (one transaction with the links and statistics) and only the
//! engine sees both; this type serves the single-object paths (reads, correlation queries,
//! REST and implicit-sync writes).

use async_trait::async_trait;
use idsync_connectors::{ConnectorError, ConnectorResult, ObjectSet};
use idsync_core::{QueryPage, QueryRequest};
use idsync_repo::{ChangeSet, Op, RepoError, Repository};
use serde_json::Value;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct ManagedObjectSet {
    repo: Arc<dyn Repository>,
    object_type: String,
}

impl ManagedObjectSet {
    pub fn new(repo: Arc<dyn Repository>, object_type: impl Into<String>) -> Self {
        Self {
            repo,
            object_type: object_type.into(),
        }
    }

    pub fn object_type(&self) -> &str {
        &self.object_type
    }
}

/// Repository failures as connector failures, so callers handle one error vocabulary per
/// object set.
pub fn repo_to_connector(e: RepoError) -> ConnectorError {
    match e {
        RepoError::NotFound(m) => ConnectorError::NotFound(m),
        RepoError::Conflict(k) => ConnectorError::AlreadyExists(k.to_string()),
        e @ RepoError::RevisionMismatch { .. } => ConnectorError::RevisionMismatch(e.to_string()),
        RepoError::BadQuery(m) => ConnectorError::BadRequest(m),
        RepoError::Unavailable(m) => ConnectorError::Unavailable(m),
        e
        @ (RepoError::StaleToken { .. } | RepoError::LockLost { .. } | RepoError::Internal(_)) => {
            ConnectorError::Internal(e.to_string())
        }
    }
}

/// A new server-assigned id. Time-ordered (UUIDv7): rows created together land next to each
/// other in the primary-key B-trees, where random ids scatter a bulk load over every page.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[async_trait]
impl ObjectSet for ManagedObjectSet {
    async fn get(&self, id: &str) -> ConnectorResult<Option<Value>> {
        self.repo
            .get_object(&self.object_type, id)
            .await
            .map_err(repo_to_connector)
    }

    async fn get_many(&self, ids: &[String]) -> ConnectorResult<Vec<Value>> {
        self.repo
            .get_objects(&self.object_type, ids)
            .await
            .map_err(repo_to_connector)
    }

    async fn query(&self, request: &QueryRequest) -> ConnectorResult<QueryPage> {
        self.repo
            .query_objects(&self.object_type, request)
            .await
            .map_err(repo_to_connector)
    }

    async fn count(&self) -> ConnectorResult<Option<u64>> {
        self.repo
            .count_objects(&self.object_type, None)
            .await
            .map(Some)
            .map_err(repo_to_connector)
    }

    async fn create(&self, id: Option<&str>, mut object: Value) -> ConnectorResult<Value> {
        let id = id
            .map(str::to_string)
            .or_else(|| {
                object
                    .get("_id")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_else(new_id);
        if let Some(o) = object.as_object_mut() {
            o.insert("_id".into(), Value::String(id.clone()));
            o.remove("_rev");
        }
        let changes = ChangeSet::new().with(Op::CreateObject {
            object_type: self.object_type.clone(),
            id: id.clone(),
            value: object,
        });
        self.repo.commit(changes).await.map_err(repo_to_connector)?;
        self.get(&id)
            .await?
            .ok_or_else(|| ConnectorError::Internal(format!("{id} vanished")))
    }

    async fn update(&self, id: &str, rev: Option<&str>, object: Value) -> ConnectorResult<Value> {
        let changes = ChangeSet::new().with(Op::UpdateObject {
            object_type: self.object_type.clone(),
            id: id.to_string(),
            expected_rev: rev.map(str::to_string),
            value: object,
        });
        self.repo.commit(changes).await.map_err(repo_to_connector)?;
        self.get(id)
            .await?
            .ok_or_else(|| ConnectorError::NotFound(id.to_string()))
    }

    async fn delete(&self, id: &str, rev: Option<&str>) -> ConnectorResult<Option<Value>> {
        let old = self.get(id).await?;
        if old.is_none() {
            return Err(ConnectorError::NotFound(format!(
                "managed/{}/{id}",
                self.object_type
            )));
        }
        let changes = ChangeSet::new().with(Op::DeleteObject {
            object_type: self.object_type.clone(),
            id: id.to_string(),
            expected_rev: rev.map(str::to_string),
        });
        self.repo.commit(changes).await.map_err(repo_to_connector)?;
        Ok(old)
    }
}
