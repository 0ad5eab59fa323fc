//! The database-table connector's settings, read from ICF `DatabaseTableConnector`
//! configuration properties (`host`, `port`, `user`, `password`, `database`, `table`,
//! `keyColumn`, `passwordColumn`, `jdbcUrlTemplate`, `jdbcDriver`, `changeLogColumn`) or a plain
//! `url`. JDBC URLs are mapped to the sqlx drivers. Parsing only: nothing here connects.

use crate::contract::{ConnectorError, ConnectorResult};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The SQL dialect of the target database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    MySql,
    Sqlite,
}

impl Dialect {
    /// The most bound parameters one statement may carry.
    pub fn max_params(self) -> usize {
        match self {
            Dialect::Postgres | Dialect::MySql => 65_535,
            // SQLITE_MAX_VARIABLE_NUMBER's default since SQLite 3.32.
            Dialect::Sqlite => 32_766,
        }
    }
}

/// Where the database is. `Debug` masks a password in the URL.
#[derive(Clone, PartialEq)]
pub enum Target {
    /// A `postgres://` or `mysql://` URL.
    Url(String),
    /// An SQLite database file (absolute).
    SqliteFile(PathBuf),
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Url(u) => f
                .debug_tuple("Url")
                .field(&idsync_core::secrets::redact_urls(u))
                .finish(),
            Target::SqliteFile(p) => f.debug_tuple("SqliteFile").field(p).finish(),
        }
    }
}

/// The SQL connector's settings. `Debug` masks the password.
#[derive(Clone, PartialEq)]
pub struct SqlSettings {
    pub dialect: Dialect,
    pub target: Target,
    pub user: Option<String>,
    pub password: Option<String>,
    /// The table, optionally schema-qualified (`hr.people`).
    pub table: String,
    pub key_column: String,
    pub password_column: Option<String>,
    /// The column liveSync reads changes from (a number or timestamp that grows on each write).
    pub change_log_column: Option<String>,
    /// How long liveSync keeps looking for a row that takes a `changeLogColumn` value it has
    /// skipped (a transaction that commits after a later one was read; idsync extension
    /// `liveSyncLookBackSeconds`, default 60, 0 = never).
    pub live_sync_look_back: Duration,
    /// Pool size (idsync extension `maxConnections`, default 8).
    pub max_connections: u32,
    /// The bound on waiting for a connection (idsync extension `acquireTimeoutMs`, default 5 s):
    /// a down server is reported as unavailable within it instead of hanging.
    pub acquire_timeout: Duration,
}

impl std::fmt::Debug for SqlSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlSettings")
            .field("dialect", &self.dialect)
            .field("target", &self.target)
            .field("user", &self.user)
            .field(
                "password",
                &self.password.as_ref().map(|_| idsync_core::secrets::MASK),
            )
            .field("table", &self.table)
            .field("key_column", &self.key_column)
            .field("password_column", &self.password_column)
            .field("change_log_column", &self.change_log_column)
            .field("live_sync_look_back", &self.live_sync_look_back)
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .finish()
    }
}

fn string(props: &Map<String, Value>, key: &str) -> ConnectorResult<Option<String>> {
    match props.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(ConnectorError::Config(format!(
            "{key} must be a string, not {other}"
        ))),
    }
}

fn number(props: &Map<String, Value>, key: &str, default: u64) -> ConnectorResult<u64> {
    match props.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| ConnectorError::Config(format!("{key} must be a positive integer"))),
        Some(Value::String(s)) => s
            .parse()
            .map_err(|_| ConnectorError::Config(format!("{key} must be a positive integer"))),
        Some(other) => Err(ConnectorError::Config(format!(
            "{key} must be a number, not {other}"
        ))),
    }
}

/// The JDBC URL template implied by a driver class.
fn template_for_driver(driver: &str) -> Option<&'static str> {
    let d = driver.to_ascii_lowercase();
    if d.contains("postgresql") {
        Some("jdbc:postgresql://%h:%p/%d")
    } else if d.contains("mariadb") {
        Some("jdbc:mariadb://%h:%p/%d")
    } else if d.contains("mysql") {
        Some("jdbc:mysql://%h:%p/%d")
    } else if d.contains("sqlite") {
        Some("jdbc:sqlite:%d")
    } else {
        None
    }
}

impl SqlSettings {
    /// Reads `configurationProperties`; `project_dir` anchors a relative SQLite path.
    pub fn from_properties(
        props: &Map<String, Value>,
        project_dir: &Path,
    ) -> ConnectorResult<Self> {
        let host = string(props, "host")?.unwrap_or_else(|| "127.0.0.1".to_owned());
        let database = string(props, "database")?.unwrap_or_default();
        let url = match string(props, "url")? {
            Some(url) => url,
            None => {
                let template = match string(props, "jdbcUrlTemplate")? {
                    Some(t) => t,
                    None => string(props, "jdbcDriver")?
                        .as_deref()
                        .and_then(template_for_driver)
                        .map(str::to_owned)
                        .ok_or_else(|| {
                            ConnectorError::Config(
                                "the database table connector needs url, jdbcUrlTemplate or a \
                                 known jdbcDriver"
                                    .into(),
                            )
                        })?,
                };
                let default_port = if template.contains("postgresql") {
                    "5432"
                } else {
                    "3306"
                };
                let port = string(props, "port")?.unwrap_or_else(|| default_port.to_owned());
                template
                    .replace("%h", &host)
                    .replace("%p", &port)
                    .replace("%d", &database)
            }
        };
        let (dialect, target) = parse_url(&url, project_dir)?;
        let table = string(props, "table")?.ok_or_else(|| {
            ConnectorError::Config("the database table connector needs table".into())
        })?;
        let key_column = string(props, "keyColumn")?.ok_or_else(|| {
            ConnectorError::Config("the database table connector needs keyColumn".into())
        })?;
        let password = match props.get("password") {
            Some(Value::Object(_)) => {
                return Err(ConnectorError::Config(
                    "password must be a plain string (encrypted values are not supported)".into(),
                ));
            }
            _ => string(props, "password")?,
        };
        Ok(Self {
            dialect,
            target,
            user: string(props, "user")?,
            password,
            table,
            key_column,
            password_column: string(props, "passwordColumn")?,
            change_log_column: string(props, "changeLogColumn")?,
            live_sync_look_back: Duration::from_secs(number(props, "liveSyncLookBackSeconds", 60)?),
            max_connections: u32::try_from(number(props, "maxConnections", 8)?.max(1))
                .unwrap_or(u32::MAX),
            acquire_timeout: Duration::from_millis(number(props, "acquireTimeoutMs", 5000)?.max(1)),
        })
    }
}

/// Maps a JDBC or sqlx URL to a dialect and a target.
fn parse_url(url: &str, project_dir: &Path) -> ConnectorResult<(Dialect, Target)> {
    let u = url.strip_prefix("jdbc:").unwrap_or(url);
    let rest_after = |prefix: &str| u.strip_prefix(prefix).map(str::to_owned);
    if let Some(rest) = rest_after("postgresql://").or_else(|| rest_after("postgres://")) {
        return Ok((Dialect::Postgres, Target::Url(format!("postgres://{rest}"))));
    }
    if let Some(rest) = rest_after("mysql://").or_else(|| rest_after("mariadb://")) {
        return Ok((Dialect::MySql, Target::Url(format!("mysql://{rest}"))));
    }
    if let Some(rest) = u.strip_prefix("sqlite:") {
        let path = rest.strip_prefix("//").unwrap_or(rest);
        let path = path.split('?').next().unwrap_or(path);
        if path.is_empty() {
            return Err(ConnectorError::Config(format!(
                "{}: no SQLite file named",
                idsync_core::secrets::redact_urls(url)
            )));
        }
        let path = PathBuf::from(path);
        let path = if path.is_absolute() {
            path
        } else {
            project_dir.join(path)
        };
        return Ok((Dialect::Sqlite, Target::SqliteFile(path)));
    }
    Err(ConnectorError::Config(format!(
        "unsupported database URL {:?} (PostgreSQL, MySQL/MariaDB or SQLite)",
        idsync_core::secrets::redact_urls(url)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn props(v: Value) -> Map<String, Value> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn jdbc_templates_map_to_sqlx_urls() {
        let s = SqlSettings::from_properties(
            &props(
                json!({"host":"db","port":"3307","database":"hr","table":"people",
                "keyColumn":"id","jdbcUrlTemplate":"jdbc:mysql://%h:%p/%d","user":"u"}),
            ),
            Path::new("/p"),
        )
        .unwrap();
        assert_eq!(s.dialect, Dialect::MySql);
        assert_eq!(s.target, Target::Url("mysql://db:3307/hr".into()));
        let s = SqlSettings::from_properties(
            &props(json!({"database":"hr","table":"t","keyColumn":"id",
                "jdbcDriver":"org.postgresql.Driver"})),
            Path::new("/p"),
        )
        .unwrap();
        assert_eq!(s.target, Target::Url("postgres://127.0.0.1:5432/hr".into()));
        let s = SqlSettings::from_properties(
            &props(json!({"url":"jdbc:sqlite:data/hr.db","table":"t","keyColumn":"id"})),
            Path::new("/p"),
        )
        .unwrap();
        assert_eq!(s.target, Target::SqliteFile("/p/data/hr.db".into()));
    }

    #[test]
    fn missing_table_is_a_config_error() {
        let e = SqlSettings::from_properties(
            &props(json!({"url":"postgres://x/y","keyColumn":"id"})),
            Path::new("/p"),
        )
        .unwrap_err();
        assert!(matches!(e, ConnectorError::Config(_)));
    }
}
