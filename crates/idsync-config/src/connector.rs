//! `conf/provisioner.openicf-<name>.json` read into a [`ConnectorConfig`]
//! (docs/configuration.md#confprovisioneropenicf-namejson), and the masking of secrets for
//! `GET config/...`. It must not open connections: whether the configuration properties work
//! is for the connector to find out.

use crate::cx::{Cx, known_list};
use crate::mapping::{max_retries, post_retry_action};
use crate::types::*;
use serde_json::Value;
use std::collections::BTreeMap;

/// `connectorRef.connectorName` values and the kind each selects.
const KINDS: [(&str, ConnectorKind); 6] = [
    (
        "org.forgerock.openicf.csvfile.CSVFileConnector",
        ConnectorKind::Csv,
    ),
    ("csv", ConnectorKind::Csv),
    (
        "org.identityconnectors.databasetable.DatabaseTableConnector",
        ConnectorKind::DatabaseTable,
    ),
    ("sql", ConnectorKind::DatabaseTable),
    (
        "org.identityconnectors.ldap.LdapConnector",
        ConnectorKind::Ldap,
    ),
    ("ldap", ConnectorKind::Ldap),
];

/// IDM connector keys that idsync accepts without using.
const ACCEPTED_IDM_KEYS: [&str; 8] = [
    "poolConfigOption",
    "operationTimeout",
    "connectorPoolingSupported",
    "resultsHandlerConfig",
    "operationOptions",
    "producerBufferSize",
    "systemActions",
    "_id",
];

/// JSON-schema types an object-type property may declare.
const PROPERTY_TYPES: [&str; 7] = [
    "string", "number", "integer", "boolean", "array", "object", "null",
];

impl ConnectorKind {
    /// The short name (`csv`, `sql`, `ldap`).
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectorKind::Csv => "csv",
            ConnectorKind::DatabaseTable => "sql",
            ConnectorKind::Ldap => "ldap",
        }
    }

    /// The kind for a `connectorRef.connectorName` (ICF class name or short name).
    pub fn from_connector_name(name: &str) -> Option<Self> {
        KINDS.iter().find(|(n, _)| *n == name).map(|(_, k)| *k)
    }
}

/// Reads one connector file. `file_name` is the `<name>` of the file name, used when the file has
/// no `"name"`.
pub(crate) fn connector(cx: &mut Cx<'_>, v: &Value, file_name: &str) -> Option<ConnectorConfig> {
    let mut o = cx.object("", v)?;
    let before = cx.sink.errors.len();
    let name = o
        .opt_str(cx, "name")
        .unwrap_or_else(|| file_name.to_string());
    if name.is_empty() || name.contains('/') {
        cx.error(
            &o.at("name"),
            format!("bad connector name \"{name}\": it must be non-empty and contain no '/'"),
        );
    }
    let kind = o.required(cx, "connectorRef").and_then(|r| {
        let mut r = cx.object(&o.at("connectorRef"), r)?;
        let cn = r.req_str(cx, "connectorName");
        r.accept(&[
            "bundleName",
            "bundleVersion",
            "connectorHostRef",
            "systemType",
        ]);
        let ptr = r.at("connectorName");
        r.finish(cx);
        let cn = cn?;
        let kind = ConnectorKind::from_connector_name(&cn);
        if kind.is_none() {
            cx.error(
                &ptr,
                format!(
                    "unknown connector kind \"{cn}\" (known: {})",
                    known_list(KINDS.iter().map(|(n, _)| *n))
                ),
            );
        }
        kind
    });
    let enabled = o.bool_or(cx, "enabled", true);
    let configuration_properties = o
        .opt_object(cx, "configurationProperties")
        .unwrap_or_default();
    let object_types = o
        .get("objectTypes")
        .and_then(|t| object_types(cx, &o.at("objectTypes"), t))
        .unwrap_or_default();
    let sync_failure_handler = o
        .get("syncFailureHandler")
        .and_then(|h| sync_failure_handler(cx, &o.at("syncFailureHandler"), h));
    o.accept(&ACCEPTED_IDM_KEYS);
    o.finish(cx);
    if cx.sink.errors.len() != before {
        return None;
    }
    Some(ConnectorConfig {
        name,
        kind: kind?,
        enabled,
        configuration_properties,
        object_types,
        sync_failure_handler,
        raw: v.clone(),
        file: cx.file.clone(),
    })
}

fn object_types(cx: &mut Cx<'_>, ptr: &str, v: &Value) -> Option<BTreeMap<String, ObjectType>> {
    let o = cx.object(ptr, v)?;
    let mut out = BTreeMap::new();
    for (name, t) in o.map {
        let tptr = o.at(name);
        let Some(mut t_obj) = cx.object(&tptr, t) else {
            continue;
        };
        let native_type = t_obj.opt_str(cx, "nativeType");
        let mut properties = BTreeMap::new();
        if let Some(props) = t_obj.get("properties") {
            let pptr = t_obj.at("properties");
            if let Some(p_obj) = cx.object(&pptr, props) {
                for (pname, pv) in p_obj.map {
                    if let Some(def) = property_def(cx, &p_obj.at(pname), pname, pv) {
                        properties.insert(pname.clone(), def);
                    }
                }
            }
        }
        t_obj.accept(&["id", "type", "$schema"]);
        t_obj.finish(cx);
        out.insert(
            name.clone(),
            ObjectType {
                native_type,
                properties,
                raw: t.clone(),
            },
        );
    }
    Some(out)
}

fn property_def(cx: &mut Cx<'_>, ptr: &str, name: &str, v: &Value) -> Option<PropertyDef> {
    let mut o = cx.object(ptr, v)?;
    let r#type = o
        .opt_str(cx, "type")
        .unwrap_or_else(|| "string".to_string());
    if !PROPERTY_TYPES.contains(&r#type.as_str()) {
        cx.error(
            &o.at("type"),
            format!(
                "unknown property type \"{}\" (known: {})",
                r#type,
                PROPERTY_TYPES.join(", ")
            ),
        );
    }
    // IDM defaults the native name to the property name.
    let native_name = o
        .opt_str(cx, "nativeName")
        .unwrap_or_else(|| name.to_string());
    let native_type = o.opt_str(cx, "nativeType");
    let items = o.get("items").cloned();
    let required = o.bool_or(cx, "required", false);
    let flags = o.opt_string_list(cx, "flags").unwrap_or_default();
    o.accept(&["description", "title", "runAsUser", "$schema", "format"]);
    o.finish(cx);
    Some(PropertyDef {
        native_name,
        r#type,
        native_type,
        items,
        required,
        flags,
        raw: v.clone(),
    })
}

fn sync_failure_handler(cx: &mut Cx<'_>, ptr: &str, v: &Value) -> Option<SyncFailureHandler> {
    let mut o = cx.object(ptr, v)?;
    let max_retries = max_retries(cx, &mut o);
    let post_retry_action = o
        .get("postRetryAction")
        .and_then(|a| post_retry_action(cx, &o.at("postRetryAction"), a))
        .unwrap_or(PostRetryAction::LoggedIgnore);
    o.finish(cx);
    Some(SyncFailureHandler {
        max_retries,
        post_retry_action,
    })
}

pub use idsync_core::secrets::{MASK, is_secret_key, mask_secrets};

impl ConnectorConfig {
    /// The configuration as `GET config/provisioner.openicf/<name>` shows it: secrets masked.
    pub fn masked(&self) -> Value {
        mask_secrets(&self.raw)
    }
}
