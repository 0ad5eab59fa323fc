//! The Quartz cron grammar: fields, lists, ranges, steps, names and the `L`, `W`, `#`, `?`
//! specials. Every error names the field and the list item that is wrong.

use super::{CronError, CronExpr, CronField, DomRule, DowRule, MAX_YEAR, MIN_YEAR, YearSet};

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
/// Quartz numbering: 1 = SUN ... 7 = SAT.
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl CronField {
    /// The smallest and largest value the field admits.
    pub fn range(self) -> (u32, u32) {
        match self {
            CronField::Second | CronField::Minute => (0, 59),
            CronField::Hour => (0, 23),
            CronField::DayOfMonth => (1, 31),
            CronField::Month => (1, 12),
            CronField::DayOfWeek => (1, 7),
            CronField::Year => (MIN_YEAR as u32, MAX_YEAR as u32),
        }
    }

    /// The largest step Quartz accepts after `/` in this field.
    fn max_step(self) -> u32 {
        match self {
            CronField::Second | CronField::Minute => 59,
            CronField::Hour => 23,
            CronField::DayOfMonth => 31,
            CronField::Month => 12,
            CronField::DayOfWeek => 7,
            CronField::Year => MAX_YEAR as u32 - MIN_YEAR as u32,
        }
    }

    fn range_text(self) -> String {
        let (lo, hi) = self.range();
        match self {
            CronField::Month => format!("{lo}-{hi} or JAN-DEC"),
            CronField::DayOfWeek => format!("{lo}-{hi} or SUN-SAT, 1 = SUN"),
            _ => format!("{lo}-{hi}"),
        }
    }
}

fn err(field: CronField, token: &str, reason: impl Into<String>) -> CronError {
    CronError::Field {
        field,
        token: token.to_string(),
        reason: reason.into(),
    }
}

pub(super) fn parse(source: &str) -> Result<CronExpr, CronError> {
    let fields: Vec<&str> = source.split_whitespace().collect();
    if fields.is_empty() {
        return Err(CronError::Empty);
    }
    if fields.len() < 6 || fields.len() > 7 {
        return Err(CronError::FieldCount {
            expr: source.trim().to_string(),
            found: fields.len(),
        });
    }
    let seconds = parse_plain_field(CronField::Second, fields[0])?;
    let minutes = parse_plain_field(CronField::Minute, fields[1])?;
    let hours = parse_plain_field(CronField::Hour, fields[2])?;
    let dom = parse_dom(fields[3])?;
    let months = parse_plain_field(CronField::Month, fields[4])?;
    let dow = parse_dow(fields[5])?;
    let years = match fields.get(6) {
        None => None,
        Some(text) => parse_years(text)?,
    };
    match (&dom, &dow) {
        (DomRule::NoSpec, DowRule::NoSpec) => return Err(CronError::NoDaySet),
        (DomRule::NoSpec, _) | (_, DowRule::NoSpec) => {}
        _ => {
            return Err(CronError::BothDaysSet {
                day_of_month: fields[3].to_string(),
                day_of_week: fields[5].to_string(),
            });
        }
    }
    Ok(CronExpr {
        source: fields.join(" "),
        seconds,
        minutes,
        hours,
        dom,
        months,
        dow,
        years,
    })
}

/// The list items of a field; an empty item (`1,,2`, a trailing comma) is an error.
fn items(field: CronField, text: &str) -> Result<Vec<&str>, CronError> {
    let items: Vec<&str> = text.split(',').collect();
    if items.iter().any(|i| i.is_empty()) {
        return Err(err(field, text, "empty item in the list"));
    }
    Ok(items)
}

/// A field without specials (second, minute, hour, month) as a bit set of its values.
fn parse_plain_field(field: CronField, text: &str) -> Result<u64, CronError> {
    let mut bits = 0u64;
    for item in items(field, text)? {
        plain_item(field, item, &mut |v| bits |= 1u64 << v)?;
    }
    Ok(bits)
}

fn parse_years(text: &str) -> Result<Option<YearSet>, CronError> {
    if text == "*" {
        return Ok(None);
    }
    let mut set = YearSet::default();
    for item in items(CronField::Year, text)? {
        plain_item(CronField::Year, item, &mut |v| set.insert(v as i32))?;
    }
    Ok(Some(set))
}

/// A character that only some fields admit, with the message that says where it belongs.
fn misplaced_special(field: CronField, item: &str) -> Option<String> {
    let upper = item.to_ascii_uppercase();
    let is_name = |names: &[&str]| names.iter().any(|n| upper.contains(n));
    if upper.contains('?') {
        return Some("'?' is only allowed in day-of-month and day-of-week".into());
    }
    if upper.contains('#') && field != CronField::DayOfWeek {
        return Some("'#' is only allowed in day-of-week (such as 6#3, the third Friday)".into());
    }
    if upper.contains('W') && field != CronField::DayOfMonth && !is_name(&DAYS) {
        return Some("'W' is only allowed in day-of-month (such as 15W or LW)".into());
    }
    let l_is_name = field == CronField::Month && upper.contains("JUL");
    if upper.contains('L')
        && !l_is_name
        && field != CronField::DayOfMonth
        && field != CronField::DayOfWeek
    {
        return Some("'L' is only allowed in day-of-month and day-of-week".into());
    }
    None
}

/// One item of the plain grammar: `*`, `v`, `a-b`, with an optional `/step`; `/step` alone
/// means `*/step`, `v/step` runs from v to the field's end. A range whose end is before its
/// start wraps around (Quartz: hours `22-2` are 22, 23, 0, 1, 2); years do not wrap.
fn plain_item(field: CronField, item: &str, add: &mut dyn FnMut(u32)) -> Result<(), CronError> {
    if let Some(reason) = misplaced_special(field, item) {
        return Err(err(field, item, reason));
    }
    let upper = item.to_ascii_uppercase();
    let (min, max) = field.range();
    let (base, step) = match (upper.split_once('/'), item.split_once('/')) {
        (Some((base, _)), Some((_, step))) => (base, Some(parse_step(field, item, step)?)),
        _ => (upper.as_str(), None),
    };
    let (lo, hi) = if base == "*" || (base.is_empty() && step.is_some()) {
        (min, max)
    } else if base.is_empty() {
        return Err(err(field, item, "empty value"));
    } else if let Some((a, b)) = base.split_once('-') {
        (value(field, item, a)?, value(field, item, b)?)
    } else {
        let v = value(field, item, base)?;
        (v, if step.is_some() { max } else { v })
    };
    let step = step.unwrap_or(1);
    if hi >= lo {
        let mut v = lo;
        while v <= hi {
            add(v);
            v += step;
        }
    } else if field == CronField::Year {
        return Err(err(
            field,
            item,
            format!("the range starts after it ends ({lo} > {hi})"),
        ));
    } else {
        // Wrap around the end of the field, as Quartz does.
        let span = max - min + 1;
        let mut v = lo;
        while v <= hi + span {
            add((v - min) % span + min);
            v += step;
        }
    }
    Ok(())
}

fn parse_step(field: CronField, item: &str, step: &str) -> Result<u32, CronError> {
    if step.is_empty() {
        return Err(err(field, item, "missing step after '/'"));
    }
    if !step.bytes().all(|b| b.is_ascii_digit()) || step.len() > 9 {
        return Err(err(field, item, format!("step \"{step}\" is not a number")));
    }
    let n: u32 = step
        .parse()
        .map_err(|_| err(field, item, format!("step \"{step}\" is not a number")))?;
    let max = field.max_step();
    if n == 0 || n > max {
        return Err(err(
            field,
            item,
            format!("step {n} is out of range: it must be between 1 and {max}"),
        ));
    }
    Ok(n)
}

/// A number or, in month and day-of-week, a three-letter name; checked against the field range.
fn value(field: CronField, item: &str, text: &str) -> Result<u32, CronError> {
    if text.is_empty() {
        return Err(err(field, item, "missing value in range"));
    }
    let names: &[&str] = match field {
        CronField::Month => &MONTHS,
        CronField::DayOfWeek => &DAYS,
        _ => &[],
    };
    if let Some(i) = names.iter().position(|n| *n == text) {
        return Ok(i as u32 + 1);
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        let reason = match field {
            CronField::Month => format!("\"{text}\" is not a month (1-12 or JAN-DEC)"),
            CronField::DayOfWeek => format!("\"{text}\" is not a day of the week (1-7 or SUN-SAT)"),
            _ => format!("\"{text}\" is not a number"),
        };
        return Err(err(field, item, reason));
    }
    let (min, max) = field.range();
    let out_of_range = || {
        err(
            field,
            item,
            format!("{text} is out of range ({})", field.range_text()),
        )
    };
    let v: u32 = text.parse().map_err(|_| out_of_range())?;
    if v < min || v > max {
        return Err(out_of_range());
    }
    Ok(v)
}

/// A plain number in a fixed range (the `n` of `L-n`, `nW`, `#n`).
fn small_number(
    field: CronField,
    item: &str,
    text: &str,
    lo: u32,
    hi: u32,
    what: &str,
) -> Result<u32, CronError> {
    let bad = || {
        err(
            field,
            item,
            format!("{what} must be a number from {lo} to {hi}"),
        )
    };
    if text.is_empty() || text.len() > 3 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u32 = text.parse().map_err(|_| bad())?;
    if n < lo || n > hi {
        return Err(bad());
    }
    Ok(n)
}

fn parse_dom(text: &str) -> Result<DomRule, CronError> {
    let field = CronField::DayOfMonth;
    if text == "?" {
        return Ok(DomRule::NoSpec);
    }
    if text.contains('?') {
        return Err(err(field, text, "'?' must be the whole field"));
    }
    let list = items(field, text)?;
    let special = |i: &str| {
        let u = i.to_ascii_uppercase();
        u.starts_with('L') || u.ends_with('W')
    };
    if list.iter().any(|i| special(i)) {
        if list.len() > 1 {
            return Err(err(
                field,
                text,
                "'L' and 'W' cannot be combined with other days in a list",
            ));
        }
        return dom_special(text);
    }
    let mut bits = 0u64;
    for item in list {
        plain_item(field, item, &mut |v| bits |= 1u64 << v)?;
    }
    Ok(DomRule::Days(bits as u32))
}

/// `L`, `L-n`, `LW`, `L-nW`, `nW`.
fn dom_special(item: &str) -> Result<DomRule, CronError> {
    let field = CronField::DayOfMonth;
    let upper = item.to_ascii_uppercase();
    if let Some(rest) = upper.strip_prefix('L') {
        let (rest, weekday) = match rest.strip_suffix('W') {
            Some(r) => (r, true),
            None => (rest, false),
        };
        let offset = if rest.is_empty() {
            0
        } else if let Some(n) = rest.strip_prefix('-') {
            small_number(field, item, n, 0, 30, "the offset after 'L-'")?
        } else {
            return Err(err(
                field,
                item,
                "after 'L' only '-n' (days before the last) and 'W' are allowed",
            ));
        };
        return Ok(DomRule::Last {
            offset: offset as u8,
            weekday,
        });
    }
    let day = upper.strip_suffix('W').unwrap_or(&upper);
    if !day.bytes().all(|b| b.is_ascii_digit()) || day.is_empty() {
        return Err(err(
            field,
            item,
            "'W' needs a single day number before it (such as 15W)",
        ));
    }
    let d = small_number(field, item, day, 1, 31, "the day before 'W'")?;
    Ok(DomRule::NearestWeekday(d as u8))
}

fn parse_dow(text: &str) -> Result<DowRule, CronError> {
    let field = CronField::DayOfWeek;
    if text == "?" {
        return Ok(DowRule::NoSpec);
    }
    if text.contains('?') {
        return Err(err(field, text, "'?' must be the whole field"));
    }
    let list = items(field, text)?;
    let special = |i: &str| {
        let u = i.to_ascii_uppercase();
        u.contains('L') || u.contains('#')
    };
    if list.iter().any(|i| special(i)) {
        if list.len() > 1 {
            return Err(err(
                field,
                text,
                "'L' and '#' cannot be combined with other days of the week in a list",
            ));
        }
        return dow_special(text);
    }
    let mut bits = 0u64;
    for item in list {
        plain_item(field, item, &mut |v| bits |= 1u64 << v)?;
    }
    Ok(DowRule::Days(bits as u8))
}

/// `L` (Saturday), `dL` (last d of the month), `d#n` (n-th d of the month).
fn dow_special(item: &str) -> Result<DowRule, CronError> {
    let field = CronField::DayOfWeek;
    let upper = item.to_ascii_uppercase();
    if upper == "L" {
        return Ok(DowRule::Days(1 << 7));
    }
    if let Some((day, n)) = upper.split_once('#') {
        if day.contains(['-', '/', '*']) {
            return Err(err(field, item, "'#' needs a single day before it"));
        }
        let d = value(field, item, day)?;
        let n = small_number(field, item, n, 1, 5, "the number after '#'")?;
        return Ok(DowRule::Nth {
            weekday: d as u8,
            n: n as u8,
        });
    }
    if let Some(day) = upper.strip_suffix('L') {
        if day.contains(['-', '/', '*', 'L']) {
            return Err(err(
                field,
                item,
                "'L' needs a single day before it (such as 6L, the last Friday)",
            ));
        }
        let d = value(field, item, day)?;
        return Ok(DowRule::LastOf(d as u8));
    }
    Err(err(
        field,
        item,
        "'L' must end the item (such as 6L, the last Friday)",
    ))
}
