//! Streaming reads of a CSV file (run on a blocking thread): get, get-many, count and paged
//! queries, each in one pass with memory bounded by the page, never by the file.
//!
//! Paging is keyset paging on (sort keys, `_id`). In general a page is one scan that keeps the
//! smallest `offset + pageSize + 1` positions greater than the cookie in a bounded buffer: a CSV
//! is edited by people and other tools and is in no order we could rely on, and an id index
//! would make memory proportional to the file. Only rows that can enter the page are turned
//! into objects (the rest cost one field comparison).
//!
//! Fast path: when a scan sees the ids strictly increasing (files exported in id order), the
//! cookie also carries the byte position of the next row and the file's length and mtime; the
//! next page of an `_id`-ordered query then seeks there and reads just one page, provided the
//! file is unchanged. Any change or any out-of-order id falls back to the scan, so the result
//! is the same either way; only the cost differs (figures in docs/bench/connectors-csv.md).
//!
//! Filters are evaluated in memory with `Filter::matches`: legitimate here only because a CSV
//! has no query engine to translate them to.

use super::layout::{Layout, read_error};
use super::settings::CsvSettings;
use super::spaces::{Spaces, header_has_spaces};
use super::tail::{self, Bounded};
use crate::contract::{ConnectorError, ConnectorResult};
use crate::paging::{compare_positions, decode_cookie_with_hint, encode_cookie};
use crate::schema::{ObjectTypeSchema, project_fields};
use csv::StringRecord;
use idsync_core::{QueryPage, QueryRequest, TotalPolicy};
use serde_json::Value;
use std::cmp::Ordering;
use std::collections::HashSet;
use std::fs::File;
use std::io::BufReader;

/// An open file positioned after its header, read up to the end of its last complete row (see
/// `tail`: the end of a batch being appended, or torn by a crash, is not read).
pub(crate) struct OpenCsv {
    pub reader: csv::Reader<BufReader<Spaces<Bounded>>>,
    pub header: StringRecord,
    /// Length and modification time (ns) of the opened file, for resume hints.
    pub stamp: (u64, u64),
    /// Whether the records' byte positions are file offsets: false once a row start of a
    /// file read with spaces around its fields could not be mapped back (see `spaces`), and
    /// resume hints are then neither given nor taken.
    pub exact_positions: bool,
}

/// Opens the file; a missing file is an empty set (`Ok(None)`), so a connector can create its
/// first row in a file that does not exist yet.
pub(crate) fn open(settings: &CsvSettings) -> ConnectorResult<Option<OpenCsv>> {
    let file = match File::open(&settings.csv_file) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(ConnectorError::Unavailable(format!(
                "{}: {e}",
                settings.csv_file.display()
            )));
        }
    };
    let unavailable = |e: std::io::Error| {
        ConnectorError::Unavailable(format!("{}: {e}", settings.csv_file.display()))
    };
    // The length first, then the journal: an append that starts in between begins after it.
    let meta = file.metadata().map_err(unavailable)?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    let stamp = (meta.len(), mtime);
    let journal = tail::read_for(&settings.csv_file);
    let limit = tail::complete_len(&file, &meta, journal.as_ref()).map_err(unavailable)?;
    let spaced = {
        use std::os::unix::fs::FileExt;
        let mut head = vec![0u8; usize::try_from(limit.min(1 << 16)).unwrap_or(1 << 16)];
        let n = file.read_at(&mut head, 0).map_err(unavailable)?;
        header_has_spaces(&head[..n], settings.delimiter, settings.quote)
    };
    let source = Spaces::new(
        Bounded::new(file, limit),
        spaced,
        settings.delimiter,
        settings.quote,
    );
    let mut reader = settings
        .reader_builder()
        .from_reader(BufReader::with_capacity(1 << 16, source));
    let header = reader
        .headers()
        .map_err(|e| read_error(settings, &e))?
        .clone();
    Ok(Some(OpenCsv {
        reader,
        header,
        stamp,
        exact_positions: true,
    }))
}

/// Calls `f` with each record and its line number until `f` returns `false`.
pub(crate) fn for_each_record(
    settings: &CsvSettings,
    open: &mut OpenCsv,
    mut f: impl FnMut(&StringRecord, u64) -> ConnectorResult<bool>,
) -> ConnectorResult<()> {
    let mut record = StringRecord::new();
    loop {
        match open.reader.read_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) => {
                // The position as a file offset (the stream of a file with spaces around its
                // fields is shorter than the file).
                if let Some(pos) = record.position().cloned() {
                    match open.reader.get_mut().get_mut().file_offset(pos.byte()) {
                        Some(b) if b == pos.byte() => {}
                        Some(b) => {
                            let mut p = pos;
                            p.set_byte(b);
                            record.set_position(Some(p));
                        }
                        None => open.exact_positions = false,
                    }
                }
                let line = record.position().map_or(0, csv::Position::line);
                if !f(&record, line)? {
                    return Ok(());
                }
            }
            Err(e) => return Err(read_error(settings, &e)),
        }
    }
}

/// Reads the objects with these ids in one pass.
pub(crate) fn get_many(
    settings: &CsvSettings,
    schema: &ObjectTypeSchema,
    ids: &[String],
) -> ConnectorResult<Vec<Value>> {
    let Some(mut open) = open(settings)? else {
        return Ok(Vec::new());
    };
    let layout = Layout::new(settings, schema, &open.header)?;
    let mut wanted: HashSet<&str> = ids.iter().map(String::as_str).collect();
    let mut out = Vec::new();
    for_each_record(settings, &mut open, |record, line| {
        if wanted.remove(layout.id(record)) {
            out.push(layout.object(record, line)?);
        }
        Ok(!wanted.is_empty())
    })?;
    Ok(out)
}

/// Counts the data rows (no conversion, no validation beyond the csv framing).
pub(crate) fn count_rows(settings: &CsvSettings) -> ConnectorResult<u64> {
    let Some(mut open) = open(settings)? else {
        return Ok(0);
    };
    let mut record = csv::ByteRecord::new();
    let mut n = 0u64;
    loop {
        match open.reader.read_byte_record(&mut record) {
            Ok(false) => return Ok(n),
            Ok(true) => n += 1,
            Err(e) => return Err(read_error(settings, &e)),
        }
    }
}

/// One candidate for the page: its keyset position and its object.
struct Candidate {
    position: Vec<Value>,
    object: Value,
    /// Where the row starts in the file.
    at: Option<csv::Position>,
}

/// The resume hint of a cookie: where the next row starts in a file with this stamp.
fn hint_json(at: &csv::Position, stamp: (u64, u64)) -> Value {
    serde_json::json!({"b": at.byte(), "l": at.line(), "r": at.record(), "s": stamp.0, "m": stamp.1})
}

fn hint_position(hint: &Value, stamp: (u64, u64)) -> Option<csv::Position> {
    let get = |k: &str| hint.get(k).and_then(Value::as_u64);
    if get("s")? != stamp.0 || get("m")? != stamp.1 {
        return None;
    }
    let mut p = csv::Position::new();
    p.set_byte(get("b")?)
        .set_line(get("l")?)
        .set_record(get("r")?);
    Some(p)
}

/// The fast path: reads one `_id`-ordered page from `at` in a file known to be sorted by id.
/// `None` when the file turns out not to be sorted after all (the caller scans instead).
#[allow(clippy::too_many_arguments)]
fn read_sorted_page(
    settings: &CsvSettings,
    open: &mut OpenCsv,
    layout: &Layout,
    request: &QueryRequest,
    after_id: &str,
    at: csv::Position,
    page: usize,
) -> ConnectorResult<Option<QueryPage>> {
    open.reader.seek(at).map_err(|e| read_error(settings, &e))?;
    let stamp = open.stamp;
    let mut prev = after_id.to_owned();
    let mut sorted = true;
    let mut results = Vec::with_capacity(page);
    let mut next: Option<csv::Position> = None;
    for_each_record(settings, open, |record, line| {
        let id = layout.id(record);
        if id <= prev.as_str() {
            sorted = false;
            return Ok(false);
        }
        prev.clear();
        prev.push_str(id);
        let object = layout.object(record, line)?;
        if request.filter.as_ref().is_some_and(|f| !f.matches(&object)) {
            return Ok(true);
        }
        if results.len() == page {
            next = record.position().cloned();
            return Ok(false);
        }
        results.push(object);
        Ok(true)
    })?;
    if !sorted || !open.exact_positions {
        return Ok(None);
    }
    let cookie = match (next, results.last()) {
        (Some(at), Some(last)) => Some(encode_cookie(&[
            last.get("_id").cloned().unwrap_or(Value::Null),
            hint_json(&at, stamp),
        ])),
        _ => None,
    };
    let fields = request.fields.as_deref();
    Ok(Some(QueryPage {
        results: results
            .into_iter()
            .map(|o| project_fields(o, fields))
            .collect(),
        cookie,
        total: None,
    }))
}

/// Runs a query in one scan.
pub(crate) fn query(
    settings: &CsvSettings,
    schema: &ObjectTypeSchema,
    request: &QueryRequest,
) -> ConnectorResult<QueryPage> {
    if let Some(filter) = &request.filter
        && let Some(op) = filter.extended_operators().first()
    {
        return Err(ConnectorError::BadRequest(format!(
            "the CSV connector does not support the filter operator {op:?}"
        )));
    }
    let mut sort_fields = Vec::new();
    let mut ascending = Vec::new();
    for key in &request.sort_keys {
        let tokens = key.field.tokens();
        let [field] = tokens else {
            return Err(ConnectorError::BadRequest(format!(
                "cannot sort on the nested field {:?}",
                key.field.to_string()
            )));
        };
        if field == "_id" {
            // `_id` is always the last (unique) key; a sort on it only fixes its direction.
            continue;
        }
        sort_fields.push(field.clone());
        ascending.push(key.ascending);
    }
    let id_ascending = request
        .sort_keys
        .iter()
        .find(|k| k.field.tokens().first().is_some_and(|t| t == "_id"))
        .is_none_or(|k| k.ascending);
    ascending.push(id_ascending);
    let (after, hint) = match &request.cookie {
        Some(c) => {
            let (pos, hint) = decode_cookie_with_hint(c, ascending.len())?;
            (Some(pos), hint)
        }
        None => (None, None),
    };
    let page_size = request.page_size.filter(|n| *n > 0);
    let offset = request.offset.unwrap_or(0);
    // Keep one more than the page so we know whether another page follows.
    let keep = page_size.map(|p| offset.saturating_add(p).saturating_add(1));
    let want_total = request.total_policy != TotalPolicy::None;
    // Queries the sorted-file fast path can serve: `_id` order, keyset only, no total.
    let resumable = sort_fields.is_empty() && id_ascending && offset == 0 && !want_total;

    let Some(mut open) = open(settings)? else {
        return Ok(QueryPage {
            results: Vec::new(),
            cookie: None,
            total: want_total.then_some(0),
        });
    };
    let layout = Layout::new(settings, schema, &open.header)?;
    if resumable
        && open.exact_positions
        && let (Some(page), Some(hint), Some(after)) = (page_size, &hint, &after)
        && let Some(at) = hint_position(hint, open.stamp)
        && let Some(Value::String(after_id)) = after.first()
    {
        if let Some(page) =
            read_sorted_page(settings, &mut open, &layout, request, after_id, at, page)?
        {
            return Ok(page);
        }
        // Not sorted after all: start over with a scan.
        return query(
            settings,
            schema,
            &QueryRequest {
                cookie: Some(encode_cookie(after)),
                ..request.clone()
            },
        );
    }
    let cmp = |a: &[Value], b: &[Value]| compare_positions(a, b, &ascending);
    let mut kept: Vec<Candidate> = Vec::new();
    // Once `kept` has been trimmed, anything not before this position cannot enter the page.
    let mut threshold: Option<Vec<Value>> = None;
    let mut matched = 0u64;
    // Whether every id so far is greater than the one before (the file is sorted by id).
    let mut sorted = true;
    let mut prev_id = String::new();
    let mut seen_any = false;

    let position_of = |record: &StringRecord, line: u64| -> ConnectorResult<Vec<Value>> {
        let mut pos = Vec::with_capacity(sort_fields.len() + 1);
        for f in &sort_fields {
            pos.push(layout.field(record, f, line)?);
        }
        pos.push(Value::String(layout.id(record).to_owned()));
        Ok(pos)
    };

    for_each_record(settings, &mut open, |record, line| {
        if sorted {
            let id = layout.id(record);
            if seen_any && id <= prev_id.as_str() {
                sorted = false;
            }
            seen_any = true;
            prev_id.clear();
            prev_id.push_str(id);
        }
        let object = match &request.filter {
            Some(filter) => {
                let obj = layout.object(record, line)?;
                if !filter.matches(&obj) {
                    return Ok(true);
                }
                Some(obj)
            }
            None => None,
        };
        matched += 1;
        let position = position_of(record, line)?;
        if let Some(after) = &after
            && cmp(&position, after) != Ordering::Greater
        {
            return Ok(true);
        }
        if let Some(t) = &threshold
            && cmp(&position, t) != Ordering::Less
        {
            return Ok(true);
        }
        let object = match object {
            Some(o) => o,
            None => layout.object(record, line)?,
        };
        kept.push(Candidate {
            position,
            object,
            at: record.position().cloned(),
        });
        if let Some(keep) = keep
            && kept.len() >= keep.saturating_mul(2).max(64)
        {
            kept.sort_by(|a, b| cmp(&a.position, &b.position));
            kept.truncate(keep);
            threshold = kept.last().map(|c| c.position.clone());
        }
        Ok(true)
    })?;

    kept.sort_by(|a, b| cmp(&a.position, &b.position));
    let (results, cookie) = match page_size {
        Some(page) => {
            let next_at = kept.get(offset + page).and_then(|c| c.at.clone());
            let more = kept.len() > offset + page;
            kept.truncate(offset + page);
            let page_items: Vec<Candidate> = kept.into_iter().skip(offset).collect();
            let cookie = match page_items.last() {
                Some(last) if more => {
                    let mut position = last.position.clone();
                    if let (true, true, true, Some(at)) =
                        (resumable, sorted, open.exact_positions, next_at)
                    {
                        position.push(hint_json(&at, open.stamp));
                    }
                    Some(encode_cookie(&position))
                }
                _ => None,
            };
            (page_items, cookie)
        }
        None => (kept.into_iter().skip(offset).collect(), None),
    };
    let fields = request.fields.as_deref();
    Ok(QueryPage {
        results: results
            .into_iter()
            .map(|c| project_fields(c.object, fields))
            .collect(),
        cookie,
        total: want_total.then_some(matched),
    })
}
