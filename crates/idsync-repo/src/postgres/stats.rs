//! Planner statistics of the tables that grow from empty during a first load (`links`,
//! `objects`). A statement prepared while a table is empty or never analyzed may be cached with
//! a generic plan that scans it (measured: a point lookup of a link by its unique key became an
//! index scan over every link of the type with the key as a filter, 60 ms at 300k links; the
//! batch lookup of a page 2.7 s), and nothing replans it unless the table is analyzed. With
//! autovacuum on, autoanalyze does that; with it off (or behind) the repository does: at most
//! every [`CHECK_EVERY`], a cheap look at `pg_stat_user_tables`, and `ANALYZE` of a table that
//! was never analyzed once it has [`MIN_ROWS`] rows, or that changed by half its size since.
//! `ANALYZE` also invalidates the cached plans, so they are made again with the new figures.
//! Nodes sharing the database take turns (a transaction-scoped advisory lock): one node's
//! `ANALYZE` resets the change count the others would act on, so each growth step is analyzed
//! once, not once per node.

use deadpool_postgres::Pool;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const CHECK_EVERY: Duration = Duration::from_secs(2);
const TABLES: [&str; 2] = ["links", "objects"];
/// A never-analyzed table is analyzed from this size on.
pub(crate) const MIN_ROWS: i64 = 1000;
/// The advisory lock key of the check (the migration lock's key, `"idsync"`, and a suffix).
const ANALYZE_LOCK: i64 = 0x6964_7379_6e63_0001;

#[derive(Debug, Default)]
pub(crate) struct StatsKeeper {
    last_check: Mutex<Option<Instant>>,
    running: AtomicBool,
}

impl StatsKeeper {
    /// Starts a check in the background when one is due; never waits for it.
    pub(crate) fn keep_fresh(self: &std::sync::Arc<Self>, pool: &Pool) {
        {
            let Ok(mut last) = self.last_check.lock() else {
                return;
            };
            if last.is_some_and(|t| t.elapsed() < CHECK_EVERY) {
                return;
            }
            *last = Some(Instant::now());
        }
        if self.running.swap(true, Ordering::AcqRel) {
            return;
        }
        let (me, pool) = (self.clone(), pool.clone());
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            self.running.store(false, Ordering::Release);
            return;
        };
        rt.spawn(async move {
            if let Err(e) = analyze_grown(&pool).await {
                tracing::debug!(error = %e, "refreshing planner statistics failed; retrying later");
            }
            me.running.store(false, Ordering::Release);
        });
    }
}

/// Analyzes the tables that need it; returns the ones analyzed.
pub(crate) async fn analyze_grown(pool: &Pool) -> Result<Vec<String>, String> {
    let mut client = pool.get().await.map_err(|e| e.to_string())?;
    let client = client.transaction().await.map_err(|e| e.to_string())?;
    let ours: bool = client
        .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&ANALYZE_LOCK])
        .await
        .map_err(|e| e.to_string())?
        .get(0);
    if !ours {
        // Another node is analyzing; what it does resets the counts read below.
        return Ok(Vec::new());
    }
    let rows = client
        .query(
            "SELECT relname::text, n_live_tup, n_mod_since_analyze, \
                    last_analyze IS NULL AND last_autoanalyze IS NULL \
             FROM pg_stat_user_tables \
             WHERE schemaname = current_schema() AND relname = ANY($1)",
            &[&TABLES.to_vec()],
        )
        .await
        .map_err(|e| e.to_string())?;
    let mut done = Vec::new();
    for r in rows {
        let (table, live, changed, never): (String, i64, i64, bool) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        let due = if never {
            live >= MIN_ROWS
        } else {
            changed >= MIN_ROWS.max(live / 2)
        };
        if due && TABLES.contains(&table.as_str()) {
            client
                .batch_execute(&format!("ANALYZE {table}"))
                .await
                .map_err(|e| e.to_string())?;
            tracing::debug!(table, rows = live, "planner statistics refreshed");
            done.push(table);
        }
    }
    client.commit().await.map_err(|e| e.to_string())?;
    Ok(done)
}
