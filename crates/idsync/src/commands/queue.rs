//! `idsync queue list` (docs/cli.md): the queued-sync events of a running server, read with
//! `GET /openidm/sync/queue` page by page (`_pageSize` and the paged-results cookie), printed as
//! a table or, with `--json`, as one event JSON per line.
//!
//! Exit codes: 0 listed (also when the queue is empty); 1 the server could not be reached or
//! refused the request (wrong token, 4xx/5xx), with the reason on stderr; 2 no token at all.

use super::client::{self, Client, Failed};
use crate::cli::{EventStateArg, QueueListArgs};
use anyhow::Result;
use serde_json::Value;
use std::io::Write as _;
use std::process::ExitCode;

/// Events per request.
const PAGE_SIZE: &str = "1000";

/// The table's columns: header and the event field shown under it.
const COLUMNS: [(&str, &str); 8] = [
    ("ID", "_id"),
    ("MAPPING", "mapping"),
    ("RESOURCE ID", "resourceId"),
    ("SYNC ACTION", "syncAction"),
    ("STATE", "state"),
    ("NODE", "nodeId"),
    ("RETRIES LEFT", "remainingRetries"),
    ("CREATED", "createDate"),
];

pub async fn list(args: QueueListArgs) -> Result<ExitCode> {
    Ok(client::exit(run(&args).await))
}

async fn run(args: &QueueListArgs) -> Result<(), Failed> {
    let client = Client::new(&args.server)?;
    let filter = filter(args.mapping.as_deref(), args.state);
    let mut table = Vec::new();
    let mut out = std::io::stdout().lock();
    let mut cookie: Option<String> = None;
    loop {
        let mut query = vec![("_queryFilter", filter.as_str()), ("_pageSize", PAGE_SIZE)];
        if let Some(c) = &cookie {
            query.push(("_pagedResultsCookie", c));
        }
        let page = client.get("sync/queue", &query).await?;
        let events = page["result"].as_array().ok_or_else(|| {
            Failed::new(format!(
                "unexpected answer from {}: no \"result\" array",
                client.base
            ))
        })?;
        for event in events {
            if args.json {
                writeln!(out, "{event}").map_err(|e| Failed::new(format!("stdout: {e}")))?;
            } else {
                table.push(row(event));
            }
        }
        match page["pagedResultsCookie"].as_str() {
            Some(next) if !events.is_empty() => {
                if cookie.as_deref() == Some(next) {
                    return Err(Failed::new(format!(
                        "{} returned the same paged-results cookie twice",
                        client.base
                    )));
                }
                cookie = Some(next.to_string());
            }
            _ => break,
        }
    }
    if !args.json {
        write!(out, "{}", render(&table)).map_err(|e| Failed::new(format!("stdout: {e}")))?;
    }
    out.flush()
        .map_err(|e| Failed::new(format!("stdout: {e}")))?;
    Ok(())
}

/// The CREST filter for the options: `true`, or `mapping eq "M"` and/or `state eq "S"`.
fn filter(mapping: Option<&str>, state: Option<EventStateArg>) -> String {
    let mut parts = Vec::new();
    if let Some(m) = mapping {
        // A JSON string literal is a valid CREST string (JSON escapes).
        parts.push(format!("mapping eq {}", Value::String(m.to_string())));
    }
    if let Some(s) = state {
        parts.push(format!("state eq \"{}\"", s.as_str()));
    }
    if parts.is_empty() {
        "true".to_string()
    } else {
        parts.join(" and ")
    }
}

fn row(event: &Value) -> Vec<String> {
    COLUMNS
        .iter()
        .map(|(_, field)| match (&event[*field], *field) {
            (Value::Null, _) => "-".to_string(),
            (Value::Number(n), "remainingRetries") if n.as_i64() == Some(-1) => {
                "unlimited".to_string()
            }
            (Value::String(s), _) => s.clone(),
            (other, _) => other.to_string(),
        })
        .collect()
}

/// The events as an aligned table with their count.
fn render(rows: &[Vec<String>]) -> String {
    let headers: Vec<&str> = COLUMNS.iter().map(|(h, _)| *h).collect();
    super::table::render(&headers, rows, "event")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filters_quote_the_mapping() {
        assert_eq!(filter(None, None), "true");
        assert_eq!(
            filter(Some("a\"b"), Some(EventStateArg::Acquired)),
            r#"mapping eq "a\"b" and state eq "ACQUIRED""#
        );
        let parsed = idsync_core::filter::parse(&filter(Some("x\\y\"z"), None));
        assert!(parsed.is_ok(), "{parsed:?}");
    }

    #[test]
    fn table_aligns_columns_and_counts() {
        let rows = vec![
            row(&json!({"_id": "e1", "mapping": "m", "resourceId": "u1",
                "syncAction": "notifyCreate", "state": "ACQUIRED", "nodeId": "n1",
                "remainingRetries": 5, "createDate": "2026-01-01T00:00:00.000Z"})),
            row(
                &json!({"_id": "event-2", "mapping": "mapping2", "resourceId": "u2",
                "syncAction": "notifyDelete", "state": "PENDING", "nodeId": null,
                "remainingRetries": -1, "createDate": "2026-01-01T00:00:01.000Z"}),
            ),
        ];
        let text = render(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(
            lines[0].starts_with("ID       MAPPING   RESOURCE ID"),
            "{text}"
        );
        assert!(lines[2].starts_with("event-2  mapping2  u2"), "{text}");
        assert!(
            lines[2].contains(" - ") && lines[2].contains("unlimited"),
            "{text}"
        );
        assert_eq!(lines[3], "2 events");
        assert_eq!(render(&[]).lines().last(), Some("0 events"));
    }
}
