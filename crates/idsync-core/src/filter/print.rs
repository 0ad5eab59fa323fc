//! The printer: one canonical string per filter, such that `parse(&f.to_string()) == Ok(f)` for
//! every filter the parser can produce.
//!
//! Canonical form: pointers with a leading `/` and RFC 6901 escapes (the root pointer is `/`),
//! strings in double quotes with JSON escapes, single spaces around keywords, `!(...)` for
//! negation, and parentheses only where the AST needs them (an `and` or `or` inside an `and`,
//! an `or` inside an `or`). It must not add nesting the input did not have, so that a filter at
//! the parser's depth limit still prints to something the parser accepts.
//!
//! Hand-built ASTs outside the parser's range print as best they can: an empty `And` prints
//! `true`, an empty `Or` prints `false` (their evaluation results), a one-operand `And`/`Or`
//! prints its operand in parentheses, and a value that is not a string, number or boolean
//! prints as JSON, which the parser rejects.

use super::Filter;
use crate::pointer::JsonPointer;
use serde_json::Value;
use std::fmt::{self, Display, Formatter, Write};

impl Display for Filter {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Filter::True => f.write_str("true"),
            Filter::False => f.write_str("false"),
            Filter::And(items) if items.is_empty() => f.write_str("true"),
            Filter::Or(items) if items.is_empty() => f.write_str("false"),
            Filter::And(items) | Filter::Or(items) if items.len() == 1 => {
                write!(f, "({})", items[0])
            }
            Filter::And(items) => {
                let nested = |i: &Filter| matches!(i, Filter::And(_) | Filter::Or(_));
                join(f, items, " and ", nested)
            }
            Filter::Or(items) => join(f, items, " or ", |i| matches!(i, Filter::Or(_))),
            Filter::Not(inner) => write!(f, "!({inner})"),
            Filter::Compare { field, op, value } => {
                write!(f, "{} {} ", Pointer(field), op.as_str())?;
                write_value(f, value)
            }
            Filter::Present { field } => write!(f, "{} pr", Pointer(field)),
            Filter::Extended { field, op, value } => {
                write!(f, "{} {op} ", Pointer(field))?;
                write_value(f, value)
            }
        }
    }
}

fn join(
    f: &mut Formatter<'_>,
    items: &[Filter],
    sep: &str,
    needs_parens: impl Fn(&Filter) -> bool,
) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(sep)?;
        }
        if needs_parens(item) {
            write!(f, "({item})")?;
        } else {
            write!(f, "{item}")?;
        }
    }
    Ok(())
}

/// A pointer as the parser reads it back: the root pointer `""` would vanish, so it is `/`.
struct Pointer<'a>(&'a JsonPointer);

impl Display for Pointer<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if self.0.is_root() {
            f.write_char('/')
        } else {
            write!(f, "{}", self.0)
        }
    }
}

fn write_value(f: &mut Formatter<'_>, value: &Value) -> fmt::Result {
    // serde_json's compact form is the JSON literal: quoted and escaped strings, numbers that
    // read back to the same `Number` variant (1 vs 1.0), true/false.
    write!(f, "{value}")
}
