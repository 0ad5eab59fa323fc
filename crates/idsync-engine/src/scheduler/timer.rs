//! Each node's scheduler loop: it arms every enabled schedule from its firing history, fires
//! the due slots (missed ones collapse into the latest), re-reads the stored schedules, and
//! looks for firings to take over.

use super::entry::{Origin, ScheduleEntry};
use super::fire::process_start;
use super::{ERROR_PAUSE, RELOAD_EVERY, TAKEOVER_EVERY, iso};
use crate::Engine;
use crate::error::EngineResult;
use chrono::{DateTime, TimeDelta, Utc};
use idsync_scheduler::Trigger;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

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
    use crate::scheduler::parse_schedule;
    use chrono::TimeZone;
    use serde_json::json;

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
}
