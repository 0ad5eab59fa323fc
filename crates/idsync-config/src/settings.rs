//! `conf/idsync.json` read into [`Settings`] with the `IDSYNC_<UPPER_SNAKE>` environment
//! overrides (docs/configuration.md#confidsyncjson). It owns only the file and the environment
//! rule; CLI flags are applied by the binary on top.

use crate::cx::Cx;
use crate::types::Settings;
use serde_json::{Map, Number, Value};

/// How an environment override of a key is converted.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Text,
    Number,
    Bool,
}

/// The typed keys and their kinds.
const KEYS: [(&str, Kind); 18] = [
    ("repo", Kind::Text),
    ("nodeId", Kind::Text),
    ("bind", Kind::Text),
    ("heartbeatIntervalMs", Kind::Number),
    ("nodeTimeoutMs", Kind::Number),
    ("leaseMs", Kind::Number),
    ("maxConcurrentJobs", Kind::Number),
    ("auditRetentionDays", Kind::Number),
    ("requestTimeoutMs", Kind::Number),
    ("headerTimeoutMs", Kind::Number),
    ("maxConnections", Kind::Number),
    ("maxSortKeys", Kind::Number),
    ("maxJsonDepth", Kind::Number),
    ("maxObjectBytes", Kind::Number),
    ("maxFilterTerms", Kind::Number),
    ("maxConcurrentLogins", Kind::Number),
    ("maxUnpagedResults", Kind::Number),
    ("sample", Kind::Bool),
];

/// `heartbeatIntervalMs` → `IDSYNC_HEARTBEAT_INTERVAL_MS`.
pub fn env_var_for(key: &str) -> String {
    let mut out = String::from("IDSYNC_");
    for (i, c) in key.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        match c {
            '.' | '-' => out.push('_'),
            c => out.push(c.to_ascii_uppercase()),
        }
    }
    out
}

/// Applies the environment overrides to the raw file: every typed key, and every key the file has.
pub(crate) fn apply_env(
    cx: &mut Cx<'_>,
    raw: &mut Map<String, Value>,
    env: &dyn Fn(&str) -> Option<String>,
) {
    let mut keys: Vec<(String, Kind)> = KEYS.iter().map(|(k, n)| ((*k).to_string(), *n)).collect();
    for (k, v) in raw.iter() {
        if !keys.iter().any(|(x, _)| x == k) {
            let kind = match v {
                Value::Number(_) => Kind::Number,
                Value::Bool(_) => Kind::Bool,
                _ => Kind::Text,
            };
            keys.push((k.clone(), kind));
        }
    }
    for (key, kind) in keys {
        let var = env_var_for(&key);
        let Some(val) = env(&var) else { continue };
        let parsed = match kind {
            Kind::Text => Some(Value::String(val.clone())),
            Kind::Number => val
                .trim()
                .parse::<u64>()
                .ok()
                .map(|n| Value::Number(Number::from(n))),
            Kind::Bool => val.trim().parse::<bool>().ok().map(Value::Bool),
        };
        let Some(v) = parsed else {
            let expected = if kind == Kind::Bool {
                "true or false"
            } else {
                "a non-negative integer"
            };
            cx.error(
                &format!("/{key}"),
                format!("environment variable {var}=\"{val}\" is not {expected}"),
            );
            continue;
        };
        raw.insert(key, v);
    }
}

/// Reads the settings. `used_names` are the `&{NAME}` references of the other files: a key used
/// as a substitution source is not an unknown key.
pub(crate) fn settings(
    cx: &mut Cx<'_>,
    raw: &Map<String, Value>,
    used_names: &[String],
) -> Settings {
    let d = Settings::default();
    let v = Value::Object(raw.clone());
    let Some(mut o) = cx.object("", &v) else {
        return d;
    };
    let s = Settings {
        repo_url: o.opt_str(cx, "repo"),
        node_id: o.opt_str(cx, "nodeId"),
        bind: o.opt_str(cx, "bind").unwrap_or(d.bind),
        heartbeat_interval_ms: o
            .opt_at_least(cx, "heartbeatIntervalMs", 1)
            .unwrap_or(d.heartbeat_interval_ms),
        node_timeout_ms: o
            .opt_at_least(cx, "nodeTimeoutMs", 1)
            .unwrap_or(d.node_timeout_ms),
        lease_ms: o.opt_at_least(cx, "leaseMs", 1).unwrap_or(d.lease_ms),
        max_concurrent_jobs: o
            .opt_at_least(cx, "maxConcurrentJobs", 1)
            .unwrap_or(d.max_concurrent_jobs),
        audit_retention_days: o.opt_at_least(cx, "auditRetentionDays", 1),
        request_timeout_ms: o
            .opt_at_least(cx, "requestTimeoutMs", 1)
            .unwrap_or(d.request_timeout_ms),
        sample: o.opt_bool(cx, "sample").unwrap_or(d.sample),
        header_timeout_ms: o
            .opt_at_least(cx, "headerTimeoutMs", 1)
            .unwrap_or(d.header_timeout_ms),
        max_connections: o
            .opt_at_least(cx, "maxConnections", 1)
            .unwrap_or(d.max_connections),
        max_sort_keys: o
            .opt_at_least(cx, "maxSortKeys", 1)
            .unwrap_or(d.max_sort_keys),
        max_json_depth: o
            .opt_at_least(cx, "maxJsonDepth", 2)
            .unwrap_or(d.max_json_depth),
        max_object_bytes: o
            .opt_at_least(cx, "maxObjectBytes", 2)
            .unwrap_or(d.max_object_bytes),
        max_filter_terms: o
            .opt_at_least(cx, "maxFilterTerms", 1)
            .unwrap_or(d.max_filter_terms),
        max_concurrent_logins: o
            .opt_at_least(cx, "maxConcurrentLogins", 1)
            .unwrap_or(d.max_concurrent_logins),
        max_unpaged_results: o.opt_at_least(cx, "maxUnpagedResults", 1),
        raw: raw.clone(),
    };
    if s.node_timeout_ms <= s.heartbeat_interval_ms {
        cx.error(
            &o.at("nodeTimeoutMs"),
            format!(
                "must be greater than heartbeatIntervalMs ({} <= {}), or every node looks down between two heartbeats",
                s.node_timeout_ms, s.heartbeat_interval_ms
            ),
        );
    }
    o.accept(&used_names.iter().map(String::as_str).collect::<Vec<_>>());
    o.finish(cx);
    s
}
