//! The run summary JSON (docs/rest.md#reconciliation), assembled from a run's record and its
//! committed counters. The same function serves the CLI, `GET recon/<id>` and the stored summary,
//! so every node shows the same numbers for any run.

use super::stats::{RunCounters, keys};
use chrono::{DateTime, SecondsFormat, Utc};
use idsync_core::{Action, ReconStage, Situation};
use serde_json::{Map, Value, json};

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

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
}
