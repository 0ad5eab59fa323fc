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
                Err(e) => {
                    cx.error(&fptr, e.to_string());
                    None
                }
            }
        }
    };
    if ok { spec } else { None }
}

/// Why a script `file` cannot be read.
#[derive(Debug)]
pub enum ScriptFileError {
    /// Neither in the project folder, nor in its `script/` folder, nor built in.
    NotFound(String),
    /// The name leads out of the project folder (an absolute path, `..`, a link).
    Outside(String),
    /// One of IDM's default scripts that idsync does not provide: the reason.
    Refused(String, &'static str),
    /// The file exists but cannot be read.
    Unreadable(String, std::io::Error),
}

impl std::fmt::Display for ScriptFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScriptFileError::NotFound(file) => write!(
                f,
                "script file \"{file}\" not found (looked in the project folder, its script/ \
                 folder and idsync's built-in scripts)"
            ),
            ScriptFileError::Outside(file) => write!(
                f,
                "script file \"{file}\" is refused: script files must be inside the project folder"
            ),
            ScriptFileError::Refused(file, why) => write!(
                f,
                "script file \"{file}\" is one of IDM's default scripts that idsync does not \
                 provide: {why}"
            ),
            ScriptFileError::Unreadable(file, e) => {
                write!(f, "cannot read script file \"{file}\": {e}")
            }
        }
    }
}

impl std::error::Error for ScriptFileError {}

/// Reads a script `file` as IDM finds it (docs/idm-samples.md#the-built-in-script-library): in
/// the project folder `project_dir`, then in its `script/` folder, then in idsync's built-in
/// library; one of IDM's other default scripts is refused with the reason. A file's canonical
/// path (links resolved) must lie inside the project folder: a script named `/etc/shadow` or
/// `../../secret.js` is not found, so that neither a configuration nor a schedule made over REST
/// can read (and show in a compile error) any file of the machine.
pub fn read_script_file(
    project_dir: &std::path::Path,
    file: &str,
) -> Result<String, ScriptFileError> {
    let unreadable = |e| ScriptFileError::Unreadable(file.to_string(), e);
    let root = std::fs::canonicalize(project_dir).map_err(unreadable)?;
    let mut outside = false;
    for base in [root.clone(), root.join("script")] {
        let Ok(path) = std::fs::canonicalize(base.join(file)) else {
            continue;
        };
        if !path.starts_with(&root) {
            outside = true;
            continue;
        }
        if path.is_file() {
            return std::fs::read_to_string(path).map_err(unreadable);
        }
    }
    if let Some(source) = crate::builtin::builtin_script(file) {
        return Ok(source.to_string());
    }
    match crate::builtin::refused_script(file) {
        Some(why) => Err(ScriptFileError::Refused(file.to_string(), why)),
        None if outside => Err(ScriptFileError::Outside(file.to_string())),
        None => Err(ScriptFileError::NotFound(file.to_string())),
    }
}

/// Reads the module `require(name)` names (docs/scripts.md#require-modules): the script file
/// `name.js`, or `name` when it already ends in `.js`, found as [`read_script_file`] finds
/// script files (the project folder, its `script/` folder, the built-in library). Returns the
/// file name found and its text.
pub fn read_module(
    project_dir: &std::path::Path,
    name: &str,
) -> Result<(String, String), ScriptFileError> {
    let file = if name.ends_with(".js") {
        name.to_string()
    } else {
        format!("{name}.js")
    };
    let source = read_script_file(project_dir, &file)?;
    Ok((file, source))
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
/// an equivalent JavaScript query script. IDM runs `ui/correlateTreeToQueryFilter.js`, which a
/// project does not ship; the filter it builds is generated here with the same meaning: each
/// field of the tree is a *target* field, compared with the value the mapping's `properties`
/// entry for that target gives from the source (its `source` property, or its inline
/// `transform` run on it, or its `default` when that is null; an entry whose script `condition`
/// is not true, or no entry, gives `""`). `properties` is the mapping's raw `properties`.
pub(crate) fn expression_tree_script(
    cx: &mut Cx<'_>,
    ptr: &str,
    tree: &Value,
    properties: Option<&Value>,
) -> Option<ScriptSpec> {
    let expr = tree_expr(cx, ptr, tree)?;
    let mut fields = Vec::new();
    tree_fields(tree, &mut fields);
    let mut values = Vec::new();
    for field in fields {
        let entry = properties.and_then(Value::as_array).and_then(|ps| {
            ps.iter()
                .find(|p| p.get("target").and_then(Value::as_str) == Some(field))
        });
        let Some(entry) = entry else { continue };
        let key = serde_json::to_string(field).ok()?;
        values.push(format!(
            "{key}: function () {{ {} }}",
            mapped_value(cx.dir, entry)?
        ));
    }
    let source = format!(
        "(function () {{ function q(v) {{ return '\"' + String(v).replace(/\\\\/g, '\\\\\\\\').replace(/\"/g, '\\\\\"') + '\"'; }} \
         var s = source; var lq = typeof linkQualifier === 'undefined' ? undefined : linkQualifier; \
         var vals = {{ {} }}; \
         function val(f) {{ var r = Object.prototype.hasOwnProperty.call(vals, f) ? vals[f]() : undefined; return r ? String(r) : ''; }} \
         function eq(f, v) {{ return '/' + f + ' eq ' + q(v); }} \
         return {{ '_queryFilter': {expr} }}; }})()",
        values.join(", ")
    );
    Some(ScriptSpec {
        source,
        file: None,
        globals: Map::new(),
        origin: format!("{} {ptr} (expressionTree)", cx.file),
    })
}

/// The target fields named in an expression tree, nested ones included.
fn tree_fields<'t>(tree: &'t Value, out: &mut Vec<&'t str>) {
    for key in ["all", "any"] {
        if let Some(Value::Array(items)) = tree.get(key) {
            for item in items {
                match item {
                    Value::String(f) if !out.contains(&f.as_str()) => out.push(f),
                    Value::Object(_) => tree_fields(item, out),
                    _ => {}
                }
            }
        }
    }
}

/// The body of a JavaScript function giving the value one `properties` entry maps from the
/// source `s` (with `lq` the link qualifier), as IDM's expression builder computes it.
fn mapped_value(dir: &std::path::Path, entry: &Value) -> Option<String> {
    let js = |v: &str| serde_json::to_string(v).ok();
    let from = match entry.get("source").and_then(Value::as_str) {
        Some(p) if !p.is_empty() => format!("s[{}]", js(p)?),
        _ => "s".to_string(),
    };
    let mut body = String::new();
    if let Some(Value::Object(cond)) = entry.get("condition") {
        if let Some(Value::String(q)) = cond.get("linkQualifier") {
            body.push_str(&format!("if (lq !== {}) return ''; ", js(q)?));
        }
        let text = match (cond.get("source"), cond.get("file")) {
            (Some(Value::String(src)), _) => Some(src.clone()),
            (_, Some(Value::String(f))) => read_script_file(dir, f).ok(),
            _ => None,
        };
        if let Some(text) = text {
            body.push_str(&format!(
                "if ((function (object, linkQualifier) {{ return eval({}); }})(s, lq) !== true) return ''; ",
                js(&text)?
            ));
        }
    }
    let transform = entry
        .get("transform")
        .and_then(|t| t.get("source"))
        .and_then(Value::as_str);
    match transform {
        Some(src) => body.push_str(&format!(
            "var r = (function (source) {{ return eval({}); }})({from}); ",
            js(src)?
        )),
        None if from != "s" => body.push_str(&format!("var r = {from}; ")),
        None => body.push_str("var r = undefined; "),
    }
    if let Some(Value::String(d)) = entry.get("default")
        && !d.is_empty()
    {
        body.push_str(&format!(
            "if (r === null || r === undefined) r = {}; ",
            js(d)?
        ));
    }
    body.push_str("return r;");
    Some(body)
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
                parts.push(format!("eq({path}, val({lit}))"));
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
