//! The `objectTypes` block of a provisioner config: for each object type, the idsync property
//! names, their native names (`nativeName`, with the ICF specials `__UID__`, `__NAME__`,
//! `__PASSWORD__`) and their types. Shared by every connector.
//!
//! This module only parses and converts values between native strings/values and JSON; it does
//! no I/O and knows nothing of a particular connector's columns or attributes.

use crate::contract::{ConnectorError, ConnectorResult};
use serde_json::{Map, Value};

/// The ICF native name of the unique id (`_id`).
pub const UID: &str = "__UID__";
/// The ICF native name of the naming attribute.
pub const NAME: &str = "__NAME__";
/// The ICF native name of the password.
pub const PASSWORD: &str = "__PASSWORD__";

/// The JSON type of a property (`"type"` in `objectTypes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropKind {
    String,
    /// An array of strings (or of the `items` type, which we keep as strings).
    Array,
    Number,
    Integer,
    Boolean,
}

impl PropKind {
    fn parse(ty: Option<&str>) -> ConnectorResult<Self> {
        Ok(match ty.unwrap_or("string") {
            "string" => PropKind::String,
            "array" => PropKind::Array,
            "number" => PropKind::Number,
            "integer" => PropKind::Integer,
            "boolean" => PropKind::Boolean,
            other => {
                return Err(ConnectorError::Config(format!(
                    "unsupported property type {other:?}"
                )));
            }
        })
    }
}

/// One property of an object type.
#[derive(Debug, Clone, PartialEq)]
pub struct PropSchema {
    /// The idsync name (`email`).
    pub name: String,
    /// The native name (`mail`, `__NAME__`, ...); defaults to `name`.
    pub native_name: String,
    pub kind: PropKind,
    /// Whether reads return it: false for `__PASSWORD__` and for a property whose ICF `flags`
    /// hold `NOT_READABLE` (write-only attributes, as in IDM).
    pub readable: bool,
}

/// One object type (`account`, `group`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectTypeSchema {
    pub name: String,
    /// `nativeType` (`__ACCOUNT__`), when given.
    pub native_type: Option<String>,
    pub properties: Vec<PropSchema>,
}

impl ObjectTypeSchema {
    /// Parses one object type's JSON (`{"nativeType":..., "properties": {...}}`).
    pub fn parse(name: &str, json: &Value) -> ConnectorResult<Self> {
        let native_type = json
            .get("nativeType")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let mut properties = Vec::new();
        if let Some(props) = json.get("properties") {
            let props = props.as_object().ok_or_else(|| {
                ConnectorError::Config(format!("objectTypes/{name}/properties must be an object"))
            })?;
            for (prop, def) in props {
                let native_name = def
                    .get("nativeName")
                    .and_then(Value::as_str)
                    .unwrap_or(prop)
                    .to_owned();
                let kind =
                    PropKind::parse(def.get("type").and_then(Value::as_str)).map_err(|e| {
                        ConnectorError::Config(format!("objectTypes/{name}/{prop}: {e}"))
                    })?;
                let not_readable = def
                    .get("flags")
                    .and_then(Value::as_array)
                    .is_some_and(|f| f.iter().any(|f| f.as_str() == Some("NOT_READABLE")));
                properties.push(PropSchema {
                    name: prop.clone(),
                    readable: !not_readable && native_name != PASSWORD,
                    native_name,
                    kind,
                });
            }
        }
        Ok(Self {
            name: name.to_owned(),
            native_type,
            properties,
        })
    }

    /// Parses the whole `objectTypes` block; `None`/null gives no types.
    pub fn parse_all(object_types: Option<&Value>) -> ConnectorResult<Vec<Self>> {
        match object_types {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Object(types)) => types
                .iter()
                .map(|(name, def)| Self::parse(name, def))
                .collect(),
            Some(_) => Err(ConnectorError::Config(
                "objectTypes must be an object".into(),
            )),
        }
    }

    /// The property with this idsync name.
    pub fn property(&self, name: &str) -> Option<&PropSchema> {
        self.properties.iter().find(|p| p.name == name)
    }
}

/// Turns a native string (a CSV field, a stringly-typed column) into the property's JSON value.
/// `None` for an empty string: an empty field is a missing property
/// (docs/configuration.md#confprovisioneropenicf-namejson).
pub fn value_from_text(
    prop: &PropSchema,
    text: &str,
    multivalue_delimiter: Option<&str>,
) -> Result<Option<Value>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    let v = match prop.kind {
        PropKind::String => Value::String(text.to_owned()),
        PropKind::Array => match multivalue_delimiter {
            Some(d) if !d.is_empty() => {
                Value::Array(text.split(d).map(|s| Value::String(s.to_owned())).collect())
            }
            _ => Value::Array(vec![Value::String(text.to_owned())]),
        },
        PropKind::Integer => match text.trim().parse::<i64>() {
            Ok(n) => Value::from(n),
            Err(_) => return Err(format!("{}: {text:?} is not an integer", prop.name)),
        },
        PropKind::Number => {
            if let Ok(n) = text.trim().parse::<i64>() {
                Value::from(n)
            } else {
                match text
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                {
                    Some(n) => Value::Number(n),
                    None => return Err(format!("{}: {text:?} is not a number", prop.name)),
                }
            }
        }
        PropKind::Boolean => match text.trim().to_ascii_lowercase().as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(format!("{}: {text:?} is not a boolean", prop.name)),
        },
    };
    Ok(Some(v))
}

/// Turns a property's JSON value into native text (a CSV field). Null becomes `None`
/// (written as an empty field).
pub fn value_to_text(
    prop: &PropSchema,
    value: &Value,
    multivalue_delimiter: Option<&str>,
) -> Result<Option<String>, String> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        Value::Array(items) => {
            if items.is_empty() {
                return Ok(None);
            }
            let parts: Vec<String> = items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    Value::Number(n) => Ok(n.to_string()),
                    Value::Bool(b) => Ok(b.to_string()),
                    other => Err(format!("{}: cannot store {other} in one field", prop.name)),
                })
                .collect::<Result<_, _>>()?;
            if parts.len() == 1 {
                return Ok(parts.into_iter().next());
            }
            match multivalue_delimiter {
                Some(d) if !d.is_empty() => {
                    if let Some(bad) = parts.iter().find(|p| p.contains(d)) {
                        return Err(format!(
                            "{}: value {bad:?} contains the multivalue delimiter {d:?}",
                            prop.name
                        ));
                    }
                    Ok(Some(parts.join(d)))
                }
                _ => Err(format!(
                    "{}: several values but no multivalueDelimiter is configured",
                    prop.name
                )),
            }
        }
        Value::Object(_) => Err(format!(
            "{}: an object cannot be stored in one field",
            prop.name
        )),
    }
}

/// Keeps only `_id`, `_rev` and the listed fields (`_fields`); `None` keeps everything.
pub fn project_fields(object: Value, fields: Option<&[idsync_core::JsonPointer]>) -> Value {
    let Some(fields) = fields else {
        return object;
    };
    let Value::Object(mut map) = object else {
        return object;
    };
    let mut out = Map::new();
    for key in ["_id", "_rev"] {
        if let Some(v) = map.remove(key) {
            out.insert(key.to_owned(), v);
        }
    }
    for field in fields {
        if let Some(first) = field.first()
            && let Some(v) = map.remove(first)
        {
            out.insert(first.to_owned(), v);
        }
    }
    Value::Object(out)
}
