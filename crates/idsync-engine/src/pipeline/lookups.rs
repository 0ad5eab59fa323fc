//! What the objects of a chunk (a recon page's items, a batch of queued sync events) need
//! looked up before they run, read in bulk: their links (unless the run prefetched them), their
//! linked targets (unless the run holds full target entries) and their correlations.

use super::ctx::RunCtx;
use super::op::{ChunkLookups, entry_id};
use crate::Engine;
use crate::error::EngineResult;
use serde_json::Value;
use std::collections::HashMap;

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
pub(crate) async fn lookups(
    engine: &Engine,
    ctx: &RunCtx,
    items: &[Item],
) -> EngineResult<ChunkLookups> {
    let source_ids: Vec<&str> = items
        .iter()
        .filter_map(|i| match i {
            Item::Source { id, .. } => Some(id.as_str()),
            Item::Target { .. } => None,
        })
        .collect();
    let mut look = source_lookups(engine, ctx, &source_ids).await?;
    ctx.correlate_chunk(engine, items, &mut look).await;
    Ok(look)
}

/// The links of these source ids (unless prefetched) and their linked targets (unless the run
/// holds full target entries), each read with one call. A recon chunk and a batch of queued
/// sync events share it.
pub async fn source_lookups(
    engine: &Engine,
    ctx: &RunCtx,
    source_ids: &[&str],
) -> EngineResult<ChunkLookups> {
    let mut look = ChunkLookups::default();
    let source_ids: Vec<String> = source_ids
        .iter()
        .map(|id| ctx.links.norm_source(id))
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
