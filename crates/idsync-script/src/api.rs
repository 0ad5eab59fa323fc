//! The JavaScript side of the host API (`openidm`, `identityServer`, `logger`; docs/scripts.md):
//! thin wrappers over two native functions, installed once per thread engine as non-enumerable
//! globals (the sweep after each call leaves them alone). Each call goes to [`crate::host`],
//! which finds the evaluation's host; nothing here knows what a resource path means.

use rquickjs::object::Property;
use rquickjs::{Array, Ctx, Function, Object};
use serde_json::{Value, json};

use crate::host;

/// The wrappers. `call(json)` answers `{"value": v}` or `{"error": {code, message, detail}}`;
/// `log(level, text)` writes a line. `JSON` is captured here so a script replacing it cannot
/// break the calls.
const FACTORY: &str = r#"(function(call, log, load, matches){
var stringify = JSON.stringify, parse = JSON.parse, isArray = Array.isArray;
function fail(error) {
  var e = new Error(error.message);
  e.code = error.code;
  if (error.detail !== undefined && error.detail !== null) e.detail = error.detail;
  throw e;
}
function invoke(req) {
  var answer = parse(call(stringify(req)));
  if (answer.error) fail(answer.error);
  return answer.value;
}
function isEncrypted(value) {
  return value !== null && typeof value === "object" && !isArray(value) && value.$crypto !== undefined;
}
function opt(v) { return v === undefined ? null : v; }
var openidm = {
  create: function(resource, newId, content, params, fields) {
    return invoke({method: "create", resource: resource, newId: opt(newId), content: opt(content), params: opt(params), fields: opt(fields)});
  },
  read: function(resource, params, fields) {
    return invoke({method: "read", resource: resource, params: opt(params), fields: opt(fields)});
  },
  update: function(resource, rev, content, params, fields) {
    return invoke({method: "update", resource: resource, rev: opt(rev), content: opt(content), params: opt(params), fields: opt(fields)});
  },
  patch: function(resource, rev, operations, params, fields) {
    return invoke({method: "patch", resource: resource, rev: opt(rev), content: opt(operations), params: opt(params), fields: opt(fields)});
  },
  "delete": function(resource, rev, params, fields) {
    return invoke({method: "delete", resource: resource, rev: opt(rev), params: opt(params), fields: opt(fields)});
  },
  query: function(resource, params, fields) {
    return invoke({method: "query", resource: resource, params: opt(params), fields: opt(fields)});
  },
  action: function(resource, action, content, params, fields) {
    return invoke({method: "action", resource: resource, action: opt(action), content: opt(content), params: opt(params), fields: opt(fields)});
  },
  isEncrypted: isEncrypted,
  decrypt: function(value) {
    if (!isEncrypted(value)) return value;
    fail({code: 501, message: "openidm.decrypt: this value was encrypted by IDM ($crypto); idsync stores property values as given and holds no IDM keys, so it cannot decrypt it (re-import the value in clear)"});
  },
  encrypt: function(value, cipher, alias) {
    fail({code: 501, message: "openidm.encrypt: idsync does not encrypt property values (it stores them as given, private properties hidden from reads; see docs/scripts.md)"});
  }
};
// CommonJS modules: `require(name)` loads a script file as IDM finds it (docs/scripts.md#require-modules),
// runs it once per thread engine with `exports` and `module`, and keeps its exports while the
// file is unchanged.
var modules = {};
function require(name) {
  name = String(name);
  var cached = modules[name];
  var got = load(name, cached ? cached.version : null);
  if (got.error) fail(got.error);
  if (cached && got.version === cached.version) return cached.module.exports;
  var module = {id: got.key, exports: {}};
  modules[name] = {version: got.version, module: module};
  try {
    got.run.call(module.exports, module.exports, module, require);
  } catch (e) {
    delete modules[name];
    throw e;
  }
  return module.exports;
}
var idsync = {
  filterMatches: function(filter, object) {
    var answer = parse(matches(String(filter), stringify(object === undefined ? null : object)));
    if (answer.error) fail(answer.error);
    return answer.value;
  }
};
var identityServer = {
  getProperty: function(name, defaultValue) {
    var v = invoke({method: "property", name: String(name)});
    if (v === null) return defaultValue === undefined ? null : defaultValue;
    return v;
  },
  getInstallLocation: function() { return invoke({method: "location"}); },
  getProjectLocation: function() { return invoke({method: "location"}); }
};
function text(v) {
  if (typeof v === "string") return v;
  if (v === undefined) return "undefined";
  if (v !== null && typeof v === "object") { try { return stringify(v); } catch (e) { return String(v); } }
  return String(v);
}
function format(args) {
  if (args.length === 0) return "";
  var rest = Array.prototype.slice.call(args, 1), i = 0;
  var out = text(args[0]).replace(/\{\}/g, function() { return i < rest.length ? text(rest[i++]) : "{}"; });
  for (; i < rest.length; i++) out += " " + text(rest[i]);
  return out;
}
function level(name) { return function() { log(name, format(arguments)); }; }
var logger = {debug: level("debug"), trace: level("debug"), info: level("info"), warn: level("warn"), error: level("error")};
return [openidm, identityServer, logger, require, idsync];
})"#;

/// The wrappers' source, evaluated by the engine (in its wrapper file, sloppy mode).
pub(crate) fn factory_source() -> &'static str {
    FACTORY
}

/// Installs `openidm`, `identityServer`, `logger`, `require` and `__idsync` (the built-in
/// library's helpers) on the context's global object, given the evaluated [`factory_source`].
pub(crate) fn install<'js>(ctx: &Ctx<'js>, factory: Function<'js>) -> rquickjs::Result<()> {
    let call = Function::new(ctx.clone(), |payload: String| -> String {
        answer(&payload).to_string()
    })?;
    let log = Function::new(ctx.clone(), |level: String, text: String| {
        log_line(&level, &text);
    })?;
    let load = Function::new(
        ctx.clone(),
        |ctx: Ctx<'js>, name: String, known: Option<String>| load_module(&ctx, &name, known),
    )?;
    let matches = Function::new(ctx.clone(), |filter: String, object: String| -> String {
        filter_matches(&filter, &object).to_string()
    })?;
    let made: Array = factory.call((call, log, load, matches))?;
    let globals = ctx.globals();
    for (i, name) in ["openidm", "identityServer", "logger", "require", "__idsync"]
        .into_iter()
        .enumerate()
    {
        let object: rquickjs::Value = made.get(i)?;
        // Not enumerable, so the sweep after each call leaves it alone.
        globals.prop(name, Property::from(object).writable().configurable())?;
    }
    Ok(())
}

/// One call from the wrappers, answered as `{"value": ...}` or `{"error": {...}}`.
fn answer(payload: &str) -> Value {
    let request: Value = match serde_json::from_str(payload) {
        Ok(v) => v,
        Err(e) => return error(&host::HostError::new(500, format!("malformed call: {e}"))),
    };
    let outcome = match request.get("method").and_then(Value::as_str) {
        Some("property") => {
            let name = request
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            host::property(name).map(|v| v.map_or(Value::Null, Value::String))
        }
        Some("location") => host::project_location().map(Value::String),
        _ => host::dispatch(request),
    };
    match outcome {
        Ok(value) => json!({ "value": value }),
        Err(e) => error(&e),
    }
}

/// `require(name)`'s loader: the module's resolved name and version (a hash of its text) and,
/// unless the caller already runs that version (`known`), its code compiled as a CommonJS
/// function `(exports, module, require)` under the module's own file name, so an error in it
/// names the module. A failure is `{"error": {code, message}}`, thrown by the JavaScript side.
fn load_module<'js>(
    ctx: &Ctx<'js>,
    name: &str,
    known: Option<String>,
) -> rquickjs::Result<Object<'js>> {
    let out = Object::new(ctx.clone())?;
    let failed = |out: Object<'js>, e: host::HostError| -> rquickjs::Result<Object<'js>> {
        let error = Object::new(ctx.clone())?;
        error.set("code", e.code)?;
        error.set("message", e.message)?;
        out.set("error", error)?;
        Ok(out)
    };
    let module = match host::module(name) {
        Ok(m) => m,
        Err(e) => return failed(out, e),
    };
    let version = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        module.source.hash(&mut h);
        format!("{:016x}", h.finish())
    };
    out.set("key", module.key.as_str())?;
    out.set("version", version.as_str())?;
    if known.as_deref() == Some(version.as_str()) {
        return Ok(out);
    }
    let mut options = rquickjs::context::EvalOptions::default();
    options.strict = false;
    options.filename = Some(module.key.clone());
    let wrapped = format!(
        "(function(exports, module, require){{{}\n}})",
        module.source
    );
    match ctx.eval_with_options::<Function, _>(wrapped, options) {
        Ok(run) => {
            out.set("run", run)?;
            Ok(out)
        }
        Err(rquickjs::Error::Exception) => {
            let thrown = ctx.catch();
            let (message, line) = crate::failure::describe_thrown(&thrown);
            let at = line.map(|l| format!(" (line {l})")).unwrap_or_default();
            failed(
                out,
                host::HostError::new(
                    500,
                    format!("require('{name}'): {}{at}: {message}", module.key),
                ),
            )
        }
        Err(e) => Err(e),
    }
}

/// `__idsync.filterMatches(filter, object)`: whether `object` (JSON text) matches the CREST
/// query filter `filter`, by the same evaluator queries use.
fn filter_matches(filter: &str, object: &str) -> Value {
    let parsed = match idsync_core::filter::parse(filter) {
        Ok(f) => f,
        Err(e) => {
            return error(&host::HostError::new(
                400,
                format!("bad query filter \"{filter}\": {e}"),
            ));
        }
    };
    match serde_json::from_str::<Value>(object) {
        Ok(object) => json!({ "value": parsed.matches(&object) }),
        Err(e) => error(&host::HostError::new(500, format!("malformed object: {e}"))),
    }
}

fn error(e: &host::HostError) -> Value {
    json!({"error": {"code": e.code, "message": e.message, "detail": e.detail}})
}

/// A `logger` line: `tracing` under the `idsync::script` target, with the script's origin.
fn log_line(level: &str, text: &str) {
    if host::current_quiet() {
        return;
    }
    let origin = host::current_origin()
        .map(|o| o.to_string())
        .unwrap_or_else(|| "script".to_owned());
    match level {
        "debug" => tracing::debug!(target: "idsync::script", origin = %origin, "{text}"),
        "info" => tracing::info!(target: "idsync::script", origin = %origin, "{text}"),
        "warn" => tracing::warn!(target: "idsync::script", origin = %origin, "{text}"),
        _ => tracing::error!(target: "idsync::script", origin = %origin, "{text}"),
    }
}
