//! The 13 synchronization situations and the 9 actions (docs/configuration.md#mappings).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A situation: what assessment found for one (source, target, link) triple.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Situation {
    Confirmed,
    Found,
    FoundAlreadyLinked,
    Absent,
    Ambiguous,
    Missing,
    Unqualified,
    SourceIgnored,
    TargetIgnored,
    Unassigned,
    SourceMissing,
    LinkOnly,
    AllGone,
}

impl Situation {
    /// Every situation, in the order the run summary lists them.
    pub const ALL: [Situation; 13] = [
        Situation::SourceMissing,
        Situation::FoundAlreadyLinked,
        Situation::Unqualified,
        Situation::Ambiguous,
        Situation::Confirmed,
        Situation::Found,
        Situation::SourceIgnored,
        Situation::TargetIgnored,
        Situation::Missing,
        Situation::Unassigned,
        Situation::Absent,
        Situation::LinkOnly,
        Situation::AllGone,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Situation::Confirmed => "CONFIRMED",
            Situation::Found => "FOUND",
            Situation::FoundAlreadyLinked => "FOUND_ALREADY_LINKED",
            Situation::Absent => "ABSENT",
            Situation::Ambiguous => "AMBIGUOUS",
            Situation::Missing => "MISSING",
            Situation::Unqualified => "UNQUALIFIED",
            Situation::SourceIgnored => "SOURCE_IGNORED",
            Situation::TargetIgnored => "TARGET_IGNORED",
            Situation::Unassigned => "UNASSIGNED",
            Situation::SourceMissing => "SOURCE_MISSING",
            Situation::LinkOnly => "LINK_ONLY",
            Situation::AllGone => "ALL_GONE",
        }
    }

    /// The default action when no policy matches. Follows IDM's code, not its docs
    /// (docs/configuration.md#mappings): the two IGNORED situations REPORT, ALL_GONE is NOREPORT.
    pub fn default_action(self) -> Action {
        match self {
            Situation::Confirmed | Situation::Found => Action::Update,
            Situation::Absent => Action::Create,
            Situation::Unqualified => Action::Delete,
            Situation::SourceIgnored | Situation::TargetIgnored => Action::Report,
            Situation::AllGone => Action::Noreport,
            Situation::FoundAlreadyLinked
            | Situation::Ambiguous
            | Situation::Missing
            | Situation::Unassigned
            | Situation::SourceMissing
            | Situation::LinkOnly => Action::Exception,
        }
    }
}

impl fmt::Display for Situation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing an unknown situation or action name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} \"{name}\" (known: {known})")]
pub struct UnknownName {
    pub kind: &'static str,
    pub name: String,
    pub known: String,
}

impl FromStr for Situation {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Situation::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| UnknownName {
                kind: "situation",
                name: s.to_string(),
                known: Situation::ALL.map(Situation::as_str).join(", "),
            })
    }
}

/// What to do about a situation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Action {
    Create,
    Update,
    Delete,
    Link,
    Unlink,
    Exception,
    Ignore,
    Report,
    Noreport,
    Async,
}

impl Action {
    pub const ALL: [Action; 10] = [
        Action::Create,
        Action::Update,
        Action::Delete,
        Action::Link,
        Action::Unlink,
        Action::Exception,
        Action::Ignore,
        Action::Report,
        Action::Noreport,
        Action::Async,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "CREATE",
            Action::Update => "UPDATE",
            Action::Delete => "DELETE",
            Action::Link => "LINK",
            Action::Unlink => "UNLINK",
            Action::Exception => "EXCEPTION",
            Action::Ignore => "IGNORE",
            Action::Report => "REPORT",
            Action::Noreport => "NOREPORT",
            Action::Async => "ASYNC",
        }
    }

    /// Whether a policy's `postAction` script runs after this action (docs/configuration.md#mappings).
    pub fn runs_post_action(self) -> bool {
        match self {
            Action::Create
            | Action::Update
            | Action::Delete
            | Action::Link
            | Action::Unlink
            | Action::Report
            | Action::Noreport => true,
            Action::Ignore | Action::Async | Action::Exception => false,
        }
    }

    /// Whether the action is written to the recon audit (everything but NOREPORT).
    pub fn is_audited(self) -> bool {
        match self {
            Action::Noreport => false,
            Action::Create
            | Action::Update
            | Action::Delete
            | Action::Link
            | Action::Unlink
            | Action::Exception
            | Action::Ignore
            | Action::Report
            | Action::Async => true,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Action::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| UnknownName {
                kind: "action",
                name: s.to_string(),
                known: Action::ALL.map(Action::as_str).join(", "),
            })
    }
}
