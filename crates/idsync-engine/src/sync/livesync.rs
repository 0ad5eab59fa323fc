//! liveSync: poll a source object set (`system/<name>/<type>`) for what changed since its stored
//! token and send each change through every mapping whose source it is — the same per-object
//! assess → decide → act as implicit sync ([`Engine::act`], `pipeline/changed.rs`), creates and
//! updates as `sync_changed`, deletes as `sync_deleted` (the delete branch).
//!
//! **Exactly once per committed change.** Each change's repository writes (links, managed
//! targets, its sync audit entries) commit in ONE change set with the token just after it, so a
//! crash re-delivers at most the change whose commit did not happen, and never skips one. A
//! connector that cannot tell the token after each change (`ChangeBatch::tokens` empty) gets
//! its batch's token committed with the batch's last change.
//!
//! **The sync record.** The repository keeps, per source, the record the REST API shows:
//! `{"_id": "SYSTEM<NAME><TYPE>", "_rev", "connectorData": {"syncToken"}, "lastException"?}`.
//! The first pass (no token) only records the connector's current token and applies nothing.
//!
//! **Failures** (the provisioner's `syncFailureHandler`): a change whose sync fails stops the
//! pass; the token stays just before it, `lastException` says why, and later changes wait. The
//! next pass tries it again. After `maxRetries` retries (the first attempt plus N) the
//! `postRetryAction` disposes of it — `logged-ignore` logs it, `dead-letter-queue` stores it in
//! the dead-letter store, a script gets `syncFailure` and `failureCause` — and the token moves
//! past it. Without a handler (or with `maxRetries: -1`) a change is retried forever.
//!
//! **One at a time.** A pass holds the repository lock `livesync:<source>`, so one liveSync of
//! a source runs at a time cluster-wide; a pass that finds it held answers `Conflict`.

use super::{Change, managed_changes};
use crate::Engine;
use crate::error::{EngineError, EngineResult};
use crate::pipeline::op::ChunkLookups;
use idsync_config::PostRetryAction;
use idsync_connectors::{Change as Delta, ObjectSet};
use idsync_core::ResourcePath;
use idsync_repo::{ChangeSet, DeadLetter, EventState, Op, SyncAction, SyncEvent};
use idsync_script::{Bindings, Script, ScriptOrigin};
use serde_json::{Value, json};
use std::sync::Arc;

/// How many batches one pass reads at most (a pass ends; the next firing goes on).
const MAX_BATCHES_PER_PASS: usize = 100;

/// The stored state of one source (what `get_sync_token` holds for it).
#[derive(Debug, Clone, Default, PartialEq)]
struct Record {
    token: Option<Value>,
    rev: u64,
    last_exception: Option<Value>,
    /// The change that failed last: its id and how many attempts it had.
    failing: Option<(String, u64)>,
}

impl Record {
    fn from_stored(v: Option<Value>) -> Self {
        let Some(v) = v.filter(|v| !v.is_null()) else {
            return Self::default();
        };
        Self {
            token: v.get("syncToken").cloned().filter(|t| !t.is_null()),
            rev: v["rev"].as_u64().unwrap_or(0),
            last_exception: v.get("lastException").cloned().filter(|t| !t.is_null()),
            failing: v["failing"]["id"].as_str().map(|id| {
                (
                    id.to_string(),
                    v["failing"]["attempts"].as_u64().unwrap_or(0),
                )
            }),
        }
    }

    fn stored(&self) -> Value {
        json!({
            "syncToken": self.token,
            "rev": self.rev,
            "lastException": self.last_exception,
            "failing": self.failing.as_ref().map(|(id, n)| json!({"id": id, "attempts": n})),
        })
    }

    fn rest(&self, source: &str) -> Value {
        let mut r = json!({
            "_id": record_id(source),
            "_rev": self.rev.to_string(),
            "connectorData": { "syncToken": self.token },
        });
        if let Some(e) = &self.last_exception {
            r["lastException"] = e.clone();
        }
        r
    }

    /// The op that stores this record (bumping its revision).
    fn op(&mut self, source: &str) -> Op {
        self.rev += 1;
        Op::SetSyncToken {
            source: source.to_string(),
            token: self.stored(),
        }
    }
}

/// The sync record's id: the source path without slashes, upper case (`SYSTEMHRACCOUNT`).
pub fn record_id(source: &str) -> String {
    source.replace('/', "").to_uppercase()
}

fn lock_name(source: &str) -> String {
    format!("livesync:{source}")
}

/// What one change did.
enum Applied {
    Done,
    Failed(String),
}

impl Engine {
    /// Runs one liveSync pass of `source` and answers its sync record (module doc).
    pub async fn live_sync(&self, source: &str) -> EngineResult<Value> {
        let set = self.live_source(source)?;
        let lock = lock_name(source);
        if self
            .repo
            .try_acquire_lock(&lock, &self.node_id)
            .await?
            .is_none()
        {
            return Err(EngineError::Conflict(format!(
                "a liveSync of {source} is running on another node"
            )));
        }
        let result = self.live_pass(source, &set).await;
        if let Err(e) = self.repo.release_lock(&lock, &self.node_id).await {
            tracing::warn!(source, "releasing the liveSync lock failed: {e}");
        }
        result
    }

    /// The stored sync record of `source` (`None` before its first pass).
    pub async fn live_sync_record(&self, source: &str) -> EngineResult<Option<Value>> {
        self.live_source(source)?;
        let stored = self.repo.get_sync_token(source).await?;
        let rec = Record::from_stored(stored);
        Ok((rec.rev > 0).then(|| rec.rest(source)))
    }

    /// Forgets the token of `source`: its next pass starts again from "now".
    pub async fn reset_live_sync(&self, source: &str) -> EngineResult<()> {
        self.live_source(source)?;
        self.repo.set_sync_token(source, &Value::Null).await?;
        Ok(())
    }

    fn live_source(&self, source: &str) -> EngineResult<Arc<dyn ObjectSet>> {
        let path = ResourcePath::parse(source)
            .map_err(|e| EngineError::BadRequest(format!("liveSync source {source}: {e}")))?;
        match &path {
            ResourcePath::System { id: None, .. } => self.resources.object_set(&path),
            _ => Err(EngineError::BadRequest(format!(
                "liveSync source must be system/<connector>/<type>, not {source}"
            ))),
        }
    }

    async fn live_pass(&self, source: &str, set: &Arc<dyn ObjectSet>) -> EngineResult<Value> {
        let mut rec = Record::from_stored(self.repo.get_sync_token(source).await?);
        let Some(mut token) = rec.token.clone() else {
            // The first pass: remember where the source is now; apply nothing.
            rec.token = set.changes_since(None).await?.token;
            rec.last_exception = None;
            rec.failing = None;
            let op = rec.op(source);
            self.repo
                .commit(ChangeSet {
                    fence: None,
                    ops: vec![op],
                })
                .await?;
            return Ok(rec.rest(source));
        };
        let mut applied = 0u64;
        'batches: for _ in 0..MAX_BATCHES_PER_PASS {
            let batch = set.changes_since(Some(&token)).await?;
            if batch.changes.is_empty() {
                break;
            }
            let n = batch.changes.len();
            for (i, delta) in batch.changes.iter().enumerate() {
                // The token after this change; without per-change tokens, only the last change
                // moves it (to the batch's).
                let next = match batch.tokens.get(i) {
                    Some(t) => Some(t.clone()),
                    None if i + 1 == n => batch.token.clone(),
                    None => None,
                };
                let change = change_of(source, delta);
                let mut after = rec.clone();
                if let Some(t) = &next {
                    after.token = Some(t.clone());
                }
                after.last_exception = None;
                after.failing = None;
                match self.live_apply(source, &change, &mut after).await {
                    Applied::Done => {
                        rec = after;
                        applied += 1;
                    }
                    Applied::Failed(message) => {
                        if !self
                            .live_failed(source, &change, &message, &mut rec, next)
                            .await?
                        {
                            break 'batches;
                        }
                    }
                }
            }
            match &rec.token {
                Some(t) if *t != token => token = t.clone(),
                // A connector without per-change tokens whose batch did not complete.
                _ => break,
            }
        }
        metrics::counter!("idsync_livesync_changes_total", "source" => source.to_string())
            .increment(applied);
        Ok(rec.rest(source))
    }

    /// Runs one change through every mapping of its source and commits the writes with the
    /// record `after` (its token just after the change); then the implicit sync of the managed
    /// objects it wrote.
    async fn live_apply(&self, source: &str, change: &Change, after: &mut Record) -> Applied {
        let mut ops = Vec::new();
        let names: Vec<String> = self
            .mappings_from(source)
            .into_iter()
            .map(|m| m.name.clone())
            .collect();
        for name in names {
            let out = match self.sync_ctx(&name) {
                Ok(ctx) => {
                    self.act(&ctx, &ChunkLookups::default(), change.view())
                        .await
                }
                Err(e) => Err(e),
            };
            let out = match out {
                Ok(o) => o,
                Err(e) => return Applied::Failed(format!("mapping {name}: {e}")),
            };
            let outcome = super::SyncOutcome {
                failed: out.sync_results.iter().any(|r| r["result"] == "FAILED"),
                results: out.sync_results,
            };
            if let Some(m) = outcome.failure_message() {
                // The failure's audit entries are kept; its other writes are not.
                let audit: Vec<Op> = out
                    .ops
                    .into_iter()
                    .filter(|o| matches!(o, Op::AppendAudit(_)))
                    .collect();
                if let Err(e) = self
                    .repo
                    .commit(ChangeSet {
                        fence: None,
                        ops: audit,
                    })
                    .await
                {
                    tracing::warn!(source, "liveSync failure audit not written: {e}");
                }
                return Applied::Failed(m);
            }
            ops.extend(out.ops);
        }
        let cascade = managed_changes(&ops);
        ops.push(after.op(source));
        if let Err(e) = self.repo.commit(ChangeSet { fence: None, ops }).await {
            return Applied::Failed(e.to_string());
        }
        if let Err(e) = self.cascade(cascade, 0).await {
            tracing::warn!(source, id = %change.id, "implicit sync after liveSync failed: {e}");
        }
        Applied::Done
    }

    /// A change failed: count the attempt; within the retries, store the record with
    /// `lastException` and stop (`Ok(false)`); past them, dispose of the change per
    /// `postRetryAction` and move the token past it (`Ok(true)`: the pass goes on).
    async fn live_failed(
        &self,
        source: &str,
        change: &Change,
        message: &str,
        rec: &mut Record,
        next: Option<Value>,
    ) -> EngineResult<bool> {
        let attempts = match &rec.failing {
            Some((id, n)) if *id == change.id => n + 1,
            _ => 1,
        };
        let handler = source
            .split('/')
            .nth(1)
            .and_then(|c| self.project.connector(c))
            .and_then(|c| c.sync_failure_handler.clone());
        let exhausted = handler
            .as_ref()
            .and_then(|h| h.max_retries)
            .is_some_and(|max| attempts > max);
        tracing::warn!(source, id = %change.id, attempts, "liveSync change failed: {message}");
        // Past its retries the handler disposes of it; a disposal that fails (a dead letter not
        // written, a script that throws) keeps the change where it is, as a failure.
        let disposed = match (exhausted, handler.map(|h| h.post_retry_action)) {
            (false, _) => Err(message.to_string()),
            (true, Some(PostRetryAction::DeadLetterQueue)) => {
                // Stored before the token moves: a crash in between stores it twice at worst.
                let letter = dead_letter(self, source, change, message, attempts);
                self.repo
                    .add_dead_letter(&letter)
                    .await
                    .map_err(|e| format!("{message} (and the dead letter was not written: {e})"))
            }
            (true, Some(PostRetryAction::Script(spec))) => {
                run_failure_script(source, change, message, &spec)
                    .map_err(|e| format!("{message} (and the postRetryAction script failed: {e})"))
            }
            (true, _) => {
                tracing::warn!(
                    source, id = %change.id, attempts,
                    "liveSync change ignored after its retries (logged-ignore): {message}"
                );
                Ok(())
            }
        };
        if let Err(message) = disposed {
            rec.failing = Some((change.id.clone(), attempts));
            rec.last_exception = Some(json!({
                "message": message,
                "objectId": format!("{source}/{}", change.id),
                "attempts": attempts,
            }));
            let op = rec.op(source);
            self.repo
                .commit(ChangeSet {
                    fence: None,
                    ops: vec![op],
                })
                .await?;
            return Ok(false);
        }
        if let Some(t) = next {
            rec.token = Some(t);
        }
        rec.failing = None;
        rec.last_exception = None;
        let op = rec.op(source);
        self.repo
            .commit(ChangeSet {
                fence: None,
                ops: vec![op],
            })
            .await?;
        Ok(true)
    }
}

/// The `postRetryAction` script of a disposed change, with IDM's bindings: `syncFailure`
/// (`token`-less: `systemIdentifier`, `objectType`, `uid`, `failedRecord`) and `failureCause`.
fn run_failure_script(
    source: &str,
    change: &Change,
    message: &str,
    spec: &idsync_config::ScriptSpec,
) -> Result<(), String> {
    let origin = ScriptOrigin::file_used_by(
        spec.origin.clone(),
        format!("{source} syncFailureHandler postRetryAction"),
    );
    let script =
        Script::compile(&spec.source, origin, spec.globals.clone()).map_err(|e| e.to_string())?;
    let mut parts = source.split('/').skip(1);
    let failure = json!({
        "systemIdentifier": parts.next(),
        "objectType": parts.next(),
        "uid": change.id,
        "failedRecord": change.new,
    });
    let bindings = Bindings::new()
        .with_owned("syncFailure", failure)
        .with_owned("failureCause", Value::String(message.to_string()));
    script
        .eval(&bindings)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// A connector's delta as the change the pipeline reads (an update when it exists: liveSync
/// does not know the value before).
fn change_of(source: &str, delta: &Delta) -> Change {
    match delta {
        Delta::CreateOrUpdate { id, object } => Change {
            collection: source.to_string(),
            id: id.clone(),
            action: SyncAction::NotifyUpdate,
            old: None,
            new: Some(object.clone()),
        },
        Delta::Delete { id } => Change {
            collection: source.to_string(),
            id: id.clone(),
            action: SyncAction::NotifyDelete,
            old: None,
            new: None,
        },
    }
}

/// The dead letter of a disposed liveSync change, in the store queued sync uses (its
/// `mapping` names the source, as a liveSync change is the source's, not one mapping's).
fn dead_letter(
    engine: &Engine,
    source: &str,
    change: &Change,
    message: &str,
    attempts: u64,
) -> DeadLetter {
    let now = chrono::Utc::now();
    DeadLetter {
        id: crate::managed_set::new_id(),
        event: SyncEvent {
            id: crate::managed_set::new_id(),
            rev: "0".into(),
            mapping: engine
                .mappings_from(source)
                .first()
                .map_or_else(|| source.to_string(), |m| m.name.clone()),
            resource_id: change.id.clone(),
            resource_collection: source.to_string(),
            sync_action: change.action,
            state: EventState::Pending,
            node_id: None,
            remaining_retries: 0,
            create_date: now,
            old_object: None,
            new_object: change.new.clone(),
            object_rev: None,
            context: json!({ "node": engine.node_id, "liveSync": true }),
            seq: 0,
        },
        failure_cause: message.to_string(),
        retries: i64::try_from(attempts).unwrap_or(i64::MAX),
        failed_date: now,
    }
}
