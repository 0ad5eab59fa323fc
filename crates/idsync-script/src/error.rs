//! The one error enum of idsync-script. Every variant names the script's origin, because a
//! script error fails one object's operation and the operator must find the script to fix.

use std::time::Duration;

use idsync_core::{ErrorCode, HasErrorCode};

use crate::origin::ScriptOrigin;

/// A script failed to compile or to run.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ScriptError {
    /// The script is not valid JavaScript; reported when the configuration is loaded.
    #[error("{origin}: syntax error{}: {message}", at_line(*line))]
    Syntax {
        origin: ScriptOrigin,
        message: String,
        line: Option<u32>,
    },
    /// A variable or global name cannot be a JavaScript variable (e.g. `my-var`, `eval`).
    #[error("{origin}: {name:?} cannot be a script variable: {reason}")]
    InvalidName {
        origin: ScriptOrigin,
        name: String,
        reason: &'static str,
    },
    /// The script threw (`throw new Error(...)`, a `TypeError` on `undefined.x`, ...).
    #[error("{origin}{}: {message}", at_line(*line))]
    Thrown {
        origin: ScriptOrigin,
        message: String,
        line: Option<u32>,
    },
    /// The script ran longer than its time budget and was interrupted.
    #[error("{origin}: script interrupted after its time budget of {budget:?}")]
    Timeout {
        origin: ScriptOrigin,
        budget: Duration,
    },
    /// The script exceeded the engine's memory limit.
    #[error("{origin}: script ran out of memory (limit {limit_bytes} bytes)")]
    OutOfMemory {
        origin: ScriptOrigin,
        limit_bytes: usize,
    },
    /// The script's result cannot be turned into JSON (a function, a symbol, a BigInt, a cycle).
    #[error("{origin}: script result is not JSON: {message}")]
    NotJson {
        origin: ScriptOrigin,
        message: String,
    },
    /// A script that must answer true or false (validSource, conditions) returned something else.
    #[error("{origin}: script must return a boolean, returned {found}")]
    NotBoolean { origin: ScriptOrigin, found: String },
    /// The engine itself failed (could not create a runtime, an unexpected engine error).
    #[error("{origin}: JavaScript engine failure: {message}")]
    Engine {
        origin: ScriptOrigin,
        message: String,
    },
}

fn at_line(line: Option<u32>) -> String {
    line.map(|l| format!(", line {l}")).unwrap_or_default()
}

impl ScriptError {
    /// The origin of the failing script.
    pub fn origin(&self) -> &ScriptOrigin {
        match self {
            ScriptError::Syntax { origin, .. }
            | ScriptError::InvalidName { origin, .. }
            | ScriptError::Thrown { origin, .. }
            | ScriptError::Timeout { origin, .. }
            | ScriptError::OutOfMemory { origin, .. }
            | ScriptError::NotJson { origin, .. }
            | ScriptError::NotBoolean { origin, .. }
            | ScriptError::Engine { origin, .. } => origin,
        }
    }
}

impl HasErrorCode for ScriptError {
    fn error_code(&self) -> ErrorCode {
        match self {
            // Both are found when the configuration is loaded: the project is invalid.
            ScriptError::Syntax { .. } | ScriptError::InvalidName { .. } => ErrorCode::Config,
            ScriptError::Thrown { .. }
            | ScriptError::Timeout { .. }
            | ScriptError::OutOfMemory { .. }
            | ScriptError::NotJson { .. }
            | ScriptError::NotBoolean { .. } => ErrorCode::Script,
            ScriptError::Engine { .. } => ErrorCode::Internal,
        }
    }
}
