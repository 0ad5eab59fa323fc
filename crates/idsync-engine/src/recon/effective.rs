//! The effective configuration of one run: the mapping's settings, the recon-request overrides
//! (docs/configuration.md#mappings: sourceQuery, targetQuery, runTargetPhase, allowEmptySourceSet and the
//! full-entry flags — nothing else), and idsync's defaults for paging and queries.

use crate::error::{EngineError, EngineResult};
use idsync_config::Mapping;
use idsync_core::{Filter, JsonPointer, QueryRequest, ResourcePath, SortKey};
use serde_json::{Map, Value, json};

/// What a caller asked for besides the mapping.
#[derive(Debug, Clone, Default)]
pub struct ReconOptions {
    /// Dry run: assess and decide, write nothing, store a plan.
    pub analyze: bool,
    /// `reconById`: only this source id (and no target phase unless overridden).
    pub source_id: Option<String>,
    /// The JSON body of `_action=recon`.
    pub overrides: Map<String, Value>,
}

/// A query of the source or target set, as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct SetQuery {
    pub resource: ResourcePath,
    pub request: QueryRequest,
    /// The effective query as shown in the summary's `parameters`.
    pub shown: Value,
    /// True when the query asks only for ids (`query-all-ids`, `_fields=_id`).
    pub ids_only: bool,
}

/// Everything a run's jobs need to know, derived once at start and stored with the run so that
/// every node uses the same values.
#[derive(Debug, Clone, PartialEq)]
pub struct EffectiveRecon {
    pub source: SetQuery,
    pub target: SetQuery,
    pub run_target_phase: bool,
    pub allow_empty_source_set: bool,
    pub source_full_entry: Option<bool>,
    pub target_full_entry: Option<bool>,
    /// `Some(n)` when the source query is paged.
    pub source_page_size: Option<usize>,
    pub target_page_size: Option<usize>,
    pub task_threads: usize,
    pub prefetch_links: bool,
    pub correlate_empty_target_set: bool,
    pub clustered: bool,
}

const DEFAULT_PAGE_SIZE: u64 = 1000;
const DEFAULT_CLUSTERED_PAGE_SIZE: u64 = 10_000;

impl EffectiveRecon {
    pub fn new(m: &Mapping, opts: &ReconOptions) -> EngineResult<Self> {
        let o = &opts.overrides;
        let bool_override = |key: &str| -> EngineResult<Option<bool>> {
            match o.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Bool(b)) => Ok(Some(*b)),
                Some(Value::String(s)) if s == "true" || s == "false" => Ok(Some(s == "true")),
                Some(other) => Err(EngineError::BadRequest(format!(
                    "recon override \"{key}\" must be a boolean, not {other}"
                ))),
            }
        };
        let map_override = |key: &str| -> EngineResult<Option<Map<String, Value>>> {
            match o.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Object(m)) => Ok(Some(m.clone())),
                Some(other) => Err(EngineError::BadRequest(format!(
                    "recon override \"{key}\" must be an object, not {other}"
                ))),
            }
        };
        let clustered = m.clustered_source_recon_enabled;
        let source_page_size = if clustered || m.recon_source_query_paging {
            let default = if clustered {
                DEFAULT_CLUSTERED_PAGE_SIZE
            } else {
                DEFAULT_PAGE_SIZE
            };
            Some(m.recon_source_query_page_size.unwrap_or(default) as usize)
        } else {
            None
        };
        let target_page_size = m
            .recon_target_query_paging
            .then(|| m.recon_target_query_page_size.unwrap_or(DEFAULT_PAGE_SIZE) as usize);
        let source_cfg = map_override("sourceQuery")?.or_else(|| m.source_query.clone());
        let target_cfg = map_override("targetQuery")?.or_else(|| m.target_query.clone());
        // Full objects by default for the source (never re-read what the query
        // returned); only ids for the target, so memory stays bounded by the target-id set.
        let source = set_query(source_cfg.as_ref(), &m.source, &m.source_str, false)?;
        let target = set_query(target_cfg.as_ref(), &m.target, &m.target_str, true)?;
        let run_target_phase = bool_override("runTargetPhase")?
            .or(m.run_target_phase)
            .unwrap_or(opts.source_id.is_none());
        Ok(Self {
            source,
            target,
            run_target_phase,
            allow_empty_source_set: bool_override("allowEmptySourceSet")?
                .unwrap_or(m.allow_empty_source_set),
            source_full_entry: bool_override("sourceQueryFullEntry")?.or(m.source_query_full_entry),
            target_full_entry: bool_override("targetQueryFullEntry")?.or(m.target_query_full_entry),
            source_page_size,
            target_page_size,
            task_threads: m.task_threads as usize,
            prefetch_links: m.prefetch_links,
            correlate_empty_target_set: m.correlate_empty_target_set,
            clustered,
        })
    }

    /// The summary's `parameters` (docs/rest.md#reconciliation).
    pub fn parameters(&self, opts: &ReconOptions) -> Value {
        match &opts.source_id {
            Some(id) => json!({"sourceIds": [id], "targetQuery": self.target.shown}),
            None => json!({"sourceQuery": self.source.shown, "targetQuery": self.target.shown}),
        }
    }
}

/// Builds one set query from its config map (docs/configuration.md#mappings `sourceQuery`/`targetQuery`).
fn set_query(
    cfg: Option<&Map<String, Value>>,
    default_resource: &ResourcePath,
    default_resource_str: &str,
    ids_by_default: bool,
) -> EngineResult<SetQuery> {
    let bad = |msg: String| EngineError::BadRequest(msg);
    let empty = Map::new();
    let cfg = cfg.unwrap_or(&empty);
    let (resource, resource_str) = match cfg.get("resourceName").and_then(Value::as_str) {
        Some(r) => (
            ResourcePath::parse(r).map_err(|e| bad(format!("resourceName: {e}")))?,
            r.to_string(),
        ),
        None => (default_resource.clone(), default_resource_str.to_string()),
    };
    let mut request = QueryRequest::default();
    let mut shown = Map::new();
    shown.insert("resourceName".into(), json!(resource_str));
    let mut ids_only = false;
    let query_id = cfg.get("_queryId").and_then(Value::as_str);
    let filter = cfg.get("_queryFilter").and_then(Value::as_str);
    match (query_id, filter) {
        (Some(_), Some(_)) => {
            return Err(bad("a query has both _queryId and _queryFilter".into()));
        }
        (Some("query-all-ids"), None) => {
            ids_only = true;
            request.fields = Some(vec![JsonPointer::parse("_id")]);
            shown.insert("_queryId".into(), json!("query-all-ids"));
        }
        (Some("query-all"), None) => {
            shown.insert("_queryId".into(), json!("query-all"));
        }
        (Some(other), None) => {
            return Err(bad(format!(
                "_queryId \"{other}\" is not supported (use query-all-ids, query-all or _queryFilter)"
            )));
        }
        (None, Some(f)) => {
            let parsed = idsync_core::filter::parse(f).map_err(|e| bad(e.to_string()))?;
            request.filter = match parsed {
                Filter::True => None,
                other => Some(other),
            };
            shown.insert("_queryFilter".into(), json!(f));
        }
        (None, None) => {
            if ids_by_default {
                ids_only = true;
                request.fields = Some(vec![JsonPointer::parse("_id")]);
                shown.insert("_queryFilter".into(), json!("true"));
                shown.insert("_fields".into(), json!("_id"));
            } else {
                shown.insert("_queryFilter".into(), json!("true"));
            }
        }
    }
    if let Some(fields) = cfg.get("_fields") {
        let list: Vec<String> = match fields {
            Value::String(s) => s.split(',').map(|f| f.trim().to_string()).collect(),
            Value::Array(a) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            other => {
                return Err(bad(format!(
                    "_fields must be a string or a list, not {other}"
                )));
            }
        };
        let list: Vec<String> = list.into_iter().filter(|f| !f.is_empty()).collect();
        ids_only = list
            .iter()
            .all(|f| f == "_id" || f == "/_id" || f == "_rev");
        request.fields = Some(list.iter().map(|f| JsonPointer::parse(f)).collect());
        shown.insert("_fields".into(), fields.clone());
    }
    if let Some(keys) = cfg.get("_sortKeys").and_then(Value::as_str) {
        request.sort_keys = SortKey::parse_list(keys);
        shown.insert("_sortKeys".into(), json!(keys));
    }
    Ok(SetQuery {
        resource,
        request,
        shown: Value::Object(shown),
        ids_only,
    })
}

/// IDM's full-entry autodetection (docs/configuration.md#mappings, `ReconTypeBase.hasFullEntry`): an entry is
/// full when it has at least 3 fields besides `_id` and `_rev`.
pub fn looks_full(entry: &Value) -> bool {
    let Some(obj) = entry.as_object() else {
        return false;
    };
    let meta = usize::from(obj.contains_key("_id")) + usize::from(obj.contains_key("_rev"));
    obj.len() > meta + 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_entry_autodetection_follows_idm() {
        assert!(!looks_full(
            &json!({"_id": "1", "_rev": "1", "a": 1, "b": 2})
        ));
        assert!(looks_full(
            &json!({"_id": "1", "_rev": "1", "a": 1, "b": 2, "c": 3})
        ));
        assert!(looks_full(&json!({"_id": "1", "a": 1, "b": 2, "c": 3})));
        assert!(!looks_full(&json!({"a": 1, "b": 2})));
    }

    #[test]
    fn set_query_defaults_and_query_ids() {
        let r = ResourcePath::parse("system/hr/account").unwrap();
        let q = set_query(None, &r, "system/hr/account", false).unwrap();
        assert!(!q.ids_only);
        assert_eq!(
            q.shown,
            json!({"resourceName": "system/hr/account", "_queryFilter": "true"})
        );
        let cfg = json!({"_queryId": "query-all-ids"});
        let q = set_query(cfg.as_object(), &r, "system/hr/account", false).unwrap();
        assert!(q.ids_only);
        let cfg = json!({"_queryFilter": "accountStatus eq \"active\"", "_sortKeys": "-sn"});
        let q = set_query(cfg.as_object(), &r, "system/hr/account", false).unwrap();
        assert!(q.request.filter.is_some());
        assert_eq!(q.request.sort_keys.len(), 1);
        assert!(set_query(json!({"_queryId": "x"}).as_object(), &r, "", false).is_err());
    }
}
