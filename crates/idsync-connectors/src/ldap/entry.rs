//! LDAP entries ↔ idsync JSON objects for one object type: declared `"type":"array"`
//! properties are arrays, others single strings; binary values are base64; the DN is the
//! `__NAME__` property; `_id` is the uid attribute exactly as the server returns it.
//!
//! Pure conversion: no I/O.

use super::config::{NAME_ATTR, ObjectTypeDef, PropertyDef, UID_ATTR};
use super::filter::check_attribute_name;
use super::groups::is_ldap_groups;
use crate::contract::{ConnectorError, ConnectorResult};
use base64::Engine as _;
use ldap3::SearchEntry;
use serde_json::{Map, Value};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// One attribute's values as the server sent them.
enum Values<'a> {
    Text(&'a [String]),
    Binary(&'a [Vec<u8>]),
}

/// Case-insensitive view over an entry's attributes (servers answer with their own case).
/// A linear scan: entries carry a handful of attributes, and this runs for every entry of a
/// paged read, where building a map per entry cost more than it saved.
struct EntryView<'a> {
    entry: &'a SearchEntry,
}

impl<'a> EntryView<'a> {
    fn new(entry: &'a SearchEntry) -> Self {
        Self { entry }
    }

    fn get(&self, attr: &str) -> Option<Values<'a>> {
        if let Some(v) = self.entry.attrs.get(attr) {
            return Some(Values::Text(v));
        }
        if let Some((_, v)) = self
            .entry
            .attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(attr))
        {
            return Some(Values::Text(v));
        }
        self.entry
            .bin_attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(attr))
            .map(|(_, v)| Values::Binary(v))
    }
}

fn json_values(values: &Values<'_>, binary: bool) -> Vec<Value> {
    match values {
        Values::Text(v) if binary => v.iter().map(|s| Value::String(B64.encode(s))).collect(),
        Values::Text(v) => v.iter().map(|s| Value::String(s.clone())).collect(),
        Values::Binary(v) => v.iter().map(|b| Value::String(B64.encode(b))).collect(),
    }
}

fn shape(mut values: Vec<Value>, array: bool) -> Option<Value> {
    if array {
        Some(Value::Array(values))
    } else if values.is_empty() {
        None
    } else {
        Some(values.swap_remove(0))
    }
}

/// Reads the uid attribute of an entry.
pub fn entry_uid(entry: &SearchEntry, uid_attribute: &str) -> Option<String> {
    if uid_attribute.eq_ignore_ascii_case("dn") || uid_attribute == NAME_ATTR {
        return Some(entry.dn.clone());
    }
    match &EntryView::new(entry).get(uid_attribute)? {
        Values::Text(v) => v.first().cloned(),
        Values::Binary(v) => v.first().map(|b| B64.encode(b)),
    }
}

/// Whether a property is returned for `_fields` (`None` = all).
fn wanted(prop: &str, fields: Option<&[String]>) -> bool {
    fields.is_none_or(|f| f.iter().any(|x| x == prop))
}

/// Converts an entry. `fields` holds top-level property names (`None` = every property).
pub fn entry_to_object(
    entry: &SearchEntry,
    ty: &ObjectTypeDef,
    uid_attribute: &str,
    fields: Option<&[String]>,
) -> Value {
    let view = EntryView::new(entry);
    let mut obj = Map::new();
    let id = entry_uid(entry, uid_attribute)
        .map(Value::String)
        .unwrap_or(Value::Null);
    obj.insert("_id".into(), id.clone());
    if ty.properties.is_empty() {
        if wanted("dn", fields) {
            obj.insert("dn".into(), Value::String(entry.dn.clone()));
        }
        let mut names: Vec<(&String, bool)> = entry.attrs.keys().map(|k| (k, false)).collect();
        names.extend(entry.bin_attrs.keys().map(|k| (k, true)));
        names.sort();
        for (name, _) in names {
            if name.eq_ignore_ascii_case(uid_attribute) || !wanted(name, fields) {
                continue;
            }
            if let Some(values) = view.get(name) {
                let vals = json_values(&values, false);
                let many = vals.len() > 1;
                if let Some(v) = shape(vals, many) {
                    obj.insert(name.clone(), v);
                }
            }
        }
        return Value::Object(obj);
    }
    for prop in &ty.properties {
        if !wanted(&prop.name, fields) {
            continue;
        }
        let value = match prop.native_name.as_str() {
            NAME_ATTR => Some(Value::String(entry.dn.clone())),
            UID_ATTR => Some(id.clone()),
            attr => view
                .get(attr)
                .and_then(|v| shape(json_values(&v, prop.binary), prop.array)),
        };
        if let Some(v) = value {
            obj.insert(prop.name.clone(), v);
        }
    }
    Value::Object(obj)
}

/// The attributes to request for `_fields` (`None` = every declared property).
pub fn requested_attributes(
    ty: &ObjectTypeDef,
    uid_attribute: &str,
    fields: Option<&[String]>,
) -> Vec<String> {
    let mut attrs = vec![uid_attribute.to_owned()];
    if ty.properties.is_empty() {
        match fields {
            None => attrs.push("*".into()),
            Some(f) => attrs.extend(f.iter().filter(|n| *n != "_id" && *n != "dn").cloned()),
        }
        return attrs;
    }
    for prop in &ty.properties {
        // Virtual: filled from the groups (`groups.rs`), never requested from the entry.
        let virtual_groups = is_ldap_groups(&prop.native_name) && !ty.is_group();
        if wanted(&prop.name, fields)
            && prop.native_name != NAME_ATTR
            && prop.native_name != UID_ATTR
            && !virtual_groups
            && !attrs
                .iter()
                .any(|a| a.eq_ignore_ascii_case(&prop.native_name))
        {
            attrs.push(prop.native_name.clone());
        }
    }
    if attrs.len() == 1 {
        // Asking for the uid attribute alone would be fine, but an empty-looking list must
        // never turn into "all attributes": "1.1" is RFC 4511's "no attributes".
        attrs.push("1.1".into());
    }
    attrs
}

/// An object's writable attributes: native name → raw values (empty = remove).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct NativeAttributes {
    /// The DN from the `__NAME__` property (or `dn`/`__NAME__` keys), if given.
    pub dn: Option<String>,
    pub attrs: Vec<(String, Vec<Vec<u8>>)>,
    /// The `ldapGroups` virtual attribute, when the object carries it: the group DNs the
    /// entry is to be a member of (`null` is none).
    pub ldap_groups: Option<Vec<String>>,
}

fn raw_values(name: &str, value: &Value, binary: bool) -> ConnectorResult<Vec<Vec<u8>>> {
    let one = |v: &Value| -> ConnectorResult<Vec<u8>> {
        match v {
            Value::String(s) if binary => B64.decode(s).map_err(|e| {
                ConnectorError::InvalidData(format!("{name}: binary value is not base64: {e}"))
            }),
            Value::String(s) => Ok(s.clone().into_bytes()),
            Value::Number(n) => Ok(n.to_string().into_bytes()),
            Value::Bool(b) => Ok(if *b {
                b"TRUE".to_vec()
            } else {
                b"FALSE".to_vec()
            }),
            other => Err(ConnectorError::InvalidData(format!(
                "{name}: an LDAP value must be a string, number or boolean, not {other}"
            ))),
        }
    };
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .iter()
            .filter(|v| !v.is_null())
            .map(one)
            .collect::<ConnectorResult<Vec<_>>>(),
        v => Ok(vec![one(v)?]),
    }
}

/// The group DNs of an `ldapGroups` value: an array of DNs, one DN, or `null` (none).
fn group_dns(name: &str, value: &Value) -> ConnectorResult<Vec<String>> {
    let one = |v: &Value| match v {
        Value::String(s) if !s.trim().is_empty() => Ok(s.clone()),
        other => Err(ConnectorError::InvalidData(format!(
            "{name}: a group must be a DN string, not {other}"
        ))),
    };
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items.iter().filter(|v| !v.is_null()).map(one).collect(),
        v => Ok(vec![one(v)?]),
    }
}

/// Splits an object into its DN and native attributes. `_id`, `_rev` and the uid attribute
/// are never written (the server owns entryUUID); when the type declares its properties, an
/// undeclared one is not written either.
pub fn object_to_native(
    object: &Value,
    ty: &ObjectTypeDef,
    uid_attribute: &str,
) -> ConnectorResult<NativeAttributes> {
    let map = object.as_object().ok_or_else(|| {
        ConnectorError::InvalidData("an LDAP object must be a JSON object".into())
    })?;
    let mut out = NativeAttributes::default();
    for (key, value) in map {
        if key == "_id" || key == "_rev" {
            continue;
        }
        let declared: Option<&PropertyDef> = ty.property(key);
        let (native, binary) = match declared {
            Some(p) => (p.native_name.as_str(), p.binary),
            None if key == "dn" || key == NAME_ATTR => (NAME_ATTR, false),
            None if ty.properties.is_empty() => (key.as_str(), false),
            // As IDM writes through ICF: only the properties the provisioner's `objectTypes`
            // declares reach the directory; others are left out (IDM's sample2c maps
            // `telephoneNumber` to an account type that does not declare it).
            None => continue,
        };
        if native == NAME_ATTR {
            match value {
                Value::String(s) if !s.trim().is_empty() => out.dn = Some(s.clone()),
                Value::Null => {}
                other => {
                    return Err(ConnectorError::InvalidData(format!(
                        "{key}: a DN must be a string, not {other}"
                    )));
                }
            }
            continue;
        }
        if native == UID_ATTR || native.eq_ignore_ascii_case(uid_attribute) {
            continue;
        }
        if is_ldap_groups(native) && !ty.is_group() {
            out.ldap_groups = Some(group_dns(key, value)?);
            continue;
        }
        check_attribute_name(native).map_err(|_| {
            ConnectorError::InvalidData(format!("{native:?} is not an LDAP attribute name"))
        })?;
        out.attrs
            .push((native.to_owned(), raw_values(key, value, binary)?));
    }
    Ok(out)
}

/// The current values of `attr` in an entry, as raw bytes (for change detection).
pub fn current_values(entry: &SearchEntry, attr: &str) -> Vec<Vec<u8>> {
    match EntryView::new(entry).get(attr) {
        Some(Values::Text(v)) => v.iter().map(|s| s.clone().into_bytes()).collect(),
        Some(Values::Binary(v)) => v.to_vec(),
        None => Vec::new(),
    }
}
