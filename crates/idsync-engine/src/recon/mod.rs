//! Reconciliation: runs of one mapping, as page jobs in the repository.

pub mod stats;
pub mod summary;
