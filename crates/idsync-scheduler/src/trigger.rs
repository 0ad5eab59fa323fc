//! Triggers built from `conf/schedule-<name>.json` (docs/configuration.md#confschedule-namejson):
//! when a schedule fires next, and the id of each firing.

use crate::cron::{CronError, CronExpr, resolve_local};
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use idsync_config::{Schedule, ScheduleType};
use std::time::Duration;

/// When a schedule fires. Fire times are a pure function of the trigger, `after` and the
/// number of earlier firings: no clock is read, so every node computes the same instants.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// A Quartz cron expression on the wall clock of `tz`.
    Cron {
        expr: CronExpr,
        tz: Tz,
        /// No firing before this instant.
        start_time: Option<DateTime<Utc>>,
        /// No firing after this instant (a firing exactly at it still happens).
        end_time: Option<DateTime<Utc>>,
    },
    /// Every `repeat_interval`, `repeat_count + 1` times in all (Quartz: the first firing plus
    /// `repeat_count` repeats); `repeat_count` -1 repeats forever.
    ///
    /// The firings are `start_time + k * repeat_interval`. Without a `start_time` they are the
    /// multiples of `repeat_interval` since 1970-01-01T00:00:00Z, so that nodes agree without
    /// sharing a start (Quartz would start "now", a different instant on each node). A one-shot
    /// trigger (`repeat_count` 0) without a `start_time` fires at the first whole second after
    /// `after`: give it a start (see [`Trigger::with_default_start`]) when several nodes must
    /// agree on it.
    Simple {
        repeat_interval: Duration,
        repeat_count: i64,
        start_time: Option<DateTime<Utc>>,
        end_time: Option<DateTime<Utc>>,
    },
}

/// A schedule that cannot become a trigger: the JSON pointer of the offending key (`/schedule`,
/// `/timeZone`, `/startTime`, ...) and a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pointer}: {message}")]
pub struct ScheduleError {
    pub pointer: &'static str,
    pub message: String,
    /// The cron error, when the expression is what is wrong.
    pub cron: Option<CronError>,
}

impl ScheduleError {
    fn new(pointer: &'static str, message: impl Into<String>) -> ScheduleError {
        ScheduleError {
            pointer,
            message: message.into(),
            cron: None,
        }
    }
}

/// Checks a schedule's trigger settings: the cron syntax, the time zone, `startTime`/`endTime`,
/// `repeatInterval`/`repeatCount`. The error reads `/<pointer>: <message>` (for instance
/// `/schedule: invalid minute field "61": 61 is out of range (0-59)`), ready to follow
/// `FILE: ` in `idsync config validate` output (docs/configuration.md).
pub fn validate_schedule(schedule: &Schedule) -> Result<(), String> {
    Trigger::from_schedule(schedule)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The id of one firing of a schedule: `<scheduleName>@<epoch milliseconds>`.
///
/// This is the cluster contract: every node that computes a firing of a schedule computes the
/// same instant (triggers read no clock), so they all derive the same id; the engine inserts
/// it as a unique job row and only the node whose insert succeeds runs the firing. A node whose
/// clock is a little behind or ahead still asks for the same firing (it passes the previous
/// firing or the same `after`), so it gets the same id and its insert is a no-op.
pub fn firing_id(schedule_name: &str, fire_time: DateTime<Utc>) -> String {
    format!("{schedule_name}@{}", fire_time.timestamp_millis())
}

impl Trigger {
    /// The trigger of a schedule; a schedule without `timeZone` uses UTC.
    pub fn from_schedule(schedule: &Schedule) -> Result<Trigger, ScheduleError> {
        Trigger::from_schedule_in(schedule, Tz::UTC)
    }

    /// The trigger of a schedule; a schedule without `timeZone` uses `default_tz`.
    pub fn from_schedule_in(schedule: &Schedule, default_tz: Tz) -> Result<Trigger, ScheduleError> {
        let tz_key = if schedule.raw.get("timeZone").is_some() {
            "/timeZone"
        } else {
            "/timezone"
        };
        let tz = match schedule.timezone.as_deref().map(str::trim) {
            None | Some("") => default_tz,
            Some(name) => parse_tz(name).ok_or_else(|| {
                ScheduleError::new(
                    tz_key,
                    format!(
                        "unknown time zone \"{name}\" (use an IANA name such as \"Europe/Berlin\" or \"UTC\")"
                    ),
                )
            })?,
        };
        let start_time = parse_time_opt("/startTime", schedule.start_time.as_deref(), tz)?;
        let end_time = parse_time_opt("/endTime", schedule.end_time.as_deref(), tz)?;
        if let (Some(s), Some(e)) = (start_time, end_time)
            && e < s
        {
            return Err(ScheduleError::new(
                "/endTime",
                format!(
                    "endTime {} is before startTime {}",
                    e.to_rfc3339(),
                    s.to_rfc3339()
                ),
            ));
        }
        match schedule.r#type {
            ScheduleType::Cron => {
                let text = schedule.schedule.as_deref().ok_or_else(|| {
                    ScheduleError::new(
                        "/schedule",
                        "missing cron expression (a cron schedule needs \"schedule\")",
                    )
                })?;
                let expr = CronExpr::parse(text).map_err(|e| ScheduleError {
                    pointer: "/schedule",
                    message: e.to_string(),
                    cron: Some(e),
                })?;
                Ok(Trigger::Cron {
                    expr,
                    tz,
                    start_time,
                    end_time,
                })
            }
            ScheduleType::Simple => {
                let repeat_count = schedule.repeat_count.unwrap_or(-1);
                if repeat_count < -1 {
                    return Err(ScheduleError::new(
                        "/repeatCount",
                        format!(
                            "repeatCount {repeat_count} is invalid: use -1 (repeat forever) or a count of repeats from 0"
                        ),
                    ));
                }
                let repeat_interval = match schedule.repeat_interval_ms {
                    Some(ms) if ms > 0 => Duration::from_millis(ms),
                    _ if repeat_count == 0 => Duration::ZERO,
                    Some(_) => {
                        return Err(ScheduleError::new(
                            "/repeatInterval",
                            "repeatInterval must be at least 1 millisecond",
                        ));
                    }
                    None => {
                        return Err(ScheduleError::new(
                            "/repeatInterval",
                            "a simple schedule that repeats needs repeatInterval (milliseconds); set repeatCount to 0 to fire once",
                        ));
                    }
                };
                Ok(Trigger::Simple {
                    repeat_interval,
                    repeat_count,
                    start_time,
                    end_time,
                })
            }
        }
    }

    /// No firing before this instant.
    pub fn start_time(&self) -> Option<DateTime<Utc>> {
        match self {
            Trigger::Cron { start_time, .. } | Trigger::Simple { start_time, .. } => *start_time,
        }
    }

    /// No firing after this instant.
    pub fn end_time(&self) -> Option<DateTime<Utc>> {
        match self {
            Trigger::Cron { end_time, .. } | Trigger::Simple { end_time, .. } => *end_time,
        }
    }

    /// The trigger with `start` as its start time when it has none, for instance the time the
    /// engine first stored the schedule, so that a one-shot simple trigger fires at one agreed
    /// instant.
    pub fn with_default_start(mut self, start: DateTime<Utc>) -> Trigger {
        match &mut self {
            Trigger::Cron { start_time, .. } | Trigger::Simple { start_time, .. } => {
                start_time.get_or_insert(start);
            }
        }
        self
    }

    /// The first firing strictly after `after`, given the number of firings so far (which only
    /// a simple trigger's `repeat_count` uses); `None` when the trigger has no more firings.
    /// The result may lie in the past (after downtime): what to do with missed firings is the
    /// engine's choice.
    pub fn next_fire(&self, after: DateTime<Utc>, previous_fires: u64) -> Option<DateTime<Utc>> {
        let next = match self {
            Trigger::Cron {
                expr,
                tz,
                start_time,
                ..
            } => {
                // Firings are whole seconds: searching after start - 1ns admits start itself.
                let from = match start_time {
                    Some(s) if *s > after => *s - TimeDelta::nanoseconds(1),
                    _ => after,
                };
                expr.next_after(from.with_timezone(tz))?.with_timezone(&Utc)
            }
            Trigger::Simple {
                repeat_interval,
                repeat_count,
                start_time,
                ..
            } => simple_next(
                *repeat_interval,
                *repeat_count,
                *start_time,
                after,
                previous_fires,
            )?,
        };
        match self.end_time() {
            Some(end) if next > end => None,
            _ => Some(next),
        }
    }

    /// The next `n` firings after `after`, counting from `previous_fires` earlier ones.
    pub fn upcoming(
        &self,
        after: DateTime<Utc>,
        previous_fires: u64,
        n: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(n);
        let mut at = after;
        while out.len() < n {
            match self.next_fire(at, previous_fires + out.len() as u64) {
                Some(t) => {
                    out.push(t);
                    at = t;
                }
                None => break,
            }
        }
        out
    }
}

fn simple_next(
    interval: Duration,
    repeat_count: i64,
    start_time: Option<DateTime<Utc>>,
    after: DateTime<Utc>,
    previous_fires: u64,
) -> Option<DateTime<Utc>> {
    if let Ok(limit) = u64::try_from(repeat_count)
        && previous_fires > limit
    {
        return None;
    }
    let interval_ms = i64::try_from(interval.as_millis()).ok()?;
    let after_ms = after.timestamp_millis(); // floor: any whole ms above it is after `after`
    let Some(start) = start_time else {
        if interval_ms == 0 {
            // One shot without a start: the first whole second after `after`.
            let secs = after.timestamp().checked_add(1)?;
            return DateTime::from_timestamp(secs, 0);
        }
        // The epoch grid: the first multiple of the interval after `after`.
        let k = after_ms.div_euclid(interval_ms).checked_add(1)?;
        return DateTime::from_timestamp_millis(k.checked_mul(interval_ms)?);
    };
    let start_ms = start.timestamp_millis();
    let k: i64 = if after_ms < start_ms {
        0
    } else if interval_ms == 0 {
        return None;
    } else {
        (after_ms - start_ms) / interval_ms + 1
    };
    if let Ok(limit) = u64::try_from(repeat_count)
        && u64::try_from(k).ok()? > limit
    {
        return None;
    }
    DateTime::from_timestamp_millis(start_ms.checked_add(k.checked_mul(interval_ms)?)?)
}

/// An IANA zone name; `Z`, `GMT` and `UTC` are UTC.
fn parse_tz(name: &str) -> Option<Tz> {
    match name {
        "Z" | "z" | "GMT" | "UTC" => Some(Tz::UTC),
        _ => name.parse::<Tz>().ok(),
    }
}

fn parse_time_opt(
    pointer: &'static str,
    text: Option<&str>,
    tz: Tz,
) -> Result<Option<DateTime<Utc>>, ScheduleError> {
    match text.map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) => parse_time(t, tz).map(Some).ok_or_else(|| {
            ScheduleError::new(
                pointer,
                format!(
                    "\"{t}\" is not an ISO 8601 date and time (such as 2024-05-01T02:00:00, with an optional Z or offset such as +02:00)"
                ),
            )
        }),
    }
}

/// ISO 8601: with `Z` or an offset it is that instant; without, a wall-clock time in `tz`
/// (a time in a daylight-saving gap moves to the end of the gap, an ambiguous one takes its
/// first occurrence); a date alone is its midnight.
pub fn parse_time(text: &str, tz: Tz) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%z"] {
        if let Ok(t) = DateTime::parse_from_str(text, f) {
            return Some(t.with_timezone(&Utc));
        }
    }
    let naive = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
    .or_else(|| {
        NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
    })?;
    resolve_local(&tz, naive).map(|t| t.with_timezone(&Utc))
}
