//! The filter parser.

use super::Filter;

/// A filter that could not be parsed: where, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid query filter at position {position}: {message}")]
pub struct ParseError {
    /// Character offset (0-based) in the input.
    pub position: usize,
    pub message: String,
}

/// Parses a CREST query filter.
pub fn parse(input: &str) -> Result<Filter, ParseError> {
    match input.trim() {
        "true" => Ok(Filter::True),
        "false" => Ok(Filter::False),
        _ => Err(ParseError { position: 0, message: "parser under construction".into() }),
    }
}
