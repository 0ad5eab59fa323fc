//! Script objects and conditions (docs/configuration.md): `{"type","source"|"file","globals"}`
//! read into a [`ScriptSpec`] (file contents read here, relative to the project), and condition
//! strings parsed as CREST filters. Scripts stay data: this module must not compile or run them.

use crate::cx::Cx;
use crate::types::{Condition, ScriptSpec};
use serde_json::{Map, Value};

/// Keys of a script object that are not variables.
const SCRIPT_KEYS: [&str; 4] = ["type", "source", "file", "globals"];

/// Reads a script object. Extra keys become variables (IDM binds them, e.g. `workflowName`), so
/// they are merged into `globals` rather than reported as unknown.
pub(crate) fn script(cx: &mut Cx<'_>, ptr: &str, v: &Value) -> Option<ScriptSpec> {
    let Value::Object(map) = v else {
        cx.wrong_type(
            ptr,
            "a script object ({\"type\":\"text/javascript\",\"source\":...})",
            v,
        );
        return None;
    };
    // One entry for every script position: the reference describes script objects once.
    cx.sink
        .keys
        .extend(SCRIPT_KEYS.iter().map(|k| format!("script {k}")));
    let mut ok = true;
    match map.get("type") {
        None | Some(Value::Null) => {}
        Some(Value::String(t)) => match t.as_str() {
            "text/javascript" | "javascript" | "application/javascript" => {}
            "groovy" | "text/groovy" => {
                cx.error(
                    &format!("{ptr}/type"),
                    "Groovy scripts are not supported: idsync runs JavaScript only (use \"type\": \"text/javascript\")",
                );
                ok = false;
            }
            other => {
                cx.error(
                    &format!("{ptr}/type"),
                    format!("unknown script type \"{other}\" (known: text/javascript)"),
                );
                ok = false;
            }
        },
        Some(other) => {
            cx.wrong_type(&format!("{ptr}/type"), "a string", other);
            ok = false;
        }
    }
    let mut globals = Map::new();
    match map.get("globals") {
        None | Some(Value::Null) => {}
        Some(Value::Object(g)) => globals.extend(g.clone()),
        Some(other) => {
            cx.wrong_type(&format!("{ptr}/globals"), "an object", other);
            ok = false;
        }
    }
    for (k, val) in map {
        if !SCRIPT_KEYS.contains(&k.as_str()) {
            globals.insert(k.clone(), val.clone());
        }
    }
    let source = map.get("source").filter(|v| !v.is_null());
    let file = map.get("file").filter(|v| !v.is_null());
    let spec = match (source, file) {
        (Some(_), Some(_)) => {
            cx.error(ptr, "a script has either \"source\" or \"file\", not both");
            None
        }
        (None, None) => {
            cx.error(
                &format!("{ptr}/source"),
                "missing required key \"source\" (or \"file\")",
            );
            None
        }
        (Some(s), None) => {
            let source = cx.string(&format!("{ptr}/source"), s)?;
            Some(ScriptSpec {
                source,
                file: None,
                globals,
                origin: format!("{} {ptr}", cx.file),
            })
        }
        (None, Some(f)) => {
            let fptr = format!("{ptr}/file");
            let file = cx.string(&fptr, f)?;
            match read_script_file(cx.dir, &file) {
                Ok(source) => Some(ScriptSpec {
                    source,
                    file: Some(file.clone()),
                    globals,
                    origin: file,
                }),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    cx.error(&fptr, format!("script file \"{file}\" not found"));
                    None
                }
                Err(e) => {
                    cx.error(&fptr, format!("cannot read script file \"{file}\": {e}"));
                    None
                }
            }
        }
    };
    if ok { spec } else { None }
}

/// Reads a script `file` of the project in `project_dir`. The file's canonical path (links
/// resolved) must lie inside the project folder: a script named `/etc/shadow` or
/// `../../secret.js` is refused as not found, so that neither a configuration nor a schedule
/// made over REST can read (and show in a compile error) any file of the machine.
pub fn read_script_file(project_dir: &std::path::Path, file: &str) -> std::io::Result<String> {
    let root = std::fs::canonicalize(project_dir)?;
    let path = std::fs::canonicalize(root.join(file))?;
    if !path.starts_with(&root) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "script files must be inside the project folder",
        ));
    }
    std::fs::read_to_string(path)
}

/// Reads a condition: a filter string, or a script object.
pub(crate) fn condition(cx: &mut Cx<'_>, ptr: &str, v: &Value) -> Option<Condition> {
    match v {
        Value::String(s) => match idsync_core::filter::parse(s) {
            Ok(f) => Some(Condition::Filter(f, s.clone())),
            Err(e) => {
                cx.error(ptr, e.to_string());
                None
            }
        },
        Value::Object(_) => script(cx, ptr, v).map(Condition::Script),
        other => {
            cx.wrong_type(ptr, "a query filter string or a script object", other);
            None
        }
    }
}

/// The correlation query of IDM's UI expression builder (`{"expressionTree":{"all":[...]}}`) as
/// an equivalent JavaScript query script: IDM runs `ui/correlateTreeToQueryFilter.js`, which a
/// project does not ship, so the filter it would build is generated here.
pub(crate) fn expression_tree_script(
    cx: &mut Cx<'_>,
    ptr: &str,
    tree: &Value,
) -> Option<ScriptSpec> {
    let expr = tree_expr(cx, ptr, tree)?;
    let source = format!(
        "(function () {{ function q(v) {{ return '\"' + String(v).replace(/\\\\/g, '\\\\\\\\').replace(/\"/g, '\\\\\"') + '\"'; }} \
         function eq(f, v) {{ return (v === undefined || v === null) ? 'false' : '/' + f + ' eq ' + q(v); }} \
         return {{ '_queryFilter': {expr} }}; }})()"
    );
    Some(ScriptSpec {
        source,
        file: None,
        globals: Map::new(),
        origin: format!("{} {ptr} (expressionTree)", cx.file),
    })
}

fn tree_expr(cx: &mut Cx<'_>, ptr: &str, tree: &Value) -> Option<String> {
    let Value::Object(map) = tree else {
        cx.wrong_type(ptr, "an object ({\"all\":[...]} or {\"any\":[...]})", tree);
        return None;
    };
    cx.recognise(ptr, ["all", "any"]);
    let (op, items) = match (map.get("all"), map.get("any")) {
        (Some(a), None) => (" and ", a),
        (None, Some(a)) => (" or ", a),
        _ => {
            cx.error(
                ptr,
                "an expression tree has exactly one of \"all\" or \"any\"",
            );
            return None;
        }
    };
    let key = if op == " and " { "all" } else { "any" };
    let Value::Array(items) = items else {
        cx.wrong_type(&format!("{ptr}/{key}"), "an array", items);
        return None;
    };
    if items.is_empty() {
        cx.error(
            &format!("{ptr}/{key}"),
            "an expression tree needs at least one field",
        );
        return None;
    }
    let mut parts = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let iptr = format!("{ptr}/{key}/{i}");
        match item {
            Value::String(field) => {
                let lit = serde_json::to_string(field).ok()?;
                let path =
                    serde_json::to_string(&field.replace('~', "~0").replace('/', "~1")).ok()?;
                parts.push(format!("eq({path}, source[{lit}])"));
            }
            Value::Object(_) => parts.push(format!("'(' + {} + ')'", tree_expr(cx, &iptr, item)?)),
            other => {
                cx.wrong_type(&iptr, "a field name or a nested expression", other);
                return None;
            }
        }
    }
    Some(parts.join(&format!(" + '{op}' + ")))
}
