//! Times are stored as INTEGER microseconds since the Unix epoch (UTC).

use chrono::{DateTime, Utc};

pub fn micros(t: &DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub fn from_micros(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

/// The SQL expression rendering a microsecond column as ISO-8601 UTC with milliseconds.
pub fn iso_sql(col: &str) -> String {
    format!(
        "(strftime('%Y-%m-%dT%H:%M:%S', {col} / 1000000, 'unixepoch') || '.' || \
         printf('%03d', ({col} / 1000) % 1000) || 'Z')"
    )
}
