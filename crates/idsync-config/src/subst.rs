//! `&{NAME}` property substitution over every string of a parsed conf file
//! (docs/configuration.md#values-from-outside-name-substitution). It owns the syntax and the walk;
//! where a name resolves (idsync.json, environment) is decided by the resolver passed in. It must
//! not read files.

use crate::cx::{Cx, escape};
use serde_json::Value;

/// Replaces every `&{NAME}` (or `&{NAME|default}`) in every string of `value`, reporting unknown
/// names and unterminated references, and recording strings that were exactly one reference.
pub(crate) fn substitute(
    cx: &mut Cx<'_>,
    value: &mut Value,
    resolve: &dyn Fn(&str) -> Option<String>,
) {
    walk(cx, value, String::new(), resolve);
}

fn walk(cx: &mut Cx<'_>, value: &mut Value, ptr: String, resolve: &dyn Fn(&str) -> Option<String>) {
    match value {
        Value::String(s) => {
            if s.contains("&{")
                && let Some(out) = substitute_str(cx, &ptr, s, resolve)
            {
                if is_whole_reference(s) {
                    cx.whole_substitutions.insert(ptr);
                }
                *s = out;
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk(cx, item, format!("{ptr}/{i}"), resolve);
            }
        }
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                let child = format!("{ptr}/{}", escape(k));
                walk(cx, v, child, resolve);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

fn is_whole_reference(s: &str) -> bool {
    s.starts_with("&{") && s.ends_with('}') && s[2..].find('}') == Some(s.len() - 3)
}

/// The names referenced by `&{...}` in `s` (without defaults).
pub(crate) fn referenced_names(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("&{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        let body = &after[..end];
        out.push(body.split('|').next().unwrap_or(body).trim().to_string());
        rest = &after[end + 1..];
    }
    out
}

fn substitute_str(
    cx: &mut Cx<'_>,
    ptr: &str,
    s: &str,
    resolve: &dyn Fn(&str) -> Option<String>,
) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    let mut ok = true;
    while let Some(start) = rest.find("&{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            cx.error(
                ptr,
                format!("unterminated property reference in \"{s}\" (expected &{{NAME}})"),
            );
            return None;
        };
        let body = &after[..end];
        let (name, default) = match body.split_once('|') {
            Some((n, d)) => (n.trim(), Some(d)),
            None => (body.trim(), None),
        };
        match resolve(name).or_else(|| default.map(str::to_string)) {
            Some(v) => out.push_str(&v),
            None => {
                cx.error(
                    ptr,
                    format!(
                        "property &{{{name}}} is not defined (set it in conf/idsync.json or the environment variable {name}{})",
                        env_alias(name).map(|a| format!(" or {a}")).unwrap_or_default()
                    ),
                );
                ok = false;
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    ok.then_some(out)
}

/// `NAME` upper-cased with `.` and `-` turned into `_`, when that differs from `NAME`.
pub(crate) fn env_alias(name: &str) -> Option<String> {
    let alias: String = name
        .chars()
        .map(|c| {
            if c == '.' || c == '-' {
                '_'
            } else {
                c.to_ascii_uppercase()
            }
        })
        .collect();
    (alias != name).then_some(alias)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cx::Sink;
    use serde_json::json;
    use std::path::Path;

    fn run(v: &mut Value, resolve: &dyn Fn(&str) -> Option<String>) -> (Sink, Vec<String>) {
        let mut sink = Sink::default();
        let mut cx = Cx::new("conf/x.json", Path::new("/p"), &mut sink);
        substitute(&mut cx, v, resolve);
        let mut whole: Vec<String> = cx.whole_substitutions.iter().cloned().collect();
        whole.sort();
        (sink, whole)
    }

    #[test]
    fn replaces_embedded_and_whole_references() {
        let mut v = json!({"a": "x-&{A}-&{B}", "n": "&{N}", "l": ["&{A}"], "d": "&{MISSING|dflt}"});
        let (sink, whole) = run(&mut v, &|n| match n {
            "A" => Some("1".into()),
            "B" => Some("2".into()),
            "N" => Some("42".into()),
            _ => None,
        });
        assert!(sink.errors.is_empty(), "{:?}", sink.errors);
        assert_eq!(v, json!({"a": "x-1-2", "n": "42", "l": ["1"], "d": "dflt"}));
        assert_eq!(whole, ["/d", "/l/0", "/n"]);
    }

    #[test]
    fn missing_and_unterminated_references_are_errors_with_pointers() {
        let mut v = json!({"a": {"b~c": "&{db.pass-word}"}, "u": "&{OPEN"});
        let (sink, _) = run(&mut v, &|_| None);
        let lines: Vec<String> = sink.errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "conf/x.json: /a/b~0c: property &{db.pass-word} is not defined (set it in conf/idsync.json or the environment variable db.pass-word or DB_PASS_WORD)",
                "conf/x.json: /u: unterminated property reference in \"&{OPEN\" (expected &{NAME})",
            ]
        );
    }

    #[test]
    fn referenced_names_lists_every_reference() {
        assert_eq!(referenced_names("&{a}/&{b|x}&{"), ["a", "b"]);
    }
}
