//! `idsync generate hr`: HR-style test data for samples and benchmarks (BENCHMARKS.md: "HR-style
//! users, 10 attributes"). Deterministic for a given seed, so benchmark runs are comparable.

use crate::splitmix::SplitMix;
use anyhow::{Context, Result};
use std::io::{BufWriter, Write};
use std::path::Path;

const GIVEN: &[&str] = &[
    "Barbara", "Jane", "Sam", "John", "Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace",
    "Heidi", "Ivan", "Judy", "Mallory", "Niaj", "Olivia", "Peggy", "Rupert", "Sybil", "Trent",
    "Uma", "Victor", "Walter", "Xena", "Yusuf", "Zoe",
];
const SURNAMES: &[&str] = &[
    "Jensen",
    "Sanchez",
    "Carter",
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
];
const DEPARTMENTS: &[&str] = &[
    "Engineering",
    "Sales",
    "Finance",
    "Human Resources",
    "Legal",
    "Support",
    "Marketing",
];
const CITIES: &[&str] = &[
    "Grenoble",
    "Bristol",
    "Austin",
    "Vancouver",
    "Sydney",
    "Lyon",
    "Oslo",
];

/// The header of generated HR files: `uid` first, then 9 attributes (10 in all).
pub const HR_HEADER: [&str; 10] = [
    "uid",
    "userName",
    "givenName",
    "sn",
    "mail",
    "employeeNumber",
    "department",
    "telephoneNumber",
    "city",
    "accountStatus",
];

/// One generated row, in `HR_HEADER` order.
pub fn hr_row(i: u64, seed: u64) -> [String; 10] {
    let mut r = SplitMix(seed ^ i.wrapping_mul(0x2545_F491_4F6C_DD1D));
    let given = r.pick(GIVEN);
    let sn = r.pick(SURNAMES);
    let user = format!(
        "{}{}{i}",
        given.to_lowercase().chars().next().unwrap_or('x'),
        sn.to_lowercase()
    );
    [
        format!("u{i:08}"),
        user.clone(),
        given.to_string(),
        sn.to_string(),
        format!("{user}@example.com"),
        format!("{}", 100_000 + i),
        r.pick(DEPARTMENTS).to_string(),
        format!("+1 555 {:04} {:04}", r.next() % 10_000, r.next() % 10_000),
        r.pick(CITIES).to_string(),
        if r.next().is_multiple_of(10) {
            "inactive"
        } else {
            "active"
        }
        .to_string(),
    ]
}

/// Writes `rows` rows starting at index `start` to `out` as RFC 4180 CSV with a header.
pub fn write_hr_csv(out: &Path, rows: u64, start: u64, seed: u64) -> Result<()> {
    let file = std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    writeln!(w, "{}", HR_HEADER.join(","))?;
    for i in start..start + rows {
        let row = hr_row(i, seed);
        let mut first = true;
        for field in &row {
            if !first {
                w.write_all(b",")?;
            }
            first = false;
            if field.contains([',', '"', '\n', '\r']) {
                write!(w, "\"{}\"", field.replace('"', "\"\""))?;
            } else {
                w.write_all(field.as_bytes())?;
            }
        }
        w.write_all(b"\n")?;
    }
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_deterministic_and_unique_by_uid() {
        assert_eq!(hr_row(7, 1), hr_row(7, 1));
        assert_ne!(hr_row(7, 1)[0], hr_row(8, 1)[0]);
        assert_eq!(hr_row(7, 1).len(), HR_HEADER.len());
    }

    #[test]
    fn writes_a_header_and_one_line_per_row() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("hr.csv");
        write_hr_csv(&p, 5, 0, 42).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text.lines().count(), 6);
        assert!(text.starts_with("uid,userName,"));
    }
}
