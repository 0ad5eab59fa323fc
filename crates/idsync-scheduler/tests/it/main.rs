//! Integration tests of idsync-scheduler: the Quartz documentation examples, calendar edges,
//! daylight-saving transitions, error messages, triggers built from schedules, and properties.
#![allow(clippy::unwrap_used)]

mod dst;
mod errors;
mod examples;
mod props;
mod triggers;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use idsync_scheduler::CronExpr;

/// A wall-clock time `YYYY-MM-DD HH:MM:SS` in `tz` (the first one when it is ambiguous).
pub fn at(tz: Tz, s: &str) -> DateTime<Tz> {
    let n = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap();
    tz.from_local_datetime(&n).earliest().unwrap()
}

/// An instant `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// The next `n` firings of `expr` after the wall-clock time `after` in `tz`, as
/// `YYYY-MM-DD HH:MM:SS` wall-clock strings.
pub fn next_n(expr: &str, tz: Tz, after: &str, n: usize) -> Vec<String> {
    let e = CronExpr::parse(expr).unwrap();
    e.upcoming(at(tz, after), n)
        .iter()
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .collect()
}

/// The same, as UTC instants `YYYY-MM-DDTHH:MM:SSZ`.
pub fn next_n_utc(expr: &str, tz: Tz, after: &str, n: usize) -> Vec<String> {
    let e = CronExpr::parse(expr).unwrap();
    e.upcoming(at(tz, after), n)
        .iter()
        .map(|t| {
            t.with_timezone(&Utc)
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string()
        })
        .collect()
}
