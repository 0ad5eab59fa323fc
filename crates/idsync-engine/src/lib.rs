//! The idsync engine: reconciliation runs (phases, page jobs, workers, statistics, summaries,
//! cancel, dry runs, the safety guard), and — as later issues add them — implicit and queued
//! synchronization, liveSync, the scheduler and cluster membership.
//!
//! It owns *when* and *where* things happen; *what* a mapping decides is `idsync-mapping`'s
//! (pure), *how* data is stored is `idsync-repo`'s, *how* systems are reached is
//! `idsync-connectors`'. Every run is rows in the repository, claimed as jobs with leases and
//! fencing tokens, so one node and a cluster run the same code.

pub mod cluster;
mod engine;
pub mod error;
mod faults;
pub mod links;
pub mod managed_scripts;
pub mod managed_set;
pub mod metered;
mod pipeline;
pub mod recon;
pub mod relationships;
pub mod resources;
pub mod scheduler;
pub mod sync;
pub mod worker;

pub use engine::{Engine, script_errors};
pub use error::{EngineError, EngineResult};
pub use managed_scripts::{Caller, HookError, ManagedScripts};
pub use recon::effective::ReconOptions;
pub use resources::Resources;
