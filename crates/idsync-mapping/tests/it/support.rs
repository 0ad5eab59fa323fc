//! Builds typed mappings the way the config loader would, so tests state only what they vary.

use idsync_config::{Condition, Mapping, ScriptSpec};
use idsync_core::ResourcePath;
use serde_json::{Map, Value, json};

/// A mapping `name` from `csv/hr` to `managed/user` with every default of docs/configuration.md#mappings
pub fn mapping(name: &str) -> Mapping {
    Mapping {
        name: name.to_string(),
        source: ResourcePath::parse("system/hr/account").unwrap(),
        source_str: "system/hr/account".into(),
        target: ResourcePath::parse("managed/user").unwrap(),
        target_str: "managed/user".into(),
        links: None,
        enable_sync: true,
        enable_linking: true,
        source_ids_case_sensitive: true,
        target_ids_case_sensitive: true,
        valid_source: None,
        valid_target: None,
        source_condition: None,
        correlation: None,
        link_qualifiers: Default::default(),
        properties: vec![],
        policies: vec![],
        on_create: None,
        on_update: None,
        on_delete: None,
        on_link: None,
        on_unlink: None,
        result: None,
        task_threads: 10,
        feed_size: 1000,
        prefetch_links: true,
        correlate_empty_target_set: false,
        source_query: None,
        target_query: None,
        source_query_full_entry: None,
        target_query_full_entry: None,
        allow_empty_source_set: false,
        run_target_phase: None,
        recon_source_query_paging: false,
        recon_source_query_page_size: None,
        recon_target_query_paging: false,
        recon_target_query_page_size: None,
        clustered_source_recon_enabled: false,
        queued_sync: None,
        trigger_sync_properties: None,
        safety: None,
        recon_association: None,
        sync_after: vec![],
        raw: json!({"name": name}),
    }
}

/// An inline script declared at `origin`.
pub fn script_at(source: &str, origin: &str) -> ScriptSpec {
    ScriptSpec {
        source: source.to_string(),
        file: None,
        globals: Map::new(),
        origin: origin.to_string(),
    }
}

pub fn script(source: &str) -> ScriptSpec {
    script_at(source, "conf/sync.json")
}

pub fn script_with_globals(source: &str, globals: Value) -> ScriptSpec {
    let Value::Object(globals) = globals else {
        panic!("globals must be an object")
    };
    ScriptSpec {
        globals,
        ..script(source)
    }
}

pub fn filter(text: &str) -> Condition {
    Condition::Filter(text.parse().unwrap(), text.to_string())
}

pub fn script_condition(source: &str) -> Condition {
    Condition::Script(script(source))
}
