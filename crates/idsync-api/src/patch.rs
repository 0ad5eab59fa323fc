//! IDM/CREST patch operations on JSON objects: `add`, `remove`, `replace`, `increment`, `copy`
//! and `move` over JSON pointers (the script-free subset; `transform` needs the script engine
//! and is refused). Pure: no I/O.
//!
//! Semantics (IDM's documented PATCH behaviour):
//! - `add` on a single-valued or missing field sets it (creating parents); on an array it
//!   appends the value(s) not already present; `field/-` appends; `field/N` inserts at N.
//! - `remove` without a value removes the field; with a value on an array it removes those
//!   elements; with a value on a scalar it removes the field only when the value is equal.
//! - `replace` sets the field; a `null` value removes it.
//! - `increment` adds a number to a numeric field (a missing field is an error).
//! - `copy` / `move` take `from`.
//!
//! `_id` cannot be patched and `_rev` is the repository's: both are refused.

use crate::error::{ApiError, ApiResult};
use idsync_core::JsonPointer;
use serde_json::Value;

/// Applies a CREST patch document (an array of operations) to `object`, whose compact JSON may
/// not grow past `max_bytes` on the way: `copy` can double an object with each operation, so
/// the size is tracked as operations apply, not only checked at the end (the caller checks the
/// result's depth and size before storing it).
pub fn apply_patch(object: &mut Value, patch: &Value, max_bytes: usize) -> ApiResult<()> {
    let ops = patch.as_array().ok_or_else(|| {
        ApiError::BadRequest("a PATCH body must be an array of patch operations".into())
    })?;
    // An upper bound of the object's size: each operation adds at most the size of the value
    // it places. When the bound passes the limit the real size is measured again.
    let mut bound = crate::limits::json_size(object, max_bytes);
    for (i, op) in ops.iter().enumerate() {
        let added = apply_one(object, op).map_err(|e| match e {
            ApiError::BadRequest(m) => ApiError::BadRequest(format!("patch operation {i}: {m}")),
            other => other,
        })?;
        bound = bound.saturating_add(added);
        if bound > max_bytes {
            bound = crate::limits::json_size(object, max_bytes);
            if bound > max_bytes {
                return Err(ApiError::BadRequest(format!(
                    "patch operation {i}: the object would be larger than the limit of {max_bytes} bytes"
                )));
            }
        }
    }
    Ok(())
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::BadRequest(msg.into())
}

fn pointer_of(op: &Value, key: &str) -> ApiResult<JsonPointer> {
    let text = op
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("\"{key}\" must be a JSON pointer string")))?;
    let p = JsonPointer::parse(text);
    if p.is_root() {
        return Err(bad(format!(
            "\"{key}\" must name a field, not the whole object"
        )));
    }
    if matches!(p.first(), Some("_id" | "_rev")) {
        return Err(bad(format!("{} cannot be patched", p)));
    }
    Ok(p)
}

/// Applies one operation; answers an upper bound of the bytes it added to the object.
fn apply_one(object: &mut Value, op: &Value) -> ApiResult<usize> {
    let name = op
        .get("operation")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("each operation needs an \"operation\" string"))?;
    let field = pointer_of(op, "field")?;
    let value = op.get("value");
    // Values from the body are bounded by the body; a copied value by the object itself.
    let placed = |v: &Value| crate::limits::json_size(v, usize::MAX) + field.to_string().len() + 4;
    if name == "copy" || name == "move" {
        let from = pointer_of(op, "from")?;
        let v = from
            .get(object)
            .cloned()
            .ok_or_else(|| bad(format!("{name}: the field {from} does not exist")))?;
        let added = placed(&v);
        if name == "move" {
            from.remove(object);
        }
        set(object, &field, v)?;
        return Ok(added);
    }
    let added = value.map_or(0, placed);
    apply_value_op(object, name, &field, value)?;
    Ok(added)
}

fn apply_value_op(
    object: &mut Value,
    name: &str,
    field: &JsonPointer,
    value: Option<&Value>,
) -> ApiResult<()> {
    let field = field.clone();
    match name {
        "add" => add(object, &field, required(value, name)?.clone()),
        "remove" => {
            remove(object, &field, value);
            Ok(())
        }
        "replace" => match value {
            None | Some(Value::Null) => {
                field.remove(object);
                Ok(())
            }
            Some(v) => set(object, &field, v.clone()),
        },
        "increment" => increment(object, &field, required(value, name)?),
        "transform" => Err(ApiError::NotSupported(
            "the transform patch operation is not supported".into(),
        )),
        other => Err(bad(format!(
            "unknown operation \"{other}\" (add, remove, replace, increment, copy, move)"
        ))),
    }
}

fn required<'a>(value: Option<&'a Value>, op: &str) -> ApiResult<&'a Value> {
    value.ok_or_else(|| bad(format!("{op} needs a \"value\"")))
}

fn set(object: &mut Value, field: &JsonPointer, v: Value) -> ApiResult<()> {
    field.set(object, v).map_err(|e| bad(e.to_string()))
}

fn add(object: &mut Value, field: &JsonPointer, v: Value) -> ApiResult<()> {
    let tokens = field.tokens();
    let (last, parent_tokens) = tokens
        .split_last()
        .ok_or_else(|| bad("add needs a field"))?;
    let parent = JsonPointer::from_tokens(parent_tokens.iter().cloned());
    // `field/-` on a field that is not there yet starts the array (CREST, as IDM's
    // `add /roles/-` on a user without roles).
    if last == "-" && !parent_tokens.is_empty() && parent.get(object).is_none_or(Value::is_null) {
        return set(object, &parent, Value::Array(vec![v]));
    }
    // `field/-` and `field/N` address an element of an existing array.
    if let Some(Value::Array(arr)) = parent_lookup_mut(object, &parent) {
        if last == "-" {
            arr.push(v);
            return Ok(());
        }
        if let Ok(i) = last.parse::<usize>() {
            if i > arr.len() {
                return Err(bad(format!("index {i} is past the end of {parent}")));
            }
            arr.insert(i, v);
            return Ok(());
        }
    }
    match field.get(object) {
        Some(Value::Array(_)) => {
            let new_items = match v {
                Value::Array(items) => items,
                single => vec![single],
            };
            if let Some(Value::Array(arr)) = parent_lookup_mut(object, field) {
                for item in new_items {
                    if !arr.contains(&item) {
                        arr.push(item);
                    }
                }
            }
            Ok(())
        }
        _ => set(object, field, v),
    }
}

fn parent_lookup_mut<'a>(object: &'a mut Value, p: &JsonPointer) -> Option<&'a mut Value> {
    p.tokens().iter().try_fold(object, |v, t| match v {
        Value::Object(m) => m.get_mut(t),
        Value::Array(a) => t.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
        _ => None,
    })
}

fn remove(object: &mut Value, field: &JsonPointer, value: Option<&Value>) {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        field.remove(object);
        return;
    };
    match parent_lookup_mut(object, field) {
        Some(Value::Array(arr)) => {
            let drop: Vec<Value> = match value {
                Value::Array(items) => items.clone(),
                single => vec![single.clone()],
            };
            arr.retain(|x| !drop.contains(x));
        }
        Some(current) if current == value => {
            field.remove(object);
        }
        _ => {}
    }
}

fn increment(object: &mut Value, field: &JsonPointer, by: &Value) -> ApiResult<()> {
    let by = by
        .as_number()
        .ok_or_else(|| bad("increment needs a numeric value"))?
        .clone();
    let current = field
        .get(object)
        .ok_or_else(|| bad(format!("increment: the field {field} does not exist")))?;
    let cur = current
        .as_number()
        .ok_or_else(|| bad(format!("increment: the field {field} is not a number")))?;
    let sum = match (cur.as_i64(), by.as_i64()) {
        (Some(a), Some(b)) => a
            .checked_add(b)
            .map(Value::from)
            .ok_or_else(|| bad("increment overflows"))?,
        _ => {
            let a = cur.as_f64().unwrap_or(0.0);
            let b = by.as_f64().unwrap_or(0.0);
            serde_json::Number::from_f64(a + b)
                .map(Value::Number)
                .ok_or_else(|| bad("increment gives a non-finite number"))?
        }
    };
    set(object, field, sum)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patched(mut obj: Value, patch: Value) -> Value {
        apply_patch(&mut obj, &patch, usize::MAX).unwrap();
        obj
    }

    #[test]
    fn replace_add_remove_increment() {
        let obj = json!({"_id":"1","mail":"a@x","roles":["r1"],"n":1,"o":{"k":1}});
        assert_eq!(
            patched(
                obj.clone(),
                json!([{"operation":"replace","field":"/mail","value":"b@x"}])
            )["mail"],
            "b@x"
        );
        assert_eq!(
            patched(
                obj.clone(),
                json!([{"operation":"replace","field":"mail","value":null}])
            )
            .get("mail"),
            None
        );
        assert_eq!(
            patched(
                obj.clone(),
                json!([{"operation":"add","field":"/roles","value":"r2"},
                       {"operation":"add","field":"/roles","value":["r1","r3"]}])
            )["roles"],
            json!(["r1", "r2", "r3"])
        );
        assert_eq!(
            patched(
                obj.clone(),
                json!([{"operation":"add","field":"/roles/-","value":"r1"}])
            )["roles"],
            json!(["r1", "r1"])
        );
        assert_eq!(
            patched(
                json!({"_id": "1"}),
                json!([{"operation":"add","field":"/roles/-","value":{"_ref":"managed/role/a"}}])
            )["roles"],
            json!([{"_ref": "managed/role/a"}]),
            "an append to a field not there yet starts the array"
        );
        assert_eq!(
            patched(
                obj.clone(),
                json!([{"operation":"add","field":"/o/p/q","value":2}])
            )["o"],
            json!({"k":1,"p":{"q":2}})
        );
        assert_eq!(
            patched(
                obj.clone(),
                json!([{"operation":"remove","field":"/roles","value":"r1"}])
            )["roles"],
            json!([])
        );
        assert_eq!(
            patched(obj.clone(), json!([{"operation":"remove","field":"/o"}])).get("o"),
            None
        );
        assert_eq!(
            patched(
                obj.clone(),
                json!([{"operation":"increment","field":"/n","value":41}])
            )["n"],
            42
        );
        let moved = patched(
            obj,
            json!([{"operation":"move","from":"/mail","field":"/email"}]),
        );
        assert_eq!(moved["email"], "a@x");
        assert_eq!(moved.get("mail"), None);
    }

    #[test]
    fn bad_patches_are_bad_requests() {
        for patch in [
            json!({"operation":"add"}),
            json!([{"operation":"frobnicate","field":"/a"}]),
            json!([{"operation":"replace","field":"/_id","value":"x"}]),
            json!([{"operation":"increment","field":"/mail","value":1}]),
            json!([{"operation":"increment","field":"/missing","value":1}]),
            json!([{"operation":"add","field":"/a"}]),
            json!([{"field":"/a","value":1}]),
        ] {
            let mut obj = json!({"mail":"a"});
            let e = apply_patch(&mut obj, &patch, usize::MAX).unwrap_err();
            assert!(matches!(e, ApiError::BadRequest(_)), "{patch}: {e:?}");
        }
    }
}
