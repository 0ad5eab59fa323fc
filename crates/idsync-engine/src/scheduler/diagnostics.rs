//! The trigger errors of a project's schedules as diagnostics, for `idsync config validate`
//! and the commands that load a project: the config crate checks shapes only, the trigger
//! syntax is checked here.

use idsync_config::{Diagnostic, InvokeService, Project, Schedule, ScheduleType};
use idsync_scheduler::Trigger;
use serde_json::Value;
use std::path::Path;

/// The trigger errors of the project's schedules as diagnostics
/// (`conf/schedule-<name>.json: /schedule: ...`), for `idsync config validate` and the commands
/// that load a project (the config crate checks shapes only; the cron syntax is checked here).
pub fn trigger_diagnostics(project: &Project) -> Vec<Diagnostic> {
    project
        .schedules
        .iter()
        .filter_map(|(name, s)| {
            Trigger::from_schedule(s).err().map(|e| {
                Diagnostic::new(format!("conf/schedule-{name}.json"), e.pointer, e.message)
            })
        })
        .collect()
}

/// The trigger errors of the `conf/schedule-*.json` files of a project that failed to load for
/// other reasons, so that `config validate` still reports every error at once. Files that do
/// not parse, use `&{...}` substitutions or are otherwise malformed are left to the loader's
/// own diagnostics.
pub fn trigger_diagnostics_of_files(dir: &Path) -> Vec<Diagnostic> {
    let Ok(entries) = std::fs::read_dir(dir.join("conf")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    for file in names {
        let Some(name) = file
            .strip_prefix("schedule-")
            .and_then(|n| n.strip_suffix(".json"))
        else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(dir.join("conf").join(&file)) else {
            continue;
        };
        if text.contains("&{") {
            continue;
        }
        let Ok(value) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        // Only the trigger matters here: the shape is the loader's business.
        let Some(schedule) = trigger_probe(name, &value) else {
            continue;
        };
        if let Err(e) = Trigger::from_schedule(&schedule) {
            out.push(Diagnostic::new(
                format!("conf/{file}"),
                e.pointer,
                e.message,
            ));
        }
    }
    out
}

/// The trigger settings of a schedule file as a [`Schedule`], or `None` when their shape is
/// wrong (the loader reports that).
fn trigger_probe(name: &str, v: &Value) -> Option<Schedule> {
    let o = v.as_object()?;
    let text = |k: &str| -> Result<Option<String>, ()> {
        match o.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(()),
        }
    };
    let r#type = match text("type").ok()?.as_deref() {
        None | Some("cron") => ScheduleType::Cron,
        Some("simple") => ScheduleType::Simple,
        Some(_) => return None,
    };
    let schedule = text("schedule").ok()?;
    if r#type == ScheduleType::Cron && schedule.is_none() {
        return None;
    }
    let repeat_interval_ms = match o.get("repeatInterval") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().filter(|n| *n >= 1)?),
    };
    let repeat_count = match o.get("repeatCount") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_i64()?),
    };
    let timezone = match text("timezone").ok()? {
        Some(t) => Some(t),
        None => text("timeZone").ok()?,
    };
    Some(Schedule {
        name: name.to_string(),
        enabled: true,
        r#type,
        schedule,
        repeat_interval_ms,
        repeat_count,
        persisted: false,
        concurrent_execution: false,
        start_time: text("startTime").ok()?,
        end_time: text("endTime").ok()?,
        timezone,
        invoke_service: InvokeService::Sync,
        invoke_context: Value::Null,
        raw: v.clone(),
    })
}
