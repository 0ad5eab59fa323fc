//! CREST filters and keyset positions to SQL: `_queryFilter` becomes a parameterised WHERE
//! clause over the columns the `objectTypes` block names (an unknown field or an extended
//! operator is a `BadRequest`), and `_sortKeys` + cookie become ORDER BY and an "after this
//! position" predicate.
//!
//! NULL handling follows the in-memory semantics: a comparison on a NULL column is false (so
//! `!(x eq 1)` is true for a NULL `x`), and NULLs sort after every value in both directions.

use super::builder::{Param, SqlBuilder, like_escape};
use crate::contract::{ConnectorError, ConnectorResult};
use crate::schema::PropKind;
use idsync_core::{CompareOp, Filter, JsonPointer};
use serde_json::Value;

/// A field resolved to its column.
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub kind: PropKind,
}

/// Resolves a top-level field (`_id` or a property) to its column.
pub trait ColumnResolver {
    fn column(&self, field: &str) -> Option<Column>;
}

fn resolve(resolver: &dyn ColumnResolver, field: &JsonPointer) -> ConnectorResult<Column> {
    let tokens = field.tokens();
    let [name] = tokens else {
        return Err(ConnectorError::BadRequest(format!(
            "the database table connector cannot query the nested field {field}"
        )));
    };
    resolver
        .column(name)
        .ok_or_else(|| ConnectorError::BadRequest(format!("unknown field {name:?} in the query")))
}

/// The bound value for a filter operand, typed by the column's declared kind (a number
/// compared with a text column is compared as text, as the in-memory evaluator would not
/// match it at all otherwise).
pub fn param_for(column: &Column, value: &Value) -> ConnectorResult<Param> {
    param_of(column.kind, &column.name, value)
}

/// [`param_for`] a column given by its kind and name.
pub fn param_of(kind: PropKind, column: &str, value: &Value) -> ConnectorResult<Param> {
    let bad =
        || ConnectorError::BadRequest(format!("{value} cannot be compared with column {column}"));
    Ok(match (kind, value) {
        (PropKind::String | PropKind::Array, Value::String(s)) => Param::Str(s.clone()),
        (PropKind::String | PropKind::Array, Value::Number(n)) => Param::Str(n.to_string()),
        (PropKind::String | PropKind::Array, Value::Bool(b)) => Param::Str(b.to_string()),
        (PropKind::Integer | PropKind::Number, Value::Number(n)) => match n.as_i64() {
            Some(i) => Param::Int(i),
            None => Param::Float(n.as_f64().ok_or_else(bad)?),
        },
        (PropKind::Integer, Value::String(s)) => Param::Int(s.trim().parse().map_err(|_| bad())?),
        (PropKind::Number, Value::String(s)) => Param::Float(s.trim().parse().map_err(|_| bad())?),
        (PropKind::Boolean, Value::Bool(b)) => Param::Bool(*b),
        (PropKind::Boolean, Value::String(s)) => Param::Bool(s.eq_ignore_ascii_case("true")),
        _ => return Err(bad()),
    })
}

/// Appends the WHERE condition for `filter`.
pub fn where_clause(
    b: &mut SqlBuilder,
    filter: &Filter,
    resolver: &dyn ColumnResolver,
) -> ConnectorResult<()> {
    match filter {
        Filter::True => {
            b.push("1=1");
        }
        Filter::False => {
            b.push("1=0");
        }
        Filter::And(items) | Filter::Or(items) => {
            let joiner = if matches!(filter, Filter::And(_)) {
                " AND "
            } else {
                " OR "
            };
            b.push("(");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    b.push(joiner);
                }
                where_clause(b, item, resolver)?;
            }
            b.push(")");
        }
        Filter::Not(inner) => {
            // COALESCE turns the NULL of a comparison on a NULL column into false first.
            b.push("NOT COALESCE((");
            where_clause(b, inner, resolver)?;
            b.push("), 1=0)");
        }
        Filter::Present { field } => {
            let col = resolve(resolver, field)?;
            b.push("(").ident(&col.name).push(" IS NOT NULL)");
        }
        Filter::Compare { field, op, value } => {
            let col = resolve(resolver, field)?;
            b.push("(").ident(&col.name);
            match op {
                CompareOp::Co | CompareOp::Sw => {
                    let text = match value {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    let pattern = if *op == CompareOp::Co {
                        format!("%{}%", like_escape(&text))
                    } else {
                        format!("{}%", like_escape(&text))
                    };
                    b.push(" LIKE ")
                        .param(Param::Str(pattern))
                        .push(" ESCAPE '!'");
                }
                CompareOp::Eq | CompareOp::Lt | CompareOp::Le | CompareOp::Gt | CompareOp::Ge => {
                    let sql_op = match op {
                        CompareOp::Eq => " = ",
                        CompareOp::Lt => " < ",
                        CompareOp::Le => " <= ",
                        CompareOp::Gt => " > ",
                        _ => " >= ",
                    };
                    b.push(sql_op).param(param_for(&col, value)?);
                }
            }
            b.push(")");
        }
        Filter::Extended { op, .. } => {
            return Err(ConnectorError::BadRequest(format!(
                "the database table connector does not support the filter operator {op:?}"
            )));
        }
    }
    Ok(())
}

/// One key of the keyset order: a column and its direction.
#[derive(Debug, Clone)]
pub struct OrderKey {
    pub column: Column,
    pub ascending: bool,
    /// The key column is NOT NULL and unique; other columns may be NULL.
    pub nullable: bool,
}

/// Appends `ORDER BY` for the keys; NULLs last in both directions, the same in all dialects.
pub fn order_by(b: &mut SqlBuilder, keys: &[OrderKey]) {
    b.push(" ORDER BY ");
    for (i, k) in keys.iter().enumerate() {
        if i > 0 {
            b.push(", ");
        }
        if k.nullable {
            b.push("(").ident(&k.column.name).push(" IS NULL), ");
        }
        b.ident(&k.column.name)
            .push(if k.ascending { " ASC" } else { " DESC" });
    }
}

/// Appends the predicate "strictly after `position`" in the order of `keys` (lexicographic
/// expansion, NULL-aware), e.g. for `(a ASC, id ASC)` after `(v, k)`:
/// `(a IS NULL OR a > v OR (a = v AND id > k))`.
pub fn after_position(
    b: &mut SqlBuilder,
    keys: &[OrderKey],
    position: &[Value],
) -> ConnectorResult<()> {
    let Some((key, rest)) = keys.split_first() else {
        b.push("1=0");
        return Ok(());
    };
    let value = position
        .first()
        .ok_or_else(|| ConnectorError::BadRequest("short cookie".into()))?;
    let later = if key.ascending { " > " } else { " < " };
    if value.is_null() {
        if !key.nullable {
            return Err(ConnectorError::BadRequest(
                "invalid paged results cookie".into(),
            ));
        }
        // Only rows that are also NULL here can follow.
        b.push("(").ident(&key.column.name).push(" IS NULL AND ");
        after_position(b, rest, &position[1..])?;
        b.push(")");
        return Ok(());
    }
    let p = param_for(&key.column, value)?;
    b.push("(");
    if key.nullable {
        b.ident(&key.column.name).push(" IS NULL OR ");
    }
    b.ident(&key.column.name).push(later).param(p.clone());
    if !rest.is_empty() {
        b.push(" OR (")
            .ident(&key.column.name)
            .push(" = ")
            .param(p)
            .push(" AND ");
        after_position(b, rest, &position[1..])?;
        b.push(")");
    }
    b.push(")");
    Ok(())
}
