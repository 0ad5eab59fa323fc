//! liveSync of a CSV file: the file has no change log, so a poll compares it with the last
//! snapshot, which travels in the token (`{"rows": {"<id>": "<hash of the row>"}}`): rows whose
//! hash is new or differs are creates/updates (in file order), ids of the snapshot no longer in
//! the file are deletes. The first poll (no token) only takes the snapshot.
//!
//! The snapshot holds one short hash per row, so the token grows with the file (about 30 bytes
//! a row). Only the batch's token is given (no per-change tokens): when a change of the batch
//! fails, the earlier ones of the batch are delivered again by the next poll; they carry the
//! row as it is in the file, so applying one again changes nothing.

use super::layout::Layout;
use super::read::{for_each_record, open};
use super::settings::CsvSettings;
use crate::contract::{Change, ChangeBatch, ConnectorResult};
use crate::schema::ObjectTypeSchema;
use serde_json::{Map, Value, json};
use std::collections::HashSet;

/// The changes since `token` (see the module doc).
pub(crate) fn changes_since(
    settings: &CsvSettings,
    schema: &ObjectTypeSchema,
    token: Option<&Value>,
) -> ConnectorResult<ChangeBatch> {
    let before = token.and_then(|t| t.get("rows")).and_then(Value::as_object);
    let mut rows = Map::new();
    let mut changes = Vec::new();
    if let Some(mut file) = open(settings)? {
        let layout = Layout::new(settings, schema, &file.header)?;
        for_each_record(settings, &mut file, |record, line| {
            let id = layout.id(record).to_owned();
            let hash = format!("{:016x}", row_hash(record));
            if let Some(before) = before
                && before.get(&id).and_then(Value::as_str) != Some(hash.as_str())
            {
                changes.push(Change::CreateOrUpdate {
                    object: layout.object(record, line)?,
                    id: id.clone(),
                });
            }
            rows.insert(id, Value::String(hash));
            Ok(true)
        })?;
    }
    if let Some(before) = before {
        let gone: HashSet<&String> = before.keys().filter(|id| !rows.contains_key(*id)).collect();
        let mut gone: Vec<&String> = gone.into_iter().collect();
        gone.sort();
        changes.extend(gone.into_iter().map(|id| Change::Delete { id: id.clone() }));
    }
    Ok(ChangeBatch {
        changes,
        token: Some(json!({ "rows": rows })),
        tokens: Vec::new(),
        times: Vec::new(),
    })
}

/// FNV-1a over the row's fields (stable across releases and processes, unlike std's hasher).
fn row_hash(record: &csv::StringRecord) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for field in record {
        for b in field.bytes().chain(std::iter::once(0x1f)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}
