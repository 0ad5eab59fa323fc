//! Processing a batch of source entries or target ids: bulk lookups first (links, linked
//! targets, `pipeline::lookups`), then the objects on `taskThreads` parallel tasks, then one
//! merged output for the commit; and what a committed chunk adds to the recon metrics.

use crate::Engine;
use crate::error::{EngineError, EngineResult};
use crate::pipeline::ctx::RunCtx;
use crate::pipeline::lookups::{Item, lookups};
use crate::pipeline::op::{ChunkLookups, ChunkOutput, PageFence, Spec};
use crate::pipeline::stats::keys;
use idsync_core::{Action, Situation};
use idsync_repo::{AuditKind, Op};
use metrics::{counter, histogram};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Processes the items on up to `taskThreads` tasks (0 = serially on this task). Stops taking
/// new items once the run is canceled or the safety guard fired; items already started finish.
///
/// Source items are assessed, decided and prepared in parallel, then settled and applied in
/// source order (`settle.rs`), so that the chunk leaves what a serial run leaves; target items
/// (the target phase) do not depend on each other and run to the end in parallel.
pub async fn process(
    engine: &Arc<Engine>,
    ctx: &Arc<RunCtx>,
    items: Vec<Item>,
    fence: Option<Arc<PageFence>>,
) -> EngineResult<ChunkOutput> {
    let mut look = lookups(engine, ctx, &items).await?;
    look.fence = fence;
    let look = Arc::new(look);
    let mut out = ChunkOutput::default();
    if !look.correlated.is_empty() {
        out.stats.time("correlationQuery", look.correlation_time);
    }
    let (sources, targets): (Vec<Indexed>, Vec<Indexed>) = items
        .into_iter()
        .enumerate()
        .partition(|(_, i)| matches!(i, Item::Source { .. }));
    let results = in_parallel(engine, ctx, &look, sources).await?;
    let mut specs: Vec<(usize, Vec<Spec>)> = Vec::new();
    for r in results {
        out.merge(r.out);
        specs.extend(r.specs);
    }
    // Source order: the order of the items, whatever task prepared them.
    specs.sort_by_key(|(i, _)| *i);
    let specs: Vec<Spec> = specs.into_iter().flat_map(|(_, s)| s).collect();
    if !targets.is_empty() {
        for r in in_parallel(engine, ctx, &look, targets).await? {
            out.merge(r.out);
        }
    }
    if !specs.is_empty() {
        // Every task has ended, so the lookups are this chunk's alone again.
        let look = Arc::try_unwrap(look)
            .map_err(|_| EngineError::Internal("the chunk's lookups are still shared".into()))?;
        ctx.settle(engine, look, specs, &mut out).await?;
    }
    Ok(out)
}

/// An item and its place in the chunk (source order).
type Indexed = (usize, Item);

/// What one task made of its items: the finished output of target items, and the prepared
/// ops of source items by item index.
#[derive(Default)]
struct TaskResult {
    out: ChunkOutput,
    specs: Vec<(usize, Vec<Spec>)>,
}

/// Runs the items on up to `taskThreads` tasks.
async fn in_parallel(
    engine: &Arc<Engine>,
    ctx: &Arc<RunCtx>,
    look: &Arc<ChunkLookups>,
    items: Vec<Indexed>,
) -> EngineResult<Vec<TaskResult>> {
    let threads = ctx.eff.task_threads;
    if threads == 0 || items.len() < 2 {
        return Ok(vec![
            run_items(engine.clone(), ctx.clone(), look.clone(), items).await,
        ]);
    }
    let per = items.len().div_ceil(threads.min(items.len()));
    let mut set = tokio::task::JoinSet::new();
    let mut iter = items.into_iter();
    loop {
        let part: Vec<Indexed> = iter.by_ref().take(per).collect();
        if part.is_empty() {
            break;
        }
        // In the call scope of a script whose call runs this (docs/scripts.md, bounds).
        set.spawn(idsync_script::host::inherit(run_items(
            engine.clone(),
            ctx.clone(),
            look.clone(),
            part,
        )));
    }
    let mut results = Vec::new();
    while let Some(r) = set.join_next().await {
        results.push(r.map_err(|e| EngineError::Internal(format!("recon task failed: {e}")))?);
    }
    Ok(results)
}

async fn run_items(
    engine: Arc<Engine>,
    ctx: Arc<RunCtx>,
    look: Arc<ChunkLookups>,
    items: Vec<Indexed>,
) -> TaskResult {
    let mut r = TaskResult::default();
    for (index, item) in items {
        if r.out.abort.is_some() || ctx.refresh_cancel(&engine).await.unwrap_or(false) {
            break;
        }
        match item {
            Item::Source { id, entry } => {
                let specs = ctx
                    .speculate_source(&engine, &look, &id, entry, &mut r.out)
                    .await;
                r.specs.push((index, specs));
            }
            Item::Target { id, entry } => {
                ctx.reconcile_target(&engine, &id, entry, &mut r.out).await;
            }
        }
    }
    r
}

/// What one committed chunk adds to the recon metrics (docs/operations.md#monitoring): decisions
/// per situation and action, and the chunk's duration. Tallied from the chunk's output before the
/// commit consumes it, emitted only once the commit succeeded, so a chunk whose commit failed (a
/// lost lease) is not counted and a retried page is counted once.
#[derive(Debug)]
pub struct ChunkMetrics {
    /// Decisions by situation (index in `Situation::ALL`) and action (index in `Action::ALL`,
    /// then "none" and "unknown"). `None` for dry runs and when metrics are off.
    decisions: Option<Box<Decisions>>,
}

/// Counts by situation and action slot.
type Decisions = [[u64; ACTION_SLOTS]; Situation::ALL.len()];

const NO_ACTION: usize = Action::ALL.len();
const UNKNOWN_ACTION: usize = Action::ALL.len() + 1;
const ACTION_SLOTS: usize = Action::ALL.len() + 2;

fn situation_index(name: &str) -> Option<usize> {
    Situation::ALL.iter().position(|s| s.as_str() == name)
}

fn action_index(name: &str) -> Option<usize> {
    Action::ALL.iter().position(|a| a.as_str() == name)
}

fn action_label(index: usize) -> &'static str {
    match Action::ALL.get(index) {
        Some(a) => a.as_str(),
        None if index == NO_ACTION => "none",
        None => "unknown",
    }
}

impl ChunkMetrics {
    /// Tallies the decisions of `out`. The statistics count situations and actions apart; the
    /// pairs come from the chunk's recon audit entries, which hold both, and every decision is
    /// audited except a successful NOREPORT: per situation, the decisions the statistics count
    /// beyond the audited ones are those NOREPORTs.
    pub fn tally(ctx: &RunCtx, out: &ChunkOutput) -> ChunkMetrics {
        let on = !ctx.opts.analyze && crate::metered::enabled();
        ChunkMetrics {
            decisions: on.then(|| Self::decisions(out)),
        }
    }

    fn decisions(out: &ChunkOutput) -> Box<Decisions> {
        let mut pairs: Box<Decisions> = Box::new([[0u64; ACTION_SLOTS]; Situation::ALL.len()]);
        let mut audited = [0u64; Situation::ALL.len()];
        let mut audited_noreport = 0u64;
        for op in &out.ops {
            let Op::AppendAudit(a) = op else { continue };
            if a.kind != AuditKind::Recon || a.entry_type.as_deref() != Some("entry") {
                continue;
            }
            let Some(s) = a.entry.get("situation").and_then(Value::as_str) else {
                continue;
            };
            let Some(si) = situation_index(s) else {
                continue;
            };
            let ai = match a.entry.get("action").and_then(Value::as_str) {
                Some(name) => action_index(name).unwrap_or(UNKNOWN_ACTION),
                None => NO_ACTION,
            };
            if Action::ALL.get(ai) == Some(&Action::Noreport) {
                audited_noreport += 1;
            }
            pairs[si][ai] += 1;
            audited[si] += 1;
        }
        let noreport = u64::try_from(out.stats.get(&keys::action(Action::Noreport))).unwrap_or(0);
        let unaudited_noreport = noreport.saturating_sub(audited_noreport);
        let rest: Vec<u64> = Situation::ALL
            .iter()
            .zip(audited)
            .map(|(s, n)| {
                u64::try_from(out.stats.get(&keys::situation(*s)))
                    .unwrap_or(0)
                    .saturating_sub(n)
            })
            .collect();
        // The rest are the unaudited NOREPORTs when the numbers agree; else say we do not know.
        let slot = if rest.iter().sum::<u64>() == unaudited_noreport {
            action_index(Action::Noreport.as_str()).unwrap_or(UNKNOWN_ACTION)
        } else {
            UNKNOWN_ACTION
        };
        for (si, n) in rest.into_iter().enumerate() {
            pairs[si][slot] += n;
        }
        pairs
    }

    /// Emits the tallied decisions and the chunk's duration (`phase`: `source` | `target`).
    pub fn emit(self, mapping: &str, phase: &'static str, elapsed: Duration) {
        histogram!(crate::metered::names::RECON_PAGE_DURATION,
            "mapping" => mapping.to_string(), "phase" => phase)
        .record(elapsed.as_secs_f64());
        let Some(pairs) = self.decisions else {
            return;
        };
        for (si, row) in pairs.iter().enumerate() {
            for (ai, n) in row.iter().enumerate() {
                if *n == 0 {
                    continue;
                }
                counter!(crate::metered::names::RECON_OBJECTS,
                    "mapping" => mapping.to_string(),
                    "situation" => Situation::ALL[si].as_str(),
                    "action" => action_label(ai))
                .increment(*n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::stats::{OpOutcome, TargetEffect};
    use idsync_repo::AuditEntry;
    use metrics_exporter_prometheus::PrometheusBuilder;
    use serde_json::json;

    /// One decision as object.rs reports it: statistics always, an audit entry unless it is a
    /// successful NOREPORT.
    fn decide(out: &mut ChunkOutput, situation: Situation, action: Action, failed: bool) {
        out.stats.record(&OpOutcome {
            situation,
            action,
            had_source: true,
            had_target: false,
            link_existed: false,
            link_created: false,
            target_effect: TargetEffect::None,
            failed,
        });
        if action == Action::Noreport && !failed {
            return;
        }
        out.ops.push(Op::AppendAudit(AuditEntry {
            id: "a".into(),
            kind: AuditKind::Recon,
            timestamp: chrono::Utc::now(),
            recon_id: Some("r".into()),
            mapping: Some("m".into()),
            entry_type: Some("entry".into()),
            entry: json!({"entryType": "entry", "situation": situation.as_str(),
                          "action": action.as_str()}),
        }));
    }

    #[test]
    fn decisions_are_counted_per_situation_and_action_including_unaudited_noreports() {
        let mut out = ChunkOutput::default();
        decide(&mut out, Situation::Absent, Action::Create, false);
        decide(&mut out, Situation::Absent, Action::Create, false);
        decide(&mut out, Situation::Absent, Action::Exception, true);
        decide(&mut out, Situation::Confirmed, Action::Update, false);
        decide(&mut out, Situation::Confirmed, Action::Noreport, false);
        decide(&mut out, Situation::Confirmed, Action::Noreport, false);
        decide(&mut out, Situation::Missing, Action::Noreport, true);
        // A situation without an action is audited with a null action.
        out.stats.add(keys::situation(Situation::Ambiguous), 1);
        out.ops.push(Op::AppendAudit(AuditEntry {
            id: "b".into(),
            kind: AuditKind::Recon,
            timestamp: chrono::Utc::now(),
            recon_id: Some("r".into()),
            mapping: Some("m".into()),
            entry_type: Some("entry".into()),
            entry: json!({"situation": "AMBIGUOUS", "action": null}),
        }));

        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            let m = ChunkMetrics {
                decisions: Some(ChunkMetrics::decisions(&out)),
            };
            m.emit("hr_users", "source", Duration::from_millis(20));
        });
        let text = handle.render();
        let line = |s: &str, a: &str| {
            format!(
                "idsync_recon_objects_total{{mapping=\"hr_users\",situation=\"{s}\",action=\"{a}\"}} "
            )
        };
        let value = |s: &str, a: &str| -> Option<String> {
            let l = line(s, a);
            text.lines()
                .find_map(|t| t.strip_prefix(l.as_str()).map(str::to_string))
        };
        assert_eq!(value("ABSENT", "CREATE").as_deref(), Some("2"), "{text}");
        assert_eq!(value("ABSENT", "EXCEPTION").as_deref(), Some("1"), "{text}");
        assert_eq!(value("CONFIRMED", "UPDATE").as_deref(), Some("1"), "{text}");
        assert_eq!(
            value("CONFIRMED", "NOREPORT").as_deref(),
            Some("2"),
            "{text}"
        );
        assert_eq!(value("MISSING", "NOREPORT").as_deref(), Some("1"), "{text}");
        assert_eq!(value("AMBIGUOUS", "none").as_deref(), Some("1"), "{text}");
        assert_eq!(value("CONFIRMED", "CREATE"), None, "no zero series: {text}");
        assert!(!text.contains("unknown"), "{text}");
        assert!(
            text.contains(
                "idsync_recon_page_duration_seconds_count{mapping=\"hr_users\",phase=\"source\"} 1"
            ),
            "{text}"
        );
    }

    #[test]
    fn decisions_the_audit_cannot_explain_are_labelled_unknown() {
        let mut out = ChunkOutput::default();
        // Statistics without audit entries (and no NOREPORT to explain them).
        out.stats.add(keys::situation(Situation::Found), 3);
        let d = ChunkMetrics::decisions(&out);
        let found = Situation::ALL
            .iter()
            .position(|s| *s == Situation::Found)
            .unwrap_or_else(|| panic!("FOUND is a situation"));
        assert_eq!(d[found][UNKNOWN_ACTION], 3);
        assert_eq!(d[found].iter().sum::<u64>(), 3);
    }
}
