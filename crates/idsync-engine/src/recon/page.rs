//! Processing a batch of source entries or target ids: bulk lookups first (links, linked
//! targets), then the objects on `taskThreads` parallel tasks, then one merged output for the
//! commit.

use super::object::{ChunkLookups, ChunkOutput, entry_id};
use super::run_ctx::RunCtx;
use crate::Engine;
use crate::error::{EngineError, EngineResult};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// What one unit of work hands to the parallel tasks.
#[derive(Debug, Clone)]
pub enum Item {
    /// A source entry: full object, or just `{_id}` (read again when processed).
    Source { id: String, entry: Option<Value> },
    /// An unclaimed target id, with its entry when the target query returned full objects.
    Target { id: String, entry: Option<Value> },
}

impl Item {
    pub fn source_from(entry: Value, full: bool) -> Option<Item> {
        let id = entry_id(&entry)?.to_string();
        Some(Item::Source {
            id,
            entry: full.then_some(entry),
        })
    }
}

/// Looks up in bulk what the items will need: their links (unless prefetched) and their
/// linked targets (unless the run holds full target entries).
async fn lookups(engine: &Engine, ctx: &RunCtx, items: &[Item]) -> EngineResult<ChunkLookups> {
    let mut look = ChunkLookups::default();
    let source_ids: Vec<String> = items
        .iter()
        .filter_map(|i| match i {
            Item::Source { id, .. } => Some(ctx.links.norm_source(id)),
            Item::Target { .. } => None,
        })
        .collect();
    if source_ids.is_empty() || !ctx.config.enable_linking {
        return Ok(look);
    }
    let links = match &ctx.prefetched {
        Some(map) => source_ids
            .iter()
            .flat_map(|sid| {
                ctx.all_qualifiers
                    .iter()
                    .filter_map(|q| map.get(&ctx.links, q, sid))
            })
            .collect::<Vec<_>>(),
        None => {
            let found = if ctx.links.reversed {
                engine
                    .repo
                    .links_for_targets(&ctx.links.link_type, &source_ids)
                    .await?
            } else {
                engine
                    .repo
                    .links_for_sources(&ctx.links.link_type, &source_ids)
                    .await?
            };
            let mut map = HashMap::with_capacity(found.len());
            for l in &found {
                map.insert(
                    (l.link_qualifier.clone(), ctx.links.source_id(l).to_string()),
                    l.clone(),
                );
            }
            look.links = Some(map);
            found
        }
    };
    let needs_read = ctx
        .target_snapshot
        .as_ref()
        .is_none_or(|s| s.values.is_none());
    if needs_read && !links.is_empty() {
        let ids: Vec<String> = links
            .iter()
            .map(|l| ctx.links.target_id(l).to_string())
            .collect();
        for v in ctx.target_set.get_many(&ids).await? {
            if let Some(id) = entry_id(&v) {
                look.targets.insert(ctx.links.norm_target(id), v);
            }
        }
    }
    Ok(look)
}

/// Processes the items on up to `taskThreads` tasks (0 = serially on this task). Stops taking
/// new items once the run is canceled or the safety guard fired; items already started finish.
pub async fn process(
    engine: &Arc<Engine>,
    ctx: &Arc<RunCtx>,
    items: Vec<Item>,
) -> EngineResult<ChunkOutput> {
    let look = Arc::new(lookups(engine, ctx, &items).await?);
    let threads = ctx.eff.task_threads;
    if threads == 0 || items.len() < 2 {
        return Ok(run_items(engine.clone(), ctx.clone(), look, items).await);
    }
    let per = items.len().div_ceil(threads.min(items.len()));
    let mut set = tokio::task::JoinSet::new();
    let mut iter = items.into_iter();
    loop {
        let part: Vec<Item> = iter.by_ref().take(per).collect();
        if part.is_empty() {
            break;
        }
        set.spawn(run_items(engine.clone(), ctx.clone(), look.clone(), part));
    }
    let mut out = ChunkOutput::default();
    while let Some(r) = set.join_next().await {
        out.merge(r.map_err(|e| EngineError::Internal(format!("recon task failed: {e}")))?);
    }
    Ok(out)
}

async fn run_items(
    engine: Arc<Engine>,
    ctx: Arc<RunCtx>,
    look: Arc<ChunkLookups>,
    items: Vec<Item>,
) -> ChunkOutput {
    let mut out = ChunkOutput::default();
    for item in items {
        if out.abort.is_some() || ctx.refresh_cancel(&engine).await.unwrap_or(false) {
            break;
        }
        match item {
            Item::Source { id, entry } => {
                ctx.reconcile_source(&engine, &look, &id, entry, &mut out)
                    .await;
            }
            Item::Target { id, entry } => {
                ctx.reconcile_target(&engine, &id, entry, &mut out).await;
            }
        }
    }
    out
}
