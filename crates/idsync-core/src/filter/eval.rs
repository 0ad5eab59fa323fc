//! In-memory evaluation of a filter against a JSON object, with exactly the semantics of
//! docs/rest.md#the-query-language (IDM's `JsonValueFilterVisitor`), plus the introspection helpers backends use
//! to reject filters they cannot translate.
//!
//! This is for conditions (`sourceCondition`, policy and property conditions) and for small
//! in-memory sets. It must not be used to filter what a backend can filter natively
//! (docs/rest.md#queries).

use super::{CompareOp, Filter};
use crate::pointer::JsonPointer;
use serde_json::Value;
use std::cmp::Ordering;

impl Filter {
    /// Whether `object` satisfies this filter (docs/rest.md#the-query-language):
    /// - a field holding an array matches if any element matches; a scalar is a one-element list;
    /// - the field and the operand must have the same JSON type, else the comparison is false;
    /// - strings compare case-insensitively (`co`/`sw` lower-case both sides);
    /// - numbers compare as `f64`, booleans as `false < true`;
    /// - `pr` is true iff the pointer resolves to a non-null value;
    /// - extended operators are false.
    pub fn matches(&self, object: &Value) -> bool {
        match self {
            Filter::True => true,
            Filter::False => false,
            Filter::And(items) => items.iter().all(|f| f.matches(object)),
            Filter::Or(items) => items.iter().any(|f| f.matches(object)),
            Filter::Not(inner) => !inner.matches(object),
            Filter::Present { field } => field.get(object).is_some_and(|v| !v.is_null()),
            Filter::Compare { field, op, value } => match field.get(object) {
                None => false,
                Some(Value::Array(items)) => items.iter().any(|v| compare(v, *op, value)),
                Some(v) => compare(v, *op, value),
            },
            Filter::Extended { .. } => false,
        }
    }

    /// Every field the filter reads, each once, in the order of first appearance.
    pub fn referenced_fields(&self) -> Vec<&JsonPointer> {
        let mut out = Vec::new();
        self.visit(&mut |f| {
            let field = match f {
                Filter::Compare { field, .. }
                | Filter::Present { field }
                | Filter::Extended { field, .. } => field,
                _ => return,
            };
            if !out.contains(&field) {
                out.push(field);
            }
        });
        out
    }

    /// The extended operator names the filter uses (`ew`, `ca`, `ne`, ...), each once, in the
    /// order of first appearance. A backend that cannot translate one of them answers 400.
    pub fn extended_operators(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.visit(&mut |f| {
            if let Filter::Extended { op, .. } = f
                && !out.contains(&op.as_str())
            {
                out.push(op.as_str());
            }
        });
        out
    }

    /// For backends that test set membership: the terms of an `or` (`items`) split into its
    /// string equalities grouped by field (fields in order of first appearance, values in
    /// order) and its other terms. A batched correlation (`userName eq "a" or userName eq "b"
    /// or …`) is one group.
    pub fn or_string_sets(items: &[Filter]) -> OrStringSets<'_> {
        let mut sets: Vec<(&JsonPointer, Vec<&str>)> = Vec::new();
        let mut others = Vec::new();
        for item in items {
            match item {
                Filter::Compare {
                    field,
                    op: CompareOp::Eq,
                    value: Value::String(s),
                } => match sets.iter_mut().find(|(f, _)| *f == field) {
                    Some((_, values)) => values.push(s),
                    None => sets.push((field, vec![s])),
                },
                _ => others.push(item),
            }
        }
        (sets, others)
    }

    /// Calls `f` on this node and every node below it, parents first.
    fn visit<'a>(&'a self, f: &mut impl FnMut(&'a Filter)) {
        f(self);
        match self {
            Filter::And(items) | Filter::Or(items) => items.iter().for_each(|i| i.visit(f)),
            Filter::Not(inner) => inner.visit(f),
            Filter::True
            | Filter::False
            | Filter::Compare { .. }
            | Filter::Present { .. }
            | Filter::Extended { .. } => {}
        }
    }
}

/// See [`Filter::or_string_sets`].
pub type OrStringSets<'a> = (Vec<(&'a JsonPointer, Vec<&'a str>)>, Vec<&'a Filter>);

/// One field value against the operand. Different JSON types never match.
fn compare(actual: &Value, op: CompareOp, operand: &Value) -> bool {
    let ordering = match (actual, operand) {
        (Value::String(a), Value::String(b)) => match op {
            // Conditions run once per object in a recon: compare lower-cased characters
            // lazily instead of allocating two lower-cased copies, except for `co`.
            CompareOp::Co => return a.to_lowercase().contains(&b.to_lowercase()),
            CompareOp::Sw => {
                let mut rest = lower(a);
                return lower(b).all(|c| rest.next() == Some(c));
            }
            _ => lower(a).cmp(lower(b)),
        },
        (Value::Number(a), Value::Number(b)) => {
            match a
                .as_f64()
                .zip(b.as_f64())
                .and_then(|(a, b)| a.partial_cmp(&b))
            {
                Some(o) => o,
                None => return false,
            }
        }
        (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
        _ => return false,
    };
    match op {
        CompareOp::Eq => ordering == Ordering::Equal,
        CompareOp::Lt => ordering == Ordering::Less,
        CompareOp::Le => ordering != Ordering::Greater,
        CompareOp::Gt => ordering == Ordering::Greater,
        CompareOp::Ge => ordering != Ordering::Less,
        // Containment and prefix are string operations.
        CompareOp::Co | CompareOp::Sw => false,
    }
}

fn lower(s: &str) -> impl Iterator<Item = char> + '_ {
    s.chars().flat_map(char::to_lowercase)
}
