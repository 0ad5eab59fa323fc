//! The connector contract: what every connected system (and the managed-object store) offers
//! to the engine and the REST API.

use async_trait::async_trait;
use idsync_core::{ErrorCode, HasErrorCode, QueryPage, QueryRequest};
use serde_json::Value;
use std::sync::Arc;

/// A failure of a connector operation, classified so that callers can decide what to do:
/// queued sync retries `Unavailable`, recon reports `InvalidData` on the object, REST maps each
/// to one status.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConnectorError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// The target system refused the values; carries the server's message.
    #[error("invalid data: {0}")]
    InvalidData(String),
    /// The object changed since it was read (`_rev` mismatch).
    #[error("revision mismatch: {0}")]
    RevisionMismatch(String),
    /// The request cannot be served by this connector (an extended filter operator it cannot
    /// translate, an unknown object type, a bad cookie).
    #[error("{0}")]
    BadRequest(String),
    /// The system cannot be reached: connection refused, timeout, server down. Retryable.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A request was sent but no answer came: its effect is unknown.
    #[error("indeterminate: {0}")]
    Indeterminate(String),
    /// The connector's configuration cannot work (bad URL, missing property).
    #[error("connector configuration: {0}")]
    Config(String),
    #[error("{0}")]
    Internal(String),
}

impl HasErrorCode for ConnectorError {
    fn error_code(&self) -> ErrorCode {
        match self {
            ConnectorError::NotFound(_) => ErrorCode::NotFound,
            ConnectorError::AlreadyExists(_) => ErrorCode::Conflict,
            ConnectorError::InvalidData(_) => ErrorCode::InvalidData,
            ConnectorError::RevisionMismatch(_) => ErrorCode::PreconditionFailed,
            ConnectorError::BadRequest(_) => ErrorCode::BadRequest,
            ConnectorError::Unavailable(_) => ErrorCode::Unavailable,
            ConnectorError::Indeterminate(_) => ErrorCode::Indeterminate,
            ConnectorError::Config(_) => ErrorCode::Config,
            ConnectorError::Internal(_) => ErrorCode::Internal,
        }
    }
}

pub type ConnectorResult<T> = Result<T, ConnectorError>;

/// A connected system: one configured connector instance (`system/<name>`).
#[async_trait]
pub trait Connector: Send + Sync + std::fmt::Debug {
    /// The instance name (`system/<name>/...`).
    fn name(&self) -> &str;

    /// Checks connectivity (bind, open the file, a trivial query).
    async fn test(&self) -> ConnectorResult<()>;

    /// The schema as configured in `objectTypes` (what `?_action=schema` returns).
    fn schema(&self) -> Value;

    /// The object set of one object type (`system/<name>/<type>`).
    fn object_set(&self, object_type: &str) -> ConnectorResult<Arc<dyn ObjectSet>>;
}

/// One collection of objects with `_id`s: `system/<name>/<type>` or `managed/<type>`.
///
/// Objects are JSON objects with idsync property names (the `objectTypes` mapping to native
/// names is the connector's business) and a string `_id`; `_rev` where the system has one.
#[async_trait]
pub trait ObjectSet: Send + Sync + std::fmt::Debug {
    /// Reads one object; `Ok(None)` when it does not exist.
    async fn get(&self, id: &str) -> ConnectorResult<Option<Value>>;

    /// Reads several objects at once; the result holds only those that exist, in no particular
    /// order. Recon reads the linked targets of a whole page with one call; connectors that can
    /// do it in one round trip (SQL `IN`, an LDAP `|` filter, one CSV scan) override this.
    async fn get_many(&self, ids: &[String]) -> ConnectorResult<Vec<Value>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(v) = self.get(id).await? {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// Runs a query. The filter is translated to the native query language; a filter the
    /// connector cannot translate is a `BadRequest`, never "fetch all and filter".
    async fn query(&self, request: &QueryRequest) -> ConnectorResult<QueryPage>;

    /// A paged query whose cookies any process can continue, now or after this one is gone:
    /// reconciliation hands its source pages to whatever node claims them, and re-runs a page
    /// with the same cookie after its node died. Connectors whose cookies are positions in the
    /// data (SQL, CSV, the repository: keyset cookies) are resumable already; one whose cookies
    /// name state in this process (LDAP's paged-results cursors) overrides this.
    async fn query_resumable(&self, request: &QueryRequest) -> ConnectorResult<QueryPage> {
        self.query(request).await
    }

    /// The object a create of `object` (with `id`, as [`ObjectSet::create`] takes it) collides
    /// with, if there is one: the object with the id or name that create would give it. A
    /// reconciliation page re-run after its node died adopts the target its earlier attempt
    /// created but never linked, instead of failing with `AlreadyExists` or creating a second
    /// one. The default reads the object with [`ObjectSet::creation_id`].
    async fn find_existing(
        &self,
        id: Option<&str>,
        object: &Value,
    ) -> ConnectorResult<Option<Value>> {
        match self.creation_id(id, object) {
            Some(id) => self.get(&id).await,
            None => Ok(None),
        }
    }

    /// The id a create of `object` gives it when the caller or the object decides it (not the
    /// system): the client-assigned id, else `_id`. Connectors that name new objects by a
    /// property (CSV's uid column, a table's key column) say so.
    fn creation_id(&self, id: Option<&str>, object: &Value) -> Option<String> {
        id.or_else(|| object.get("_id").and_then(Value::as_str))
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }

    /// The number of objects, when the system can count cheaply (SQL, CSV, repository);
    /// `None` otherwise (LDAP).
    async fn count(&self) -> ConnectorResult<Option<u64>>;

    /// Creates an object. `id` is the client-assigned `_id`, if any (it may also be in
    /// `object._id`). Returns the created object as stored, with its `_id`.
    async fn create(&self, id: Option<&str>, object: Value) -> ConnectorResult<Value>;

    /// Replaces an object. `rev` is a precondition when the system has revisions.
    /// Returns the object as stored.
    async fn update(&self, id: &str, rev: Option<&str>, object: Value) -> ConnectorResult<Value>;

    /// Deletes an object. Returns the deleted object when the system can say.
    async fn delete(&self, id: &str, rev: Option<&str>) -> ConnectorResult<Option<Value>>;

    /// Changes after `token` for liveSync: `None` asks for the current token only.
    async fn changes_since(&self, token: Option<&Value>) -> ConnectorResult<ChangeBatch> {
        let _ = token;
        Err(ConnectorError::BadRequest(
            "this object set does not support liveSync".into(),
        ))
    }
}

/// One change seen by liveSync.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    CreateOrUpdate { id: String, object: Value },
    Delete { id: String },
}

impl Change {
    /// The `_id` of the object that changed.
    pub fn id(&self) -> &str {
        match self {
            Change::CreateOrUpdate { id, .. } | Change::Delete { id } => id,
        }
    }
}

/// The changes after a token and the token that covers them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChangeBatch {
    pub changes: Vec<Change>,
    pub token: Option<Value>,
    /// The token just after each change, when the connector can tell (same length as
    /// `changes`): liveSync commits each change with its own token, so a pass that stops at a
    /// failing change leaves the token just before it. Empty: only `token` (after the batch).
    /// `token` may cover more than the last change (source records that were no change of
    /// this object set); the caller stores it once every change of the batch is done.
    pub tokens: Vec<Value>,
    /// When each change happened in the source, where the source says (a timestamp column,
    /// `modifyTimestamp`, an accesslog `reqStart`): the lag metric's start. Same length as
    /// `changes`, or empty.
    pub times: Vec<Option<chrono::DateTime<chrono::Utc>>>,
}
