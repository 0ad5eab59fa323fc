//! The pure domain of idsync: resource paths, JSON pointers and object helpers, the CREST
//! query-filter language (AST, parser, printer, in-memory evaluation), query requests and pages,
//! situations, actions, reconciliation states and stages, and the one `ErrorCode` enum.
//!
//! This crate must stay free of I/O: no tokio, no database, no network, no file system. Every
//! other crate depends on it, so it changes slowly and carefully.

pub mod error;
pub mod filter;
pub mod path;
pub mod pointer;
pub mod query;
pub mod recon;
pub mod secrets;
pub mod situation;

pub use error::{ErrorCode, HasErrorCode};
pub use filter::{CompareOp, Filter};
pub use path::{PathError, ResourcePath};
pub use pointer::JsonPointer;
pub use query::{QueryPage, QueryRequest, SortKey, TotalPolicy};
pub use recon::{ReconStage, ReconState};
pub use situation::{Action, Situation};
