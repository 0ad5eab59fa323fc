use super::*;

fn days(expr: &str, year: i32, month: u32) -> Vec<u32> {
    let e = CronExpr::parse(expr).unwrap();
    let bits = e.days_of(year, month);
    (1..=31).filter(|d| bits & (1 << d) != 0).collect()
}

#[test]
fn month_lengths_follow_the_gregorian_leap_rule() {
    assert_eq!(days_in_month(2024, 2), 29);
    assert_eq!(days_in_month(2023, 2), 28);
    assert_eq!(days_in_month(1900, 2), 28);
    assert_eq!(days_in_month(2000, 2), 29);
    assert_eq!(days_in_month(2100, 2), 28);
    assert_eq!(days_in_month(2024, 4), 30);
    assert_eq!(days_in_month(2024, 12), 31);
}

#[test]
fn quartz_weekday_is_one_for_sunday() {
    assert_eq!(quartz_weekday(2024, 9, 15), 1); // Sunday
    assert_eq!(quartz_weekday(2024, 6, 15), 7); // Saturday
    assert_eq!(quartz_weekday(2024, 5, 31), 6); // Friday
}

#[test]
fn nearest_weekday_stays_in_the_month() {
    assert_eq!(nearest_weekday(2024, 6, 15, 30), 14); // Sat -> Fri
    assert_eq!(nearest_weekday(2024, 9, 15, 30), 16); // Sun -> Mon
    assert_eq!(nearest_weekday(2024, 6, 1, 30), 3); // Sat the 1st -> Mon the 3rd
    assert_eq!(nearest_weekday(2024, 9, 1, 30), 2); // Sun the 1st -> Mon the 2nd
    assert_eq!(nearest_weekday(2024, 3, 31, 31), 29); // Sun the last -> Fri
    assert_eq!(nearest_weekday(2024, 8, 31, 31), 30); // Sat the last -> Fri
    assert_eq!(nearest_weekday(2024, 5, 15, 31), 15); // Wednesday stays
}

#[test]
fn day_of_month_rules() {
    assert_eq!(days("0 0 0 L * ?", 2024, 2), vec![29]);
    assert_eq!(days("0 0 0 L * ?", 2023, 2), vec![28]);
    assert_eq!(days("0 0 0 L-3 * ?", 2024, 2), vec![26]);
    assert_eq!(days("0 0 0 L-30 * ?", 2024, 2), Vec::<u32>::new());
    assert_eq!(days("0 0 0 L-30 * ?", 2024, 1), vec![1]);
    assert_eq!(days("0 0 0 LW * ?", 2024, 3), vec![29]);
    assert_eq!(days("0 0 0 L-1W * ?", 2024, 3), vec![29]); // the 30th is a Saturday
    assert_eq!(days("0 0 0 15W * ?", 2024, 6), vec![14]);
    assert_eq!(days("0 0 0 31W * ?", 2024, 4), Vec::<u32>::new());
    assert_eq!(days("0 0 0 31W * ?", 2024, 8), vec![30]);
    assert_eq!(days("0 0 0 1/5 * ?", 2024, 2), vec![1, 6, 11, 16, 21, 26]);
    assert_eq!(
        days("0 0 0 1/5 * ?", 2024, 3),
        vec![1, 6, 11, 16, 21, 26, 31]
    );
    assert_eq!(days("0 0 0 29-2 * ?", 2024, 2), vec![1, 2, 29]); // wraps: 29..31, 1, 2
}

#[test]
fn day_of_week_rules() {
    // June 2024 starts on a Saturday.
    assert_eq!(days("0 0 0 ? * SUN", 2024, 6), vec![2, 9, 16, 23, 30]);
    assert_eq!(days("0 0 0 ? * 1", 2024, 6), vec![2, 9, 16, 23, 30]);
    assert_eq!(days("0 0 0 ? * L", 2024, 6), vec![1, 8, 15, 22, 29]); // L alone = SAT
    assert_eq!(days("0 0 0 ? * 6L", 2024, 6), vec![28]);
    assert_eq!(days("0 0 0 ? * FRIL", 2024, 6), vec![28]);
    assert_eq!(days("0 0 0 ? * 5L", 2024, 10), vec![31]);
    assert_eq!(days("0 0 0 ? * 6#3", 2024, 6), vec![21]);
    assert_eq!(days("0 0 0 ? * MON#5", 2024, 6), Vec::<u32>::new());
    assert_eq!(days("0 0 0 ? * 2#5", 2024, 9), vec![30]);
    assert_eq!(days("0 0 0 ? * FRI-MON", 2024, 6)[..4], [1, 2, 3, 7]);
    assert_eq!(days("0 0 0 ? * 2/2", 2024, 6)[..3], [3, 5, 7]); // MON, WED, FRI
}

#[test]
fn plain_fields_become_bit_sets() {
    let e = CronExpr::parse("10-50/20 0/15 22-2 * JUN-AUG ? 2030/10").unwrap();
    assert_eq!(e.seconds, 1 << 10 | 1 << 30 | 1 << 50);
    assert_eq!(e.minutes, 1 | 1 << 15 | 1 << 30 | 1 << 45);
    assert_eq!(e.hours, 1 << 22 | 1 << 23 | 1 | 1 << 1 | 1 << 2);
    assert_eq!(e.months, 1 << 6 | 1 << 7 | 1 << 8);
    let years = e.years.unwrap();
    assert_eq!(years.next_ge(1999), Some(2030));
    assert_eq!(years.next_ge(2031), Some(2040));
    assert_eq!(years.next_ge(2191), None);
}

#[test]
fn next_bit_finds_the_first_set_bit_from_a_position() {
    assert_eq!(next_bit(0b1010, 0), Some(1));
    assert_eq!(next_bit(0b1010, 2), Some(3));
    assert_eq!(next_bit(0b1010, 4), None);
    assert_eq!(next_bit(u64::MAX, 63), Some(63));
    assert_eq!(next_bit(u64::MAX, 64), None);
}

#[test]
fn display_joins_fields_with_single_spaces() {
    let e = CronExpr::parse("  0  15\t10 ? *  MON-FRI ").unwrap();
    assert_eq!(e.to_string(), "0 15 10 ? * MON-FRI");
    assert_eq!(e.as_str(), "0 15 10 ? * MON-FRI");
}
