//! Triggers built from schedules: cron and simple, start and end times, repeat counts, time
//! zones, validation messages, and firing ids.

use crate::utc;
use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use idsync_config::{InvokeService, Schedule, ScheduleType};
use idsync_scheduler::{CronExpr, Trigger, firing_id, validate_schedule};
use serde_json::json;
use std::time::Duration;

fn cron_schedule(expr: &str) -> Schedule {
    Schedule {
        name: "nightly".into(),
        enabled: true,
        r#type: ScheduleType::Cron,
        schedule: Some(expr.into()),
        repeat_interval_ms: None,
        repeat_count: None,
        persisted: true,
        concurrent_execution: false,
        start_time: None,
        end_time: None,
        timezone: None,
        invoke_service: InvokeService::Sync,
        invoke_context: json!({"action": "reconcile", "mapping": "csv_ldap"}),
        raw: json!({}),
    }
}

fn simple_schedule(interval_ms: Option<u64>, count: Option<i64>) -> Schedule {
    Schedule {
        r#type: ScheduleType::Simple,
        schedule: None,
        repeat_interval_ms: interval_ms,
        repeat_count: count,
        ..cron_schedule("unused")
    }
}

fn fires(t: &Trigger, after: &str, n: usize) -> Vec<String> {
    t.upcoming(utc(after), 0, n)
        .iter()
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .collect()
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn cron_schedule_defaults_to_utc() {
    let t = Trigger::from_schedule(&cron_schedule("0 0 2 * * ?")).unwrap();
    assert!(matches!(t, Trigger::Cron { tz: Tz::UTC, .. }));
    assert_eq!(
        fires(&t, "2024-05-01T12:00:00Z", 2),
        s(&["2024-05-02T02:00:00.000Z", "2024-05-03T02:00:00.000Z"])
    );
}

#[test]
fn cron_schedule_in_its_time_zone() {
    let mut sch = cron_schedule("0 0 2 * * ?");
    sch.timezone = Some("Europe/Berlin".into());
    sch.raw = json!({"timeZone": "Europe/Berlin"});
    let t = Trigger::from_schedule(&sch).unwrap();
    assert_eq!(
        fires(&t, "2024-05-01T12:00:00Z", 1),
        s(&["2024-05-02T00:00:00.000Z"]) // 02:00 CEST
    );
    // The caller's default zone applies when the schedule has none.
    let t =
        Trigger::from_schedule_in(&cron_schedule("0 0 2 * * ?"), chrono_tz::Asia::Tokyo).unwrap();
    assert_eq!(
        fires(&t, "2024-05-01T12:00:00Z", 1),
        s(&["2024-05-01T17:00:00.000Z"])
    );
}

#[test]
fn cron_start_time_is_inclusive_and_end_time_stops() {
    let mut sch = cron_schedule("0 0 12 * * ?");
    sch.start_time = Some("2024-06-10T12:00:00Z".into());
    sch.end_time = Some("2024-06-12T12:00:00Z".into());
    let t = Trigger::from_schedule(&sch).unwrap();
    assert_eq!(
        fires(&t, "2024-06-01T00:00:00Z", 5),
        s(&[
            "2024-06-10T12:00:00.000Z",
            "2024-06-11T12:00:00.000Z",
            "2024-06-12T12:00:00.000Z"
        ])
    );
    // A start half a second after noon misses that noon.
    sch.start_time = Some("2024-06-10T12:00:00.500Z".into());
    let t = Trigger::from_schedule(&sch).unwrap();
    assert_eq!(
        fires(&t, "2024-06-01T00:00:00Z", 1),
        s(&["2024-06-11T12:00:00.000Z"])
    );
}

#[test]
fn local_start_time_is_read_in_the_schedule_zone() {
    let mut sch = cron_schedule("0 0 * * * ?");
    sch.timezone = Some("America/New_York".into());
    sch.start_time = Some("2024-05-01T02:00:00".into());
    let t = Trigger::from_schedule(&sch).unwrap();
    assert_eq!(t.start_time(), Some(utc("2024-05-01T06:00:00Z")));
    assert_eq!(
        fires(&t, "2024-01-01T00:00:00Z", 1),
        s(&["2024-05-01T06:00:00.000Z"])
    );
    // Other accepted spellings.
    for (text, want) in [
        ("2024-05-01T02:00:00+02:00", "2024-05-01T00:00:00Z"),
        ("2024-05-01T02:00:00.000+0200", "2024-05-01T00:00:00Z"),
        ("2024-05-01 02:00:00", "2024-05-01T06:00:00Z"),
        ("2024-05-01T02:00", "2024-05-01T06:00:00Z"),
        ("2024-05-01", "2024-05-01T04:00:00Z"),
    ] {
        sch.start_time = Some(text.into());
        let t = Trigger::from_schedule(&sch).unwrap();
        assert_eq!(t.start_time(), Some(utc(want)), "{text}");
    }
    // An empty startTime is no startTime (IDM samples use "").
    sch.start_time = Some(String::new());
    assert_eq!(Trigger::from_schedule(&sch).unwrap().start_time(), None);
}

#[test]
fn simple_trigger_fires_repeat_count_plus_one_times() {
    let mut sch = simple_schedule(Some(60_000), Some(2));
    sch.start_time = Some("2024-01-01T00:00:00Z".into());
    let t = Trigger::from_schedule(&sch).unwrap();
    assert_eq!(
        t,
        Trigger::Simple {
            repeat_interval: Duration::from_secs(60),
            repeat_count: 2,
            start_time: Some(utc("2024-01-01T00:00:00Z")),
            end_time: None
        }
    );
    assert_eq!(
        fires(&t, "2023-12-31T00:00:00Z", 10),
        s(&[
            "2024-01-01T00:00:00.000Z",
            "2024-01-01T00:01:00.000Z",
            "2024-01-01T00:02:00.000Z"
        ])
    );
    // The count of earlier firings ends it too (they come from the repository).
    assert_eq!(t.next_fire(utc("2023-12-31T00:00:00Z"), 3), None);
    assert_eq!(
        t.next_fire(utc("2024-01-01T00:00:30Z"), 1),
        Some(utc("2024-01-01T00:01:00Z"))
    );
}

#[test]
fn simple_trigger_forever_and_until_end_time() {
    let mut sch = simple_schedule(Some(60_000), Some(-1));
    sch.start_time = Some("2024-01-01T00:00:00Z".into());
    let t = Trigger::from_schedule(&sch).unwrap();
    assert_eq!(
        t.next_fire(utc("2150-01-01T00:00:30Z"), 1_000_000_000),
        Some(utc("2150-01-01T00:01:00Z"))
    );
    sch.end_time = Some("2024-01-01T00:02:30Z".into());
    let t = Trigger::from_schedule(&sch).unwrap();
    assert_eq!(fires(&t, "2023-12-31T00:00:00Z", 10).len(), 3);
    // Missing repeatCount repeats forever.
    let t = Trigger::from_schedule(&simple_schedule(Some(1000), None)).unwrap();
    assert!(matches!(
        t,
        Trigger::Simple {
            repeat_count: -1,
            ..
        }
    ));
}

#[test]
fn simple_trigger_without_start_uses_the_epoch_grid() {
    let t = Trigger::from_schedule(&simple_schedule(Some(3_600_000), None)).unwrap();
    assert_eq!(
        fires(&t, "2024-01-01T10:20:00Z", 2),
        s(&["2024-01-01T11:00:00.000Z", "2024-01-01T12:00:00.000Z"])
    );
    // Nodes asking at slightly different times get the same firing.
    let a = t.next_fire(utc("2024-01-01T10:20:00Z"), 0).unwrap();
    let b = t.next_fire(utc("2024-01-01T10:59:59.999Z"), 0).unwrap();
    assert_eq!(firing_id("hourly", a), firing_id("hourly", b));
    // With a count: 1 + 1 firings, counted by the caller.
    let t = Trigger::from_schedule(&simple_schedule(Some(1000), Some(1))).unwrap();
    assert!(t.next_fire(utc("2024-01-01T00:00:00Z"), 1).is_some());
    assert_eq!(t.next_fire(utc("2024-01-01T00:00:00Z"), 2), None);
}

#[test]
fn one_shot_simple_trigger() {
    // repeatCount 0 needs no interval: it fires once, at its start.
    let mut sch = simple_schedule(None, Some(0));
    sch.start_time = Some("2024-03-01T08:00:00Z".into());
    let t = Trigger::from_schedule(&sch).unwrap();
    assert_eq!(
        t.next_fire(utc("2024-01-01T00:00:00Z"), 0),
        Some(utc("2024-03-01T08:00:00Z"))
    );
    assert_eq!(t.next_fire(utc("2024-03-01T08:00:00Z"), 1), None);
    assert_eq!(t.next_fire(utc("2024-03-01T08:00:00Z"), 0), None);
    // Without a start: the next whole second, unless the engine pins a start.
    let t = Trigger::from_schedule(&simple_schedule(None, Some(0))).unwrap();
    assert_eq!(
        t.next_fire(utc("2024-01-01T00:00:00.250Z"), 0),
        Some(utc("2024-01-01T00:00:01Z"))
    );
    let pinned = t.with_default_start(utc("2024-01-01T00:00:05Z"));
    assert_eq!(
        pinned.next_fire(utc("2024-01-01T00:00:00.250Z"), 0),
        Some(utc("2024-01-01T00:00:05Z"))
    );
}

#[test]
fn schedule_errors_name_the_key() {
    let e = Trigger::from_schedule(&cron_schedule("0 61 * * * ?")).unwrap_err();
    assert_eq!(e.pointer, "/schedule");
    assert!(e.cron.is_some());
    assert_eq!(
        validate_schedule(&cron_schedule("0 61 * * * ?")).unwrap_err(),
        "/schedule: invalid minute field \"61\": 61 is out of range (0-59)"
    );
    assert_eq!(
        validate_schedule(&cron_schedule("0 0 12 15 * MON")).unwrap_err(),
        "/schedule: day-of-month \"15\" and day-of-week \"MON\" are both set: Quartz needs '?' in \
         exactly one of them (such as \"0 0 12 ? * MON\" or \"0 0 12 15 * ?\")"
    );
    let mut sch = cron_schedule("0 0 12 * * ?");
    sch.schedule = None;
    assert_eq!(
        validate_schedule(&sch).unwrap_err(),
        "/schedule: missing cron expression (a cron schedule needs \"schedule\")"
    );

    let mut sch = cron_schedule("0 0 12 * * ?");
    sch.timezone = Some("Mars/Olympus".into());
    sch.raw = json!({"timeZone": "Mars/Olympus"});
    assert_eq!(
        validate_schedule(&sch).unwrap_err(),
        "/timeZone: unknown time zone \"Mars/Olympus\" (use an IANA name such as \"Europe/Berlin\" or \"UTC\")"
    );

    let mut sch = cron_schedule("0 0 12 * * ?");
    sch.start_time = Some("tomorrow".into());
    assert_eq!(
        validate_schedule(&sch).unwrap_err(),
        "/startTime: \"tomorrow\" is not an ISO 8601 date and time (such as 2024-05-01T02:00:00, \
         with an optional Z or offset such as +02:00)"
    );

    let mut sch = cron_schedule("0 0 12 * * ?");
    sch.start_time = Some("2024-05-02T00:00:00Z".into());
    sch.end_time = Some("2024-05-01T00:00:00Z".into());
    assert_eq!(
        validate_schedule(&sch).unwrap_err(),
        "/endTime: endTime 2024-05-01T00:00:00+00:00 is before startTime 2024-05-02T00:00:00+00:00"
    );

    assert_eq!(
        validate_schedule(&simple_schedule(None, Some(5))).unwrap_err(),
        "/repeatInterval: a simple schedule that repeats needs repeatInterval (milliseconds); set \
         repeatCount to 0 to fire once"
    );
    assert_eq!(
        validate_schedule(&simple_schedule(Some(1000), Some(-2))).unwrap_err(),
        "/repeatCount: repeatCount -2 is invalid: use -1 (repeat forever) or a count of repeats from 0"
    );
    assert!(validate_schedule(&simple_schedule(Some(1000), Some(-1))).is_ok());
    assert!(validate_schedule(&cron_schedule("0 0 12 ? * 6#3")).is_ok());
}

#[test]
fn firing_ids_are_name_at_epoch_millis() {
    assert_eq!(
        firing_id("reconHrToLdap", utc("2024-06-03T12:05:00Z")),
        "reconHrToLdap@1717416300000"
    );
    assert_eq!(
        firing_id(
            "x",
            DateTime::<Utc>::UNIX_EPOCH + TimeDelta::milliseconds(1)
        ),
        "x@1"
    );
}

#[test]
fn nodes_with_skewed_clocks_agree_on_the_firing() {
    // Node A asks just after the previous firing, node B (clock 7 s behind) a little later in
    // real time: both are between the same two firings, so both name the same next one.
    let t = Trigger::Cron {
        expr: CronExpr::parse("0 0/5 * * * ?").unwrap(),
        tz: chrono_tz::Europe::Berlin,
        start_time: None,
        end_time: None,
    };
    let prev = utc("2024-06-03T12:05:00Z");
    let a = t.next_fire(prev + TimeDelta::seconds(3), 1).unwrap();
    let b = t
        .next_fire(prev - TimeDelta::seconds(7) + TimeDelta::seconds(60), 1)
        .unwrap();
    let c = t.next_fire(prev, 1).unwrap();
    assert_eq!(a, utc("2024-06-03T12:10:00Z"));
    assert_eq!(firing_id("s", a), firing_id("s", b));
    assert_eq!(firing_id("s", a), firing_id("s", c));
}
