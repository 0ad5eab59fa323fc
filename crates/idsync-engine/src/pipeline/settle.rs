//! Settling a chunk of the source phase in source order: what makes a parallel, batched
//! reconciliation leave exactly what IDM's serial one leaves (ADR 0007).
//!
//! The chunk's objects are first assessed, decided and *prepared* in parallel — every read
//! answered against the state at the start of the chunk, no write done ([`Spec`]). Serially,
//! an object sees what the objects before it wrote: a user the previous row created, a target
//! it linked. So the chunk then walks its ops in source order, keeping an [`Overlay`] of what
//! the ops before the current one write, and asks of each op whether anything it read could
//! have changed:
//!
//! - a target it read by id (its linked target, a correlation candidate) was written, linked or
//!   unlinked by an earlier op; or
//! - an earlier op created or changed a target so that it matches this op's correlation query
//!   (found with the chunk's [`FilterIndex`], confirmed with the filter itself).
//!
//! Such an op is assessed, decided and prepared again, its reads answered through the overlay
//! (a managed target's writes wait for the chunk's commit, so the overlay stands in for them),
//! or — when the target is a connected system, whose writes go out at once — after the writes
//! of every earlier op have been done. The first op in source order keeps what it found; a
//! later one becomes FOUND_ALREADY_LINKED, AMBIGUOUS or whatever serial semantics make it. A
//! conflict is one object's outcome, never a failed chunk.
//!
//! The blast-radius guard admits destructive actions in the same walk, so which objects a
//! limit lets through no longer depends on thread timing. Ops the walk has settled are applied
//! at once for a managed target (their writes are operations of the commit) and in parallel,
//! once the walk is done, for a system target.
//!
//! Earlier chunks and pages need no such walk: a page is assessed only once every earlier page
//! of the run has committed (`jobs.rs`), so its reads already see their writes.

use super::ctx::RunCtx;
use super::op::{Candidates, ChunkLookups, ChunkOutput, Intent, Op1, PageFence, Spec, intent_key};
use crate::Engine;
use crate::error::{EngineError, EngineResult};
use idsync_core::filter::{Filter, FilterIndex};
use idsync_repo::{ChangeSet, Op};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// What the ops settled so far in a chunk wrote, as the ops after them must see it.
#[derive(Debug, Default, Clone)]
pub struct Overlay {
    /// Managed targets written, by normalised id: the new value, or `None` once deleted.
    targets: HashMap<String, Option<Value>>,
    /// The same ids in the order they were first written, so corrections are deterministic.
    order: Vec<String>,
    /// Link changes: (qualifier, normalised target id) → linked now.
    links: HashMap<(String, String), bool>,
    /// Every normalised target id written, linked or unlinked.
    touched: HashSet<String>,
}

impl Overlay {
    /// What an earlier op made of a managed target: `Some(None)` when it deleted it, `None`
    /// when no earlier op wrote it.
    pub fn target(&self, norm_id: &str) -> Option<Option<&Value>> {
        self.targets.get(norm_id).map(Option::as_ref)
    }

    /// Whether an earlier op linked (`Some(true)`) or unlinked (`Some(false)`) the target.
    pub fn linked(&self, qualifier: &str, norm_id: &str) -> Option<bool> {
        self.links
            .get(&(qualifier.to_string(), norm_id.to_string()))
            .copied()
    }

    fn touched(&self, norm_id: &str) -> bool {
        self.touched.contains(norm_id)
    }

    /// Corrects what a correlation query found at the start of the chunk with the managed
    /// targets the earlier ops wrote: deleted ones go, changed ones stay only if they still
    /// match, created or changed ones that match now come in.
    pub fn correct(
        &self,
        found: Candidates,
        filter: &Filter,
        norm: impl Fn(&str) -> String,
    ) -> Candidates {
        let (ids, mut values) = found;
        let mut out = Candidates::default();
        let mut seen = HashSet::new();
        for id in ids {
            let n = norm(&id);
            match self.targets.get(&n) {
                Some(None) => {}
                Some(Some(v)) => {
                    if filter.matches(v) {
                        seen.insert(n);
                        out.1.insert(id.clone(), v.clone());
                        out.0.push(id);
                    }
                }
                None => {
                    seen.insert(n);
                    if let Some(v) = values.remove(&id) {
                        out.1.insert(id.clone(), v);
                    }
                    out.0.push(id);
                }
            }
        }
        for n in &self.order {
            if seen.contains(n) {
                continue;
            }
            if let Some(Some(v)) = self.targets.get(n)
                && filter.matches(v)
                && let Some(id) = v.get("_id").and_then(Value::as_str)
            {
                out.1.insert(id.to_string(), v.clone());
                out.0.push(id.to_string());
            }
        }
        out
    }

    fn write_target(&mut self, norm_id: String, value: Option<Value>) {
        if !self.targets.contains_key(&norm_id) {
            self.order.push(norm_id.clone());
        }
        self.touched.insert(norm_id.clone());
        self.targets.insert(norm_id, value);
    }

    fn link(&mut self, qualifier: &str, norm_id: String, linked: bool) {
        self.touched.insert(norm_id.clone());
        self.links.insert((qualifier.to_string(), norm_id), linked);
    }
}

/// A settled op's writes, for the overlay and for finding the later ops they concern.
#[derive(Debug, Default)]
struct Effects {
    /// System target values created or changed: later correlations may now find them.
    values: Vec<Value>,
    /// Managed targets written (the overlay keeps their values, which later correlations may
    /// find too).
    targets: Vec<(String, Option<Value>)>,
    /// Link changes by (normalised target id, linked now).
    links: Vec<(String, bool)>,
    /// Targets whose state changed without a value the overlay keeps (system targets).
    touched: Vec<String>,
}

impl RunCtx {
    /// Settles the chunk's source ops (in source order) and applies them into `out`. `look` is
    /// what the chunk looked up before its ops were prepared.
    pub(crate) async fn settle(
        self: &Arc<Self>,
        engine: &Arc<Engine>,
        mut look: ChunkLookups,
        specs: Vec<Spec>,
        out: &mut ChunkOutput,
    ) -> EngineResult<()> {
        let analyze = self.opts.analyze;
        let managed = self.target_managed_type.is_some();
        // The chunk's correlation queries, indexed: which later ops a written value concerns.
        let mut filters: Vec<Filter> = Vec::new();
        let mut owners: Vec<usize> = Vec::new();
        for (i, s) in specs.iter().enumerate() {
            if let Some(f) = &s.op.reads.filter {
                filters.push(f.clone());
                owners.push(i);
            }
        }
        let index = FilterIndex::new(&filters);
        let unindexed: Vec<usize> = (0..filters.len())
            .filter(|&m| filters[m].equality_probe().is_none())
            .collect();
        let mut flagged = vec![false; specs.len()];
        look.overlay = Some(Arc::new(Overlay::default()));
        let mut pending: Vec<Spec> = Vec::new();
        for (j, mut spec) in specs.into_iter().enumerate() {
            if out.abort.is_some() {
                break;
            }
            let touched = |t: &String| look.overlay.as_ref().is_some_and(|o| o.touched(t));
            let conflict =
                !spec.done && !analyze && (flagged[j] || spec.op.reads.targets.iter().any(touched));
            if conflict {
                if !pending.is_empty() {
                    // A connected system must hold the earlier writes before this op reads it.
                    self.apply_all(engine, std::mem::take(&mut pending), out, &mut look)
                        .await?;
                }
                spec = self.respeculate(engine, &look, spec, out).await;
            }
            if !spec.done
                && !analyze
                && let Some(action) = spec.op.action
                && let Err(msg) = self.guard.admit(action)
            {
                spec.op.action = None;
                spec.op.message = Some(msg.clone());
                spec.done = true;
                out.abort = Some(msg);
            }
            if !spec.done && !analyze {
                let effects = self.effects(&spec);
                let written = effects
                    .values
                    .iter()
                    .chain(effects.targets.iter().filter_map(|(_, v)| v.as_ref()));
                for v in written {
                    for m in index.matching(v) {
                        if owners[m] > j {
                            flagged[owners[m]] = true;
                        }
                    }
                    for &m in &unindexed {
                        if owners[m] > j && filters[m].matches(v) {
                            flagged[owners[m]] = true;
                        }
                    }
                }
                if let Some(o) = look.overlay.as_mut().map(Arc::make_mut) {
                    let q = spec.op.qualifier.clone();
                    for (id, v) in effects.targets {
                        o.write_target(id, v);
                    }
                    for (id, linked) in effects.links {
                        o.link(&q, id, linked);
                    }
                    for id in effects.touched {
                        o.touched.insert(id);
                    }
                }
            }
            if managed || spec.done {
                self.apply_spec(spec, out).await;
            } else {
                pending.push(spec);
            }
        }
        self.apply_all(engine, pending, out, &mut look).await
    }

    /// Assesses, decides and prepares an op again, its reads seeing the overlay.
    async fn respeculate(
        &self,
        engine: &Engine,
        look: &ChunkLookups,
        spec: Spec,
        out: &mut ChunkOutput,
    ) -> Spec {
        let Some(source) = spec.source else {
            return Spec {
                source: None,
                ..spec
            };
        };
        let mut op = Op1::new(spec.op.qualifier, "source");
        op.source_id = spec.op.source_id;
        self.speculate_op(engine, look, source, op, out).await
    }

    /// What a settled op writes.
    fn effects(&self, spec: &Spec) -> Effects {
        let managed = self.target_managed_type.is_some();
        let norm = |id: &str| self.links.norm_target(id);
        let old_link = spec.link.as_ref().map(|l| norm(self.links.target_id(l)));
        let mut e = Effects::default();
        let value_written =
            |e: &mut Effects, id: Option<String>, v: Option<&Value>| match (id, managed) {
                (Some(id), true) => e.targets.push((id, v.cloned())),
                (id, _) => {
                    e.values.extend(v.cloned());
                    e.touched.extend(id);
                }
            };
        match &spec.intent {
            Intent::Nothing => {}
            Intent::Create { value } => {
                // A system target's id is known once created (`apply_all` records its link).
                let id = value.get("_id").and_then(Value::as_str).map(norm);
                value_written(&mut e, id.clone().filter(|_| managed), Some(value));
                if let (Some(id), true) = (id, managed) {
                    e.links.push((id, true));
                }
                if let Some(old) = old_link {
                    e.links.push((old, false));
                }
            }
            Intent::Write { id, new, link, .. } => {
                let n = norm(id);
                if new.is_some() {
                    value_written(&mut e, Some(n.clone()), new.as_ref());
                }
                if *link {
                    if let Some(old) = old_link.filter(|o| *o != n) {
                        e.links.push((old, false));
                    }
                    e.links.push((n, true));
                }
            }
            Intent::Delete { target } => {
                if let Some((id, _)) = target {
                    value_written(&mut e, Some(norm(id)), None);
                }
                if let Some(old) = old_link {
                    e.links.push((old, false));
                }
            }
            Intent::Unlink => {
                if let Some(old) = old_link {
                    e.links.push((old, false));
                }
            }
        }
        e
    }

    /// Applies settled ops of a system target, on up to `taskThreads` tasks, and records the
    /// links of the targets they created in the overlay. The creates' intents are committed
    /// under the page's fence first (`PageFence`); a lost lease stops the chunk there.
    async fn apply_all(
        self: &Arc<Self>,
        engine: &Arc<Engine>,
        mut specs: Vec<Spec>,
        out: &mut ChunkOutput,
        look: &mut ChunkLookups,
    ) -> EngineResult<()> {
        if let Some(fence) = &look.fence
            && !self.opts.analyze
        {
            record_create_intents(engine, fence, &mut specs).await?;
        }
        let threads = self.eff.task_threads.max(1).min(specs.len());
        let mut created = Vec::new();
        if threads <= 1 {
            for s in specs {
                created.extend(self.apply_one(s, out).await);
            }
        } else {
            let per = specs.len().div_ceil(threads);
            let mut set = tokio::task::JoinSet::new();
            let mut iter = specs.into_iter();
            loop {
                let part: Vec<Spec> = iter.by_ref().take(per).collect();
                if part.is_empty() {
                    break;
                }
                let ctx = self.clone();
                set.spawn(idsync_script::host::inherit(async move {
                    let mut out = ChunkOutput::default();
                    let mut created = Vec::new();
                    for s in part {
                        created.extend(ctx.apply_one(s, &mut out).await);
                    }
                    (out, created)
                }));
            }
            while let Some(r) = set.join_next().await {
                match r {
                    Ok((o, c)) => {
                        out.merge(o);
                        created.extend(c);
                    }
                    Err(e) => {
                        let e = EngineError::Internal(format!("recon task failed: {e}"));
                        out.abort.get_or_insert(e.to_string());
                    }
                }
            }
        }
        if let Some(o) = look.overlay.as_mut().map(Arc::make_mut) {
            for (q, id) in created {
                o.link(&q, self.links.norm_target(&id), true);
            }
        }
        Ok(())
    }

    /// Applies one op; returns (qualifier, id) of the target it created and linked.
    async fn apply_one(&self, spec: Spec, out: &mut ChunkOutput) -> Option<(String, String)> {
        let q = spec.op.qualifier.clone();
        self.apply_spec(spec, out).await.map(|id| (q, id))
    }
}

/// Commits the intents of the specs that create a target (fenced by the page job's token), and
/// marks those an earlier attempt of the job meant to create for: their create adopts what it
/// finds.
async fn record_create_intents(
    engine: &Engine,
    fence: &PageFence,
    specs: &mut [Spec],
) -> EngineResult<()> {
    let mut keys = Vec::new();
    for s in specs.iter_mut() {
        if s.done || !matches!(s.intent, Intent::Create { .. }) {
            continue;
        }
        let Some(source_id) = &s.op.source_id else {
            continue;
        };
        let key = intent_key(&s.op.qualifier, source_id);
        s.op.adopt_existing = fence.earlier.contains(&key);
        keys.push(key);
    }
    if keys.is_empty() {
        return Ok(());
    }
    let cs = ChangeSet::fenced(&fence.job_id, fence.token).with(Op::RecordCreateIntents {
        run_id: fence.run_id.clone(),
        job_id: fence.job_id.clone(),
        source_ids: keys,
    });
    engine.repo.commit(cs).await?;
    Ok(())
}
