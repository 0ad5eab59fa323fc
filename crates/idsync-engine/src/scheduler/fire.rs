//! Running a firing: what a schedule invokes (a reconciliation start, an inline script; liveSync
//! is skipped), recording its outcome, firing on demand (`_action=trigger`), and taking over the
//! firings of a node that stopped between a firing's claim and its run's start.

use super::entry::ScheduleEntry;
use super::firing::{Firing, FiringStatus, eq, firing_run_id, firings_of};
use super::{FIRING_TYPE, TAKEOVER_WINDOW, iso};
use crate::Engine;
use crate::error::{EngineError, EngineResult};
use crate::recon::effective::ReconOptions;
use chrono::{DateTime, TimeDelta, Utc};
use idsync_config::InvokeService;
use idsync_core::{Filter, QueryRequest};
use idsync_repo::{ChangeSet, NodeState, Op, RepoError};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use std::sync::Mutex;

/// When this process's scheduler started: a RUNNING firing of this node id claimed before it
/// belongs to an earlier life of the node.
pub(super) fn process_start() -> DateTime<Utc> {
    static START: std::sync::OnceLock<DateTime<Utc>> = std::sync::OnceLock::new();
    *START.get_or_init(Utc::now)
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

impl Engine {
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

    /// Runs a claimed firing and stores its outcome.
    pub(super) async fn execute(&self, entry: &ScheduleEntry, mut f: Firing) -> Firing {
        executing().insert(f.id.clone());
        match entry.schedule.invoke_service {
            InvokeService::Sync => self.run_sync(entry, &mut f).await,
            InvokeService::Provisioner => self.run_live_sync(entry, &mut f).await,
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

    /// A provisioner firing: one liveSync pass of its source (module doc of `sync/livesync.rs`);
    /// a pass already running elsewhere makes the firing SKIPPED.
    async fn run_live_sync(&self, entry: &ScheduleEntry, f: &mut Firing) {
        let source = entry.schedule.invoke_context["source"]
            .as_str()
            .unwrap_or("?")
            .to_string();
        match self.live_sync(&source).await {
            Ok(rec) => match rec.get("lastException") {
                Some(e) => {
                    f.status = FiringStatus::Failed;
                    f.message = Some(format!("liveSync of {source}: {}", e["message"]));
                }
                None => f.status = FiringStatus::Success,
            },
            Err(crate::error::EngineError::Conflict(m)) => {
                f.status = FiringStatus::Skipped;
                f.message = Some(m);
            }
            Err(e) => {
                f.status = FiringStatus::Failed;
                f.message = Some(format!("liveSync of {source}: {e}"));
            }
        }
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
                    // Confined to the project folder (a schedule may come over REST); IDM's
                    // default scripts resolve to the built-in library. The error names the file.
                    let text = idsync_config::read_script_file(&self.project.dir, file)
                        .map_err(|e| e.to_string())?;
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
        idsync_script::Script::compile(&source, origin, globals)
            .map(|s| s.with_host(self.script_host().clone()))
            .map_err(|e| e.to_string())
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
}
