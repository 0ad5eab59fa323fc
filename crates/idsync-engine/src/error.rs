//! The engine's errors, each mapped to one `ErrorCode`.

use idsync_core::{ErrorCode, HasErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    /// Another run of the mapping is active.
    #[error("mapping {mapping} already has an active reconciliation: {run_id}")]
    ActiveRun { mapping: String, run_id: String },
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Repo(#[from] idsync_repo::RepoError),
    #[error(transparent)]
    Connector(#[from] idsync_connectors::ConnectorError),
    #[error(transparent)]
    Mapping(#[from] idsync_mapping::MappingError),
    /// A managed object's lifecycle script refused or failed the operation.
    #[error(transparent)]
    Hook(#[from] crate::managed_scripts::HookError),
    /// A script that does not compile (found when the engine starts).
    #[error(transparent)]
    Script(#[from] idsync_script::ScriptError),
    #[error("{0}")]
    Internal(String),
}

impl HasErrorCode for EngineError {
    fn error_code(&self) -> ErrorCode {
        match self {
            EngineError::BadRequest(_) => ErrorCode::BadRequest,
            EngineError::NotFound(_) => ErrorCode::NotFound,
            EngineError::ActiveRun { .. } | EngineError::Conflict(_) => ErrorCode::Conflict,
            EngineError::Repo(e) => e.error_code(),
            EngineError::Connector(e) => e.error_code(),
            EngineError::Mapping(e) => e.error_code(),
            EngineError::Hook(e) => e.error_code(),
            EngineError::Script(e) => e.error_code(),
            EngineError::Internal(_) => ErrorCode::Internal,
        }
    }
}

pub type EngineResult<T> = Result<T, EngineError>;
