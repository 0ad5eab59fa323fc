//! The examples of the Quartz CronTrigger tutorial, and calendar edges: leap years, month ends,
//! the year field, wrap-around ranges. All in UTC unless a zone is the point.

use crate::{at, next_n};
use chrono::Utc;
use chrono_tz::Tz::{self, UTC};
use idsync_scheduler::CronExpr;

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn noon_every_day() {
    // "0 0 12 * * ?": 12:00 every day.
    assert_eq!(
        next_n("0 0 12 * * ?", UTC, "2024-01-01 11:59:59", 3),
        s(&[
            "2024-01-01 12:00:00",
            "2024-01-02 12:00:00",
            "2024-01-03 12:00:00"
        ])
    );
}

#[test]
fn next_after_is_strictly_after() {
    assert_eq!(
        next_n("0 0 12 * * ?", UTC, "2024-01-01 12:00:00", 1),
        s(&["2024-01-02 12:00:00"])
    );
    // A sub-second `after` still admits the next whole second.
    let e = CronExpr::parse("* * * * * ?").unwrap();
    let after = at(UTC, "2024-01-01 10:00:00") + chrono::TimeDelta::milliseconds(400);
    assert_eq!(e.next_after(after).unwrap(), at(UTC, "2024-01-01 10:00:01"));
}

#[test]
fn weekdays_at_10_15() {
    // "0 15 10 ? * MON-FRI": 10:15 Monday to Friday. 2024-05-31 is a Friday.
    assert_eq!(
        next_n("0 15 10 ? * MON-FRI", UTC, "2024-05-31 10:15:00", 3),
        s(&[
            "2024-06-03 10:15:00",
            "2024-06-04 10:15:00",
            "2024-06-05 10:15:00"
        ])
    );
    // Case does not matter, and numbers 2-6 are MON-FRI.
    assert_eq!(
        next_n("0 15 10 ? * mon-fri", UTC, "2024-05-31 10:15:00", 3),
        next_n("0 15 10 ? * 2-6", UTC, "2024-05-31 10:15:00", 3)
    );
}

#[test]
fn last_day_of_every_month_including_leap_february() {
    // "0 15 10 L * ?": 10:15 on the last day of every month.
    assert_eq!(
        next_n("0 15 10 L * ?", UTC, "2024-01-31 10:15:00", 4),
        s(&[
            "2024-02-29 10:15:00",
            "2024-03-31 10:15:00",
            "2024-04-30 10:15:00",
            "2024-05-31 10:15:00"
        ])
    );
    assert_eq!(
        next_n("0 15 10 L * ?", UTC, "2023-02-01 00:00:00", 1),
        s(&["2023-02-28 10:15:00"])
    );
    assert_eq!(
        next_n("0 15 10 L * ?", UTC, "2100-02-01 00:00:00", 1),
        s(&["2100-02-28 10:15:00"])
    );
}

#[test]
fn last_friday_of_the_month() {
    // "0 15 10 ? * 6L": 10:15 on the last Friday of every month.
    assert_eq!(
        next_n("0 15 10 ? * 6L", UTC, "2024-01-01 00:00:00", 5),
        s(&[
            "2024-01-26 10:15:00",
            "2024-02-23 10:15:00",
            "2024-03-29 10:15:00",
            "2024-04-26 10:15:00",
            "2024-05-31 10:15:00"
        ])
    );
    // "5L" is the last Thursday; October 2024 ends on one.
    assert_eq!(
        next_n("0 0 0 ? * 5L", UTC, "2024-10-01 00:00:00", 2),
        s(&["2024-10-31 00:00:00", "2024-11-28 00:00:00"])
    );
}

#[test]
fn last_friday_in_a_year_range() {
    // "0 15 10 ? * 6L 2022-2025": the last Friday of every month of 2022 to 2025.
    assert_eq!(
        next_n("0 15 10 ? * 6L 2022-2025", UTC, "2025-11-30 00:00:00", 3),
        s(&["2025-12-26 10:15:00"])
    );
    assert_eq!(
        next_n("0 15 10 ? * 6L 2022-2025", UTC, "2019-01-01 00:00:00", 1),
        s(&["2022-01-28 10:15:00"])
    );
}

#[test]
fn third_friday_of_the_month() {
    // "0 15 10 ? * 6#3": 10:15 on the third Friday of every month.
    assert_eq!(
        next_n("0 15 10 ? * 6#3", UTC, "2024-01-01 00:00:00", 3),
        s(&[
            "2024-01-19 10:15:00",
            "2024-02-16 10:15:00",
            "2024-03-15 10:15:00"
        ])
    );
    assert_eq!(
        next_n("0 15 10 ? * FRI#3", UTC, "2024-01-01 00:00:00", 3),
        next_n("0 15 10 ? * 6#3", UTC, "2024-01-01 00:00:00", 3)
    );
}

#[test]
fn fifth_monday_skips_months_without_one() {
    assert_eq!(
        next_n("0 0 0 ? * 2#5", UTC, "2024-01-01 00:00:00", 5),
        s(&[
            "2024-01-29 00:00:00",
            "2024-04-29 00:00:00",
            "2024-07-29 00:00:00",
            "2024-09-30 00:00:00",
            "2024-12-30 00:00:00"
        ])
    );
}

#[test]
fn every_five_days_from_the_first() {
    // "0 0 12 1/5 * ?": 12:00 every 5 days from the first day of the month.
    assert_eq!(
        next_n("0 0 12 1/5 * ?", UTC, "2024-01-26 12:00:00", 4),
        s(&[
            "2024-01-31 12:00:00",
            "2024-02-01 12:00:00",
            "2024-02-06 12:00:00",
            "2024-02-11 12:00:00"
        ])
    );
    // February has no 31st: after the 26th comes March 1st.
    assert_eq!(
        next_n("0 0 12 1/5 * ?", UTC, "2024-02-26 12:00:00", 1),
        s(&["2024-03-01 12:00:00"])
    );
}

#[test]
fn november_11th_at_11_11() {
    // "0 11 11 11 11 ?": every November 11th at 11:11.
    assert_eq!(
        next_n("0 11 11 11 11 ?", UTC, "2024-01-01 00:00:00", 2),
        s(&["2024-11-11 11:11:00", "2025-11-11 11:11:00"])
    );
}

#[test]
fn every_five_minutes_from_2_and_6_pm() {
    // "0 0/5 14,18 * * ?": every 5 minutes from 14:00 to 14:55 and from 18:00 to 18:55.
    assert_eq!(
        next_n("0 0/5 14,18 * * ?", UTC, "2024-01-01 14:52:00", 3),
        s(&[
            "2024-01-01 14:55:00",
            "2024-01-01 18:00:00",
            "2024-01-01 18:05:00"
        ])
    );
    assert_eq!(
        next_n("0 0/5 14,18 * * ?", UTC, "2024-01-01 18:55:00", 1),
        s(&["2024-01-02 14:00:00"])
    );
    let day = CronExpr::parse("0 0/5 14,18 * * ?")
        .unwrap()
        .upcoming(at(UTC, "2024-01-01 00:00:00"), 30);
    assert_eq!(day.len(), 30);
    assert_eq!(day[23].format("%H:%M").to_string(), "18:55");
    assert_eq!(day[24].format("%d %H:%M").to_string(), "02 14:00");
}

#[test]
fn nearest_weekday_to_the_15th() {
    // "0 15 10 15W * ?": the weekday nearest the 15th. June 15th 2024 is a Saturday (-> 14th),
    // September 15th a Sunday (-> 16th).
    assert_eq!(
        next_n("0 15 10 15W * ?", UTC, "2024-05-01 00:00:00", 5),
        s(&[
            "2024-05-15 10:15:00",
            "2024-06-14 10:15:00",
            "2024-07-15 10:15:00",
            "2024-08-15 10:15:00",
            "2024-09-16 10:15:00"
        ])
    );
}

#[test]
fn first_weekday_never_leaves_the_month() {
    // June 1st 2024 is a Saturday: 1W is Monday the 3rd, not Friday May 31st.
    assert_eq!(
        next_n("0 0 0 1W * ?", UTC, "2024-05-02 00:00:00", 1),
        s(&["2024-06-03 00:00:00"])
    );
    // 31W fires only in months with a 31st (August 31st 2024 is a Saturday -> 30th).
    assert_eq!(
        next_n("0 0 0 31W * ?", UTC, "2024-08-01 00:00:00", 2),
        s(&["2024-08-30 00:00:00", "2024-10-31 00:00:00"])
    );
}

#[test]
fn last_weekday_of_the_month() {
    // "0 0 0 LW * ?": midnight on the last weekday of the month.
    assert_eq!(
        next_n("0 0 0 LW * ?", UTC, "2024-01-01 00:00:00", 8),
        s(&[
            "2024-01-31 00:00:00",
            "2024-02-29 00:00:00",
            "2024-03-29 00:00:00",
            "2024-04-30 00:00:00",
            "2024-05-31 00:00:00",
            "2024-06-28 00:00:00",
            "2024-07-31 00:00:00",
            "2024-08-30 00:00:00"
        ])
    );
}

#[test]
fn days_before_the_last() {
    assert_eq!(
        next_n("0 0 0 L-3 * ?", UTC, "2024-01-01 00:00:00", 3),
        s(&[
            "2024-01-28 00:00:00",
            "2024-02-26 00:00:00",
            "2024-03-28 00:00:00"
        ])
    );
}

#[test]
fn every_two_seconds() {
    // "0/2 * * * * ?": every 2 seconds.
    assert_eq!(
        next_n("0/2 * * * * ?", UTC, "2024-12-31 23:59:57", 3),
        s(&[
            "2024-12-31 23:59:58",
            "2025-01-01 00:00:00",
            "2025-01-01 00:00:02"
        ])
    );
}

#[test]
fn more_quartz_tutorial_examples() {
    // "0 15 10 ? * *" and "0 15 10 * * ? *" are 10:15 every day.
    let a = next_n("0 15 10 ? * *", UTC, "2024-03-01 12:00:00", 3);
    assert_eq!(a, next_n("0 15 10 * * ? *", UTC, "2024-03-01 12:00:00", 3));
    assert_eq!(a[0], "2024-03-02 10:15:00");
    // "0 15 10 * * ? 2005": every day of 2005 only.
    assert_eq!(
        next_n("0 15 10 * * ? 2005", UTC, "2005-12-30 12:00:00", 3),
        s(&["2005-12-31 10:15:00"])
    );
    // "0 * 14 * * ?": every minute from 14:00 to 14:59.
    assert_eq!(
        next_n("0 * 14 * * ?", UTC, "2024-01-01 14:58:30", 3),
        s(&[
            "2024-01-01 14:59:00",
            "2024-01-02 14:00:00",
            "2024-01-02 14:01:00"
        ])
    );
    // "0 0-5 14 * * ?": every minute from 14:00 to 14:05.
    assert_eq!(
        next_n("0 0-5 14 * * ?", UTC, "2024-01-01 14:04:00", 2),
        s(&["2024-01-01 14:05:00", "2024-01-02 14:00:00"])
    );
    // "0 10,44 14 ? 3 WED": 14:10 and 14:44 every Wednesday in March.
    assert_eq!(
        next_n("0 10,44 14 ? 3 WED", UTC, "2024-01-01 00:00:00", 3),
        s(&[
            "2024-03-06 14:10:00",
            "2024-03-06 14:44:00",
            "2024-03-13 14:10:00"
        ])
    );
    // "0 15 10 15 * ?": 10:15 on the 15th.
    assert_eq!(
        next_n("0 15 10 15 * ?", UTC, "2024-01-15 10:15:00", 1),
        s(&["2024-02-15 10:15:00"])
    );
    // "0 0 12 ? JAN,MAR,SEP MON-FRI 2026": weekdays of three months of one year.
    assert_eq!(
        next_n(
            "0 0 12 ? JAN,MAR,SEP MON-FRI 2026",
            UTC,
            "2026-01-30 12:00:00",
            2
        ),
        s(&["2026-03-02 12:00:00", "2026-03-03 12:00:00"])
    );
}

#[test]
fn leap_day_only_fires_in_leap_years() {
    assert_eq!(
        next_n("0 0 0 29 2 ?", UTC, "2024-03-01 00:00:00", 3),
        s(&[
            "2028-02-29 00:00:00",
            "2032-02-29 00:00:00",
            "2036-02-29 00:00:00"
        ])
    );
    // 2100 is not a leap year.
    assert_eq!(
        next_n("0 0 0 29 FEB ?", UTC, "2096-03-01 00:00:00", 1),
        s(&["2104-02-29 00:00:00"])
    );
}

#[test]
fn the_31st_skips_short_months() {
    assert_eq!(
        next_n("0 0 0 31 * ?", UTC, "2024-01-31 00:00:00", 4),
        s(&[
            "2024-03-31 00:00:00",
            "2024-05-31 00:00:00",
            "2024-07-31 00:00:00",
            "2024-08-31 00:00:00"
        ])
    );
}

#[test]
fn wrap_around_ranges() {
    assert_eq!(
        next_n("0 0 22-2 * * ?", UTC, "2024-01-31 21:00:00", 6),
        s(&[
            "2024-01-31 22:00:00",
            "2024-01-31 23:00:00",
            "2024-02-01 00:00:00",
            "2024-02-01 01:00:00",
            "2024-02-01 02:00:00",
            "2024-02-01 22:00:00"
        ])
    );
    // FRI-MON: Friday, Saturday, Sunday, Monday. 2024-06-04 is a Tuesday.
    assert_eq!(
        next_n("0 0 0 ? * FRI-MON", UTC, "2024-06-04 00:00:00", 5),
        s(&[
            "2024-06-07 00:00:00",
            "2024-06-08 00:00:00",
            "2024-06-09 00:00:00",
            "2024-06-10 00:00:00",
            "2024-06-14 00:00:00"
        ])
    );
    // NOV-FEB.
    assert_eq!(
        next_n("0 0 0 1 NOV-FEB ?", UTC, "2024-03-01 00:00:00", 4),
        s(&[
            "2024-11-01 00:00:00",
            "2024-12-01 00:00:00",
            "2025-01-01 00:00:00",
            "2025-02-01 00:00:00"
        ])
    );
}

#[test]
fn range_with_step() {
    assert_eq!(
        next_n("10-50/20 * * * * ?", UTC, "2024-01-01 00:00:00", 4),
        s(&[
            "2024-01-01 00:00:10",
            "2024-01-01 00:00:30",
            "2024-01-01 00:00:50",
            "2024-01-01 00:01:10"
        ])
    );
    assert_eq!(
        next_n("0 */20 * * * ?", UTC, "2024-01-01 00:00:00", 3),
        s(&[
            "2024-01-01 00:20:00",
            "2024-01-01 00:40:00",
            "2024-01-01 01:00:00"
        ])
    );
}

#[test]
fn year_field_bounds_the_search() {
    let e = CronExpr::parse("0 0 0 1 1 ? 2199").unwrap();
    assert_eq!(
        e.next_after(at(UTC, "2024-01-01 00:00:00")).unwrap(),
        at(UTC, "2199-01-01 00:00:00")
    );
    assert_eq!(e.next_after(at(UTC, "2199-01-01 00:00:00")), None);
    // Without a year field the search ends with 2199 too.
    let e = CronExpr::parse("0 0 0 31 12 ?").unwrap();
    assert_eq!(
        e.next_after(at(UTC, "2199-01-01 00:00:00")).unwrap(),
        at(UTC, "2199-12-31 00:00:00")
    );
    assert_eq!(e.next_after(at(UTC, "2199-12-31 00:00:00")), None);
    // Years with steps.
    assert_eq!(
        next_n("0 0 0 1 1 ? 2030/50", UTC, "2024-01-01 00:00:00", 5),
        s(&[
            "2030-01-01 00:00:00",
            "2080-01-01 00:00:00",
            "2130-01-01 00:00:00",
            "2180-01-01 00:00:00"
        ])
    );
}

#[test]
fn an_expression_that_never_fires_ends_the_search_quickly() {
    // February 30th does not exist; the search walks months up to 2199 and gives up.
    let e = CronExpr::parse("0 0 0 30 2 ?").unwrap();
    assert_eq!(e.next_after(at(UTC, "2024-01-01 00:00:00")), None);
    let e = CronExpr::parse("0 0 0 ? 2 2#5 2025").unwrap(); // no 5th Monday in Feb 2025
    assert_eq!(e.next_after(at(UTC, "2024-01-01 00:00:00")), None);
}

#[test]
fn works_in_utc_and_any_zone() {
    let e = CronExpr::parse("0 0 12 * * ?").unwrap();
    let t = chrono::TimeZone::with_ymd_and_hms(&Utc, 2024, 1, 1, 0, 0, 0).unwrap();
    assert_eq!(
        e.next_after(t).unwrap(),
        chrono::TimeZone::with_ymd_and_hms(&Utc, 2024, 1, 1, 12, 0, 0).unwrap()
    );
    let tokyo: Tz = "Asia/Tokyo".parse().unwrap();
    assert_eq!(
        crate::next_n_utc("0 0 12 * * ?", tokyo, "2024-01-01 00:00:00", 1),
        s(&["2024-01-01T03:00:00Z"])
    );
}

#[test]
fn matches_checks_one_wall_clock_time() {
    let e = CronExpr::parse("0 15 10 ? * 6L").unwrap();
    assert!(e.matches(at(UTC, "2024-05-31 10:15:00").naive_local()));
    assert!(!e.matches(at(UTC, "2024-05-24 10:15:00").naive_local()));
    assert!(!e.matches(at(UTC, "2024-05-31 10:15:01").naive_local()));
}
