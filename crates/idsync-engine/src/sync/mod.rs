//! Implicit synchronization: a change of a source object —
//! a managed-object write through the API, a `POST sync?_action=notify*`, a managed target that
//! a recon or another mapping wrote, a queued event — runs every mapping whose source is that
//! collection, in `sync.json` order.
//!
//! Per mapping: the per-object assess → decide → act of the pipeline (`pipeline/changed.rs`); its repository
//! writes (links, managed targets, the sync audit entries) commit together, so a managed
//! target's own outbound mappings, run next (the cascade), already see the link — IDM's pending
//! LINK/UNLINK. After a mapping fails, the later ones are SKIPPED. Queued mappings are not run
//! here: their events commit with the change ([`Engine::queue_events`]) and the queue consumer
//! runs them one mapping at a time ([`Engine::sync_mapping`]).

mod batch;
mod explicit;
mod failure_script;
mod livesync;
pub mod queue;

pub use batch::BatchItem;
pub use livesync::record_id;

use crate::Engine;
use crate::error::{EngineError, EngineResult};
use crate::pipeline::ctx::RunCtx;
use crate::pipeline::op::{ChunkLookups, ChunkOutput};
use idsync_config::Mapping;
use idsync_repo::{ChangeSet, EventState, Op, SyncAction, SyncEvent};
use serde_json::{Value, json};
use std::sync::Arc;

/// How deep a chain of managed-object changes may cascade (a mapping whose target feeds a
/// mapping whose target feeds …). Deeper chains are cut with a warning: they are loops.
const MAX_CASCADE: usize = 8;

/// One change of a source object.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The collection, e.g. `managed/user` or `system/ldap/account`.
    pub collection: String,
    pub id: String,
    pub action: SyncAction,
    /// The object before the change (`oldValue`; `None` for a create or when unknown).
    pub old: Option<Value>,
    /// The object after the change (`newValue`; `None` for a delete).
    pub new: Option<Value>,
}

/// A change seen without owning it: what one mapping's act reads. A queue event and an owned
/// [`Change`] both lend one, so a queued event runs without copying its objects.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChangeRef<'a> {
    pub collection: &'a str,
    pub id: &'a str,
    pub action: SyncAction,
    pub old: Option<&'a Value>,
    pub new: Option<&'a Value>,
}

impl Change {
    /// This change, lent.
    pub fn view(&self) -> ChangeRef<'_> {
        ChangeRef {
            collection: &self.collection,
            id: &self.id,
            action: self.action,
            old: self.old.as_ref(),
            new: self.new.as_ref(),
        }
    }
}

impl<'a> From<&'a SyncEvent> for ChangeRef<'a> {
    /// The notify a queue event records.
    fn from(ev: &'a SyncEvent) -> Self {
        ChangeRef {
            collection: &ev.resource_collection,
            id: &ev.resource_id,
            action: ev.sync_action,
            old: ev.old_object.as_ref(),
            new: ev.new_object.as_ref(),
        }
    }
}

/// What a notify did: one `/sync` result per mapping and link qualifier.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncOutcome {
    pub results: Vec<Value>,
    pub failed: bool,
}

impl SyncOutcome {
    /// The `/sync` response body: the array of results.
    pub fn to_json(&self) -> Value {
        Value::Array(self.results.clone())
    }

    /// The HTTP status of the first failure's cause (503 for an unreachable system).
    pub fn failure_status(&self) -> Option<u16> {
        self.results
            .iter()
            .find(|r| r["result"] == "FAILED")
            .map(|r| r["cause"]["code"].as_u64().map_or(500, |c| c as u16))
    }

    /// The first failure's message, for logs and errors.
    pub fn failure_message(&self) -> Option<String> {
        self.results
            .iter()
            .find(|r| r["result"] == "FAILED")
            .map(|r| {
                let m = r["cause"]["message"].as_str().unwrap_or("failed");
                format!("mapping {}: {m}", r["mapping"].as_str().unwrap_or("?"))
            })
    }

    fn merge(&mut self, other: SyncOutcome) {
        self.failed |= other.failed;
        self.results.extend(other.results);
    }
}

/// Whether `m` reacts to this change at all: `triggerSyncProperties` limits updates to changes
/// of the listed properties (docs/configuration.md#mappings).
fn triggered(m: &Mapping, change: ChangeRef<'_>) -> bool {
    let (Some(props), SyncAction::NotifyUpdate, Some(old)) =
        (&m.trigger_sync_properties, change.action, change.old)
    else {
        return true;
    };
    let new = change.new.unwrap_or(&Value::Null);
    props.iter().any(|p| p.get(old) != p.get(new))
}

/// Two values of an object are the same change-wise when they differ at most in `_rev`.
pub fn same_content(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys = |m: &serde_json::Map<String, Value>| {
                m.iter()
                    .filter(|(k, _)| k.as_str() != "_rev")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<std::collections::BTreeMap<_, _>>()
            };
            keys(x) == keys(y)
        }
        _ => a == b,
    }
}

impl Engine {
    /// Mappings whose source is `collection` and that sync (`enableSync`), in `sync.json`
    /// order.
    pub fn mappings_from(&self, collection: &str) -> Vec<&Mapping> {
        self.project
            .mappings
            .iter()
            .filter(|m| m.enable_sync && m.source_str == collection)
            .collect()
    }

    /// Whether any mapping reacts to changes of `collection` (cheap; lets bulk writers skip
    /// the cascade entirely).
    pub fn has_sync_from(&self, collection: &str) -> bool {
        !self.mappings_from(collection).is_empty()
    }

    /// The queue events of a change for its queued mappings, to commit with the change itself
    /// (a committed change always has its events).
    pub fn queue_events(&self, change: &Change) -> Vec<Op> {
        self.mappings_from(&change.collection)
            .into_iter()
            .filter(|m| triggered(m, change.view()))
            .filter_map(|m| m.queued().map(|q| (m, q)))
            .map(|(m, q)| {
                Op::EnqueueSyncEvent(SyncEvent {
                    id: crate::managed_set::new_id(),
                    rev: "0".into(),
                    mapping: m.name.clone(),
                    resource_id: change.id.clone(),
                    resource_collection: change.collection.clone(),
                    sync_action: change.action,
                    state: EventState::Pending,
                    node_id: None,
                    remaining_retries: q.max_retries.map_or(-1, |r| r as i64),
                    create_date: chrono::Utc::now(),
                    old_object: change.old.clone(),
                    new_object: change.new.clone(),
                    object_rev: change
                        .new
                        .as_ref()
                        .and_then(|n| n.get("_rev"))
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    context: json!({ "node": self.node_id }),
                    seq: 0,
                })
            })
            .collect()
    }

    /// Runs the change through every non-queued mapping of its collection, in order; after a
    /// failure the later mappings are SKIPPED. `Ok` even when a mapping failed: the outcome says
    /// so (a failed implicit sync does not fail the managed-object write, docs/ARCHITECTURE.md#one-managed-object-change-through-implicit-and-queued-sync).
    pub async fn notify(&self, change: &Change) -> EngineResult<SyncOutcome> {
        self.notify_depth(change, 0).await
    }

    /// Runs the change through one mapping (the queue consumer, `performAction`-style callers).
    pub async fn sync_mapping(&self, mapping: &str, change: &Change) -> EngineResult<SyncOutcome> {
        let (config, _) = self.mapping(mapping)?;
        if config.source_str != change.collection {
            return Err(EngineError::BadRequest(format!(
                "mapping {mapping} reads {}, not {}",
                config.source_str, change.collection
            )));
        }
        let mut outcome = SyncOutcome::default();
        if triggered(&config, change.view()) {
            outcome.merge(self.run_one(mapping, change, 0).await?);
        }
        Ok(outcome)
    }

    fn notify_depth<'a>(
        &'a self,
        change: &'a Change,
        depth: usize,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = EngineResult<SyncOutcome>> + Send + 'a>>
    {
        Box::pin(async move {
            let mut outcome = SyncOutcome::default();
            if depth > MAX_CASCADE {
                tracing::warn!(
                    collection = %change.collection, id = %change.id,
                    "implicit sync cascade deeper than {MAX_CASCADE}: stopped (a loop of mappings?)"
                );
                return Ok(outcome);
            }
            let names: Vec<String> = self
                .mappings_from(&change.collection)
                .into_iter()
                .filter(|m| m.queued().is_none() && triggered(m, change.view()))
                .map(|m| m.name.clone())
                .collect();
            for name in names {
                if outcome.failed {
                    outcome.results.push(skipped(self, &name, change));
                    continue;
                }
                outcome.merge(self.run_one(&name, change, depth).await?);
            }
            Ok(outcome)
        })
    }

    /// One mapping for one change: act, commit, then cascade the managed targets it wrote.
    async fn run_one(
        &self,
        name: &str,
        change: &Change,
        depth: usize,
    ) -> EngineResult<SyncOutcome> {
        let ctx = self.sync_ctx(name)?;
        let out = self
            .act(&ctx, &ChunkLookups::default(), change.view())
            .await?;
        let cascade = managed_changes_of(&out);
        let (mut outcome, committed) = self.commit_output(out).await;
        if committed {
            outcome.merge(self.cascade(cascade, depth).await?);
        }
        Ok(outcome)
    }

    /// Assesses, decides and acts on one change for the mapping of `ctx`; the repository writes
    /// are in the output, not yet committed. `look` holds what a batch looked up in advance.
    async fn act(
        &self,
        ctx: &RunCtx,
        look: &ChunkLookups,
        change: ChangeRef<'_>,
    ) -> EngineResult<ChunkOutput> {
        let mut out = ChunkOutput::default();
        match change.action {
            SyncAction::NotifyDelete => {
                ctx.sync_deleted(self, look, change.id, change.old, &mut out)
                    .await;
            }
            SyncAction::NotifyCreate | SyncAction::NotifyUpdate => {
                let fetched;
                let new = match change.new {
                    Some(v) => v,
                    None => {
                        fetched = ctx.source_set.get(change.id).await?.ok_or_else(|| {
                            EngineError::NotFound(format!(
                                "{}/{} not found",
                                change.collection, change.id
                            ))
                        })?;
                        &fetched
                    }
                };
                ctx.sync_changed(self, look, change.id, new, change.old, &mut out)
                    .await;
            }
        }
        Ok(out)
    }

    /// The implicit sync of managed objects that a committed sync wrote (the cascade).
    async fn cascade(&self, changes: Vec<Change>, depth: usize) -> EngineResult<SyncOutcome> {
        let mut outcome = SyncOutcome::default();
        for c in changes {
            let scripted = self
                .scripts_of(&c.collection)
                .is_some_and(|s| s.has_after_hooks());
            if !scripted && !self.has_sync_from(&c.collection) {
                continue;
            }
            outcome.merge(self.after_managed_write(c, depth + 1).await?);
        }
        Ok(outcome)
    }

    /// The lifecycle scripts of the managed type of `collection`, if it is one.
    fn scripts_of(&self, collection: &str) -> Option<&Arc<crate::ManagedScripts>> {
        collection
            .strip_prefix("managed/")
            .and_then(|t| self.managed_scripts(t))
    }

    /// What follows a managed-object write that a recon or a sync committed, as for a REST
    /// write: the type's `post*` script, then implicit sync and `onSync`.
    async fn after_managed_write(&self, c: Change, depth: usize) -> EngineResult<SyncOutcome> {
        let c = self.with_current_value(c).await?;
        if let Some(s) = self.scripts_of(&c.collection) {
            s.after_write(
                &c.id,
                c.old.as_ref(),
                c.new.as_ref(),
                &crate::Caller::internal(),
            )?;
        }
        self.notify_managed_depth(&c, depth).await
    }

    /// The implicit sync of a stored managed-object write, then its type's `onSync` with the
    /// results (`syncResults`: `{"success", "action", "syncDetails"}`). Without `onSync` a
    /// failed sync is only in the outcome; with it, the script decides: what it throws is the
    /// error (docs/configuration.md#confmanagedjson).
    pub async fn notify_managed(&self, change: &Change) -> EngineResult<SyncOutcome> {
        self.notify_managed_depth(change, 0).await
    }

    async fn notify_managed_depth(
        &self,
        change: &Change,
        depth: usize,
    ) -> EngineResult<SyncOutcome> {
        let result = self.notify_depth(change, depth).await;
        let Some(scripts) = self
            .scripts_of(&change.collection)
            .filter(|s| s.has_on_sync())
        else {
            return result;
        };
        let sync_results = match &result {
            Ok(o) => json!({
                "success": !o.failed,
                "action": change.action.as_str(),
                "syncDetails": o.results,
            }),
            Err(e) => json!({
                "success": false,
                "action": change.action.as_str(),
                "syncDetails": [],
                "cause": e.to_string(),
            }),
        };
        scripts.on_sync(
            &change.id,
            change.old.as_ref(),
            change.new.as_ref(),
            sync_results,
            &crate::Caller::internal(),
        )?;
        result
    }

    /// Commits what a sync produced (links, managed writes, sync audit) and returns its results;
    /// when the repository refuses the commit, every result of it is FAILED with that cause (and
    /// the flag says it did not commit).
    pub(crate) async fn commit_output(&self, out: ChunkOutput) -> (SyncOutcome, bool) {
        let mut outcome = SyncOutcome {
            failed: out.sync_results.iter().any(|r| r["result"] == "FAILED"),
            results: out.sync_results,
        };
        let commit = self
            .repo
            .commit(ChangeSet {
                fence: None,
                ops: out.ops,
            })
            .await;
        if let Err(e) = commit {
            // A concurrent change won a unique link, a revision moved: the mapping failed.
            let code = idsync_core::HasErrorCode::error_code(&e);
            for r in &mut outcome.results {
                r["result"] = json!("FAILED");
                r["cause"] = json!({
                    "message": e.to_string(), "code": code.http_status(), "reason": code.reason()
                });
            }
            outcome.failed = true;
            return (outcome, false);
        }
        (outcome, true)
    }

    /// The cached sync context of a mapping.
    fn sync_ctx(&self, name: &str) -> EngineResult<Arc<RunCtx>> {
        if let Some(c) = self.lock_sync_ctxs()?.get(name) {
            return Ok(c.clone());
        }
        let ctx = Arc::new(RunCtx::for_sync(self, name)?);
        Ok(self
            .lock_sync_ctxs()?
            .entry(name.to_string())
            .or_insert(ctx)
            .clone())
    }

    /// Runs what follows a managed-object change that is already committed (a recon wrote
    /// it): the type's `post*` script, the inline mappings and `onSync`; a failure is logged
    /// and audited, never raised.
    pub async fn notify_committed(&self, change: Change) {
        let result = self.after_managed_write(change.clone(), 0).await;
        let failure = match result {
            Ok(outcome) => outcome.failure_message(),
            Err(e) => Some(e.to_string()),
        };
        if let Some(m) = failure {
            tracing::warn!(collection = %change.collection, id = %change.id, "implicit sync failed: {m}");
        }
    }

    /// A cascaded create or update carries the committed value (with its new `_rev`).
    async fn with_current_value(&self, mut c: Change) -> EngineResult<Change> {
        if c.action != SyncAction::NotifyDelete
            && let Some(t) = c.collection.strip_prefix("managed/")
        {
            c.new = self.repo.get_object(t, &c.id).await?;
            if c.new.is_none() {
                c.action = SyncAction::NotifyDelete;
            }
        }
        Ok(c)
    }
}

/// The managed-object writes of a sync's output, with the objects before the updates and
/// deletes when the output kept them (for `postUpdate`/`postDelete`).
pub(crate) fn managed_changes_of(out: &ChunkOutput) -> Vec<Change> {
    let mut changes = managed_changes(&out.ops);
    for c in &mut changes {
        c.old = out.managed_old.get(&c.id).cloned();
    }
    changes
}

/// The managed-object writes among committed operations, as changes to cascade.
pub fn managed_changes(ops: &[Op]) -> Vec<Change> {
    ops.iter()
        .filter_map(|op| {
            let (t, id, action, old, new) = match op {
                Op::CreateObject {
                    object_type,
                    id,
                    value,
                } => (
                    object_type,
                    id,
                    SyncAction::NotifyCreate,
                    None,
                    Some(value.clone()),
                ),
                Op::UpdateObject {
                    object_type,
                    id,
                    value,
                    ..
                } => (
                    object_type,
                    id,
                    SyncAction::NotifyUpdate,
                    None,
                    Some(value.clone()),
                ),
                Op::DeleteObject {
                    object_type, id, ..
                } => (object_type, id, SyncAction::NotifyDelete, None, None),
                _ => return None,
            };
            Some(Change {
                collection: format!("managed/{t}"),
                id: id.clone(),
                action,
                old,
                new,
            })
        })
        .collect()
}

fn skipped(engine: &Engine, name: &str, change: &Change) -> Value {
    let target = engine
        .mapping(name)
        .map(|(m, _)| m.target_str)
        .unwrap_or_default();
    json!({
        "reconId": Value::Null,
        "mapping": name,
        "situation": Value::Null,
        "action": Value::Null,
        "sourceId": change.id,
        "linkQualifier": Value::Null,
        "targetId": Value::Null,
        "ambiguousTargetIds": Value::Null,
        "oldTargetValue": Value::Null,
        "result": "SKIPPED",
        "targetObjectSet": target,
    })
}
