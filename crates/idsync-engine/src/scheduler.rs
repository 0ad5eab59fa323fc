//! The scheduler (SPEC §8, reference §3.7): fires every enabled schedule — the project's
//! `conf/schedule-<name>.json` files and the ones created over REST — on exactly one node of the
//! cluster, and runs what it invokes (a reconciliation, an inline script).
//!
//! # Storage
//!
//! Two internal object types of the repository's object table, so both backends need no new
//! table (they are not reachable as `managed/...`, which only serves declared types):
//!
//! - [`SCHEDULE_TYPE`] (`_schedule`): schedules created or replaced over REST, one object per
//!   schedule id: `{"definition": <the schedule JSON>, "anchorMs": <when it was stored>}`. Every
//!   REST-created schedule is stored, whatever its `persisted` says, so that every node fires it
//!   and it survives restarts. `conf/` schedules are never stored: the files are their truth,
//!   and they are read-only over REST.
//! - [`FIRING_TYPE`] (`_schedule_firing`): one object per firing, whose id is the firing id
//!   `<schedule>@<epoch ms>` ([`idsync_scheduler::firing_id`]) — the claim row.
//!
//! # One firing, one node
//!
//! Each node's [`run_scheduler`] computes each schedule's next fire time from the *previous
//! fire time* (the newest firing row, or the schedule's stored anchor), never from its own
//! clock, so every node computes the same instant and the same firing id. When the instant is
//! due (by the node's clock, which may be a little off), the node creates the firing row: the
//! one create that succeeds runs the firing; the others get a conflict and skip it. Before
//! creating, a node re-reads the newest firing row, so a node that is late (slow clock, busy)
//! follows the others instead of firing an old slot.
//!
//! # Missed firings
//!
//! After downtime (or a stall) the due slots are collapsed into one firing, at once, identified
//! by the latest missed slot — Quartz's default misfire policy for cron triggers
//! (fire once now), not one firing per missed slot.
//!
//! # What a firing runs
//!
//! - `invokeService: "sync"` with `{"action":"reconcile"|"recon","mapping":M}` starts a
//!   reconciliation with [`Engine::start_recon`]; the other keys of `invokeContext` are the
//!   run's overrides. While the mapping has an active run (anywhere in the cluster, the whole
//!   clustered run) the firing is SKIPPED and logged with the active run's id: with
//!   `concurrentExecution: false` that is the documented behaviour, and with `true` it is the
//!   one-active-run-per-mapping rule (SPEC §6.1).
//! - `"provisioner"` (liveSync) is not supported yet: the firing is SKIPPED, logged once.
//! - `"script"` runs the inline (or `file`) JavaScript on a blocking thread with `input` (the
//!   context's `input`) and `context` (`{"schedule","firingId","scheduledFireTime"}`) bound.
//!   IDM's `openidm.*` functions are not available; such a script fails and the firing is
//!   FAILED with the script's message. With `concurrentExecution: false` a firing is SKIPPED
//!   while an earlier script firing of the schedule still runs on a live node.
//!
//! # A node that dies with a firing
//!
//! Claiming a firing (its row) and starting its reconciliation are separate commits, so a node
//! can die between them. The run of a firing has a deterministic id ([`firing_run_id`]), and
//! every node's loop looks for `sync` firings still RUNNING whose node is down (or is this node
//! in an earlier life): it takes the firing over (a revision-checked update of its row, so one
//! node wins) and runs it again. A start with that run id that finds the run already created
//! adopts it (and schedules its first page if the dead node had not), so a firing never starts
//! two runs. Firings older than [`TAKEOVER_WINDOW`] are marked FAILED instead: the schedule's
//! next firing does the work.
//!
//! Firing rows record the outcome (`status`: RUNNING, STARTED, SKIPPED, SUCCESS, FAILED, with
//! `runId`, `activeRunId`, `message`); the node that wins a firing keeps the newest
//! [`KEEP_FIRINGS`] rows of the schedule and deletes older ones.

use crate::Engine;
use crate::error::{EngineError, EngineResult};
use crate::recon::effective::ReconOptions;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use idsync_config::{Diagnostic, InvokeService, Project, Schedule, ScheduleType};
use idsync_core::filter::CompareOp;
use idsync_core::{Filter, JsonPointer, QueryPage, QueryRequest, SortKey};
use idsync_repo::{ChangeSet, NodeState, Op, RepoError};
use idsync_scheduler::{ScheduleError, Trigger, firing_id};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// The object type of schedules stored over REST.
pub const SCHEDULE_TYPE: &str = "_schedule";
/// The object type of firing (claim) rows.
pub const FIRING_TYPE: &str = "_schedule_firing";
/// Firing rows kept per schedule; older ones are deleted by the node that wins a firing.
pub const KEEP_FIRINGS: usize = 100;
/// How often a node re-reads the stored schedules (created, changed or deleted on any node).
const RELOAD_EVERY: Duration = Duration::from_secs(1);
/// A pause after a failed repository call, so that a down repository is not hammered.
const ERROR_PAUSE: Duration = Duration::from_millis(500);
/// How often a node looks for firings whose node died before their run started.
const TAKEOVER_EVERY: Duration = Duration::from_secs(2);
/// A stale firing older than this (by its fire time) is not run any more, only marked FAILED.
pub const TAKEOVER_WINDOW: TimeDelta = TimeDelta::minutes(10);

/// The run id of a firing's reconciliation: the same on every node, so that a node taking a
/// firing over finds the run if the dead node had started it. UUID v7-shaped (the fire time in
/// its timestamp bits), like the ids of other runs.
pub fn firing_run_id(firing_id: &str, fire_time_ms: i64) -> String {
    let fnv = |seed: u64| {
        firing_id.bytes().fold(seed, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    };
    let (a, b) = (fnv(0xcbf2_9ce4_8422_2325), fnv(0x8422_2325_cbf2_9ce4));
    let mut rand = [0u8; 10];
    rand[..8].copy_from_slice(&a.to_be_bytes());
    rand[8..].copy_from_slice(&b.to_be_bytes()[..2]);
    let ms = u64::try_from(fire_time_ms).unwrap_or(0);
    uuid::Builder::from_unix_timestamp_millis(ms, &rand)
        .into_uuid()
        .to_string()
}

/// When this process's scheduler started: a RUNNING firing of this node id claimed before it
/// belongs to an earlier life of the node.
fn process_start() -> DateTime<Utc> {
    static START: std::sync::OnceLock<DateTime<Utc>> = std::sync::OnceLock::new();
    *START.get_or_init(Utc::now)
}

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

/// ISO-8601 UTC with milliseconds (SPEC §16).
pub fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

// ------------------------------------------------------------------------------------------
// Parsing and validation

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

// ------------------------------------------------------------------------------------------
// Firing rows

/// What became of a firing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FiringStatus {
    /// Claimed; its work has not finished (or its node died).
    Running,
    /// A reconciliation was started (`runId`).
    Started,
    /// Nothing ran: the mapping's previous run is active (`activeRunId`), or the service is not
    /// supported; `message` says why.
    Skipped,
    /// A script ran to its end.
    Success,
    Failed,
}

/// One firing: the claim row of a schedule's fire time, and what it did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Firing {
    #[serde(rename = "_id")]
    pub id: String,
    pub schedule: String,
    /// The scheduled instant, epoch milliseconds (the id's suffix).
    pub fire_time: i64,
    pub fire_date: String,
    /// How many scheduled firings of this definition came before (for `repeatCount`).
    pub seq: u64,
    /// Fired by `_action=trigger` rather than by the trigger.
    pub manual: bool,
    /// The definition's fingerprint ([`ScheduleEntry::fingerprint`]).
    pub trigger: String,
    /// The node that claimed (and ran) it.
    pub node: String,
    pub claimed: String,
    pub status: FiringStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<String>,
}

impl Firing {
    pub fn fire_instant(&self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp_millis(self.fire_time)
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// Firing ids whose work runs in this process (for `concurrentExecution: false` scripts).
fn executing() -> std::sync::MutexGuard<'static, BTreeSet<String>> {
    static SET: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    SET.lock().unwrap_or_else(|p| p.into_inner())
}

/// Schedules whose "not supported" message was logged (once per process).
fn warned_once(name: &str) -> bool {
    static SET: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut g = SET.lock().unwrap_or_else(|p| p.into_inner());
    if g.iter().any(|n| n == name) {
        return false;
    }
    g.push(name.to_string());
    true
}

fn eq(field: &str, value: Value) -> Filter {
    Filter::Compare {
        field: JsonPointer::parse(field),
        op: CompareOp::Eq,
        value,
    }
}

fn firings_of(name: &str) -> Filter {
    eq("schedule", json!(name))
}

// ------------------------------------------------------------------------------------------
// The engine's scheduler API

impl Engine {
    /// Every schedule: the project's files (by name), then the stored ones (by id). A stored
    /// schedule whose id a file now uses is hidden by the file.
    pub async fn schedules(&self) -> EngineResult<Vec<ScheduleEntry>> {
        let mut out: Vec<ScheduleEntry> = self
            .project
            .schedules
            .values()
            .map(|s| ScheduleEntry {
                schedule: s.clone(),
                origin: Origin::Config,
                anchor: None,
            })
            .collect();
        let page = self
            .repo
            .query_objects(SCHEDULE_TYPE, &QueryRequest::all())
            .await?;
        let mut stored: Vec<ScheduleEntry> = page
            .results
            .iter()
            .filter_map(|o| match stored_entry(o) {
                Ok(e) => Some(e),
                Err(msg) => {
                    tracing::warn!(schedule = %o["_id"], error = %msg, "ignoring a stored schedule that no longer parses");
                    None
                }
            })
            .filter(|e| !self.project.schedules.contains_key(e.name()))
            .collect();
        stored.sort_by(|a, b| a.name().cmp(b.name()));
        out.extend(stored);
        Ok(out)
    }

    /// One schedule by id: a file's, else a stored one.
    pub async fn schedule(&self, name: &str) -> EngineResult<Option<ScheduleEntry>> {
        if let Some(s) = self.project.schedules.get(name) {
            return Ok(Some(ScheduleEntry {
                schedule: s.clone(),
                origin: Origin::Config,
                anchor: None,
            }));
        }
        match self.repo.get_object(SCHEDULE_TYPE, name).await? {
            Some(o) => stored_entry(&o)
                .map(Some)
                .map_err(|m| EngineError::Internal(format!("stored schedule {name}: {m}"))),
            None => Ok(None),
        }
    }

    /// Creates or replaces a stored schedule (`PUT scheduler/job/<id>`, `_action=create`).
    /// `expected_rev` must match an existing schedule's revision; `create_only` refuses an
    /// existing id. Returns the schedule and whether it was created. A `conf/` schedule cannot
    /// be written (Conflict); a bad definition is a BadRequest with `/pointer: message`.
    pub async fn put_schedule(
        &self,
        name: &str,
        body: &Value,
        expected_rev: Option<&str>,
        create_only: bool,
    ) -> EngineResult<(ScheduleEntry, bool)> {
        if name.is_empty() || name.contains('/') {
            return Err(EngineError::BadRequest(format!(
                "\"{name}\" is not a valid schedule id"
            )));
        }
        if self.project.schedules.contains_key(name) {
            return Err(read_only(name));
        }
        let schedule = parse_schedule(name, body).map_err(EngineError::BadRequest)?;
        self.check_references(&schedule)?;
        let anchor = Utc::now();
        let value = json!({
            "definition": schedule.raw,
            "anchorMs": anchor.timestamp_millis(),
            "updated": iso(anchor),
            "updatedBy": self.node_id,
        });
        let existing = self.repo.get_object(SCHEDULE_TYPE, name).await?;
        let created = existing.is_none();
        let op = match existing {
            Some(_) if create_only => {
                return Err(EngineError::Repo(RepoError::already_exists(
                    "schedule", name,
                )));
            }
            Some(_) => Op::UpdateObject {
                object_type: SCHEDULE_TYPE.into(),
                id: name.into(),
                expected_rev: expected_rev.map(str::to_string),
                value,
            },
            None if expected_rev.is_some() => {
                return Err(EngineError::NotFound(format!("no schedule {name}")));
            }
            None => Op::CreateObject {
                object_type: SCHEDULE_TYPE.into(),
                id: name.into(),
                value,
            },
        };
        let outcome = self.repo.commit(ChangeSet::new().with(op)).await?;
        let rev = outcome
            .rev_of(SCHEDULE_TYPE, name)
            .unwrap_or("1")
            .to_string();
        tracing::info!(schedule = name, created, "schedule stored");
        Ok((
            ScheduleEntry {
                schedule,
                origin: Origin::Repository { rev },
                anchor: Some(
                    DateTime::from_timestamp_millis(anchor.timestamp_millis()).unwrap_or(anchor),
                ),
            },
            created,
        ))
    }

    /// Deletes a stored schedule and its firing rows; returns what it was.
    pub async fn delete_schedule(
        &self,
        name: &str,
        expected_rev: Option<&str>,
    ) -> EngineResult<ScheduleEntry> {
        if self.project.schedules.contains_key(name) {
            return Err(read_only(name));
        }
        let Some(entry) = self.schedule(name).await? else {
            return Err(EngineError::NotFound(format!("no schedule {name}")));
        };
        self.repo
            .commit(ChangeSet::new().with(Op::DeleteObject {
                object_type: SCHEDULE_TYPE.into(),
                id: name.into(),
                expected_rev: expected_rev.map(str::to_string),
            }))
            .await?;
        if let Err(e) = self.delete_firings(name, 0).await {
            tracing::warn!(schedule = name, error = %e, "could not delete the firings of a deleted schedule");
        }
        tracing::info!(schedule = name, "schedule deleted");
        Ok(entry)
    }

    /// Unknown mappings are refused when a schedule is written (the loader does the same for
    /// `conf/` schedules).
    fn check_references(&self, s: &Schedule) -> EngineResult<()> {
        if s.invoke_service == InvokeService::Sync
            && let Some(Value::String(m)) = s.invoke_context.get("mapping")
        {
            self.mapping(m)
                .map_err(|e| EngineError::BadRequest(format!("/invokeContext/mapping: {e}")))?;
        }
        Ok(())
    }

    /// The schedule's next firing after now (`nextRunDate`); `None` when disabled or finished.
    pub async fn next_run_date(
        &self,
        entry: &ScheduleEntry,
    ) -> EngineResult<Option<DateTime<Utc>>> {
        if !entry.schedule.enabled {
            return Ok(None);
        }
        let Ok(trigger) = entry.trigger() else {
            return Ok(None);
        };
        let now = Utc::now();
        let (prev, seq) = self.start_point(entry, now).await?;
        Ok(match trigger.next_fire(prev, seq) {
            Some(n) if n > now => Some(n),
            // Due (or missed): the firing after now is what comes next once it ran.
            Some(_) => trigger.next_fire(now, seq + 1),
            None => None,
        })
    }

    /// The newest scheduled firing of this definition: its instant and sequence number.
    pub async fn last_firing(
        &self,
        entry: &ScheduleEntry,
    ) -> EngineResult<Option<(DateTime<Utc>, u64)>> {
        let req = QueryRequest {
            filter: Some(Filter::And(vec![
                firings_of(entry.name()),
                eq("manual", json!(false)),
            ])),
            sort_keys: vec![SortKey::parse("-fireTime")],
            page_size: Some(1),
            ..QueryRequest::default()
        };
        let page = self.repo.query_objects(FIRING_TYPE, &req).await?;
        let Some(row) = page.results.first() else {
            return Ok(None);
        };
        let Ok(f) = serde_json::from_value::<Firing>(row.clone()) else {
            return Ok(None);
        };
        if f.trigger != entry.fingerprint() {
            return Ok(None);
        }
        Ok(f.fire_instant().map(|t| (t, f.seq)))
    }

    /// Where the trigger continues from: after the newest firing, else after the stored
    /// anchor (a simple trigger's first firing is at its start, so just before it), else now.
    async fn start_point(
        &self,
        entry: &ScheduleEntry,
        now: DateTime<Utc>,
    ) -> EngineResult<(DateTime<Utc>, u64)> {
        Ok(match self.last_firing(entry).await? {
            Some((t, seq)) => (t, seq + 1),
            None => (
                entry.anchor.map_or(now, |a| a - TimeDelta::milliseconds(1)),
                0,
            ),
        })
    }

    /// Creates the firing row of `fire_time`: `Some` when this node won it, `None` when another
    /// node already has it.
    async fn claim(
        &self,
        entry: &ScheduleEntry,
        fire_time: DateTime<Utc>,
        seq: u64,
        manual: bool,
    ) -> EngineResult<Option<Firing>> {
        let firing = Firing {
            id: firing_id(entry.name(), fire_time),
            schedule: entry.name().to_string(),
            fire_time: fire_time.timestamp_millis(),
            fire_date: iso(fire_time),
            seq,
            manual,
            trigger: entry.fingerprint(),
            node: self.node_id.clone(),
            claimed: iso(Utc::now()),
            status: FiringStatus::Running,
            run_id: None,
            active_run_id: None,
            message: None,
            finished: None,
        };
        let op = Op::CreateObject {
            object_type: FIRING_TYPE.into(),
            id: firing.id.clone(),
            value: firing.to_json(),
        };
        match self.repo.commit(ChangeSet::new().with(op)).await {
            Ok(_) => Ok(Some(firing)),
            Err(RepoError::Conflict(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Fires one scheduled instant of a schedule on this node if no node has yet: claims the
    /// firing row, runs what the schedule invokes and records the outcome. `None` when another
    /// node (or an earlier call) has this firing. The scheduler loop uses the same steps.
    pub async fn fire_scheduled(
        &self,
        entry: &ScheduleEntry,
        fire_time: DateTime<Utc>,
        seq: u64,
    ) -> EngineResult<Option<Firing>> {
        let Some(firing) = self.claim(entry, fire_time, seq, false).await? else {
            return Ok(None);
        };
        let done = self.execute(entry, firing).await;
        self.prune_firings(entry.name()).await;
        Ok(Some(done))
    }

    /// `POST scheduler/job/<id>?_action=trigger`: fires the schedule now, once, on this node
    /// (the request reached exactly one node), whether it is enabled or not.
    pub async fn trigger_schedule(&self, name: &str) -> EngineResult<Firing> {
        let Some(entry) = self.schedule(name).await? else {
            return Err(EngineError::NotFound(format!("no schedule {name}")));
        };
        let mut at = Utc::now();
        // Round to the millisecond of the id; another firing of the same millisecond moves on.
        at = DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at);
        for _ in 0..10 {
            if let Some(f) = self.claim(&entry, at, 0, true).await? {
                tracing::info!(schedule = name, firing = %f.id, "schedule triggered over REST");
                let done = self.execute(&entry, f).await;
                self.prune_firings(name).await;
                return Ok(done);
            }
            at += TimeDelta::milliseconds(1);
        }
        Err(EngineError::Conflict(format!(
            "schedule {name} is being triggered too often; try again"
        )))
    }

    /// A CREST query over a schedule's firing rows (newest first unless sorted otherwise).
    pub async fn query_firings(&self, name: &str, query: &QueryRequest) -> EngineResult<QueryPage> {
        let mut q = query.clone();
        q.filter = Some(match q.filter.take() {
            Some(f) => Filter::And(vec![firings_of(name), f]),
            None => firings_of(name),
        });
        if q.sort_keys.is_empty() && q.cookie.is_none() {
            q.sort_keys = vec![SortKey::parse("-fireTime")];
        }
        Ok(self.repo.query_objects(FIRING_TYPE, &q).await?)
    }

    /// Runs a claimed firing and stores its outcome.
    async fn execute(&self, entry: &ScheduleEntry, mut f: Firing) -> Firing {
        executing().insert(f.id.clone());
        match entry.schedule.invoke_service {
            InvokeService::Sync => self.run_sync(entry, &mut f).await,
            InvokeService::Provisioner => {
                let source = entry.schedule.invoke_context["source"]
                    .as_str()
                    .unwrap_or("?")
                    .to_string();
                if warned_once(entry.name()) {
                    tracing::warn!(
                        schedule = entry.name(),
                        source,
                        "liveSync schedules are not supported yet: skipping its firings"
                    );
                }
                f.status = FiringStatus::Skipped;
                f.message = Some(format!("liveSync of {source} is not supported yet"));
            }
            InvokeService::Script => self.run_script(entry, &mut f).await,
        }
        executing().remove(&f.id);
        f.finished = Some(iso(Utc::now()));
        let op = Op::UpdateObject {
            object_type: FIRING_TYPE.into(),
            id: f.id.clone(),
            expected_rev: None,
            value: f.to_json(),
        };
        if let Err(e) = self.repo.commit(ChangeSet::new().with(op)).await {
            tracing::warn!(firing = %f.id, error = %e, "could not record the outcome of a firing");
        }
        f
    }

    async fn run_sync(&self, entry: &ScheduleEntry, f: &mut Firing) {
        let name = entry.name();
        let ctx = entry
            .schedule
            .invoke_context
            .as_object()
            .cloned()
            .unwrap_or_default();
        let mapping = match ctx.get("mapping") {
            Some(Value::String(m)) => m.clone(),
            Some(Value::Object(m)) => match m.get("name").and_then(Value::as_str) {
                Some(n) if self.mapping(n).is_ok() => n.to_string(),
                _ => {
                    if warned_once(name) {
                        tracing::warn!(
                            schedule = name,
                            "inline mappings in schedules are not supported yet: skipping its firings"
                        );
                    }
                    f.status = FiringStatus::Skipped;
                    f.message = Some("inline mappings in schedules are not supported yet".into());
                    return;
                }
            },
            _ => {
                f.status = FiringStatus::Failed;
                f.message = Some("invokeContext has no mapping".into());
                return;
            }
        };
        let mut overrides = ctx;
        overrides.remove("action");
        overrides.remove("mapping");
        let opts = ReconOptions {
            analyze: false,
            source_id: None,
            overrides,
        };
        let run_id = firing_run_id(&f.id, f.fire_time);
        match self.start_recon_as(&mapping, opts, run_id).await {
            Ok(run_id) => {
                tracing::info!(schedule = name, firing = %f.id, run = %run_id, mapping, "scheduled reconciliation started");
                f.status = FiringStatus::Started;
                f.run_id = Some(run_id);
            }
            Err(EngineError::ActiveRun { mapping, run_id }) => {
                let why = if entry.schedule.concurrent_execution {
                    "a mapping runs one reconciliation at a time"
                } else {
                    "concurrentExecution is false"
                };
                tracing::info!(schedule = name, firing = %f.id, run = %run_id, mapping, "scheduled reconciliation skipped: the mapping's previous run is still active ({why})");
                f.status = FiringStatus::Skipped;
                f.message = Some(format!(
                    "skipped: mapping {mapping} still has the active run {run_id} ({why})"
                ));
                f.active_run_id = Some(run_id);
            }
            Err(e) => {
                tracing::warn!(schedule = name, firing = %f.id, mapping, error = %e, "scheduled reconciliation could not start");
                f.status = FiringStatus::Failed;
                f.message = Some(e.to_string());
            }
        }
    }

    async fn run_script(&self, entry: &ScheduleEntry, f: &mut Firing) {
        let name = entry.name().to_string();
        let ctx = &entry.schedule.invoke_context;
        if !entry.schedule.concurrent_execution {
            match self.script_still_running(&name, &f.id).await {
                Ok(Some(other)) => {
                    tracing::info!(schedule = %name, firing = %f.id, previous = %other, "scheduled script skipped: its previous firing still runs (concurrentExecution is false)");
                    f.status = FiringStatus::Skipped;
                    f.message = Some(format!(
                        "skipped: the previous firing {other} still runs (concurrentExecution is false)"
                    ));
                    return;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(schedule = %name, error = %e, "could not check for a running firing; running anyway");
                }
            }
        }
        let script = match self.schedule_script(&name, ctx) {
            Ok(s) => s,
            Err(msg) => {
                tracing::warn!(schedule = %name, firing = %f.id, error = %msg, "scheduled script skipped");
                f.status = FiringStatus::Skipped;
                f.message = Some(msg);
                return;
            }
        };
        let input = ctx.get("input").cloned().unwrap_or(Value::Null);
        let context = json!({
            "schedule": name,
            "firingId": f.id,
            "scheduledFireTime": f.fire_date,
        });
        let result = tokio::task::spawn_blocking(move || {
            let bindings = idsync_script::Bindings::new()
                .with_owned("input", input)
                .with_owned("context", context);
            script.eval(&bindings)
        })
        .await;
        match result {
            Ok(Ok(value)) => {
                tracing::info!(schedule = %name, firing = %f.id, "scheduled script ran");
                f.status = FiringStatus::Success;
                if !value.is_null() {
                    f.message = Some(format!("result: {value}"));
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(schedule = %name, firing = %f.id, error = %e, "scheduled script failed");
                f.status = FiringStatus::Failed;
                f.message = Some(e.to_string());
            }
            Err(e) => {
                f.status = FiringStatus::Failed;
                f.message = Some(format!("the script's thread failed: {e}"));
            }
        }
    }

    /// The script of a `script` schedule: inline `source`, a `file` relative to the project, or
    /// a bare string.
    fn schedule_script(&self, name: &str, ctx: &Value) -> Result<idsync_script::Script, String> {
        let usage = format!("schedule {name}");
        let (source, origin, globals) = match ctx.get("script") {
            Some(Value::String(s)) => (
                s.clone(),
                idsync_script::ScriptOrigin::inline(usage),
                Map::new(),
            ),
            Some(Value::Object(o)) => {
                match o.get("type").and_then(Value::as_str) {
                    None | Some("text/javascript") => {}
                    Some(other) => {
                        return Err(format!("only text/javascript scripts run, not \"{other}\""));
                    }
                }
                let globals = o
                    .get("globals")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                if let Some(src) = o.get("source").and_then(Value::as_str) {
                    (
                        src.to_string(),
                        idsync_script::ScriptOrigin::inline(usage),
                        globals,
                    )
                } else if let Some(file) = o.get("file").and_then(Value::as_str) {
                    // Confined to the project folder (a schedule may come over REST).
                    let text = idsync_config::read_script_file(&self.project.dir, file)
                        .map_err(|e| format!("cannot read the script file {file}: {e}"))?;
                    (
                        text,
                        idsync_script::ScriptOrigin::file_used_by(file, usage),
                        globals,
                    )
                } else {
                    return Err("the script has neither \"source\" nor \"file\"".into());
                }
            }
            _ => return Err("invokeContext has no script".into()),
        };
        idsync_script::Script::compile(&source, origin, globals).map_err(|e| e.to_string())
    }

    /// Another RUNNING firing of the schedule whose node still runs it, if any: on this node,
    /// one in flight in this process; on another, one whose node heartbeats.
    async fn script_still_running(&self, name: &str, except: &str) -> EngineResult<Option<String>> {
        let req = QueryRequest::with_filter(Filter::And(vec![
            firings_of(name),
            eq("status", json!("RUNNING")),
        ]));
        let page = self.repo.query_objects(FIRING_TYPE, &req).await?;
        let rows: Vec<Firing> = page
            .results
            .into_iter()
            .filter_map(|r| serde_json::from_value(r).ok())
            .filter(|f: &Firing| f.id != except)
            .collect();
        if rows.is_empty() {
            return Ok(None);
        }
        let nodes = self.repo.list_nodes().await?;
        let timeout = TimeDelta::milliseconds(
            i64::try_from(self.project.settings.node_timeout_ms).unwrap_or(i64::MAX / 2),
        );
        let now = Utc::now();
        for f in rows {
            let alive = if f.node == self.node_id {
                executing().contains(&f.id)
            } else {
                nodes.iter().any(|n| {
                    n.id == f.node
                        && n.state == NodeState::Running
                        && now - n.last_heartbeat <= timeout
                })
            };
            if alive {
                return Ok(Some(f.id));
            }
        }
        Ok(None)
    }

    /// Takes over and runs the `sync` firings that are still RUNNING on a node that is down
    /// (missing its heartbeats, or this node before a restart), so that a node dying between a
    /// firing's claim and its run's start does not lose the firing. Returns the firings this
    /// node took over, with their new outcome.
    pub async fn recover_firings(&self) -> EngineResult<Vec<Firing>> {
        let req = QueryRequest::with_filter(eq("status", json!("RUNNING")));
        let rows = self.repo.query_objects(FIRING_TYPE, &req).await?.results;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let nodes = self.repo.list_nodes().await?;
        let timeout = TimeDelta::milliseconds(
            i64::try_from(self.project.settings.node_timeout_ms).unwrap_or(i64::MAX / 2),
        );
        let now = Utc::now();
        let started = process_start();
        let mut out = Vec::new();
        for row in rows {
            let rev = row.get("_rev").and_then(Value::as_str).map(str::to_string);
            let Ok(mut f) = serde_json::from_value::<Firing>(row) else {
                continue;
            };
            let dead = if f.node == self.node_id {
                !executing().contains(&f.id)
                    && DateTime::parse_from_rfc3339(&f.claimed)
                        .is_ok_and(|c| c.with_timezone(&Utc) < started)
            } else {
                match nodes.iter().find(|n| n.id == f.node) {
                    Some(n) => n.state != NodeState::Running || now - n.last_heartbeat > timeout,
                    // A node that never heartbeated is given the same time from its claim.
                    None => DateTime::parse_from_rfc3339(&f.claimed)
                        .is_ok_and(|c| now - c.with_timezone(&Utc) > timeout),
                }
            };
            if !dead {
                continue;
            }
            let Some(entry) = self.schedule(&f.schedule).await? else {
                continue;
            };
            if entry.schedule.invoke_service != InvokeService::Sync {
                continue;
            }
            let previous = std::mem::replace(&mut f.node, self.node_id.clone());
            f.claimed = iso(now);
            let too_old = f.fire_instant().is_none_or(|t| now - t > TAKEOVER_WINDOW);
            if too_old {
                f.status = FiringStatus::Failed;
                f.finished = Some(iso(now));
                f.message = Some(format!(
                    "node {previous} stopped before this firing started its run; too old to run now"
                ));
            } else {
                f.message = Some(format!(
                    "taken over from node {previous}, which stopped before this firing started its run"
                ));
            }
            let op = Op::UpdateObject {
                object_type: FIRING_TYPE.into(),
                id: f.id.clone(),
                expected_rev: rev,
                value: f.to_json(),
            };
            match self.repo.commit(ChangeSet::new().with(op)).await {
                Ok(_) => {}
                // Another node took it (or it finished) first.
                Err(RepoError::Conflict(_) | RepoError::NotFound(_)) => continue,
                Err(e) => return Err(e.into()),
            }
            tracing::warn!(schedule = %f.schedule, firing = %f.id, previous, "a firing of a node that stopped was taken over");
            if too_old {
                out.push(f);
                continue;
            }
            out.push(self.execute(&entry, f).await);
        }
        Ok(out)
    }

    /// Keeps the newest [`KEEP_FIRINGS`] rows of a schedule. Failures are logged only: the
    /// next winner prunes again.
    async fn prune_firings(&self, name: &str) {
        if let Err(e) = self.delete_firings(name, KEEP_FIRINGS).await {
            tracing::debug!(schedule = name, error = %e, "pruning old firings failed; the next firing retries");
        }
    }

    /// Deletes the firing rows of a schedule after the newest `keep`.
    async fn delete_firings(&self, name: &str, keep: usize) -> EngineResult<u64> {
        let mut deleted = 0;
        loop {
            let req = QueryRequest {
                filter: Some(firings_of(name)),
                fields: Some(vec![JsonPointer::parse("_id")]),
                sort_keys: vec![SortKey::parse("-fireTime")],
                page_size: Some(500),
                offset: (keep > 0).then_some(keep),
                ..QueryRequest::default()
            };
            let page = self.repo.query_objects(FIRING_TYPE, &req).await?;
            if page.results.is_empty() {
                return Ok(deleted);
            }
            let mut cs = ChangeSet::new();
            for r in &page.results {
                if let Some(id) = r["_id"].as_str() {
                    cs.push(Op::DeleteObject {
                        object_type: FIRING_TYPE.into(),
                        id: id.to_string(),
                        expected_rev: None,
                    });
                }
            }
            deleted += cs.len() as u64;
            self.repo.commit(cs).await?;
        }
    }
}

fn read_only(name: &str) -> EngineError {
    EngineError::Conflict(format!(
        "schedule {name} is defined in conf/schedule-{name}.json and is read-only over REST: edit the file and restart the nodes to change it"
    ))
}

fn stored_entry(o: &Value) -> Result<ScheduleEntry, String> {
    let id = o["_id"].as_str().ok_or("no _id")?;
    let rev = o["_rev"].as_str().unwrap_or("1").to_string();
    let schedule = parse_schedule(id, &o["definition"])?;
    let anchor = o["anchorMs"]
        .as_i64()
        .and_then(DateTime::from_timestamp_millis);
    Ok(ScheduleEntry {
        schedule,
        origin: Origin::Repository { rev },
        anchor,
    })
}

// ------------------------------------------------------------------------------------------
// The loop

/// When the slots from `next` on are due at `now`, the one to fire: the latest slot not after
/// `now` (missed ones collapse into it), with its sequence number.
pub fn collapse(
    trigger: &Trigger,
    next: DateTime<Utc>,
    seq: u64,
    now: DateTime<Utc>,
) -> (DateTime<Utc>, u64) {
    let (mut slot, mut seq) = (next, seq);
    // A long outage: jump close to now first. Cron fire times do not depend on the count;
    // simple ones are a grid, so the count advances by whole intervals.
    let window = TimeDelta::hours(1);
    if now - slot > window {
        match trigger {
            Trigger::Cron { .. } => {
                if let Some(j) = trigger.next_fire(now - window, seq)
                    && j <= now
                    && j > slot
                {
                    slot = j;
                }
            }
            Trigger::Simple {
                repeat_interval, ..
            } => {
                let iv = i64::try_from(repeat_interval.as_millis()).unwrap_or(i64::MAX);
                if iv > 0 {
                    let skip = ((now - window - slot).num_milliseconds() / iv).max(0);
                    let skipped_seq = seq.saturating_add(u64::try_from(skip).unwrap_or(0));
                    if let Some(j) = trigger
                        .next_fire(slot + TimeDelta::milliseconds(skip * iv - 1), skipped_seq)
                        && j <= now
                        && j >= slot
                    {
                        slot = j;
                        seq = skipped_seq;
                    }
                }
            }
        }
    }
    for _ in 0..100_000 {
        match trigger.next_fire(slot, seq + 1) {
            Some(n) if n <= now => {
                slot = n;
                seq += 1;
            }
            _ => break,
        }
    }
    (slot, seq)
}

/// One schedule as a node's loop follows it.
#[derive(Debug)]
struct Armed {
    entry: ScheduleEntry,
    trigger: Trigger,
    /// Fingerprint plus revision: a change re-arms.
    key: String,
    seq: u64,
    next: Option<DateTime<Utc>>,
}

impl Armed {
    fn key_of(entry: &ScheduleEntry) -> String {
        match &entry.origin {
            Origin::Config => entry.fingerprint(),
            Origin::Repository { rev } => format!("{}#{rev}", entry.fingerprint()),
        }
    }

    async fn arm(engine: &Engine, entry: ScheduleEntry) -> EngineResult<Result<Armed, String>> {
        let trigger = match entry.trigger() {
            Ok(t) => t,
            Err(e) => return Ok(Err(e.to_string())),
        };
        let (prev, seq) = engine.start_point(&entry, Utc::now()).await?;
        let next = trigger.next_fire(prev, seq);
        Ok(Ok(Armed {
            key: Armed::key_of(&entry),
            entry,
            trigger,
            seq,
            next,
        }))
    }

    /// Fires the due slot (or follows the node that did).
    async fn fire_due(
        &mut self,
        engine: &Arc<Engine>,
        now: DateTime<Utc>,
        running: &mut JoinSet<()>,
    ) -> EngineResult<()> {
        let Some(next) = self.next else {
            return Ok(());
        };
        let first_seq = self.seq;
        let (slot, seq) = collapse(&self.trigger, next, first_seq, now);
        // A node that is behind follows the newest firing instead of firing an older slot.
        if let Some((latest, lseq)) = engine.last_firing(&self.entry).await?
            && latest >= slot
        {
            self.seq = lseq + 1;
            self.next = self.trigger.next_fire(latest, self.seq);
            return Ok(());
        }
        let claimed = engine.claim(&self.entry, slot, seq, false).await?;
        self.seq = seq + 1;
        self.next = self.trigger.next_fire(slot, self.seq);
        if let Some(firing) = claimed {
            if slot > next {
                tracing::info!(schedule = self.entry.name(), firing = %firing.id, missed = seq - first_seq, first_missed = %iso(next), "missed firings: firing once now");
            }
            let engine = engine.clone();
            let entry = self.entry.clone();
            running.spawn(async move {
                engine.execute(&entry, firing).await;
                engine.prune_firings(entry.name()).await;
            });
        }
        Ok(())
    }
}

/// Fires every enabled schedule of the project and of the repository until `stop` turns true,
/// then waits for the firings in flight. Every node runs it; each firing runs on one node.
pub async fn run_scheduler(
    engine: Arc<Engine>,
    mut stop: watch::Receiver<bool>,
) -> EngineResult<()> {
    let mut armed: BTreeMap<String, Armed> = BTreeMap::new();
    let mut broken: BTreeMap<String, String> = BTreeMap::new();
    let mut running: JoinSet<()> = JoinSet::new();
    let mut last_reload: Option<tokio::time::Instant> = None;
    let mut last_takeover: Option<tokio::time::Instant> = None;
    process_start();
    loop {
        if *stop.borrow() {
            break;
        }
        let mut failed = false;
        if last_takeover.is_none_or(|t| t.elapsed() >= TAKEOVER_EVERY) {
            last_takeover = Some(tokio::time::Instant::now());
            if let Err(e) = engine.recover_firings().await {
                tracing::warn!(error = %e, "scheduler: looking for firings of stopped nodes failed; retrying");
                failed = true;
            }
        }
        if last_reload.is_none_or(|t| t.elapsed() >= RELOAD_EVERY) {
            match engine.schedules().await {
                Ok(entries) => {
                    if let Err(e) = rearm(&engine, &mut armed, &mut broken, entries).await {
                        tracing::warn!(error = %e, "scheduler: loading the schedules' history failed; retrying");
                        failed = true;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "scheduler: reading the stored schedules failed; retrying");
                    failed = true;
                }
            }
            last_reload = Some(tokio::time::Instant::now());
        }
        let now = Utc::now();
        for a in armed.values_mut() {
            if a.next.is_some_and(|n| n <= now)
                && let Err(e) = a.fire_due(&engine, now, &mut running).await
            {
                tracing::warn!(schedule = a.entry.name(), error = %e, "scheduler: firing failed; retrying");
                failed = true;
            }
        }
        while let Some(done) = running.try_join_next() {
            if let Err(e) = done {
                tracing::error!(error = %e, "scheduler: a firing task failed");
            }
        }
        let since_reload = last_reload.map_or(Duration::ZERO, |t| t.elapsed());
        let mut wait = RELOAD_EVERY.saturating_sub(since_reload);
        if let Some(n) = armed.values().filter_map(|a| a.next).min() {
            let until = (n - Utc::now()).to_std().unwrap_or(Duration::ZERO);
            wait = wait.min(until);
        }
        if failed {
            wait = wait.max(ERROR_PAUSE);
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => break,
        }
    }
    // Let the firings in flight finish (scripts; a recon start is quick).
    while running.join_next().await.is_some() {}
    Ok(())
}

/// Brings the armed set in line with the schedules: new and changed ones are armed from their
/// history, removed and disabled ones dropped.
async fn rearm(
    engine: &Engine,
    armed: &mut BTreeMap<String, Armed>,
    broken: &mut BTreeMap<String, String>,
    entries: Vec<ScheduleEntry>,
) -> EngineResult<()> {
    let enabled: Vec<ScheduleEntry> = entries.into_iter().filter(|e| e.schedule.enabled).collect();
    let names: HashSet<String> = enabled.iter().map(|e| e.name().to_string()).collect();
    armed.retain(|n, _| names.contains(n));
    broken.retain(|n, _| names.contains(n));
    for entry in enabled {
        let key = Armed::key_of(&entry);
        let name = entry.name().to_string();
        if armed.get(&name).is_some_and(|a| a.key == key) || broken.get(&name) == Some(&key) {
            continue;
        }
        match Armed::arm(engine, entry).await? {
            Ok(a) => {
                tracing::debug!(schedule = %name, next = ?a.next.map(iso), "schedule armed");
                armed.insert(name.clone(), a);
                broken.remove(&name);
            }
            Err(msg) => {
                tracing::warn!(schedule = %name, error = %msg, "schedule not armed: its trigger is invalid");
                armed.remove(&name);
                broken.insert(name, key);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn cron(expr: &str) -> Trigger {
        let s = parse_schedule(
            "t",
            &json!({"schedule": expr, "invokeService": "script",
                    "invokeContext": {"script": {"source": "1"}}}),
        )
        .unwrap();
        Trigger::from_schedule(&s).unwrap()
    }

    #[test]
    fn missed_slots_collapse_into_the_latest() {
        let t = cron("0/2 * * * * ?");
        let next = Utc.with_ymd_and_hms(2024, 1, 1, 10, 0, 2).unwrap();
        let now = Utc.with_ymd_and_hms(2024, 1, 1, 10, 0, 9).unwrap();
        assert_eq!(
            collapse(&t, next, 0, now),
            (Utc.with_ymd_and_hms(2024, 1, 1, 10, 0, 8).unwrap(), 3)
        );
        // Not late: the slot itself.
        assert_eq!(collapse(&t, next, 5, next), (next, 5));
        // A day of downtime: still the latest slot.
        let later = Utc.with_ymd_and_hms(2024, 1, 2, 11, 30, 5).unwrap();
        assert_eq!(
            collapse(&t, next, 0, later).0,
            Utc.with_ymd_and_hms(2024, 1, 2, 11, 30, 4).unwrap()
        );
    }

    #[test]
    fn simple_grid_collapses_with_its_count() {
        let start = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        let t = Trigger::Simple {
            repeat_interval: Duration::from_secs(10),
            repeat_count: -1,
            start_time: Some(start),
            end_time: None,
        };
        let now = start + TimeDelta::hours(5) + TimeDelta::seconds(3);
        let (slot, seq) = collapse(&t, start, 0, now);
        assert_eq!(slot, start + TimeDelta::hours(5));
        assert_eq!(seq, 5 * 360);
        // A limited count stops at its last firing.
        let limited = Trigger::Simple {
            repeat_interval: Duration::from_secs(10),
            repeat_count: 3,
            start_time: Some(start),
            end_time: None,
        };
        assert_eq!(
            collapse(&limited, start, 0, now),
            (start + TimeDelta::seconds(30), 3)
        );
    }

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
