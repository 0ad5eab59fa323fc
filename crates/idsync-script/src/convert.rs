//! JSON ⇄ JavaScript value conversion. Builds JS values directly (no `JSON.parse` of text),
//! because conversion is the main per-call cost of a transform. Must not evaluate scripts.

use rquickjs::object::Property;
use rquickjs::{Array, Ctx, Object, Type, Value as JsValue};
use serde_json::{Map, Number, Value};

/// Deeper than this is treated as a cycle: real identity objects are a few levels deep.
const MAX_DEPTH: usize = 256;

/// Builds the JavaScript value of a JSON value.
pub(crate) fn to_js<'js>(ctx: &Ctx<'js>, value: &Value) -> rquickjs::Result<JsValue<'js>> {
    Ok(match value {
        Value::Null => JsValue::new_null(ctx.clone()),
        Value::Bool(b) => JsValue::new_bool(ctx.clone(), *b),
        Value::Number(n) => number_to_js(ctx, n),
        Value::String(s) => rquickjs::String::from_str(ctx.clone(), s)?.into_value(),
        Value::Array(items) => {
            let array = Array::new(ctx.clone())?;
            for (index, item) in items.iter().enumerate() {
                array.set(index, to_js(ctx, item)?)?;
            }
            array.into_value()
        }
        Value::Object(map) => object_to_js(ctx, map, None)?.into_value(),
    })
}

/// Builds a JavaScript object from a JSON object; with `only`, just those keys (the ones a
/// script can read, see `usage`), which is what makes a transform on a wide object cheap.
pub(crate) fn object_to_js<'js>(
    ctx: &Ctx<'js>,
    map: &Map<String, Value>,
    only: Option<&[Box<str>]>,
) -> rquickjs::Result<Object<'js>> {
    let object = Object::new(ctx.clone())?;
    match only {
        None => {
            for (key, item) in map {
                define(&object, key, to_js(ctx, item)?)?;
            }
        }
        Some(keys) => {
            for key in keys {
                if let Some(item) = map.get(key.as_ref()) {
                    define(&object, key, to_js(ctx, item)?)?;
                }
            }
        }
    }
    Ok(object)
}

/// Defines (rather than assigns) the property, so a JSON key `__proto__` is an ordinary
/// property as in `JSON.parse`, not a prototype change.
fn define<'js>(object: &Object<'js>, key: &str, value: JsValue<'js>) -> rquickjs::Result<()> {
    if key == "__proto__" {
        object.prop(
            key,
            Property::from(value).writable().enumerable().configurable(),
        )
    } else {
        // Plain assignment is measurably cheaper than a property definition on this engine.
        object.set(key, value)
    }
}

fn number_to_js<'js>(ctx: &Ctx<'js>, n: &Number) -> JsValue<'js> {
    if let Some(small) = n.as_i64().and_then(|i| i32::try_from(i).ok()) {
        return JsValue::new_int(ctx.clone(), small);
    }
    // JavaScript numbers are doubles: larger integers lose precision exactly as in any JS engine.
    JsValue::new_float(ctx.clone(), n.as_f64().unwrap_or(f64::NAN))
}

/// Why a JavaScript value has no JSON form.
#[derive(Debug)]
pub(crate) enum FromJsError {
    NotJson(String),
    Js(rquickjs::Error),
}

impl From<rquickjs::Error> for FromJsError {
    fn from(e: rquickjs::Error) -> Self {
        FromJsError::Js(e)
    }
}

/// Converts a script's result to JSON with `JSON.stringify`'s rules for nested values
/// (`undefined` and functions are left out of objects and become `null` in arrays; NaN and
/// infinities become `null`; `toJSON` is honoured, so a `Date` becomes its ISO string), except
/// at the top: `undefined` is `null`, and a function, symbol or BigInt is an error.
pub(crate) fn from_js(value: &JsValue<'_>) -> Result<Value, FromJsError> {
    match convert(value, 0)? {
        Some(v) => Ok(v),
        None if value.is_undefined() => Ok(Value::Null),
        None => Err(FromJsError::NotJson(format!(
            "a {} has no JSON form",
            kind(value)
        ))),
    }
}

/// `None` means "left out" (undefined, function, symbol), as `JSON.stringify` does.
fn convert(value: &JsValue<'_>, depth: usize) -> Result<Option<Value>, FromJsError> {
    if depth > MAX_DEPTH {
        return Err(FromJsError::NotJson(format!(
            "nested deeper than {MAX_DEPTH} levels (a cyclic structure?)"
        )));
    }
    Ok(Some(match value.type_of() {
        Type::Uninitialized | Type::Undefined | Type::Symbol => return Ok(None),
        Type::Function | Type::Constructor => return Ok(None),
        Type::Null => Value::Null,
        Type::Bool => Value::Bool(value.as_bool().unwrap_or_default()),
        Type::Int => Value::from(value.as_int().unwrap_or_default()),
        Type::Float => {
            let f = value.as_float().unwrap_or(f64::NAN);
            // Integral doubles come back as integers, as JSON.stringify would print them.
            if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
                // Keep -0 as 0, as JSON.stringify does.
                Value::from(f as i64)
            } else {
                Number::from_f64(f)
                    .map(Value::Number)
                    .unwrap_or(Value::Null)
            }
        }
        Type::String => match value.as_string() {
            Some(s) => Value::String(s.to_string()?),
            None => Value::Null,
        },
        Type::BigInt => {
            return Err(FromJsError::NotJson("a BigInt has no JSON form".to_owned()));
        }
        Type::Array => {
            let Some(array) = value.as_array() else {
                return Ok(Some(Value::Null));
            };
            let mut items = Vec::with_capacity(array.len());
            for item in array.iter::<JsValue>() {
                items.push(convert(&item?, depth + 1)?.unwrap_or(Value::Null));
            }
            Value::Array(items)
        }
        Type::Object | Type::Exception | Type::Promise | Type::Proxy => {
            let Some(object) = value.as_object() else {
                return Ok(Some(Value::Null));
            };
            let to_json: JsValue = object.get("toJSON")?;
            if let Some(f) = to_json.as_function() {
                let replaced: JsValue = f.call((rquickjs::function::This(object.clone()),))?;
                return convert(&replaced, depth + 1);
            }
            let mut map = Map::new();
            for entry in object.props::<String, JsValue>() {
                let (key, item) = entry?;
                if let Some(v) = convert(&item, depth + 1)? {
                    map.insert(key, v);
                }
            }
            Value::Object(map)
        }
        Type::Module | Type::Unknown => {
            return Err(FromJsError::NotJson(format!(
                "a {} has no JSON form",
                kind(value)
            )));
        }
    }))
}

/// The JavaScript kind of a value as a script author would name it.
fn kind(value: &JsValue<'_>) -> &'static str {
    match value.type_of() {
        Type::Function | Type::Constructor => "function",
        Type::BigInt => "BigInt",
        other => other.as_str(),
    }
}
