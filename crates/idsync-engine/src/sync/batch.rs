//! A batch of changes through one mapping — how the queue consumer runs a poll's events: one
//! lookup of the batch's links (and linked targets) instead of one per event, the events' acts
//! in turn or side by side, then ONE repository commit of every event's writes together with
//! each successful event's own ops (the deletion of its queue event). Per object the result is exactly what
//! [`Engine::sync_mapping`] gives; what the batch saves is the round trips and transactions
//! around it.
//!
//! Failure stays per event: an event whose act fails commits its audit entry but not its
//! `on_success` ops; when the batch commit is refused (a link conflict of one event), every
//! event commits alone, so one conflict fails only its own event.

use super::{ChangeRef, SyncOutcome, managed_changes_of, triggered};
use crate::Engine;
use crate::error::{EngineError, EngineResult};
use crate::pipeline::ctx::RunCtx;
use crate::pipeline::lookups::source_lookups;
use crate::pipeline::op::{ChunkLookups, ChunkOutput};
use futures::future::join_all;
use idsync_config::Mapping;
use idsync_repo::{ChangeSet, Op};

/// Most acts of one batch in flight at once when a queue runs objects in parallel (bounds the
/// target calls a batch opens).
pub(crate) const BATCH_PARALLEL_ACTS: usize = 128;

/// One change of a batch and what commits with it when its sync succeeds.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchItem<'a> {
    pub change: ChangeRef<'a>,
    pub on_success: Vec<Op>,
}

/// An item after its act: the output to commit (none when the mapping does not react to it).
type Acted = EngineResult<Option<ChunkOutput>>;

impl Engine {
    /// Runs changes of *different* objects through one mapping as a batch (see the module
    /// doc), up to `parallel` acts at once. Returns one outcome per item, in order; an `Err` is
    /// that item's failure.
    pub async fn sync_mapping_batch(
        &self,
        mapping: &str,
        items: Vec<BatchItem<'_>>,
        parallel: usize,
    ) -> EngineResult<Vec<EngineResult<SyncOutcome>>> {
        let (config, _) = self.mapping(mapping)?;
        let ctx = self.sync_ctx(mapping)?;
        let ids: Vec<&str> = items.iter().map(|i| i.change.id).collect();
        let look = source_lookups(self, &ctx, &ids).await?;
        // The events touch different objects, so up to `parallel` acts run side by side: their
        // target calls overlap, and a connector that coalesces concurrent writes (SQL creates,
        // CSV appends) carries the batch in a few statements instead of one per event. With 1
        // they run one after the other, in batch order.
        let mut acted: Vec<Acted> = Vec::with_capacity(items.len());
        for part in items.chunks(parallel.max(1)) {
            let acts = part
                .iter()
                .map(|item| self.act_item(mapping, &config, &ctx, &look, item.change));
            acted.extend(join_all(acts).await);
        }
        drop(look);

        // One commit: each event's links and managed writes in event order (events touch
        // different objects), then the audit entries and the done events' own ops, so that the
        // repository writes runs of one kind together.
        let mut ops = Vec::new();
        let mut tail = Vec::new();
        for (item, a) in items.iter().zip(&acted) {
            let Ok(out) = a else { continue };
            let succeeded = out.as_ref().is_none_or(|o| !failed(o));
            if let Some(out) = out {
                for op in &out.ops {
                    match op {
                        Op::AppendAudit(_) => tail.push(op.clone()),
                        _ => ops.push(op.clone()),
                    }
                }
            }
            if succeeded {
                tail.extend(item.on_success.iter().cloned());
            }
        }
        ops.extend(tail);
        // The target writes are done and nothing of them is recorded yet: a crash here leaves
        // the events ACQUIRED with no link, and their re-run must apply each change once.
        crate::failpoint!("queue.event.before_delete");
        let together = ops.is_empty()
            || self
                .repo
                .commit(ChangeSet { fence: None, ops })
                .await
                .is_ok();

        let mut results = Vec::with_capacity(items.len());
        for (item, a) in items.into_iter().zip(acted) {
            results.push(match a {
                Err(e) => Err(e),
                Ok(None) if together => Ok(SyncOutcome::default()),
                Ok(None) => {
                    self.commit_alone(ChunkOutput::default(), item.on_success)
                        .await
                }
                Ok(Some(out)) => {
                    let cascade = managed_changes_of(&out);
                    let outcome = if together {
                        Ok(SyncOutcome {
                            failed: failed(&out),
                            results: out.sync_results,
                        })
                    } else {
                        self.commit_alone(out, item.on_success).await
                    };
                    match outcome {
                        Ok(mut o) if !o.failed => self.cascade(cascade, 0).await.map(|c| {
                            o.merge(c);
                            o
                        }),
                        other => other,
                    }
                }
            });
        }
        Ok(results)
    }

    /// One change's act in a batch: refused when the mapping reads another collection, `None`
    /// when the mapping does not react to it.
    async fn act_item(
        &self,
        mapping: &str,
        config: &Mapping,
        ctx: &RunCtx,
        look: &ChunkLookups,
        c: ChangeRef<'_>,
    ) -> Acted {
        if config.source_str != c.collection {
            Err(EngineError::BadRequest(format!(
                "mapping {mapping} reads {}, not {}",
                config.source_str, c.collection
            )))
        } else if triggered(config, c) {
            self.act(ctx, look, c).await.map(Some)
        } else {
            Ok(None)
        }
    }

    /// One item's commit when the batch's was refused: its writes, plus `on_success` when
    /// its sync succeeded.
    async fn commit_alone(
        &self,
        mut out: ChunkOutput,
        on_success: Vec<Op>,
    ) -> EngineResult<SyncOutcome> {
        if !failed(&out) {
            out.ops.extend(on_success);
        }
        if out.ops.is_empty() {
            return Ok(SyncOutcome::default());
        }
        Ok(self.commit_output(out).await.0)
    }
}

fn failed(out: &ChunkOutput) -> bool {
    out.sync_results.iter().any(|r| r["result"] == "FAILED")
}
