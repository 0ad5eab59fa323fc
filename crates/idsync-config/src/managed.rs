//! `conf/managed.json` read into [`ManagedType`]s: names, schema, the properties to
//! index, the lifecycle scripts and the custom actions. It must not create tables; the repository does that from `indexed`.

use crate::cx::Cx;
use crate::script::script;
use crate::types::{ManagedType, PropertyScripts, RelationshipField, ScriptSpec};
use serde_json::Value;
use std::collections::BTreeMap;

/// The lifecycle scripts of a managed object type, by their managed.json key.
const HOOKS: [&str; 11] = [
    "onCreate",
    "onUpdate",
    "onDelete",
    "onRead",
    "onRetrieve",
    "onValidate",
    "onStore",
    "postCreate",
    "postUpdate",
    "postDelete",
    "onSync",
];

/// Actions of `managed/<type>[/<id>]` that idsync answers itself: a custom action cannot
/// take their names.
const BUILT_IN_ACTIONS: [&str; 2] = ["create", "triggerSyncCheck"];

pub(crate) fn managed(cx: &mut Cx<'_>, v: &Value) -> Vec<ManagedType> {
    let Some(mut root) = cx.object("", v) else {
        return Vec::new();
    };
    let mut out: Vec<ManagedType> = Vec::new();
    if let Some(objects) = root.required(cx, "objects") {
        let ptr = root.at("objects");
        match objects {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let iptr = format!("{ptr}/{i}");
                    if let Some(t) = managed_type(cx, &iptr, item) {
                        if out.iter().any(|m| m.name == t.name) {
                            cx.error(
                                &format!("{iptr}/name"),
                                format!("duplicate managed object type \"{}\"", t.name),
                            );
                        } else {
                            out.push(t);
                        }
                    }
                }
            }
            other => cx.wrong_type(&ptr, "an array", other),
        }
    }
    root.finish(cx);
    out
}

fn managed_type(cx: &mut Cx<'_>, ptr: &str, v: &Value) -> Option<ManagedType> {
    let mut o = cx.object(ptr, v)?;
    let name = o.req_str(cx, "name");
    if let Some(n) = &name
        && (n.is_empty() || n.contains('/'))
    {
        cx.error(
            &o.at("name"),
            format!(
                "bad managed object type name \"{n}\": it must be non-empty and contain no '/'"
            ),
        );
    }
    let schema = o
        .get("schema")
        .cloned()
        .unwrap_or_else(|| Value::Object(Default::default()));
    if !schema.is_object() {
        cx.wrong_type(&o.at("schema"), "an object", &schema);
    }
    let mut indexed: Vec<String> = Vec::new();
    if let Some(hint) = o.get("idsync") {
        let hptr = o.at("idsync");
        if let Some(mut h) = cx.object(&hptr, hint) {
            indexed.extend(h.opt_string_list(cx, "index").unwrap_or_default());
            h.finish(cx);
        }
    }
    let mut property_scripts = Vec::new();
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (pname, p) in props {
            if p.get("index").and_then(Value::as_bool) == Some(true) && !indexed.contains(pname) {
                indexed.push(pname.clone());
            }
            let pptr = format!("{}/properties/{}", o.at("schema"), crate::cx::escape(pname));
            if let Some(s) = property(cx, &pptr, pname, p) {
                property_scripts.push(s);
            }
        }
    }
    let mut hooks: BTreeMap<&str, ScriptSpec> = BTreeMap::new();
    for hook in HOOKS {
        if let Some(spec) = o.get(hook).and_then(|s| script(cx, &o.at(hook), s)) {
            hooks.insert(hook, spec);
        }
    }
    let mut actions = BTreeMap::new();
    if let Some(value) = o.get("actions") {
        let aptr = o.at("actions");
        match value {
            Value::Object(map) => {
                for (name, s) in map {
                    let ptr = format!("{aptr}/{}", crate::cx::escape(name));
                    if name.is_empty() || BUILT_IN_ACTIONS.contains(&name.as_str()) {
                        cx.error(
                            &ptr,
                            format!(
                                "bad action name \"{name}\": it must be non-empty and not one of idsync's own actions ({})",
                                BUILT_IN_ACTIONS.join(", ")
                            ),
                        );
                        continue;
                    }
                    if let Some(spec) = script(cx, &ptr, s) {
                        actions.insert(name.clone(), spec);
                    }
                }
            }
            other => cx.wrong_type(&aptr, "an object of action name to script", other),
        }
    }
    o.accept(&["iconClass", "type", "title", "description"]);
    o.finish(cx);
    Some(ManagedType {
        name: name?,
        schema,
        indexed,
        on_create: hooks.remove("onCreate"),
        on_update: hooks.remove("onUpdate"),
        on_delete: hooks.remove("onDelete"),
        on_read: hooks.remove("onRead"),
        on_retrieve: hooks.remove("onRetrieve"),
        on_validate: hooks.remove("onValidate"),
        on_store: hooks.remove("onStore"),
        post_create: hooks.remove("postCreate"),
        post_update: hooks.remove("postUpdate"),
        post_delete: hooks.remove("postDelete"),
        on_sync: hooks.remove("onSync"),
        actions,
        property_scripts,
        raw: v.clone(),
    })
}

/// The scripts of one schema property (`onRetrieve`, `onValidate`, `onStore`) and whether it
/// is virtual; `None` for a property with neither.
fn property(cx: &mut Cx<'_>, ptr: &str, name: &str, p: &Value) -> Option<PropertyScripts> {
    let Value::Object(map) = p else {
        return None;
    };
    cx.sink.keys.extend(
        PROPERTY_KEYS
            .iter()
            .map(|k| format!("managed.json objects[].schema.properties.<property>.{k}")),
    );
    let is_virtual = match map.get("isVirtual") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            cx.wrong_type(&format!("{ptr}/isVirtual"), "true or false", other);
            false
        }
    };
    let mut hook = |key: &str| {
        map.get(key)
            .filter(|v| !v.is_null())
            .and_then(|s| script(cx, &format!("{ptr}/{key}"), s))
    };
    let scripts = PropertyScripts {
        name: name.to_string(),
        is_virtual,
        on_retrieve: hook("onRetrieve"),
        on_validate: hook("onValidate"),
        on_store: hook("onStore"),
    };
    if scripts.is_virtual && scripts.on_retrieve.is_none() {
        cx.error(
            &format!("{ptr}/isVirtual"),
            format!("the virtual property \"{name}\" has no onRetrieve script to compute it"),
        );
        return None;
    }
    let any = scripts.on_retrieve.is_some()
        || scripts.on_validate.is_some()
        || scripts.on_store.is_some();
    any.then_some(scripts)
}

/// The keys of a schema property that idsync reads (the rest is JSON schema and UI metadata).
const PROPERTY_KEYS: [&str; 4] = ["isVirtual", "onRetrieve", "onValidate", "onStore"];

impl ManagedType {
    /// The schema's relationship properties (docs/configuration.md#relationship-properties): a
    /// property of `"type": "relationship"` holds one, `"type": "array"` with `items` of that
    /// type a collection. `returnByDefault` is read on the property; `reverseRelationship`,
    /// `reversePropertyName` and `resourceCollection` on the property or (for a collection) on
    /// its `items`, where IDM's samples write them.
    pub fn relationship_fields(&self) -> Vec<RelationshipField> {
        let Some(props) = self.schema.get("properties").and_then(Value::as_object) else {
            return Vec::new();
        };
        props
            .iter()
            .filter_map(|(name, p)| relationship_field(name, p))
            .collect()
    }

    /// The relationship property called `name`, if the schema has one.
    pub fn relationship_field(&self, name: &str) -> Option<RelationshipField> {
        let p = self.schema.get("properties")?.get(name)?;
        relationship_field(name, p)
    }
}

fn relationship_field(name: &str, p: &Value) -> Option<RelationshipField> {
    let is_rel = |v: &Value| v.get("type").and_then(Value::as_str) == Some("relationship");
    let (collection, def) = if is_rel(p) {
        (false, p)
    } else if p.get("type").and_then(Value::as_str) == Some("array")
        && p.get("items").is_some_and(is_rel)
    {
        (true, &p["items"])
    } else {
        return None;
    };
    let key = |k: &str| def.get(k).or_else(|| p.get(k));
    let reverse = key("reverseRelationship").and_then(Value::as_bool) == Some(true);
    let reverse_property = key("reversePropertyName")
        .and_then(Value::as_str)
        .filter(|_| reverse)
        .map(str::to_string);
    let resource_paths = match key("resourceCollection") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|c| c.get("path").and_then(Value::as_str))
            .map(str::to_string)
            .collect(),
        Some(c) => c
            .get("path")
            .and_then(Value::as_str)
            .map(str::to_string)
            .into_iter()
            .collect(),
        None => Vec::new(),
    };
    Some(RelationshipField {
        name: name.to_string(),
        collection,
        return_by_default: p.get("returnByDefault").and_then(Value::as_bool) == Some(true),
        reverse_property,
        resource_paths,
        validate: key("validate").and_then(Value::as_bool) == Some(true),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn relationship_properties_are_read_as_idm_writes_them() {
        let t = ManagedType {
            name: "role".into(),
            schema: json!({"properties": {
                "name": {"type": "string"},
                "members": {"type": "array", "returnByDefault": true, "items": {
                    "type": "relationship", "reverseRelationship": true,
                    "reversePropertyName": "roles",
                    "resourceCollection": {"path": "managed/user"}}},
                "owner": {"type": "relationship", "validate": true,
                          "resourceCollection": [{"path": "managed/user"}]},
                "tags": {"type": "array", "items": {"type": "string"}}
            }}),
            ..ManagedType::default()
        };
        let fields = t.relationship_fields();
        assert_eq!(
            fields,
            vec![
                RelationshipField {
                    name: "members".into(),
                    collection: true,
                    return_by_default: true,
                    reverse_property: Some("roles".into()),
                    resource_paths: vec!["managed/user".into()],
                    validate: false,
                },
                RelationshipField {
                    name: "owner".into(),
                    collection: false,
                    return_by_default: false,
                    reverse_property: None,
                    resource_paths: vec!["managed/user".into()],
                    validate: true,
                },
            ]
        );
        assert!(t.relationship_field("tags").is_none());
        assert_eq!(t.relationship_field("owner"), Some(fields[1].clone()));
    }
}
