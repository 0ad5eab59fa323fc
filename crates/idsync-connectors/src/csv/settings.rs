//! The CSV connector's settings, read from ICF `CSVFileConnector` configuration properties.
//! Parsing only: nothing here touches the file.

use crate::contract::{ConnectorError, ConnectorResult};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq)]
pub struct CsvSettings {
    /// Absolute path (a relative `csvFile` is relative to the project folder).
    pub csv_file: PathBuf,
    pub header_uid: String,
    /// The column of `__NAME__`; defaults to `header_uid`.
    pub header_name: String,
    /// The column of `__PASSWORD__`, if any (`headerPassword`).
    pub header_password: Option<String>,
    pub quote: u8,
    pub delimiter: u8,
    /// Record terminator for writes; reads accept `\n`, `\r\n` and `\r`.
    pub newline: String,
    pub multivalue_delimiter: Option<String>,
}

fn single_byte(props: &Map<String, Value>, key: &str, default: u8) -> ConnectorResult<u8> {
    match props.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::String(s)) if s.len() == 1 => Ok(s.as_bytes()[0]),
        Some(other) => Err(ConnectorError::Config(format!(
            "{key} must be a single ASCII character, not {other}"
        ))),
    }
}

fn string(props: &Map<String, Value>, key: &str) -> ConnectorResult<Option<String>> {
    match props.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(ConnectorError::Config(format!(
            "{key} must be a string, not {other}"
        ))),
    }
}

impl CsvSettings {
    /// Reads `configurationProperties`; `project_dir` anchors a relative `csvFile`.
    pub fn from_properties(
        props: &Map<String, Value>,
        project_dir: &Path,
    ) -> ConnectorResult<Self> {
        let file = string(props, "csvFile")?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ConnectorError::Config("the CSV connector needs csvFile".into()))?;
        let file = PathBuf::from(file);
        let csv_file = if file.is_absolute() {
            file
        } else {
            project_dir.join(file)
        };
        let header_uid = string(props, "headerUid")?.unwrap_or_else(|| "uid".to_owned());
        let header_name = string(props, "headerName")?.unwrap_or_else(|| header_uid.clone());
        if let Some(enc) = string(props, "encoding")?
            && !enc.eq_ignore_ascii_case("utf-8")
            && !enc.eq_ignore_ascii_case("utf8")
        {
            return Err(ConnectorError::Config(format!(
                "encoding {enc:?} is not supported (only utf-8)"
            )));
        }
        let newline = string(props, "newlineString")?.unwrap_or_else(|| "\n".to_owned());
        if !matches!(newline.as_str(), "\n" | "\r\n" | "\r") {
            return Err(ConnectorError::Config(format!(
                "newlineString must be \\n, \\r\\n or \\r, not {newline:?}"
            )));
        }
        Ok(Self {
            csv_file,
            header_name,
            header_password: string(props, "headerPassword")?,
            header_uid,
            quote: single_byte(props, "quoteCharacter", b'"')?,
            delimiter: single_byte(props, "fieldDelimiter", b',')?,
            newline,
            multivalue_delimiter: string(props, "multivalueDelimiter")?.filter(|s| !s.is_empty()),
        })
    }

    pub(crate) fn reader_builder(&self) -> csv::ReaderBuilder {
        let mut b = csv::ReaderBuilder::new();
        b.delimiter(self.delimiter)
            .quote(self.quote)
            .has_headers(true)
            .flexible(false);
        b
    }

    pub(crate) fn writer_builder(&self) -> csv::WriterBuilder {
        let mut b = csv::WriterBuilder::new();
        let term = match self.newline.as_str() {
            "\r\n" => csv::Terminator::CRLF,
            "\r" => csv::Terminator::Any(b'\r'),
            _ => csv::Terminator::Any(b'\n'),
        };
        b.delimiter(self.delimiter)
            .quote(self.quote)
            .quote_style(csv::QuoteStyle::Necessary)
            .terminator(term)
            .has_headers(false);
        b
    }
}
