//! liveSync of a table by `changeLogColumn`, a number that grows with each write (a sequence,
//! or a trigger's counter). Deletes are not visible in a table and are not reported.
//!
//! The token is `{"value": v, "keys": [...], "gaps": [[lo, hi, opened], ...]}`:
//! - `value` is the highest value read and `keys` the keys already read at it, so a row written
//!   with an equal value after a poll is still seen (`col >= v`, the listed keys skipped). A
//!   bare number (the older form) means "after v".
//! - `gaps` is the look-back (docs/configuration.md, `liveSyncLookBackSeconds`): when the rows
//!   read jump from integer `lo` to `hi`, the values between them were taken by transactions
//!   that had not committed yet (or rolled back). Each poll also reads `lo < col < hi` for every
//!   gap younger than the look-back (`opened` is its Unix time), so a row committed late with a
//!   lower value than one already read is applied, once: its value splits the gap. `gaps` is
//!   left out when there are none.
//!
//! Limits: a row whose transaction commits more than the look-back after a later-valued one
//! was read is missed (recon catches it); so is a late row whose value equals one already read
//! below `value` (a sequence never does that), and gaps are only tracked between integers.

use super::builder;
use super::settings::Dialect;
use super::translate::param_for;
use super::{CHANGE_BATCH, Column, SqlObjectSet};
use crate::contract::{Change, ChangeBatch, ConnectorError, ConnectorResult};
use crate::schema::PropKind;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// Gaps kept at most; past it the oldest is given up (and logged).
const MAX_GAPS: usize = 1000;

/// Where a poll stands: the token's parts.
#[derive(Debug, Clone)]
struct Position {
    value: Value,
    keys: BTreeSet<String>,
    /// Open intervals `(lo, hi)` of values not read yet, with the Unix time each was opened.
    gaps: Vec<(i64, i64, i64)>,
}

impl Position {
    fn from_token(token: &Value) -> (Self, bool) {
        match token {
            Value::Object(m) => {
                let keys = m
                    .get("keys")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default();
                let gaps = m
                    .get("gaps")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|g| {
                                Some((
                                    g.get(0)?.as_i64()?,
                                    g.get(1)?.as_i64()?,
                                    g.get(2)?.as_i64()?,
                                ))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                (
                    Self {
                        value: m.get("value").cloned().unwrap_or(Value::from(0)),
                        keys,
                        gaps,
                    },
                    true,
                )
            }
            other => (
                Self {
                    value: other.clone(),
                    keys: BTreeSet::new(),
                    gaps: Vec::new(),
                },
                false,
            ),
        }
    }

    fn token(&self) -> Value {
        let mut t = json!({ "value": self.value, "keys": self.keys });
        if !self.gaps.is_empty() {
            t["gaps"] = Value::Array(
                self.gaps
                    .iter()
                    .map(|(lo, hi, at)| json!([lo, hi, at]))
                    .collect(),
            );
        }
        t
    }

    /// The gap `v` falls in, if any.
    fn gap_of(&self, v: &Value) -> Option<usize> {
        let v = v.as_i64()?;
        self.gaps.iter().position(|(lo, hi, _)| *lo < v && v < *hi)
    }

    /// `v` was read inside gap `i`: what is left of the gap on either side stays open.
    fn fill(&mut self, i: usize, v: i64) {
        let (lo, hi, at) = self.gaps.remove(i);
        let mut rest = Vec::new();
        if v - lo > 1 {
            rest.push((lo, v, at));
        }
        if hi - v > 1 {
            rest.push((v, hi, at));
        }
        self.gaps.splice(i..i, rest);
    }

    /// The rows read jumped from `from` to `to`: the values between are a gap.
    fn open(&mut self, from: &Value, to: &Value, now: i64) {
        let (Some(lo), Some(hi)) = (from.as_i64(), to.as_i64()) else {
            return;
        };
        if hi.saturating_sub(lo) <= 1 {
            return;
        }
        if self.gaps.len() >= MAX_GAPS {
            let (lo, hi, _) = self.gaps.remove(0);
            tracing::warn!(
                lo,
                hi,
                "liveSync gives up looking back for changeLogColumn values between these: \
                 more than {MAX_GAPS} gaps are open"
            );
        }
        self.gaps.push((lo, hi, now));
    }
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

pub(super) async fn changes_since(
    set: &SqlObjectSet,
    token: Option<&Value>,
) -> ConnectorResult<ChangeBatch> {
    let Some(col) = set.settings.change_log_column.clone() else {
        return Err(ConnectorError::BadRequest(
            "liveSync needs changeLogColumn in the connector configuration".into(),
        ));
    };
    let col_kind = Column {
        name: col.clone(),
        kind: PropKind::Number,
    };
    let Some(token) = token.filter(|t| !t.is_null()) else {
        let mut b = set.builder();
        b.push("SELECT ")
            .push(&max_as_text(set.settings.dialect, &col))
            .push(" FROM ");
        b.ident(&set.settings.table);
        let rows = set.pool.fetch_text(&b).await?;
        let max = rows.first().and_then(|r| r.first().cloned().flatten());
        let token = match max {
            Some(t) => number_token(&t)?,
            None => Value::from(0),
        };
        return Ok(ChangeBatch {
            changes: Vec::new(),
            token: Some(json!({ "value": token, "keys": [] })),
            ..ChangeBatch::default()
        });
    };
    let (mut pos, inclusive) = Position::from_token(token);
    let now = unix_now();
    let look_back = i64::try_from(set.settings.live_sync_look_back.as_secs()).unwrap_or(i64::MAX);
    pos.gaps
        .retain(|(_, _, at)| now.saturating_sub(*at) <= look_back);
    if look_back == 0 {
        pos.gaps.clear();
    }
    // The change column is read last, after the object's columns.
    let mut b = set.builder();
    b.push("SELECT ").column_as_text(&set.key.name);
    for (_, c) in &set.readable {
        b.push(", ").column_as_text(c);
    }
    b.push(", ")
        .column_as_text(&col)
        .push(" FROM ")
        .ident(&set.settings.table);
    b.push(" WHERE ")
        .ident(&col)
        .push(if inclusive { " >= " } else { " > " })
        .param(param_for(&col_kind, &pos.value)?);
    for (lo, hi, _) in &pos.gaps {
        b.push(" OR (")
            .ident(&col)
            .push(" > ")
            .param(param_for(&col_kind, &Value::from(*lo))?)
            .push(" AND ")
            .ident(&col)
            .push(" < ")
            .param(param_for(&col_kind, &Value::from(*hi))?)
            .push(")");
    }
    // Rows already read at `value` come back too: the limit makes room for them, so a
    // poll always moves on. Late rows (in a gap) sort first.
    // Qualified names: a bare `seq` would sort by the text output column of that name
    // (PostgreSQL prefers output names in ORDER BY), and "10" sorts before "9".
    let table = &set.settings.table;
    b.push(" ORDER BY ")
        .ident(&format!("{table}.{col}"))
        .push(", ")
        .ident(&format!("{table}.{}", set.key.name))
        .push(&format!(" LIMIT {}", CHANGE_BATCH + pos.keys.len()));
    let rows = set.pool.fetch_text(&b).await?;
    let mut changes = Vec::with_capacity(rows.len());
    let mut tokens = Vec::with_capacity(rows.len());
    for row in rows {
        let v = match row.last() {
            Some(Some(t)) => number_token(t)?,
            _ => continue,
        };
        let object = set.row_to_object(&row[..row.len().saturating_sub(1)])?;
        let id = object
            .get("_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if let (Some(i), Some(n)) = (pos.gap_of(&v), v.as_i64()) {
            // Committed late, below what was read already.
            pos.fill(i, n);
        } else {
            if v == pos.value && pos.keys.contains(&id) {
                continue;
            }
            if v != pos.value {
                if look_back > 0 {
                    let from = pos.value.clone();
                    pos.open(&from, &v, now);
                }
                pos.value = v;
                pos.keys.clear();
            }
            pos.keys.insert(id.clone());
        }
        tokens.push(pos.token());
        changes.push(Change::CreateOrUpdate { id, object });
    }
    Ok(ChangeBatch {
        changes,
        token: Some(pos.token()),
        tokens,
        times: Vec::new(),
    })
}

fn max_as_text(dialect: Dialect, col: &str) -> String {
    let q = builder::quote_ident(dialect, col);
    match dialect {
        Dialect::Postgres => format!("MAX({q})::text"),
        Dialect::MySql => format!("CAST(MAX({q}) AS CHAR)"),
        Dialect::Sqlite => format!("CAST(MAX({q}) AS TEXT)"),
    }
}

fn number_token(text: &str) -> ConnectorResult<Value> {
    if let Ok(i) = text.trim().parse::<i64>() {
        return Ok(Value::from(i));
    }
    text.trim()
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map(Value::Number)
        .ok_or_else(|| {
            ConnectorError::Config(format!("changeLogColumn must hold numbers, found {text:?}"))
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests may unwrap.

    use super::*;

    #[test]
    fn a_value_read_in_a_gap_splits_it() {
        let (mut p, _) = Position::from_token(&json!({"value": 10, "keys": ["a"]}));
        p.open(&json!(2), &json!(6), 100);
        assert_eq!(p.gap_of(&json!(4)), Some(0));
        assert_eq!(p.gap_of(&json!(6)), None);
        p.fill(0, 4);
        assert_eq!(p.gaps, [(2, 4, 100), (4, 6, 100)]);
        p.fill(0, 3);
        p.fill(0, 5);
        assert!(p.gaps.is_empty(), "{:?}", p.gaps);
        // Consecutive values leave no gap; floats are not tracked.
        p.open(&json!(6), &json!(7), 100);
        p.open(&json!(6.5), &json!(9.5), 100);
        assert!(p.gaps.is_empty());
        p.open(&json!(7), &json!(9), 100);
        assert_eq!(
            p.token(),
            json!({"value": 10, "keys": ["a"], "gaps": [[7, 9, 100]]})
        );
        let (back, inclusive) = Position::from_token(&p.token());
        assert!(inclusive);
        assert_eq!(back.gaps, p.gaps);
    }
}
