//! The API's one error enum and its CREST rendering: `{"code","reason","message","detail"?}` with
//! the status from [`ErrorCode::http_status`] (the only status mapping in the product).
//!
//! A 500 (and any error whose code maps to 500) never carries internals in its body: the full
//! message goes to the log with a correlation id, the body says only that an internal error
//! happened and quotes that id.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use idsync_connectors::ConnectorError;
use idsync_core::{ErrorCode, HasErrorCode, PathError};
use idsync_repo::RepoError;
use serde_json::{Map, Value, json};

/// Every failure the REST layer can answer with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed request: bad JSON, bad filter, bad parameter, body too large.
    #[error("{0}")]
    BadRequest(String),
    /// No or wrong credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// Authenticated, but the role may not do this.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// `If-Match` / `If-None-Match` did not hold.
    #[error("{0}")]
    PreconditionFailed(String),
    /// The operation or method is not supported on this resource.
    #[error("{0}")]
    NotSupported(String),
    /// The request did not finish within the server's time limit; its effect is unknown.
    #[error("{0}")]
    Timeout(String),
    /// Extra structured detail for a 4xx answer (CREST `detail`).
    #[error("{message}")]
    WithDetail {
        code: ErrorCode,
        message: String,
        detail: Value,
    },
    #[error(transparent)]
    Connector(#[from] ConnectorError),
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// A managed object's lifecycle script refused or failed the request, with the CREST
    /// error it chose (docs/configuration.md#confmanagedjson).
    #[error(transparent)]
    Hook(#[from] idsync_engine::HookError),
    /// A bug or an unexpected environment failure; the text is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl HasErrorCode for ApiError {
    fn error_code(&self) -> ErrorCode {
        match self {
            ApiError::BadRequest(_) => ErrorCode::BadRequest,
            ApiError::Unauthorized(_) => ErrorCode::Unauthorized,
            ApiError::Forbidden(_) => ErrorCode::Forbidden,
            ApiError::NotFound(_) => ErrorCode::NotFound,
            ApiError::Conflict(_) => ErrorCode::Conflict,
            ApiError::PreconditionFailed(_) => ErrorCode::PreconditionFailed,
            ApiError::NotSupported(_) => ErrorCode::NotSupported,
            ApiError::Timeout(_) => ErrorCode::Indeterminate,
            ApiError::WithDetail { code, .. } => *code,
            ApiError::Connector(e) => e.error_code(),
            ApiError::Repo(e) => e.error_code(),
            ApiError::Hook(e) => e.code,
            ApiError::Internal(_) => ErrorCode::Internal,
        }
    }
}

impl From<PathError> for ApiError {
    fn from(e: PathError) -> Self {
        ApiError::BadRequest(e.to_string())
    }
}

impl From<idsync_core::filter::ParseError> for ApiError {
    fn from(e: idsync_core::filter::ParseError) -> Self {
        ApiError::BadRequest(e.to_string())
    }
}

impl ApiError {
    /// The CREST error body. Public so that the integrator's routes (recon, sync) answer in
    /// exactly the same shape.
    pub fn body(&self) -> Value {
        let code = self.error_code();
        let status = code.http_status();
        let mut body = Map::new();
        body.insert("code".into(), json!(status));
        body.insert("reason".into(), json!(code.reason()));
        if status == 500 {
            // Internals stay in the log; the body is generic.
            body.insert("message".into(), json!("internal server error"));
        } else {
            // Driver and configuration messages may quote a URL with its password.
            let message = idsync_core::secrets::redact_urls(&self.to_string());
            body.insert("message".into(), json!(message));
        }
        if let ApiError::WithDetail { detail, .. } = self {
            body.insert("detail".into(), detail.clone());
        }
        Value::Object(body)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.error_code();
        let status =
            StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            // The full chain goes to the log (messages never hold secrets: connectors and the
            // repository do not put credentials in their errors).
            let error = idsync_core::secrets::redact_urls(&self.to_string());
            tracing::error!(%error, ?code, "request failed");
        } else {
            let error = idsync_core::secrets::redact_urls(&self.to_string());
            tracing::debug!(%error, ?code, "request refused");
        }
        (status, axum::Json(self.body())).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_hide_their_text() {
        let e = ApiError::Internal("db at /secret/path exploded".into());
        let body = e.body();
        assert_eq!(body["code"], 500);
        assert_eq!(body["reason"], "Internal Server Error");
        assert!(!body.to_string().contains("secret"));
    }

    #[test]
    fn client_errors_carry_their_message_and_detail() {
        let e = ApiError::BadRequest("bad filter".into());
        assert_eq!(
            e.body(),
            json!({"code":400,"reason":"Bad Request","message":"bad filter"})
        );
        let e = ApiError::WithDetail {
            code: ErrorCode::Conflict,
            message: "run active".into(),
            detail: json!({"runId":"x"}),
        };
        assert_eq!(e.body()["detail"]["runId"], "x");
        assert_eq!(e.body()["code"], 409);
    }

    #[test]
    fn unavailable_keeps_its_message() {
        let e = ApiError::Connector(ConnectorError::Unavailable("connection refused".into()));
        assert_eq!(e.body()["code"], 503);
        assert!(e.body()["message"].as_str().unwrap().contains("refused"));
    }
}
