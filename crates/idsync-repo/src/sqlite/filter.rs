//! CREST filter → SQLite SQL over a JSON document column, with the semantics of
//! `Filter::matches` (docs/rest.md#the-query-language): case-insensitive strings (Unicode lower-casing through
//! the `idsync_lower`/`idsync_ci` functions registered on every connection), any-element match
//! on arrays, a type mismatch is false, numbers compare as numbers, `pr` means non-null.
//! Values are bound parameters; only JSON paths (escaped) are spliced into the SQL. String
//! comparisons of a managed object type's indexed properties are answered from their key rows
//! (`keys.rs`, [`KeyScope`]) with the same semantics.

use crate::error::{RepoError, RepoResult};
use idsync_core::{CompareOp, Filter, JsonPointer};
use rusqlite::types::Value as SqlValue;
use serde_json::Value;

/// A translated WHERE fragment and its parameters, in order of the `?` placeholders.
#[derive(Debug, Default)]
pub struct Sql {
    pub text: String,
    pub params: Vec<SqlValue>,
}

/// Unicode lower-casing, character by character, exactly as the in-memory evaluator does.
pub fn lower(s: &str) -> String {
    s.chars().flat_map(char::to_lowercase).collect()
}

/// The SQLite JSON path literal (quoted SQL string) for a pointer: `'$."a"."b"[0]'`. All-digit
/// tokens address array elements (as `JsonPointer::get` does on arrays).
pub fn json_path(ptr: &JsonPointer) -> RepoResult<String> {
    let mut p = String::from("$");
    for t in ptr.tokens() {
        if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) && t.len() < 10 {
            p.push_str(&format!("[{t}]"));
        } else {
            if t.contains('"') {
                return Err(RepoError::BadQuery(format!(
                    "field names containing '\"' are not supported: {t}"
                )));
            }
            if t.chars().any(char::is_control) {
                return Err(RepoError::BadQuery(format!(
                    "field names containing control characters are not supported: {t:?}"
                )));
            }
            p.push_str(&format!(".\"{t}\""));
        }
    }
    Ok(format!("'{}'", p.replace('\'', "''")))
}

/// The case-insensitive text key of a field: lower-cased text for a JSON string, else NULL.
pub fn ci_expr(doc: &str, path: &str) -> String {
    format!("idsync_ci(json_type({doc}, {path}), json_extract({doc}, {path}))")
}

/// The JSON type expression of a field.
pub fn type_expr(doc: &str, path: &str) -> String {
    format!("json_type({doc}, {path})")
}

/// The key rows of a managed object type's indexed properties (`keys.rs`): string comparisons
/// of these properties are answered from them.
#[derive(Debug, Clone)]
pub struct KeyScope {
    pub object_type: String,
    /// Canonical pointers (`/userName`) of the indexed properties.
    pub props: Vec<String>,
    /// The id column of the queried source.
    pub id_col: &'static str,
}

impl KeyScope {
    fn indexed(&self, field: &JsonPointer) -> Option<String> {
        let p = field.to_string();
        self.props.contains(&p).then_some(p)
    }

    /// `id IN (SELECT id FROM object_keys WHERE … AND <pred on key>)`, the predicate's text
    /// and parameters appended by `pred`.
    fn emit(&self, prop: String, out: &mut Sql, pred: impl FnOnce(&mut Sql)) {
        out.text.push_str(&format!(
            "{} IN (SELECT id FROM object_keys WHERE object_type = ? AND prop = ? AND ",
            self.id_col
        ));
        out.params.push(SqlValue::Text(self.object_type.clone()));
        out.params.push(SqlValue::Text(prop));
        pred(out);
        out.text.push(')');
    }
}

/// Translates a filter over the JSON document expression `doc`. `None` → `1`.
pub fn translate(filter: Option<&Filter>, doc: &str, keys: Option<&KeyScope>) -> RepoResult<Sql> {
    let mut sql = Sql::default();
    match filter {
        None => sql.text.push('1'),
        Some(f) => {
            if let Some(op) = f.extended_operators().first() {
                return Err(RepoError::BadQuery(format!(
                    "unsupported filter operator '{op}'"
                )));
            }
            emit(f, doc, keys, &mut sql)?;
        }
    }
    Ok(sql)
}

fn emit(f: &Filter, doc: &str, keys: Option<&KeyScope>, out: &mut Sql) -> RepoResult<()> {
    match f {
        Filter::True => out.text.push('1'),
        Filter::False => out.text.push('0'),
        Filter::Or(items) if has_string_set(items) => or_with_sets(items, doc, keys, out)?,
        Filter::And(items) | Filter::Or(items) => {
            let joiner = if matches!(f, Filter::And(_)) {
                " AND "
            } else {
                " OR "
            };
            emit_joined(items, joiner, doc, keys, out)?;
        }
        Filter::Not(inner) => {
            // A leaf may be NULL (missing field); NULL means "does not match", so it must
            // become false before negation.
            out.text.push_str("(NOT COALESCE(");
            emit(inner, doc, keys, out)?;
            out.text.push_str(", 0))");
        }
        Filter::Present { field } => {
            let path = json_path(field)?;
            let t = type_expr(doc, &path);
            out.text
                .push_str(&format!("({t} IS NOT NULL AND {t} <> 'null')"));
        }
        Filter::Compare { field, op, value } => compare(field, *op, value, doc, keys, out)?,
        Filter::Extended { op, .. } => {
            return Err(RepoError::BadQuery(format!(
                "unsupported filter operator '{op}'"
            )));
        }
    }
    Ok(())
}

/// `(a OR b OR ...)`, grouped as a balanced tree of parentheses past a few items: SQLite parses
/// `a OR b OR c ...` into a chain as deep as the list is long, and refuses an expression deeper
/// than 1000, so a flat `or` of a thousand terms must not become a chain of a thousand.
fn emit_joined(
    items: &[Filter],
    joiner: &str,
    doc: &str,
    keys: Option<&KeyScope>,
    out: &mut Sql,
) -> RepoResult<()> {
    out.text.push('(');
    if items.len() <= 8 {
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.text.push_str(joiner);
            }
            emit(item, doc, keys, out)?;
        }
    } else {
        let (left, right) = items.split_at(items.len() / 2);
        emit_joined(left, joiner, doc, keys, out)?;
        out.text.push_str(joiner);
        emit_joined(right, joiner, doc, keys, out)?;
    }
    out.text.push(')');
    Ok(())
}

/// Whether an `or` holds two or more string equalities of one field.
fn has_string_set(items: &[Filter]) -> bool {
    Filter::or_string_sets(items)
        .0
        .iter()
        .any(|(_, v)| v.len() > 1)
}

/// An `or` whose string equalities of one field (the shape of a batched correlation:
/// `userName eq "a" or userName eq "b" or …`) become one `IN` over a JSON array parameter per
/// field, served by the field's expression index; the other terms as usual.
fn or_with_sets(
    items: &[Filter],
    doc: &str,
    keys: Option<&KeyScope>,
    out: &mut Sql,
) -> RepoResult<()> {
    let (sets, others) = Filter::or_string_sets(items);
    out.text.push('(');
    let mut first = true;
    for (field, values) in sets {
        if !first {
            out.text.push_str(" OR ");
        }
        first = false;
        let set = Value::from(values.iter().map(|v| lower(v)).collect::<Vec<_>>()).to_string();
        if let Some((k, prop)) = keys.and_then(|k| Some((k, k.indexed(field)?))) {
            k.emit(prop, out, |out| {
                out.text.push_str("key IN (SELECT value FROM json_each(?))");
                out.params.push(SqlValue::Text(set));
            });
            continue;
        }
        let path = json_path(field)?;
        let t = type_expr(doc, &path);
        let scalar = ci_expr(doc, &path);
        out.text.push_str(&format!(
            "({scalar} IN (SELECT value FROM json_each(?)) OR ({t} = 'array' AND EXISTS \
             (SELECT 1 FROM json_each({doc}, {path}) e WHERE e.type = 'text' AND \
             idsync_lower(e.value) IN (SELECT value FROM json_each(?)))))"
        ));
        out.params.push(SqlValue::Text(set.clone()));
        out.params.push(SqlValue::Text(set));
    }
    for o in others {
        if !first {
            out.text.push_str(" OR ");
        }
        first = false;
        emit(o, doc, keys, out)?;
    }
    out.text.push(')');
    Ok(())
}

fn sql_op(op: CompareOp) -> &'static str {
    match op {
        CompareOp::Eq => "=",
        CompareOp::Lt => "<",
        CompareOp::Le => "<=",
        CompareOp::Gt => ">",
        CompareOp::Ge => ">=",
        CompareOp::Co | CompareOp::Sw => "=",
    }
}

/// `field op value`: the scalar branch (indexable) OR the array branch (any element).
fn compare(
    field: &JsonPointer,
    op: CompareOp,
    value: &Value,
    doc: &str,
    keys: Option<&KeyScope>,
    out: &mut Sql,
) -> RepoResult<()> {
    let path = json_path(field)?;
    let t = type_expr(doc, &path);
    match value {
        Value::String(s) => {
            let v = lower(s);
            if let Some((k, prop)) = keys.and_then(|k| Some((k, k.indexed(field)?))) {
                k.emit(prop, out, |out| string_pred("key", op, &v, out));
                return Ok(());
            }
            let scalar = ci_expr(doc, &path);
            out.text.push('(');
            string_pred(&scalar, op, &v, out);
            out.text.push_str(&format!(
                " OR ({t} = 'array' AND EXISTS (SELECT 1 FROM json_each({doc}, {path}) e \
                 WHERE e.type = 'text' AND "
            ));
            string_pred("idsync_lower(e.value)", op, &v, out);
            out.text.push_str(")))");
        }
        Value::Number(n) => {
            if matches!(op, CompareOp::Co | CompareOp::Sw) {
                out.text.push('0');
                return Ok(());
            }
            let num = match n.as_i64() {
                Some(i) => SqlValue::Integer(i),
                None => SqlValue::Real(n.as_f64().unwrap_or(f64::NAN)),
            };
            let o = sql_op(op);
            out.text.push_str(&format!(
                "(({t} IN ('integer','real') AND json_extract({doc}, {path}) {o} ?) \
                 OR ({t} = 'array' AND EXISTS (SELECT 1 FROM json_each({doc}, {path}) e \
                 WHERE e.type IN ('integer','real') AND e.value {o} ?)))"
            ));
            out.params.push(num.clone());
            out.params.push(num);
        }
        Value::Bool(b) => {
            if matches!(op, CompareOp::Co | CompareOp::Sw) {
                out.text.push('0');
                return Ok(());
            }
            let o = sql_op(op);
            out.text.push_str(&format!(
                "(({t} IN ('true','false') AND ({t} = 'true') {o} ?) \
                 OR ({t} = 'array' AND EXISTS (SELECT 1 FROM json_each({doc}, {path}) e \
                 WHERE e.type IN ('true','false') AND (e.type = 'true') {o} ?)))"
            ));
            out.params.push(SqlValue::Integer(i64::from(*b)));
            out.params.push(SqlValue::Integer(i64::from(*b)));
        }
        _ => out.text.push('0'),
    }
    Ok(())
}

/// A predicate on a lower-cased text expression `x` against the lower-cased operand `v`.
fn string_pred(x: &str, op: CompareOp, v: &str, out: &mut Sql) {
    match op {
        CompareOp::Co => {
            out.text.push_str(&format!("instr({x}, ?) > 0"));
            out.params.push(SqlValue::Text(v.to_string()));
        }
        CompareOp::Sw => {
            // The range bound lets an index narrow the scan; substr makes it exact.
            out.text
                .push_str(&format!("({x} >= ? AND substr({x}, 1, ?) = ?)"));
            out.params.push(SqlValue::Text(v.to_string()));
            out.params.push(SqlValue::Integer(v.chars().count() as i64));
            out.params.push(SqlValue::Text(v.to_string()));
        }
        _ => {
            out.text.push_str(&format!("{x} {} ?", sql_op(op)));
            out.params.push(SqlValue::Text(v.to_string()));
        }
    }
}
