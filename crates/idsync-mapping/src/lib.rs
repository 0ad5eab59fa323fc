//! The pure mapping engine of idsync: situation assessment (docs/configuration.md#mappings–§2.4), the
//! compiled form of one mapping, property mapping (§1.2), qualification, link qualifiers,
//! correlation queries, policy decisions (§1.3), hooks (§2.6) and the plan diff (docs/rest.md).
//!
//! This crate does no I/O and nothing async. The engine gathers facts (links, reads,
//! correlation query results), calls in here, and gets values and enums back; it alone
//! sequences hooks around its writes. Matches over `Situation` and `Action` have no `_` arm,
//! so adding a situation or action fails to compile until every table is updated.
//!
//! One source object in the source phase, per link qualifier ([`CompiledMapping::link_qualifiers`]):
//! 1. [`CompiledMapping::source_qualifies`]; the link (prefetched or queried);
//! 2. without a link: [`correlation_skipped`] (with [`CompiledMapping::has_correlation`]), else
//!    [`CompiledMapping::correlation`] → run the [`Correlation`] on the target →
//!    [`CorrelationOutcome::from_candidates`] (asks for the candidate's link only for one);
//! 3. [`assess_source`] → [`Assessment`] (situation, target id, ambiguous ids, claimed ids);
//! 4. [`CompiledMapping::decide`] → [`Decision`];
//! 5. perform: CREATE uses [`CompiledMapping::prepare_create`], then the engine creates, runs
//!    [`CompiledMapping::on_link`] and links; UPDATE uses [`CompiledMapping::prepare_update`] and
//!    writes only when [`UpdatePlan::changed`]; DELETE runs [`CompiledMapping::on_delete`] then
//!    [`CompiledMapping::on_unlink`]; a dry run records [`UpdatePlan::diff`];
//! 6. [`CompiledMapping::post_action`].
//!
//! The target phase uses [`assess_target`] (with [`CompiledMapping::target_valid`] and
//! [`CompiledMapping::valid_source`]); a deleted source uses [`assess_delete`].

pub mod assess;
mod compiled;
mod condition;
pub mod diff;
pub mod error;
mod hooks;
mod legacy_query;
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
