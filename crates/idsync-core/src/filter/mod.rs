//! The CREST query-filter language (reference §7.1): an AST, a parser with precise errors,
//! a printer that produces the canonical string, and the in-memory evaluator (§7.3).

mod parse;

pub use parse::{ParseError, parse};

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
    pub const ALL: [CompareOp; 7] =
        [CompareOp::Eq, CompareOp::Co, CompareOp::Sw, CompareOp::Lt, CompareOp::Le, CompareOp::Gt, CompareOp::Ge];

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
    /// `field op value` with a core operator. `value` is a string, number or boolean.
    Compare { field: JsonPointer, op: CompareOp, value: Value },
    /// `field pr`
    Present { field: JsonPointer },
    /// `field op value` with an extended operator name such as `ew`, `ca` or `ne`.
    Extended { field: JsonPointer, op: String, value: Value },
}
