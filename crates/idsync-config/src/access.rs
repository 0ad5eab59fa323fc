//! Read helpers over a loaded [`Project`] for other crates: the effective configuration as
//! `GET config/<name>` shows it (secrets masked), safety limits against a population, and small
//! constructors. It must not change the project.

use crate::connector::mask_secrets;
use crate::types::*;
use serde_json::{Map, Value, json};

impl Project {
    /// The effective configuration behind `GET config/<name>`: `sync`, `managed`,
    /// `provisioner.openicf/<name>`, `schedule/<name>`, with secrets masked; `None` when unknown.
    pub fn config_json(&self, name: &str) -> Option<Value> {
        let v = match name {
            "sync" => json!({
                "mappings": self.mappings.iter().map(|m| m.raw.clone()).collect::<Vec<_>>(),
                "queueRecovery": {
                    "enabled": self.queue_recovery.enabled,
                    "recoveryInterval": self.queue_recovery.recovery_interval_ms / 1000,
                },
                "queueBalancing": {
                    "enabled": self.queue_balancing.enabled,
                    "balanceInterval": self.queue_balancing.balance_interval_ms / 1000,
                },
            }),
            "managed" => {
                json!({"objects": self.managed.iter().map(|m| m.raw.clone()).collect::<Vec<_>>()})
            }
            other => {
                if let Some(c) = other.strip_prefix("provisioner.openicf/") {
                    self.connectors.get(c)?.raw.clone()
                } else if let Some(s) = other.strip_prefix("schedule/") {
                    self.schedules.get(s)?.raw.clone()
                } else {
                    return None;
                }
            }
        };
        Some(mask_secrets(&v))
    }
}

impl Mapping {
    /// The source page size a run uses (docs/configuration.md#mappings): clustered runs always page
    /// (default 10000), paged runs default to 1000, and `None` means one unpaged query.
    pub fn effective_source_page_size(&self) -> Option<u64> {
        if self.clustered_source_recon_enabled {
            Some(self.recon_source_query_page_size.unwrap_or(10_000))
        } else if self.recon_source_query_paging {
            Some(self.recon_source_query_page_size.unwrap_or(1000))
        } else {
            None
        }
    }

    /// The target page size a run uses; `None` means one unpaged query.
    pub fn effective_target_page_size(&self) -> Option<u64> {
        self.recon_target_query_paging
            .then(|| self.recon_target_query_page_size.unwrap_or(1000))
    }

    /// Whether the target phase runs: the configured value, else true for `recon` and false for
    /// `reconById` (docs/configuration.md#mappings).
    pub fn effective_run_target_phase(&self, by_id: bool) -> bool {
        self.run_target_phase.unwrap_or(!by_id)
    }
}

impl Limit {
    /// The largest number of actions this limit allows out of `population` (targets for deletes,
    /// links for unlinks, counted at the run's start). A percentage rounds down.
    pub fn allowed(self, population: u64) -> u64 {
        match self {
            Limit::Count(n) => n,
            // Percentages are at most 100 and populations far below 2^53: the product is exact
            // enough, and the float-to-int cast saturates.
            Limit::Percent(p) => ((population as f64) * p / 100.0).floor() as u64,
        }
    }
}

impl ScriptSpec {
    /// An inline script with no globals, e.g. for a mapping built in code or a test.
    pub fn inline(source: impl Into<String>, origin: impl Into<String>) -> Self {
        Self {
            source: source.into(),
            file: None,
            globals: Map::new(),
            origin: origin.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_limits_round_down_and_counts_are_absolute() {
        assert_eq!(Limit::Percent(5.0).allowed(1000), 50);
        assert_eq!(Limit::Percent(5.0).allowed(39), 1);
        assert_eq!(Limit::Percent(0.0).allowed(1_000_000), 0);
        assert_eq!(Limit::Percent(100.0).allowed(7), 7);
        assert_eq!(Limit::Count(3).allowed(1), 3);
    }
}
