//! Per-object accounting: what one object's operations (and so one chunk, one page or one sync)
//! add to the statistics, as a delta of named counters, and the counter names themselves. The
//! run-level sum of the committed counters is `recon::summary::RunCounters`.
//!
//! Counters are additive so that pages committed by different nodes, in any order, add up to
//! the run's totals ("a page's statistics commit with its work"). Minimum and maximum
//! durations are not additive; they are kept per node as the node's running extreme, written as
//! the difference to what the node wrote before, so the per-node sum *is* the node's extreme.

use idsync_core::{Action, Situation};
use std::collections::BTreeMap;
use std::time::Duration;

/// Counter names. They are the storage format of run statistics: never rename one.
pub mod keys {
    pub const SOURCE_PROCESSED: &str = "source.processed";
    pub const TARGET_PROCESSED: &str = "target.processed";
    pub const TARGET_CREATED: &str = "target.created";
    pub const TARGET_UPDATED: &str = "target.updated";
    pub const TARGET_DELETED: &str = "target.deleted";
    pub const TARGET_UNCHANGED: &str = "target.unchanged";
    pub const LINKS_PROCESSED: &str = "links.processed";
    pub const LINKS_CREATED: &str = "links.created";
    pub const STATUS_SUCCESS: &str = "status.SUCCESS";
    pub const STATUS_FAILURE: &str = "status.FAILURE";
    pub const SOURCE_TOTAL: &str = "source.total";
    /// Source objects read, once each whatever the qualifiers; becomes [`SOURCE_TOTAL`] when the
    /// source could not be counted up front and its last page is in.
    pub const SOURCE_READ: &str = "source.read";
    pub const TARGET_TOTAL: &str = "target.total";
    pub const LINKS_TOTAL: &str = "links.total";

    pub fn situation(s: idsync_core::Situation) -> String {
        format!("situation.{}", s.as_str())
    }
    pub fn action(a: idsync_core::Action) -> String {
        format!("action.{}", a.as_str())
    }
    pub fn duration(name: &str, part: &str) -> String {
        format!("duration.{name}.{part}")
    }
}

/// What happened to the target object of one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetEffect {
    None,
    Created,
    Updated,
    Unchanged,
    Deleted,
}

/// The outcome of one operation (one id, one link qualifier) for the statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct OpOutcome {
    pub situation: Situation,
    pub action: Action,
    pub had_source: bool,
    pub had_target: bool,
    pub link_existed: bool,
    pub link_created: bool,
    pub target_effect: TargetEffect,
    pub failed: bool,
}

/// Statistics of one unit of work, turned into counter deltas at commit.
#[derive(Debug, Clone, Default)]
pub struct StatsDelta {
    counters: BTreeMap<String, i64>,
    durations: BTreeMap<&'static str, DurationAcc>,
}

#[derive(Debug, Clone, Copy, Default)]
struct DurationAcc {
    count: i64,
    sum_us: i64,
    sum_sq_ms: f64,
    min_us: Option<i64>,
    max_us: i64,
}

impl StatsDelta {
    pub fn add(&mut self, key: impl Into<String>, n: i64) {
        *self.counters.entry(key.into()).or_insert(0) += n;
    }

    /// Counts one operation exactly as IDM's `ReconciliationStatistic.processed` does, plus
    /// idsync's target created/updated/unchanged/deleted split.
    pub fn record(&mut self, o: &OpOutcome) {
        self.add(keys::situation(o.situation), 1);
        self.add(keys::action(o.action), 1);
        self.add(
            if o.failed {
                keys::STATUS_FAILURE
            } else {
                keys::STATUS_SUCCESS
            },
            1,
        );
        if o.had_source {
            self.add(keys::SOURCE_PROCESSED, 1);
        }
        if o.had_target || o.target_effect == TargetEffect::Created {
            if o.action == Action::Create && o.target_effect == TargetEffect::Created {
                self.add(keys::TARGET_CREATED, 1);
            } else {
                self.add(keys::TARGET_PROCESSED, 1);
            }
        }
        match o.target_effect {
            TargetEffect::Updated => self.add(keys::TARGET_UPDATED, 1),
            TargetEffect::Unchanged => self.add(keys::TARGET_UNCHANGED, 1),
            TargetEffect::Deleted => self.add(keys::TARGET_DELETED, 1),
            TargetEffect::Created | TargetEffect::None => {}
        }
        if o.link_existed {
            self.add(keys::LINKS_PROCESSED, 1);
        }
        if o.link_created {
            self.add(keys::LINKS_CREATED, 1);
        }
    }

    /// Times one occurrence of a named step (`sourceQuery`, `onCreateScript`, ...).
    pub fn time(&mut self, name: &'static str, d: Duration) {
        let us = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        let acc = self.durations.entry(name).or_default();
        acc.count += 1;
        acc.sum_us += us;
        let ms = us as f64 / 1000.0;
        acc.sum_sq_ms += ms * ms;
        acc.min_us = Some(acc.min_us.map_or(us, |m| m.min(us)));
        acc.max_us = acc.max_us.max(us);
    }

    pub fn merge(&mut self, other: StatsDelta) {
        for (k, v) in other.counters {
            self.add(k, v);
        }
        for (k, o) in other.durations {
            let acc = self.durations.entry(k).or_default();
            acc.count += o.count;
            acc.sum_us += o.sum_us;
            acc.sum_sq_ms += o.sum_sq_ms;
            acc.min_us = match (acc.min_us, o.min_us) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            acc.max_us = acc.max_us.max(o.max_us);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.counters.is_empty() && self.durations.is_empty()
    }

    pub fn get(&self, key: &str) -> i64 {
        self.counters.get(key).copied().unwrap_or(0)
    }

    /// The additive counters of this delta. `extremes` remembers, per duration, the min/max this
    /// node has already written for the run, and is updated.
    pub fn into_counters(self, extremes: &mut NodeExtremes) -> BTreeMap<String, i64> {
        let mut out = self.counters;
        for (name, acc) in self.durations {
            *out.entry(keys::duration(name, "count")).or_insert(0) += acc.count;
            *out.entry(keys::duration(name, "sum_us")).or_insert(0) += acc.sum_us;
            // Squares in 1/1000 ms² units keep the standard deviation precise enough in i64.
            *out.entry(keys::duration(name, "sumsq_ums")).or_insert(0) +=
                (acc.sum_sq_ms * 1000.0).round() as i64;
            let prev = extremes.0.entry(name).or_insert((None, 0));
            let new_min = match (prev.0, acc.min_us) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let new_max = prev.1.max(acc.max_us);
            let min_delta = new_min.unwrap_or(0) - prev.0.unwrap_or(0);
            if min_delta != 0 {
                *out.entry(keys::duration(name, "min_us")).or_insert(0) += min_delta;
            }
            if new_max != prev.1 {
                *out.entry(keys::duration(name, "max_us")).or_insert(0) += new_max - prev.1;
            }
            *prev = (new_min, new_max);
        }
        out
    }
}

/// Per node and run: the duration extremes this node has written so far.
#[derive(Debug, Clone, Default)]
pub struct NodeExtremes(BTreeMap<&'static str, (Option<i64>, i64)>);

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(situation: Situation, action: Action) -> OpOutcome {
        OpOutcome {
            situation,
            action,
            had_source: true,
            had_target: false,
            link_existed: false,
            link_created: false,
            target_effect: TargetEffect::None,
            failed: false,
        }
    }

    #[test]
    fn a_create_counts_as_target_created_and_link_created() {
        let mut d = StatsDelta::default();
        d.record(&OpOutcome {
            link_created: true,
            target_effect: TargetEffect::Created,
            ..outcome(Situation::Absent, Action::Create)
        });
        assert_eq!(d.get(keys::TARGET_CREATED), 1);
        assert_eq!(d.get(keys::TARGET_PROCESSED), 0);
        assert_eq!(d.get(keys::LINKS_CREATED), 1);
        assert_eq!(d.get(keys::SOURCE_PROCESSED), 1);
        assert_eq!(d.get("situation.ABSENT"), 1);
        assert_eq!(d.get(keys::STATUS_SUCCESS), 1);
    }

    #[test]
    fn a_confirmed_unchanged_update_counts_existing_target_and_link() {
        let mut d = StatsDelta::default();
        d.record(&OpOutcome {
            had_target: true,
            link_existed: true,
            target_effect: TargetEffect::Unchanged,
            ..outcome(Situation::Confirmed, Action::Update)
        });
        assert_eq!(d.get(keys::TARGET_PROCESSED), 1);
        assert_eq!(d.get(keys::TARGET_UNCHANGED), 1);
        assert_eq!(d.get(keys::LINKS_PROCESSED), 1);
    }
}
