//! The run summary JSON (docs/rest.md#reconciliation), assembled from a run's record and its
//! committed counters. The same function serves the CLI, `GET recon/<id>` and the stored summary,
//! so every node shows the same numbers for any run.
//!
//! [`RunCounters`] is the run-level sum: the counters every node committed for the run, which
//! the per-object accounting (`pipeline::stats`) adds to page by page.

use crate::pipeline::stats::keys;
use chrono::{DateTime, SecondsFormat, Utc};
use idsync_core::{Action, ReconStage, Situation};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// What the summary needs besides the counters.
#[derive(Debug, Clone)]
pub struct SummaryHead<'a> {
    pub id: &'a str,
    pub mapping: &'a str,
    pub stage: ReconStage,
    pub analyze: bool,
    pub started: Option<DateTime<Utc>>,
    pub ended: Option<DateTime<Utc>>,
    pub parameters: &'a Value,
    pub message: Option<&'a str>,
}

pub fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn total(c: &RunCounters, key: &str) -> Value {
    if c.by_node.values().any(|n| n.contains_key(key)) {
        Value::String(c.total(key).to_string())
    } else {
        Value::String("?".into())
    }
}

/// Builds the summary, keys in IDM's order, plus idsync's additions.
pub fn build_summary(h: &SummaryHead<'_>, c: &RunCounters, now: DateTime<Utc>) -> Value {
    let mut situations = Map::new();
    for s in Situation::ALL {
        situations.insert(s.as_str().into(), json!(c.total(&keys::situation(s))));
    }
    let links_total = if c
        .by_node
        .values()
        .any(|n| n.contains_key(keys::LINKS_TOTAL))
        && c.total(keys::LINKS_TOTAL) > 0
    {
        total(c, keys::LINKS_TOTAL)
    } else if h.stage == ReconStage::CompletedSuccess {
        Value::String(c.total(keys::LINKS_PROCESSED).to_string())
    } else {
        Value::String("?".into())
    };
    let duration = match (h.started, h.ended) {
        (Some(s), Some(e)) => (e - s).num_milliseconds(),
        (Some(s), None) => (now - s).num_milliseconds(),
        (None, _) => -1,
    };
    let mut out = Map::new();
    out.insert("_id".into(), json!(h.id));
    out.insert("mapping".into(), json!(h.mapping));
    out.insert("state".into(), json!(h.stage.state().as_str()));
    out.insert("stage".into(), json!(h.stage.as_str()));
    out.insert("stageDescription".into(), json!(h.stage.description()));
    out.insert(
        "progress".into(),
        json!({
            "source": {"existing": {
                "processed": c.total(keys::SOURCE_PROCESSED),
                "total": total(c, keys::SOURCE_TOTAL)}},
            "target": {
                "existing": {
                    "processed": c.total(keys::TARGET_PROCESSED),
                    "total": total(c, keys::TARGET_TOTAL)},
                "created": c.total(keys::TARGET_CREATED),
                "updated": c.total(keys::TARGET_UPDATED),
                "deleted": c.total(keys::TARGET_DELETED),
                "unchanged": c.total(keys::TARGET_UNCHANGED)},
            "links": {
                "existing": {"processed": c.total(keys::LINKS_PROCESSED), "total": links_total},
                "created": c.total(keys::LINKS_CREATED)}
        }),
    );
    out.insert("situationSummary".into(), Value::Object(situations));
    out.insert(
        "statusSummary".into(),
        json!({"SUCCESS": c.total(keys::STATUS_SUCCESS), "FAILURE": c.total(keys::STATUS_FAILURE)}),
    );
    out.insert(
        "durationSummary".into(),
        Value::Object(c.duration_summary()),
    );
    out.insert("parameters".into(), h.parameters.clone());
    out.insert(
        "started".into(),
        json!(h.started.map(iso).unwrap_or_default()),
    );
    out.insert("ended".into(), json!(h.ended.map(iso).unwrap_or_default()));
    out.insert("duration".into(), json!(duration));
    out.insert(
        "sourceProcessedByNode".into(),
        serde_json::to_value(c.per_node(keys::SOURCE_PROCESSED)).unwrap_or_default(),
    );
    if h.analyze {
        out.insert("analyze".into(), json!(true));
        let mut actions = Map::new();
        for a in Action::ALL {
            actions.insert(a.as_str().into(), json!(c.total(&keys::action(a))));
        }
        out.insert("actionSummary".into(), Value::Object(actions));
    }
    if let Some(m) = h.message {
        out.insert("message".into(), json!(m));
    }
    Value::Object(out)
}

/// The audit summary line: `"SITUATION: n ..."` for the non-zero situations.
pub fn summary_message(c: &RunCounters) -> String {
    Situation::ALL
        .iter()
        .filter_map(|s| {
            let n = c.total(&keys::situation(*s));
            (n > 0).then(|| format!("{}: {n}", s.as_str()))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The committed counters of a run, per node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunCounters {
    pub by_node: BTreeMap<String, BTreeMap<String, i64>>,
}

impl RunCounters {
    /// The sum over nodes of one counter.
    pub fn total(&self, key: &str) -> i64 {
        self.by_node.values().filter_map(|c| c.get(key)).sum()
    }

    pub fn per_node(&self, key: &str) -> BTreeMap<String, i64> {
        self.by_node
            .iter()
            .map(|(n, c)| (n.clone(), c.get(key).copied().unwrap_or(0)))
            .collect()
    }

    /// `durationSummary`: `{name: {count, sum, min, max, mean, stdDev}}` in milliseconds.
    pub fn duration_summary(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut names: Vec<String> = self
            .by_node
            .values()
            .flat_map(|c| c.keys())
            .filter_map(|k| {
                k.strip_prefix("duration.")?
                    .strip_suffix(".count")
                    .map(str::to_string)
            })
            .collect();
        names.sort();
        names.dedup();
        let mut out = serde_json::Map::new();
        for name in names {
            let count = self.total(&keys::duration(&name, "count"));
            if count == 0 {
                continue;
            }
            let sum_ms = self.total(&keys::duration(&name, "sum_us")) as f64 / 1000.0;
            let sumsq = self.total(&keys::duration(&name, "sumsq_ums")) as f64 / 1000.0;
            let min_key = keys::duration(&name, "min_us");
            let max_key = keys::duration(&name, "max_us");
            let min = self
                .by_node
                .values()
                .filter_map(|c| c.get(&min_key))
                .min()
                .copied()
                .unwrap_or(0) as f64
                / 1000.0;
            let max = self
                .by_node
                .values()
                .filter_map(|c| c.get(&max_key))
                .max()
                .copied()
                .unwrap_or(0) as f64
                / 1000.0;
            let n = count as f64;
            let mean = (sum_ms / n).max(min);
            let variance = (sumsq / n - (sum_ms / n).powi(2)).max(0.0);
            out.insert(
                name,
                serde_json::json!({
                    "count": count,
                    "sum": round3(sum_ms),
                    "min": round3(min),
                    "max": round3(max),
                    "mean": round3(mean),
                    "stdDev": round3(variance.sqrt()),
                }),
            );
        }
        out
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::stats::{NodeExtremes, StatsDelta};
    use std::time::Duration;

    #[test]
    fn summary_has_idsms_shape_and_true_totals() {
        let mut node = BTreeMap::new();
        node.insert(keys::SOURCE_PROCESSED.to_string(), 3);
        node.insert(keys::SOURCE_TOTAL.to_string(), 3);
        node.insert("situation.ABSENT".to_string(), 1);
        node.insert("situation.FOUND".to_string(), 2);
        node.insert(keys::TARGET_CREATED.to_string(), 1);
        node.insert(keys::TARGET_PROCESSED.to_string(), 2);
        node.insert(keys::TARGET_UPDATED.to_string(), 2);
        node.insert(keys::STATUS_SUCCESS.to_string(), 3);
        let c = RunCounters {
            by_node: BTreeMap::from([("node1".to_string(), node)]),
        };
        let params = json!({"sourceQuery": {}});
        let t0 = Utc::now();
        let h = SummaryHead {
            id: "r1",
            mapping: "m",
            stage: ReconStage::CompletedSuccess,
            analyze: false,
            started: Some(t0),
            ended: Some(t0 + chrono::Duration::milliseconds(187)),
            parameters: &params,
            message: None,
        };
        let s = build_summary(&h, &c, Utc::now());
        let keys_in_order: Vec<&String> = s.as_object().unwrap().keys().collect();
        assert_eq!(
            keys_in_order,
            [
                "_id",
                "mapping",
                "state",
                "stage",
                "stageDescription",
                "progress",
                "situationSummary",
                "statusSummary",
                "durationSummary",
                "parameters",
                "started",
                "ended",
                "duration",
                "sourceProcessedByNode"
            ]
        );
        assert_eq!(s["state"], "SUCCESS");
        assert_eq!(s["stageDescription"], "reconciliation completed.");
        assert_eq!(s["progress"]["source"]["existing"]["total"], "3");
        assert_eq!(s["progress"]["target"]["existing"]["total"], "?");
        assert_eq!(s["progress"]["target"]["created"], 1);
        assert_eq!(s["progress"]["target"]["updated"], 2);
        assert_eq!(s["situationSummary"].as_object().unwrap().len(), 13);
        assert_eq!(s["duration"], 187);
        assert_eq!(s["sourceProcessedByNode"]["node1"], 3);
        assert_eq!(summary_message(&c), "FOUND: 2 ABSENT: 1");
    }

    #[test]
    fn durations_from_several_nodes_and_pages_summarise_exactly() {
        let mut ext_a = NodeExtremes::default();
        let mut ext_b = NodeExtremes::default();
        let mut counters = RunCounters::default();
        let mut add = |node: &str, ext: &mut NodeExtremes, ms: &[u64]| {
            let mut d = StatsDelta::default();
            for m in ms {
                d.time("sourceQuery", Duration::from_millis(*m));
            }
            let c = d.into_counters(ext);
            let n = counters.by_node.entry(node.to_string()).or_default();
            for (k, v) in c {
                *n.entry(k).or_insert(0) += v;
            }
        };
        add("a", &mut ext_a, &[10, 30]);
        add("a", &mut ext_a, &[5]);
        add("b", &mut ext_b, &[50]);
        let s = counters.duration_summary();
        let q = &s["sourceQuery"];
        assert_eq!(q["count"], 4);
        assert_eq!(q["sum"], 95.0);
        assert_eq!(q["min"], 5.0);
        assert_eq!(q["max"], 50.0);
        assert_eq!(q["mean"], 23.75);
    }
}
