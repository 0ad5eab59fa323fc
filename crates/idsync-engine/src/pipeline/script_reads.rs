//! A correlation script's `openidm.query` on the recon's own managed target, answered by the
//! run (docs/scripts.md#speed-and-exactness): the query runs on the run's target set, like a
//! `correlationQuery`'s, and its filter is recorded as what the source read, so that settling
//! the chunk (ADR 0007) sees when an earlier object of the chunk created or changed a target
//! the script would have found — and runs the script again with the answer corrected by what
//! the objects before it wrote. Anything else the script calls goes to the engine's host.
//!
//! Speed: before a chunk's objects run, each pending source's script runs once as a *probe*
//! (`probe`): its first call only records the query and throws, its log lines are dropped, and
//! what it did is discarded. The equality queries found are read like a `correlationQuery`'s —
//! one `or` of up to 1,000 filters — and the real run of each script is answered from those
//! results (`prefetched`), so a correlation script costs two cheap evaluations and no query
//! of its own per source.

use super::op::Candidates;
use super::settle::Overlay;
use crate::links::LinkView;
use idsync_connectors::ObjectSet;
use idsync_core::QueryRequest;
use idsync_core::filter::Filter;
use idsync_script::host::{HostError, HostMethod, HostRequest, HostSlot, ScriptHost};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Answers target queries of one correlation script evaluation, recording their filters.
pub(super) struct TargetReads {
    /// `managed/<type>`.
    pub resource: String,
    pub target_set: Arc<dyn ObjectSet>,
    pub links: LinkView,
    pub overlay: Option<Arc<Overlay>>,
    pub fallback: HostSlot,
    pub filters: Mutex<Vec<Filter>>,
    /// Answers of the chunk's target queries read in bulk, by the filter's text.
    pub prefetched: Option<Arc<Prefetched>>,
    /// The probe pass: record what the script queries, answer nothing (every call throws, so
    /// the script stops at its first call and has no effect), log nothing.
    pub probe: bool,
    /// The runtime the target set's queries run on (the evaluating thread may be outside it).
    pub handle: Option<tokio::runtime::Handle>,
}

/// Target query answers read for a whole chunk, by the filter's text.
pub(super) type Prefetched = HashMap<String, Candidates>;

impl TargetReads {
    /// A host for one evaluation.
    pub fn new(
        resource: String,
        target_set: Arc<dyn ObjectSet>,
        links: LinkView,
        fallback: HostSlot,
    ) -> Self {
        Self {
            resource,
            target_set,
            links,
            overlay: None,
            fallback,
            filters: Mutex::new(Vec::new()),
            prefetched: None,
            probe: false,
            handle: tokio::runtime::Handle::try_current().ok(),
        }
    }

    /// The filters recorded so far, emptied.
    pub fn take_filters(&self) -> Vec<Filter> {
        self.filters
            .lock()
            .map(|mut f| std::mem::take(&mut *f))
            .unwrap_or_default()
    }

    /// The filters the script's target queries used, as one filter (`None`: it queried none).
    pub fn read_filter(&self) -> Option<Filter> {
        let mut filters = self.filters.lock().map(|f| f.clone()).unwrap_or_default();
        match filters.len() {
            0 => None,
            1 => filters.pop(),
            _ => Some(Filter::Or(filters)),
        }
    }

    fn fallback(&self) -> Result<Arc<dyn ScriptHost>, HostError> {
        self.fallback.get().ok_or_else(|| {
            HostError::new(
                503,
                "openidm is not available here: this process provides no script host",
            )
        })
    }

    /// The filter of a query this host answers itself: one on the target with only a
    /// `_queryFilter`.
    fn own_query(&self, r: &HostRequest) -> Option<Filter> {
        if r.method != HostMethod::Query {
            return None;
        }
        let path = r
            .resource
            .trim_start_matches('/')
            .trim_start_matches("openidm/")
            .trim_end_matches('/');
        if path != self.resource || r.params.len() != 1 {
            return None;
        }
        let text = r.params.get("_queryFilter")?.as_str()?;
        idsync_core::filter::parse(text).ok()
    }
}

impl ScriptHost for TargetReads {
    fn call(&self, request: HostRequest) -> Result<Value, HostError> {
        let own = self.own_query(&request);
        if self.probe {
            if let Some(filter) = own
                && let Ok(mut filters) = self.filters.lock()
            {
                filters.push(filter);
            }
            return Err(HostError::new(503, "not answered while probing"));
        }
        let Some(filter) = own else {
            return self.fallback()?.call(request);
        };
        let known = self
            .prefetched
            .as_ref()
            .and_then(|p| p.get(&filter.to_string()).cloned());
        let mut found = match known {
            Some(found) => found,
            None => self.query(&filter)?,
        };
        if let Some(overlay) = &self.overlay {
            found = overlay.correct(found, &filter, |id| self.links.norm_target(id));
        }
        if let Ok(mut filters) = self.filters.lock() {
            filters.push(filter);
        }
        let (ids, mut values) = found;
        let results: Vec<Value> = ids
            .iter()
            .filter_map(|id| values.remove(id))
            .map(|v| project(v, &request.fields))
            .collect();
        Ok(json!({
            "result": results,
            "resultCount": results.len(),
            "pagedResultsCookie": null,
            "totalPagedResultsPolicy": "NONE",
            "totalPagedResults": -1,
            "remainingPagedResults": -1,
        }))
    }

    fn quiet(&self) -> bool {
        self.probe
    }

    fn property(&self, name: &str) -> Option<String> {
        self.fallback().ok()?.property(name)
    }

    fn project_location(&self) -> String {
        self.fallback()
            .map(|h| h.project_location())
            .unwrap_or_default()
    }

    fn module(&self, name: &str) -> Result<idsync_script::ModuleSource, HostError> {
        self.fallback()?.module(name)
    }
}

impl TargetReads {
    /// Queries the target set now, on this thread (the query runs no script).
    fn query(&self, filter: &Filter) -> Result<Candidates, HostError> {
        let query = QueryRequest::with_filter(filter.clone());
        let set = self.target_set.clone();
        let Some(handle) = self.handle.clone() else {
            return Err(HostError::new(500, "no runtime to query the target set on"));
        };
        if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread {
            return Err(HostError::new(
                500,
                "openidm calls need the multi-threaded runtime (this thread cannot wait)",
            ));
        }
        let work = async move { set.query(&query).await };
        let page = if tokio::runtime::Handle::try_current().is_ok() {
            tokio::task::block_in_place(|| handle.block_on(work))
        } else {
            handle.block_on(work)
        }
        .map_err(|e| HostError::new(500, e.to_string()))?;
        let mut found = Candidates::default();
        for v in page.results {
            if let Some(id) = v.get("_id").and_then(Value::as_str).map(str::to_owned) {
                found.0.push(id.clone());
                found.1.insert(id, v);
            }
        }
        Ok(found)
    }
}

/// `_id`, `_rev` and the requested fields (all of them when none is requested).
fn project(v: Value, fields: &[String]) -> Value {
    if fields.is_empty() {
        return v;
    }
    let Value::Object(mut map) = v else { return v };
    map.retain(|k, _| {
        k == "_id" || k == "_rev" || fields.iter().any(|f| f.trim_start_matches('/') == k)
    });
    Value::Object(map)
}
