//! The CREST query-filter language (docs/rest.md#the-query-language): an AST, a parser with precise errors,
//! a printer that produces the canonical string, and the in-memory evaluator (§7.3).
//!
//! This module is pure: no I/O, no backend translation (the repository and connectors translate
//! the AST into their own query languages, using [`Filter::referenced_fields`] and
//! [`Filter::extended_operators`] to refuse what they cannot express).

mod eval;
mod index;
mod parse;
mod print;

pub use eval::OrStringSets;
pub use index::FilterIndex;
pub use parse::{MAX_DEPTH, ParseError, parse};

use crate::pointer::JsonPointer;
use serde_json::Value;

/// A comparison operator of the core grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    Eq,
    Co,
    Sw,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CompareOp {
    pub const ALL: [CompareOp; 7] = [
        CompareOp::Eq,
        CompareOp::Co,
        CompareOp::Sw,
        CompareOp::Lt,
        CompareOp::Le,
        CompareOp::Gt,
        CompareOp::Ge,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        CompareOp::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// A parsed query filter.
///
/// `And`/`Or` hold two or more operands as written (`a and b and c` is one `And` of three);
/// explicit parentheses that group an operand of the same kind keep their own node.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `true`
    True,
    /// `false`
    False,
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    /// `field op value` with a core operator. `value` is a string, number or boolean
    /// (the parser rejects `null`).
    Compare {
        field: JsonPointer,
        op: CompareOp,
        value: Value,
    },
    /// `field pr`
    Present {
        field: JsonPointer,
    },
    /// `field op value` with an extended operator name such as `ew`, `ca` or `ne`.
    Extended {
        field: JsonPointer,
        op: String,
        value: Value,
    },
}

impl std::str::FromStr for Filter {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}

/// Filters travel as their canonical string (config conditions, REST, stored plans).
impl serde::Serialize for Filter {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Filter {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).map_err(serde::de::Error::custom)
    }
}
