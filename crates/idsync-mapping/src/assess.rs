//! Situation assessment (docs/configuration.md#mappings–§2.4) as pure functions over facts.
//!
//! The fact types mirror the decision trees: each enum level is one question the engine must
//! answer (and one thing it must fetch) before the next level matters. The engine therefore
//! learns the fetch order from the types: qualification, then the link, then (only when there
//! is no link) correlation, then (only for one correlated candidate of a qualified source) the
//! candidate's own link. This module does no I/O and runs no scripts: qualification results and
//! correlation results are computed by the caller (with [`crate::CompiledMapping`]) and passed in.

use idsync_core::Situation;

/// What correlation produced for one source and one link qualifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorrelationOutcome {
    /// Correlation did not run: no query/script for this qualifier, or the target query ran,
    /// returned no ids and `correlateEmptyTargetSet` is false (see [`correlation_skipped`]).
    /// Assessed exactly like an empty result.
    Skipped,
    /// Correlation ran and found nothing.
    None,
    /// Exactly one candidate.
    One {
        target_id: String,
        /// Whether a link of this mapping's link type and qualifier already points at
        /// `target_id` with a non-null source. Only consulted for a QUALIFIED source (a repo
        /// query, never the prefetched map); for an unqualified source it is ignored, so the
        /// engine may pass `false` without querying.
        already_linked: bool,
    },
    /// Two or more candidates, in the order correlation returned them.
    Many(Vec<String>),
}

impl CorrelationOutcome {
    /// The outcome of a correlation that returned `ids` (in order). For exactly one id,
    /// `already_linked` is asked only then, so the engine runs its link query only when the
    /// decision table needs it.
    pub fn from_candidates<E>(
        ids: Vec<String>,
        already_linked: impl FnOnce(&str) -> Result<bool, E>,
    ) -> Result<Self, E> {
        match <[String; 1]>::try_from(ids) {
            Ok([target_id]) => {
                let already_linked = already_linked(&target_id)?;
                Ok(CorrelationOutcome::One {
                    target_id,
                    already_linked,
                })
            }
            Err(ids) if ids.is_empty() => Ok(CorrelationOutcome::None),
            Err(ids) => Ok(CorrelationOutcome::Many(ids)),
        }
    }
}

/// Whether correlation is skipped for a qualifier (docs/configuration.md#mappings, `correlateEmptyTargetSet`):
/// it is when the mapping has no correlation query or script for that qualifier, or when the
/// recon target query ran, returned zero ids and `correlateEmptyTargetSet` is false.
/// `target_query_count` is `None` when no target query ran (implicit sync, `reconById`,
/// `runTargetPhase=false`): then the empty-target-set rule cannot apply.
pub fn correlation_skipped(
    has_correlation_for_qualifier: bool,
    target_query_count: Option<usize>,
    correlate_empty_target_set: bool,
) -> bool {
    !has_correlation_for_qualifier || (target_query_count == Some(0) && !correlate_empty_target_set)
}

/// The link of a source object, and what follows from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceLink {
    /// A link exists (always absent when `enableLinking` is false).
    Linked {
        target_id: String,
        /// Whether the linked target exists (preloaded, in the recon target-id set when the
        /// target query ran, or else read).
        target_exists: bool,
    },
    /// No link: correlation decides.
    Unlinked(CorrelationOutcome),
}

/// The facts of a source object that EXISTS (a missing source goes to [`assess_delete`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFacts {
    /// `validSource` AND `sourceCondition` for this qualifier.
    pub qualifies: bool,
    pub link: SourceLink,
}

/// The result of an assessment: the situation, the current target and ambiguous candidates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    pub situation: Situation,
    /// The target the action applies to: the linked target, or the single correlated one.
    pub target_id: Option<String>,
    /// The candidates of an ambiguous correlation (`ambiguousTargetIds` in the audit).
    pub ambiguous_target_ids: Vec<String>,
}

impl Assessment {
    fn bare(situation: Situation) -> Self {
        Self {
            situation,
            target_id: None,
            ambiguous_target_ids: Vec::new(),
        }
    }

    fn with_target(situation: Situation, target_id: &str) -> Self {
        Self {
            situation,
            target_id: Some(target_id.to_string()),
            ambiguous_target_ids: Vec::new(),
        }
    }

    fn ambiguous(situation: Situation, ids: &[String]) -> Self {
        Self {
            situation,
            target_id: None,
            ambiguous_target_ids: ids.to_vec(),
        }
    }

    /// The target ids the source phase claims (docs/configuration.md#mappings, "target claiming"): the linked
    /// or correlated target, or every ambiguous candidate. The recon removes them from its
    /// remaining-target set so the target phase skips them.
    pub fn claimed_target_ids(&self) -> Vec<&str> {
        self.target_id
            .iter()
            .map(String::as_str)
            .chain(self.ambiguous_target_ids.iter().map(String::as_str))
            .collect()
    }
}

/// Source-side assessment (docs/configuration.md#mappings) of an existing source for one link qualifier.
pub fn assess_source(facts: &SourceFacts) -> Assessment {
    match (&facts.link, facts.qualifies) {
        (
            SourceLink::Linked {
                target_id,
                target_exists: true,
            },
            true,
        ) => Assessment::with_target(Situation::Confirmed, target_id),
        (
            SourceLink::Linked {
                target_id,
                target_exists: false,
            },
            true,
        ) => Assessment::with_target(Situation::Missing, target_id),
        // An unqualified linked source is UNQUALIFIED whether or not its target still exists;
        // the target id is kept so a DELETE/UNLINK knows what to act on.
        (SourceLink::Linked { target_id, .. }, false) => {
            Assessment::with_target(Situation::Unqualified, target_id)
        }
        (SourceLink::Unlinked(outcome), true) => match outcome {
            CorrelationOutcome::Skipped | CorrelationOutcome::None => {
                Assessment::bare(Situation::Absent)
            }
            CorrelationOutcome::One {
                target_id,
                already_linked: false,
            } => Assessment::with_target(Situation::Found, target_id),
            CorrelationOutcome::One {
                target_id,
                already_linked: true,
            } => Assessment::with_target(Situation::FoundAlreadyLinked, target_id),
            CorrelationOutcome::Many(ids) => many(true, ids),
        },
        (SourceLink::Unlinked(outcome), false) => match outcome {
            CorrelationOutcome::Skipped | CorrelationOutcome::None => {
                Assessment::bare(Situation::SourceIgnored)
            }
            // Quirk kept from IDM (docs/migrating-from-idm.md): the correlated, never-linked target of an
            // unqualified source becomes the target, and the default action deletes it.
            CorrelationOutcome::One { target_id, .. } => {
                Assessment::with_target(Situation::Unqualified, target_id)
            }
            CorrelationOutcome::Many(ids) => many(false, ids),
        },
    }
}

/// A `Many` outcome with fewer than two ids is what a careless caller might build from a list
/// (use [`CorrelationOutcome::from_candidates`]); it is assessed by its real length so the
/// table cannot be bypassed. One id of a `Many` has no `already_linked` fact: it counts as not
/// linked.
fn many(qualified: bool, ids: &[String]) -> Assessment {
    match (ids, qualified) {
        ([], true) => Assessment::bare(Situation::Absent),
        ([], false) => Assessment::bare(Situation::SourceIgnored),
        ([one], true) => Assessment::with_target(Situation::Found, one),
        ([one], false) => Assessment::with_target(Situation::Unqualified, one),
        (_, true) => Assessment::ambiguous(Situation::Ambiguous, ids),
        (_, false) => Assessment::ambiguous(Situation::Unqualified, ids),
    }
}

/// Whether a target exists and passes `validTarget`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetState {
    /// The target no longer exists.
    Gone,
    /// The target exists but `validTarget` is false.
    Invalid,
    /// The target exists and `validTarget` is true (or not configured).
    Valid,
}

/// The source at the other end of a target's link, as the target phase finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkedSource {
    /// No link, or a link whose source id is null.
    Unlinked,
    /// A link, and the force-read of `link.sourceId` found nothing.
    Missing,
    /// A link, and the source exists; `valid_source` is `validSource` only (the target phase
    /// does not evaluate `sourceCondition`, docs/migrating-from-idm.md).
    Exists { valid_source: bool },
}

/// The facts of one remaining target id for one qualifier in the target phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetFacts {
    pub target: TargetState,
    pub source: LinkedSource,
}

/// Target-phase assessment (docs/configuration.md#mappings) of one remaining target id and qualifier. The
/// engine already holds the target id, so only the situation is returned.
pub fn assess_target(facts: &TargetFacts) -> Situation {
    match (facts.target, facts.source) {
        (TargetState::Gone | TargetState::Invalid, _) => Situation::TargetIgnored,
        (TargetState::Valid, LinkedSource::Unlinked) => Situation::Unassigned,
        (TargetState::Valid, LinkedSource::Missing) => Situation::SourceMissing,
        (
            TargetState::Valid,
            LinkedSource::Exists {
                valid_source: false,
            },
        ) => Situation::Unqualified,
        (TargetState::Valid, LinkedSource::Exists { valid_source: true }) => Situation::Confirmed,
    }
}

/// The correlation of a deleted source's `oldValue` (docs/configuration.md#mappings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OldValueFacts {
    /// `validSource` evaluated on `oldValue`.
    pub valid_source: bool,
    /// Correlation run with `oldValue` as the source. `already_linked` is not consulted.
    pub correlation: CorrelationOutcome,
}

/// The facts of a source that is gone (implicit-sync delete, liveSync DELETE delta, or a recon
/// source that disappeared mid-run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteFacts {
    Linked {
        target_id: String,
        target: TargetState,
    },
    /// No link; `old_value` is `None` when no `oldValue` was given (always so for liveSync).
    Unlinked { old_value: Option<OldValueFacts> },
}

/// Delete-branch assessment (docs/configuration.md#mappings).
pub fn assess_delete(facts: &DeleteFacts) -> Assessment {
    match facts {
        DeleteFacts::Linked { target_id, target } => Assessment::with_target(
            match target {
                TargetState::Valid => Situation::SourceMissing,
                TargetState::Invalid => Situation::TargetIgnored,
                TargetState::Gone => Situation::LinkOnly,
            },
            target_id,
        ),
        DeleteFacts::Unlinked { old_value: None } => Assessment::bare(Situation::AllGone),
        DeleteFacts::Unlinked {
            old_value: Some(old),
        } => delete_correlated(old.valid_source, &old.correlation),
    }
}

fn delete_correlated(valid: bool, outcome: &CorrelationOutcome) -> Assessment {
    let ids: &[String] = match outcome {
        CorrelationOutcome::Skipped | CorrelationOutcome::None => &[],
        CorrelationOutcome::One { target_id, .. } => std::slice::from_ref(target_id),
        CorrelationOutcome::Many(ids) => ids,
    };
    match (ids, valid) {
        ([], _) => Assessment::bare(Situation::AllGone),
        ([one], true) => Assessment::with_target(Situation::Unassigned, one),
        ([one], false) => Assessment::with_target(Situation::TargetIgnored, one),
        (_, true) => Assessment::ambiguous(Situation::Ambiguous, ids),
        (_, false) => Assessment::ambiguous(Situation::Unqualified, ids),
    }
}
