//! How ldap3 failures and LDAP result codes become `ConnectorError`s: the server's own message
//! travels with data errors; anything that means "the server cannot be reached" is
//! `Unavailable` so that queued sync retries it.

use crate::contract::ConnectorError;
use ldap3::{LdapError, LdapResult};

/// Result codes of RFC 4511 that this module classifies.
mod rc {
    pub const SUCCESS: u32 = 0;
    pub const TIME_LIMIT_EXCEEDED: u32 = 3;
    pub const NO_SUCH_ATTRIBUTE: u32 = 16;
    pub const UNDEFINED_ATTRIBUTE_TYPE: u32 = 17;
    pub const INAPPROPRIATE_MATCHING: u32 = 18;
    pub const CONSTRAINT_VIOLATION: u32 = 19;
    pub const ATTRIBUTE_OR_VALUE_EXISTS: u32 = 20;
    pub const INVALID_ATTRIBUTE_SYNTAX: u32 = 21;
    pub const NO_SUCH_OBJECT: u32 = 32;
    pub const INVALID_DN_SYNTAX: u32 = 34;
    pub const INVALID_CREDENTIALS: u32 = 49;
    pub const INSUFFICIENT_ACCESS_RIGHTS: u32 = 50;
    pub const BUSY: u32 = 51;
    pub const UNAVAILABLE: u32 = 52;
    pub const UNWILLING_TO_PERFORM: u32 = 53;
    pub const NAMING_VIOLATION: u32 = 64;
    pub const OBJECT_CLASS_VIOLATION: u32 = 65;
    pub const NOT_ALLOWED_ON_NON_LEAF: u32 = 66;
    pub const NOT_ALLOWED_ON_RDN: u32 = 67;
    pub const ENTRY_ALREADY_EXISTS: u32 = 68;
    pub const OBJECT_CLASS_MODS_PROHIBITED: u32 = 69;
}

/// The result code of a failed operation, for callers that must react to one code.
pub fn result_code(err: &LdapError) -> Option<u32> {
    match err {
        LdapError::LdapResult { result } => Some(result.rc),
        _ => None,
    }
}

/// Classifies a failed LDAP operation. `what` names the object (its DN or id) for the
/// not-found and already-exists messages.
pub fn classify(err: LdapError, what: &str) -> ConnectorError {
    match err {
        LdapError::LdapResult { result } => classify_result(&result, what),
        LdapError::Timeout { .. } => {
            ConnectorError::Unavailable(format!("LDAP operation timed out: {err}"))
        }
        LdapError::Io { .. }
        | LdapError::OpSend { .. }
        | LdapError::ResultRecv { .. }
        | LdapError::IdScrubSend { .. }
        | LdapError::MiscSend { .. }
        | LdapError::EndOfStream
        | LdapError::Rustls { .. }
        | LdapError::DNSName { .. } => ConnectorError::Unavailable(format!("LDAP server: {err}")),
        LdapError::FilterParsing => ConnectorError::BadRequest(format!("LDAP filter: {err}")),
        LdapError::UrlParsing { .. } | LdapError::UnknownScheme(_) => {
            ConnectorError::Config(format!("LDAP URL: {err}"))
        }
        LdapError::AddNoValues => ConnectorError::InvalidData(err.to_string()),
        other => ConnectorError::Internal(format!("LDAP: {other}")),
    }
}

/// Classifies a non-success result code.
pub fn classify_result(result: &LdapResult, what: &str) -> ConnectorError {
    let message = if result.text.is_empty() {
        format!("LDAP result code {}", result.rc)
    } else {
        result.text.clone()
    };
    match result.rc {
        rc::NO_SUCH_OBJECT => ConnectorError::NotFound(what.to_owned()),
        rc::ENTRY_ALREADY_EXISTS => ConnectorError::AlreadyExists(what.to_owned()),
        rc::NO_SUCH_ATTRIBUTE
        | rc::UNDEFINED_ATTRIBUTE_TYPE
        | rc::INAPPROPRIATE_MATCHING
        | rc::CONSTRAINT_VIOLATION
        | rc::ATTRIBUTE_OR_VALUE_EXISTS
        | rc::INVALID_ATTRIBUTE_SYNTAX
        | rc::INVALID_DN_SYNTAX
        | rc::NAMING_VIOLATION
        | rc::OBJECT_CLASS_VIOLATION
        | rc::NOT_ALLOWED_ON_NON_LEAF
        | rc::NOT_ALLOWED_ON_RDN
        | rc::OBJECT_CLASS_MODS_PROHIBITED
        | rc::UNWILLING_TO_PERFORM
        | rc::INSUFFICIENT_ACCESS_RIGHTS => ConnectorError::InvalidData(message),
        rc::BUSY | rc::UNAVAILABLE | rc::TIME_LIMIT_EXCEEDED => {
            ConnectorError::Unavailable(message)
        }
        rc::INVALID_CREDENTIALS => ConnectorError::Config(format!("LDAP bind refused: {message}")),
        rc::SUCCESS => ConnectorError::Internal("LDAP success reported as an error".into()),
        _ => ConnectorError::Internal(format!("LDAP result code {}: {message}", result.rc)),
    }
}

/// Whether the connection that produced this error should be thrown away rather than
/// returned to the pool.
pub fn breaks_connection(err: &ConnectorError) -> bool {
    matches!(
        err,
        ConnectorError::Unavailable(_) | ConnectorError::Internal(_)
    )
}
