//! The one CREST query executor of the backend: filter → `WHERE`, `_sortKeys` → `ORDER BY`,
//! keyset paging with opaque cookies, `_pagedResultsOffset`, EXACT totals and `_fields`.
//!
//! Ordering: a sort key orders by the JSON type first (missing/null, boolean, number, string,
//! array, object), then numbers as `float8`, strings case-insensitively in code-point order;
//! `_id` orders by the id itself (byte order). Every query ends with the id as tiebreak, so the
//! order is total and a cookie (the last row's sort values + id, base64 JSON) resumes exactly
//! after that row: every row is returned once across pages, even under concurrent inserts.

use super::convert::as_i64;
use super::filter::{FieldSource, SqlParams, ci_text, to_sql};
use crate::error::{RepoError, RepoResult};
use deadpool_postgres::GenericClient;
use idsync_core::{QueryPage, QueryRequest, TotalPolicy};
use serde_json::{Value, json};
use tokio_postgres::Row;

/// What a CREST query runs over.
#[derive(Debug)]
pub(crate) struct QuerySpec<'a> {
    /// The `FROM` item.
    pub from: &'a str,
    /// Fixed conditions (their values already bound in the params given with the spec).
    pub base_where: Vec<String>,
    /// How filter and sort pointers reach the record's fields.
    pub fields: FieldSource<'a>,
    /// A text column unique within `base_where`: the tiebreak of every order.
    pub id_col: &'a str,
    /// The columns the row mapper reads.
    pub select: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Int,
    Float,
    Text,
}

struct Component {
    expr: String,
    ascending: bool,
    kind: Kind,
}

/// Runs `query` over `spec`; `map` turns a row into the result JSON (before `_fields`).
pub(crate) async fn run<C, F>(
    client: &C,
    spec: QuerySpec<'_>,
    mut params: SqlParams,
    query: &QueryRequest,
    map: F,
) -> RepoResult<QueryPage>
where
    C: GenericClient + Sync,
    F: Fn(&Row) -> RepoResult<Value>,
{
    let mut conditions = spec.base_where.clone();
    if let Some(filter) = &query.filter {
        let sql = to_sql(filter, spec.fields, &mut params).map_err(|e| RepoError::BadQuery(e.0))?;
        conditions.push(sql);
    }
    let where_sql = where_clause(&conditions);

    let total = match query.total_policy {
        TotalPolicy::None => None,
        TotalPolicy::Exact | TotalPolicy::Estimate => {
            let sql = format!("SELECT count(*) FROM {}{where_sql}", spec.from);
            let stmt = client
                .prepare_cached(&sql)
                .await
                .map_err(super::convert::pg_err)?;
            let row = client
                .query_one(&stmt, &params.refs())
                .await
                .map_err(super::convert::pg_err)?;
            Some(super::convert::as_u64(row.get::<_, i64>(0)))
        }
    };

    let components = sort_components(&spec, query);
    if let Some(cookie) = &query.cookie {
        let values = decode_cookie(cookie, &components)?;
        conditions.push(keyset_condition(&components, &values, &mut params));
    }
    let where_sql = where_clause(&conditions);
    let order: Vec<String> = components
        .iter()
        .map(|c| format!("{} {}", c.expr, if c.ascending { "ASC" } else { "DESC" }))
        .collect();
    let keys: Vec<String> = components
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{} AS __k{i}", c.expr))
        .collect();
    let page_size = query.page_size.filter(|n| *n > 0);
    let mut sql = format!(
        "SELECT {}, {} FROM {}{where_sql} ORDER BY {}",
        spec.select,
        keys.join(", "),
        spec.from,
        order.join(", ")
    );
    if let Some(n) = page_size {
        sql.push_str(&format!(" LIMIT {}", as_i64(n).saturating_add(1)));
    }
    if let (Some(offset), None) = (query.offset, &query.cookie) {
        sql.push_str(&format!(" OFFSET {}", as_i64(offset)));
    }
    // Prepared once per connection: the text depends on the filter's shape, not its values
    // (those are bound), so a correlation query run for every object of a recon is parsed
    // once and, after a few runs, executed on a generic plan instead of planned every time.
    let stmt = client
        .prepare_cached(&sql)
        .await
        .map_err(super::convert::pg_err)?;
    let mut rows = client
        .query(&stmt, &params.refs())
        .await
        .map_err(super::convert::pg_err)?;
    let mut cookie = None;
    if let Some(n) = page_size
        && rows.len() > n
    {
        rows.truncate(n);
        if let Some(last) = rows.last() {
            cookie = Some(encode_cookie(last, &components)?);
        }
    }
    let mut results = Vec::with_capacity(rows.len());
    for row in &rows {
        // The shared projection, so `_fields` answers the same on every backend.
        results.push(crate::paging::project(map(row)?, query.fields.as_deref()));
    }
    Ok(QueryPage {
        results,
        cookie,
        total,
    })
}

/// The `EXPLAIN` text of the page query `run` would send (without totals).
pub(crate) async fn explain<C: GenericClient + Sync>(
    client: &C,
    spec: QuerySpec<'_>,
    mut params: SqlParams,
    query: &QueryRequest,
) -> RepoResult<String> {
    let mut conditions = spec.base_where.clone();
    if let Some(filter) = &query.filter {
        let sql = to_sql(filter, spec.fields, &mut params).map_err(|e| RepoError::BadQuery(e.0))?;
        conditions.push(sql);
    }
    let components = sort_components(&spec, query);
    if let Some(cookie) = &query.cookie {
        let values = decode_cookie(cookie, &components)?;
        conditions.push(keyset_condition(&components, &values, &mut params));
    }
    let order: Vec<String> = components
        .iter()
        .map(|c| format!("{} {}", c.expr, if c.ascending { "ASC" } else { "DESC" }))
        .collect();
    let mut sql = format!(
        "EXPLAIN SELECT {} FROM {}{} ORDER BY {}",
        spec.select,
        spec.from,
        where_clause(&conditions),
        order.join(", ")
    );
    if let Some(n) = query.page_size.filter(|n| *n > 0) {
        sql.push_str(&format!(" LIMIT {}", as_i64(n).saturating_add(1)));
    }
    let rows = client
        .query(&sql, &params.refs())
        .await
        .map_err(super::convert::pg_err)?;
    Ok(rows
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n"))
}

pub(crate) fn where_clause(conditions: &[String]) -> String {
    if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    }
}

fn sort_components(spec: &QuerySpec<'_>, query: &QueryRequest) -> Vec<Component> {
    let mut out = Vec::new();
    for key in &query.sort_keys {
        if key.field.tokens() == ["_id"] {
            out.push(Component {
                expr: spec.id_col.to_string(),
                ascending: key.ascending,
                kind: Kind::Text,
            });
            continue;
        }
        let j = spec.fields.jsonb(&key.field);
        let t = spec.fields.text(&key.field);
        out.push(Component {
            expr: format!(
                "(CASE jsonb_typeof({j}) WHEN 'boolean' THEN 1 WHEN 'number' THEN 2 \
                 WHEN 'string' THEN 3 WHEN 'array' THEN 4 WHEN 'object' THEN 5 ELSE 0 END)"
            ),
            ascending: key.ascending,
            kind: Kind::Int,
        });
        out.push(Component {
            expr: format!(
                "(CASE jsonb_typeof({j}) WHEN 'number' THEN ({j})::float8 \
                 WHEN 'boolean' THEN (CASE WHEN ({j})::boolean THEN 1.0 ELSE 0.0 END)::float8 \
                 ELSE 0.0::float8 END)"
            ),
            ascending: key.ascending,
            kind: Kind::Float,
        });
        out.push(Component {
            expr: format!(
                "(CASE jsonb_typeof({j}) WHEN 'string' THEN {} \
                 WHEN 'array' THEN ({j})::text COLLATE \"C\" WHEN 'object' THEN ({j})::text COLLATE \"C\" \
                 ELSE ''::text COLLATE \"C\" END)",
                ci_text(&t)
            ),
            ascending: key.ascending,
            kind: Kind::Text,
        });
    }
    out.push(Component {
        expr: spec.id_col.to_string(),
        ascending: true,
        kind: Kind::Text,
    });
    out
}

/// Rows strictly after `values` in the order of `components` (lexicographic, per-direction).
fn keyset_condition(components: &[Component], values: &[Value], params: &mut SqlParams) -> String {
    let placeholders: Vec<String> = components
        .iter()
        .zip(values)
        .map(|(c, v)| match c.kind {
            Kind::Int => format!(
                "{}::int4",
                params.push(v.as_i64().and_then(|i| i32::try_from(i).ok()).unwrap_or(0))
            ),
            Kind::Float => format!("{}::float8", params.push(v.as_f64().unwrap_or(0.0))),
            Kind::Text => format!(
                "({}::text COLLATE \"C\")",
                params.push(v.as_str().unwrap_or("").to_string())
            ),
        })
        .collect();
    let mut alternatives = Vec::new();
    for i in 0..components.len() {
        let mut parts: Vec<String> = (0..i)
            .map(|j| format!("{} = {}", components[j].expr, placeholders[j]))
            .collect();
        let op = if components[i].ascending { ">" } else { "<" };
        parts.push(format!("{} {op} {}", components[i].expr, placeholders[i]));
        alternatives.push(format!("({})", parts.join(" AND ")));
    }
    format!("({})", alternatives.join(" OR "))
}

fn encode_cookie(row: &Row, components: &[Component]) -> RepoResult<String> {
    let mut values = Vec::with_capacity(components.len());
    for (i, c) in components.iter().enumerate() {
        let name = format!("__k{i}");
        let v = match c.kind {
            Kind::Int => json!(
                row.try_get::<_, i32>(name.as_str())
                    .map_err(RepoError::internal)?
            ),
            Kind::Float => json!(
                row.try_get::<_, f64>(name.as_str())
                    .map_err(RepoError::internal)?
            ),
            Kind::Text => json!(
                row.try_get::<_, String>(name.as_str())
                    .map_err(RepoError::internal)?
            ),
        };
        values.push(v);
    }
    Ok(base64_encode(json!({ "k": values }).to_string().as_bytes()))
}

fn decode_cookie(cookie: &str, components: &[Component]) -> RepoResult<Vec<Value>> {
    let bad = || RepoError::BadQuery(format!("invalid _pagedResultsCookie: {cookie}"));
    let bytes = base64_decode(cookie).ok_or_else(bad)?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let values = value.get("k").and_then(Value::as_array).ok_or_else(bad)?;
    if values.len() != components.len() {
        return Err(RepoError::BadQuery(
            "the _pagedResultsCookie belongs to a query with other _sortKeys".into(),
        ));
    }
    for (v, c) in values.iter().zip(components) {
        let ok = match c.kind {
            Kind::Int => v.as_i64().is_some(),
            Kind::Float => v.is_number(),
            Kind::Text => v.is_string(),
        };
        if !ok {
            return Err(bad());
        }
    }
    Ok(values.clone())
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// URL-safe base64 without padding (cookies travel in query strings).
fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.trim_end_matches('=').bytes() {
        let v = B64.iter().position(|b| *b == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for s in ["", "a", "ab", "abc", "abcd", "{\"k\":[\"é\",1.5]}"] {
            assert_eq!(
                base64_decode(&base64_encode(s.as_bytes())).unwrap(),
                s.as_bytes()
            );
        }
        assert!(base64_decode("not base64!").is_none());
    }
}
