//! Properties of `next_after` over generated expressions and instants, checked against a
//! straightforward day matcher written here from the Quartz rules (not from the crate's code).

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use idsync_scheduler::CronExpr;
use proptest::prelude::*;

/// (day-of-month, day-of-week) pairs, one of them `?`.
const DAYS: &[(&str, &str)] = &[
    ("*", "?"),
    ("?", "*"),
    ("?", "MON-FRI"),
    ("L", "?"),
    ("L-2", "?"),
    ("LW", "?"),
    ("15W", "?"),
    ("1W", "?"),
    ("1/5", "?"),
    ("31", "?"),
    ("?", "6#3"),
    ("?", "2#5"),
    ("?", "6L"),
    ("?", "1,7"),
];
const SECONDS: &[&str] = &["0", "*/15", "5-10", "0/7", "59"];
const MINUTES: &[&str] = &["0", "*/20", "30", "0-5,55"];
const HOURS: &[&str] = &["*", "0/6", "9-17", "2", "22-1"];
const MONTHS: &[&str] = &["*", "FEB", "1/2", "NOV-FEB", "6"];

fn last_day(d: NaiveDate) -> u32 {
    let (y, m) = (d.year(), d.month());
    let next = if m == 12 {
        NaiveDate::from_ymd_opt(y + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(y, m + 1, 1)
    };
    next.unwrap().pred_opt().unwrap().day()
}

fn weekday_nearest(y: i32, m: u32, day: u32, last: u32) -> u32 {
    let date = NaiveDate::from_ymd_opt(y, m, day).unwrap();
    match date.weekday() {
        Weekday::Sat if day == 1 => 3,
        Weekday::Sat => day - 1,
        Weekday::Sun if day == last => day - 2,
        Weekday::Sun => day + 1,
        _ => day,
    }
}

/// Does the date match the day fields and the month field? (Quartz weekday 1 = SUN.)
fn day_matches(dom: &str, dow: &str, month: &str, d: NaiveDate) -> bool {
    let m = d.month();
    let month_ok = match month {
        "*" => true,
        "FEB" => m == 2,
        "1/2" => m % 2 == 1,
        "NOV-FEB" => m >= 11 || m <= 2,
        "6" => m == 6,
        other => panic!("{other}"),
    };
    let last = last_day(d);
    let day = d.day();
    let qw = d.weekday().num_days_from_sunday() + 1;
    let same_weekday_later = |n: u32| day + 7 * n <= last;
    let day_ok = match (dom, dow) {
        ("*", "?") | ("?", "*") => true,
        ("?", "MON-FRI") => (2..=6).contains(&qw),
        ("L", "?") => day == last,
        ("L-2", "?") => day == last - 2,
        ("LW", "?") => day == weekday_nearest(d.year(), m, last, last),
        ("15W", "?") => day == weekday_nearest(d.year(), m, 15, last),
        ("1W", "?") => day == weekday_nearest(d.year(), m, 1, last),
        ("1/5", "?") => day % 5 == 1,
        ("31", "?") => day == 31,
        ("?", "6#3") => qw == 6 && (day - 1) / 7 == 2,
        ("?", "2#5") => qw == 2 && (day - 1) / 7 == 4,
        ("?", "6L") => qw == 6 && !same_weekday_later(1),
        ("?", "1,7") => qw == 1 || qw == 7,
        other => panic!("{other:?}"),
    };
    month_ok && day_ok
}

fn zone(i: usize) -> Tz {
    [
        Tz::UTC,
        chrono_tz::Europe::Berlin,
        chrono_tz::America::New_York,
        chrono_tz::Australia::Lord_Howe, // a 30-minute daylight-saving shift
    ][i]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn next_after_is_a_later_firing_with_no_matching_day_skipped(
        s in 0..SECONDS.len(),
        mi in 0..MINUTES.len(),
        h in 0..HOURS.len(),
        dd in 0..DAYS.len(),
        mo in 0..MONTHS.len(),
        z in 0..4usize,
        secs in 946_684_800i64..4_102_444_800, // 2000-01-01 .. 2100-01-01
    ) {
        let (dom, dow) = DAYS[dd];
        let text = format!("{} {} {} {dom} {} {dow}", SECONDS[s], MINUTES[mi], HOURS[h], MONTHS[mo]);
        let expr = CronExpr::parse(&text).unwrap();
        let tz = zone(z);
        let after: DateTime<Tz> = Utc.timestamp_opt(secs, 0).unwrap().with_timezone(&tz);
        let Some(next) = expr.next_after(after) else {
            // Only an expression that never fires (June 31st, February 31st) ends early.
            let mut d = after.date_naive();
            for _ in 0..(8 * 366) {
                prop_assert!(!day_matches(dom, dow, MONTHS[mo], d), "{text}: no firing, but {d} matches");
                d = d.succ_opt().unwrap();
            }
            return Ok(());
        };
        prop_assert!(next > after, "{text}: {next} is not after {after}");
        let wall = next.naive_local();
        // Either the wall-clock time matches, or it is the end of a daylight-saving gap that a
        // matching (nonexistent) time moved to.
        let moved_by_gap = tz.from_local_datetime(&(wall - TimeDelta::seconds(1))).earliest().is_none();
        prop_assert!(expr.matches(wall) || moved_by_gap, "{text}: {wall} does not match");
        // No matching day strictly between `after` and `next` (every field has a time of day).
        let mut d = after.date_naive().succ_opt().unwrap();
        while d < wall.date() {
            prop_assert!(!day_matches(dom, dow, MONTHS[mo], d), "{text}: skipped {d} between {after} and {next}");
            d = d.succ_opt().unwrap();
        }
        if !moved_by_gap {
            prop_assert!(day_matches(dom, dow, MONTHS[mo], wall.date()), "{text}: {wall} is not a matching day");
        }
        // Asking again from just before gives the same answer.
        prop_assert_eq!(expr.next_after(next - TimeDelta::seconds(1)), Some(next));
    }

    #[test]
    fn any_string_parses_or_fails_without_panicking(text in "[0-9A-Z*?/,#LW -]{0,40}") {
        let _ = CronExpr::parse(&text);
    }
}
