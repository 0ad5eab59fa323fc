//! Many filters against one result set: which of N filters each object matches, without
//! testing every filter on every object.
//!
//! A reconciliation page correlates thousands of sources, each with its own filter
//! (`userName eq "…"`). Run as one query (the `or` of them all), the results must be handed back
//! to the filters they match. The index keys each filter by its *probe*, an equality every
//! object it matches must satisfy, and tests a result only against the filters whose probe it
//! meets; the final word is always [`Filter::matches`], so the answer is exactly that of running
//! each filter on its own against a backend with the evaluator's semantics (docs/rest.md#the-query-language).

use super::{CompareOp, Filter};
use crate::pointer::JsonPointer;
use serde_json::Value;
use std::collections::HashMap;

/// A comparable form of a scalar under the evaluator's equality: strings lower-cased character
/// by character, numbers as `f64`, booleans as they are. Other values never compare equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Str(String),
    Num(u64),
    Bool(bool),
}

impl Key {
    fn of(v: &Value) -> Option<Key> {
        match v {
            Value::String(s) => Some(Key::Str(s.chars().flat_map(char::to_lowercase).collect())),
            Value::Number(n) => n.as_f64().map(|f| {
                // 0.0 == -0.0 for the evaluator; one key for both.
                let f = if f == 0.0 { 0.0 } else { f };
                Key::Num(f.to_bits())
            }),
            Value::Bool(b) => Some(Key::Bool(*b)),
            _ => None,
        }
    }
}

impl Filter {
    /// An equality that every object this filter matches satisfies: the filter itself when it
    /// is `field eq value`, else the first such term of a top-level `and`. `None` when the
    /// filter has none (an `or`, a range, a `not`, ...).
    pub fn equality_probe(&self) -> Option<(&JsonPointer, &Value)> {
        match self {
            Filter::Compare {
                field,
                op: CompareOp::Eq,
                value,
            } => Key::of(value).map(|_| (field, value)),
            Filter::And(items) => items.iter().find_map(Filter::equality_probe),
            _ => None,
        }
    }
}

/// Filters indexed by their equality probe.
#[derive(Debug)]
pub struct FilterIndex<'a> {
    filters: &'a [Filter],
    /// The probe fields, each once.
    fields: Vec<&'a JsonPointer>,
    probes: HashMap<(usize, Key), Vec<usize>>,
}

impl<'a> FilterIndex<'a> {
    /// Indexes `filters`; one without an [`equality_probe`](Filter::equality_probe) is never
    /// reported by [`matching`](Self::matching) (run it on its own).
    pub fn new(filters: &'a [Filter]) -> Self {
        let mut fields: Vec<&JsonPointer> = Vec::new();
        let mut probes: HashMap<(usize, Key), Vec<usize>> = HashMap::new();
        for (i, f) in filters.iter().enumerate() {
            let Some((field, value)) = f.equality_probe() else {
                continue;
            };
            let Some(key) = Key::of(value) else { continue };
            let slot = match fields.iter().position(|x| *x == field) {
                Some(s) => s,
                None => {
                    fields.push(field);
                    fields.len() - 1
                }
            };
            probes.entry((slot, key)).or_default().push(i);
        }
        FilterIndex {
            filters,
            fields,
            probes,
        }
    }

    /// The indexes of the filters `object` matches, ascending, each once.
    pub fn matching(&self, object: &Value) -> Vec<usize> {
        let mut out = Vec::new();
        for (slot, field) in self.fields.iter().enumerate() {
            let values: &[Value] = match field.get(object) {
                None => continue,
                Some(Value::Array(items)) => items,
                Some(v) => std::slice::from_ref(v),
            };
            for v in values {
                let Some(key) = Key::of(v) else { continue };
                if let Some(candidates) = self.probes.get(&(slot, key)) {
                    out.extend(
                        candidates
                            .iter()
                            .copied()
                            .filter(|&i| self.filters[i].matches(object)),
                    );
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn filters(texts: &[&str]) -> Vec<Filter> {
        texts.iter().map(|t| t.parse().unwrap()).collect()
    }

    /// The index answers exactly what testing every filter answers.
    fn check(fs: &[Filter], objects: &[Value]) {
        let index = FilterIndex::new(fs);
        for o in objects {
            let expected: Vec<usize> = (0..fs.len())
                .filter(|&i| fs[i].equality_probe().is_some() && fs[i].matches(o))
                .collect();
            assert_eq!(index.matching(o), expected, "object {o}");
        }
    }

    #[test]
    fn probes_are_top_level_equalities() {
        let f: Filter = r#"userName eq "a""#.parse().unwrap();
        assert_eq!(f.equality_probe().unwrap().1, &json!("a"));
        let f: Filter = r#"sn sw "x" and mail eq "m" and userName eq "u""#.parse().unwrap();
        assert_eq!(f.equality_probe().unwrap().1, &json!("m"));
        for no in [
            r#"userName eq "a" or userName eq "b""#,
            r#"userName sw "a""#,
            r#"!(userName eq "a")"#,
            "true",
        ] {
            let f: Filter = no.parse().unwrap();
            assert!(f.equality_probe().is_none(), "{no}");
        }
    }

    #[test]
    fn matches_like_the_evaluator() {
        let fs = filters(&[
            r#"userName eq "Alice""#,
            r#"userName eq "alice""#,
            r#"userName eq "bob" and sn eq "Smith""#,
            r#"userName eq "bob" and sn eq "Jones""#,
            r#"employeeNumber eq 7"#,
            r#"active eq true"#,
            r#"userName sw "a""#,
            r#"roles eq "admin""#,
            r#"score eq 0"#,
        ]);
        let objects = [
            json!({"_id": "1", "userName": "ALICE"}),
            json!({"_id": "2", "userName": "Bob", "sn": "smith"}),
            json!({"_id": "3", "userName": "bob", "sn": "Other"}),
            json!({"_id": "4", "employeeNumber": 7.0, "active": true}),
            json!({"_id": "5", "employeeNumber": "7", "active": "true"}),
            json!({"_id": "6", "roles": ["user", "Admin"], "userName": ["alice", "x"]}),
            json!({"_id": "7", "score": -0.0}),
            json!({"_id": "8"}),
        ];
        check(&fs, &objects);
        let index = FilterIndex::new(&fs);
        assert_eq!(index.matching(&objects[0]), vec![0, 1]);
        assert_eq!(index.matching(&objects[5]), vec![0, 1, 7]);
        assert_eq!(index.matching(&objects[6]), vec![8]);
    }
}
