//! In-memory ordering for `_sortKeys` on unpaged LDAP results (LDAP itself returns entries
//! in server order). Strings compare case-insensitively, as CREST does; missing values last.

use idsync_core::SortKey;
use serde_json::Value;
use std::cmp::Ordering;

fn key(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Null => None,
        Value::String(s) => Some(s.to_lowercase()),
        Value::Array(items) => key(items.first()),
        other => Some(other.to_string()),
    }
}

pub fn compare(a: &Value, b: &Value, keys: &[SortKey]) -> Ordering {
    for k in keys {
        let (x, y) = (key(k.field.get(a)), key(k.field.get(b)));
        let ord = match (x, y) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        };
        let ord = if k.ascending { ord } else { ord.reverse() };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}
