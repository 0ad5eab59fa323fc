//! `conf/schedule-<name>.json` read into a [`Schedule`]: shape only.
//! The Quartz cron syntax is checked by the scheduler, not here.

use crate::cx::Cx;
use crate::script::script;
use crate::types::{InvokeService, Schedule, ScheduleType};
use serde_json::{Map, Value};

pub(crate) fn schedule(cx: &mut Cx<'_>, name: &str, v: &Value) -> Option<Schedule> {
    let mut o = cx.object("", v)?;
    let before = cx.sink.errors.len();
    let enabled = o.bool_or(cx, "enabled", true);
    let r#type = match o.opt_str(cx, "type").as_deref() {
        None | Some("cron") => Some(ScheduleType::Cron),
        Some("simple") => Some(ScheduleType::Simple),
        Some(other) => {
            cx.error(
                &o.at("type"),
                format!("unknown schedule type \"{other}\" (known: cron, simple)"),
            );
            None
        }
    };
    let schedule = o.opt_str(cx, "schedule");
    if r#type == Some(ScheduleType::Cron) && schedule.is_none() {
        cx.error(
            &o.at("schedule"),
            "missing required key \"schedule\" (a cron schedule needs a cron expression)",
        );
    }
    let repeat_interval_ms = o.opt_at_least(cx, "repeatInterval", 1);
    let repeat_count = o.opt_int(cx, "repeatCount");
    let persisted = o.bool_or(cx, "persisted", false);
    let concurrent_execution = o.bool_or(cx, "concurrentExecution", false);
    let start_time = o.opt_str(cx, "startTime");
    let end_time = o.opt_str(cx, "endTime");
    let timezone = match o.opt_str(cx, "timezone") {
        Some(t) => Some(t),
        None => o.opt_str(cx, "timeZone"),
    };
    let invoke_service = o.req_str(cx, "invokeService").and_then(|s| {
        match s.trim_start_matches("org.forgerock.openidm.") {
            "sync" => Some(InvokeService::Sync),
            "provisioner" => Some(InvokeService::Provisioner),
            "script" => Some(InvokeService::Script),
            _ => {
                cx.error(
                    &o.at("invokeService"),
                    format!("unknown invokeService \"{s}\" (known: sync, provisioner, script)"),
                );
                None
            }
        }
    });
    let invoke_context = o
        .get("invokeContext")
        .cloned()
        .unwrap_or_else(|| Value::Object(Map::new()));
    let ctx_ptr = o.at("invokeContext");
    o.accept(&["invokeLogLevel", "misfirePolicy"]);
    o.finish(cx);
    if let (Some(service), Some(ctx)) = (invoke_service, cx.object(&ctx_ptr, &invoke_context)) {
        invoke_context_shape(cx, service, ctx);
    }
    if cx.sink.errors.len() != before {
        return None;
    }
    Some(Schedule {
        name: name.to_string(),
        enabled,
        r#type: r#type?,
        schedule,
        repeat_interval_ms,
        repeat_count,
        persisted,
        concurrent_execution,
        start_time,
        end_time,
        timezone,
        invoke_service: invoke_service?,
        invoke_context,
        raw: v.clone(),
    })
}

/// The keys each service needs; whether the mapping or source exists is checked in `crossref`.
fn invoke_context_shape(cx: &mut Cx<'_>, service: InvokeService, mut ctx: crate::cx::Obj<'_>) {
    match service {
        InvokeService::Sync => {
            if let Some(a) = ctx.req_str(cx, "action")
                && a != "reconcile"
                && a != "recon"
            {
                cx.error(
                    &ctx.at("action"),
                    format!("unknown sync action \"{a}\" (known: reconcile, recon)"),
                );
            }
            match ctx.required(cx, "mapping") {
                Some(Value::String(_)) | Some(Value::Object(_)) | None => {}
                Some(other) => cx.wrong_type(
                    &ctx.at("mapping"),
                    "a mapping name or a mapping object",
                    other,
                ),
            }
        }
        InvokeService::Provisioner => {
            if let Some(a) = ctx.req_str(cx, "action")
                && a != "liveSync"
                && a != "activeSync"
            {
                cx.error(
                    &ctx.at("action"),
                    format!("unknown provisioner action \"{a}\" (known: liveSync)"),
                );
            }
            let _ = ctx.req_str(cx, "source");
        }
        InvokeService::Script => {
            if let Some(s) = ctx.required(cx, "script") {
                let _ = script(cx, &ctx.at("script"), s);
            }
        }
    }
    // The rest of invokeContext is passed to the service as parameters.
    ctx.open_end(cx);
}
