//! The scheduler (docs/configuration.md#confschedule-namejson): fires every enabled schedule — the
//! project's `conf/schedule-<name>.json` files and the ones created over REST — on exactly one node
//! of the cluster, and runs what it invokes (a reconciliation, an inline script).
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
//!   reconciliation with [`crate::Engine::start_recon`]; the other keys of `invokeContext` are the
//!   run's overrides. While the mapping has an active run (anywhere in the cluster, the whole
//!   clustered run) the firing is SKIPPED and logged with the active run's id: with
//!   `concurrentExecution: false` that is the documented behaviour, and with `true` it is the
//!   one-active-run-per-mapping rule.
//! - `"provisioner"` runs one liveSync pass of its `source` (`sync/livesync.rs`); SKIPPED when
//!   a pass of that source already runs on another node.
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
//!
//! # Files
//!
//! - `entry.rs`: a schedule as the scheduler knows it ([`ScheduleEntry`]) and reading a
//!   schedule written over REST ([`parse_schedule`]).
//! - `diagnostics.rs`: the trigger errors of a project's schedules, for `config validate`.
//! - `firing.rs`: firing rows ([`Firing`]): claiming one, reading the newest, pruning.
//! - `crud.rs`: the engine's schedule API behind `scheduler/job` (list, read, write, delete).
//! - `fire.rs`: running a firing (a reconciliation start, a script) and taking over the
//!   firings of a node that stopped.
//! - `timer.rs`: each node's loop ([`run_scheduler`]) and how missed slots collapse.

mod crud;
mod diagnostics;
mod entry;
mod fire;
mod firing;
mod timer;

pub use diagnostics::{trigger_diagnostics, trigger_diagnostics_of_files};
pub use entry::{Origin, ScheduleEntry, parse_schedule};
pub use firing::{Firing, FiringStatus, firing_run_id};
pub use timer::{collapse, run_scheduler};

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use std::time::Duration;

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

/// ISO-8601 UTC with milliseconds.
pub fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}
