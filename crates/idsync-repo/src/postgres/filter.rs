//! CREST `_queryFilter` → PostgreSQL `WHERE` clause over jsonb, with bound parameters.
//!
//! The translation must give exactly the answers of `idsync_core::Filter::matches` (reference
//! §7.3) on the same data: strings compare case-insensitively (Rust's `to_lowercase` on the
//! operand, SQL `lower()` on the stored value, byte order via `COLLATE "C"`), a field holding an
//! array matches when any element matches, a type mismatch is false, numbers compare as
//! `float8`, booleans as `false < true`, `pr` is "present and not JSON null". Extended operators
//! are refused with `BadQuery` (they are a 400 over REST, never a silent false).
//!
//! Field names are inlined as escaped SQL literals (never values: those are always bound) so
//! that the expressions are identical to the expression indexes `ensure_indexes` creates and the
//! planner can use them.

use idsync_core::filter::{CompareOp, Filter};
use idsync_core::pointer::JsonPointer;
use serde_json::Value;
use tokio_postgres::types::ToSql;

/// Bound parameters of one statement, numbered `$1..` in push order.
#[derive(Default)]
pub(crate) struct SqlParams {
    values: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl std::fmt::Debug for SqlParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SqlParams({} values)", self.values.len())
    }
}

impl SqlParams {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Binds `v` and returns its placeholder (`$n`).
    pub(crate) fn push<T: ToSql + Sync + Send + 'static>(&mut self, v: T) -> String {
        self.values.push(Box::new(v));
        format!("${}", self.values.len())
    }

    pub(crate) fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.values
            .iter()
            .map(|b| b.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

/// Whether the filter only tests equality and presence (combined with and/or/not): its plan
/// is the same whatever the values, so a generic plan serves every call.
pub(crate) fn equality_only(f: &Filter) -> bool {
    match f {
        Filter::True | Filter::False | Filter::Present { .. } => true,
        Filter::Compare { op, .. } => *op == CompareOp::Eq,
        Filter::And(items) | Filter::Or(items) => items.iter().all(equality_only),
        Filter::Not(inner) => equality_only(inner),
        Filter::Extended { .. } => false,
    }
}

/// A SQL string literal with standard-conforming quoting (`'` doubled).
pub(crate) fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A SQL identifier with `"` doubled.
pub(crate) fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// How the fields of a queried record are reached: a jsonb document column, or a fixed set of
/// top-level names mapped to jsonb expressions over relational columns.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FieldSource<'a> {
    /// The whole record is one jsonb column, e.g. `obj`.
    Document(&'a str),
    /// A jsonb column whose `_id` lives in a text column instead (audit entries).
    DocumentWithId { column: &'a str, id_column: &'a str },
    /// Top-level JSON names → jsonb SQL expressions; deeper pointer tokens navigate inside the
    /// expression. Unknown names do not exist (NULL).
    Columns(&'a [(&'a str, &'a str)]),
}

impl FieldSource<'_> {
    /// The jsonb expression of `ptr` (SQL NULL when absent).
    pub(crate) fn jsonb(&self, ptr: &JsonPointer) -> String {
        match self {
            FieldSource::Document(col) => navigate(col, ptr.tokens(), false),
            FieldSource::DocumentWithId { id_column, .. } if ptr.tokens() == ["_id"] => {
                format!("to_jsonb({id_column})")
            }
            FieldSource::DocumentWithId { column, .. } => navigate(column, ptr.tokens(), false),
            FieldSource::Columns(cols) => match ptr.tokens().split_first() {
                None => {
                    let pairs: Vec<String> = cols
                        .iter()
                        .map(|(name, expr)| format!("{}, {}", quote_literal(name), expr))
                        .collect();
                    format!(
                        "jsonb_strip_nulls(jsonb_build_object({}))",
                        pairs.join(", ")
                    )
                }
                Some((first, rest)) => match cols.iter().find(|(name, _)| name == first) {
                    Some((_, expr)) if rest.is_empty() => (*expr).to_string(),
                    Some((_, expr)) => navigate(&format!("({expr})"), rest, false),
                    None => "NULL::jsonb".to_string(),
                },
            },
        }
    }

    /// The text of the value at `ptr` as `->>` gives it (the string itself for strings).
    pub(crate) fn text(&self, ptr: &JsonPointer) -> String {
        match self {
            FieldSource::Document(col) => navigate(col, ptr.tokens(), true),
            FieldSource::DocumentWithId { id_column, .. } if ptr.tokens() == ["_id"] => {
                format!("({id_column})::text")
            }
            FieldSource::DocumentWithId { column, .. } => navigate(column, ptr.tokens(), true),
            FieldSource::Columns(_) => format!("({} #>> '{{}}')", self.jsonb(ptr)),
        }
    }
}

/// Whether PostgreSQL's path operators (`#>`) would read `token` as an array index where
/// `JsonPointer::get` (Rust `usize` parsing) would not: negative numbers and leading blanks.
fn pg_index_differs(token: &str) -> bool {
    let t = token.trim_start();
    t.len() != token.len() || t.starts_with('-')
}

/// A `text[]` literal for `#>`: each element double-quoted with `"` and `\` escaped.
fn path_literal(tokens: &[String]) -> String {
    let elems: Vec<String> = tokens
        .iter()
        .map(|t| format!("\"{}\"", t.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    quote_literal(&format!("{{{}}}", elems.join(",")))
}

/// `base` navigated by `tokens` with exactly `JsonPointer::get`'s semantics: object keys by
/// name, array elements by a `usize` index. `as_text` gives the `->>` form of the last step.
fn navigate(base: &str, tokens: &[String], as_text: bool) -> String {
    if tokens.iter().any(|t| t.contains('\0')) {
        // jsonb cannot hold NUL characters, so such a field can never exist.
        return if as_text {
            "NULL::text".into()
        } else {
            "NULL::jsonb".into()
        };
    }
    if tokens.is_empty() {
        return if as_text {
            format!("({base} #>> '{{}}')")
        } else {
            base.to_string()
        };
    }
    let numeric = |t: &String| t.parse::<usize>().is_ok();
    // The common case, a single plain name, uses ->/->> so indexes read naturally.
    if tokens.len() == 1 && !numeric(&tokens[0]) {
        let op = if as_text { "->>" } else { "->" };
        return format!("({base} {op} {})", quote_literal(&tokens[0]));
    }
    if !tokens.iter().any(|t| pg_index_differs(t)) {
        let op = if as_text { "#>>" } else { "#>" };
        return format!("({base} {op} {})", path_literal(tokens));
    }
    // Tokens PostgreSQL would treat as (negative) indexes: a text key never indexes an array.
    let mut expr = base.to_string();
    for t in tokens {
        expr = if pg_index_differs(t) {
            format!("({expr} -> {})", quote_literal(t))
        } else {
            format!("({expr} #> {})", path_literal(std::slice::from_ref(t)))
        };
    }
    if as_text {
        format!("({expr} #>> '{{}}')")
    } else {
        expr
    }
}

/// Why a filter cannot be translated (a 400 for the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Untranslatable(pub String);

/// Translates `filter` into a boolean SQL expression over `fields`, binding values in `params`.
/// NULL results only occur in positive positions, where `WHERE` treats them as false; below a
/// `!` every operand is `COALESCE`d so SQL three-valued logic never changes the answer.
pub(crate) fn to_sql(
    filter: &Filter,
    fields: FieldSource<'_>,
    params: &mut SqlParams,
) -> Result<String, Untranslatable> {
    let mut t = Translator {
        fields,
        params,
        alias: 0,
    };
    t.filter(filter)
}

struct Translator<'a, 'p> {
    fields: FieldSource<'a>,
    params: &'p mut SqlParams,
    alias: usize,
}

impl Translator<'_, '_> {
    fn filter(&mut self, f: &Filter) -> Result<String, Untranslatable> {
        Ok(match f {
            Filter::True => "TRUE".into(),
            Filter::False => "FALSE".into(),
            Filter::And(items) => self.join(items, "AND", "TRUE")?,
            Filter::Or(items) => self.or(items)?,
            Filter::Not(inner) => format!("(NOT COALESCE({}, FALSE))", self.filter(inner)?),
            Filter::Present { field } => {
                format!("(jsonb_typeof({}) <> 'null')", self.fields.jsonb(field))
            }
            Filter::Compare { field, op, value } => self.compare(field, *op, value)?,
            Filter::Extended { op, .. } => {
                return Err(Untranslatable(format!(
                    "the repository cannot evaluate the extended filter operator \"{op}\""
                )));
            }
        })
    }

    fn join(&mut self, items: &[Filter], op: &str, empty: &str) -> Result<String, Untranslatable> {
        if items.is_empty() {
            return Ok(empty.into());
        }
        let parts = items
            .iter()
            .map(|i| self.filter(i))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(format!("({})", parts.join(&format!(" {op} "))))
    }

    /// An `or` whose terms include string equalities of one field (the shape of a batched
    /// correlation: `userName eq "a" or userName eq "b" or …`) tests those with one
    /// `= ANY($n::text[])` per field, which the field's expression index serves with one
    /// statement parameter instead of one per term.
    fn or(&mut self, items: &[Filter]) -> Result<String, Untranslatable> {
        let (sets, others) = Filter::or_string_sets(items);
        if sets.iter().all(|(_, values)| values.len() < 2) {
            return self.join(items, "OR", "FALSE");
        }
        let mut parts = Vec::with_capacity(sets.len() + others.len());
        for (field, values) in sets {
            if let [one] = values[..] {
                parts.push(self.compare(field, CompareOp::Eq, &Value::from(one))?);
                continue;
            }
            let mut lowered = Vec::with_capacity(values.len());
            for s in values {
                check_text(s)?;
                lowered.push(s.chars().flat_map(char::to_lowercase).collect::<String>());
            }
            let param = format!("{}::text[]", self.params.push(lowered));
            parts.push(self.arms(field, &Operand::TextIn { param }));
        }
        for o in others {
            parts.push(self.filter(o)?);
        }
        Ok(format!("({})", parts.join(" OR ")))
    }

    fn compare(
        &mut self,
        field: &JsonPointer,
        op: CompareOp,
        value: &Value,
    ) -> Result<String, Untranslatable> {
        let operand = match self.operand(op, value)? {
            Some(o) => o,
            // Filter::matches can never be true for this operand type and operator.
            None => return Ok("FALSE".into()),
        };
        Ok(self.arms(field, &operand))
    }

    /// The field's value, or any element of it when it holds an array, satisfies `operand`.
    fn arms(&mut self, field: &JsonPointer, operand: &Operand) -> String {
        let j = self.fields.jsonb(field);
        let scalar = operand.predicate(&j, &self.fields.text(field));
        self.alias += 1;
        let x = format!("x{}", self.alias);
        let element = operand.predicate(&x, &format!("({x} #>> '{{}}')"));
        // The first conjunct is a plain clause so that a partial index on "this field holds an
        // array" can serve this arm; the CASE guards jsonb_array_elements (AND has no order).
        format!(
            "({scalar} OR (jsonb_typeof({j}) = 'array' AND CASE WHEN jsonb_typeof({j}) = 'array' \
             THEN EXISTS (SELECT 1 FROM jsonb_array_elements({j}) AS e{n}({x}) WHERE {element}) \
             ELSE FALSE END))",
            n = self.alias
        )
    }

    fn operand(&mut self, op: CompareOp, value: &Value) -> Result<Option<Operand>, Untranslatable> {
        Ok(match value {
            Value::String(s) => {
                check_text(s)?;
                // The evaluator lower-cases `co` operands as a whole string and the others
                // character by character (they differ only for a final capital sigma).
                let lowered = match op {
                    CompareOp::Co => s.to_lowercase(),
                    _ => s.chars().flat_map(char::to_lowercase).collect(),
                };
                let p = format!("{}::text", self.params.push(lowered));
                Some(Operand::Text { op, param: p })
            }
            Value::Number(n) => match (op, n.as_f64()) {
                (CompareOp::Co | CompareOp::Sw, _) | (_, None) => None,
                (_, Some(f)) => Some(Operand::Number {
                    op: sql_op(op),
                    param: format!("{}::float8", self.params.push(f)),
                }),
            },
            Value::Bool(b) => match op {
                CompareOp::Co | CompareOp::Sw => None,
                _ => Some(Operand::Bool {
                    op: sql_op(op),
                    param: format!("{}::boolean", self.params.push(*b)),
                }),
            },
            Value::Null | Value::Array(_) | Value::Object(_) => None,
        })
    }
}

/// PostgreSQL text cannot hold NUL.
fn check_text(s: &str) -> Result<(), Untranslatable> {
    if s.contains('\0') {
        return Err(Untranslatable(
            "a filter value cannot contain a NUL character".into(),
        ));
    }
    Ok(())
}

fn sql_op(op: CompareOp) -> &'static str {
    match op {
        CompareOp::Eq => "=",
        CompareOp::Lt => "<",
        CompareOp::Le => "<=",
        CompareOp::Gt => ">",
        CompareOp::Ge => ">=",
        // Never reached for numbers and booleans (filtered out before), and strings handle
        // them separately; "=" keeps the function total.
        CompareOp::Co | CompareOp::Sw => "=",
    }
}

enum Operand {
    Text {
        op: CompareOp,
        param: String,
    },
    /// Equal to one of the lower-cased strings of a `text[]` parameter.
    TextIn {
        param: String,
    },
    Number {
        op: &'static str,
        param: String,
    },
    Bool {
        op: &'static str,
        param: String,
    },
}

impl Operand {
    /// The predicate for one scalar: `j` is its jsonb expression, `t` its `->>` text.
    fn predicate(&self, j: &str, t: &str) -> String {
        match self {
            Operand::Text { op, param } => {
                let lowered = ci_text(t);
                let cmp = match op {
                    CompareOp::Co => format!("strpos(lower({t}), {param}) > 0"),
                    CompareOp::Sw => format!("starts_with(lower({t}), {param})"),
                    other => format!("{lowered} {} {param}", sql_op(*other)),
                };
                format!("(jsonb_typeof({j}) = 'string' AND {cmp})")
            }
            Operand::TextIn { param } => {
                format!(
                    "(jsonb_typeof({j}) = 'string' AND {} = ANY({param}))",
                    ci_text(t)
                )
            }
            Operand::Number { op, param } => format!(
                "(CASE WHEN jsonb_typeof({j}) = 'number' THEN ({j})::float8 {op} {param} ELSE FALSE END)"
            ),
            Operand::Bool { op, param } => format!(
                "(CASE WHEN jsonb_typeof({j}) = 'boolean' THEN ({j})::boolean {op} {param} ELSE FALSE END)"
            ),
        }
    }
}

/// The case-insensitive comparable form of a text expression. `ensure_indexes` indexes exactly
/// this expression, so it must not change without a migration of the index names.
pub(crate) fn ci_text(text_expr: &str) -> String {
    format!("(lower({text_expr}) COLLATE \"C\")")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql(f: &str) -> String {
        let filter: Filter = f.parse().unwrap();
        let mut p = SqlParams::new();
        to_sql(&filter, FieldSource::Document("obj"), &mut p).unwrap()
    }

    #[test]
    fn only_equality_and_presence_filters_take_a_generic_plan() {
        let eq = |f: &str| equality_only(&f.parse::<Filter>().unwrap());
        assert!(eq(r#"userName eq "bjensen""#));
        assert!(eq(
            r#"userName eq "b" or (mail eq "m" and !(active eq true)) or tel pr"#
        ));
        assert!(eq("true"));
        assert!(!eq(r#"userName sw "b""#));
        assert!(!eq(r#"userName eq "b" and age gt 3"#));
        assert!(!eq(r#"userName co "b""#));
        assert!(!eq(r#"userName ew "b""#));
    }

    #[test]
    fn field_paths_follow_pointer_semantics() {
        let d = FieldSource::Document("obj");
        assert_eq!(
            d.jsonb(&JsonPointer::parse("userName")),
            "(obj -> 'userName')"
        );
        assert_eq!(
            d.text(&JsonPointer::parse("userName")),
            "(obj ->> 'userName')"
        );
        assert_eq!(
            d.jsonb(&JsonPointer::parse("/a/0")),
            "(obj #> '{\"a\",\"0\"}')"
        );
        assert_eq!(
            d.jsonb(&JsonPointer::parse("/a/-1")),
            "((obj #> '{\"a\"}') -> '-1')"
        );
        assert_eq!(d.jsonb(&JsonPointer::parse("it's")), "(obj -> 'it''s')");
        assert_eq!(d.jsonb(&JsonPointer::root()), "obj");
    }

    #[test]
    fn extended_operators_are_refused() {
        let filter: Filter = "mail ew \"x\"".parse().unwrap();
        let mut p = SqlParams::new();
        assert!(to_sql(&filter, FieldSource::Document("obj"), &mut p).is_err());
    }

    #[test]
    fn values_are_bound_not_inlined() {
        let s = sql("userName eq \"O'Brien\"");
        assert!(!s.contains("brien"), "{s}");
        assert!(s.contains("$1::text"), "{s}");
    }

    #[test]
    fn impossible_operand_types_are_false() {
        assert_eq!(sql("age co 5"), "FALSE");
        assert_eq!(sql("active sw true"), "FALSE");
    }
}
