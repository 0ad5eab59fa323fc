//! The per-object sync pipeline: assess → decide → act → account for one object of one mapping,
//! per link qualifier. Every trigger runs objects through it: a reconciliation's pages
//! (`recon::page`, source and target phase), implicit sync of a changed object and queued sync
//! (`sync`, through `changed.rs`), and an explicit action (`explicit.rs`).
//!
//! It owns one object's facts, decision, action and accounting, and what a chunk of objects
//! looks up in bulk first; *when* objects run, and how their output is committed, is the
//! trigger's.

pub(crate) mod account;
pub(crate) mod act;
pub(crate) mod changed;
pub(crate) mod correlate;
pub(crate) mod ctx;
pub(crate) mod explicit;
pub(crate) mod lookups;
pub(crate) mod object;
pub(crate) mod op;
pub(crate) mod script_reads;
pub(crate) mod settle;
pub(crate) mod stats;
