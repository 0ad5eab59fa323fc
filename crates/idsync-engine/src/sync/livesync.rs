//! liveSync: poll a source object set (`system/<name>/<type>`) for what changed since its stored
//! token and send each change through every mapping whose source it is — the same per-object
//! assess → decide → act as implicit sync ([`Engine::act`], `pipeline/changed.rs`), creates and
//! updates as `sync_changed`, deletes as `sync_deleted` (the delete branch).
//!
//! **Exactly once per committed change.** The repository writes (links, managed targets, sync
//! audit entries) of a group of changes — up to [`GROUP_MAX`] consecutive changes of distinct
//! objects, read in bulk first, run in order — commit in ONE change set with the token just
//! after the group's last change, so a crash re-delivers at most the group whose commit did not
//! happen, and never skips one. A change that fails ends its group: the ones before it commit
//! with the token just before it. A connector that cannot tell the token after each change
//! (`ChangeBatch::tokens` empty) gets its batch's token committed with the batch's last change.
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

use super::failure_script::{self, Handed};
use super::{Change, managed_changes};
use crate::Engine;
use crate::error::{EngineError, EngineResult};
use crate::pipeline::lookups::source_lookups;
use idsync_config::PostRetryAction;
use idsync_connectors::{Change as Delta, ObjectSet};
use idsync_core::ResourcePath;
use idsync_repo::{ChangeSet, DeadLetter, EventState, Op, SyncAction, SyncEvent};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;

/// How many batches one pass reads at most (a pass ends; the next firing goes on).
const MAX_BATCHES_PER_PASS: usize = 100;
/// Changes committed in one change set at most.
const GROUP_MAX: usize = 1000;

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
            let n = batch.changes.len();
            let changes: Vec<Change> = batch.changes.iter().map(|d| change_of(source, d)).collect();
            // The token after change i; without per-change tokens, only the last change moves
            // it (to the batch's).
            let next_of = |i: usize| match batch.tokens.get(i) {
                Some(t) => Some(t.clone()),
                None if i + 1 == n => batch.token.clone(),
                None => None,
            };
            let mut i = 0;
            while i < n {
                // A group: the next changes of distinct objects (a second change of one object
                // waits for the first one's commit).
                let mut ids = HashSet::new();
                let mut j = i;
                while j < n && j - i < GROUP_MAX && ids.insert(changes[j].id.as_str()) {
                    j += 1;
                }
                let nexts: Vec<Option<Value>> = (i..j).map(next_of).collect();
                let (done, failure) = self
                    .live_group(source, &changes[i..j], &nexts, &mut rec)
                    .await?;
                let now = chrono::Utc::now();
                for at in batch.times.iter().skip(i).take(done).flatten() {
                    let lag = (now - *at).num_microseconds().unwrap_or(0).max(0);
                    metrics::histogram!(
                        crate::metered::names::LIVESYNC_LAG,
                        "source" => source.to_string()
                    )
                    .record(lag as f64 / 1e6);
                }
                applied += done as u64;
                let Some(message) = failure else {
                    i = j;
                    continue;
                };
                let f = i + done;
                if !self
                    .live_failed(source, &changes[f], &message, &mut rec, next_of(f))
                    .await?
                {
                    break 'batches;
                }
                i = f + 1;
            }
            // Every change is done: the batch's token may cover more (source records that were
            // no change of this set), and is stored on its own.
            if let Some(t) = &batch.token
                && rec.token.as_ref() != Some(t)
                && (n == 0 || !batch.tokens.is_empty())
            {
                rec.token = Some(t.clone());
                let op = rec.op(source);
                self.repo
                    .commit(ChangeSet {
                        fence: None,
                        ops: vec![op],
                    })
                    .await?;
            }
            match &rec.token {
                Some(t) if *t != token => token = t.clone(),
                // Nothing moved: the source has nothing more now (or a connector without
                // per-change tokens did not complete its batch).
                _ => break,
            }
        }
        metrics::counter!(crate::metered::names::LIVESYNC_CHANGES, "source" => source.to_string())
            .increment(applied);
        Ok(rec.rest(source))
    }

    /// Runs a group of changes of distinct objects, in order, through every mapping of their
    /// source, up to the first that fails, and commits what the ones before it wrote in ONE
    /// change set with the record `rec` moved to the token after the last of them (`nexts[k]`
    /// is the token after change k, when the connector tells), plus the failing change's audit
    /// entries; then the implicit sync of the managed objects written. The links and linked
    /// targets of the group are read in bulk first. Answers how many changes were applied and
    /// the failure of the next one, if any. A refused commit (a conflict of one change) commits
    /// the changes one by one, so that only the conflicting one fails.
    async fn live_group(
        &self,
        source: &str,
        group: &[Change],
        nexts: &[Option<Value>],
        rec: &mut Record,
    ) -> EngineResult<(usize, Option<String>)> {
        let ids: Vec<&str> = group.iter().map(|c| c.id.as_str()).collect();
        let mut mappings = Vec::new();
        for m in self.mappings_from(source) {
            let name = m.name.clone();
            let ctx = match self.sync_ctx(&name) {
                Ok(ctx) => ctx,
                Err(e) => return Ok((0, Some(format!("mapping {name}: {e}")))),
            };
            let look = match source_lookups(self, &ctx, &ids).await {
                Ok(look) => look,
                Err(e) => return Ok((0, Some(format!("mapping {name}: {e}")))),
            };
            mappings.push((name, ctx, look));
        }
        let mut per_change: Vec<Vec<Op>> = Vec::with_capacity(group.len());
        let mut failure = None;
        let mut failure_audit = Vec::new();
        'changes: for change in group {
            let mut ops = Vec::new();
            for (name, ctx, look) in &mappings {
                let out = match self.act(ctx, look, change.view()).await {
                    Ok(out) => out,
                    Err(e) => {
                        failure = Some(format!("mapping {name}: {e}"));
                        break 'changes;
                    }
                };
                let outcome = super::SyncOutcome {
                    failed: out.sync_results.iter().any(|r| r["result"] == "FAILED"),
                    results: out.sync_results,
                };
                if let Some(m) = outcome.failure_message() {
                    // The failure's audit entries are kept; its other writes are not.
                    failure_audit = out
                        .ops
                        .into_iter()
                        .filter(|o| matches!(o, Op::AppendAudit(_)))
                        .collect();
                    failure = Some(m);
                    break 'changes;
                }
                ops.extend(out.ops);
            }
            per_change.push(ops);
        }
        let done = per_change.len();
        let mut after = rec.clone();
        if done > 0 {
            if let Some(t) = nexts[..done].iter().rev().flatten().next() {
                after.token = Some(t.clone());
            }
            after.last_exception = None;
            after.failing = None;
        }
        let mut ops: Vec<Op> = per_change.iter().flatten().cloned().collect();
        let cascade = managed_changes(&ops);
        ops.extend(failure_audit.iter().cloned());
        if done > 0 {
            ops.push(after.op(source));
        }
        if ops.is_empty() {
            return Ok((done, failure));
        }
        match self.repo.commit(ChangeSet { fence: None, ops }).await {
            Ok(_) => {
                *rec = after;
                if let Err(e) = self.cascade(cascade, 0).await {
                    tracing::warn!(source, "implicit sync after liveSync failed: {e}");
                }
                Ok((done, failure))
            }
            Err(e) if done == 0 => {
                tracing::warn!(source, "liveSync failure audit not written: {e}");
                Ok((0, failure))
            }
            // The one change's commit failed: that is its failure.
            Err(e) if done == 1 => Ok((0, Some(e.to_string()))),
            Err(e) => {
                tracing::debug!(
                    source,
                    "a liveSync group commit was refused ({e}); one by one"
                );
                for (k, ops) in per_change.into_iter().enumerate() {
                    let mut after = rec.clone();
                    if let Some(t) = &nexts[k] {
                        after.token = Some(t.clone());
                    }
                    after.last_exception = None;
                    after.failing = None;
                    let cascade = managed_changes(&ops);
                    let mut ops = ops;
                    ops.push(after.op(source));
                    if let Err(e) = self.repo.commit(ChangeSet { fence: None, ops }).await {
                        return Ok((k, Some(e.to_string())));
                    }
                    *rec = after;
                    if let Err(e) = self.cascade(cascade, 0).await {
                        tracing::warn!(source, id = %group[k].id, "implicit sync after liveSync failed: {e}");
                    }
                }
                if failure.is_some()
                    && let Err(e) = self
                        .repo
                        .commit(ChangeSet {
                            fence: None,
                            ops: failure_audit,
                        })
                        .await
                {
                    tracing::warn!(source, "liveSync failure audit not written: {e}");
                }
                Ok((done, failure))
            }
        }
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
                match run_failure_script(source, change, message, &spec, self.script_host()) {
                    Err(e) => Err(format!(
                        "{message} (and the postRetryAction script failed: {e})"
                    )),
                    // The script handed the change to IDM's dead-letter handler.
                    Ok(handed) if handed.contains(&Handed::DeadLetterQueue) => {
                        let letter = dead_letter(self, source, change, message, attempts);
                        self.repo.add_dead_letter(&letter).await.map_err(|e| {
                            format!("{message} (and the dead letter was not written: {e})")
                        })
                    }
                    Ok(handed) => {
                        if handed.contains(&Handed::LoggedIgnore) {
                            tracing::warn!(
                                source, id = %change.id, attempts,
                                "liveSync change ignored by the postRetryAction script (loggedIgnore): {message}"
                            );
                        }
                        Ok(())
                    }
                }
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
/// (`token`-less: `systemIdentifier`, `objectType`, `uid`, `failedRecord`), `failureCause` and
/// `failureHandlers`; answers the built-in handlers it invoked.
fn run_failure_script(
    source: &str,
    change: &Change,
    message: &str,
    spec: &idsync_config::ScriptSpec,
    host: &idsync_script::HostSlot,
) -> Result<Vec<Handed>, String> {
    let place = format!("{source} syncFailureHandler postRetryAction");
    let script = failure_script::compile(spec, place, host).map_err(|e| e.to_string())?;
    let mut parts = source.split('/').skip(1);
    let failure = json!({
        "systemIdentifier": parts.next(),
        "objectType": parts.next(),
        "uid": change.id,
        "failedRecord": change.new,
    });
    failure_script::run(&script, failure, message)
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
