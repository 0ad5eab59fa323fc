//! `idsync bench queue`: the queued-sync drain rate (BENCHMARKS.md, "Queued sync").
//!
//! It builds a throw-away project in a temp folder — managed type `user`, one connector
//! `target` (a CSV file, or a table of a fresh PostgreSQL database made with `psql` and dropped
//! after), one queued mapping `managedUser_target` — commits N managed users with their queue
//! events in large change sets (as the REST API would, one event per create, but in bulk and
//! before any consumer runs), then starts the queue consumers (`run_queue_consumers`, as
//! `idsync serve` does) and times them until the mapping's queue is empty. It then checks that
//! the target holds N rows and the repository N links, and prints where the time went from the
//! queue's own metrics (poll, execution, delete of the done event, connector create).

use super::generate::{HR_HEADER, hr_row};
use super::setup;
use crate::cli::{BenchQueueArgs, BenchTarget};
use anyhow::{Context, Result, anyhow, bail};
use idsync_engine::sync::Change;
use idsync_engine::sync::queue::run_queue_consumers;
use idsync_repo::{ChangeSet, Op, SyncAction};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

/// The benchmark's mapping.
pub const MAPPING: &str = "managedUser_target";
/// Managed users (and as many events) per pre-fill change set.
const PREFILL_CHUNK: u64 = 10_000;
/// No event drained for this long: the run is stuck (an event failing over and over).
const STALL: Duration = Duration::from_secs(120);

/// What the run created outside the repository, removed when it ends (also on error).
struct Scratch {
    dir: PathBuf,
    keep: bool,
    admin_url: String,
    databases: Vec<String>,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for db in &self.databases {
            if let Err(e) = psql(
                &self.admin_url,
                &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
            ) {
                eprintln!("warning: could not drop the scratch database {db}: {e:#}");
            }
        }
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Runs one SQL statement with `psql` against `url`; returns its unaligned output.
fn psql(url: &str, sql: &str) -> Result<String> {
    let out = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-t",
            "-A",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            sql,
        ])
        .output()
        .context("running psql (the sql target creates its database with psql)")?;
    if !out.status.success() {
        bail!(
            "psql {}: {}",
            setup::redact(url),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `url` with its database name replaced by `db` (query string kept).
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.find('?') {
        Some(i) => (&url[..i], &url[i..]),
        None => (url, ""),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let root = match base[authority_start..].find('/') {
        Some(i) => &base[..authority_start + i],
        None => base,
    };
    format!("{root}/{db}{query}")
}

/// A name unique to this run, usable as an unquoted SQL identifier.
fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}_{nanos}", std::process::id())
}

/// The managed attributes: the generated HR row without its `uid`.
fn attributes() -> &'static [&'static str] {
    &HR_HEADER[1..]
}

fn write_project(dir: &Path, args: &BenchQueueArgs, sql_url: Option<&str>) -> Result<()> {
    let conf = dir.join("conf");
    std::fs::create_dir_all(&conf)?;
    std::fs::create_dir_all(dir.join("data"))?;
    let mut schema = Map::new();
    for a in attributes() {
        let mut p = json!({"type": "string"});
        if *a == "userName" {
            p["index"] = json!(true);
        }
        schema.insert((*a).to_string(), p);
    }
    let managed = json!({"objects": [{"name": "user",
        "schema": {"type": "object", "properties": schema}}]});
    let mut props = Map::new();
    props.insert(
        "uid".into(),
        json!({"type": "string", "nativeName": "__NAME__"}),
    );
    for a in attributes() {
        props.insert((*a).to_string(), json!({"type": "string", "nativeName": a}));
    }
    let object_types = json!({"account": {"id": "__ACCOUNT__", "type": "object",
        "nativeType": "__ACCOUNT__", "properties": props}});
    let connector = match (args.target, sql_url) {
        (BenchTarget::Csv, _) => {
            std::fs::write(
                dir.join("data/target.csv"),
                format!("uid,{}\n", attributes().join(",")),
            )?;
            json!({"name": "target", "connectorRef": {"connectorName": "csv"},
                "configurationProperties": {"csvFile": "data/target.csv", "headerUid": "uid"},
                "objectTypes": object_types})
        }
        (BenchTarget::Sql, Some(url)) => {
            json!({"name": "target", "connectorRef": {"connectorName": "sql"},
                "configurationProperties": {"url": url, "table": "accounts", "keyColumn": "uid",
                    "maxConnections": args.workers.clamp(2, 64)},
                "objectTypes": object_types})
        }
        (BenchTarget::Sql, None) => bail!("the sql target needs its database"),
    };
    let mut properties = vec![json!({"source": "_id", "target": "_id"})];
    properties.extend(
        attributes()
            .iter()
            .map(|a| json!({"source": a, "target": a})),
    );
    let sync = json!({"mappings": [{
        "name": MAPPING,
        "source": "managed/user",
        "target": "system/target/account",
        "queuedSync": {
            "enabled": true,
            "workers": args.workers,
            "pageSize": args.page_size,
            "pollingInterval": args.polling_interval,
            "maxQueueSize": args.max_queue_size,
            "maxRetries": 3,
            "retryDelay": 100,
            "postRetryAction": "dead-letter-queue"
        },
        "properties": properties
    }]});
    for (file, value) in [
        ("managed.json", managed),
        ("provisioner.openicf-target.json", connector),
        ("sync.json", sync),
    ] {
        std::fs::write(conf.join(file), serde_json::to_string_pretty(&value)?)?;
    }
    Ok(())
}

/// The `accounts` table of the sql target: the key and the managed attributes.
fn accounts_ddl() -> String {
    let cols: Vec<String> = attributes()
        .iter()
        .map(|a| format!("\"{a}\" VARCHAR(128)"))
        .collect();
    format!(
        "CREATE TABLE accounts (\"uid\" VARCHAR(64) PRIMARY KEY, {})",
        cols.join(", ")
    )
}

/// Sum of the values of one metric's series (optionally only those with `label`), read from
/// the Prometheus text rendering.
fn metric(text: &str, name: &str, label: Option<(&str, &str)>) -> f64 {
    let want = label.map(|(k, v)| format!("{k}=\"{v}\""));
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, labels) = series.split_at(series.find('{').unwrap_or(series.len()));
            if n != name || want.as_ref().is_some_and(|w| !labels.contains(w.as_str())) {
                return None;
            }
            value.parse::<f64>().ok()
        })
        .fold(0.0, |a, b| a + b)
}

/// Total seconds and count of one histogram (optionally one label value).
fn timer(text: &str, name: &str, label: Option<(&str, &str)>) -> (f64, f64) {
    (
        metric(text, &format!("{name}_sum"), label),
        metric(text, &format!("{name}_count"), label),
    )
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "?".into());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
    format!("{cores} cores, {cpu}, {mem_gib:.0} GiB")
}

pub async fn queue(args: BenchQueueArgs) -> Result<ExitCode> {
    if args.events == 0 {
        bail!("--events must be at least 1");
    }
    // First, so that the engine's connectors and the queue record their timings.
    let metrics =
        idsync_api::metrics::install_recorder().context("installing the metrics recorder")?;
    let suffix = unique_suffix();
    let mut scratch = Scratch {
        dir: std::env::temp_dir().join(format!("idsync-bench-queue-{suffix}")),
        keep: args.keep,
        admin_url: args.pg_admin_url.clone(),
        databases: Vec::new(),
    };
    let sql_url = match args.target {
        BenchTarget::Csv => None,
        BenchTarget::Sql => {
            let db = format!("idsync_bench_target_{suffix}");
            psql(&args.pg_admin_url, &format!("CREATE DATABASE {db}"))?;
            scratch.databases.push(db.clone());
            let url = with_database(&args.pg_admin_url, &db);
            psql(&url, &accounts_ddl())?;
            Some(url)
        }
    };
    let repo_flag = if args.pg_repo {
        let db = format!("idsync_bench_repo_{suffix}");
        psql(&args.pg_admin_url, &format!("CREATE DATABASE {db}"))?;
        scratch.databases.push(db.clone());
        Some(with_database(&args.pg_admin_url, &db))
    } else {
        args.repo.clone()
    };
    write_project(&scratch.dir, &args, sql_url.as_deref())?;
    if args.keep {
        eprintln!("project kept in {}", scratch.dir.display());
    }

    let project = setup::load(&scratch.dir)?;
    let repo = setup::open_repo(&project, repo_flag.as_deref()).await?;
    let repo_label = setup::redact(&setup::repo_url(&project, repo_flag.as_deref()));
    let leftover = repo
        .queue_stats()
        .await?
        .iter()
        .filter(|s| s.mapping == MAPPING)
        .map(|s| s.pending + s.acquired)
        .sum::<u64>();
    if leftover > 0 {
        bail!(
            "the repository {repo_label} already holds {leftover} queue events of {MAPPING}: use a scratch repository"
        );
    }
    let node = format!("bench-queue-{}", std::process::id());
    let engine = setup::engine(project.clone(), repo.clone(), node.clone()).await?;
    let mapping = engine.mapping(MAPPING)?.0;
    let target_set = engine.resources.object_set(&mapping.target)?;
    let load_before = load_average();

    // Pre-fill: the managed users and their events, committed together as the API does.
    let n = args.events;
    let t = Instant::now();
    let mut start = 0;
    while start < n {
        let end = (start + PREFILL_CHUNK).min(n);
        let mut ops = Vec::with_capacity(2 * (end - start) as usize);
        for i in start..end {
            let row = hr_row(i, 1);
            let mut value = Map::new();
            for (k, v) in HR_HEADER.iter().zip(row).skip(1) {
                value.insert((*k).to_string(), Value::String(v));
            }
            let id = idsync_engine::managed_set::new_id();
            let mut stored = value.clone();
            stored.insert("_id".into(), Value::String(id.clone()));
            stored.insert("_rev".into(), Value::String("1".into()));
            let events = engine.queue_events(&Change {
                collection: "managed/user".into(),
                id: id.clone(),
                action: SyncAction::NotifyCreate,
                old: None,
                new: Some(Value::Object(stored)),
            });
            ops.push(Op::CreateObject {
                object_type: "user".into(),
                id,
                value: Value::Object(value),
            });
            ops.extend(events);
        }
        repo.commit(ChangeSet { fence: None, ops }).await?;
        start = end;
    }
    let prefill = t.elapsed();

    // What the consumer's depth gauge (`record_depth`, after every poll) pays per scan.
    let ts = Instant::now();
    repo.queue_stats().await?;
    let stats_ms = ts.elapsed().as_secs_f64() * 1000.0;

    // Drain: the consumers as `idsync serve` runs them, timed until the queue is empty. Progress
    // comes from the queue's own metrics (finished events), which cost no repository read; the
    // repository confirms the end.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let t0 = Instant::now();
    let consumers = tokio::spawn(run_queue_consumers(engine.clone(), stop_rx));
    let (mut last_done, mut last_change, mut last_print) = (0u64, Instant::now(), Instant::now());
    let (mut stalled, mut interrupted) = (false, false);
    // Ctrl-C stops the run cleanly: the scratch databases and folder are still removed.
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            _ = &mut ctrl_c => {
                interrupted = true;
                break;
            }
        }
        let text = metrics.render();
        let finished = ["release", "discard"]
            .iter()
            .map(|a| {
                metric(
                    &text,
                    "idsync_sync_queue_action_seconds_count",
                    Some(("action", a)),
                )
            })
            .fold(0.0, |x, y| x + y) as u64;
        if finished >= n {
            let remaining: u64 = repo
                .queue_stats()
                .await?
                .iter()
                .filter(|s| s.mapping == MAPPING)
                .map(|s| s.pending + s.acquired)
                .sum();
            if remaining == 0 {
                break;
            }
        }
        if finished != last_done {
            (last_done, last_change) = (finished, Instant::now());
        } else if last_change.elapsed() > STALL {
            stalled = true;
            break;
        }
        if last_print.elapsed() >= Duration::from_secs(5) {
            last_print = Instant::now();
            eprintln!(
                "  {} / {} events drained, {:.0} events/s",
                thousands(finished),
                thousands(n),
                finished as f64 / t0.elapsed().as_secs_f64()
            );
        }
    }
    let drain = t0.elapsed();
    let _ = stop_tx.send(true);
    consumers.await?;
    repo.return_acquired_to_pending(&node).await?;
    repo.release_locks_of_node(&node).await?;
    if interrupted {
        bail!("interrupted after {last_done} of {n} events");
    }
    if stalled {
        bail!(
            "no event drained for {} s, {} of {} done: stopped",
            STALL.as_secs(),
            last_done,
            n
        );
    }

    // Checks and the breakdown.
    let rows = target_set
        .count()
        .await
        .map_err(|e| anyhow!("counting the target: {e}"))?
        .unwrap_or(0);
    let links = repo.count_links(MAPPING).await?;
    let text = metrics.render();
    let a = |action| Some(("action", action));
    let failed = metric(&text, "idsync_sync_queue_action_total", a("failed"));
    let rejected = metric(
        &text,
        "idsync_sync_queue_action_total",
        a("rejected-executions"),
    );
    let (poll_s, polls) = timer(&text, "idsync_sync_queue_poll_pending_events_seconds", None);
    let (_, execs) = timer(&text, "idsync_sync_queue_action_seconds", a("execution"));
    let (batch_s, batches) = timer(&text, "idsync_sync_queue_batch_seconds", None);
    let (batched, _) = timer(&text, "idsync_sync_queue_batch_size", None);
    let (retry_s, _) = timer(
        &text,
        "idsync_sync_queue_action_seconds",
        a("release-for-retry"),
    );
    let (create_s, creates) = timer(
        &text,
        "idsync_connector_call_duration_seconds",
        Some(("op", "create")),
    );
    let ok = rows == n && links == n;
    let rate = n as f64 / drain.as_secs_f64();
    let ms = |s: f64, c: f64| if c > 0.0 { s * 1000.0 / c } else { 0.0 };
    let target_label = match args.target {
        BenchTarget::Csv => "csv (data/target.csv)".to_string(),
        BenchTarget::Sql => format!(
            "sql (PostgreSQL table accounts in {})",
            setup::redact(sql_url.as_deref().unwrap_or("?"))
        ),
    };
    if args.json {
        let summary = json!({
            "events": n, "target": match args.target { BenchTarget::Csv => "csv", BenchTarget::Sql => "sql" },
            "repository": repo.backend(), "workers": args.workers, "pageSize": args.page_size,
            "pollingInterval": args.polling_interval, "maxQueueSize": args.max_queue_size,
            "prefillSeconds": prefill.as_secs_f64(), "drainSeconds": drain.as_secs_f64(),
            "eventsPerSecond": rate, "targetRows": rows, "links": links,
            "failedExecutions": failed, "rejectedExecutions": rejected,
            "seconds": {"poll": poll_s, "batches": batch_s,
                "releaseForRetry": retry_s, "connectorCreate": create_s},
            "counts": {"polls": polls, "executions": execs, "batches": batches,
                "batchedEvents": batched, "connectorCreates": creates},
            "queueStatsMsAtStart": stats_ms, "loadAverageBefore": load_before, "ok": ok,
        });
        println!("{summary}");
    } else {
        println!("machine: {}; load average before: {load_before}", machine());
        println!(
            "setup: repository {repo_label}, target {target_label}, mapping {MAPPING} with workers {}, pageSize {}, pollingInterval {} ms, maxQueueSize {}",
            args.workers, args.page_size, args.polling_interval, args.max_queue_size
        );
        println!(
            "prefill: {} managed users + their queue events in {:.2} s ({} users/s, change sets of {})",
            thousands(n),
            prefill.as_secs_f64(),
            thousands((n as f64 / prefill.as_secs_f64()).round() as u64),
            thousands(PREFILL_CHUNK)
        );
        println!(
            "drain: {} events in {:.2} s = {} events/s",
            thousands(n),
            drain.as_secs_f64(),
            thousands(rate.round() as u64)
        );
        println!(
            "batches (queue metrics): {} of {:.1} events on average, {:.2} ms each = {:.3} ms of a worker per event (connector create {:.3} ms per call); \
             per poll of up to {} events: {:.2} ms ({} polls); one queue_stats scan of the full queue {:.2} ms; failed executions {failed}, rejected submissions {rejected}",
            batches,
            if batches > 0.0 {
                batched / batches
            } else {
                0.0
            },
            ms(batch_s, batches),
            ms(batch_s, execs),
            ms(create_s, creates),
            args.page_size,
            ms(poll_s, polls),
            polls,
            stats_ms
        );
        println!(
            "busy seconds: batches {batch_s:.2}, connector create {create_s:.2}, poll {poll_s:.2}, release for retry {retry_s:.2} (wall {:.2} s x {} workers = {:.2})",
            drain.as_secs_f64(),
            args.workers,
            drain.as_secs_f64() * args.workers as f64
        );
        println!(
            "check: target rows {}, links {} — {}",
            thousands(rows),
            thousands(links),
            if ok { "OK" } else { "FAILED" }
        );
    }
    // Close every connection to the scratch databases before dropping them.
    drop((target_set, engine, repo));
    drop(scratch);
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_swap_only_the_database() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h:1/db?sslmode=disable", "x"),
            "postgres://u:p@h:1/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }

    #[test]
    fn metrics_are_read_by_name_and_label() {
        let text = "# HELP x\n\
            q_sum{mapping=\"m\",action=\"execution\"} 1.5\n\
            q_sum{mapping=\"m\",action=\"release\"} 0.5\n\
            q_count{mapping=\"m\",action=\"execution\"} 3\n\
            q_count_other 9\n";
        assert_eq!(timer(text, "q", Some(("action", "execution"))), (1.5, 3.0));
        assert_eq!(metric(text, "q_sum", None), 2.0);
        assert_eq!(metric(text, "q_count", Some(("action", "nope"))), 0.0);
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
