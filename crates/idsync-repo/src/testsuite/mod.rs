//! The conformance suite every backend must pass, written once against the [`Repository`]
//! trait and instantiated by each backend's test file with [`crate::conformance_suite!`]:
//!
//! ```ignore
//! struct Sqlite;
//! #[async_trait::async_trait]
//! impl idsync_repo::testsuite::Backend for Sqlite { async fn fresh(&self) -> (Arc<dyn Repository>, String) { ... } }
//! idsync_repo::conformance_suite!(Sqlite);
//! ```
//!
//! It is test code compiled only under `cfg(test)` or the `testsuite` feature; it must not be
//! used by the product. Backends name what `ensure_indexes` builds `ix_obj_*` (PostgreSQL's
//! expression indexes) or `object_keys` (SQLite's key rows); the EXPLAIN test looks for those.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod cluster;
pub mod data;
pub mod objects;
pub mod records;

pub use cluster::*;
pub use objects::*;
pub use records::*;

use crate::repository::Repository;
use std::sync::Arc;

/// Creates empty repositories for the suite.
#[async_trait::async_trait]
pub trait Backend: Send + Sync {
    /// A fresh, empty, migrated repository and the URL it was opened from (each call a new
    /// database/file, so tests do not see each other's rows).
    async fn fresh(&self) -> (Arc<dyn Repository>, String);
}

/// Generates one `#[tokio::test]` per conformance case for a backend expression implementing
/// [`Backend`].
#[macro_export]
macro_rules! conformance_suite {
    ($backend:expr) => {
        $crate::conformance_suite!(@cases $backend;
            objects_crud, change_set_is_atomic, concurrent_change_sets_stay_atomic_each,
            managed_write_and_event_are_atomic,
            paging_is_stable_under_concurrent_inserts, filter_matches_in_memory_evaluator,
            sort_fields_offsets_totals, bad_queries_are_rejected, eq_query_uses_index,
            fenced_commit_after_lease_loss, concurrent_claimers_never_share_a_job,
            job_lifecycle, recovered_jobs_are_claimed_first, nodes, locks, links, runs_one_active_per_mapping, run_counters_add_up,
            prune_runs, plan_queries, target_registry, create_intents, queue_order_and_states, dead_letters,
            dead_letter_replay_is_atomic, queue_event_deleted_with_its_commit,
            run_end_and_dead_letter_commit_in_change_sets,
            audit, recon_decisions_read_back_as_written, sync_tokens, shared_keys,
            migrations_are_idempotent);
    };
    (@cases $backend:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let backend = $backend;
                $crate::testsuite::$name(&backend).await;
            }
        )*
    };
}
