//! One connection pool per database-table connector, for whichever of PostgreSQL, MySQL/MariaDB
//! or SQLite the settings name, with the statements the connector needs (fetch rows as text,
//! execute, count) and the classification of driver errors into `ConnectorError`s.

use super::builder::{Param, ParamColumn, SqlBuilder};
use super::settings::{SqlSettings, Target};
use crate::contract::{ConnectorError, ConnectorResult};
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{AssertSqlSafe, MySqlPool, PgPool, Row, SqlitePool};
use std::str::FromStr;

/// A pool of one of the three drivers.
#[derive(Debug, Clone)]
pub enum SqlPool {
    Postgres(PgPool),
    MySql(MySqlPool),
    Sqlite(SqlitePool),
}

/// Binds every parameter of a builder to a sqlx query, whatever the driver.
macro_rules! bind_all {
    (@column pg, $q:ident, $c:ident) => {
        match $c {
            ParamColumn::Str(v) => $q.bind(v.clone()),
            ParamColumn::Int(v) => $q.bind(v.clone()),
            ParamColumn::Float(v) => $q.bind(v.clone()),
            ParamColumn::Bool(v) => $q.bind(v.clone()),
        }
    };
    (@column scalar, $q:ident, $c:ident) => {{
        let _ = $c;
        return Err(ConnectorError::Internal(
            "column (array) parameters are bound on PostgreSQL only".into(),
        ));
    }};
    ($query:expr, $params:expr, $columns:ident) => {{
        let mut q = $query;
        for p in $params {
            q = match p {
                Param::Str(s) => q.bind(s.clone()),
                Param::Int(i) => q.bind(*i),
                Param::Float(f) => q.bind(*f),
                Param::Bool(b) => q.bind(*b),
                Param::Column(c) => bind_all!(@column $columns, q, c),
            };
        }
        q
    }};
}

/// Reads every column of every row as optional text.
macro_rules! text_rows {
    ($rows:expr) => {{
        let mut out = Vec::with_capacity($rows.len());
        for row in &$rows {
            let mut cells = Vec::with_capacity(row.len());
            for i in 0..row.len() {
                cells.push(row.try_get::<Option<String>, _>(i).map_err(classify)?);
            }
            out.push(cells);
        }
        out
    }};
}

impl SqlPool {
    /// Creates the pool without connecting: the first operation connects, and a down server
    /// is reported then (bounded by `acquire_timeout`).
    pub fn connect_lazy(settings: &SqlSettings) -> ConnectorResult<Self> {
        let bad = |e: sqlx::Error| ConnectorError::Config(format!("database URL: {e}"));
        Ok(match &settings.target {
            Target::Url(url) if url.starts_with("postgres") => {
                let mut o = PgConnectOptions::from_str(url).map_err(bad)?;
                if let Some(u) = &settings.user {
                    o = o.username(u);
                }
                if let Some(p) = &settings.password {
                    o = o.password(p);
                }
                SqlPool::Postgres(
                    PgPoolOptions::new()
                        .max_connections(settings.max_connections)
                        .acquire_timeout(settings.acquire_timeout)
                        .connect_lazy_with(o),
                )
            }
            Target::Url(url) => {
                let mut o = MySqlConnectOptions::from_str(url).map_err(bad)?;
                if let Some(u) = &settings.user {
                    o = o.username(u);
                }
                if let Some(p) = &settings.password {
                    o = o.password(p);
                }
                SqlPool::MySql(
                    MySqlPoolOptions::new()
                        .max_connections(settings.max_connections)
                        .acquire_timeout(settings.acquire_timeout)
                        .connect_lazy_with(o),
                )
            }
            Target::SqliteFile(path) => {
                let o = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(false)
                    .busy_timeout(settings.acquire_timeout);
                SqlPool::Sqlite(
                    SqlitePoolOptions::new()
                        .max_connections(settings.max_connections)
                        .acquire_timeout(settings.acquire_timeout)
                        .connect_lazy_with(o),
                )
            }
        })
    }

    /// Runs a SELECT whose columns are all text (see `SqlBuilder::column_as_text`).
    pub async fn fetch_text(&self, b: &SqlBuilder) -> ConnectorResult<Vec<Vec<Option<String>>>> {
        let sql = AssertSqlSafe(b.sql.clone());
        Ok(match self {
            SqlPool::Postgres(pool) => {
                let rows = bind_all!(sqlx::query(sql), &b.params, pg)
                    .fetch_all(pool)
                    .await
                    .map_err(classify)?;
                text_rows!(rows)
            }
            SqlPool::MySql(pool) => {
                let rows = bind_all!(sqlx::query(sql), &b.params, scalar)
                    .fetch_all(pool)
                    .await
                    .map_err(classify)?;
                text_rows!(rows)
            }
            SqlPool::Sqlite(pool) => {
                let rows = bind_all!(sqlx::query(sql), &b.params, scalar)
                    .fetch_all(pool)
                    .await
                    .map_err(classify)?;
                text_rows!(rows)
            }
        })
    }

    /// Runs a statement; returns the number of rows it affected.
    pub async fn execute(&self, b: &SqlBuilder) -> ConnectorResult<u64> {
        let sql = AssertSqlSafe(b.sql.clone());
        Ok(match self {
            SqlPool::Postgres(pool) => bind_all!(sqlx::query(sql), &b.params, pg)
                .execute(pool)
                .await
                .map_err(classify)?
                .rows_affected(),
            SqlPool::MySql(pool) => bind_all!(sqlx::query(sql), &b.params, scalar)
                .execute(pool)
                .await
                .map_err(classify)?
                .rows_affected(),
            SqlPool::Sqlite(pool) => bind_all!(sqlx::query(sql), &b.params, scalar)
                .execute(pool)
                .await
                .map_err(classify)?
                .rows_affected(),
        })
    }

    /// Runs a `SELECT COUNT(*) ...`.
    pub async fn count(&self, b: &SqlBuilder) -> ConnectorResult<u64> {
        let sql = AssertSqlSafe(b.sql.clone());
        let n: i64 = match self {
            SqlPool::Postgres(pool) => {
                bind_all!(sqlx::query_scalar(sql), &b.params, pg)
                    .fetch_one(pool)
                    .await
            }
            SqlPool::MySql(pool) => {
                bind_all!(sqlx::query_scalar(sql), &b.params, scalar)
                    .fetch_one(pool)
                    .await
            }
            SqlPool::Sqlite(pool) => {
                bind_all!(sqlx::query_scalar(sql), &b.params, scalar)
                    .fetch_one(pool)
                    .await
            }
        }
        .map_err(classify)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

/// Classifies a driver error: uniqueness → `AlreadyExists`; constraint and data errors →
/// `InvalidData` with the server's message; connection trouble → `Unavailable` (retryable);
/// a missing table or column, or refused credentials → `Config`.
pub fn classify(e: sqlx::Error) -> ConnectorError {
    use sqlx::error::ErrorKind;
    match e {
        sqlx::Error::Database(db) => {
            let message = db.message().to_owned();
            match db.kind() {
                ErrorKind::UniqueViolation => return ConnectorError::AlreadyExists(message),
                ErrorKind::ForeignKeyViolation
                | ErrorKind::NotNullViolation
                | ErrorKind::CheckViolation
                | ErrorKind::ExclusionViolation => return ConnectorError::InvalidData(message),
                _ => {}
            }
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            let mysql_number = db
                .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                .map(sqlx::mysql::MySqlDatabaseError::number);
            if let Some(n) = mysql_number {
                return match n {
                    // Duplicate entry (also reported without a unique kind on some paths).
                    1062 | 1586 => ConnectorError::AlreadyExists(message),
                    // Bad value, truncation, NOT NULL, no default, out of range, check.
                    1048 | 1264 | 1265 | 1292 | 1364 | 1366 | 1406 | 1451 | 1452 | 3819 | 4025 => {
                        ConnectorError::InvalidData(message)
                    }
                    // Server gone, too many connections, lock wait timeout.
                    1040 | 1053 | 1205 | 2006 | 2013 => ConnectorError::Unavailable(message),
                    // Access denied, unknown database/table/column.
                    1044 | 1045 | 1049 | 1054 | 1146 => ConnectorError::Config(message),
                    _ if code.starts_with("22") || code.starts_with("23") => {
                        ConnectorError::InvalidData(message)
                    }
                    _ => ConnectorError::Internal(message),
                };
            }
            if code.starts_with("22") || code.starts_with("23") || code == "42804" {
                // Data exceptions, integrity violations, datatype mismatch (PostgreSQL);
                // SQLite reports constraints as 19/275/.. and type mismatch as 20.
                ConnectorError::InvalidData(message)
            } else if code.starts_with("08") || code.starts_with("53") || code.starts_with("57") {
                ConnectorError::Unavailable(message)
            } else if code.starts_with("28") || code.starts_with("42") || code.starts_with("3D") {
                ConnectorError::Config(message)
            } else if code == "19"
                || code == "20"
                || code.parse::<u32>().is_ok_and(|c| c & 0xff == 19)
            {
                ConnectorError::InvalidData(message)
            } else if code == "5" || code == "6" || code.parse::<u32>().is_ok_and(|c| c & 0xff == 5)
            {
                // SQLITE_BUSY / SQLITE_LOCKED: another writer holds the database.
                ConnectorError::Unavailable(message)
            } else if code == "1" {
                // SQLITE_ERROR: no such table or column, syntax.
                ConnectorError::Config(message)
            } else {
                ConnectorError::Internal(message)
            }
        }
        sqlx::Error::Io(e) => ConnectorError::Unavailable(e.to_string()),
        sqlx::Error::Tls(e) => ConnectorError::Unavailable(format!("TLS: {e}")),
        sqlx::Error::PoolTimedOut => ConnectorError::Unavailable(
            "no database connection within the acquire timeout (is the server up?)".into(),
        ),
        sqlx::Error::PoolClosed => {
            ConnectorError::Unavailable("the connection pool is closed".into())
        }
        sqlx::Error::Protocol(m) => ConnectorError::Unavailable(m),
        sqlx::Error::Configuration(e) => ConnectorError::Config(e.to_string()),
        other => ConnectorError::Internal(other.to_string()),
    }
}
