//! Daylight-saving transitions in Europe/Berlin and America/New_York (2024):
//! - Berlin springs forward on 2024-03-31 02:00 CET -> 03:00 CEST (01:00Z) and falls back on
//!   2024-10-27 03:00 CEST -> 02:00 CET (01:00Z): 02:00-02:59 happen twice.
//! - New York springs forward on 2024-03-10 02:00 EST -> 03:00 EDT (07:00Z) and falls back on
//!   2024-11-03 02:00 EDT -> 01:00 EST (06:00Z): 01:00-01:59 happen twice.
//!
//! The rule: a wall-clock time in the gap fires once at the end of the gap; a time in the
//! overlap fires once, at its first occurrence.

use crate::{next_n, next_n_utc, utc};
use chrono::Utc;
use chrono_tz::America::New_York;
use chrono_tz::Europe::Berlin;
use idsync_scheduler::{CronExpr, resolve_local};

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn berlin_a_daily_time_in_the_gap_fires_at_the_end_of_the_gap() {
    assert_eq!(
        next_n_utc("0 30 2 * * ?", Berlin, "2024-03-30 03:00:00", 3),
        s(&[
            "2024-03-31T01:00:00Z",
            "2024-04-01T00:30:00Z",
            "2024-04-02T00:30:00Z"
        ])
    );
    assert_eq!(
        next_n("0 30 2 * * ?", Berlin, "2024-03-30 03:00:00", 2),
        s(&["2024-03-31 03:00:00", "2024-04-01 02:30:00"])
    );
}

#[test]
fn berlin_frequent_firings_in_the_gap_collapse_into_one() {
    assert_eq!(
        next_n_utc("0 0/15 * * * ?", Berlin, "2024-03-31 01:40:00", 4),
        s(&[
            "2024-03-31T00:45:00Z", // 01:45 CET
            "2024-03-31T01:00:00Z", // 02:00-02:45 do not exist: once, at 03:00 CEST
            "2024-03-31T01:15:00Z", // 03:15 CEST
            "2024-03-31T01:30:00Z"
        ])
    );
}

#[test]
fn berlin_hourly_is_continuous_in_real_time_across_spring_forward() {
    assert_eq!(
        next_n_utc("0 0 * * * ?", Berlin, "2024-03-31 00:30:00", 4),
        s(&[
            "2024-03-31T00:00:00Z", // 01:00 CET
            "2024-03-31T01:00:00Z", // 02:00 does not exist -> 03:00 CEST
            "2024-03-31T02:00:00Z", // 04:00 CEST
            "2024-03-31T03:00:00Z"
        ])
    );
}

#[test]
fn berlin_a_daily_time_in_the_overlap_fires_once() {
    assert_eq!(
        next_n_utc("0 30 2 * * ?", Berlin, "2024-10-26 03:00:00", 2),
        s(&["2024-10-27T00:30:00Z", "2024-10-28T01:30:00Z"])
    );
}

#[test]
fn berlin_frequent_firings_pause_for_the_repeated_hour() {
    assert_eq!(
        next_n_utc("0 0/30 * * * ?", Berlin, "2024-10-27 01:00:00", 4),
        s(&[
            "2024-10-26T23:30:00Z", // 01:30 CEST
            "2024-10-27T00:00:00Z", // 02:00 CEST
            "2024-10-27T00:30:00Z", // 02:30 CEST; 02:00 and 02:30 CET are not repeated
            "2024-10-27T02:00:00Z"  // 03:00 CET
        ])
    );
}

#[test]
fn berlin_after_in_the_second_pass_of_the_overlap() {
    // 02:15 CET is the second 02:15 of the day (01:15Z); 02:30 already fired as CEST.
    let e = CronExpr::parse("0 0/30 * * * ?").unwrap();
    let after = utc("2024-10-27T01:15:00Z").with_timezone(&Berlin);
    assert_eq!(
        e.next_after(after).unwrap().with_timezone(&Utc),
        utc("2024-10-27T02:00:00Z")
    );
    // ...and in the first pass, 02:30 CEST is next.
    let after = utc("2024-10-27T00:15:00Z").with_timezone(&Berlin);
    assert_eq!(
        e.next_after(after).unwrap().with_timezone(&Utc),
        utc("2024-10-27T00:30:00Z")
    );
}

#[test]
fn new_york_spring_forward() {
    assert_eq!(
        next_n_utc("0 30 2 * * ?", New_York, "2024-03-09 12:00:00", 3),
        s(&[
            "2024-03-10T07:00:00Z",
            "2024-03-11T06:30:00Z",
            "2024-03-12T06:30:00Z"
        ])
    );
    assert_eq!(
        next_n("0 30 2 * * ?", New_York, "2024-03-09 12:00:00", 2),
        s(&["2024-03-10 03:00:00", "2024-03-11 02:30:00"])
    );
    // A time outside the gap is untouched.
    assert_eq!(
        next_n_utc("0 0 12 * * ?", New_York, "2024-03-09 12:00:00", 2),
        s(&["2024-03-10T16:00:00Z", "2024-03-11T16:00:00Z"])
    );
}

#[test]
fn new_york_fall_back() {
    assert_eq!(
        next_n_utc("0 30 1 * * ?", New_York, "2024-11-02 12:00:00", 2),
        s(&["2024-11-03T05:30:00Z", "2024-11-04T06:30:00Z"])
    );
    // Every 20 minutes: 01:00-01:40 EDT, then not again as EST, then 02:00 EST.
    assert_eq!(
        next_n_utc("0 0/20 * * * ?", New_York, "2024-11-03 00:50:00", 5),
        s(&[
            "2024-11-03T05:00:00Z",
            "2024-11-03T05:20:00Z",
            "2024-11-03T05:40:00Z",
            "2024-11-03T07:00:00Z",
            "2024-11-03T07:20:00Z"
        ])
    );
}

#[test]
fn midnight_and_weekly_schedules_keep_their_wall_clock_across_transitions() {
    assert_eq!(
        next_n("0 0 0 ? * SUN", New_York, "2024-03-01 00:00:00", 3),
        s(&[
            "2024-03-03 00:00:00",
            "2024-03-10 00:00:00",
            "2024-03-17 00:00:00"
        ])
    );
    assert_eq!(
        next_n_utc("0 0 0 ? * SUN", New_York, "2024-03-01 00:00:00", 3),
        s(&[
            "2024-03-03T05:00:00Z",
            "2024-03-10T05:00:00Z",
            "2024-03-17T04:00:00Z"
        ])
    );
}

#[test]
fn resolve_local_policy() {
    let n = |s: &str| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap();
    // Gap: the end of the gap.
    assert_eq!(
        resolve_local(&Berlin, n("2024-03-31 02:30:00"))
            .unwrap()
            .with_timezone(&Utc),
        utc("2024-03-31T01:00:00Z")
    );
    // Overlap: the first occurrence.
    assert_eq!(
        resolve_local(&Berlin, n("2024-10-27 02:30:00"))
            .unwrap()
            .with_timezone(&Utc),
        utc("2024-10-27T00:30:00Z")
    );
    // A zone whose gap is a whole day: Samoa skipped 2011-12-30.
    let apia: chrono_tz::Tz = "Pacific/Apia".parse().unwrap();
    let t = resolve_local(&apia, n("2011-12-30 12:00:00")).unwrap();
    assert_eq!(
        t.format("%Y-%m-%d %H:%M:%S").to_string(),
        "2011-12-31 00:00:00"
    );
}
