//! The one error enum of the repository crate. Each variant maps to an
//! [`idsync_core::ErrorCode`]; backends translate their driver errors into these variants and
//! must not leak driver types to callers.

use idsync_core::{ErrorCode, HasErrorCode};

/// Why a conflicting write was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConflictKind {
    /// An object, link or record with this id (or unique key) already exists.
    AlreadyExists { what: String, id: String },
    /// The mapping already has an active run; its id is given so the API can answer 409 with it.
    ActiveRun {
        mapping: String,
        active_run_id: String,
    },
    /// A queue event is ACQUIRED by another node and cannot be deleted.
    AcquiredEvent { id: String, node_id: Option<String> },
    /// Another unique constraint (e.g. a link's second id) was violated.
    Other(String),
}

impl std::fmt::Display for ConflictKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConflictKind::AlreadyExists { what, id } => write!(f, "{what} {id} already exists"),
            ConflictKind::ActiveRun {
                mapping,
                active_run_id,
            } => write!(
                f,
                "mapping {mapping} already has an active run {active_run_id}"
            ),
            ConflictKind::AcquiredEvent { id, node_id } => match node_id {
                Some(n) => write!(f, "queue event {id} is acquired by node {n}"),
                None => write!(f, "queue event {id} is acquired"),
            },
            ConflictKind::Other(m) => f.write_str(m),
        }
    }
}

/// A repository failure.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// The addressed object/record does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The write conflicts with existing state; the whole change set was rolled back.
    #[error("conflict: {0}")]
    Conflict(ConflictKind),
    /// An `expected_rev` did not match the stored `_rev`; the whole change set was rolled back.
    #[error("revision mismatch on {id}: expected {expected}, found {actual}")]
    RevisionMismatch {
        id: String,
        expected: String,
        actual: String,
    },
    /// The fence's token is not the job's current token (lease lost or job gone): nothing was
    /// written.
    #[error("stale fencing token for job {job_id}")]
    StaleToken { job_id: String },
    /// An [`crate::Op::HoldsLock`] fence failed: `node_id` no longer holds lock `name` with the
    /// given token; nothing was written.
    #[error("lock {name} is no longer held by {node_id} with that token")]
    LockLost { name: String, node_id: String },
    /// A filter, sort key, field or cookie the backend cannot evaluate (answered as 400).
    #[error("bad query: {0}")]
    BadQuery(String),
    /// The database cannot be reached or is not built/configured.
    #[error("repository unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug, a corrupt row, an unexpected driver error.
    #[error("repository internal error: {0}")]
    Internal(String),
}

impl RepoError {
    pub fn internal(e: impl std::fmt::Display) -> Self {
        RepoError::Internal(e.to_string())
    }

    pub fn already_exists(what: impl Into<String>, id: impl Into<String>) -> Self {
        RepoError::Conflict(ConflictKind::AlreadyExists {
            what: what.into(),
            id: id.into(),
        })
    }
}

impl HasErrorCode for RepoError {
    fn error_code(&self) -> ErrorCode {
        match self {
            RepoError::NotFound(_) => ErrorCode::NotFound,
            RepoError::Conflict(_) => ErrorCode::Conflict,
            RepoError::RevisionMismatch { .. } => ErrorCode::PreconditionFailed,
            RepoError::StaleToken { .. } | RepoError::LockLost { .. } => ErrorCode::StaleToken,
            RepoError::BadQuery(_) => ErrorCode::BadRequest,
            RepoError::Unavailable(_) => ErrorCode::Unavailable,
            RepoError::Internal(_) => ErrorCode::Internal,
        }
    }
}

/// Result alias of the crate.
pub type RepoResult<T> = Result<T, RepoError>;
