//! The pure mapping engine of idsync: situation assessment (reference §2.2–§2.4), the
//! compiled form of one mapping, property mapping (§1.2), qualification, link qualifiers,
//! correlation queries, policy decisions (§1.3), hooks (§2.6) and the plan diff (SPEC §16).
//!
//! This crate does no I/O and nothing async. The engine gathers facts (links, reads,
//! correlation query results), calls in here, and gets values and enums back; it alone
//! sequences hooks around its writes. Matches over `Situation` and `Action` have no `_` arm,
//! so adding a situation or action fails to compile until every table is updated.

pub mod assess;
mod compiled;
mod condition;
pub mod diff;
pub mod error;
mod hooks;
mod policy;
mod properties;
mod qualify;

pub use assess::{
    Assessment, CorrelationOutcome, DeleteFacts, LinkedSource, OldValueFacts, SourceFacts,
    SourceLink, TargetFacts, TargetState, assess_delete, assess_source, assess_target,
    correlation_skipped,
};
pub use compiled::{CompiledMapping, DEFAULT_QUALIFIER};
pub use diff::{DiffEntry, DiffOperation, diff};
pub use error::{MappingError, Result};
pub use hooks::{HookContext, UpdatePlan};
pub use policy::{Decision, DecisionContext};
pub use properties::PropertyContext;
pub use qualify::{Correlation, is_full_object};
