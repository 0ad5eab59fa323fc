//! SQL of the narrow recon decision rows (`crate::recon_entry`): the insert, and the recon
//! audit topic as queries see it — the full JSON rows and the narrow rows rendered in the same
//! shape.

use crate::recon_entry::FIELDS;
use std::sync::LazyLock;

/// `INSERT INTO recon_entries (id, timestamp, <FIELDS columns>) VALUES (?, ?, ...)`.
pub static INSERT: LazyLock<String> = LazyLock::new(|| {
    let cols: Vec<&str> = FIELDS.iter().map(|(_, c)| *c).collect();
    format!(
        "INSERT INTO recon_entries (id, timestamp, {}) VALUES (?, ?{})",
        cols.join(", "),
        ", ?".repeat(cols.len())
    )
});

/// Every recon audit entry as `(id, timestamp, entry)`: the full rows of `audit` and the narrow
/// rows rendered as the JSON the engine wrote (key order included, `_id` last).
pub static RECON_AUDIT_FROM: LazyLock<String> = LazyLock::new(|| {
    let pairs: Vec<String> = FIELDS
        .iter()
        .map(|(key, col)| format!("'{key}', {col}"))
        .collect();
    format!(
        "(SELECT id, timestamp, entry FROM audit WHERE kind = 'recon' \
         UNION ALL SELECT id, timestamp, json_object('entryType', 'entry', {}, '_id', id) \
         FROM recon_entries) a",
        pairs.join(", ")
    )
});
