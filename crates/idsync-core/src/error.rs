//! One error-code vocabulary for the whole product. Every crate's error enum maps each of its
//! variants to one [`ErrorCode`]; the code maps to an HTTP status here and nowhere else.

use serde::{Deserialize, Serialize};

/// What kind of failure an error is, independent of the layer that produced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorCode {
    /// The request is malformed: bad JSON, a bad filter, an unknown parameter value.
    BadRequest,
    /// No or wrong credentials.
    Unauthorized,
    /// Authenticated, but the role may not do this.
    Forbidden,
    /// The addressed object or resource does not exist.
    NotFound,
    /// The request conflicts with the current state (already exists, active run, acquired event).
    Conflict,
    /// A `_rev` / `If-Match` precondition did not hold.
    PreconditionFailed,
    /// The target system refused the values (schema violation, constraint).
    InvalidData,
    /// The operation is not supported by this backend or connector.
    NotSupported,
    /// A remote system cannot be reached (connection refused, timeout): retryable.
    Unavailable,
    /// A request was sent but no answer came: its effect is unknown.
    Indeterminate,
    /// The project configuration is invalid.
    Config,
    /// A script failed.
    Script,
    /// A write lost its lease: the fencing token it carried is stale.
    StaleToken,
    /// Anything else: a bug or an unexpected environment failure.
    Internal,
}

impl ErrorCode {
    /// The HTTP status for this code. This is the only place where that mapping lives.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadRequest | ErrorCode::Config => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::Conflict | ErrorCode::StaleToken => 409,
            ErrorCode::PreconditionFailed => 412,
            ErrorCode::InvalidData => 400,
            ErrorCode::NotSupported => 501,
            ErrorCode::Unavailable => 503,
            ErrorCode::Indeterminate => 504,
            ErrorCode::Script | ErrorCode::Internal => 500,
        }
    }

    /// The CREST `reason` phrase of the HTTP status.
    pub fn reason(self) -> &'static str {
        match self.http_status() {
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            409 => "Conflict",
            412 => "Precondition Failed",
            501 => "Not Implemented",
            503 => "Service Unavailable",
            504 => "Gateway Timeout",
            _ => "Internal Server Error",
        }
    }

    /// Whether an operation failing with this code may succeed when retried unchanged.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorCode::Unavailable | ErrorCode::Indeterminate)
    }
}

/// Implemented by every crate's error enum.
pub trait HasErrorCode {
    fn error_code(&self) -> ErrorCode;
}
