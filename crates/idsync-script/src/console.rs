//! The `console` object of scripts: `console.log` and friends write to `tracing` under the
//! `idsync::script` target. Must not expose anything else to scripts.

use rquickjs::function::Rest;
use rquickjs::object::Property;
use rquickjs::{Ctx, Function, Object, Value as JsValue};

use crate::convert;

/// `console.log` and friends write to `tracing` under the `idsync::script` target.
pub(crate) fn install_console(ctx: &Ctx<'_>) -> rquickjs::Result<()> {
    let console = Object::new(ctx.clone())?;
    console.set(
        "log",
        Function::new(ctx.clone(), |args: Rest<JsValue>| {
            log_line(Level::Info, &args)
        })?,
    )?;
    console.set(
        "info",
        Function::new(ctx.clone(), |args: Rest<JsValue>| {
            log_line(Level::Info, &args)
        })?,
    )?;
    console.set(
        "debug",
        Function::new(ctx.clone(), |args: Rest<JsValue>| {
            log_line(Level::Debug, &args)
        })?,
    )?;
    console.set(
        "warn",
        Function::new(ctx.clone(), |args: Rest<JsValue>| {
            log_line(Level::Warn, &args)
        })?,
    )?;
    console.set(
        "error",
        Function::new(ctx.clone(), |args: Rest<JsValue>| {
            log_line(Level::Error, &args)
        })?,
    )?;
    // Not enumerable, so the sweep after each call leaves it alone.
    ctx.globals()
        .prop("console", Property::from(console).writable().configurable())?;
    Ok(())
}

#[derive(Clone, Copy)]
enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

fn log_line(level: Level, args: &Rest<JsValue<'_>>) {
    let text = args
        .0
        .iter()
        .map(|arg| match arg.as_string() {
            Some(s) => s.to_string().unwrap_or_default(),
            None => match convert::from_js(arg) {
                Ok(v) => v.to_string(),
                Err(_) => format!("[{}]", arg.type_name()),
            },
        })
        .collect::<Vec<_>>()
        .join(" ");
    match level {
        Level::Debug => tracing::debug!(target: "idsync::script", "{text}"),
        Level::Info => tracing::info!(target: "idsync::script", "{text}"),
        Level::Warn => tracing::warn!(target: "idsync::script", "{text}"),
        Level::Error => tracing::error!(target: "idsync::script", "{text}"),
    }
}
