//! The attribute diff between a target as it is and as an UPDATE would write it: the `diff` of a
//! dry-run plan entry (docs/rest.md) and the "did anything change" answer of UPDATE (reference
//! §2.6). Pure comparison of two JSON values; it never decides whether to write.

use idsync_core::JsonPointer;
use serde::Serialize;
use serde_json::{Map, Value};

/// The kind of one diff entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DiffOperation {
    /// The field is absent from the old object.
    Add,
    /// The field is in both, with different values.
    Replace,
    /// The field is absent from the new object.
    Remove,
}

/// One changed field, serialized as docs/rest.md's
/// `{"operation","field","oldValue","value"}` (`oldValue` absent for add, `value` for remove).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiffEntry {
    pub operation: DiffOperation,
    pub field: JsonPointer,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_value: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

/// The fields of the top level that are bookkeeping of the store, not attributes.
const IGNORED: [&str; 2] = ["_id", "_rev"];

/// The changes from `old` to `new`, in the order of `old`'s fields then `new`'s new fields.
///
/// Objects are compared field by field, recursively, so a changed `/name/given` is reported as
/// that field; arrays and scalars are compared as whole values (a changed array is one
/// `replace`, as a connector writes a multi-valued attribute as a whole). `_id` and `_rev` at the
/// top level are ignored. A null side counts as an empty object, so the diff of a CREATE
/// (`diff(&Value::Null, &new)`) lists every field as an `add` and that of a DELETE every field
/// as a `remove`. Any other non-object top level compares as a whole at the root pointer.
pub fn diff(old: &Value, new: &Value) -> Vec<DiffEntry> {
    let empty = Map::new();
    fn as_object<'a>(
        v: &'a Value,
        empty: &'a Map<String, Value>,
    ) -> Option<&'a Map<String, Value>> {
        match v {
            Value::Object(m) => Some(m),
            Value::Null => Some(empty),
            _ => None,
        }
    }
    let mut out = Vec::new();
    match (as_object(old, &empty), as_object(new, &empty)) {
        (Some(o), Some(n)) => diff_objects(&JsonPointer::root(), o, n, true, &mut out),
        _ if old == new => {}
        _ => out.push(DiffEntry {
            operation: DiffOperation::Replace,
            field: JsonPointer::root(),
            old_value: Some(old.clone()),
            value: Some(new.clone()),
        }),
    }
    out
}

fn diff_objects(
    at: &JsonPointer,
    old: &Map<String, Value>,
    new: &Map<String, Value>,
    top: bool,
    out: &mut Vec<DiffEntry>,
) {
    let ignored = |k: &str| top && IGNORED.contains(&k);
    for (key, old_value) in old.iter().filter(|(k, _)| !ignored(k)) {
        let field = at.child(key.as_str());
        match new.get(key) {
            None => out.push(DiffEntry {
                operation: DiffOperation::Remove,
                field,
                old_value: Some(old_value.clone()),
                value: None,
            }),
            Some(Value::Object(n)) if old_value.is_object() => {
                if let Value::Object(o) = old_value {
                    diff_objects(&field, o, n, false, out);
                }
            }
            Some(new_value) if new_value == old_value => {}
            Some(new_value) => out.push(DiffEntry {
                operation: DiffOperation::Replace,
                field,
                old_value: Some(old_value.clone()),
                value: Some(new_value.clone()),
            }),
        }
    }
    for (key, new_value) in new
        .iter()
        .filter(|(k, _)| !ignored(k) && !old.contains_key(*k))
    {
        out.push(DiffEntry {
            operation: DiffOperation::Add,
            field: at.child(key.as_str()),
            old_value: None,
            value: Some(new_value.clone()),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ops(d: &[DiffEntry]) -> Vec<(DiffOperation, String)> {
        d.iter()
            .map(|e| (e.operation, e.field.to_string()))
            .collect()
    }

    #[test]
    fn equal_objects_have_no_diff_whatever_the_key_order() {
        let a = json!({"a": 1, "b": {"c": [1, 2]}});
        let b = json!({"b": {"c": [1, 2]}, "a": 1});
        assert!(diff(&a, &b).is_empty());
    }

    #[test]
    fn add_replace_remove_with_values() {
        let old = json!({"_id": "1", "_rev": "3", "mail": "a@x", "phone": "1", "gone": true});
        let new = json!({"_id": "1", "mail": "b@x", "phone": "1", "title": null});
        let d = diff(&old, &new);
        assert_eq!(
            ops(&d),
            [
                (DiffOperation::Replace, "/mail".to_string()),
                (DiffOperation::Remove, "/gone".to_string()),
                (DiffOperation::Add, "/title".to_string()),
            ]
        );
        assert_eq!(
            serde_json::to_value(&d).unwrap(),
            json!([
                {"operation": "replace", "field": "/mail", "oldValue": "a@x", "value": "b@x"},
                {"operation": "remove", "field": "/gone", "oldValue": true},
                {"operation": "add", "field": "/title", "value": null},
            ])
        );
    }

    #[test]
    fn id_and_rev_are_ignored_only_at_the_top() {
        let old = json!({"_id": "1", "_rev": "1", "ref": {"_id": "a"}});
        let new = json!({"_id": "2", "_rev": "9", "ref": {"_id": "b"}});
        assert_eq!(
            ops(&diff(&old, &new)),
            [(DiffOperation::Replace, "/ref/_id".to_string())]
        );
    }

    #[test]
    fn nested_objects_recurse_and_arrays_are_whole_values() {
        let old = json!({"name": {"given": "Ann", "family": "Lee"}, "roles": ["a", "b"]});
        let new = json!({"name": {"given": "Anne", "family": "Lee"}, "roles": ["b", "a"]});
        assert_eq!(
            ops(&diff(&old, &new)),
            [
                (DiffOperation::Replace, "/name/given".to_string()),
                (DiffOperation::Replace, "/roles".to_string()),
            ]
        );
    }

    #[test]
    fn an_object_replacing_a_scalar_is_one_replace() {
        let old = json!({"name": "Ann"});
        let new = json!({"name": {"given": "Ann"}});
        let d = diff(&old, &new);
        assert_eq!(ops(&d), [(DiffOperation::Replace, "/name".to_string())]);
        assert_eq!(d[0].value, Some(json!({"given": "Ann"})));
    }

    #[test]
    fn null_and_missing_differ() {
        assert_eq!(
            ops(&diff(&json!({"a": null}), &json!({}))),
            [(DiffOperation::Remove, "/a".to_string())]
        );
        assert_eq!(
            ops(&diff(&json!({}), &json!({"a": null}))),
            [(DiffOperation::Add, "/a".to_string())]
        );
    }

    #[test]
    fn null_is_an_empty_object_so_create_and_delete_list_fields() {
        assert!(diff(&json!(null), &json!(null)).is_empty());
        let created = json!({"_id": "x", "mail": "a@x", "name": {"given": "A"}});
        assert_eq!(
            ops(&diff(&json!(null), &created)),
            [
                (DiffOperation::Add, "/mail".to_string()),
                (DiffOperation::Add, "/name".to_string())
            ]
        );
        assert_eq!(
            ops(&diff(&created, &json!(null))),
            [
                (DiffOperation::Remove, "/mail".to_string()),
                (DiffOperation::Remove, "/name".to_string())
            ]
        );
    }

    #[test]
    fn other_non_objects_compare_at_the_root() {
        assert!(diff(&json!([1]), &json!([1])).is_empty());
        assert_eq!(
            ops(&diff(&json!("a"), &json!({}))),
            [(DiffOperation::Replace, String::new())]
        );
    }
}
