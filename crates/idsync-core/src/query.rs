//! Query requests and result pages shared by the repository, the connectors and the REST API
//! (docs/rest.md#queries).

use crate::filter::Filter;
use crate::pointer::JsonPointer;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One `_sortKeys` entry: a field and a direction.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SortKey {
    pub field: JsonPointer,
    pub ascending: bool,
}

impl SortKey {
    /// Parses `field`, `+field` or `-field`.
    pub fn parse(s: &str) -> Self {
        let s = s.trim();
        match s.strip_prefix('-') {
            Some(rest) => Self {
                field: JsonPointer::parse(rest),
                ascending: false,
            },
            None => Self {
                field: JsonPointer::parse(s.strip_prefix('+').unwrap_or(s)),
                ascending: true,
            },
        }
    }

    /// Parses a comma-separated `_sortKeys` parameter.
    pub fn parse_list(s: &str) -> Vec<Self> {
        s.split(',')
            .filter(|p| !p.trim().is_empty())
            .map(Self::parse)
            .collect()
    }
}

/// `_totalPagedResultsPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TotalPolicy {
    #[default]
    None,
    Exact,
    Estimate,
}

impl TotalPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            TotalPolicy::None => "NONE",
            TotalPolicy::Exact => "EXACT",
            TotalPolicy::Estimate => "ESTIMATE",
        }
    }
}

/// A query over one collection. `filter: None` means `_queryFilter=true`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueryRequest {
    pub filter: Option<Filter>,
    /// `_fields`; `None` returns whole objects. `_id` (and `_rev`) are always returned.
    pub fields: Option<Vec<JsonPointer>>,
    pub sort_keys: Vec<SortKey>,
    /// `_pageSize`; `None` or 0 means unpaged.
    pub page_size: Option<usize>,
    /// `_pagedResultsCookie` from the previous page.
    pub cookie: Option<String>,
    /// `_pagedResultsOffset`.
    pub offset: Option<usize>,
    pub total_policy: TotalPolicy,
}

impl QueryRequest {
    /// `_queryFilter=true`, unpaged.
    pub fn all() -> Self {
        Self::default()
    }

    /// Only ids: `_fields=_id`.
    pub fn all_ids() -> Self {
        Self {
            fields: Some(vec![JsonPointer::parse("_id")]),
            ..Self::default()
        }
    }

    pub fn with_filter(filter: Filter) -> Self {
        Self {
            filter: Some(filter),
            ..Self::default()
        }
    }
}

/// One page of query results.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueryPage {
    pub results: Vec<Value>,
    /// The cookie for the next page; `None` on the last page.
    pub cookie: Option<String>,
    /// The total, when asked for and known.
    pub total: Option<u64>,
}
