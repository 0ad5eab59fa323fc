//! Quartz cron expressions (`CronExpression` of Quartz 2.x, the dialect IDM schedules use).
//!
//! Six or seven fields separated by white space:
//!
//! | field        | values              | specials                      |
//! |--------------|---------------------|-------------------------------|
//! | second       | 0-59                | `, - * /`                     |
//! | minute       | 0-59                | `, - * /`                     |
//! | hour         | 0-23                | `, - * /`                     |
//! | day-of-month | 1-31                | `, - * / ? L L-n LW nW`       |
//! | month        | 1-12 or JAN-DEC     | `, - * /`                     |
//! | day-of-week  | 1-7 or SUN-SAT (1 = SUN) | `, - * / ? L dL d#n`     |
//! | year (opt.)  | 1970-2199           | `, - * /`                     |
//!
//! Exactly one of day-of-month and day-of-week is `?`. Names and letters are case-insensitive.
//! A range whose end comes before its start wraps around (`FRI-MON`, hours `22-2`).
//!
//! Where Quartz is loose, this parser is strict and says why: `L`, `W` and `#` items cannot
//! be mixed with other items in a list (Quartz rejects most such lists and silently misreads
//! the rest), a value out of range is an error, and more than seven fields is an error.
//!
//! **Time zones and daylight saving.** An expression is evaluated on the wall clock of the
//! zone of the `DateTime` given to [`CronExpr::next_after`]:
//! - a wall-clock time that does not exist (the spring-forward gap) fires at the first instant
//!   after the gap, once: `0 30 2 * * ?` fires at 03:00 on the day Europe/Berlin springs
//!   forward, and every gap time of `0 */15 * * * ?` collapses into that one 03:00 firing;
//! - a wall-clock time that occurs twice (the fall-back overlap) fires once, at its first
//!   occurrence: a daily job does not run twice, and a frequent job pauses for the repeated
//!   hour (as Quartz does).

mod parse;

use chrono::{
    DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeDelta, TimeZone,
    Timelike, Utc,
};
use std::fmt;
use std::str::FromStr;

/// The first year an explicit year field may name (Quartz's lower bound).
pub const MIN_YEAR: i32 = 1970;
/// The last year an expression can fire in; searches stop there (Quartz 2.x bound).
pub const MAX_YEAR: i32 = 2199;

/// A field of a cron expression, named in error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CronField {
    Second,
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
    Year,
}

impl CronField {
    /// The field's name as error messages spell it (`day-of-month`).
    pub fn name(self) -> &'static str {
        match self {
            CronField::Second => "second",
            CronField::Minute => "minute",
            CronField::Hour => "hour",
            CronField::DayOfMonth => "day-of-month",
            CronField::Month => "month",
            CronField::DayOfWeek => "day-of-week",
            CronField::Year => "year",
        }
    }
}

impl fmt::Display for CronField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a cron expression does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    #[error(
        "empty cron expression: expected 6 or 7 fields (second minute hour day-of-month month day-of-week [year])"
    )]
    Empty,
    #[error(
        "cron expression \"{expr}\" has {found} field(s): expected 6 or 7 (second minute hour day-of-month month day-of-week [year]){}",
        if *found == 5 { "; Quartz expressions start with a seconds field, such as \"0 \" + the Unix cron expression with '?' for day-of-month or day-of-week" } else { "" }
    )]
    FieldCount { expr: String, found: usize },
    /// One item of one field is wrong; `token` is that item as written.
    #[error("invalid {field} field \"{token}\": {reason}")]
    Field {
        field: CronField,
        token: String,
        reason: String,
    },
    #[error(
        "day-of-month \"{day_of_month}\" and day-of-week \"{day_of_week}\" are both set: Quartz needs '?' in exactly one of them (such as \"0 0 12 ? * MON\" or \"0 0 12 15 * ?\")"
    )]
    BothDaysSet {
        day_of_month: String,
        day_of_week: String,
    },
    #[error(
        "day-of-month and day-of-week are both '?': one of them must name the days (such as \"0 0 12 * * ?\")"
    )]
    NoDaySet,
}

impl CronError {
    /// The field the error is about, when it is about one field.
    pub fn field(&self) -> Option<CronField> {
        match self {
            CronError::Field { field, .. } => Some(*field),
            CronError::BothDaysSet { .. } | CronError::NoDaySet => Some(CronField::DayOfWeek),
            CronError::Empty | CronError::FieldCount { .. } => None,
        }
    }
}

/// Which days of a month the day-of-month field selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DomRule {
    /// `?`: the day-of-week field decides.
    NoSpec,
    /// Bit d set for day d (1-31).
    Days(u32),
    /// `L`, `L-n` (n days before the last day), with `W`: the weekday nearest that day.
    Last { offset: u8, weekday: bool },
    /// `nW`: the weekday (Mon-Fri) nearest day n, without leaving the month.
    NearestWeekday(u8),
}

/// Which days of a month the day-of-week field selects (1 = SUN ... 7 = SAT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DowRule {
    /// `?`: the day-of-month field decides.
    NoSpec,
    /// Bit w set for weekday w (1-7).
    Days(u8),
    /// `wL`: the last weekday w of the month.
    LastOf(u8),
    /// `w#n`: the n-th weekday w of the month (no firing in a month without one).
    Nth { weekday: u8, n: u8 },
}

/// The explicit years of a year field (bit `y - MIN_YEAR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct YearSet([u64; 4]);

impl YearSet {
    fn insert(&mut self, year: i32) {
        let i = (year - MIN_YEAR) as usize;
        self.0[i / 64] |= 1u64 << (i % 64);
    }

    /// The first year in the set at or after `year`.
    fn next_ge(&self, year: i32) -> Option<i32> {
        let start = (year.max(MIN_YEAR) - MIN_YEAR) as usize;
        (start..=(MAX_YEAR - MIN_YEAR) as usize)
            .find(|i| self.0[i / 64] & (1u64 << (i % 64)) != 0)
            .map(|i| i as i32 + MIN_YEAR)
    }
}

/// A parsed Quartz cron expression.
///
/// ```
/// use chrono::TimeZone;
/// use chrono_tz::Europe::Berlin;
/// use idsync_scheduler::CronExpr;
///
/// let expr = CronExpr::parse("0 15 10 ? * 6L").unwrap(); // 10:15, last Friday of the month
/// let after = Berlin.with_ymd_and_hms(2024, 5, 1, 0, 0, 0).unwrap();
/// let next = expr.next_after(after).unwrap();
/// assert_eq!(next, Berlin.with_ymd_and_hms(2024, 5, 31, 10, 15, 0).unwrap());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronExpr {
    /// The expression with its fields joined by single spaces.
    source: String,
    seconds: u64,
    minutes: u64,
    hours: u64,
    dom: DomRule,
    months: u64,
    dow: DowRule,
    /// `None`: any year up to [`MAX_YEAR`].
    years: Option<YearSet>,
}

/// The first set bit at or after `from`.
fn next_bit(bits: u64, from: u32) -> Option<u32> {
    if from >= 64 {
        return None;
    }
    let masked = bits & (!0u64 << from);
    (masked != 0).then(|| masked.trailing_zeros())
}

fn first_bit(bits: u64) -> u32 {
    bits.trailing_zeros()
}

/// Days in a month of the proleptic Gregorian calendar.
pub(crate) fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// Quartz day of week of a date: 1 = SUN ... 7 = SAT.
fn quartz_weekday(year: i32, month: u32, day: u32) -> u32 {
    NaiveDate::from_ymd_opt(year, month, day)
        .map(|d| d.weekday().num_days_from_sunday() + 1)
        .unwrap_or(1)
}

/// The weekday (Mon-Fri) nearest `day`, never leaving the month: a Saturday moves to Friday
/// (or to Monday the 3rd when it is the 1st), a Sunday to Monday (or to Friday when it is the
/// last day).
fn nearest_weekday(year: i32, month: u32, day: u32, last: u32) -> u32 {
    match quartz_weekday(year, month, day) {
        7 if day == 1 => 3,
        7 => day - 1,
        1 if day == last => day - 2,
        1 => day + 1,
        _ => day,
    }
}

impl CronExpr {
    /// Parses a Quartz cron expression; the error names the field and the item that is wrong.
    pub fn parse(expr: &str) -> Result<CronExpr, CronError> {
        parse::parse(expr)
    }

    /// The expression, fields joined by single spaces.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The days of `year`-`month` the expression fires on (bit d for day d).
    fn days_of(&self, year: i32, month: u32) -> u32 {
        let last = days_in_month(year, month);
        let in_month = |d: u32| -> u32 { if (1..=last).contains(&d) { 1 << d } else { 0 } };
        match self.dom {
            DomRule::Days(bits) => bits & (((1u64 << (last + 1)) - 1) as u32),
            DomRule::Last { offset, weekday } => {
                let Some(day) = last.checked_sub(u32::from(offset)).filter(|d| *d >= 1) else {
                    return 0;
                };
                if weekday {
                    in_month(nearest_weekday(year, month, day, last))
                } else {
                    in_month(day)
                }
            }
            DomRule::NearestWeekday(day) => {
                let day = u32::from(day);
                if day > last {
                    0
                } else {
                    in_month(nearest_weekday(year, month, day, last))
                }
            }
            DomRule::NoSpec => {
                let first = quartz_weekday(year, month, 1);
                // The Quartz weekday of day d.
                let weekday_of = |d: u32| (first - 1 + d - 1) % 7 + 1;
                match self.dow {
                    DowRule::Days(bits) => (1..=last)
                        .filter(|d| bits & (1 << weekday_of(*d)) != 0)
                        .fold(0, |acc, d| acc | 1 << d),
                    DowRule::LastOf(w) => {
                        let back = (weekday_of(last) + 7 - u32::from(w)) % 7;
                        in_month(last - back)
                    }
                    DowRule::Nth { weekday, n } => {
                        let first_match = 1 + (u32::from(weekday) + 7 - first) % 7;
                        in_month(first_match + 7 * (u32::from(n) - 1))
                    }
                    // The parser never builds `?` in both day fields.
                    DowRule::NoSpec => 0,
                }
            }
        }
    }

    fn year_matches(&self, year: i32) -> bool {
        match &self.years {
            None => year <= MAX_YEAR,
            Some(set) => set.next_ge(year) == Some(year),
        }
    }

    /// The first time of day at or after `h:m:s` in the hour, minute and second sets.
    fn time_at_or_after(&self, h: u32, m: u32, s: u32) -> Option<(u32, u32, u32)> {
        if self.hours & (1 << h) != 0 {
            if self.minutes & (1 << m) != 0
                && let Some(s2) = next_bit(self.seconds, s)
            {
                return Some((h, m, s2));
            }
            if let Some(m2) = next_bit(self.minutes, m + 1) {
                return Some((h, m2, first_bit(self.seconds)));
            }
        }
        let h2 = next_bit(self.hours, h + 1)?;
        Some((h2, first_bit(self.minutes), first_bit(self.seconds)))
    }

    /// Whether the expression fires at this wall-clock time (sub-seconds are ignored).
    pub fn matches(&self, t: NaiveDateTime) -> bool {
        self.year_matches(t.year())
            && self.months & (1 << t.month()) != 0
            && self.days_of(t.year(), t.month()) & (1 << t.day()) != 0
            && self.hours & (1 << t.hour()) != 0
            && self.minutes & (1 << t.minute()) != 0
            && self.seconds & (1 << t.second()) != 0
    }

    /// The first wall-clock time at or after `start` (whole seconds) that matches, up to the
    /// end of [`MAX_YEAR`]. Each turn of the loop moves to a later day, month or year, so the
    /// search is bounded by the number of months up to `MAX_YEAR`.
    pub fn next_local_at_or_after(&self, start: NaiveDateTime) -> Option<NaiveDateTime> {
        let (mut y, mut mo, mut d) = (start.year(), start.month(), start.day());
        let (mut h, mut mi, mut s) = (start.hour(), start.minute(), start.second());
        loop {
            if y > MAX_YEAR {
                return None;
            }
            if !self.year_matches(y) {
                y = match &self.years {
                    Some(set) => set.next_ge(y + 1)?,
                    None => return None,
                };
                (mo, d, h, mi, s) = (1, 1, 0, 0, 0);
                continue;
            }
            match next_bit(self.months, mo) {
                None => {
                    (y, mo, d, h, mi, s) = (y + 1, 1, 1, 0, 0, 0);
                    continue;
                }
                Some(m2) if m2 != mo => (mo, d, h, mi, s) = (m2, 1, 0, 0, 0),
                Some(_) => {}
            }
            let days = u64::from(self.days_of(y, mo));
            match next_bit(days, d) {
                None => {
                    (y, mo) = if mo == 12 { (y + 1, 1) } else { (y, mo + 1) };
                    (d, h, mi, s) = (1, 0, 0, 0);
                    continue;
                }
                Some(d2) if d2 != d => (d, h, mi, s) = (d2, 0, 0, 0),
                Some(_) => {}
            }
            match self.time_at_or_after(h, mi, s) {
                Some((h2, m2, s2)) => {
                    return NaiveDate::from_ymd_opt(y, mo, d)?.and_hms_opt(h2, m2, s2);
                }
                None => (d, h, mi, s) = (d + 1, 0, 0, 0),
            }
        }
    }

    /// The first firing strictly after `after`, on the wall clock of `after`'s time zone;
    /// `None` when there is none up to the end of [`MAX_YEAR`]. See the module docs for
    /// daylight-saving gaps and overlaps.
    pub fn next_after<Z: TimeZone>(&self, after: DateTime<Z>) -> Option<DateTime<Z>> {
        let tz = after.timezone();
        let local = after.naive_local();
        let mut from = local.with_nanosecond(0)? + TimeDelta::seconds(1);
        // Candidates are visited in wall-clock order; their instants are ascending too (a gap
        // time maps to the end of the gap, an overlap time to its first occurrence), so the
        // first one after `after` is the answer. Only an `after` inside the second pass of an
        // overlap skips candidates (at most one hour of them).
        for _ in 0..10_000 {
            let candidate = self.next_local_at_or_after(from)?;
            let instant = resolve_local(&tz, candidate)?;
            if instant > after {
                return Some(instant);
            }
            from = candidate + TimeDelta::seconds(1);
        }
        None
    }

    /// The next `n` firings after `after` (fewer when the expression runs out).
    pub fn upcoming<Z: TimeZone>(&self, after: DateTime<Z>, n: usize) -> Vec<DateTime<Z>> {
        let mut out: Vec<DateTime<Z>> = Vec::with_capacity(n);
        let mut at = after;
        while out.len() < n {
            match self.next_after(at) {
                Some(t) => {
                    at = t.clone();
                    out.push(t);
                }
                None => break,
            }
        }
        out
    }
}

impl FromStr for CronExpr {
    type Err = CronError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CronExpr::parse(s)
    }
}

impl fmt::Display for CronExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// The instant of a wall-clock time: the only one, the first of two (overlap), or the first
/// instant after the gap when the time does not exist.
pub fn resolve_local<Z: TimeZone>(tz: &Z, local: NaiveDateTime) -> Option<DateTime<Z>> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => Some(t),
        LocalResult::Ambiguous(a, b) => Some(if a <= b { a } else { b }),
        LocalResult::None => gap_end(tz, local),
    }
}

fn wall_clock<Z: TimeZone>(tz: &Z, utc: NaiveDateTime) -> NaiveDateTime {
    utc + TimeDelta::seconds(i64::from(
        tz.offset_from_utc_datetime(&utc).fix().local_minus_utc(),
    ))
}

/// The first instant whose wall-clock time is after `local`, which lies in a gap.
fn gap_end<Z: TimeZone>(tz: &Z, local: NaiveDateTime) -> Option<DateTime<Z>> {
    let offset =
        |utc: NaiveDateTime| i64::from(tz.offset_from_utc_datetime(&utc).fix().local_minus_utc());
    let before = offset(local - TimeDelta::days(1));
    let after = offset(local + TimeDelta::days(1));
    // The transition instant T satisfies local - after < T <= local - before; below T the wall
    // clock reads before `local`, from T on after it. Binary search on whole seconds.
    let mut lo = local - TimeDelta::seconds(after);
    let mut hi = local - TimeDelta::seconds(before);
    if after > before && wall_clock(tz, lo) <= local && wall_clock(tz, hi) > local {
        while hi - lo > TimeDelta::seconds(1) {
            let mid = lo + (hi - lo) / 2;
            let mid = mid.with_nanosecond(0)?;
            if wall_clock(tz, mid) > local {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        return Some(tz.from_utc_datetime(&hi));
    }
    // Two transitions within a day of each other: walk the wall clock a minute at a time.
    let mut t = local;
    for _ in 0..(3 * 24 * 60) {
        t += TimeDelta::minutes(1);
        if let Some(found) = tz.from_local_datetime(&t).earliest() {
            return Some(found);
        }
    }
    None
}

/// Convenience: the next firing after `after` in UTC terms, evaluated in `tz`.
pub fn next_after_in<Z: TimeZone>(
    expr: &CronExpr,
    tz: &Z,
    after: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    expr.next_after(after.with_timezone(tz))
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests;
