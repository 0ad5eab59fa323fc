//! The filter parser: a hand-written recursive-descent parser over the grammar of reference
//! §7.1 that reports the character position of the first error and what it expected there.
//!
//! It must never panic and never recurse without bound, whatever the input: nesting is limited
//! to [`MAX_DEPTH`] levels.
//!
//! Lexical choices (where §7.1 leaves room):
//! - A *word* (pointer, operator name, unquoted value) is a run of characters other than
//!   white space, `(`, `)`, `"` and `'`. So `a eq"x"` and `(a pr)` need no extra spaces.
//! - `!` is a token only where an expression starts; inside a word it is an ordinary character.
//! - A bare `and` or `or` where an expression starts is a misplaced keyword, not a field: a field
//!   of that name is written `/and` (the printer always writes the leading `/`).
//! - Keywords (`and`, `or`, `pr`, `true`, `false` and the core operators) are case-sensitive,
//!   as in CREST: `a EQ "x"` is the extended operator `EQ`, which evaluates to false in memory.
//! - Pointers are RFC 6901 with an optional leading `/`; a `~` must be followed by `0` or `1`.
//! - Values are double- or single-quoted strings with JSON escapes (`\'` is accepted too),
//!   JSON numbers, and `true`/`false`. `null` is rejected with an explanation: the AST holds
//!   only strings, numbers and booleans (§7.1 JsonValue), and "field is absent or null" is
//!   spelled `!(field pr)`.

use super::{CompareOp, Filter};
use crate::error::{ErrorCode, HasErrorCode};
use crate::pointer::JsonPointer;
use serde_json::{Number, Value};

/// How deeply groups and negations may nest. Deeper input is rejected with a clear error
/// instead of risking a stack overflow in the parser, the printer or the evaluator.
pub const MAX_DEPTH: usize = 256;

/// A filter that could not be parsed: where, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid query filter at position {position}: {message}")]
pub struct ParseError {
    /// Character offset (0-based) in the input.
    pub position: usize,
    pub message: String,
}

impl HasErrorCode for ParseError {
    fn error_code(&self) -> ErrorCode {
        ErrorCode::BadRequest
    }
}

/// Parses a CREST query filter.
pub fn parse(input: &str) -> Result<Filter, ParseError> {
    let mut p = Parser {
        src: input,
        pos: 0,
        depth: 0,
    };
    let filter = p.or_expr()?;
    p.skip_ws();
    if let Some(c) = p.peek() {
        let found = p.describe_next();
        return Err(p.error_at(
            p.pos,
            if c == ')' {
                "unexpected ')'".to_string()
            } else {
                format!("trailing input: expected 'and', 'or' or end of input, found {found}")
            },
        ));
    }
    Ok(filter)
}

struct Parser<'a> {
    src: &'a str,
    /// Byte offset of the next unread character (always on a char boundary).
    pos: usize,
    /// Enclosing groups and negations.
    depth: usize,
}

fn is_word_char(c: char) -> bool {
    !(c.is_whitespace() || matches!(c, '(' | ')' | '"' | '\''))
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        self.src.get(self.pos..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self, c: char) {
        self.pos += c.len_utf8();
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.peek().filter(|c| c.is_whitespace()) {
            self.bump(c);
        }
    }

    /// Reads a word starting at the current position (possibly empty).
    fn word(&mut self) -> (usize, &'a str) {
        let start = self.pos;
        let rest = self.rest();
        let len = rest.find(|c: char| !is_word_char(c)).unwrap_or(rest.len());
        self.pos += len;
        (start, rest.get(..len).unwrap_or(""))
    }

    /// Consumes the keyword `kw` if it is the next word (after white space).
    fn keyword(&mut self, kw: &str) -> bool {
        self.skip_ws();
        let save = self.pos;
        let (_, w) = self.word();
        if w == kw {
            true
        } else {
            self.pos = save;
            false
        }
    }

    fn char_pos(&self, byte: usize) -> usize {
        self.src.get(..byte).map_or(0, |s| s.chars().count())
    }

    fn error_at(&self, byte: usize, message: String) -> ParseError {
        ParseError {
            position: self.char_pos(byte),
            message,
        }
    }

    /// A short description of what comes next, for error messages.
    fn describe_next(&self) -> String {
        let rest = self.rest();
        match rest.chars().next() {
            None => "end of input".to_string(),
            Some(c @ ('(' | ')')) => format!("'{c}'"),
            Some('"' | '\'') => "a quoted string".to_string(),
            Some(_) => {
                let len = rest.find(|c: char| !is_word_char(c)).unwrap_or(rest.len());
                let w: String = rest.get(..len).unwrap_or("").chars().take(40).collect();
                format!("{w:?}")
            }
        }
    }

    fn enter(&mut self, at: usize) -> Result<(), ParseError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.error_at(
                at,
                format!("filter nested too deeply (more than {MAX_DEPTH} levels)"),
            ));
        }
        self.depth += 1;
        Ok(())
    }

    fn or_expr(&mut self) -> Result<Filter, ParseError> {
        let mut items = vec![self.and_expr()?];
        while self.keyword("or") {
            items.push(self.and_expr()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Filter::Or(items)
        })
    }

    fn and_expr(&mut self) -> Result<Filter, ParseError> {
        let mut items = vec![self.not_expr()?];
        while self.keyword("and") {
            items.push(self.not_expr()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Filter::And(items)
        })
    }

    fn not_expr(&mut self) -> Result<Filter, ParseError> {
        self.skip_ws();
        if self.peek() != Some('!') {
            return self.primary(None);
        }
        let bang = self.pos;
        self.bump('!');
        // `!(x)` counts as one level, like `!x`, so that the printer's canonical `!(...)` never
        // nests deeper than the input it came from.
        self.enter(bang)?;
        let inner = self.primary(Some(bang));
        self.depth -= 1;
        Ok(Filter::Not(Box::new(inner?)))
    }

    /// `after_bang` is the byte offset of a `!` just consumed, if any.
    fn primary(&mut self, after_bang: Option<usize>) -> Result<Filter, ParseError> {
        self.skip_ws();
        let start = self.pos;
        let expected = || match after_bang {
            Some(_) => "expected a filter expression after '!'",
            None => "expected a filter expression",
        };
        match self.peek() {
            None => Err(self.error_at(start, format!("{}, found end of input", expected()))),
            Some('(') => {
                self.bump('(');
                let counted = after_bang.is_none();
                if counted {
                    self.enter(start)?;
                }
                let inner = self.group_body(start);
                if counted {
                    self.depth -= 1;
                }
                inner
            }
            Some(')') => Err(self.error_at(start, "unexpected ')'".to_string())),
            Some('!') => Err(self.error_at(
                start,
                "unexpected '!': '!' applies to one expression; write !(!(...))".to_string(),
            )),
            Some('"' | '\'') => Err(self.error_at(
                start,
                format!(
                    "{}, found a quoted string (a field is written as a JSON pointer)",
                    expected()
                ),
            )),
            Some(_) => {
                let (at, w) = self.word();
                match w {
                    "true" => Ok(Filter::True),
                    "false" => Ok(Filter::False),
                    // A field named `and` or `or` is written `/and`; treating the bare word as a
                    // pointer would turn a misplaced keyword into a confusing operator error.
                    "and" | "or" => Err(self.error_at(at, format!("{}, found {w:?}", expected()))),
                    _ => self.comparison(at, w),
                }
            }
        }
    }

    /// After an opening parenthesis at byte `open`.
    fn group_body(&mut self, open: usize) -> Result<Filter, ParseError> {
        let inner = self.or_expr()?;
        self.skip_ws();
        if self.peek() == Some(')') {
            self.bump(')');
            return Ok(inner);
        }
        let found = self.describe_next();
        let open_at = self.char_pos(open);
        let message = if self.peek().is_none() {
            format!("expected ')' to close '(' at {open_at}, found end of input")
        } else {
            format!("expected 'and', 'or' or ')' to close '(' at {open_at}, found {found}")
        };
        Err(self.error_at(self.pos, message))
    }

    fn comparison(&mut self, at: usize, ptr_text: &'a str) -> Result<Filter, ParseError> {
        let field = self.pointer(at, ptr_text)?;
        self.skip_ws();
        let op_at = self.pos;
        let (_, op) = self.word();
        if op.is_empty() || matches!(op, "and" | "or") {
            self.pos = op_at;
            let found = self.describe_next();
            return Err(self.error_at(
                op_at,
                format!("expected an operator after {ptr_text:?}, found {found}"),
            ));
        }
        if op == "pr" {
            return Ok(Filter::Present { field });
        }
        let core = CompareOp::from_name(op);
        if core.is_none() && !is_extended_op_name(op) {
            return Err(self.error_at(
                op_at,
                format!(
                    "expected an operator after {ptr_text:?}, found {op:?} (operators are eq, co, \
                     sw, lt, le, gt, ge, pr or an extended operator name)"
                ),
            ));
        }
        let value = self.value(op)?;
        Ok(match core {
            Some(op) => Filter::Compare { field, op, value },
            None => Filter::Extended {
                field,
                op: op.to_string(),
                value,
            },
        })
    }

    fn pointer(&self, at: usize, text: &str) -> Result<JsonPointer, ParseError> {
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c == '~' && !matches!(chars.peek(), Some((_, '0' | '1'))) {
                return Err(self.error_at(
                    at + i,
                    format!(
                        "invalid escape in JSON pointer {text:?}: '~' must be followed by 0 or 1"
                    ),
                ));
            }
        }
        Ok(JsonPointer::parse(text))
    }

    fn value(&mut self, op: &str) -> Result<Value, ParseError> {
        self.skip_ws();
        let start = self.pos;
        match self.peek() {
            Some(q @ ('"' | '\'')) => self.string(q).map(Value::String),
            Some(c) if is_word_char(c) => {
                let (_, w) = self.word();
                match w {
                    "true" => Ok(Value::Bool(true)),
                    "false" => Ok(Value::Bool(false)),
                    "null" => Err(self.error_at(
                        start,
                        "null is not a filter value (values are strings, numbers and booleans); \
                         to match an absent or null field write !(field pr)"
                            .to_string(),
                    )),
                    _ => match number(w) {
                        Some(n) => Ok(Value::Number(n)),
                        None if looks_numeric(w) => {
                            Err(self.error_at(start, format!("invalid number {w:?}")))
                        }
                        None => Err(self.error_at(
                            start,
                            format!(
                                "expected a value after {op:?} (a quoted string, a number, true or \
                                 false), found {w:?}"
                            ),
                        )),
                    },
                }
            }
            _ => {
                let found = self.describe_next();
                Err(self.error_at(
                    start,
                    format!("expected a value after {op:?}, found {found}"),
                ))
            }
        }
    }

    /// A quoted string with JSON escapes; the current character is the opening quote `quote`.
    fn string(&mut self, quote: char) -> Result<String, ParseError> {
        let open = self.pos;
        self.bump(quote);
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                let open_at = self.char_pos(open);
                return Err(
                    self.error_at(open, format!("unterminated string starting at {open_at}"))
                );
            };
            let at = self.pos;
            self.bump(c);
            match c {
                c if c == quote => return Ok(out),
                '\\' => out.push(self.escape(at)?),
                c => out.push(c),
            }
        }
    }

    /// After a backslash at byte `at`.
    fn escape(&mut self, at: usize) -> Result<char, ParseError> {
        let Some(c) = self.peek() else {
            return Err(self.error_at(at, "unfinished escape at end of input".to_string()));
        };
        self.bump(c);
        Ok(match c {
            '"' => '"',
            '\'' => '\'',
            '\\' => '\\',
            '/' => '/',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'u' => {
                let hi = self.hex4(at)?;
                if (0xD800..0xDC00).contains(&hi) {
                    // A high surrogate must be followed by an escaped low surrogate.
                    if !self.rest().starts_with("\\u") {
                        return Err(
                            self.error_at(at, "unpaired surrogate in \\u escape".to_string())
                        );
                    }
                    self.pos += 2;
                    let lo = self.hex4(at)?;
                    if !(0xDC00..0xE000).contains(&lo) {
                        return Err(
                            self.error_at(at, "unpaired surrogate in \\u escape".to_string())
                        );
                    }
                    let code = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                    char::from_u32(code)
                        .ok_or_else(|| self.error_at(at, "invalid \\u escape".to_string()))?
                } else {
                    char::from_u32(hi).ok_or_else(|| {
                        self.error_at(at, "unpaired surrogate in \\u escape".to_string())
                    })?
                }
            }
            other => {
                return Err(self.error_at(
                    at,
                    format!("invalid escape '\\{other}' (JSON escapes: \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)"),
                ));
            }
        })
    }

    fn hex4(&mut self, at: usize) -> Result<u32, ParseError> {
        let digits = self
            .rest()
            .get(..4)
            .filter(|d| d.chars().all(|c| c.is_ascii_hexdigit()));
        match digits.and_then(|d| u32::from_str_radix(d, 16).ok()) {
            Some(v) => {
                self.pos += 4;
                Ok(v)
            }
            None => Err(self.error_at(at, "\\u must be followed by four hex digits".to_string())),
        }
    }
}

/// Extended operator names are identifiers: a letter, then letters, digits, `_` or `-`.
fn is_extended_op_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// A JSON number (RFC 8259 grammar), as serde_json would read it.
fn number(w: &str) -> Option<Number> {
    let b = w.as_bytes();
    let mut i = 0;
    if b.first() == Some(&b'-') {
        i += 1;
    }
    let int_start = i;
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    let int_len = i - int_start;
    if int_len == 0 || (int_len > 1 && b.get(int_start) == Some(&b'0')) {
        return None;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        let s = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == s {
            return None;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let s = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == s {
            return None;
        }
    }
    if i != b.len() {
        return None;
    }
    // Integers keep serde_json's representation (u64, else i64, else f64). Floats go through
    // the standard library, which rounds correctly: serde_json's default float parser can be
    // one ulp off, which would break parse(print(f)) == f. Out-of-range values (1e400) are
    // invalid rather than infinite.
    let is_integer = !w.contains(['.', 'e', 'E']);
    if is_integer {
        if let Ok(u) = w.parse::<u64>() {
            return Some(Number::from(u));
        }
        if let Ok(n) = w.parse::<i64>() {
            return Some(Number::from(n));
        }
    }
    w.parse::<f64>().ok().and_then(Number::from_f64)
}

fn looks_numeric(w: &str) -> bool {
    let w = w.strip_prefix(['-', '+']).unwrap_or(w);
    w.starts_with(|c: char| c.is_ascii_digit() || c == '.')
}
