//! The blast-radius guard (`safety`, docs/configuration.md#mappings): at most `maxDeletes` DELETE
//! and `maxUnlinks` UNLINK actions execute in a run; the one that would exceed a limit does not
//! run, and the run ends FAILED naming the limit and the counts. `minSourceSize` is checked when
//! the source phase ends.
//!
//! The counts are kept per node in memory, seeded from the run's committed counters when the
//! node starts working on the run. On a single node that is exact. In a cluster two nodes may
//! each execute up to the remaining allowance before seeing the other's commits; the limit is
//! then exceeded by at most one page's worth per extra node (documented in the README).

use super::stats::keys;
use crate::error::EngineResult;
use idsync_config::{Limit, Safety};
use idsync_core::Action;
use idsync_repo::Repository;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

#[derive(Debug, Default)]
pub struct SafetyGuard {
    max_deletes: Option<i64>,
    max_unlinks: Option<i64>,
    pub min_source_size: Option<u64>,
    deletes: AtomicI64,
    unlinks: AtomicI64,
    describe_deletes: String,
    describe_unlinks: String,
}

fn resolve(limit: Option<Limit>, population: Option<i64>) -> (Option<i64>, String) {
    match (limit, population) {
        (None, _) => (None, String::new()),
        (Some(Limit::Count(n)), _) => (Some(n as i64), format!("{n}")),
        (Some(Limit::Percent(p)), Some(pop)) => {
            let n = ((p / 100.0) * pop as f64).floor() as i64;
            (Some(n), format!("{p}% of {pop} = {n}"))
        }
        // A percentage of an unknown population: be safe, allow nothing.
        (Some(Limit::Percent(p)), None) => (Some(0), format!("{p}% of an unknown count = 0")),
    }
}

impl SafetyGuard {
    pub async fn new(
        safety: Option<&Safety>,
        totals: &Value,
        repo: &Arc<dyn Repository>,
        run_id: &str,
    ) -> EngineResult<Self> {
        let Some(s) = safety else {
            return Ok(Self::default());
        };
        let targets = totals.get("targetsAtStart").and_then(Value::as_i64);
        let links = totals.get("linksAtStart").and_then(Value::as_i64);
        let (max_deletes, describe_deletes) = resolve(s.max_deletes, targets);
        let (max_unlinks, describe_unlinks) = resolve(s.max_unlinks, links);
        let counters = repo.run_counters(run_id).await?;
        let committed = |a: Action| counters.totals.get(&keys::action(a)).copied().unwrap_or(0);
        Ok(Self {
            max_deletes,
            max_unlinks,
            min_source_size: s.min_source_size,
            deletes: AtomicI64::new(committed(Action::Delete)),
            unlinks: AtomicI64::new(committed(Action::Unlink)),
            describe_deletes,
            describe_unlinks,
        })
    }

    /// Takes one unit of the action's allowance; `Err(message)` when the limit is reached.
    pub fn admit(&self, action: Action) -> Result<(), String> {
        let (max, counter, name, describe) = match action {
            Action::Delete => (
                self.max_deletes,
                &self.deletes,
                "maxDeletes",
                &self.describe_deletes,
            ),
            Action::Unlink => (
                self.max_unlinks,
                &self.unlinks,
                "maxUnlinks",
                &self.describe_unlinks,
            ),
            Action::Create
            | Action::Update
            | Action::Link
            | Action::Exception
            | Action::Ignore
            | Action::Report
            | Action::Noreport
            | Action::Async => return Ok(()),
        };
        let Some(max) = max else {
            return Ok(());
        };
        let prev = counter.fetch_add(1, Ordering::SeqCst);
        if prev < max {
            Ok(())
        } else {
            counter.fetch_sub(1, Ordering::SeqCst);
            Err(format!(
                "safety limit {name} ({describe}) reached: {prev} {} executed, stopping before the next",
                action.as_str()
            ))
        }
    }
}
