//! The narrow row of a recon decision: reconciliation writes one audit entry per object, so
//! that entry is stored as a row of plain text columns, not as a JSON document, and rendered in
//! IDM's JSON shape when it is read (docs/rest.md#audit). A row costs one B-tree insert of a
//! few hundred bytes instead of a JSON document serialized in the writer plus three indexes.
//!
//! Only entries of exactly the recon decision shape take this path — `entryType` `entry`, and
//! every key of [`FIELDS`] present with a string or null value, nothing else — so what is read
//! back is exactly what was written, key order included. Anything else stays a full JSON row.

use crate::model::{AuditEntry, AuditKind};
use serde_json::Value;

/// The JSON keys of a recon decision after `entryType`, in the order the engine writes them,
/// with the column of the narrow table that holds each.
pub const FIELDS: [(&str, &str); 14] = [
    ("reconId", "recon_id"),
    ("mapping", "mapping"),
    ("situation", "situation"),
    ("action", "action"),
    ("sourceObjectId", "source_object_id"),
    ("targetObjectId", "target_object_id"),
    ("linkQualifier", "link_qualifier"),
    ("status", "status"),
    ("message", "message"),
    ("messageDetail", "message_detail"),
    ("exception", "exception"),
    ("reconciling", "reconciling"),
    ("ambiguousTargetObjectIds", "ambiguous_target_object_ids"),
    ("reconAction", "recon_action"),
];

/// The column values of a recon decision, in [`FIELDS`] order.
pub type Narrow<'a> = [Option<&'a str>; FIELDS.len()];

/// The values of a recon decision, in [`FIELDS`] order, when `entry` has exactly that shape.
pub fn narrow(entry: &AuditEntry) -> Option<Narrow<'_>> {
    if entry.kind != AuditKind::Recon || entry.entry_type.as_deref() != Some("entry") {
        return None;
    }
    let Value::Object(map) = &entry.entry else {
        return None;
    };
    // In order: entryType, the fields, and `_id` when it is the entry's own id — read in one
    // walk of the map (a recon writes one entry per object; no key is hashed).
    let mut keys = map.iter();
    match keys.next() {
        Some((k, Value::String(v))) if k == "entryType" && v == "entry" => {}
        _ => return None,
    }
    let mut out = [None; FIELDS.len()];
    for (slot, (name, _)) in out.iter_mut().zip(FIELDS) {
        let (key, value) = keys.next()?;
        if key != name {
            return None;
        }
        *slot = match value {
            Value::Null => None,
            Value::String(s) => Some(s.as_str()),
            _ => return None,
        };
    }
    match keys.next() {
        None => {}
        Some((k, Value::String(id))) if k == "_id" && *id == entry.id => {}
        _ => return None,
    }
    if keys.next().is_some() {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(v: Value) -> AuditEntry {
        AuditEntry {
            id: "e1".into(),
            kind: AuditKind::Recon,
            timestamp: chrono::Utc::now(),
            recon_id: Some("r".into()),
            mapping: Some("m".into()),
            entry_type: Some("entry".into()),
            entry: v,
        }
    }

    fn decision() -> Value {
        let mut m = serde_json::Map::new();
        m.insert("entryType".into(), json!("entry"));
        for (k, _) in FIELDS {
            m.insert(k.into(), json!(format!("v-{k}")));
        }
        m.insert("message".into(), Value::Null);
        Value::Object(m)
    }

    #[test]
    fn a_decision_is_narrow_and_anything_else_is_not() {
        let d = decision();
        let e = entry(d.clone());
        let row = narrow(&e).unwrap_or_else(|| panic!("narrow"));
        assert_eq!(row[0], Some("v-reconId"));
        assert_eq!(row[8], None, "message is null");

        let mut extra = d.clone();
        extra["timestamp"] = json!("t");
        assert!(narrow(&entry(extra)).is_none(), "an extra key");

        let mut missing = d.clone();
        missing.as_object_mut().map(|m| m.shift_remove("exception"));
        assert!(narrow(&entry(missing)).is_none(), "a missing key");

        let mut number = d.clone();
        number["status"] = json!(1);
        assert!(narrow(&entry(number)).is_none(), "a non-string value");

        let mut own_id = d.clone();
        own_id["_id"] = json!("e1");
        assert!(narrow(&entry(own_id)).is_some(), "its own id");
        let mut other_id = d.clone();
        other_id["_id"] = json!("x");
        assert!(narrow(&entry(other_id)).is_none(), "another id");

        let mut start = entry(d);
        start.entry_type = Some("start".into());
        assert!(narrow(&start).is_none(), "not a decision");
    }
}
