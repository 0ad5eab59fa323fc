//! CREST query parameters (docs/rest.md#the-query-language) → [`QueryRequest`], and the query response envelope.
//!
//! Parameters arrive as raw `(name, value)` pairs so that every mistake becomes a CREST 400
//! with a message (axum's own `Query` rejection would answer plain text).

use crate::error::{ApiError, ApiResult};
use crate::state::Limits;
use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use idsync_core::{JsonPointer, QueryPage, QueryRequest, SortKey, TotalPolicy};
use serde_json::{Value, json};

/// The raw query-string parameters of a request, in order.
#[derive(Debug, Clone, Default)]
pub struct Params(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(pairs) = Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::BadRequest(format!("malformed query string: {e}")))?;
        Ok(Params(pairs))
    }
}

impl Params {
    /// The value of `name`; a parameter given twice is a 400 (which one would win is a guess).
    pub fn get(&self, name: &str) -> ApiResult<Option<&str>> {
        let mut found = self.0.iter().filter(|(k, _)| k == name);
        let first = found.next();
        if found.next().is_some() {
            return Err(ApiError::BadRequest(format!(
                "the parameter {name} is given more than once"
            )));
        }
        Ok(first.map(|(_, v)| v.as_str()))
    }

    /// `_action`, if any.
    pub fn action(&self) -> ApiResult<Option<&str>> {
        self.get("_action")
    }

    /// A boolean parameter (`true`/`false`); absent is `default`.
    pub fn flag(&self, name: &str, default: bool) -> ApiResult<bool> {
        match self.get(name)? {
            None => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(ApiError::BadRequest(format!(
                "the parameter {name} must be true or false, not \"{v}\""
            ))),
        }
    }

    /// `_fields` alone (reads of one object honour it too).
    pub fn fields(&self) -> ApiResult<Option<Vec<JsonPointer>>> {
        Ok(self.get("_fields")?.and_then(|f| {
            let list: Vec<JsonPointer> = f
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(JsonPointer::parse)
                .collect();
            if list.is_empty() { None } else { Some(list) }
        }))
    }

    /// Whether this request is a query (`_queryFilter` or `_queryId` present).
    pub fn is_query(&self) -> bool {
        self.0
            .iter()
            .any(|(k, _)| k == "_queryFilter" || k == "_queryId")
    }

    /// Builds the [`QueryRequest`] within `limits`: `max_page_size` caps `_pageSize` (a bigger
    /// value is a 400, so a client never silently gets fewer objects than it asked for), and the
    /// sort keys and filter terms are bounded; an unpaged query is left unpaged here: callers
    /// decide how to bound it.
    pub fn query_request(&self, limits: &Limits) -> ApiResult<QueryRequest> {
        let max_page_size = limits.max_page_size;
        let filter_text = self.get("_queryFilter")?;
        let query_id = self.get("_queryId")?;
        if self.get("_queryExpression")?.is_some() {
            return Err(ApiError::Forbidden(
                "_queryExpression (native queries) is not allowed over REST".into(),
            ));
        }
        let mut req = QueryRequest::default();
        match (filter_text, query_id) {
            (Some(_), Some(_)) => {
                return Err(ApiError::BadRequest(
                    "_queryFilter and _queryId cannot be used together".into(),
                ));
            }
            (None, None) => {
                return Err(ApiError::BadRequest(
                    "a query needs _queryFilter or _queryId".into(),
                ));
            }
            (Some(text), None) => {
                let filter = idsync_core::filter::parse(text)?;
                req.filter = match filter {
                    idsync_core::Filter::True => None,
                    f => Some(f),
                };
            }
            (None, Some("query-all-ids")) => {
                req.fields = Some(vec![JsonPointer::parse("_id")]);
            }
            (None, Some("query-all")) => {}
            (None, Some(other)) => {
                return Err(ApiError::BadRequest(format!(
                    "unknown _queryId \"{other}\": only query-all-ids and query-all are supported"
                )));
            }
        }
        if let Some(fields) = self.fields()? {
            if query_id == Some("query-all-ids") {
                return Err(ApiError::BadRequest(
                    "_fields cannot be combined with _queryId=query-all-ids".into(),
                ));
            }
            req.fields = Some(fields);
        }
        if let Some(keys) = self.get("_sortKeys")? {
            if query_id.is_some() {
                return Err(ApiError::BadRequest(
                    "_sortKeys is not supported with _queryId".into(),
                ));
            }
            // Counted before they are parsed: a URL can hold thousands.
            let count = keys.split(',').filter(|k| !k.trim().is_empty()).count();
            if count > limits.max_sort_keys {
                return Err(ApiError::BadRequest(format!(
                    "_sortKeys names {count} keys; the limit is {}",
                    limits.max_sort_keys
                )));
            }
            req.sort_keys = SortKey::parse_list(keys);
            if req.sort_keys.iter().any(|k| k.field.is_root()) {
                return Err(ApiError::BadRequest(format!(
                    "_sortKeys \"{keys}\" holds an empty field"
                )));
            }
        }
        if let Some(size) = self.get("_pageSize")? {
            let n = parse_count("_pageSize", size)?;
            if n > max_page_size {
                return Err(ApiError::BadRequest(format!(
                    "_pageSize {n} is larger than the maximum of {max_page_size}"
                )));
            }
            req.page_size = if n == 0 { None } else { Some(n) };
        }
        let cookie = self.get("_pagedResultsCookie")?.filter(|c| !c.is_empty());
        let offset = self.get("_pagedResultsOffset")?;
        if cookie.is_some() && offset.is_some_and(|o| o != "0") {
            return Err(ApiError::BadRequest(
                "_pagedResultsCookie and _pagedResultsOffset cannot be used together".into(),
            ));
        }
        req.cookie = cookie.map(str::to_string);
        if let Some(o) = offset {
            let n = parse_count("_pagedResultsOffset", o)?;
            req.offset = if n == 0 { None } else { Some(n) };
        }
        if let Some(p) = self.get("_totalPagedResultsPolicy")? {
            req.total_policy = match p.to_ascii_uppercase().as_str() {
                "NONE" => TotalPolicy::None,
                "EXACT" => TotalPolicy::Exact,
                "ESTIMATE" => TotalPolicy::Estimate,
                _ => {
                    return Err(ApiError::BadRequest(format!(
                        "_totalPagedResultsPolicy must be NONE, EXACT or ESTIMATE, not \"{p}\""
                    )));
                }
            };
        }
        crate::limits::check_query(&req, limits)?;
        Ok(req)
    }
}

fn parse_count(name: &str, v: &str) -> ApiResult<usize> {
    v.trim().parse::<usize>().map_err(|_| {
        ApiError::BadRequest(format!(
            "{name} must be a non-negative integer, not \"{v}\""
        ))
    })
}

/// The query response envelope of docs/rest.md#the-query-language
///
/// `remainingPagedResults` is -1 unless a total is known, then the count after this page (0 on
/// the last page; -1 on a page reached by cookie, where the count before it is unknown).
pub fn envelope(req: &QueryRequest, page: QueryPage) -> Value {
    let count = page.results.len();
    let (total, remaining) = match page.total {
        Some(t) => {
            // After a cookie the number of objects already returned is unknown here.
            let seen = req.offset.unwrap_or(0) as u64 + count as u64;
            let remaining = match (&page.cookie, &req.cookie) {
                (None, _) => 0,
                (Some(_), None) => t.saturating_sub(seen) as i64,
                (Some(_), Some(_)) => -1,
            };
            (t as i64, remaining)
        }
        None => (-1, -1),
    };
    json!({
        "result": page.results,
        "resultCount": count,
        "pagedResultsCookie": page.cookie,
        "totalPagedResultsPolicy": req.total_policy.as_str(),
        "totalPagedResults": total,
        "remainingPagedResults": remaining,
    })
}

/// Keeps only `_id`, `_rev` and the requested fields of an object (for reads of one object
/// and for backends that return whole objects).
pub fn project_fields(object: Value, fields: Option<&[JsonPointer]>) -> Value {
    let Some(fields) = fields else {
        return object;
    };
    let mut out = Value::Object(serde_json::Map::new());
    for key in ["_id", "_rev"] {
        if let Some(v) = object.get(key) {
            out[key] = v.clone();
        }
    }
    for f in fields {
        if f.is_root() {
            return object;
        }
        if let Some(v) = f.get(&object) {
            // A field that cannot be placed (a non-object parent) is simply left out.
            let _ = f.set(&mut out, v.clone());
        }
    }
    out
}

/// A CREST query answered over values held in memory (schedules, mappings): the filter, the sort
/// keys, `_pagedResultsOffset`, `_pageSize` and `_fields`, with the exact total.
pub fn page_in_memory(req: &QueryRequest, mut all: Vec<Value>) -> QueryPage {
    all.retain(|v| req.filter.as_ref().is_none_or(|f| f.matches(v)));
    if !req.sort_keys.is_empty() {
        all.sort_by(|a, b| compare(a, b, &req.sort_keys));
    }
    let total = all.len() as u64;
    let results = all
        .into_iter()
        .skip(req.offset.unwrap_or(0))
        .take(req.page_size.filter(|n| *n > 0).unwrap_or(usize::MAX))
        .map(|v| project_fields(v, req.fields.as_deref()))
        .collect();
    QueryPage {
        results,
        cookie: None,
        total: Some(total),
    }
}

/// Orders by the sort keys: missing/null, booleans, numbers, strings, then the rest.
fn compare(a: &Value, b: &Value, keys: &[SortKey]) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    fn rank(v: Option<&Value>) -> u8 {
        match v {
            None | Some(Value::Null) => 0,
            Some(Value::Bool(_)) => 1,
            Some(Value::Number(_)) => 2,
            Some(Value::String(_)) => 3,
            Some(_) => 4,
        }
    }
    for k in keys {
        let (x, y) = (k.field.get(a), k.field.get(b));
        let ord = rank(x).cmp(&rank(y)).then_with(|| match (x, y) {
            (Some(Value::Bool(p)), Some(Value::Bool(q))) => p.cmp(q),
            (Some(Value::Number(p)), Some(Value::Number(q))) => p
                .as_f64()
                .partial_cmp(&q.as_f64())
                .unwrap_or(Ordering::Equal),
            (Some(Value::String(p)), Some(Value::String(q))) => p.cmp(q),
            _ => Ordering::Equal,
        });
        let ord = if k.ascending { ord } else { ord.reverse() };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page_limit(max_page_size: usize) -> Limits {
        Limits {
            max_page_size,
            ..Limits::default()
        }
    }

    fn p(pairs: &[(&str, &str)]) -> Params {
        Params(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn full_parameter_set() {
        let req = p(&[
            ("_queryFilter", "userName sw \"a\""),
            ("_fields", "userName,mail"),
            ("_sortKeys", "-sn,givenName"),
            ("_pageSize", "10"),
            ("_pagedResultsCookie", "abc"),
            ("_totalPagedResultsPolicy", "EXACT"),
        ])
        .query_request(&page_limit(1000))
        .unwrap();
        assert!(req.filter.is_some());
        assert_eq!(req.fields.as_ref().unwrap().len(), 2);
        assert_eq!(req.sort_keys.len(), 2);
        assert!(!req.sort_keys[0].ascending);
        assert_eq!(req.page_size, Some(10));
        assert_eq!(req.cookie.as_deref(), Some("abc"));
        assert_eq!(req.total_policy, TotalPolicy::Exact);
    }

    #[test]
    fn true_filter_means_no_filter_and_query_ids() {
        assert_eq!(
            p(&[("_queryFilter", "true")])
                .query_request(&page_limit(10))
                .unwrap()
                .filter,
            None
        );
        let ids = p(&[("_queryId", "query-all-ids")])
            .query_request(&page_limit(10))
            .unwrap();
        assert_eq!(ids.fields.unwrap()[0].to_string(), "/_id");
    }

    #[test]
    fn mistakes_are_bad_requests_with_messages() {
        for (pairs, needle) in [
            (vec![("_queryFilter", "a eq")], "position"),
            (vec![("_queryId", "by-name")], "by-name"),
            (
                vec![("_queryFilter", "true"), ("_pageSize", "x")],
                "_pageSize",
            ),
            (
                vec![("_queryFilter", "true"), ("_pageSize", "5000")],
                "maximum",
            ),
            (
                vec![
                    ("_queryFilter", "true"),
                    ("_totalPagedResultsPolicy", "ALL"),
                ],
                "NONE",
            ),
            (
                vec![
                    ("_queryFilter", "true"),
                    ("_pagedResultsCookie", "c"),
                    ("_pagedResultsOffset", "3"),
                ],
                "together",
            ),
            (
                vec![("_queryFilter", "true"), ("_queryFilter", "false")],
                "more than once",
            ),
            (
                vec![("_queryId", "query-all"), ("_sortKeys", "a")],
                "_sortKeys",
            ),
        ] {
            let e = p(&pairs).query_request(&page_limit(1000)).unwrap_err();
            assert!(matches!(e, ApiError::BadRequest(_)), "{pairs:?}: {e:?}");
            assert!(e.to_string().contains(needle), "{pairs:?}: {e}");
        }
    }

    #[test]
    fn envelope_shape() {
        let req = QueryRequest::default();
        let v = envelope(
            &req,
            QueryPage {
                results: vec![json!({"_id":"scarter","_rev":"1"})],
                cookie: Some("3".into()),
                total: None,
            },
        );
        assert_eq!(
            v,
            json!({"result":[{"_id":"scarter","_rev":"1"}],"resultCount":1,"pagedResultsCookie":"3",
                   "totalPagedResultsPolicy":"NONE","totalPagedResults":-1,"remainingPagedResults":-1})
        );
        let v = envelope(
            &QueryRequest {
                total_policy: TotalPolicy::Exact,
                ..QueryRequest::default()
            },
            QueryPage {
                results: vec![json!({"_id":"a"}), json!({"_id":"b"})],
                cookie: Some("x".into()),
                total: Some(5),
            },
        );
        assert_eq!(v["totalPagedResults"], 5);
        assert_eq!(v["remainingPagedResults"], 3);
    }

    #[test]
    fn projection_keeps_id_rev_and_fields() {
        let obj = json!({"_id":"1","_rev":"2","a":{"b":1,"c":2},"d":3});
        let f = vec![JsonPointer::parse("a/b")];
        assert_eq!(
            project_fields(obj, Some(&f)),
            json!({"_id":"1","_rev":"2","a":{"b":1}})
        );
    }
}
