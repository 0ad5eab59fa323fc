//! The index of managed objects' searchable properties (`"index": true` in `managed.json`,
//! `Repository::ensure_indexes`): one narrow row per (object type, property, lower-cased text
//! value, object id) in `object_keys`, written in Rust with the object in the same transaction.
//!
//! It answers every string comparison of an indexed property — the correlation queries of
//! reconciliation and the REST queries alike — with the semantics of the filter language
//! (docs/rest.md#the-query-language): case-insensitive, and an array matches when any of its
//! text elements does. So a row holds the lower-cased text of a string value, or of each text
//! element of an array value. Numbers and booleans are not indexed; comparisons of them scan.
//!
//! Why not SQLite expression indexes: a write then re-parses the JSON document once per index
//! expression and calls back into Rust for the case folding, and the any-element branch needs an
//! index of its own per property. Here the keys come from the value already in memory, one
//! B-tree row per key.

use super::query::map_err;
use crate::error::RepoResult;
use idsync_core::JsonPointer;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};

/// The indexed properties of one object type: canonical pointer text and parsed pointer.
pub type Props = Vec<(String, JsonPointer)>;

/// The indexed properties of `object_type`, as recorded by `ensure_indexes`.
pub fn indexed(conn: &Connection, object_type: &str) -> RepoResult<Props> {
    let mut stmt = conn
        .prepare_cached("SELECT prop FROM indexed_properties WHERE object_type = ? ORDER BY prop")
        .map_err(map_err)?;
    let rows = stmt
        .query_map([object_type], |r| r.get::<_, String>(0))
        .map_err(map_err)?;
    let mut out = Vec::new();
    for r in rows {
        let p = r.map_err(map_err)?;
        let ptr = JsonPointer::parse(&p);
        out.push((p, ptr));
    }
    Ok(out)
}

/// The indexed properties by object type, read once per transaction.
#[derive(Default)]
pub struct Cache(HashMap<String, Props>);

impl Cache {
    pub fn get(&mut self, conn: &Connection, object_type: &str) -> RepoResult<&Props> {
        if !self.0.contains_key(object_type) {
            let props = indexed(conn, object_type)?;
            self.0.insert(object_type.to_string(), props);
        }
        Ok(&self.0[object_type])
    }
}

/// The keys of `value` at `ptr`: the lower-cased text of a string, or of each text element of
/// an array; none for anything else.
pub fn keys_at(value: &Value, ptr: &JsonPointer) -> BTreeSet<String> {
    match ptr.get(value) {
        Some(Value::String(s)) => BTreeSet::from([super::filter::lower(s)]),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(super::filter::lower)
            .collect(),
        _ => BTreeSet::new(),
    }
}

/// Brings the keys of object `id` from what `old` held to what `new` holds (`None`: the object
/// does not exist on that side), touching only the rows that differ.
pub fn write(
    tx: &Connection,
    props: &Props,
    object_type: &str,
    id: &str,
    old: Option<&Value>,
    new: Option<&Value>,
) -> RepoResult<()> {
    for (prop, ptr) in props {
        let before = old.map(|v| keys_at(v, ptr)).unwrap_or_default();
        let after = new.map(|v| keys_at(v, ptr)).unwrap_or_default();
        if before == after {
            continue;
        }
        if !before.is_empty() {
            let mut del = tx
                .prepare_cached(
                    "DELETE FROM object_keys WHERE object_type = ? AND prop = ? AND key = ? \
                     AND id = ?",
                )
                .map_err(map_err)?;
            for k in before.difference(&after) {
                del.execute(params![object_type, prop, k, id])
                    .map_err(map_err)?;
            }
        }
        let mut ins = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO object_keys (object_type, prop, key, id) VALUES (?, ?, ?, ?)",
            )
            .map_err(map_err)?;
        for k in after.difference(&before) {
            ins.execute(params![object_type, prop, k, id])
                .map_err(map_err)?;
        }
    }
    Ok(())
}

/// The stored document of an object, when there are keys to compare it with.
pub fn stored(tx: &Connection, object_type: &str, id: &str) -> RepoResult<Option<Value>> {
    let text: Option<String> = tx
        .prepare_cached("SELECT obj FROM objects WHERE object_type = ? AND id = ?")
        .map_err(map_err)?
        .query_row([object_type, id], |r| r.get(0))
        .optional()
        .map_err(map_err)?;
    text.map(|t| serde_json::from_str(&t).map_err(crate::error::RepoError::internal))
        .transpose()
}

/// Records `properties` of `object_type` as indexed and builds the keys of the objects that
/// exist already. Properties indexed before stay indexed.
pub fn ensure(conn: &mut Connection, object_type: &str, properties: &[String]) -> RepoResult<()> {
    let tx = conn.transaction().map_err(map_err)?;
    let known: BTreeSet<String> = indexed(&tx, object_type)?
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    let new: Props = properties
        .iter()
        .map(|p| JsonPointer::parse(p))
        .map(|ptr| (ptr.to_string(), ptr))
        .filter(|(p, _)| !known.contains(p))
        .collect::<std::collections::BTreeMap<_, _>>()
        .into_iter()
        .collect();
    if new.is_empty() {
        return tx.commit().map_err(map_err);
    }
    for (p, _) in &new {
        tx.execute(
            "INSERT INTO indexed_properties (object_type, prop) VALUES (?, ?)",
            params![object_type, p],
        )
        .map_err(map_err)?;
    }
    {
        let mut stmt = tx
            .prepare("SELECT id, obj FROM objects WHERE object_type = ?")
            .map_err(map_err)?;
        let mut rows = stmt.query([object_type]).map_err(map_err)?;
        while let Some(r) = rows.next().map_err(map_err)? {
            let id: String = r.get(0).map_err(map_err)?;
            let text: String = r.get(1).map_err(map_err)?;
            let value: Value =
                serde_json::from_str(&text).map_err(crate::error::RepoError::internal)?;
            write(&tx, &new, object_type, &id, None, Some(&value))?;
        }
    }
    tx.execute_batch("ANALYZE object_keys").map_err(map_err)?;
    tx.commit().map_err(map_err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_the_lower_cased_text_of_a_string_or_of_each_text_element() {
        let v = json!({"a": "MiXed", "b": ["X", "y", 3, "x"], "c": 7, "d": {"e": "Ü"}});
        let k = |p: &str| keys_at(&v, &JsonPointer::parse(p));
        assert_eq!(k("/a"), BTreeSet::from(["mixed".to_string()]));
        assert_eq!(k("/b"), BTreeSet::from(["x".to_string(), "y".to_string()]));
        assert!(k("/c").is_empty());
        assert!(k("/missing").is_empty());
        assert_eq!(k("/d/e"), BTreeSet::from(["ü".to_string()]));
    }
}
