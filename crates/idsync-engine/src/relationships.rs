//! IDM's relationships as values of their owning managed object (docs/adr/0013-relationships.md,
//! docs/configuration.md#relationship-properties): what an entry looks like, how a write
//! gives each entry its `_id` and `_rev`, which entries a read hides, and which entries of the
//! other side a reverse relationship changes.
//!
//! An entry is `{"_ref": "<resource path>", "_refProperties": {"_id", "_rev", ...}}`, stored
//! in the owning object's document under the property's name (an array for a collection). A
//! plain string (`"managed/role/<id>"`, as IDM's older samples write) is kept as written: it has
//! no `_id`, so it cannot be addressed on its own. This module only computes values: the REST
//! API reads and stores them.

use idsync_config::RelationshipField;
use idsync_core::JsonPointer;
use serde_json::{Map, Value, json};

/// A relationship value the request got wrong (a 400).
pub type BadValue = String;

/// The first revision of an entry.
const FIRST_REV: &str = "1";

/// The revision after `rev`: entries count their writes.
pub fn next_rev(rev: Option<&str>) -> String {
    match rev.and_then(|r| r.parse::<u64>().ok()) {
        Some(n) => (n + 1).to_string(),
        None => FIRST_REV.to_string(),
    }
}

/// A new entry id. Random (UUIDv4) as IDM's: entries are few per object, nothing is gained by
/// ordering them.
pub fn new_entry_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The entry's `_refProperties._id`, if it has one.
pub fn entry_id(entry: &Value) -> Option<&str> {
    entry.get("_refProperties")?.get("_id")?.as_str()
}

/// The entry's `_refProperties._rev`, if it has one.
pub fn entry_rev(entry: &Value) -> Option<&str> {
    entry.get("_refProperties")?.get("_rev")?.as_str()
}

/// The entries of `field` in `object` as the relationship endpoints answer them: a plain
/// string is `{"_ref": s, "_refProperties": {}}`.
pub fn entries(field: &RelationshipField, object: &Value) -> Vec<Value> {
    let as_entry = |v: &Value| match v {
        Value::String(s) => Some(json!({"_ref": s, "_refProperties": {}})),
        Value::Object(_) => Some(v.clone()),
        _ => None,
    };
    match object.get(&field.name) {
        Some(Value::Array(items)) if field.collection => {
            items.iter().filter_map(as_entry).collect()
        }
        Some(v) if !field.collection => as_entry(v).into_iter().collect(),
        _ => Vec::new(),
    }
}

/// The entry of `field` whose `_id` is `rel_id`.
pub fn find(field: &RelationshipField, object: &Value, rel_id: &str) -> Option<Value> {
    entries(field, object)
        .into_iter()
        .find(|e| entry_id(e) == Some(rel_id))
}

/// Adds `entry` to `field` (a single relationship is replaced).
pub fn insert(field: &RelationshipField, object: &mut Value, entry: Value) {
    let Some(o) = object.as_object_mut() else {
        return;
    };
    if field.collection {
        match o.get_mut(&field.name) {
            Some(Value::Array(items)) => items.push(entry),
            _ => {
                o.insert(field.name.clone(), Value::Array(vec![entry]));
            }
        }
    } else {
        o.insert(field.name.clone(), entry);
    }
}

/// Replaces the entry whose `_id` is `rel_id` by `entry`; false when there is none.
pub fn replace(field: &RelationshipField, object: &mut Value, rel_id: &str, entry: Value) -> bool {
    match object.get_mut(&field.name) {
        Some(Value::Array(items)) if field.collection => {
            match items.iter_mut().find(|e| entry_id(e) == Some(rel_id)) {
                Some(slot) => {
                    *slot = entry;
                    true
                }
                None => false,
            }
        }
        Some(slot) if !field.collection && entry_id(slot) == Some(rel_id) => {
            *slot = entry;
            true
        }
        _ => false,
    }
}

/// Removes the entry whose `_id` is `rel_id` and returns it.
pub fn remove(field: &RelationshipField, object: &mut Value, rel_id: &str) -> Option<Value> {
    let o = object.as_object_mut()?;
    match o.get_mut(&field.name) {
        Some(Value::Array(items)) if field.collection => {
            let at = items.iter().position(|e| entry_id(e) == Some(rel_id))?;
            Some(items.remove(at))
        }
        Some(slot) if !field.collection && entry_id(slot) == Some(rel_id) => {
            let old = std::mem::take(slot);
            o.shift_remove(&field.name);
            Some(old)
        }
        _ => None,
    }
}

/// An entry as a request writes it, checked: an object with a non-empty string `_ref` and
/// an object (or no) `_refProperties`. Its `_id` and `_rev` are set by the caller.
fn checked(field: &str, body: &Value) -> Result<(String, Map<String, Value>), BadValue> {
    let Value::Object(o) = body else {
        return Err(format!(
            "a relationship of {field} must be an object with _ref, not {body}"
        ));
    };
    let r = match o.get("_ref") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim_matches('/').to_string(),
        _ => {
            return Err(format!(
                "a relationship of {field} needs _ref, the path of the object it refers to"
            ));
        }
    };
    let props = match o.get("_refProperties") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(p)) => p.clone(),
        Some(other) => {
            return Err(format!(
                "_refProperties of a relationship of {field} must be an object, not {other}"
            ));
        }
    };
    Ok((r, props))
}

fn build(r: String, mut props: Map<String, Value>, id: &str, rev: String) -> Value {
    props.shift_remove("_id");
    props.shift_remove("_rev");
    let mut out = Map::new();
    out.insert("_id".into(), Value::String(id.to_string()));
    out.insert("_rev".into(), Value::String(rev));
    out.extend(props);
    json!({"_ref": r, "_refProperties": out})
}

/// A new entry from a request body, with id `id` and the first revision.
pub fn new_entry(field: &str, body: &Value, id: &str) -> Result<Value, BadValue> {
    let (r, props) = checked(field, body)?;
    Ok(build(r, props, id, FIRST_REV.to_string()))
}

/// `old` replaced by the request body `body`: the same `_id`; the revision moves on when the
/// reference or a property changed, as IDM's relationship updates do.
pub fn updated_entry(field: &str, old: &Value, body: &Value) -> Result<Value, BadValue> {
    let (r, props) = checked(field, body)?;
    let id = entry_id(old).unwrap_or_default().to_string();
    let old_rev = entry_rev(old).map(str::to_string);
    let same = build(
        r.clone(),
        props.clone(),
        &id,
        old_rev.clone().unwrap_or_default(),
    );
    if same == *old {
        return Ok(same);
    }
    Ok(build(r, props, &id, next_rev(old_rev.as_deref())))
}

/// Gives every entry of `object`'s relationship properties its `_id` and `_rev`, as a write of
/// the whole object (create, PUT, PATCH) stores them: an entry that keeps the `_id` of an entry
/// of `before` keeps its revision when unchanged and moves it on otherwise; a new entry gets a
/// new `_id` (unless it brings one) and the first revision. Plain strings stay as written.
pub fn prepare_write(
    fields: &[RelationshipField],
    before: Option<&Value>,
    object: &mut Value,
) -> Result<(), BadValue> {
    for field in fields {
        let old: Vec<Value> = before.map(|b| entries(field, b)).unwrap_or_default();
        let Some(value) = object.get_mut(&field.name) else {
            continue;
        };
        let normalize = |v: &mut Value| -> Result<(), BadValue> {
            if v.is_string() || v.is_null() {
                return Ok(());
            }
            let given = entry_id(v).map(str::to_string);
            let previous = given
                .as_deref()
                .and_then(|id| old.iter().find(|e| entry_id(e) == Some(id)));
            *v = match previous {
                Some(p) => updated_entry(&field.name, p, v)?,
                None => {
                    let id = given.unwrap_or_else(new_entry_id);
                    new_entry(&field.name, v, &id)?
                }
            };
            Ok(())
        };
        match value {
            Value::Array(items) if field.collection => {
                for item in items.iter_mut() {
                    if item.is_null() {
                        return Err(format!("{} cannot hold null", field.name));
                    }
                    normalize(item)?;
                }
            }
            Value::Array(_) => {
                return Err(format!(
                    "{} holds one relationship, not an array",
                    field.name
                ));
            }
            Value::Null if field.collection => {}
            v if field.collection => {
                return Err(format!(
                    "{} holds an array of relationships, not {v}",
                    field.name
                ));
            }
            v => normalize(v)?,
        }
    }
    Ok(())
}

/// For a PUT, which replaces the whole object: the relationship properties the body does not
/// have keep their stored entries (as in IDM, a write changes only the relationships it names;
/// a client that never read a hidden property cannot send it back).
pub fn keep_absent(fields: &[RelationshipField], before: &Value, object: &mut Value) {
    let Some(o) = object.as_object_mut() else {
        return;
    };
    for field in fields {
        if !o.contains_key(&field.name)
            && let Some(v) = before.get(&field.name)
        {
            o.insert(field.name.clone(), v.clone());
        }
    }
}

/// Removes from an answered object the relationship properties not returned by default that
/// `requested` (`_fields`) does not name (IDM's rule: a read includes a relationship only with
/// `returnByDefault` or when asked for).
pub fn hide_unrequested(
    fields: &[RelationshipField],
    object: &mut Value,
    requested: Option<&[JsonPointer]>,
) {
    let Some(o) = object.as_object_mut() else {
        return;
    };
    for field in fields.iter().filter(|f| !f.return_by_default) {
        let asked = requested.is_some_and(|r| {
            r.iter()
                .any(|p| p.is_root() || p.first() == Some(field.name.as_str()))
        });
        if !asked {
            o.shift_remove(&field.name);
        }
    }
}

/// `managed/<type>/<id>` of a reference, when it names a managed object.
pub fn managed_ref(r: &str) -> Option<(&str, &str)> {
    let rest = r.trim_start_matches('/').strip_prefix("managed/")?;
    let (t, id) = rest.split_once('/')?;
    (!t.is_empty() && !id.is_empty() && !id.contains('/')).then_some((t, id))
}

/// The other side of an entry of a reverse relationship: the same `_refProperties` (same
/// `_id` and `_rev`), referring back to the owner `managed/<owner_type>/<owner_id>`.
pub fn mirror_entry(entry: &Value, owner_type: &str, owner_id: &str) -> Value {
    json!({
        "_ref": format!("managed/{owner_type}/{owner_id}"),
        "_refProperties": entry.get("_refProperties").cloned().unwrap_or_else(|| json!({})),
    })
}

/// What a change of the owner's reverse relationship does to one entry of the other side.
#[derive(Debug, Clone, PartialEq)]
pub enum MirrorChange {
    /// Add the entry, or replace the entry of the same `_id`.
    Upsert(Value),
    /// Remove the entry of this `_id`.
    Remove(String),
}

/// The changes a write of a reverse relationship property makes on the other side, by
/// referenced managed object: `(type, id, change)`. Entries are matched by `_id`; an entry
/// whose reference moved is removed from its old object and added to its new one. Entries that
/// do not refer to a managed object (or are plain strings) have no other side.
pub fn mirror_changes(
    field: &RelationshipField,
    owner_type: &str,
    owner_id: &str,
    before: Option<&Value>,
    after: Option<&Value>,
) -> Vec<(String, String, MirrorChange)> {
    let keyed = |o: Option<&Value>| -> Vec<(String, String, String, Value)> {
        o.map(|o| entries(field, o))
            .unwrap_or_default()
            .into_iter()
            .filter_map(|e| {
                let id = entry_id(&e)?.to_string();
                let (t, tid) = managed_ref(e.get("_ref")?.as_str()?)?;
                Some((id, t.to_string(), tid.to_string(), e.clone()))
            })
            .collect()
    };
    let (old, new) = (keyed(before), keyed(after));
    let mut out = Vec::new();
    for (id, t, tid, _) in &old {
        let moved_or_gone = !new
            .iter()
            .any(|(nid, nt, ntid, _)| nid == id && nt == t && ntid == tid);
        if moved_or_gone {
            out.push((t.clone(), tid.clone(), MirrorChange::Remove(id.clone())));
        }
    }
    for (id, t, tid, e) in &new {
        let unchanged = old.iter().any(|(oid, _, _, oe)| oid == id && oe == e);
        if !unchanged {
            out.push((
                t.clone(),
                tid.clone(),
                MirrorChange::Upsert(mirror_entry(e, owner_type, owner_id)),
            ));
        }
    }
    out
}

/// The managed objects (`(type, id)`) that the entries of `field` in `after` refer to and that
/// were not referred to by the same entry before: what a `validate` relationship must find.
pub fn new_managed_refs(
    field: &RelationshipField,
    before: Option<&Value>,
    after: Option<&Value>,
) -> Vec<(String, String)> {
    let old = before.map(|b| entries(field, b)).unwrap_or_default();
    let mut out: Vec<(String, String)> = Vec::new();
    for e in after.map(|a| entries(field, a)).unwrap_or_default() {
        let Some(r) = e.get("_ref").and_then(Value::as_str) else {
            continue;
        };
        let known = old
            .iter()
            .any(|o| o.get("_ref").and_then(Value::as_str) == Some(r));
        if let Some((t, id)) = managed_ref(r)
            && !known
            && !out.iter().any(|(ot, oid)| ot == t && oid == id)
        {
            out.push((t.to_string(), id.to_string()));
        }
    }
    out
}

/// Applies one mirror change to the other side's property `field` of `object`.
pub fn apply_mirror(field: &RelationshipField, object: &mut Value, change: &MirrorChange) {
    match change {
        MirrorChange::Upsert(entry) => {
            let id = entry_id(entry).unwrap_or_default().to_string();
            if !replace(field, object, &id, entry.clone()) {
                insert(field, object, entry.clone());
            }
        }
        MirrorChange::Remove(id) => {
            remove(field, object, id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coll(name: &str) -> RelationshipField {
        RelationshipField {
            name: name.into(),
            collection: true,
            return_by_default: false,
            reverse_property: None,
            resource_paths: Vec::new(),
            validate: false,
        }
    }

    #[test]
    fn a_write_gives_entries_ids_and_moves_revisions_only_on_change() {
        let f = [coll("accounts")];
        let mut first = json!({"accounts": [
            {"_ref": "system/ldap/account/a", "_refProperties": {"active": true}},
            "managed/role/r1"
        ]});
        prepare_write(&f, None, &mut first).unwrap();
        let e = &first["accounts"][0];
        let id = entry_id(e).unwrap().to_string();
        assert_eq!(entry_rev(e), Some("1"));
        assert_eq!(e["_refProperties"]["active"], true);
        assert_eq!(first["accounts"][1], "managed/role/r1", "strings stay");

        // The same entry sent back unchanged keeps its revision; a changed one moves on.
        let mut same = first.clone();
        prepare_write(&f, Some(&first), &mut same).unwrap();
        assert_eq!(same, first);
        let mut changed = first.clone();
        changed["accounts"][0]["_refProperties"]["active"] = json!(false);
        prepare_write(&f, Some(&first), &mut changed).unwrap();
        assert_eq!(entry_id(&changed["accounts"][0]), Some(id.as_str()));
        assert_eq!(entry_rev(&changed["accounts"][0]), Some("2"));

        let mut bad = json!({"accounts": [{"_refProperties": {}}]});
        assert!(
            prepare_write(&f, None, &mut bad)
                .unwrap_err()
                .contains("_ref")
        );
        let mut bad = json!({"accounts": {"_ref": "x"}});
        assert!(prepare_write(&f, None, &mut bad).is_err());
    }

    #[test]
    fn entries_are_found_replaced_and_removed_by_id() {
        let f = coll("accounts");
        let mut o = json!({});
        insert(
            &f,
            &mut o,
            new_entry("accounts", &json!({"_ref": "a/b"}), "e1").unwrap(),
        );
        insert(
            &f,
            &mut o,
            new_entry("accounts", &json!({"_ref": "a/c"}), "e2").unwrap(),
        );
        assert_eq!(entries(&f, &o).len(), 2);
        let old = find(&f, &o, "e2").unwrap();
        let new = updated_entry("accounts", &old, &json!({"_ref": "a/d"})).unwrap();
        assert_eq!(entry_rev(&new), Some("2"));
        assert!(replace(&f, &mut o, "e2", new));
        assert_eq!(find(&f, &o, "e2").unwrap()["_ref"], "a/d");
        assert!(remove(&f, &mut o, "e1").is_some());
        assert!(find(&f, &o, "e1").is_none());
        assert!(remove(&f, &mut o, "e1").is_none());
    }

    #[test]
    fn reads_hide_what_is_not_returned_by_default_unless_asked_for() {
        let mut shown = coll("roles");
        shown.return_by_default = true;
        let f = [coll("accounts"), shown];
        let stored = json!({"_id": "u", "accounts": [], "roles": [], "mail": "m"});
        let mut o = stored.clone();
        hide_unrequested(&f, &mut o, None);
        assert_eq!(o, json!({"_id": "u", "roles": [], "mail": "m"}));
        let mut o = stored.clone();
        hide_unrequested(&f, &mut o, Some(&[JsonPointer::parse("accounts")]));
        assert!(o.get("accounts").is_some());
    }

    #[test]
    fn a_reverse_relationship_mirrors_adds_moves_and_removals() {
        let f = coll("roles");
        let e = |id: &str, r: &str| json!({"_ref": r, "_refProperties": {"_id": id, "_rev": "1"}});
        let before = json!({"roles": [e("a", "managed/role/r1"), e("b", "managed/role/r2")]});
        let after = json!({"roles": [e("b", "managed/role/r3"), e("c", "managed/role/r1"), "x"]});
        let changes = mirror_changes(&f, "user", "u1", Some(&before), Some(&after));
        let back = |id: &str| {
            MirrorChange::Upsert(json!({"_ref": "managed/user/u1",
                "_refProperties": {"_id": id, "_rev": "1"}}))
        };
        assert_eq!(
            changes,
            vec![
                ("role".into(), "r1".into(), MirrorChange::Remove("a".into())),
                ("role".into(), "r2".into(), MirrorChange::Remove("b".into())),
                ("role".into(), "r3".into(), back("b")),
                ("role".into(), "r1".into(), back("c")),
            ]
        );
        let mut role = json!({"members": []});
        let members = coll("members");
        apply_mirror(&members, &mut role, &changes[3].2);
        assert_eq!(
            find(&members, &role, "c").unwrap()["_ref"],
            "managed/user/u1"
        );
        apply_mirror(&members, &mut role, &MirrorChange::Remove("c".into()));
        assert!(entries(&members, &role).is_empty());
    }
}
