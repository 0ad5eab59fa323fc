//! Invalid expressions: each error names the field and the offending item.

use idsync_scheduler::{CronError, CronExpr, CronField};

fn error(expr: &str) -> CronError {
    match CronExpr::parse(expr) {
        Ok(e) => panic!("\"{expr}\" parsed as {e:?}"),
        Err(e) => e,
    }
}

fn message(expr: &str) -> String {
    error(expr).to_string()
}

/// The field and token of a field error.
fn field_error(expr: &str) -> (CronField, String) {
    match error(expr) {
        CronError::Field { field, token, .. } => (field, token),
        other => panic!("\"{expr}\": expected a field error, got {other:?}"),
    }
}

#[test]
fn both_day_fields_set_is_an_error_naming_both() {
    let e = error("0 0 12 1 * MON");
    assert_eq!(
        e,
        CronError::BothDaysSet {
            day_of_month: "1".into(),
            day_of_week: "MON".into()
        }
    );
    assert_eq!(
        e.to_string(),
        "day-of-month \"1\" and day-of-week \"MON\" are both set: Quartz needs '?' in exactly one \
         of them (such as \"0 0 12 ? * MON\" or \"0 0 12 15 * ?\")"
    );
    // `*` in both is "both set" for Quartz too.
    assert!(matches!(
        error("0 0 12 * * *"),
        CronError::BothDaysSet { .. }
    ));
    assert!(matches!(
        error("0 0 12 L * 6L"),
        CronError::BothDaysSet { .. }
    ));
}

#[test]
fn neither_day_field_set_is_an_error() {
    assert_eq!(error("0 0 12 ? * ?"), CronError::NoDaySet);
    assert!(message("0 0 12 ? * ?").contains("day-of-month and day-of-week are both '?'"));
}

#[test]
fn out_of_range_values() {
    assert_eq!(
        message("60 0 12 * * ?"),
        "invalid second field \"60\": 60 is out of range (0-59)"
    );
    assert_eq!(
        message("0 61 12 * * ?"),
        "invalid minute field \"61\": 61 is out of range (0-59)"
    );
    assert_eq!(
        message("0 0 24 * * ?"),
        "invalid hour field \"24\": 24 is out of range (0-23)"
    );
    assert_eq!(
        message("0 0 12 0 * ?"),
        "invalid day-of-month field \"0\": 0 is out of range (1-31)"
    );
    assert_eq!(
        message("0 0 12 1-32 * ?"),
        "invalid day-of-month field \"1-32\": 32 is out of range (1-31)"
    );
    assert_eq!(
        message("0 0 12 ? 13 *"),
        "invalid month field \"13\": 13 is out of range (1-12 or JAN-DEC)"
    );
    assert_eq!(
        message("0 0 12 ? * 0"),
        "invalid day-of-week field \"0\": 0 is out of range (1-7 or SUN-SAT, 1 = SUN)"
    );
    assert_eq!(
        message("0 0 12 ? * 8"),
        "invalid day-of-week field \"8\": 8 is out of range (1-7 or SUN-SAT, 1 = SUN)"
    );
    assert_eq!(
        message("0 0 12 * * ? 1969"),
        "invalid year field \"1969\": 1969 is out of range (1970-2199)"
    );
    assert_eq!(
        message("0 0 12 * * ? 2200"),
        "invalid year field \"2200\": 2200 is out of range (1970-2199)"
    );
    assert_eq!(
        message("0 0 12 * * ? 99999999999"),
        "invalid year field \"99999999999\": 99999999999 is out of range (1970-2199)"
    );
    // The offending item of a list, not the whole field.
    assert_eq!(
        field_error("0 5,15,75 * * * ?"),
        (CronField::Minute, "75".into())
    );
}

#[test]
fn bad_steps() {
    assert_eq!(
        message("0 0/0 * * * ?"),
        "invalid minute field \"0/0\": step 0 is out of range: it must be between 1 and 59"
    );
    assert_eq!(
        message("0/60 * * * * ?"),
        "invalid second field \"0/60\": step 60 is out of range: it must be between 1 and 59"
    );
    assert_eq!(
        message("0 0 */24 * * ?"),
        "invalid hour field \"*/24\": step 24 is out of range: it must be between 1 and 23"
    );
    assert_eq!(
        message("0 0/ * * * ?"),
        "invalid minute field \"0/\": missing step after '/'"
    );
    assert_eq!(
        message("0 0/x * * * ?"),
        "invalid minute field \"0/x\": step \"x\" is not a number"
    );
    assert_eq!(
        message("0 10-50/-5 * * * ?"),
        "invalid minute field \"10-50/-5\": step \"-5\" is not a number"
    );
    // A step as large as the field is fine (Quartz accepts it).
    assert!(CronExpr::parse("0 0 0 1/31 * ?").is_ok());
}

#[test]
fn bad_names_and_numbers() {
    assert_eq!(
        message("0 0 12 ? * MON-FOO"),
        "invalid day-of-week field \"MON-FOO\": \"FOO\" is not a day of the week (1-7 or SUN-SAT)"
    );
    assert_eq!(
        message("0 0 12 ? JANUARY *"),
        "invalid month field \"JANUARY\": \"JANUARY\" is not a month (1-12 or JAN-DEC)"
    );
    assert_eq!(
        message("0 0 MON * * ?"),
        "invalid hour field \"MON\": \"MON\" is not a number"
    );
    assert_eq!(
        message("0 0 12 1,,2 * ?"),
        "invalid day-of-month field \"1,,2\": empty item in the list"
    );
    assert_eq!(
        message("0 0 12 * * ? 2030-2025"),
        "invalid year field \"2030-2025\": the range starts after it ends (2030 > 2025)"
    );
    assert_eq!(
        message("0 1- * * * ?"),
        "invalid minute field \"1-\": missing value in range"
    );
}

#[test]
fn specials_outside_their_fields() {
    assert_eq!(
        message("0 L 12 * * ?"),
        "invalid minute field \"L\": 'L' is only allowed in day-of-month and day-of-week"
    );
    assert_eq!(
        message("? 0 12 * * ?"),
        "invalid second field \"?\": '?' is only allowed in day-of-month and day-of-week"
    );
    assert_eq!(
        message("0 0 12 ? * 5W"),
        "invalid day-of-week field \"5W\": 'W' is only allowed in day-of-month (such as 15W or LW)"
    );
    assert_eq!(
        message("0 0 12 3#2 * ?"),
        "invalid day-of-month field \"3#2\": '#' is only allowed in day-of-week (such as 6#3, the third Friday)"
    );
    // JUL is a month, not 'L'; WED is a day, not 'W'.
    assert!(CronExpr::parse("0 0 12 ? JUL *").is_ok());
    assert!(CronExpr::parse("0 0 12 ? * WED").is_ok());
}

#[test]
fn bad_l_w_and_hash() {
    assert_eq!(
        message("0 0 12 L,15 * ?"),
        "invalid day-of-month field \"L,15\": 'L' and 'W' cannot be combined with other days in a list"
    );
    assert_eq!(
        message("0 0 12 L-31 * ?"),
        "invalid day-of-month field \"L-31\": the offset after 'L-' must be a number from 0 to 30"
    );
    assert_eq!(
        message("0 0 12 LX * ?"),
        "invalid day-of-month field \"LX\": after 'L' only '-n' (days before the last) and 'W' are allowed"
    );
    assert_eq!(
        message("0 0 12 1-5W * ?"),
        "invalid day-of-month field \"1-5W\": 'W' needs a single day number before it (such as 15W)"
    );
    assert_eq!(
        message("0 0 12 32W * ?"),
        "invalid day-of-month field \"32W\": the day before 'W' must be a number from 1 to 31"
    );
    assert_eq!(
        message("0 0 12 ? * 6#6"),
        "invalid day-of-week field \"6#6\": the number after '#' must be a number from 1 to 5"
    );
    assert_eq!(
        message("0 0 12 ? * 6#3,2"),
        "invalid day-of-week field \"6#3,2\": 'L' and '#' cannot be combined with other days of the week in a list"
    );
    assert_eq!(
        message("0 0 12 ? * 8L"),
        "invalid day-of-week field \"8L\": 8 is out of range (1-7 or SUN-SAT, 1 = SUN)"
    );
    assert_eq!(
        message("0 0 12 ? * 2-6L"),
        "invalid day-of-week field \"2-6L\": 'L' needs a single day before it (such as 6L, the last Friday)"
    );
    assert_eq!(
        message("0 0 12 ?5 * ?"),
        "invalid day-of-month field \"?5\": '?' must be the whole field"
    );
}

#[test]
fn wrong_number_of_fields() {
    assert_eq!(error(""), CronError::Empty);
    assert_eq!(error("   "), CronError::Empty);
    assert_eq!(
        message("0 12 * * *"),
        "cron expression \"0 12 * * *\" has 5 field(s): expected 6 or 7 (second minute hour \
         day-of-month month day-of-week [year]); Quartz expressions start with a seconds field, \
         such as \"0 \" + the Unix cron expression with '?' for day-of-month or day-of-week"
    );
    assert_eq!(
        error("0 0 12 * * ? 2024 x"),
        CronError::FieldCount {
            expr: "0 0 12 * * ? 2024 x".into(),
            found: 8
        }
    );
}

#[test]
fn errors_say_which_field() {
    assert_eq!(error("0 61 * * * ?").field(), Some(CronField::Minute));
    assert_eq!(error("0 0 12 ? * ?").field(), Some(CronField::DayOfWeek));
    assert_eq!(error("0 0").field(), None);
    // The token is the item as written, in its original case.
    assert_eq!(
        field_error("0 0 12 ? * mon-foo"),
        (CronField::DayOfWeek, "mon-foo".into())
    );
}
