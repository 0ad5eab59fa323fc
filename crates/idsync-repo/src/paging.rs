//! Backend-independent pieces of CREST queries: opaque keyset cookies and `_fields`
//! projection. Backends translate filters and sort keys themselves; they share these so that
//! cookies look the same and projections behave the same everywhere.

use crate::error::{RepoError, RepoResult};
use base64::Engine;
use idsync_core::JsonPointer;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The position after the last row of a page: the sort-key values of that row and its id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cookie {
    /// One value per sort key, as the database returned it.
    #[serde(rename = "k")]
    pub keys: Vec<Value>,
    #[serde(rename = "i")]
    pub id: String,
}

impl Cookie {
    /// URL-safe base64 of the JSON form.
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    /// Decodes a cookie; anything malformed, or with a different number of sort keys than the
    /// query now has, is a `BadQuery`.
    pub fn decode(s: &str, sort_keys: usize) -> RepoResult<Self> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s.trim())
            .map_err(|_| RepoError::BadQuery("malformed _pagedResultsCookie".into()))?;
        let c: Cookie = serde_json::from_slice(&bytes)
            .map_err(|_| RepoError::BadQuery("malformed _pagedResultsCookie".into()))?;
        if c.keys.len() != sort_keys {
            return Err(RepoError::BadQuery(
                "_pagedResultsCookie does not match _sortKeys".into(),
            ));
        }
        Ok(c)
    }
}

/// `_fields`: keeps `_id`, `_rev` and each listed field (missing fields are omitted).
pub fn project(value: Value, fields: Option<&[JsonPointer]>) -> Value {
    let Some(fields) = fields else {
        return value;
    };
    if fields.iter().any(|f| f.is_root() || f.tokens() == ["*"]) {
        return value;
    }
    let mut out = serde_json::Map::new();
    for key in ["_id", "_rev"] {
        if let Some(v) = value.get(key) {
            out.insert(key.to_string(), v.clone());
        }
    }
    let mut out = Value::Object(out);
    for f in fields {
        if let Some(v) = f.get(&value) {
            // Setting can only fail on the root pointer, excluded above.
            let _ = f.set(&mut out, v.clone());
        }
    }
    out
}
