//! The one error enum of idsync-mapping. Every variant names the mapping and the place in it
//! (property target pointer, hook, policy) so an operator can find what to fix; a script error
//! additionally carries the script's own origin and JavaScript message.

use idsync_core::pointer::PointerError;
use idsync_core::{ErrorCode, HasErrorCode};
use idsync_script::ScriptError;

/// A mapping could not be built, or one of its steps failed for one object.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MappingError {
    /// A script of the mapping failed to compile or to run. The script's origin already names
    /// the mapping and the place (`mapping hr_user property /mail transform`).
    #[error(transparent)]
    Script(#[from] ScriptError),
    /// A property's value could not be written at its target pointer (the root pointer, or an
    /// intermediate value that is not an object).
    #[error("mapping {mapping} property {target}: {source}")]
    PropertyWrite {
        mapping: String,
        target: String,
        source: PointerError,
    },
    /// A policy action script returned something that is not an action name.
    #[error(
        "mapping {mapping} policy {index} ({situation}) action script returned {found}, not an action name"
    )]
    InvalidAction {
        mapping: String,
        index: usize,
        situation: String,
        found: String,
    },
    /// A script returned a value of the wrong shape (link qualifiers that are not a list of
    /// strings, a correlation query that is not a query map, candidates without `_id`, ...).
    #[error("mapping {mapping} {place}: {message}")]
    BadScriptResult {
        mapping: String,
        place: String,
        message: String,
    },
    /// The mapping's configuration cannot be compiled (an impossible combination the validator
    /// should have refused).
    #[error("mapping {mapping} {place}: {message}")]
    Config {
        mapping: String,
        place: String,
        message: String,
    },
}

impl HasErrorCode for MappingError {
    fn error_code(&self) -> ErrorCode {
        match self {
            MappingError::Script(e) => e.error_code(),
            // A value that cannot be placed is a data problem of this object, except the root
            // pointer which no object can satisfy.
            MappingError::PropertyWrite {
                source: PointerError::Root,
                ..
            } => ErrorCode::Config,
            MappingError::PropertyWrite {
                source: PointerError::NotAnObject { .. },
                ..
            } => ErrorCode::InvalidData,
            MappingError::InvalidAction { .. } | MappingError::BadScriptResult { .. } => {
                ErrorCode::Script
            }
            MappingError::Config { .. } => ErrorCode::Config,
        }
    }
}

/// This crate's result type.
pub type Result<T, E = MappingError> = std::result::Result<T, E>;
