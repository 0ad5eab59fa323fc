//! The validation context: which file is being read, where the diagnostics go, and a typed reader
//! over one JSON object that records which keys were understood. It owns the wording of the
//! generic messages (wrong type, missing key, unknown key); it must not know any config schema.
//!
//! The keys each reader understood are also collected in [`Sink::keys`], named as the
//! configuration reference (docs/configuration.md) names them, so that a test can hold the
//! reference to exactly what the readers accept.

use crate::diag::Diagnostic;
use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashSet};
use std::path::Path;

/// Every diagnostic found so far, across files.
#[derive(Debug, Default)]
pub(crate) struct Sink {
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
    /// Every key a reader asked for (used, or accepted and ignored), as `FILE PATH`: see
    /// [`Cx::recognise`].
    pub keys: BTreeSet<String>,
}

/// One file being validated.
#[derive(Debug)]
pub(crate) struct Cx<'a> {
    /// Relative to the project, e.g. `conf/sync.json`.
    pub file: String,
    /// The absolute project folder (script files are relative to it).
    pub dir: &'a Path,
    pub sink: &'a mut Sink,
    /// Pointers whose string was exactly one `&{NAME}`: such strings may stand for numbers and
    /// booleans, because substitution can only produce strings.
    pub whole_substitutions: HashSet<String>,
}

impl<'a> Cx<'a> {
    pub fn new(file: impl Into<String>, dir: &'a Path, sink: &'a mut Sink) -> Self {
        Self {
            file: file.into(),
            dir,
            sink,
            whole_substitutions: HashSet::new(),
        }
    }

    pub fn error(&mut self, pointer: &str, message: impl Into<String>) {
        self.sink
            .errors
            .push(Diagnostic::new(self.file.clone(), pointer, message));
    }

    /// Records that the object at `pointer` understands `keys`, as `FILE PATH` in the reference's
    /// spelling: `sync.json mappings[].queuedSync.workers` (array indexes become `[]`; a file of a
    /// family, e.g. `schedule-nightly.json`, becomes `schedule-<name>.json`).
    pub fn recognise<'k>(&mut self, pointer: &str, keys: impl IntoIterator<Item = &'k str>) {
        let file = file_family(self.file.trim_start_matches("conf/"));
        let mut path = String::new();
        for token in pointer.split('/').skip(1) {
            if !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()) {
                path.push_str("[]");
            } else {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&token.replace("~1", "/").replace("~0", "~"));
            }
        }
        for key in keys {
            let sep = if path.is_empty() { "" } else { "." };
            self.sink.keys.insert(format!("{file} {path}{sep}{key}"));
        }
    }

    pub fn warn(&mut self, pointer: &str, message: impl Into<String>) {
        self.sink
            .warnings
            .push(Diagnostic::new(self.file.clone(), pointer, message));
    }

    /// Reports a value of the wrong JSON type.
    pub fn wrong_type(&mut self, pointer: &str, expected: &str, found: &Value) {
        self.error(
            pointer,
            format!("expected {expected}, found {}", type_name(found)),
        );
    }

    /// The value as an object, or an error.
    pub fn object<'v>(&mut self, pointer: &str, v: &'v Value) -> Option<Obj<'v>> {
        match v {
            Value::Object(map) => Some(Obj {
                ptr: pointer.to_string(),
                map,
                used: HashSet::new(),
            }),
            other => {
                self.wrong_type(pointer, "an object", other);
                None
            }
        }
    }

    pub fn string(&mut self, pointer: &str, v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            other => {
                self.wrong_type(pointer, "a string", other);
                None
            }
        }
    }

    pub fn bool(&mut self, pointer: &str, v: &Value) -> Option<bool> {
        match v {
            Value::Bool(b) => Some(*b),
            Value::String(s) if self.whole_substitutions.contains(pointer) => match s.trim() {
                "true" => Some(true),
                "false" => Some(false),
                _ => {
                    self.error(pointer, format!("expected a boolean, found \"{s}\""));
                    None
                }
            },
            other => {
                self.wrong_type(pointer, "a boolean", other);
                None
            }
        }
    }

    /// Any integer (negative allowed).
    pub fn int(&mut self, pointer: &str, v: &Value) -> Option<i64> {
        match v {
            Value::Number(n) => match n.as_i64() {
                Some(i) => Some(i),
                None => {
                    self.error(pointer, format!("expected an integer, found {n}"));
                    None
                }
            },
            Value::String(s) if self.whole_substitutions.contains(pointer) => {
                match s.trim().parse::<i64>() {
                    Ok(i) => Some(i),
                    Err(_) => {
                        self.error(pointer, format!("expected an integer, found \"{s}\""));
                        None
                    }
                }
            }
            other => {
                self.wrong_type(pointer, "an integer", other);
                None
            }
        }
    }

    /// An integer ≥ 0.
    pub fn non_negative(&mut self, pointer: &str, v: &Value) -> Option<u64> {
        let i = self.int(pointer, v)?;
        match u64::try_from(i) {
            Ok(u) => Some(u),
            Err(_) => {
                self.error(
                    pointer,
                    format!("must be zero or a positive integer, found {i}"),
                );
                None
            }
        }
    }

    /// An integer ≥ `min` (≥ 1 for "positive").
    pub fn at_least(&mut self, pointer: &str, v: &Value, min: u64) -> Option<u64> {
        let i = self.int(pointer, v)?;
        match u64::try_from(i) {
            Ok(u) if u >= min => Some(u),
            _ if min == 1 => {
                self.error(pointer, format!("must be a positive integer, found {i}"));
                None
            }
            _ => {
                self.error(
                    pointer,
                    format!("must be an integer of at least {min}, found {i}"),
                );
                None
            }
        }
    }

    pub fn string_list(&mut self, pointer: &str, v: &Value) -> Option<Vec<String>> {
        let Value::Array(items) = v else {
            self.wrong_type(pointer, "an array of strings", v);
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match self.string(&format!("{pointer}/{i}"), item) {
                Some(s) => out.push(s),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }
}

/// A JSON object being read: remembers the keys a reader asked for, so the rest can be reported
/// as unknown.
#[derive(Debug)]
pub(crate) struct Obj<'v> {
    pub ptr: String,
    pub map: &'v Map<String, Value>,
    used: HashSet<String>,
}

impl<'v> Obj<'v> {
    /// The pointer of `key` inside this object.
    pub fn at(&self, key: &str) -> String {
        format!("{}/{}", self.ptr, escape(key))
    }

    /// Marks `key` as understood and returns its value; JSON null counts as absent.
    pub fn get(&mut self, key: &str) -> Option<&'v Value> {
        self.used.insert(key.to_string());
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// Marks keys as understood without reading them.
    pub fn accept(&mut self, keys: &[&str]) {
        for k in keys {
            self.used.insert((*k).to_string());
        }
    }

    pub fn has(&self, key: &str) -> bool {
        self.map.get(key).is_some_and(|v| !v.is_null())
    }

    pub fn required(&mut self, cx: &mut Cx<'_>, key: &str) -> Option<&'v Value> {
        let v = self.get(key);
        if v.is_none() {
            cx.error(&self.at(key), format!("missing required key \"{key}\""));
        }
        v
    }

    pub fn req_str(&mut self, cx: &mut Cx<'_>, key: &str) -> Option<String> {
        let v = self.required(cx, key)?;
        cx.string(&self.at(key), v)
    }

    pub fn opt_str(&mut self, cx: &mut Cx<'_>, key: &str) -> Option<String> {
        let v = self.get(key)?;
        cx.string(&self.at(key), v)
    }

    pub fn bool_or(&mut self, cx: &mut Cx<'_>, key: &str, default: bool) -> bool {
        self.opt_bool(cx, key).unwrap_or(default)
    }

    pub fn opt_bool(&mut self, cx: &mut Cx<'_>, key: &str) -> Option<bool> {
        let v = self.get(key)?;
        cx.bool(&self.at(key), v)
    }

    pub fn opt_int(&mut self, cx: &mut Cx<'_>, key: &str) -> Option<i64> {
        let v = self.get(key)?;
        cx.int(&self.at(key), v)
    }

    pub fn opt_non_negative(&mut self, cx: &mut Cx<'_>, key: &str) -> Option<u64> {
        let v = self.get(key)?;
        cx.non_negative(&self.at(key), v)
    }

    pub fn opt_at_least(&mut self, cx: &mut Cx<'_>, key: &str, min: u64) -> Option<u64> {
        let v = self.get(key)?;
        cx.at_least(&self.at(key), v, min)
    }

    pub fn opt_object(&mut self, cx: &mut Cx<'_>, key: &str) -> Option<Map<String, Value>> {
        let v = self.get(key)?;
        match v {
            Value::Object(m) => Some(m.clone()),
            other => {
                cx.wrong_type(&self.at(key), "an object", other);
                None
            }
        }
    }

    pub fn opt_string_list(&mut self, cx: &mut Cx<'_>, key: &str) -> Option<Vec<String>> {
        let v = self.get(key)?;
        cx.string_list(&self.at(key), v)
    }

    /// Warns about every key no reader asked for.
    pub fn finish(self, cx: &mut Cx<'_>) {
        cx.recognise(&self.ptr, self.used.iter().map(String::as_str));
        for key in self.map.keys() {
            if !self.used.contains(key) {
                cx.warn(&self.at(key), format!("unknown key \"{key}\""));
            }
        }
    }

    /// Ends the reading of an object whose other keys are passed on, not unknown (a schedule's
    /// `invokeContext` becomes the service's parameters).
    pub fn open_end(self, cx: &mut Cx<'_>) {
        cx.recognise(&self.ptr, self.used.iter().map(String::as_str));
    }
}

/// `provisioner.openicf-hr.json` → `provisioner.openicf-<name>.json`; other names unchanged.
fn file_family(file: &str) -> String {
    for prefix in ["provisioner.openicf-", "schedule-", "mapping-"] {
        if file.starts_with(prefix) && file.ends_with(".json") {
            return format!("{prefix}<name>.json");
        }
    }
    file.to_string()
}

/// RFC 6901 escaping of one pointer token.
pub(crate) fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `a, b, c`, or `none` when empty: the tail of "(known: ...)" messages.
pub(crate) fn known_list<I: IntoIterator<Item = S>, S: AsRef<str>>(names: I) -> String {
    let v: Vec<String> = names.into_iter().map(|s| s.as_ref().to_string()).collect();
    if v.is_empty() {
        "none".to_string()
    } else {
        v.join(", ")
    }
}
