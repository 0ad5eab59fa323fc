//! Opaque keyset paging cookies shared by the CSV and SQL connectors: a cookie is the base64 of
//! the JSON array of the last returned object's sort values followed by its `_id`. Keyset (not
//! offset) positions keep paging stable under concurrent inserts (docs/rest.md#queries).
//!
//! Nothing here reads data; it only encodes, decodes and orders positions.

use crate::contract::{ConnectorError, ConnectorResult};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use std::cmp::Ordering;

/// Encodes a keyset position.
pub fn encode_cookie(position: &[Value]) -> String {
    URL_SAFE_NO_PAD.encode(Value::Array(position.to_vec()).to_string())
}

/// Decodes a cookie produced by [`encode_cookie`]; anything else is a `BadRequest`.
/// `expected_len` is the number of sort keys plus one (the `_id`).
pub fn decode_cookie(cookie: &str, expected_len: usize) -> ConnectorResult<Vec<Value>> {
    let bad = || ConnectorError::BadRequest(format!("invalid paged results cookie {cookie:?}"));
    let bytes = URL_SAFE_NO_PAD.decode(cookie.trim()).map_err(|_| bad())?;
    match serde_json::from_slice::<Value>(&bytes).map_err(|_| bad())? {
        Value::Array(items) if items.len() == expected_len => Ok(items),
        _ => Err(bad()),
    }
}

/// Like [`decode_cookie`], but also accepts one trailing JSON object: a connector-private hint
/// (the CSV connector's resume offset), returned separately.
pub fn decode_cookie_with_hint(
    cookie: &str,
    expected_len: usize,
) -> ConnectorResult<(Vec<Value>, Option<Value>)> {
    let bad = || ConnectorError::BadRequest(format!("invalid paged results cookie {cookie:?}"));
    let bytes = URL_SAFE_NO_PAD.decode(cookie.trim()).map_err(|_| bad())?;
    match serde_json::from_slice::<Value>(&bytes).map_err(|_| bad())? {
        Value::Array(items) if items.len() == expected_len => Ok((items, None)),
        Value::Array(mut items)
            if items.len() == expected_len + 1 && items.last().is_some_and(Value::is_object) =>
        {
            let hint = items.pop();
            Ok((items, hint))
        }
        _ => Err(bad()),
    }
}

/// A total order over the JSON values a sort key can hold, used where no database orders for
/// us (CSV): missing/null sorts after every value (as SQL `NULLS LAST` ascending), then booleans,
/// numbers, strings (byte order), then anything else by its text.
pub fn compare_values(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Bool(_) => 0,
            Value::Number(_) => 1,
            Value::String(_) => 2,
            Value::Array(_) | Value::Object(_) => 3,
            Value::Null => 4,
        }
    }
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i.cmp(&j),
            _ => {
                let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
                x.total_cmp(&y)
            }
        },
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Array(_) | Value::Object(_), Value::Array(_) | Value::Object(_)) => {
            a.to_string().cmp(&b.to_string())
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Compares two keyset positions under the given directions (one per element; the last element
/// is the `_id`, always ascending). Null stays last in both directions, as the SQL connector
/// orders with `col IS NULL` first.
pub fn compare_positions(a: &[Value], b: &[Value], ascending: &[bool]) -> Ordering {
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let asc = ascending.get(i).copied().unwrap_or(true);
        let ord = match (x.is_null(), y.is_null()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => {
                let o = compare_values(x, y);
                if asc { o } else { o.reverse() }
            }
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cookie_round_trips_and_rejects_garbage() {
        let pos = vec![json!("Smith"), json!(3), json!("id-1")];
        let c = encode_cookie(&pos);
        assert_eq!(decode_cookie(&c, 3).unwrap(), pos);
        assert!(matches!(
            decode_cookie(&c, 2),
            Err(ConnectorError::BadRequest(_))
        ));
        assert!(matches!(
            decode_cookie("%%%", 1),
            Err(ConnectorError::BadRequest(_))
        ));
    }

    #[test]
    fn null_sorts_last_in_both_directions() {
        let a = [json!(null), json!("a")];
        let b = [json!("x"), json!("b")];
        assert_eq!(compare_positions(&a, &b, &[true, true]), Ordering::Greater);
        assert_eq!(compare_positions(&a, &b, &[false, true]), Ordering::Greater);
        let c = [json!("y"), json!("a")];
        assert_eq!(compare_positions(&b, &c, &[false, true]), Ordering::Greater);
    }
}
