//! Where each property lives in a CSV file: the column index of the uid and of every
//! `objectTypes` property, resolved against the file's header, and the conversions between a
//! record and an idsync object.

use super::settings::CsvSettings;
use crate::contract::{ConnectorError, ConnectorResult};
use crate::schema::{self, ObjectTypeSchema, PropKind, PropSchema};
use csv::StringRecord;
use serde_json::{Map, Value};

/// The column that holds a property's native name in this file's settings.
pub(crate) fn column_of<'a>(settings: &'a CsvSettings, native_name: &'a str) -> &'a str {
    match native_name {
        schema::UID => &settings.header_uid,
        schema::NAME => &settings.header_name,
        schema::PASSWORD => settings
            .header_password
            .as_deref()
            .unwrap_or(schema::PASSWORD),
        other => other,
    }
}

/// The properties of an object type, or, when `objectTypes` declares none, one string property
/// per column (a CSV without a schema is still readable).
pub(crate) fn effective_props(
    settings: &CsvSettings,
    schema: &ObjectTypeSchema,
    header: &[String],
) -> Vec<PropSchema> {
    if !schema.properties.is_empty() {
        return schema.properties.clone();
    }
    // Without a schema every column is a string property, except the uid and the password
    // column (write-only, never read back).
    header
        .iter()
        .filter(|c| **c != settings.header_uid)
        .map(|c| PropSchema {
            name: c.clone(),
            native_name: c.clone(),
            kind: PropKind::String,
            readable: settings.header_password.as_deref() != Some(c.as_str()),
        })
        .collect()
}

/// The resolved positions of the uid and the properties in one header.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub uid_col: usize,
    /// Each property with its column (`None`: the file has no such column; reads give nothing).
    pub props: Vec<(PropSchema, Option<usize>)>,
    pub multivalue: Option<String>,
}

impl Layout {
    pub fn new(
        settings: &CsvSettings,
        schema: &ObjectTypeSchema,
        header: &StringRecord,
    ) -> ConnectorResult<Self> {
        let cols: Vec<String> = header.iter().map(str::to_owned).collect();
        let find = |name: &str| cols.iter().position(|c| c == name);
        let uid_col = find(&settings.header_uid).ok_or_else(|| {
            ConnectorError::Config(format!(
                "{}: the header has no uid column {:?}",
                settings.csv_file.display(),
                settings.header_uid
            ))
        })?;
        let props = effective_props(settings, schema, &cols)
            .into_iter()
            .filter(|p| {
                p.readable && settings.header_password.as_deref() != Some(p.native_name.as_str())
            })
            .map(|p| {
                let col = find(column_of(settings, &p.native_name));
                (p, col)
            })
            .collect();
        Ok(Self {
            uid_col,
            props,
            multivalue: settings.multivalue_delimiter.clone(),
        })
    }

    /// The `_id` of a record.
    pub fn id<'r>(&self, record: &'r StringRecord) -> &'r str {
        record.get(self.uid_col).unwrap_or("")
    }

    /// The value of one top-level field (`_id` or a property) of a record.
    pub fn field(&self, record: &StringRecord, field: &str, line: u64) -> ConnectorResult<Value> {
        if field == "_id" {
            return Ok(Value::String(self.id(record).to_owned()));
        }
        for (prop, col) in &self.props {
            if prop.name == field {
                let Some(col) = col else {
                    return Ok(Value::Null);
                };
                let text = record.get(*col).unwrap_or("");
                return schema::value_from_text(prop, text, self.multivalue.as_deref())
                    .map(|v| v.unwrap_or(Value::Null))
                    .map_err(|e| ConnectorError::InvalidData(format!("line {line}: {e}")));
            }
        }
        Ok(Value::Null)
    }

    /// The idsync object of a record: `_id` plus every non-empty property.
    pub fn object(&self, record: &StringRecord, line: u64) -> ConnectorResult<Value> {
        let mut map = Map::with_capacity(self.props.len() + 1);
        map.insert("_id".to_owned(), Value::String(self.id(record).to_owned()));
        for (prop, col) in &self.props {
            let Some(col) = col else { continue };
            let text = record.get(*col).unwrap_or("");
            match schema::value_from_text(prop, text, self.multivalue.as_deref()) {
                Ok(Some(v)) => {
                    map.insert(prop.name.clone(), v);
                }
                Ok(None) => {}
                Err(e) => return Err(ConnectorError::InvalidData(format!("line {line}: {e}"))),
            }
        }
        Ok(Value::Object(map))
    }
}

/// Reports a csv-crate read error with the file and line number.
pub(crate) fn read_error(settings: &CsvSettings, e: &csv::Error) -> ConnectorError {
    let file = settings.csv_file.display();
    if let csv::ErrorKind::Io(io) = e.kind() {
        return ConnectorError::Unavailable(format!("{file}: {io}"));
    }
    let line = e.position().map(csv::Position::line);
    let what = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!("the row has {len} fields but the header has {expected_len}")
        }
        csv::ErrorKind::Utf8 { .. } => "the row is not valid UTF-8".to_owned(),
        _ => e.to_string(),
    };
    match line {
        Some(l) => ConnectorError::InvalidData(format!("{file}: line {l}: {what}")),
        None => ConnectorError::InvalidData(format!("{file}: {what}")),
    }
}
