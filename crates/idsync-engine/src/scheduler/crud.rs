//! The engine's schedule API behind the REST `scheduler/job` resource: every schedule, one
//! schedule, creating or replacing a stored one, deleting it, and its next run date. A `conf/`
//! schedule is read-only over REST.

use super::entry::{Origin, ScheduleEntry, parse_schedule};
use super::{SCHEDULE_TYPE, iso};
use crate::Engine;
use crate::error::{EngineError, EngineResult};
use chrono::{DateTime, Utc};
use idsync_config::{InvokeService, Schedule};
use idsync_core::QueryRequest;
use idsync_repo::{ChangeSet, Op, RepoError};
use serde_json::{Value, json};

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
