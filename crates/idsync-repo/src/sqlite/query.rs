//! Runs a CREST query (`QueryRequest`) against one "source" — a table or subquery exposing a
//! JSON document and an id — with filter, `_sortKeys`, keyset cookies, offsets and EXACT
//! totals all done in SQL. Used for managed objects, links, plans, the queue, dead letters
//! and audit, so every REST collection pages the same way.

use super::filter::{KeyScope, json_path, translate};
use crate::error::{RepoError, RepoResult};
use crate::paging::{Cookie, project};
use idsync_core::{QueryPage, QueryRequest, TotalPolicy};
use rusqlite::Connection;
use rusqlite::types::Value as SqlValue;
use serde_json::Value;

/// What to query: `SELECT {doc}, {id} FROM {from} WHERE {scope} AND <filter> ...`.
pub struct Source<'a> {
    pub from: &'a str,
    pub doc: &'a str,
    pub id: &'a str,
    /// A WHERE fragment restricting the collection (e.g. `object_type = ?`); `1` for none.
    pub scope: &'a str,
    pub scope_params: Vec<SqlValue>,
    /// The key rows of indexed properties (managed objects only).
    pub keys: Option<KeyScope>,
    /// The `_rev` of a document as a text column expression, when the source has one: a query
    /// for ids (and revisions) only then reads neither the document nor its JSON.
    pub rev: Option<&'a str>,
}

/// Whether the query asks for nothing beyond `_id` and `_rev`, which `project` always keeps.
fn ids_only(q: &QueryRequest) -> bool {
    q.fields.as_ref().is_some_and(|f| {
        !f.is_empty()
            && f.iter()
                .all(|p| p.tokens() == ["_id"] || p.tokens() == ["_rev"])
    })
}

pub fn json_to_sql(v: &Value) -> SqlValue {
    match v {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => SqlValue::Integer(i),
            None => SqlValue::Real(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => SqlValue::Text(s.clone()),
        other => SqlValue::Text(other.to_string()),
    }
}

fn sql_to_json(v: SqlValue) -> Value {
    match v {
        SqlValue::Null | SqlValue::Blob(_) => Value::Null,
        SqlValue::Integer(i) => Value::from(i),
        SqlValue::Real(f) => serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        SqlValue::Text(s) => Value::String(s),
    }
}

/// The filter WHERE clause (scope AND filter) and its parameters.
pub fn where_clause(
    src: &Source<'_>,
    q_filter: Option<&idsync_core::Filter>,
) -> RepoResult<(String, Vec<SqlValue>)> {
    let f = translate(q_filter, src.doc, src.keys.as_ref())?;
    let mut params = src.scope_params.clone();
    params.extend(f.params);
    Ok((format!("({}) AND ({})", src.scope, f.text), params))
}

/// The SELECT statement (without executing it) and its parameters; also used for EXPLAIN.
pub fn build_select(
    src: &Source<'_>,
    q: &QueryRequest,
) -> RepoResult<(String, Vec<SqlValue>, usize)> {
    let (mut where_sql, mut params) = where_clause(src, q.filter.as_ref())?;
    let mut sort_exprs = Vec::new();
    for k in &q.sort_keys {
        let expr = if k.field.tokens() == ["_id"] {
            src.id.to_string()
        } else {
            format!("json_extract({}, {})", src.doc, json_path(&k.field)?)
        };
        sort_exprs.push((expr, k.ascending));
    }
    if let Some(c) = &q.cookie {
        let cookie = Cookie::decode(c, sort_exprs.len())?;
        let mut ors = Vec::new();
        let mut kp = Vec::new();
        for i in 0..=sort_exprs.len() {
            let mut ands = Vec::new();
            for (j, (e, _)) in sort_exprs.iter().take(i).enumerate() {
                ands.push(format!("{e} IS ?"));
                kp.push(json_to_sql(&cookie.keys[j]));
            }
            if i < sort_exprs.len() {
                let (e, asc) = &sort_exprs[i];
                let v = &cookie.keys[i];
                let after = match (v.is_null(), asc) {
                    (true, true) => format!("{e} IS NOT NULL"),
                    (true, false) => "0".to_string(),
                    (false, true) => format!("{e} > ?"),
                    (false, false) => format!("({e} IS NULL OR {e} < ?)"),
                };
                if !v.is_null() {
                    kp.push(json_to_sql(v));
                }
                ands.push(after);
            } else {
                ands.push(format!("{} > ?", src.id));
                kp.push(SqlValue::Text(cookie.id.clone()));
            }
            ors.push(format!("({})", ands.join(" AND ")));
        }
        where_sql = format!("{where_sql} AND ({})", ors.join(" OR "));
        params.extend(kp);
    }
    let mut order: Vec<String> = sort_exprs
        .iter()
        .map(|(e, asc)| format!("{e} {}", if *asc { "ASC" } else { "DESC" }))
        .collect();
    order.push(format!("{} ASC", src.id));
    let extra: String = sort_exprs.iter().map(|(e, _)| format!(", {e}")).collect();
    // Ids only: the revision column stands in for the document (see `run`).
    let doc = match src.rev {
        Some(rev) if ids_only(q) => rev,
        _ => src.doc,
    };
    let mut sql = format!(
        "SELECT {}, {}{extra} FROM {} WHERE {where_sql} ORDER BY {}",
        doc,
        src.id,
        src.from,
        order.join(", ")
    );
    let page = q.page_size.filter(|p| *p > 0);
    let offset = if q.cookie.is_none() {
        q.offset.unwrap_or(0)
    } else {
        0
    };
    match page {
        Some(p) => {
            sql.push_str(" LIMIT ? OFFSET ?");
            params.push(SqlValue::Integer(p as i64 + 1));
            params.push(SqlValue::Integer(offset as i64));
        }
        None if offset > 0 => {
            sql.push_str(" LIMIT -1 OFFSET ?");
            params.push(SqlValue::Integer(offset as i64));
        }
        None => {}
    }
    Ok((sql, params, sort_exprs.len()))
}

/// Runs the query.
pub fn run(conn: &Connection, src: &Source<'_>, q: &QueryRequest) -> RepoResult<QueryPage> {
    let (sql, params, nkeys) = build_select(src, q)?;
    let mut stmt = conn.prepare_cached(&sql).map_err(query_err)?;
    let mut rows = stmt
        .query(rusqlite::params_from_iter(params.iter()))
        .map_err(query_err)?;
    let mut docs: Vec<(String, String, Vec<SqlValue>)> = Vec::new();
    while let Some(row) = rows.next().map_err(map_err)? {
        let doc: String = row.get(0).map_err(map_err)?;
        let id: String = row.get(1).map_err(map_err)?;
        let mut keys = Vec::with_capacity(nkeys);
        for i in 0..nkeys {
            keys.push(row.get::<_, SqlValue>(2 + i).map_err(map_err)?);
        }
        docs.push((doc, id, keys));
    }
    let page = q.page_size.filter(|p| *p > 0);
    let mut cookie = None;
    if let Some(p) = page
        && docs.len() > p
    {
        docs.truncate(p);
        if let Some((_, id, keys)) = docs.last() {
            cookie = Some(
                Cookie {
                    keys: keys.iter().cloned().map(sql_to_json).collect(),
                    id: id.clone(),
                }
                .encode(),
            );
        }
    }
    let mut results = Vec::with_capacity(docs.len());
    if src.rev.is_some() && ids_only(q) {
        // The first column is the revision: `{_id, _rev}` is all `project` would keep.
        for (rev, id, _) in docs {
            let mut m = serde_json::Map::with_capacity(2);
            m.insert("_id".into(), Value::String(id));
            m.insert("_rev".into(), Value::String(rev));
            results.push(Value::Object(m));
        }
    } else {
        for (doc, _, _) in docs {
            let v: Value = serde_json::from_str(&doc).map_err(RepoError::internal)?;
            results.push(project(v, q.fields.as_deref()));
        }
    }
    let total = match q.total_policy {
        TotalPolicy::None => None,
        TotalPolicy::Exact | TotalPolicy::Estimate => Some(count(conn, src, q.filter.as_ref())?),
    };
    Ok(QueryPage {
        results,
        cookie,
        total,
    })
}

/// COUNT(*) of the source under a filter.
pub fn count(
    conn: &Connection,
    src: &Source<'_>,
    filter: Option<&idsync_core::Filter>,
) -> RepoResult<u64> {
    let (w, params) = where_clause(src, filter)?;
    let sql = format!("SELECT COUNT(*) FROM {} WHERE {w}", src.from);
    let mut stmt = conn.prepare_cached(&sql).map_err(query_err)?;
    let n: i64 = stmt
        .query_row(rusqlite::params_from_iter(params.iter()), |r| r.get(0))
        .map_err(query_err)?;
    Ok(n as u64)
}

/// Errors of preparing or starting a query built from a client's filter, sort keys and cookie.
/// The statement is generated, so a statement SQLite refuses was made so by the input: too many
/// terms or parameters, an expression too deep, a NUL character. Those are `BadQuery` (a 400),
/// the rest as [`map_err`].
pub fn query_err(e: rusqlite::Error) -> RepoError {
    let refused = match &e {
        rusqlite::Error::NulError(_) | rusqlite::Error::InvalidParameterCount(..) => true,
        rusqlite::Error::SqliteFailure(f, _) => matches!(
            f.code,
            rusqlite::ErrorCode::TooBig
                | rusqlite::ErrorCode::Unknown
                | rusqlite::ErrorCode::ParameterOutOfRange
        ),
        _ => false,
    };
    if refused {
        return RepoError::BadQuery(format!("the query cannot be evaluated: {e}"));
    }
    map_err(e)
}

/// Driver errors: a busy/locked database is `Unavailable`, everything else `Internal`.
pub fn map_err(e: rusqlite::Error) -> RepoError {
    if let rusqlite::Error::SqliteFailure(f, _) = &e
        && matches!(
            f.code,
            rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
        )
    {
        return RepoError::Unavailable(e.to_string());
    }
    RepoError::Internal(e.to_string())
}
