//! Streaming reads of a CSV file (run on a blocking thread): get, get-many, count and paged
//! queries, each in one pass with memory bounded by the page, never by the file.
//!
//! Paging is keyset paging: a page is one scan that keeps the smallest `offset + pageSize + 1`
//! positions greater than the cookie. We chose the scan over a sorted-file fast path because a
//! CSV is edited by people and other tools and is in no order we could rely on; the scan is
//! O(rows) per page, but only the rows that can enter the page are turned into objects (the
//! rest cost one field comparison), which keeps a 1M-row file readable at page sizes recon uses
//! (figures in docs/bench/connectors-csv.md).
//!
//! Filters are evaluated in memory with `Filter::matches`: legitimate here only because a CSV
//! has no query engine to translate them to.

use super::layout::{Layout, read_error};
use super::settings::CsvSettings;
use crate::contract::{ConnectorError, ConnectorResult};
use crate::paging::{compare_positions, decode_cookie, encode_cookie};
use crate::schema::{ObjectTypeSchema, project_fields};
use csv::StringRecord;
use idsync_core::{QueryPage, QueryRequest, TotalPolicy};
use serde_json::Value;
use std::cmp::Ordering;
use std::collections::HashSet;
use std::fs::File;
use std::io::BufReader;

/// An open file positioned after its header.
pub(crate) struct OpenCsv {
    pub reader: csv::Reader<BufReader<File>>,
    pub header: StringRecord,
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
    let mut reader = settings.reader_builder().from_reader(BufReader::with_capacity(1 << 16, file));
    let header = reader.headers().map_err(|e| read_error(settings, &e))?.clone();
    Ok(Some(OpenCsv { reader, header }))
}

/// Calls `f` with each record and its line number until `f` returns `false`.
fn for_each_record(
    settings: &CsvSettings,
    open: &mut OpenCsv,
    mut f: impl FnMut(&StringRecord, u64) -> ConnectorResult<bool>,
) -> ConnectorResult<()> {
    let mut record = StringRecord::new();
    loop {
        match open.reader.read_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) => {
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
    let Some(mut open) = open(settings)? else { return Ok(Vec::new()) };
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
    let Some(mut open) = open(settings)? else { return Ok(0) };
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
    let after = match &request.cookie {
        Some(c) => Some(decode_cookie(c, ascending.len())?),
        None => None,
    };
    let page_size = request.page_size.filter(|n| *n > 0);
    let offset = request.offset.unwrap_or(0);
    // Keep one more than the page so we know whether another page follows.
    let keep = page_size.map(|p| offset.saturating_add(p).saturating_add(1));
    let want_total = request.total_policy != TotalPolicy::None;

    let Some(mut open) = open(settings)? else {
        return Ok(QueryPage { results: Vec::new(), cookie: None, total: want_total.then_some(0) });
    };
    let layout = Layout::new(settings, schema, &open.header)?;
    let cmp = |a: &[Value], b: &[Value]| compare_positions(a, b, &ascending);
    let mut kept: Vec<Candidate> = Vec::new();
    // Once `kept` has been trimmed, anything not before this position cannot enter the page.
    let mut threshold: Option<Vec<Value>> = None;
    let mut matched = 0u64;

    let position_of = |record: &StringRecord, line: u64| -> ConnectorResult<Vec<Value>> {
        let mut pos = Vec::with_capacity(sort_fields.len() + 1);
        for f in &sort_fields {
            pos.push(layout.field(record, f, line)?);
        }
        pos.push(Value::String(layout.id(record).to_owned()));
        Ok(pos)
    };

    for_each_record(settings, &mut open, |record, line| {
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
        kept.push(Candidate { position, object });
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
            let more = kept.len() > offset + page;
            kept.truncate(offset + page);
            let page_items: Vec<Candidate> = kept.into_iter().skip(offset).collect();
            let cookie = if more { page_items.last().map(|c| encode_cookie(&c.position)) } else { None };
            (page_items, cookie)
        }
        None => (kept.into_iter().skip(offset).collect(), None),
    };
    let fields = request.fields.as_deref();
    Ok(QueryPage {
        results: results.into_iter().map(|c| project_fields(c.object, fields)).collect(),
        cookie,
        total: want_total.then_some(matched),
    })
}
