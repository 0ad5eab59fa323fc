//! Correlation: finding the target of a source that has no link (docs/configuration.md#mappings), one source at
//! a time or for a whole chunk at once.
//!
//! A first load correlates every source of every page, and one query per source is most of what
//! the repository does for it (10,000 statements per page of 10,000). When the target is a
//! managed type, the chunk's correlation queries run *before* its objects as one query — the
//! `or` of the sources' filters, in slices of [`BATCH`] — and each result goes back to the
//! sources whose filter it matches ([`FilterIndex`], with the exact semantics of a query). The
//! answer is the same as one query per source: a managed target's writes join the chunk's
//! commit, so no object of the chunk can see another's create either way. A system target's
//! writes go out at once and a later object must see them, so there each source keeps its own
//! query; so do correlations that are scripts or filters without an equality to index on
//! (evaluated once while the batch is prepared, and kept for their source). Whether a single
//! candidate is linked already (FOUND vs FOUND_ALREADY_LINKED) is read for the whole chunk
//! with one link lookup too.

use super::ctx::{CtxMode, RunCtx};
use super::lookups::Item;
use super::op::{CandidateLinks, Candidates, ChunkLookups, Reads};
use super::script_reads::{Prefetched, TargetReads};
use crate::Engine;
use crate::error::EngineResult;
use idsync_core::QueryRequest;
use idsync_core::filter::{Filter, FilterIndex};
use idsync_mapping::{Correlation, correlation_skipped, is_full_object};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

/// The most correlation filters one batched query carries.
pub const BATCH: usize = 1000;

impl RunCtx {
    /// Runs the correlation of one source and qualifier on the target set (or takes the
    /// chunk's batched answer), and records its filter in `reads`. `None` when correlation is
    /// skipped. With an overlay (an object assessed again while its chunk settles), the query
    /// runs again and its answer is corrected by what the objects before it wrote.
    pub(super) async fn correlate(
        &self,
        look: &ChunkLookups,
        source: &Value,
        source_id: &str,
        qualifier: &str,
        reads: &mut Reads,
    ) -> EngineResult<Option<Candidates>> {
        if !self.correlates(qualifier) {
            return Ok(None);
        }
        let key = (qualifier.to_string(), self.links.norm_source(source_id));
        if look.overlay.is_none()
            && let Some((found, filter)) = look.correlated.get(&key)
        {
            reads.filter = Some(filter.clone());
            return Ok(Some(found.clone()));
        }
        let cached = look.correlations.get(&key).cloned();
        // A script that queried the target runs again under an overlay: its answers must see
        // what the objects before it in the chunk wrote.
        let (c, script_filter) = match cached {
            Some((c, filter)) if look.overlay.is_none() || filter.is_none() => (c, filter),
            _ => match self.evaluate_correlation(source, qualifier, look.overlay.clone())? {
                Some(found) => found,
                None => return Ok(None),
            },
        };
        if script_filter.is_some() {
            reads.filter = script_filter;
        }
        Ok(Some(match c {
            Correlation::Query(filter) => {
                let page = self
                    .target_set
                    .query(&QueryRequest::with_filter(filter.clone()))
                    .await?;
                let mut found = Candidates::default();
                for v in page.results {
                    add(&mut found, v);
                }
                if let Some(overlay) = &look.overlay {
                    found = overlay.correct(found, &filter, |id| self.links.norm_target(id));
                }
                reads.filter = Some(filter);
                found
            }
            Correlation::Candidates(cands) => {
                let mut found = Candidates::default();
                for v in cands {
                    if let Some(id) = v.get("_id").and_then(Value::as_str).map(str::to_string) {
                        if is_full_object(&v) {
                            found.1.insert(id.clone(), v);
                        }
                        found.0.push(id);
                    }
                }
                found
            }
        }))
    }

    /// Evaluates the correlation request of a source. For a managed target, a correlation
    /// script's `openidm.query` calls on the target are answered by the run (`script_reads.rs`),
    /// corrected by `overlay` when given, and their filter comes back with the request.
    fn evaluate_correlation(
        &self,
        source: &Value,
        qualifier: &str,
        overlay: Option<Arc<super::settle::Overlay>>,
    ) -> EngineResult<Option<(Correlation, Option<Filter>)>> {
        self.evaluate_correlation_with(source, qualifier, overlay, None)
    }

    /// [`Self::evaluate_correlation`] with the chunk's prefetched target query answers.
    fn evaluate_correlation_with(
        &self,
        source: &Value,
        qualifier: &str,
        overlay: Option<Arc<super::settle::Overlay>>,
        prefetched: Option<Arc<Prefetched>>,
    ) -> EngineResult<Option<(Correlation, Option<Filter>)>> {
        let Some(mut reads) = self.target_reads() else {
            return Ok(self
                .mapping
                .correlation(source, qualifier)?
                .map(|c| (c, None)));
        };
        reads.overlay = overlay;
        reads.prefetched = prefetched;
        let reads = Arc::new(reads);
        let host: Arc<dyn idsync_script::ScriptHost> = reads.clone();
        let found = idsync_script::host::with_override(host, || {
            self.mapping.correlation(source, qualifier)
        })?;
        Ok(found.map(|c| (c, reads.read_filter())))
    }

    /// The host of a correlation script's calls when the target is managed.
    fn target_reads(&self) -> Option<TargetReads> {
        let object_type = self.target_managed_type.as_ref()?;
        Some(TargetReads::new(
            format!("managed/{object_type}"),
            self.target_set.clone(),
            self.links.clone(),
            self.script_host.clone(),
        ))
    }

    /// The probe pass of a correlation script (docs/adr/0011-script-host-api.md): each pending
    /// source's script runs until its first call, which only records the query; the equality
    /// queries found are then read like a `correlationQuery`'s, as the `or` of up to [`BATCH`]
    /// filters, and each answer is kept for the script's real run. `None` when nothing could be
    /// read in bulk.
    async fn prefetch_script_queries(
        &self,
        pending: &[((String, String), &Value)],
    ) -> Option<Arc<Prefetched>> {
        let mut probe = self.target_reads()?;
        probe.probe = true;
        let probe = Arc::new(probe);
        self.for_each_pending(pending, |(qualifier, _), source| {
            let host: Arc<dyn idsync_script::ScriptHost> = probe.clone();
            // Whatever the script does without a call, or after its first call failed, is
            // discarded; its real run comes next.
            let _ = idsync_script::host::with_override(host, || {
                self.mapping.correlation(source, qualifier)
            });
        });
        let mut seen = HashSet::new();
        let filters: Vec<Filter> = probe
            .take_filters()
            .into_iter()
            .filter(|f| f.equality_probe().is_some() && seen.insert(f.to_string()))
            .collect();
        if filters.len() < 2 {
            return None;
        }
        let mut answers = Prefetched::new();
        for slice in filters.chunks(BATCH) {
            let index = FilterIndex::new(slice);
            let query = QueryRequest::with_filter(Filter::Or(slice.to_vec()));
            let Ok(page) = self.target_set.query(&query).await else {
                // Left to each script's own query.
                continue;
            };
            let mut found = vec![Candidates::default(); slice.len()];
            for v in page.results {
                for i in index.matching(&v) {
                    add(&mut found[i], v.clone());
                }
            }
            for (f, c) in slice.iter().zip(found) {
                answers.insert(f.to_string(), c);
            }
        }
        Some(Arc::new(answers))
    }

    /// `f` over the pending sources, in order, on up to `taskThreads` threads when the chunk is
    /// large enough and the runtime lets this task wait: correlation scripts are CPU work once
    /// the chunk's answers are read, and each thread has its own script engine.
    fn for_each_pending<T: Send>(
        &self,
        pending: &[((String, String), &Value)],
        f: impl Fn(&(String, String), &Value) -> T + Sync,
    ) -> Vec<T> {
        let threads = self.eff.task_threads.min(pending.len() / 512).min(16);
        let multi = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if threads < 2 || !multi {
            return pending.iter().map(|(k, s)| f(k, s)).collect();
        }
        let per = pending.len().div_ceil(threads);
        let f = &f;
        tokio::task::block_in_place(|| {
            std::thread::scope(|scope| {
                let parts: Vec<_> = pending
                    .chunks(per)
                    .map(|part| {
                        scope.spawn(move || part.iter().map(|(k, s)| f(k, s)).collect::<Vec<T>>())
                    })
                    .collect();
                parts
                    .into_iter()
                    .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                    .collect()
            })
        })
    }

    /// Whether correlation runs for this qualifier at all.
    fn correlates(&self, qualifier: &str) -> bool {
        !correlation_skipped(
            self.mapping.has_correlation(qualifier),
            self.target_set_was_empty().map(|empty| usize::from(!empty)),
            self.eff.correlate_empty_target_set,
        )
    }

    /// Correlates the chunk's unlinked sources in batched queries (see the module doc) and
    /// records the answers in `look`. Anything it cannot batch, or whose batch fails, is left
    /// to [`Self::correlate`] per source, which reports the error where it belongs.
    pub(super) async fn correlate_chunk(
        &self,
        engine: &Engine,
        items: &[Item],
        look: &mut ChunkLookups,
    ) {
        if self.mode != CtxMode::Recon || self.target_managed_type.is_none() {
            return;
        }
        let t = Instant::now();
        let mut pending: Vec<((String, String), &Value)> = Vec::new();
        for item in items {
            let Item::Source {
                id,
                entry: Some(source),
            } = item
            else {
                continue;
            };
            let Ok(qualifiers) = self.mapping.link_qualifiers(Some(source), None, false) else {
                continue;
            };
            let norm = self.links.norm_source(id);
            for q in qualifiers {
                if !self.correlates(&q) || self.may_be_linked(look, &q, &norm) {
                    continue;
                }
                pending.push(((q, norm.clone()), source));
            }
        }
        // A correlation script's target queries are read for the whole chunk first.
        let prefetched = if pending.len() >= 2
            && matches!(
                self.config.correlation,
                Some(idsync_config::Correlation::Script(_))
            ) {
            self.prefetch_script_queries(&pending).await
        } else {
            None
        };
        let evaluated = self.for_each_pending(&pending, |(qualifier, _), source| {
            self.evaluate_correlation_with(source, qualifier, None, prefetched.clone())
        });
        let mut wanted: Vec<((String, String), Filter)> = Vec::new();
        for ((key, _), found) in pending.into_iter().zip(evaluated) {
            // An error is left for the source's own correlation to report.
            match found {
                Ok(Some((Correlation::Query(f), None))) if f.equality_probe().is_some() => {
                    wanted.push((key, f));
                }
                Ok(Some(other)) => {
                    look.correlations.insert(key, other);
                }
                Ok(None) | Err(_) => {}
            }
        }
        if wanted.len() < 2 {
            for (key, f) in wanted {
                look.correlations.insert(key, (Correlation::Query(f), None));
            }
            return;
        }
        for slice in wanted.chunks(BATCH) {
            let filters: Vec<Filter> = slice.iter().map(|(_, f)| f.clone()).collect();
            let index = FilterIndex::new(&filters);
            let query = QueryRequest::with_filter(Filter::Or(filters.clone()));
            let page = match self.target_set.query(&query).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::debug!(mapping = %self.mapping_name, error = %e, "batched correlation failed; correlating one source at a time");
                    for (key, f) in slice {
                        look.correlations
                            .insert(key.clone(), (Correlation::Query(f.clone()), None));
                    }
                    continue;
                }
            };
            let mut found = vec![Candidates::default(); slice.len()];
            for v in page.results {
                for i in index.matching(&v) {
                    add(&mut found[i], v.clone());
                }
            }
            for ((key, filter), f) in slice.iter().zip(found) {
                look.correlated.insert(key.clone(), (f, filter.clone()));
            }
        }
        self.candidate_links(engine, look).await;
        look.correlation_time = t.elapsed();
    }

    /// Reads in one call whether the single candidates of the batched correlations are linked
    /// already (FOUND or FOUND_ALREADY_LINKED), instead of one query per source. Left to the
    /// per-source query when linking is off or the read fails.
    async fn candidate_links(&self, engine: &Engine, look: &mut ChunkLookups) {
        if !self.config.enable_linking {
            return;
        }
        let ids: HashSet<String> = look
            .correlated
            .values()
            .filter_map(|((ids, _), _)| match &ids[..] {
                [one] => Some(self.links.norm_target(one)),
                _ => None,
            })
            .collect();
        if ids.is_empty() {
            return;
        }
        let list: Vec<String> = ids.iter().cloned().collect();
        // The target is a link's second side, or its first when the mapping runs the link
        // type backwards.
        let found = if self.links.reversed {
            engine
                .repo
                .links_for_sources(&self.links.link_type, &list)
                .await
        } else {
            engine
                .repo
                .links_for_targets(&self.links.link_type, &list)
                .await
        };
        let Ok(found) = found else { return };
        let linked = found
            .iter()
            .map(|l| {
                (
                    l.link_qualifier.clone(),
                    self.links.target_id(l).to_string(),
                )
            })
            .collect();
        look.candidate_links = Some(CandidateLinks { asked: ids, linked });
    }

    /// Whether a link of this mapping and qualifier already points at the correlated target.
    pub(super) async fn candidate_linked(
        &self,
        engine: &Engine,
        look: &ChunkLookups,
        qualifier: &str,
        target_id: &str,
    ) -> EngineResult<bool> {
        let norm = self.links.norm_target(target_id);
        if let Some(linked) = look
            .overlay
            .as_ref()
            .and_then(|o| o.linked(qualifier, &norm))
        {
            return Ok(linked);
        }
        if let Some(c) = &look.candidate_links
            && c.asked.contains(&norm)
        {
            return Ok(c.linked.contains(&(qualifier.to_string(), norm)));
        }
        Ok(self
            .links
            .by_target(&engine.repo, qualifier, target_id)
            .await?
            .is_some())
    }

    /// Whether the source may have a link for the qualifier (then it does not correlate):
    /// true unless the chunk's lookups say it has none.
    fn may_be_linked(&self, look: &ChunkLookups, qualifier: &str, norm_source: &str) -> bool {
        if !self.config.enable_linking {
            return false;
        }
        if let Some(p) = &self.prefetched {
            return p.get(&self.links, qualifier, norm_source).is_some();
        }
        match &look.links {
            Some(map) => map.contains_key(&(qualifier.to_string(), norm_source.to_string())),
            None => true,
        }
    }
}

/// Adds a query result to the candidates.
fn add(found: &mut Candidates, v: Value) {
    if let Some(id) = v.get("_id").and_then(Value::as_str).map(str::to_string) {
        found.0.push(id.clone());
        found.1.insert(id, v);
    }
}
