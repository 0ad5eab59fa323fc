//! The human-readable run summary that `idsync recon` prints on stdout.

use serde_json::Value;
use std::fmt::Write;

/// Renders a run summary (docs/rest.md#reconciliation) as an aligned text table.
pub fn render(s: &Value) -> String {
    let mut out = String::new();
    let str_of = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let _ = writeln!(
        out,
        "Reconciliation {}  mapping {}",
        str_of(&s["_id"]),
        str_of(&s["mapping"])
    );
    let _ = writeln!(
        out,
        "State     {} ({}: {})",
        str_of(&s["state"]),
        str_of(&s["stage"]),
        str_of(&s["stageDescription"])
    );
    if let Some(m) = s.get("message").and_then(Value::as_str) {
        let _ = writeln!(out, "Message   {m}");
    }
    if let Some(ms) = s["duration"].as_u64() {
        let processed = s["progress"]["source"]["existing"]["processed"]
            .as_u64()
            .unwrap_or(0)
            + s["progress"]["target"]["existing"]["processed"]
                .as_u64()
                .unwrap_or(0);
        let _ = match rate(processed, ms) {
            Some(r) => writeln!(
                out,
                "Duration  {} ({} objects/s)",
                seconds(ms),
                thousands(r)
            ),
            None => writeln!(out, "Duration  {}", seconds(ms)),
        };
    }
    let p = &s["progress"];
    let _ = writeln!(
        out,
        "Source    {} processed of {}",
        str_of(&p["source"]["existing"]["processed"]),
        str_of(&p["source"]["existing"]["total"])
    );
    let _ = writeln!(
        out,
        "Target    {} existing processed of {}; created {}, updated {}, unchanged {}, deleted {}",
        str_of(&p["target"]["existing"]["processed"]),
        str_of(&p["target"]["existing"]["total"]),
        str_of(&p["target"]["created"]),
        str_of(&p["target"]["updated"]),
        str_of(&p["target"]["unchanged"]),
        str_of(&p["target"]["deleted"])
    );
    let _ = writeln!(
        out,
        "Links     {} existing processed of {}; created {}",
        str_of(&p["links"]["existing"]["processed"]),
        str_of(&p["links"]["existing"]["total"]),
        str_of(&p["links"]["created"])
    );
    let _ = writeln!(
        out,
        "Status    SUCCESS {}  FAILURE {}",
        str_of(&s["statusSummary"]["SUCCESS"]),
        str_of(&s["statusSummary"]["FAILURE"])
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "{:<22} {:>10}", "SITUATION", "COUNT");
    if let Some(sit) = s["situationSummary"].as_object() {
        for (k, v) in sit {
            if v.as_i64().unwrap_or(0) > 0 {
                let _ = writeln!(out, "{k:<22} {:>10}", str_of(v));
            }
        }
    }
    if let Some(actions) = s.get("actionSummary").and_then(Value::as_object) {
        let _ = writeln!(out);
        let _ = writeln!(out, "{:<22} {:>10}", "ACTION (dry run)", "COUNT");
        for (k, v) in actions {
            if v.as_i64().unwrap_or(0) > 0 {
                let _ = writeln!(out, "{k:<22} {:>10}", str_of(v));
            }
        }
    }
    if let Some(nodes) = s.get("sourceProcessedByNode").and_then(Value::as_object)
        && nodes.len() > 1
    {
        let _ = writeln!(out);
        let _ = writeln!(out, "{:<22} {:>10}", "NODE", "SOURCE");
        for (k, v) in nodes {
            let _ = writeln!(out, "{k:<22} {:>10}", str_of(v));
        }
    }
    out
}

/// A duration in milliseconds as seconds with one decimal (`44.0 s`), or in milliseconds below
/// a second (`13 ms`), where one decimal of a second would read `0.0 s`.
pub fn seconds(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

/// Objects per second over `ms`, rounded; none for an empty or instant run.
fn rate(objects: u64, ms: u64) -> Option<u64> {
    (objects > 0 && ms > 0).then(|| (objects as f64 * 1000.0 / ms as f64).round() as u64)
}

/// An integer with a comma every three digits: `6,820`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The dry-run plan (docs/rest.md#reconciliation): one line per object operation, with the fields
/// an UPDATE or CREATE would write.
pub fn render_plan(entries: &[Value]) -> String {
    let mut out = String::new();
    if entries.is_empty() {
        return out;
    }
    let s = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    };
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<22} {:<10} {:<28} {:<28} CHANGES",
        "SITUATION", "ACTION", "SOURCE", "TARGET"
    );
    for e in entries {
        let changes: Vec<String> = e["diff"]
            .as_array()
            .map(|d| {
                d.iter()
                    .map(|c| {
                        format!(
                            "{} {}={}",
                            s(&c["operation"]),
                            s(&c["field"]),
                            s(&c["value"])
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{:<22} {:<10} {:<28} {:<28} {}",
            s(&e["situation"]),
            s(&e["action"]),
            s(&e["sourceId"]),
            s(&e["targetId"]),
            changes.join(", ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shows_state_counts_and_nonzero_situations() {
        let s = json!({
            "_id": "r1", "mapping": "m", "state": "SUCCESS", "stage": "COMPLETED_SUCCESS",
            "stageDescription": "reconciliation completed.", "duration": 12,
            "progress": {"source": {"existing": {"processed": 3, "total": "3"}},
                         "target": {"existing": {"processed": 2, "total": "2"}, "created": 1,
                                    "updated": 2, "unchanged": 0, "deleted": 0},
                         "links": {"existing": {"processed": 0, "total": "?"}, "created": 3}},
            "situationSummary": {"ABSENT": 1, "FOUND": 2, "CONFIRMED": 0},
            "statusSummary": {"SUCCESS": 3, "FAILURE": 0},
            "sourceProcessedByNode": {"n1": 3}
        });
        let t = render(&s);
        assert!(t.contains("State     SUCCESS"), "{t}");
        assert!(t.contains("ABSENT"), "{t}");
        assert!(!t.contains("CONFIRMED"), "zero rows are left out: {t}");
        assert!(t.contains("created 1, updated 2"), "{t}");
        assert!(t.contains("Duration  12 ms (417 objects/s)"), "{t}");
    }

    #[test]
    fn durations_read_as_seconds_and_rates_as_whole_objects() {
        let s = json!({"duration": 43990,
            "progress": {"source": {"existing": {"processed": 300000}}}});
        assert!(
            render(&s).contains("Duration  44.0 s (6,820 objects/s)"),
            "{}",
            render(&s)
        );
        let empty = json!({"duration": 5, "progress": {}});
        assert!(
            render(&empty).contains("Duration  5 ms\n"),
            "{}",
            render(&empty)
        );
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn the_plan_lists_each_operation_with_its_changes() {
        let plan = render_plan(&[json!({
            "situation": "FOUND", "action": "UPDATE", "sourceId": "SCARTER",
            "targetId": "scarter@example.com",
            "diff": [{"operation": "replace", "field": "/lastname", "oldValue": "Carder", "value": "Carter"}]
        })]);
        assert!(plan.contains("replace /lastname=Carter"), "{plan}");
        assert!(plan.contains("SCARTER"), "{plan}");
    }
}
