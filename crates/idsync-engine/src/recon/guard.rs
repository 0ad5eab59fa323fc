//! The blast-radius guard (`safety`, docs/configuration.md#mappings): at most `maxDeletes` DELETE
//! and `maxUnlinks` UNLINK actions execute in a run; the one that would exceed a limit does not
//! run, and the run ends FAILED naming the limit and the counts. `minSourceSize` is checked when
//! the source phase ends.
//!
//! The counts are kept per node in memory and re-read from the run's committed counters before
//! each source page is assessed ([`SafetyGuard::reseed`]): pages are assessed in turn, once
//! every earlier page has committed (ADR 0007), so the counts are then the whole cluster's and
//! the chunk's settle walk admits its actions in source order. The limit is exact on one node
//! and on many.

use crate::error::EngineResult;
use crate::pipeline::stats::keys;
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

    /// Sets the counts to the run's committed ones. Called before a page is assessed, when every
    /// earlier page has committed and none after it has (ADR 0007): the counts are then those
    /// of the whole cluster, and the limit is exact however many nodes share the run.
    pub async fn reseed(&self, repo: &Arc<dyn Repository>, run_id: &str) -> EngineResult<()> {
        if self.max_deletes.is_none() && self.max_unlinks.is_none() {
            return Ok(());
        }
        let counters = repo.run_counters(run_id).await?;
        let committed = |a: Action| counters.totals.get(&keys::action(a)).copied().unwrap_or(0);
        self.deletes
            .store(committed(Action::Delete), Ordering::SeqCst);
        self.unlinks
            .store(committed(Action::Unlink), Ordering::SeqCst);
        Ok(())
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
