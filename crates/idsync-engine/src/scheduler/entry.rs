//! A schedule as the scheduler knows it: its definition and where it is defined
//! ([`ScheduleEntry`], [`Origin`]), its REST representation, and reading and checking a
//! schedule written over REST ([`parse_schedule`]).

use super::iso;
use chrono::{DateTime, Utc};
use idsync_config::{InvokeService, Schedule, ScheduleType};
use idsync_scheduler::{ScheduleError, Trigger};
use serde_json::{Map, Value, json};

/// Keys of a schedule's JSON that are answers, not settings: ignored when a schedule is written,
/// so that a client can PUT back what it read.
const READ_ONLY_KEYS: &[&str] = &["_id", "_rev", "nextRunDate", "origin", "triggers"];

/// Where a schedule is defined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// `conf/schedule-<name>.json`: read-only over REST.
    Config,
    /// Created over REST and stored in the repository, with its revision.
    Repository { rev: String },
}

/// A schedule the scheduler fires.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleEntry {
    pub schedule: Schedule,
    pub origin: Origin,
    /// For a stored schedule, when it was last stored: an instant every node agrees on, used as
    /// the default start of its trigger and as the firing anchor before its first firing.
    pub anchor: Option<DateTime<Utc>>,
}

impl ScheduleEntry {
    pub fn name(&self) -> &str {
        &self.schedule.name
    }

    /// The config file of a `conf/` schedule.
    pub fn config_file(&self) -> Option<String> {
        match self.origin {
            Origin::Config => Some(format!("conf/schedule-{}.json", self.schedule.name)),
            Origin::Repository { .. } => None,
        }
    }

    /// The trigger; a stored schedule without `startTime` starts at its anchor.
    pub fn trigger(&self) -> Result<Trigger, ScheduleError> {
        let t = Trigger::from_schedule(&self.schedule)?;
        Ok(match self.anchor {
            Some(a) => t.with_default_start(a),
            None => t,
        })
    }

    /// What the fire times depend on: firing rows of another definition are not this
    /// schedule's history.
    pub fn fingerprint(&self) -> String {
        let s = &self.schedule;
        json!([
            match s.r#type {
                ScheduleType::Cron => "cron",
                ScheduleType::Simple => "simple",
            },
            s.schedule,
            s.repeat_interval_ms,
            s.repeat_count,
            s.start_time,
            s.end_time,
            s.timezone,
            self.anchor.map(|a| a.timestamp_millis()),
        ])
        .to_string()
    }

    /// The REST representation (IDM's job shape plus `origin`), with `nextRunDate`.
    pub fn to_json(&self, next_run: Option<DateTime<Utc>>) -> Value {
        let s = &self.schedule;
        let raw = |k: &str| s.raw.get(k).cloned();
        let mut o = Map::new();
        o.insert("_id".into(), json!(s.name));
        if let Origin::Repository { rev } = &self.origin {
            o.insert("_rev".into(), json!(rev));
        }
        o.insert("enabled".into(), json!(s.enabled));
        o.insert("persisted".into(), json!(s.persisted));
        o.insert(
            "type".into(),
            json!(match s.r#type {
                ScheduleType::Cron => "cron",
                ScheduleType::Simple => "simple",
            }),
        );
        o.insert("schedule".into(), json!(s.schedule));
        o.insert("repeatInterval".into(), json!(s.repeat_interval_ms));
        o.insert("repeatCount".into(), json!(s.repeat_count));
        o.insert("concurrentExecution".into(), json!(s.concurrent_execution));
        o.insert("startTime".into(), json!(s.start_time));
        o.insert("endTime".into(), json!(s.end_time));
        o.insert("timeZone".into(), json!(s.timezone));
        o.insert(
            "invokeService".into(),
            raw("invokeService").unwrap_or_else(|| json!(service_name(s.invoke_service))),
        );
        o.insert("invokeContext".into(), s.invoke_context.clone());
        o.insert(
            "invokeLogLevel".into(),
            raw("invokeLogLevel").unwrap_or_else(|| json!("info")),
        );
        o.insert(
            "misfirePolicy".into(),
            raw("misfirePolicy").unwrap_or_else(|| json!("fireAndProceed")),
        );
        o.insert(
            "origin".into(),
            json!(self.config_file().unwrap_or_else(|| "repository".into())),
        );
        o.insert("nextRunDate".into(), json!(next_run.map(iso)));
        Value::Object(o)
    }
}

fn service_name(s: InvokeService) -> &'static str {
    match s {
        InvokeService::Sync => "sync",
        InvokeService::Provisioner => "provisioner",
        InvokeService::Script => "script",
    }
}

/// Reads a schedule written over REST (the same keys as `conf/schedule-<name>.json`) and checks
/// its trigger with [`idsync_scheduler::validate_schedule`]. Errors read `/pointer: message`,
/// several joined by `; `.
pub fn parse_schedule(name: &str, body: &Value) -> Result<Schedule, String> {
    let Some(obj) = body.as_object() else {
        return Err("a schedule must be a JSON object".into());
    };
    let mut raw = obj.clone();
    for k in READ_ONLY_KEYS {
        raw.remove(*k);
    }
    let mut errs: Vec<String> = Vec::new();
    let flag = |key: &str, default: bool, errs: &mut Vec<String>| match raw.get(key) {
        None | Some(Value::Null) => default,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            errs.push(format!("/{key}: must be true or false, not {other}"));
            default
        }
    };
    let enabled = flag("enabled", true, &mut errs);
    let persisted = flag("persisted", false, &mut errs);
    let concurrent_execution = flag("concurrentExecution", false, &mut errs);
    let text = |key: &str, errs: &mut Vec<String>| match raw.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            errs.push(format!("/{key}: must be a string, not {other}"));
            None
        }
    };
    let r#type = match text("type", &mut errs).as_deref() {
        None | Some("cron") => ScheduleType::Cron,
        Some("simple") => ScheduleType::Simple,
        Some(other) => {
            errs.push(format!(
                "/type: unknown schedule type \"{other}\" (known: cron, simple)"
            ));
            ScheduleType::Cron
        }
    };
    let schedule = text("schedule", &mut errs);
    let start_time = text("startTime", &mut errs);
    let end_time = text("endTime", &mut errs);
    let timezone = text("timeZone", &mut errs).or_else(|| text("timezone", &mut errs));
    let repeat_interval_ms = match raw.get("repeatInterval") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 => Some(n),
            _ => {
                errs.push(format!(
                    "/repeatInterval: must be a number of milliseconds of at least 1, not {v}"
                ));
                None
            }
        },
    };
    let repeat_count = match raw.get("repeatCount") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_i64() {
            Some(n) => Some(n),
            None => {
                errs.push(format!("/repeatCount: must be an integer, not {v}"));
                None
            }
        },
    };
    let invoke_service = match text("invokeService", &mut errs) {
        None => {
            errs.push("/invokeService: missing required key (sync, provisioner or script)".into());
            None
        }
        Some(s) => match s.trim_start_matches("org.forgerock.openidm.") {
            "sync" => Some(InvokeService::Sync),
            "provisioner" => Some(InvokeService::Provisioner),
            "script" => Some(InvokeService::Script),
            _ => {
                errs.push(format!(
                    "/invokeService: unknown invokeService \"{s}\" (known: sync, provisioner, script)"
                ));
                None
            }
        },
    };
    let invoke_context = match raw.get("invokeContext") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(other) => {
            errs.push(format!("/invokeContext: must be an object, not {other}"));
            Value::Object(Map::new())
        }
    };
    if let Some(service) = invoke_service {
        check_invoke_context(service, &invoke_context, &mut errs);
    }
    let parsed = Schedule {
        name: name.to_string(),
        enabled,
        r#type,
        schedule,
        repeat_interval_ms,
        repeat_count,
        persisted,
        concurrent_execution,
        start_time,
        end_time,
        timezone,
        invoke_service: invoke_service.unwrap_or(InvokeService::Sync),
        invoke_context,
        raw: Value::Object(raw),
    };
    if errs.is_empty()
        && let Err(e) = idsync_scheduler::validate_schedule(&parsed)
    {
        errs.push(e);
    }
    if errs.is_empty() {
        Ok(parsed)
    } else {
        Err(errs.join("; "))
    }
}

fn check_invoke_context(service: InvokeService, ctx: &Value, errs: &mut Vec<String>) {
    let action = ctx.get("action").and_then(Value::as_str);
    match service {
        InvokeService::Sync => {
            match action {
                Some("reconcile" | "recon") => {}
                Some(a) => errs.push(format!(
                    "/invokeContext/action: unknown sync action \"{a}\" (known: reconcile, recon)"
                )),
                None => errs.push("/invokeContext/action: missing required key".into()),
            }
            match ctx.get("mapping") {
                Some(Value::String(_) | Value::Object(_)) => {}
                Some(other) => errs.push(format!(
                    "/invokeContext/mapping: must be a mapping name or a mapping object, not {other}"
                )),
                None => errs.push("/invokeContext/mapping: missing required key".into()),
            }
        }
        InvokeService::Provisioner => {
            match action {
                Some("liveSync" | "activeSync") => {}
                Some(a) => errs.push(format!(
                    "/invokeContext/action: unknown provisioner action \"{a}\" (known: liveSync)"
                )),
                None => errs.push("/invokeContext/action: missing required key".into()),
            }
            if !ctx.get("source").is_some_and(Value::is_string) {
                errs.push(
                    "/invokeContext/source: missing required key (system/<name>/<type>)".into(),
                );
            }
        }
        InvokeService::Script => match ctx.get("script") {
            Some(Value::Object(s)) => {
                let ty = s.get("type").and_then(Value::as_str);
                if !matches!(ty, None | Some("text/javascript")) {
                    errs.push(format!(
                        "/invokeContext/script/type: only \"text/javascript\" scripts run, not {}",
                        s["type"]
                    ));
                }
                if !s.get("source").is_some_and(Value::is_string)
                    && !s.get("file").is_some_and(Value::is_string)
                {
                    errs.push("/invokeContext/script: needs \"source\" or \"file\"".into());
                }
            }
            Some(Value::String(_)) => {}
            Some(other) => errs.push(format!(
                "/invokeContext/script: must be a script object, not {other}"
            )),
            None => errs.push("/invokeContext/script: missing required key".into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_bodies_parse_and_report_pointers() {
        let s = parse_schedule(
            "nightly",
            &json!({"schedule": "0 0 2 * * ?", "invokeService": "org.forgerock.openidm.sync",
                    "invokeContext": {"action": "reconcile", "mapping": "m"},
                    "_id": "ignored", "nextRunDate": "x"}),
        )
        .unwrap();
        assert_eq!(s.invoke_service, InvokeService::Sync);
        assert!(s.enabled);
        assert!(!s.concurrent_execution);
        assert!(s.raw.get("_id").is_none());
        let e = parse_schedule(
            "bad",
            &json!({"schedule": "0 61 * * * ?", "invokeService": "sync",
                    "invokeContext": {"action": "reconcile", "mapping": "m"}}),
        )
        .unwrap_err();
        assert!(e.starts_with("/schedule: "), "{e}");
        let e =
            parse_schedule("x", &json!({"enabled": "yes", "invokeService": "mail"})).unwrap_err();
        assert!(e.contains("/enabled:"), "{e}");
        assert!(e.contains("/invokeService:"), "{e}");
    }
}
