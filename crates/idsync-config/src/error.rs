//! The crate's error type: a project that did not load. Owns the mapping to the product's error
//! codes only.

use crate::diag::Diagnostics;
use idsync_core::{ErrorCode, HasErrorCode};

/// Why a project could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Validation found errors; each is one line of the message.
    #[error("invalid project configuration:\n{0}")]
    Invalid(#[from] Diagnostics),
}

impl HasErrorCode for ConfigError {
    fn error_code(&self) -> ErrorCode {
        match self {
            ConfigError::Invalid(_) => ErrorCode::Config,
        }
    }
}
