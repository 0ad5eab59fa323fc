//! One mapping object of sync.json or mapping-*.json (docs/configuration.md#mappings) read into a
//! [`Mapping`] with every default applied. Checks that need the rest of the project (connectors,
//! managed types, other mappings) live in `crossref`; this module must not look beyond one mapping.

use crate::cx::{Cx, Obj};
use crate::script::{condition, expression_tree_script, script};
use crate::types::*;
use idsync_core::{Action, JsonPointer, ResourcePath, Situation};
use serde_json::Value;

/// Keys accepted for IDM compatibility but not implemented.
const IGNORED_KEYS: [&str; 3] = ["defaultMapping", "postMapping", "onRecon"];

/// Reads the mapping at `ptr`. `fallback_name` is used when the object has no `name`
/// (mapping-<name>.json files).
pub(crate) fn mapping(
    cx: &mut Cx<'_>,
    ptr: &str,
    v: &Value,
    fallback_name: Option<&str>,
) -> Option<Mapping> {
    let mut o = cx.object(ptr, v)?;
    let before = cx.sink.errors.len();
    let name = match fallback_name {
        Some(f) if !o.has("name") => {
            o.accept(&["name"]);
            Some(f.to_string())
        }
        _ => o.req_str(cx, "name"),
    };
    if name.as_deref() == Some("") {
        cx.error(&o.at("name"), "a mapping name must not be empty");
    }
    let source = resource(cx, &mut o, "source");
    let target = resource(cx, &mut o, "target");
    // `links` is resolved against the other mappings in `crossref`; here it is only read.
    let links = o.opt_str(cx, "links").map(|mapping| LinksRef {
        mapping,
        reversed: false,
    });
    let enable_sync = o.bool_or(cx, "enableSync", true);
    let enable_linking = o.bool_or(cx, "enableLinking", true);
    let source_ids_case_sensitive = o.bool_or(cx, "sourceIdsCaseSensitive", true);
    let target_ids_case_sensitive = o.bool_or(cx, "targetIdsCaseSensitive", true);
    let valid_source = opt_script(cx, &mut o, "validSource");
    let valid_target = opt_script(cx, &mut o, "validTarget");
    let source_condition = o
        .get("sourceCondition")
        .and_then(|c| condition(cx, &o.at("sourceCondition"), c));
    let correlation = correlation(cx, &mut o);
    let link_qualifiers = link_qualifiers(cx, &mut o);
    let properties = properties(cx, &mut o);
    let policies = policies(cx, &mut o);
    let on_create = opt_script(cx, &mut o, "onCreate");
    let on_update = opt_script(cx, &mut o, "onUpdate");
    let on_delete = opt_script(cx, &mut o, "onDelete");
    let on_link = opt_script(cx, &mut o, "onLink");
    let on_unlink = opt_script(cx, &mut o, "onUnlink");
    let result = opt_script(cx, &mut o, "result");
    let task_threads = o.opt_non_negative(cx, "taskThreads").unwrap_or(10);
    let feed_size = o.opt_at_least(cx, "feedSize", 1).unwrap_or(1000);
    let prefetch_links = o.bool_or(cx, "prefetchLinks", true);
    let correlate_empty_target_set = o.bool_or(cx, "correlateEmptyTargetSet", false);
    let source_query = o.opt_object(cx, "sourceQuery");
    let target_query = o.opt_object(cx, "targetQuery");
    let source_query_full_entry = o.opt_bool(cx, "sourceQueryFullEntry");
    let target_query_full_entry = o.opt_bool(cx, "targetQueryFullEntry");
    let allow_empty_source_set = o.bool_or(cx, "allowEmptySourceSet", false);
    let run_target_phase = o.opt_bool(cx, "runTargetPhase");
    let recon_source_query_paging = o.bool_or(cx, "reconSourceQueryPaging", false);
    let recon_source_query_page_size = o.opt_at_least(cx, "reconSourceQueryPageSize", 1);
    let recon_target_query_paging = o.bool_or(cx, "reconTargetQueryPaging", false);
    let recon_target_query_page_size = o.opt_at_least(cx, "reconTargetQueryPageSize", 1);
    let clustered_source_recon_enabled = o.bool_or(cx, "clusteredSourceReconEnabled", false);
    let queued_sync = o
        .get("queuedSync")
        .and_then(|q| queued_sync(cx, &o.at("queuedSync"), q));
    let trigger_sync_properties = o
        .opt_string_list(cx, "triggerSyncProperties")
        .map(|l| l.iter().map(|p| JsonPointer::parse(p)).collect());
    let safety = o.get("safety").and_then(|s| safety(cx, &o.at("safety"), s));
    let recon_association = o.get("reconAssociation").cloned();
    let sync_after = o.opt_string_list(cx, "syncAfter").unwrap_or_default();
    for key in IGNORED_KEYS {
        if o.get(key).is_some() {
            cx.warn(
                &o.at(key),
                format!("\"{key}\" (role and assignment processing) is not supported by idsync and is ignored"),
            );
        }
    }
    o.finish(cx);
    let (source, source_str) = source?;
    let (target, target_str) = target?;
    if cx.sink.errors.len() != before {
        return None;
    }
    Some(Mapping {
        name: name?,
        source,
        source_str,
        target,
        target_str,
        links,
        enable_sync,
        enable_linking,
        source_ids_case_sensitive,
        target_ids_case_sensitive,
        valid_source,
        valid_target,
        source_condition,
        correlation,
        link_qualifiers,
        properties,
        policies,
        on_create,
        on_update,
        on_delete,
        on_link,
        on_unlink,
        result,
        task_threads,
        feed_size,
        prefetch_links,
        correlate_empty_target_set,
        source_query,
        target_query,
        source_query_full_entry,
        target_query_full_entry,
        allow_empty_source_set,
        run_target_phase,
        recon_source_query_paging,
        recon_source_query_page_size,
        recon_target_query_paging,
        recon_target_query_page_size,
        clustered_source_recon_enabled,
        queued_sync,
        trigger_sync_properties,
        safety,
        recon_association,
        sync_after,
        raw: v.clone(),
    })
}

fn resource(cx: &mut Cx<'_>, o: &mut Obj<'_>, key: &str) -> Option<(ResourcePath, String)> {
    let s = o.req_str(cx, key)?;
    let ptr = o.at(key);
    match ResourcePath::parse(&s) {
        Ok(ResourcePath::Link { .. }) => {
            cx.error(&ptr, format!("\"{s}\" cannot be a mapping {key}: use managed/<type> or system/<connector>/<type>"));
            None
        }
        Ok(p) if p.id().is_some() => {
            cx.error(
                &ptr,
                format!("\"{s}\" names one object; a mapping {key} is a collection"),
            );
            None
        }
        Ok(p) => Some((p, s)),
        Err(e) => {
            cx.error(&ptr, e.to_string());
            None
        }
    }
}

fn opt_script(cx: &mut Cx<'_>, o: &mut Obj<'_>, key: &str) -> Option<ScriptSpec> {
    let v = o.get(key)?;
    script(cx, &o.at(key), v)
}

fn correlation(cx: &mut Cx<'_>, o: &mut Obj<'_>) -> Option<Correlation> {
    let query = o.get("correlationQuery");
    let scr = o.get("correlationScript");
    if query.is_some() && scr.is_some() {
        cx.error(
            &o.at("correlationScript"),
            "\"correlationQuery\" and \"correlationScript\" are both set; a mapping uses one of them",
        );
        return None;
    }
    if let Some(s) = scr {
        return script(cx, &o.at("correlationScript"), s).map(Correlation::Script);
    }
    let q = query?;
    let ptr = o.at("correlationQuery");
    let entries: Vec<(String, &Value)> = match q {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, e)| (format!("{ptr}/{i}"), e))
            .collect(),
        other => vec![(ptr.clone(), other)],
    };
    let mut out = Vec::new();
    let mut ok = true;
    for (eptr, e) in entries {
        let Value::Object(map) = e else {
            cx.wrong_type(&eptr, "a script object", e);
            ok = false;
            continue;
        };
        // The entry's own keys; the rest are the script's.
        cx.recognise(&eptr, ["linkQualifier", "expressionTree"]);
        let link_qualifier = match map.get("linkQualifier") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                cx.wrong_type(&format!("{eptr}/linkQualifier"), "a string", other);
                ok = false;
                None
            }
        };
        let qualifier = link_qualifier
            .clone()
            .unwrap_or_else(|| "default".to_string());
        if out.iter().any(|c: &CorrelationQuery| {
            c.link_qualifier.as_deref().unwrap_or("default") == qualifier
        }) {
            cx.error(
                &eptr,
                format!("a second correlation query for link qualifier \"{qualifier}\""),
            );
            ok = false;
        }
        let spec = if let Some(tree) = map.get("expressionTree") {
            expression_tree_script(
                cx,
                &format!("{eptr}/expressionTree"),
                tree,
                o.map.get("properties"),
            )
        } else {
            // `linkQualifier` is the entry's own key, not a script variable.
            let mut m = map.clone();
            m.shift_remove("linkQualifier");
            script(cx, &eptr, &Value::Object(m))
        };
        match spec {
            Some(script) => out.push(CorrelationQuery {
                link_qualifier,
                script,
            }),
            None => ok = false,
        }
    }
    ok.then_some(Correlation::Queries(out))
}

fn link_qualifiers(cx: &mut Cx<'_>, o: &mut Obj<'_>) -> LinkQualifiers {
    let Some(v) = o.get("linkQualifiers") else {
        return LinkQualifiers::default();
    };
    let ptr = o.at("linkQualifiers");
    match v {
        Value::Array(_) => {
            let Some(list) = cx.string_list(&ptr, v) else {
                return LinkQualifiers::default();
            };
            if list.is_empty() {
                cx.error(&ptr, "needs at least one link qualifier");
            }
            for (i, q) in list.iter().enumerate() {
                if list[..i].contains(q) {
                    cx.error(
                        &format!("{ptr}/{i}"),
                        format!("duplicate link qualifier \"{q}\""),
                    );
                }
            }
            LinkQualifiers::List(list)
        }
        Value::Object(_) => script(cx, &ptr, v)
            .map(LinkQualifiers::Script)
            .unwrap_or_default(),
        other => {
            cx.wrong_type(&ptr, "an array of strings or a script object", other);
            LinkQualifiers::default()
        }
    }
}

fn properties(cx: &mut Cx<'_>, o: &mut Obj<'_>) -> Vec<PropertyMapping> {
    let Some(v) = o.get("properties") else {
        return Vec::new();
    };
    let ptr = o.at("properties");
    let Value::Array(items) = v else {
        cx.wrong_type(&ptr, "an array", v);
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Some(mut p) = cx.object(&format!("{ptr}/{i}"), item) else {
            continue;
        };
        let target = p.req_str(cx, "target").map(|t| JsonPointer::parse(&t));
        if target.as_ref().is_some_and(JsonPointer::is_root) {
            cx.error(
                &p.at("target"),
                "a property cannot be written to the root of the target",
            );
        }
        let source = p.opt_str(cx, "source").map(|s| JsonPointer::parse(&s));
        let transform = p
            .get("transform")
            .and_then(|t| script(cx, &p.at("transform"), t));
        let cond = p
            .get("condition")
            .and_then(|c| condition(cx, &p.at("condition"), c));
        let default = p.get("default").cloned();
        p.finish(cx);
        if let Some(target) = target {
            out.push(PropertyMapping {
                target,
                source,
                transform,
                condition: cond,
                default,
            });
        }
    }
    out
}

fn policies(cx: &mut Cx<'_>, o: &mut Obj<'_>) -> Vec<Policy> {
    let Some(v) = o.get("policies") else {
        return Vec::new();
    };
    let ptr = o.at("policies");
    let Value::Array(items) = v else {
        cx.wrong_type(&ptr, "an array", v);
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Some(mut p) = cx.object(&format!("{ptr}/{i}"), item) else {
            continue;
        };
        let situation = p
            .req_str(cx, "situation")
            .and_then(|s| match s.parse::<Situation>() {
                Ok(s) => Some(s),
                Err(e) => {
                    cx.error(&p.at("situation"), e.to_string());
                    None
                }
            });
        let action = p.required(cx, "action").and_then(|a| {
            let aptr = p.at("action");
            match a {
                Value::String(s) => match s.parse::<Action>() {
                    Ok(a) => Some(ActionSpec::Name(a)),
                    Err(e) => {
                        cx.error(&aptr, e.to_string());
                        None
                    }
                },
                Value::Object(_) => script(cx, &aptr, a).map(ActionSpec::Script),
                other => {
                    cx.wrong_type(&aptr, "an action name or a script object", other);
                    None
                }
            }
        });
        let cond = p
            .get("condition")
            .and_then(|c| condition(cx, &p.at("condition"), c));
        let post_action = p
            .get("postAction")
            .and_then(|s| script(cx, &p.at("postAction"), s));
        p.finish(cx);
        if let (Some(situation), Some(action)) = (situation, action) {
            out.push(Policy {
                situation,
                action,
                condition: cond,
                post_action,
            });
        }
    }
    out
}

/// `logged-ignore`, `dead-letter-queue` or `{"script":{...}}` (docs/operations.md#queued-sync-and-dead-letters, docs/configuration.md).
pub(crate) fn post_retry_action(cx: &mut Cx<'_>, ptr: &str, v: &Value) -> Option<PostRetryAction> {
    match v {
        Value::String(s) => match s.as_str() {
            "logged-ignore" => Some(PostRetryAction::LoggedIgnore),
            "dead-letter-queue" => Some(PostRetryAction::DeadLetterQueue),
            other => {
                cx.error(
                    ptr,
                    format!("unknown post-retry action \"{other}\" (known: logged-ignore, dead-letter-queue, {{\"script\":{{...}}}})"),
                );
                None
            }
        },
        Value::Object(_) => {
            let mut o = cx.object(ptr, v)?;
            let s = o
                .required(cx, "script")
                .and_then(|s| script(cx, &o.at("script"), s));
            o.finish(cx);
            s.map(PostRetryAction::Script)
        }
        other => {
            cx.wrong_type(
                ptr,
                "\"logged-ignore\", \"dead-letter-queue\" or {\"script\":{...}}",
                other,
            );
            None
        }
    }
}

/// `maxRetries`: absent, null or negative means forever.
pub(crate) fn max_retries(cx: &mut Cx<'_>, o: &mut Obj<'_>) -> Option<u64> {
    o.opt_int(cx, "maxRetries")
        .and_then(|i| u64::try_from(i).ok())
}

fn queued_sync(cx: &mut Cx<'_>, ptr: &str, v: &Value) -> Option<QueuedSync> {
    let mut o = cx.object(ptr, v)?;
    let d = QueuedSync::default();
    let q = QueuedSync {
        enabled: o.bool_or(cx, "enabled", d.enabled),
        page_size: o.opt_at_least(cx, "pageSize", 1).unwrap_or(d.page_size),
        polling_interval_ms: o
            .opt_at_least(cx, "pollingInterval", 10)
            .unwrap_or(d.polling_interval_ms),
        max_queue_size: o
            .opt_at_least(cx, "maxQueueSize", 1)
            .unwrap_or(d.max_queue_size),
        max_retries: max_retries(cx, &mut o),
        retry_delay_ms: o
            .opt_at_least(cx, "retryDelay", 1)
            .unwrap_or(d.retry_delay_ms),
        post_retry_action: o
            .get("postRetryAction")
            .and_then(|a| post_retry_action(cx, &o.at("postRetryAction"), a))
            .unwrap_or(d.post_retry_action),
        workers: o.opt_at_least(cx, "workers", 1).unwrap_or(d.workers),
    };
    o.finish(cx);
    Some(q)
}

fn safety(cx: &mut Cx<'_>, ptr: &str, v: &Value) -> Option<Safety> {
    let mut o = cx.object(ptr, v)?;
    let max_deletes = o
        .get("maxDeletes")
        .and_then(|l| limit(cx, &o.at("maxDeletes"), l));
    let max_unlinks = o
        .get("maxUnlinks")
        .and_then(|l| limit(cx, &o.at("maxUnlinks"), l));
    let min_source_size = o.opt_non_negative(cx, "minSourceSize");
    o.finish(cx);
    Some(Safety {
        max_deletes,
        max_unlinks,
        min_source_size,
    })
}

/// `N` or `"N%"` (`safety`).
fn limit(cx: &mut Cx<'_>, ptr: &str, v: &Value) -> Option<Limit> {
    if let Value::String(s) = v {
        if let Some(num) = s.trim().strip_suffix('%') {
            return match num.trim().parse::<f64>() {
                Ok(p) if p.is_finite() && (0.0..=100.0).contains(&p) => Some(Limit::Percent(p)),
                _ => {
                    cx.error(
                        ptr,
                        format!("bad limit \"{s}\": a percentage is \"N%\" with N from 0 to 100"),
                    );
                    None
                }
            };
        }
        if !cx.whole_substitutions.contains(ptr) {
            cx.error(
                ptr,
                format!(
                    "bad limit \"{s}\": expected a count (e.g. 100) or a percentage (e.g. \"5%\")"
                ),
            );
            return None;
        }
    }
    cx.non_negative(ptr, v).map(Limit::Count)
}

impl Mapping {
    /// The link type: the `links` mapping's name, or this mapping's own name.
    pub fn link_type(&self) -> &str {
        self.links
            .as_ref()
            .map_or(self.name.as_str(), |l| l.mapping.as_str())
    }

    /// True when this mapping reads the links of a mapping that goes the other way.
    pub fn links_reversed(&self) -> bool {
        self.links.as_ref().is_some_and(|l| l.reversed)
    }

    /// The queued-sync settings, only when queued sync is enabled.
    pub fn queued(&self) -> Option<&QueuedSync> {
        self.queued_sync.as_ref().filter(|q| q.enabled)
    }

    /// The link qualifiers when they are a fixed list.
    pub fn qualifier_list(&self) -> Option<&[String]> {
        match &self.link_qualifiers {
            LinkQualifiers::List(l) => Some(l),
            LinkQualifiers::Script(_) => None,
        }
    }
}
