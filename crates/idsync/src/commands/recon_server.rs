//! `idsync recon list|show|cancel` (docs/cli.md): the runs of a running server, through
//! `GET /openidm/recon`, `GET /openidm/recon/<id>` and `POST /openidm/recon/<id>?_action=cancel`.
//! `show` prints the summary table `idsync recon` prints; `--json` prints what the server
//! answered. Exit codes as every server command (`client.rs`): 0, 1 unreachable or refused
//! (an unknown id is the server's 404), 2 usage.

use super::client::{self, Client, Failed};
use super::summary_table;
use crate::cli::{ReconCommand, ReconListArgs, ReconRunArgs};
use serde_json::Value;
use std::process::ExitCode;

pub async fn run(command: ReconCommand) -> ExitCode {
    client::exit(match command {
        ReconCommand::List(args) => list(&args).await,
        ReconCommand::Show(args) => show(&args).await,
        ReconCommand::Cancel(args) => cancel(&args).await,
    })
}

async fn list(args: &ReconListArgs) -> Result<(), Failed> {
    let client = Client::new(&args.server)?;
    let answer = client.get("recon", &[]).await?;
    let mut runs: Vec<Value> = answer["reconciliations"]
        .as_array()
        .ok_or_else(|| {
            Failed::new(format!(
                "unexpected answer from {}: no \"reconciliations\" array",
                client.base
            ))
        })?
        .iter()
        .filter(|r| args.mapping.as_deref().is_none_or(|m| r["mapping"] == m))
        .cloned()
        .collect();
    // Newest first; `started` is an ISO-8601 instant, which sorts as text.
    runs.sort_by(|a, b| b["started"].as_str().cmp(&a["started"].as_str()));
    if args.json {
        for r in &runs {
            println!("{r}");
        }
    } else {
        print!("{}", render_list(&runs));
    }
    Ok(())
}

async fn show(args: &ReconRunArgs) -> Result<(), Failed> {
    let client = Client::new(&args.server)?;
    let summary = client.get(&run_path(&args.id), &[]).await?;
    if args.json {
        println!("{}", pretty(&summary));
    } else {
        print!("{}", summary_table::render(&summary));
    }
    Ok(())
}

async fn cancel(args: &ReconRunArgs) -> Result<(), Failed> {
    let client = Client::new(&args.server)?;
    let answer = client
        .post(&run_path(&args.id), &[("_action", "cancel")])
        .await?;
    if args.json {
        println!("{}", pretty(&answer));
    } else {
        println!(
            "cancel of run {} {}: in-flight objects finish first; `idsync recon show {}` shows where it ended",
            args.id,
            answer["status"].as_str().unwrap_or("sent"),
            args.id
        );
    }
    Ok(())
}

/// `recon/<id>` with the id percent-encoded as one path segment.
fn run_path(id: &str) -> String {
    let mut url = reqwest::Url::parse("http://x/recon/").expect("a constant URL");
    url.path_segments_mut()
        .expect("an http URL has path segments")
        .pop_if_empty()
        .push(id);
    url.path().trim_start_matches('/').to_string()
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

const COLUMNS: [&str; 7] = [
    "ID",
    "MAPPING",
    "STATE",
    "STAGE",
    "STARTED",
    "DURATION",
    "PROCESSED",
];

fn row(run: &Value) -> [String; 7] {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_string(),
        other => other.to_string(),
    };
    let duration = run["duration"]
        .as_u64()
        .map(summary_table::seconds)
        .unwrap_or_else(|| "-".to_string());
    let processed = run["progress"]["source"]["existing"]["processed"]
        .as_u64()
        .map(summary_table::thousands)
        .unwrap_or_else(|| "-".to_string());
    [
        text(&run["_id"]),
        text(&run["mapping"]),
        text(&run["state"]),
        text(&run["stage"]),
        text(&run["started"]),
        duration,
        processed,
    ]
}

/// The runs as an aligned table with their count.
fn render_list(runs: &[Value]) -> String {
    let rows: Vec<Vec<String>> = runs.iter().map(|r| row(r).to_vec()).collect();
    super::table::render(&COLUMNS, &rows, "run")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_run_id_is_one_path_segment() {
        assert_eq!(run_path("abc-1"), "recon/abc-1");
        assert_eq!(run_path("a/b c"), "recon/a%2Fb%20c");
    }

    #[test]
    fn the_list_aligns_and_counts() {
        let runs = [
            json!({"_id": "r1", "mapping": "hr_user", "state": "SUCCESS",
                "stage": "COMPLETED_SUCCESS", "started": "2026-12-07T10:00:00Z",
                "duration": 43990, "progress": {"source": {"existing": {"processed": 300000}}}}),
            json!({"_id": "r2", "mapping": "m", "state": "ACTIVE", "stage": "ACTIVE_RECONCILING_SOURCE",
                "started": "2026-12-07T11:00:00Z"}),
        ];
        let out = render_list(&runs);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4, "{out}");
        assert!(lines[0].starts_with("ID  MAPPING  "), "{out}");
        assert!(
            lines[1].contains("44.0 s") && lines[1].ends_with("300,000"),
            "{out}"
        );
        let tail: Vec<&str> = lines[2].split_whitespace().rev().take(2).collect();
        assert_eq!(tail, ["-", "-"], "no duration or count yet: {out}");
        assert_eq!(lines[3], "2 runs");
        // Columns line up: STATE starts at the same offset on every line.
        let at = lines[0].find("STATE").unwrap();
        assert_eq!(&lines[1][at..at + 7], "SUCCESS");
        assert_eq!(&lines[2][at..at + 6], "ACTIVE");
    }
}
