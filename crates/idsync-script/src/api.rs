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
const FACTORY: &str = r#"(function(call, log){
var stringify = JSON.stringify, parse = JSON.parse, isArray = Array.isArray;
function invoke(req) {
  var answer = parse(call(stringify(req)));
  if (answer.error) {
    var e = new Error(answer.error.message);
    e.code = answer.error.code;
    if (answer.error.detail !== undefined && answer.error.detail !== null) e.detail = answer.error.detail;
    throw e;
  }
  return answer.value;
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
  decrypt: function(value) {
    if (value !== null && typeof value === "object" && value["$crypto"] !== undefined) throw new Error("openidm.decrypt: idsync keeps no encrypted values to decrypt ($crypto)");
    return value;
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
return [openidm, identityServer, logger];
})"#;

/// The wrappers' source, evaluated by the engine (in its wrapper file, sloppy mode).
pub(crate) fn factory_source() -> &'static str {
    FACTORY
}

/// Installs `openidm`, `identityServer` and `logger` on the context's global object, given the
/// evaluated [`factory_source`].
pub(crate) fn install<'js>(ctx: &Ctx<'js>, factory: Function<'js>) -> rquickjs::Result<()> {
    let call = Function::new(ctx.clone(), |payload: String| -> String {
        answer(&payload).to_string()
    })?;
    let log = Function::new(ctx.clone(), |level: String, text: String| {
        log_line(&level, &text);
    })?;
    let made: Array = factory.call((call, log))?;
    let globals = ctx.globals();
    for (i, name) in ["openidm", "identityServer", "logger"]
        .into_iter()
        .enumerate()
    {
        let object: Object = made.get(i)?;
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
