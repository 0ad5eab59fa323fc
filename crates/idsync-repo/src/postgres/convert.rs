//! Conversions between driver values and the crate's records and errors: times as nanoseconds,
//! revisions as counters, and PostgreSQL errors as `RepoError` (no driver type escapes).

use crate::error::{ConflictKind, RepoError, RepoResult};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use tokio_postgres::error::SqlState;

/// A driver error as a repository error: lost connections are `Unavailable` (retryable),
/// unique violations `Conflict`, bad input `BadQuery`, everything else `Internal`.
pub(crate) fn pg_err(e: tokio_postgres::Error) -> RepoError {
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        if *code == SqlState::UNIQUE_VIOLATION {
            return RepoError::Conflict(ConflictKind::Other(
                db.detail().unwrap_or(db.message()).to_string(),
            ));
        }
        // Data exceptions (class 22: a NUL character, a value out of range, text that is not
        // valid) and program limits (class 54: an expression too complex or too deep) come
        // from what a client sent, never from a fault of the server.
        if code.code().starts_with("22") || code.code().starts_with("54") {
            return RepoError::BadQuery(db.message().to_string());
        }
        if code.code().starts_with("08")
            || code.code().starts_with("57")
            || *code == SqlState::T_R_SERIALIZATION_FAILURE
            || *code == SqlState::T_R_DEADLOCK_DETECTED
        {
            return RepoError::Unavailable(format!("PostgreSQL: {}", db.message()));
        }
        return RepoError::Internal(format!("PostgreSQL: {} ({})", db.message(), code.code()));
    }
    if e.is_closed() {
        return RepoError::Unavailable(format!("PostgreSQL connection closed: {e}"));
    }
    RepoError::Unavailable(format!("PostgreSQL: {e}"))
}

/// The name of the unique constraint a write violated, if that is what failed.
pub(crate) fn violated_constraint(e: &tokio_postgres::Error) -> Option<String> {
    let db = e.as_db_error()?;
    (*db.code() == SqlState::UNIQUE_VIOLATION).then(|| db.constraint().unwrap_or("").to_string())
}

pub(crate) fn to_ns(t: &DateTime<Utc>) -> RepoResult<i64> {
    t.timestamp_nanos_opt()
        .ok_or_else(|| RepoError::Internal(format!("time out of the storable range: {t}")))
}

pub(crate) fn opt_ns(t: &Option<DateTime<Utc>>) -> RepoResult<Option<i64>> {
    t.as_ref().map(to_ns).transpose()
}

pub(crate) fn from_ns(ns: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(ns)
}

pub(crate) fn now_ns() -> i64 {
    // Nanoseconds since 1970 fit an i64 until 2262.
    Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// The database's clock in nanoseconds since 1970, as SQL: leases and heartbeats are compared
/// on it, never on a node's own clock, so clock skew between machines cannot expire a live
/// node's lease or heartbeat. `now()` is the transaction's start, the same for every statement
/// of one commit.
pub(crate) const DB_NOW_NS: &str = "((EXTRACT(EPOCH FROM now()) * 1000000)::bigint * 1000)";

/// A lease's length in nanoseconds, added to [`DB_NOW_NS`] in SQL.
pub(crate) fn lease_ns(lease: std::time::Duration) -> i64 {
    i64::try_from(lease.as_nanos()).unwrap_or(i64::MAX)
}

/// A stored revision counter as the API shows it.
pub(crate) fn rev_str(rev: i64) -> String {
    rev.to_string()
}

/// A caller's expected revision as a counter; anything that is not one never matches.
pub(crate) fn parse_rev(rev: &str) -> i64 {
    rev.trim().parse().unwrap_or(-1)
}

/// An enum stored as its serde string form (`"ACTIVE"`, `"COMPLETED_SUCCESS"`, ...).
pub(crate) fn parse_enum<T: DeserializeOwned>(s: &str) -> RepoResult<T> {
    serde_json::from_value(serde_json::Value::String(s.to_string()))
        .map_err(|e| RepoError::Internal(format!("unexpected stored value {s:?}: {e}")))
}

/// ISO-8601 UTC with milliseconds from a nanosecond column, computed in SQL with integer
/// arithmetic so it equals `model::iso_millis` exactly (milliseconds truncated).
pub(crate) fn iso_millis_sql(col: &str) -> String {
    format!(
        "(to_char(to_timestamp(({col}) / 1000000000) AT TIME ZONE 'UTC', \
         'YYYY-MM-DD\"T\"HH24:MI:SS') || '.' || lpad(((({col}) / 1000000) % 1000)::text, 3, '0') \
         || 'Z')"
    )
}

/// Usize → i64 for LIMIT/OFFSET.
pub(crate) fn as_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// i64 count → u64.
pub(crate) fn as_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}
