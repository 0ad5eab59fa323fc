//! Reconciliation run states and stages with IDM's exact description strings (docs/rest.md#reconciliation).

use serde::{Deserialize, Serialize};

/// The coarse state of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReconState {
    Active,
    Success,
    Failed,
    Canceled,
}

impl ReconState {
    pub fn as_str(self) -> &'static str {
        match self {
            ReconState::Active => "ACTIVE",
            ReconState::Success => "SUCCESS",
            ReconState::Failed => "FAILED",
            ReconState::Canceled => "CANCELED",
        }
    }
}

/// The fine-grained stage of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReconStage {
    ActiveInitialized,
    ActiveQueryEntries,
    ActiveQuerySourcePage,
    ActiveReconcilingSource,
    ActiveReconcilingSourcePage,
    ActiveReconcilingTarget,
    ActiveLinkCleanup,
    ActiveProcessingResults,
    ActiveCanceling,
    CompletedSuccess,
    CompletedCanceled,
    CompletedFailed,
}

impl ReconStage {
    pub const ALL: [ReconStage; 12] = [
        ReconStage::ActiveInitialized,
        ReconStage::ActiveQueryEntries,
        ReconStage::ActiveQuerySourcePage,
        ReconStage::ActiveReconcilingSource,
        ReconStage::ActiveReconcilingSourcePage,
        ReconStage::ActiveReconcilingTarget,
        ReconStage::ActiveLinkCleanup,
        ReconStage::ActiveProcessingResults,
        ReconStage::ActiveCanceling,
        ReconStage::CompletedSuccess,
        ReconStage::CompletedCanceled,
        ReconStage::CompletedFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReconStage::ActiveInitialized => "ACTIVE_INITIALIZED",
            ReconStage::ActiveQueryEntries => "ACTIVE_QUERY_ENTRIES",
            ReconStage::ActiveQuerySourcePage => "ACTIVE_QUERY_SOURCE_PAGE",
            ReconStage::ActiveReconcilingSource => "ACTIVE_RECONCILING_SOURCE",
            ReconStage::ActiveReconcilingSourcePage => "ACTIVE_RECONCILING_SOURCE_PAGE",
            ReconStage::ActiveReconcilingTarget => "ACTIVE_RECONCILING_TARGET",
            ReconStage::ActiveLinkCleanup => "ACTIVE_LINK_CLEANUP",
            ReconStage::ActiveProcessingResults => "ACTIVE_PROCESSING_RESULTS",
            ReconStage::ActiveCanceling => "ACTIVE_CANCELING",
            ReconStage::CompletedSuccess => "COMPLETED_SUCCESS",
            ReconStage::CompletedCanceled => "COMPLETED_CANCELED",
            ReconStage::CompletedFailed => "COMPLETED_FAILED",
        }
    }

    /// IDM's `stageDescription` string, verbatim.
    pub fn description(self) -> &'static str {
        match self {
            ReconStage::ActiveInitialized => "initialized",
            ReconStage::ActiveQueryEntries => "querying sets of entries to reconcile",
            ReconStage::ActiveQuerySourcePage => "querying source entries reconcile",
            ReconStage::ActiveReconcilingSource => "reconciling source entries",
            ReconStage::ActiveReconcilingSourcePage => "reconciling page of source entries",
            ReconStage::ActiveReconcilingTarget => "reconciling target entries",
            ReconStage::ActiveLinkCleanup => "link clean-up",
            ReconStage::ActiveProcessingResults => "processing reconciling results",
            ReconStage::ActiveCanceling => "aborting reconciling",
            ReconStage::CompletedSuccess => "reconciliation completed.",
            ReconStage::CompletedCanceled => "reconciliation aborted.",
            ReconStage::CompletedFailed => "reconciliation failed",
        }
    }

    pub fn state(self) -> ReconState {
        match self {
            ReconStage::CompletedSuccess => ReconState::Success,
            ReconStage::CompletedCanceled => ReconState::Canceled,
            ReconStage::CompletedFailed => ReconState::Failed,
            ReconStage::ActiveInitialized
            | ReconStage::ActiveQueryEntries
            | ReconStage::ActiveQuerySourcePage
            | ReconStage::ActiveReconcilingSource
            | ReconStage::ActiveReconcilingSourcePage
            | ReconStage::ActiveReconcilingTarget
            | ReconStage::ActiveLinkCleanup
            | ReconStage::ActiveProcessingResults
            | ReconStage::ActiveCanceling => ReconState::Active,
        }
    }

    pub fn is_completed(self) -> bool {
        self.state() != ReconState::Active
    }

    /// IDM's stage transition rule (`ReconciliationContext.setStage`): a completed stage is
    /// frozen; once canceled, an active stage becomes ACTIVE_CANCELING and a completed one
    /// COMPLETED_CANCELED.
    pub fn transition(self, requested: ReconStage, canceled: bool) -> ReconStage {
        if self.is_completed() {
            self
        } else if canceled {
            if requested.is_completed() {
                ReconStage::CompletedCanceled
            } else {
                ReconStage::ActiveCanceling
            }
        } else {
            requested
        }
    }
}
