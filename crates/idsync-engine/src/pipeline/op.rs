//! What one object's operation carries between the pipeline's stages: the chunk's lookups and
//! output, the op's state (`Op1`) as it is assessed, decided and acted on, what it read
//! (`Reads`), what it will write (`Intent`) and a prepared op waiting to be settled (`Spec`).

use super::settle::Overlay;
use super::stats::{StatsDelta, TargetEffect};
use crate::error::EngineError;
use idsync_core::filter::Filter;
use idsync_core::{Action, Situation};
use idsync_mapping::Decision;
use idsync_repo::{Link, Op, PlanEntry};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Everything one chunk of objects produced, merged into the chunk's commit.
#[derive(Debug, Default)]
pub struct ChunkOutput {
    pub ops: Vec<Op>,
    pub plan: Vec<PlanEntry>,
    pub claimed: Vec<String>,
    pub stats: StatsDelta,
    /// Set when the safety guard stopped the run: the message for the run's failure.
    pub abort: Option<String>,
    /// Set when an op failed because a connected system or the repository was unreachable
    /// (`Unavailable`): the first such error. A recon job then runs its chunk again instead of
    /// committing the op as a FAILURE (see `recon::jobs::retry_unavailable`).
    pub unavailable: Option<String>,
    /// Sync mode: one result per operation, in the `/sync` response shape (docs/rest.md#synchronization).
    pub sync_results: Vec<Value>,
    /// Normalised ids of the targets written (created, updated, deleted).
    pub written: Vec<String>,
    /// Managed targets updated or deleted, by id: the object before the write, for the type's
    /// `postUpdate`/`postDelete` (kept only when the type has such scripts).
    pub managed_old: HashMap<String, Value>,
}

impl ChunkOutput {
    pub fn merge(&mut self, other: ChunkOutput) {
        self.ops.extend(other.ops);
        self.plan.extend(other.plan);
        self.claimed.extend(other.claimed);
        self.stats.merge(other.stats);
        self.sync_results.extend(other.sync_results);
        self.written.extend(other.written);
        self.managed_old.extend(other.managed_old);
        if self.abort.is_none() {
            self.abort = other.abort;
        }
        if self.unavailable.is_none() {
            self.unavailable = other.unavailable;
        }
    }

    /// The text of an op's error, noting it in [`ChunkOutput::unavailable`] when the error
    /// says a system was unreachable.
    pub(crate) fn op_error(&mut self, e: &EngineError) -> String {
        let text = e.to_string();
        if crate::recon::jobs::is_transient(e) && self.unavailable.is_none() {
            self.unavailable = Some(text.clone());
        }
        text
    }
}

/// Targets and links the chunk looked up in bulk before its objects ran.
#[derive(Debug, Default)]
pub struct ChunkLookups {
    /// Links of the chunk's sources by (qualifier, normalised source id), when not prefetched.
    pub links: Option<HashMap<(String, String), Link>>,
    /// Linked targets read in one call, by normalised id.
    pub targets: HashMap<String, Value>,
    /// Correlations run for the whole chunk at once, by (qualifier, normalised source id): the
    /// candidates and the filter that found them.
    pub correlated: HashMap<(String, String), (Candidates, Filter)>,
    /// Correlation requests evaluated for the chunk but not batched (scripts' candidates,
    /// filters without an equality to index on), so that no script runs twice; with the filter
    /// of the target queries a correlation script made (`script_reads.rs`).
    pub correlations: HashMap<(String, String), (idsync_mapping::Correlation, Option<Filter>)>,
    /// The links of the batched correlations' single candidates, read in one call.
    pub candidate_links: Option<CandidateLinks>,
    /// How long the chunk's batched correlation took.
    pub correlation_time: std::time::Duration,
    /// When an object is assessed again while its chunk settles: what the objects before it in
    /// the chunk wrote, which reads consult first (see `settle.rs`).
    pub overlay: Option<Arc<Overlay>>,
    /// The page job the chunk runs in, when its target is a connected system.
    pub fence: Option<Arc<PageFence>>,
}

/// A reconciliation page job whose creates go to a connected system, where they are not part
/// of the page's commit. Before a chunk's creates go out, the sources they are for are
/// committed as create intents under the job's fence (a node that lost its lease writes
/// nothing); a later attempt of the job — another node, after this one died — adopts the
/// object such a create left (`ObjectSet::find_existing`) instead of failing on
/// `AlreadyExists` or creating a second one (docs/adr/0012-create-intents.md).
#[derive(Debug)]
pub struct PageFence {
    pub run_id: String,
    pub job_id: String,
    pub token: i64,
    /// The intents earlier attempts of the job committed ([`intent_key`]).
    pub earlier: HashSet<String>,
}

/// The create-intent key of an op: its link qualifier and source id.
pub fn intent_key(qualifier: &str, source_id: &str) -> String {
    format!("{qualifier}\n{source_id}")
}

/// What an assessment read that an earlier object's writes could change: the targets it read
/// by id (the linked target, the correlation's candidates) and the correlation query (any
/// target an earlier object created or changed to match it).
#[derive(Debug, Default, Clone)]
pub struct Reads {
    /// Normalised target ids.
    pub targets: Vec<String>,
    pub filter: Option<Filter>,
}

/// What an action writes, prepared but not yet done: the scripts that run before the write
/// have run and the new target is computed. A reconciliation settles its chunk's objects in
/// source order before any write goes out (`settle.rs`).
#[derive(Debug)]
pub enum Intent {
    /// Nothing to write: REPORT, IGNORE, EXCEPTION, a dry run, an UPDATE without a target.
    Nothing,
    /// CREATE: the new target (`onCreate` ran; a managed target has its `_id`), then its link.
    Create { value: Value },
    /// UPDATE or LINK of the target `id`: `new` when the target changed; `link` when the op
    /// links (or re-points its link to) it.
    Write {
        id: String,
        current: Value,
        new: Option<Value>,
        link: bool,
    },
    /// DELETE: the target (when it exists; `onDelete` ran), then the link.
    Delete { target: Option<(String, Value)> },
    /// UNLINK: the link.
    Unlink,
}

/// One source-phase operation — a source object and a link qualifier — assessed, decided and
/// prepared, not yet applied.
#[derive(Debug)]
pub struct Spec {
    pub(super) op: Op1<'static>,
    pub(super) source: Option<Arc<Value>>,
    pub(super) target: Option<Value>,
    pub(super) link: Option<Link>,
    pub(super) decision: Option<Decision>,
    pub(super) intent: Intent,
    /// The op ended before its action (an error, a vanished source): it is only finished.
    pub(super) done: bool,
}

impl Spec {
    pub(super) fn ended(op: Op1<'static>) -> Spec {
        Spec {
            op,
            source: None,
            target: None,
            link: None,
            decision: None,
            intent: Intent::Nothing,
            done: true,
        }
    }
}

/// Which of some targets are linked already, from one lookup.
#[derive(Debug, Default)]
pub struct CandidateLinks {
    /// The normalised target ids asked about.
    pub asked: HashSet<String>,
    /// The (qualifier, normalised target id) pairs found linked.
    pub linked: HashSet<(String, String)>,
}

/// What a correlation found: candidate ids in the order returned, and the full objects among
/// them by id.
pub type Candidates = (Vec<String>, HashMap<String, Value>);

/// The state of one operation as it proceeds; it becomes the audit entry and the statistics.
#[derive(Debug)]
pub(super) struct Op1<'a> {
    pub(super) qualifier: String,
    pub(super) phase: &'static str,
    pub(super) source_id: Option<String>,
    pub(super) target_id: Option<String>,
    pub(super) situation: Option<Situation>,
    pub(super) action: Option<Action>,
    pub(super) ambiguous: Vec<String>,
    pub(super) link_existed: bool,
    pub(super) link_created: bool,
    pub(super) target_effect: TargetEffect,
    pub(super) had_target: bool,
    pub(super) message: Option<String>,
    pub(super) error: Option<String>,
    /// Implicit sync: the source before the change (`oldValue`).
    pub(super) old_source: Option<&'a Value>,
    /// Sync mode: the target as it was before the action (`oldTargetValue`).
    pub(super) old_target: Option<Value>,
    /// The kind of `error` (sync results report it).
    pub(super) error_code: Option<idsync_core::ErrorCode>,
    /// What the assessment read that an earlier object's writes could change.
    pub(super) reads: Reads,
    /// Target ids the source phase visited (the target phase skips them), added at finish.
    pub(super) claimed: Vec<String>,
    /// An earlier attempt of this op's page job meant to create its target in a connected
    /// system: a create that finds the object there adopts it ([`PageFence`]).
    pub(super) adopt_existing: bool,
}

impl<'a> Op1<'a> {
    pub(super) fn new(qualifier: impl Into<String>, phase: &'static str) -> Self {
        Self {
            qualifier: qualifier.into(),
            phase,
            source_id: None,
            target_id: None,
            situation: None,
            action: None,
            ambiguous: Vec::new(),
            link_existed: false,
            link_created: false,
            target_effect: TargetEffect::None,
            had_target: false,
            message: None,
            error: None,
            old_source: None,
            old_target: None,
            error_code: None,
            reads: Reads::default(),
            claimed: Vec::new(),
            adopt_existing: false,
        }
    }

    pub(super) fn fail(&mut self, e: &EngineError) {
        use idsync_core::HasErrorCode;
        self.error = Some(e.to_string());
        self.error_code = Some(e.error_code());
    }
}

pub(super) fn qualified(set: &str, id: &Option<String>) -> Value {
    id.as_ref()
        .map_or(Value::Null, |i| Value::String(format!("{set}/{i}")))
}

/// Ids of a chunk's entries, and the entries when they are full objects.
pub fn entry_id(entry: &Value) -> Option<&str> {
    entry.get("_id").and_then(Value::as_str)
}
