//! The CSV file connector (ICF `org.forgerock.openicf.csvfile.CSVFileConnector`): one file,
//! one object type per configured type (all reading the same file), streaming paged reads and
//! atomic, batched rewrites.
//!
//! It owns only the file format and file safety; it knows nothing of mappings or recon.

mod changes;
mod layout;
mod read;
pub mod settings;
mod spaces;
mod tail;
mod write;

pub use settings::CsvSettings;

use crate::contract::{ChangeBatch, Connector, ConnectorError, ConnectorResult, ObjectSet};
use crate::schema::{self, ObjectTypeSchema};
use async_trait::async_trait;
use csv::StringRecord;
use idsync_core::{QueryPage, QueryRequest};
use layout::{Layout, column_of};
use serde_json::{Map, Value};
use std::path::Path;
use std::sync::Arc;
use write::{CsvFile, Fields, WriteOp};

#[derive(Debug)]
pub struct CsvConnector {
    name: String,
    file: Arc<CsvFile>,
    types: Vec<Arc<ObjectTypeSchema>>,
    schema: Value,
}

impl CsvConnector {
    /// Builds the connector from `configurationProperties` and the `objectTypes` block.
    /// Nothing is opened until the first operation.
    pub fn new(
        name: &str,
        properties: &Map<String, Value>,
        object_types: Option<&Value>,
        project_dir: &Path,
    ) -> ConnectorResult<Self> {
        let settings = Arc::new(CsvSettings::from_properties(properties, project_dir)?);
        let mut types: Vec<Arc<ObjectTypeSchema>> = ObjectTypeSchema::parse_all(object_types)?
            .into_iter()
            .map(Arc::new)
            .collect();
        if types.is_empty() {
            // ICF's default object class: a CSV without objectTypes still has accounts.
            types.push(Arc::new(ObjectTypeSchema {
                name: "account".into(),
                native_type: Some("__ACCOUNT__".into()),
                properties: Vec::new(),
            }));
        }
        Ok(Self {
            name: name.to_owned(),
            file: CsvFile::for_settings(settings),
            types,
            schema: object_types.cloned().unwrap_or(Value::Object(Map::new())),
        })
    }
}

#[async_trait]
impl Connector for CsvConnector {
    fn name(&self) -> &str {
        &self.name
    }

    async fn test(&self) -> ConnectorResult<()> {
        let settings = Arc::clone(self.file.settings());
        let schema = Arc::clone(&self.types[0]);
        tokio::task::spawn_blocking(move || {
            if !settings.csv_file.exists() {
                return Err(ConnectorError::Unavailable(format!(
                    "{} does not exist",
                    settings.csv_file.display()
                )));
            }
            match read::open(&settings)? {
                Some(open) => Layout::new(&settings, &schema, &open.header).map(|_| ()),
                None => Ok(()),
            }
        })
        .await
        .map_err(|e| ConnectorError::Internal(e.to_string()))?
    }

    fn schema(&self) -> Value {
        self.schema.clone()
    }

    fn object_set(&self, object_type: &str) -> ConnectorResult<Arc<dyn ObjectSet>> {
        let schema = self
            .types
            .iter()
            .find(|t| t.name == object_type)
            .ok_or_else(|| {
                ConnectorError::BadRequest(format!(
                    "connector {} has no object type {object_type:?}",
                    self.name
                ))
            })?;
        Ok(Arc::new(CsvObjectSet {
            file: Arc::clone(&self.file),
            schema: Arc::clone(schema),
        }))
    }
}

/// One object type of a CSV connector.
#[derive(Debug)]
pub struct CsvObjectSet {
    file: Arc<CsvFile>,
    schema: Arc<ObjectTypeSchema>,
}

impl CsvObjectSet {
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&CsvSettings, &ObjectTypeSchema) -> ConnectorResult<T> + Send + 'static,
    ) -> ConnectorResult<T> {
        let settings = Arc::clone(self.file.settings());
        let schema = Arc::clone(&self.schema);
        tokio::task::spawn_blocking(move || f(&settings, &schema))
            .await
            .map_err(|e| ConnectorError::Internal(format!("CSV read failed: {e}")))?
    }

    /// The column values an object sets: every mapped property (absent → empty), so a write
    /// replaces the whole object.
    fn fields_of(&self, object: &Value) -> ConnectorResult<(Fields, bool)> {
        let settings = self.file.settings();
        let obj = object
            .as_object()
            .ok_or_else(|| ConnectorError::InvalidData("an object must be a JSON object".into()))?;
        let mut fields = Vec::new();
        let declared = !self.schema.properties.is_empty();
        if declared {
            for prop in &self.schema.properties {
                if prop.native_name == schema::UID {
                    continue;
                }
                let value = obj.get(&prop.name).unwrap_or(&Value::Null);
                // A write-only column keeps its value unless the object sets it (reads never
                // return it, so a read-modify-write must not clear it).
                if !prop.readable && value.is_null() {
                    continue;
                }
                let text =
                    schema::value_to_text(prop, value, settings.multivalue_delimiter.as_deref())
                        .map_err(ConnectorError::InvalidData)?;
                fields.push((column_of(settings, &prop.native_name).to_owned(), text));
            }
            if let Some(unknown) = obj
                .keys()
                .find(|k| !k.starts_with('_') && self.schema.property(k).is_none())
            {
                return Err(ConnectorError::InvalidData(format!(
                    "{unknown:?} is not a property of object type {}",
                    self.schema.name
                )));
            }
        } else {
            for (k, v) in obj {
                if k.starts_with('_') {
                    continue;
                }
                let prop = schema::PropSchema {
                    name: k.clone(),
                    readable: true,
                    native_name: k.clone(),
                    kind: if v.is_array() {
                        schema::PropKind::Array
                    } else {
                        schema::PropKind::String
                    },
                };
                let text =
                    schema::value_to_text(&prop, v, settings.multivalue_delimiter.as_deref())
                        .map_err(ConnectorError::InvalidData)?;
                fields.push((k.clone(), text));
            }
        }
        Ok((fields, !declared))
    }

    fn to_object(&self, header: &StringRecord, row: &StringRecord) -> ConnectorResult<Value> {
        let layout = Layout::new(self.file.settings(), &self.schema, header)?;
        layout.object(row, 0)
    }

    /// The id of a new object: the argument, else `_id`, else the property mapped to
    /// `__UID__`, else the one mapped to `__NAME__` when the name column is the uid column
    /// (ICF's CSV default, `headerName` = `headerUid`), else a fresh UUID.
    fn new_id(&self, id: Option<&str>, object: &Value) -> String {
        self.determined_id(id, object)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
    }

    /// The id a create gives the row when the caller or the object names it (the uid column).
    fn determined_id(&self, id: Option<&str>, object: &Value) -> Option<String> {
        if let Some(id) = id.filter(|s| !s.is_empty()) {
            return Some(id.to_owned());
        }
        if let Some(id) = object
            .get("_id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            return Some(id.to_owned());
        }
        let settings = self.file.settings();
        let name_is_uid = settings.header_name == settings.header_uid;
        let id_props = self.schema.properties.iter().filter(|p| {
            p.native_name == schema::UID || (name_is_uid && p.native_name == schema::NAME)
        });
        for p in id_props {
            if let Some(id) = object
                .get(&p.name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                return Some(id.to_owned());
            }
        }
        None
    }
}

#[async_trait]
impl ObjectSet for CsvObjectSet {
    async fn get(&self, id: &str) -> ConnectorResult<Option<Value>> {
        let ids = vec![id.to_owned()];
        let mut found = self
            .blocking(move |s, t| read::get_many(s, t, &ids))
            .await?;
        Ok(found.pop())
    }

    async fn get_many(&self, ids: &[String]) -> ConnectorResult<Vec<Value>> {
        let ids = ids.to_vec();
        self.blocking(move |s, t| read::get_many(s, t, &ids)).await
    }

    async fn query(&self, request: &QueryRequest) -> ConnectorResult<QueryPage> {
        let request = request.clone();
        self.blocking(move |s, t| read::query(s, t, &request)).await
    }

    async fn count(&self) -> ConnectorResult<Option<u64>> {
        let file = Arc::clone(&self.file);
        tokio::task::spawn_blocking(move || file.count())
            .await
            .map_err(|e| ConnectorError::Internal(e.to_string()))?
            .map(Some)
    }

    async fn create(&self, id: Option<&str>, object: Value) -> ConnectorResult<Value> {
        let id = self.new_id(id, &object);
        let (fields, _) = self.fields_of(&object)?;
        let column_order = fields.iter().map(|(c, _)| c.clone()).collect();
        let (header, row) = self
            .file
            .submit(WriteOp::Create {
                id,
                fields,
                column_order,
            })
            .await?;
        self.to_object(&header, &row)
    }

    fn creation_id(&self, id: Option<&str>, object: &Value) -> Option<String> {
        self.determined_id(id, object)
    }

    async fn update(&self, id: &str, _rev: Option<&str>, object: Value) -> ConnectorResult<Value> {
        let (fields, clear_unlisted) = self.fields_of(&object)?;
        let (header, row) = self
            .file
            .submit(WriteOp::Update {
                id: id.to_owned(),
                fields,
                clear_unlisted,
            })
            .await?;
        self.to_object(&header, &row)
    }

    async fn delete(&self, id: &str, _rev: Option<&str>) -> ConnectorResult<Option<Value>> {
        let (header, row) = self
            .file
            .submit(WriteOp::Delete { id: id.to_owned() })
            .await?;
        self.to_object(&header, &row).map(Some)
    }

    /// liveSync by comparing the file with the snapshot in the token (`changes.rs`).
    async fn changes_since(&self, token: Option<&Value>) -> ConnectorResult<ChangeBatch> {
        let token = token.cloned();
        self.blocking(move |s, t| changes::changes_since(s, t, token.as_ref()))
            .await
    }
}
