//! `conf/managed.json` read into [`ManagedType`]s: names, schema, the properties to
//! index, and the object hooks. It must not create tables; the repository does that from `indexed`.

use crate::cx::Cx;
use crate::script::script;
use crate::types::ManagedType;
use serde_json::Value;

/// IDM managed-object hooks that idsync does not run.
const UNSUPPORTED_HOOKS: [&str; 8] = [
    "onRead",
    "onStore",
    "onRetrieve",
    "onValidate",
    "postCreate",
    "postUpdate",
    "postDelete",
    "actions",
];

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
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (pname, p) in props {
            if p.get("index").and_then(Value::as_bool) == Some(true) && !indexed.contains(pname) {
                indexed.push(pname.clone());
            }
        }
    }
    let on_create = o
        .get("onCreate")
        .and_then(|s| script(cx, &o.at("onCreate"), s));
    let on_update = o
        .get("onUpdate")
        .and_then(|s| script(cx, &o.at("onUpdate"), s));
    let on_delete = o
        .get("onDelete")
        .and_then(|s| script(cx, &o.at("onDelete"), s));
    let on_sync = o.get("onSync").and_then(|s| script(cx, &o.at("onSync"), s));
    for hook in UNSUPPORTED_HOOKS {
        if o.get(hook).is_some() {
            cx.warn(
                &o.at(hook),
                format!("\"{hook}\" is not supported by idsync and is ignored"),
            );
        }
    }
    o.accept(&["iconClass", "type", "title", "description"]);
    o.finish(cx);
    Some(ManagedType {
        name: name?,
        schema,
        indexed,
        on_create,
        on_update,
        on_delete,
        on_sync,
        raw: v.clone(),
    })
}
