//! The database-table connector (ICF `org.identityconnectors.databasetable.
//! DatabaseTableConnector`): one table of PostgreSQL, MySQL/MariaDB or SQLite through sqlx,
//! filters translated to parameterised WHERE clauses, keyset paging, classified errors.
//!
//! It owns only the SQL side; it knows nothing of mappings or recon, and never filters in
//! memory what the database can filter.

mod batch;
mod builder;
mod changes;
mod pool;
pub mod settings;
mod translate;

pub use settings::{Dialect, SqlSettings};

use crate::contract::{ChangeBatch, Connector, ConnectorError, ConnectorResult, ObjectSet};
use crate::paging::{decode_cookie, encode_cookie};
use crate::schema::{self, ObjectTypeSchema, PropKind, PropSchema, project_fields};
use async_trait::async_trait;
use batch::{CreateBatcher, NewRow};
use builder::{Param, ParamColumn, SqlBuilder};
use idsync_core::{QueryPage, QueryRequest, TotalPolicy};
use pool::SqlPool;
use serde_json::{Map, Value};
use std::path::Path;
use std::sync::{Arc, Weak};
use tokio::sync::OnceCell;
use translate::{
    Column, ColumnResolver, OrderKey, after_position, order_by, param_for, param_of, where_clause,
};

/// How many ids one `IN (...)` holds in `get_many`.
const IN_CHUNK: usize = 500;
/// How many changed rows one liveSync poll returns at most.
const CHANGE_BATCH: usize = 1000;

#[derive(Debug)]
pub struct SqlConnector {
    name: String,
    settings: Arc<SqlSettings>,
    pool: SqlPool,
    /// One object set per type, made once: concurrent creates through any handle of a type
    /// share its create queue (see `batch`).
    sets: Vec<Arc<SqlObjectSet>>,
    schema: Value,
}

/// What the server's SQL can do beyond the common subset, learnt once per connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Caps {
    /// `INSERT … RETURNING` (PostgreSQL, SQLite ≥ 3.35, MariaDB ≥ 10.5; not MySQL).
    insert_returning: bool,
    /// `UPDATE … RETURNING` (PostgreSQL, SQLite ≥ 3.35; not MariaDB nor MySQL).
    update_returning: bool,
    /// `DELETE … RETURNING` (PostgreSQL, SQLite ≥ 3.35, MariaDB ≥ 10.0.5; not MySQL).
    delete_returning: bool,
    /// Concurrent creates share multi-row INSERTs (where a failed statement is known to change
    /// nothing, so its rows can be tried again one by one: PostgreSQL and SQLite; a MariaDB
    /// table may be non-transactional).
    batch_creates: bool,
}

impl Caps {
    const NONE: Caps = Caps {
        insert_returning: false,
        update_returning: false,
        delete_returning: false,
        batch_creates: false,
    };
}

/// Whether a `major.minor…` version string is at least `(major, minor)`.
fn version_at_least(version: &str, want: (u32, u32)) -> bool {
    let mut parts = version
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    (major, minor) >= want
}

/// Asks the server what it supports (one query; PostgreSQL needs none).
async fn probe_caps(pool: &SqlPool, dialect: Dialect) -> ConnectorResult<Caps> {
    let version = |sql: &str| {
        let mut b = SqlBuilder::new(dialect);
        b.push(sql);
        b
    };
    Ok(match dialect {
        Dialect::Postgres => Caps {
            insert_returning: true,
            update_returning: true,
            delete_returning: true,
            batch_creates: true,
        },
        Dialect::Sqlite => {
            let rows = pool.fetch_text(&version("SELECT sqlite_version()")).await?;
            let v = rows.first().and_then(|r| r.first().cloned().flatten());
            if v.is_some_and(|v| version_at_least(&v, (3, 35))) {
                Caps {
                    insert_returning: true,
                    update_returning: true,
                    delete_returning: true,
                    batch_creates: true,
                }
            } else {
                Caps::NONE
            }
        }
        Dialect::MySql => {
            let rows = pool.fetch_text(&version("SELECT VERSION()")).await?;
            let v = rows
                .first()
                .and_then(|r| r.first().cloned().flatten())
                .unwrap_or_default();
            if v.contains("MariaDB") {
                Caps {
                    insert_returning: version_at_least(&v, (10, 5)),
                    update_returning: false,
                    delete_returning: version_at_least(&v, (10, 1)),
                    batch_creates: false,
                }
            } else {
                Caps::NONE
            }
        }
    })
}

impl SqlConnector {
    /// Builds the connector from `configurationProperties` and `objectTypes`. The pool is
    /// created without connecting.
    pub fn new(
        name: &str,
        properties: &Map<String, Value>,
        object_types: Option<&Value>,
        project_dir: &Path,
    ) -> ConnectorResult<Self> {
        let settings = Arc::new(SqlSettings::from_properties(properties, project_dir)?);
        let pool = SqlPool::connect_lazy(&settings)?;
        let mut types: Vec<Arc<ObjectTypeSchema>> = ObjectTypeSchema::parse_all(object_types)?
            .into_iter()
            .map(Arc::new)
            .collect();
        if types.is_empty() {
            types.push(Arc::new(ObjectTypeSchema {
                name: "account".into(),
                native_type: Some("__ACCOUNT__".into()),
                properties: Vec::new(),
            }));
        }
        let caps = Arc::new(OnceCell::new());
        let sets = types
            .iter()
            .map(|t| {
                Arc::new_cyclic(|this| {
                    SqlObjectSet::new(
                        Arc::clone(&settings),
                        pool.clone(),
                        Arc::clone(t),
                        Arc::clone(&caps),
                        this.clone(),
                    )
                })
            })
            .collect();
        Ok(Self {
            name: name.to_owned(),
            settings,
            pool,
            sets,
            schema: object_types.cloned().unwrap_or(Value::Object(Map::new())),
        })
    }

    pub fn settings(&self) -> &SqlSettings {
        &self.settings
    }
}

#[async_trait]
impl Connector for SqlConnector {
    fn name(&self) -> &str {
        &self.name
    }

    async fn test(&self) -> ConnectorResult<()> {
        let mut b = SqlBuilder::new(self.settings.dialect);
        b.push("SELECT COUNT(*) FROM ")
            .ident(&self.settings.table)
            .push(" WHERE 1=0");
        self.pool.count(&b).await.map(|_| ())
    }

    fn schema(&self) -> Value {
        self.schema.clone()
    }

    fn object_set(&self, object_type: &str) -> ConnectorResult<Arc<dyn ObjectSet>> {
        let set = self
            .sets
            .iter()
            .find(|s| s.schema.name == object_type)
            .ok_or_else(|| {
                ConnectorError::BadRequest(format!(
                    "connector {} has no object type {object_type:?}",
                    self.name
                ))
            })?;
        Ok(Arc::clone(set) as Arc<dyn ObjectSet>)
    }
}

/// One object type of a database-table connector: the rows of its table.
#[derive(Debug)]
pub struct SqlObjectSet {
    settings: Arc<SqlSettings>,
    pool: SqlPool,
    schema: Arc<ObjectTypeSchema>,
    /// The properties read back, with their columns (the password is write-only).
    readable: Vec<(PropSchema, String)>,
    key: Column,
    /// The connector's capabilities, probed on first use.
    caps: Arc<OnceCell<Caps>>,
    /// Concurrent creates waiting for their multi-row INSERT.
    batcher: CreateBatcher,
    /// This set itself, for the task that flushes `batcher`.
    this: Weak<SqlObjectSet>,
}

impl SqlObjectSet {
    fn new(
        settings: Arc<SqlSettings>,
        pool: SqlPool,
        schema: Arc<ObjectTypeSchema>,
        caps: Arc<OnceCell<Caps>>,
        this: Weak<SqlObjectSet>,
    ) -> Self {
        let readable = schema
            .properties
            .iter()
            .filter(|p| p.readable)
            .map(|p| (p.clone(), column_of(&settings, &p.native_name)))
            // The password column is write-only whatever property names it.
            .filter(|(_, col)| settings.password_column.as_deref() != Some(col.as_str()))
            .collect();
        let key_kind = schema
            .properties
            .iter()
            .find(|p| p.native_name == schema::UID)
            .map_or(PropKind::String, |p| p.kind);
        let key = Column {
            name: settings.key_column.clone(),
            kind: key_kind,
        };
        Self {
            settings,
            pool,
            schema,
            readable,
            key,
            caps,
            batcher: CreateBatcher::default(),
            this,
        }
    }

    async fn caps(&self) -> ConnectorResult<Caps> {
        self.caps
            .get_or_try_init(|| probe_caps(&self.pool, self.settings.dialect))
            .await
            .copied()
    }

    /// Appends ` RETURNING key, col1, …` with the columns of `select`, every column as text.
    fn returning(&self, b: &mut SqlBuilder) {
        b.push(" RETURNING ").column_as_text(&self.key.name);
        for (_, col) in &self.readable {
            b.push(", ").column_as_text(col);
        }
    }

    /// One `INSERT` of rows that all set the same columns (those of the first row).
    fn insert_statement(&self, rows: &[&NewRow], returning: bool) -> SqlBuilder {
        if self.settings.dialect == Dialect::Postgres
            && rows.len() > 1
            && let Some(b) = self.unnest_statement(rows, returning)
        {
            return b;
        }
        let mut b = self.builder();
        b.push("INSERT INTO ")
            .ident(&self.settings.table)
            .push(" (")
            .ident(&self.key.name);
        if let Some(first) = rows.first() {
            for (col, _) in &first.assignments {
                b.push(", ").ident(col);
            }
        }
        b.push(") VALUES ");
        for (i, row) in rows.iter().enumerate() {
            if i > 0 {
                b.push(", ");
            }
            b.push("(").param(row.key.clone());
            for (_, p) in &row.assignments {
                b.push(", ");
                match p {
                    Some(p) => b.param(p.clone()),
                    None => b.push("NULL"),
                };
            }
            b.push(")");
        }
        if returning {
            self.returning(&mut b);
        }
        b
    }

    /// PostgreSQL: `INSERT INTO t (k, c1, …) SELECT u.c0, u.c1, … FROM UNNEST($1::text[], …)
    /// AS u(c0, c1, …)`, one array parameter per column, so every batch of this column set has
    /// the same text (one prepared statement, one plan) — a `VALUES` list of 1,000 rows is a new
    /// 10,000-parameter statement to parse and plan each time. A column NULL in every row is a
    /// `NULL` literal (an array needs an element type); `None` when a column mixes value kinds,
    /// and the caller uses `VALUES`.
    fn unnest_statement(&self, rows: &[&NewRow], returning: bool) -> Option<SqlBuilder> {
        let first = rows.first()?;
        let width = first.assignments.len();
        if rows.iter().any(|r| r.assignments.len() != width) {
            return None;
        }
        let mut columns = vec![ParamColumn::collect(rows.iter().map(|r| Some(&r.key)))];
        for (i, _) in first.assignments.iter().enumerate() {
            let values = rows.iter().map(move |r| r.assignments[i].1.as_ref());
            if values.clone().all(|v| v.is_none()) {
                columns.push(None);
            } else {
                columns.push(Some(ParamColumn::collect(values)?));
            }
        }
        let key = columns[0].take()?;
        let mut b = self.builder();
        b.push("INSERT INTO ")
            .ident(&self.settings.table)
            .push(" (")
            .ident(&self.key.name);
        for (col, _) in &first.assignments {
            b.push(", ").ident(col);
        }
        b.push(") SELECT u.c0");
        for (i, column) in columns.iter().enumerate().skip(1) {
            match column {
                Some(_) => b.push(&format!(", u.c{i}")),
                None => b.push(", NULL"),
            };
        }
        b.push(" FROM UNNEST(").column_param(key);
        let mut names = vec!["c0".to_string()];
        for (i, column) in columns.into_iter().enumerate().skip(1) {
            if let Some(column) = column {
                b.push(", ").column_param(column);
                names.push(format!("c{i}"));
            }
        }
        b.push(") AS u(").push(&names.join(", ")).push(")");
        if returning {
            self.returning(&mut b);
        }
        Some(b)
    }

    /// Inserts rows in one statement and returns them as stored (in no particular order).
    async fn insert_returning(
        &self,
        rows: &[&NewRow],
    ) -> ConnectorResult<Vec<Vec<Option<String>>>> {
        self.pool
            .fetch_text(&self.insert_statement(rows, true))
            .await
    }

    /// The key of a returned row, in the form `batch::key_text` gives the key that was sent.
    fn returned_key(&self, row: &[Option<String>]) -> String {
        let text = row.first().cloned().flatten().unwrap_or_default();
        match param_for(&self.key, &Value::String(text.clone())) {
            Ok(p) => batch::key_text(&p),
            Err(_) => batch::key_text(&Param::Str(text)),
        }
    }

    /// Reads a row just written.
    async fn read_back(&self, id: &str) -> ConnectorResult<Value> {
        self.get(id)
            .await?
            .ok_or_else(|| ConnectorError::Internal(format!("{id} vanished right after create")))
    }

    fn builder(&self) -> SqlBuilder {
        SqlBuilder::new(self.settings.dialect)
    }

    /// `SELECT key, col1, ... FROM table`, every column as text.
    fn select(&self) -> SqlBuilder {
        let mut b = self.builder();
        b.push("SELECT ").column_as_text(&self.key.name);
        for (_, col) in &self.readable {
            b.push(", ").column_as_text(col);
        }
        b.push(" FROM ").ident(&self.settings.table);
        b
    }

    fn key_param(&self, id: &str) -> ConnectorResult<Param> {
        param_for(&self.key, &Value::String(id.to_owned())).map_err(|_| {
            ConnectorError::BadRequest(format!("{id:?} is not a valid id for this table"))
        })
    }

    fn row_to_object(&self, row: &[Option<String>]) -> ConnectorResult<Value> {
        let mut map = Map::with_capacity(row.len());
        let id = row.first().cloned().flatten().unwrap_or_default();
        map.insert("_id".into(), Value::String(id));
        for ((prop, col), cell) in self.readable.iter().zip(row.iter().skip(1)) {
            let Some(text) = cell else { continue };
            match schema::value_from_text(prop, text, None) {
                Ok(Some(v)) => {
                    map.insert(prop.name.clone(), v);
                }
                Ok(None) => {}
                Err(e) => return Err(ConnectorError::InvalidData(format!("column {col}: {e}"))),
            }
        }
        Ok(Value::Object(map))
    }

    /// The columns and values a write sets. With `all`, every mapped column not in the object
    /// is set to NULL (a replace); the password is only written when given.
    fn assignments(&self, object: &Value) -> ConnectorResult<Vec<(String, Option<Param>)>> {
        let obj = object
            .as_object()
            .ok_or_else(|| ConnectorError::InvalidData("an object must be a JSON object".into()))?;
        if let Some(unknown) = obj
            .keys()
            .find(|k| !k.starts_with('_') && self.schema.property(k).is_none())
        {
            return Err(ConnectorError::InvalidData(format!(
                "{unknown:?} is not a property of object type {}",
                self.schema.name
            )));
        }
        let mut out = Vec::new();
        for prop in &self.schema.properties {
            let col = column_of(&self.settings, &prop.native_name);
            if col == self.key.name {
                continue;
            }
            let value = obj.get(&prop.name).unwrap_or(&Value::Null);
            // A write-only column keeps its value unless the object sets it (reads never
            // return it, so a read-modify-write must not clear it).
            if !prop.readable && value.is_null() {
                continue;
            }
            let param = match value {
                Value::Null => None,
                Value::Array(items) if items.is_empty() => None,
                Value::Array(items) if items.len() == 1 => {
                    Some(self.write_param(prop, &col, &items[0])?)
                }
                other => Some(self.write_param(prop, &col, other)?),
            };
            out.push((col, param));
        }
        Ok(out)
    }

    fn write_param(&self, prop: &PropSchema, col: &str, value: &Value) -> ConnectorResult<Param> {
        param_of(prop.kind, col, value).map_err(|_| {
            ConnectorError::InvalidData(format!("{}: {value} does not fit column {col}", prop.name))
        })
    }

    fn resolver(&self) -> Resolver<'_> {
        Resolver { set: self }
    }

    fn new_id(&self, id: Option<&str>, object: &Value) -> String {
        self.determined_id(id, object)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
    }

    /// The id a create gives the row when the caller or the object names it (the key column).
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
        // ICF's database table connector names rows by the key column (`__UID__` = `__NAME__`).
        let key_prop = self.schema.properties.iter().find(|p| {
            p.native_name == schema::UID
                || p.native_name == schema::NAME
                || p.native_name == self.key.name
        });
        if let Some(v) = key_prop.and_then(|p| object.get(&p.name)) {
            match v {
                Value::String(s) if !s.is_empty() => return Some(s.clone()),
                Value::Number(n) => return Some(n.to_string()),
                _ => {}
            }
        }
        None
    }
}

/// The column of a native name: `__UID__`/`__NAME__` are the key column, `__PASSWORD__` the
/// password column.
fn column_of(settings: &SqlSettings, native: &str) -> String {
    match native {
        schema::UID | schema::NAME => settings.key_column.clone(),
        schema::PASSWORD => settings
            .password_column
            .clone()
            .unwrap_or_else(|| native.to_owned()),
        other => other.to_owned(),
    }
}

struct Resolver<'a> {
    set: &'a SqlObjectSet,
}

impl ColumnResolver for Resolver<'_> {
    fn column(&self, field: &str) -> Option<Column> {
        if field == "_id" {
            return Some(self.set.key.clone());
        }
        self.set
            .readable
            .iter()
            .find(|(p, _)| p.name == field)
            .map(|(p, col)| Column {
                name: col.clone(),
                kind: p.kind,
            })
    }
}

#[async_trait]
impl ObjectSet for SqlObjectSet {
    async fn get(&self, id: &str) -> ConnectorResult<Option<Value>> {
        let mut b = self.select();
        b.push(" WHERE ")
            .ident(&self.key.name)
            .push(" = ")
            .param(self.key_param(id)?);
        let rows = self.pool.fetch_text(&b).await?;
        rows.first().map(|r| self.row_to_object(r)).transpose()
    }

    async fn get_many(&self, ids: &[String]) -> ConnectorResult<Vec<Value>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(IN_CHUNK) {
            let mut b = self.select();
            b.push(" WHERE ").ident(&self.key.name).push(" IN (");
            let mut any = false;
            for id in chunk {
                let Ok(p) = self.key_param(id) else { continue };
                if any {
                    b.push(", ");
                }
                b.param(p);
                any = true;
            }
            if !any {
                continue;
            }
            b.push(")");
            for row in self.pool.fetch_text(&b).await? {
                out.push(self.row_to_object(&row)?);
            }
        }
        Ok(out)
    }

    async fn query(&self, request: &QueryRequest) -> ConnectorResult<QueryPage> {
        let resolver = self.resolver();
        let mut keys: Vec<OrderKey> = Vec::new();
        let mut key_direction = true;
        for k in &request.sort_keys {
            let field = match k.field.tokens() {
                [f] => f.as_str(),
                _ => {
                    return Err(ConnectorError::BadRequest(format!(
                        "cannot sort on the nested field {}",
                        k.field
                    )));
                }
            };
            if field == "_id" {
                key_direction = k.ascending;
                continue;
            }
            let column = resolver.column(field).ok_or_else(|| {
                ConnectorError::BadRequest(format!("unknown sort field {field:?}"))
            })?;
            if column.name == self.key.name {
                key_direction = k.ascending;
                continue;
            }
            keys.push(OrderKey {
                column,
                ascending: k.ascending,
                nullable: true,
            });
        }
        keys.push(OrderKey {
            column: self.key.clone(),
            ascending: key_direction,
            nullable: false,
        });

        let mut b = self.select();
        b.push(" WHERE ");
        match &request.filter {
            Some(f) => where_clause(&mut b, f, &resolver)?,
            None => {
                b.push("1=1");
            }
        }
        let mut count_query = None;
        if request.total_policy != TotalPolicy::None {
            let mut c = self.builder();
            c.push("SELECT COUNT(*) FROM ")
                .ident(&self.settings.table)
                .push(" WHERE ");
            match &request.filter {
                Some(f) => where_clause(&mut c, f, &resolver)?,
                None => {
                    c.push("1=1");
                }
            }
            count_query = Some(c);
        }
        if let Some(cookie) = &request.cookie {
            let position = decode_cookie(cookie, keys.len())?;
            b.push(" AND ");
            after_position(&mut b, &keys, &position)?;
        }
        order_by(&mut b, &keys);
        let page_size = request.page_size.filter(|n| *n > 0);
        let offset = request.offset.unwrap_or(0);
        match page_size {
            Some(n) => b.push(&format!(" LIMIT {}", n + 1)),
            None => b.push(" LIMIT 9223372036854775807"),
        };
        if offset > 0 {
            b.push(&format!(" OFFSET {offset}"));
        }
        let mut rows = self.pool.fetch_text(&b).await?;
        let more = page_size.is_some_and(|n| rows.len() > n);
        if let Some(n) = page_size {
            rows.truncate(n);
        }
        let cookie = match rows.last() {
            Some(last) if more => Some(encode_cookie(&self.position_of(last, &keys)?)),
            _ => None,
        };
        let fields = request.fields.as_deref();
        let results = rows
            .iter()
            .map(|r| self.row_to_object(r).map(|o| project_fields(o, fields)))
            .collect::<ConnectorResult<Vec<_>>>()?;
        let total = match count_query {
            Some(c) => Some(self.pool.count(&c).await?),
            None => None,
        };
        Ok(QueryPage {
            results,
            cookie,
            total,
        })
    }

    async fn count(&self) -> ConnectorResult<Option<u64>> {
        let mut b = self.builder();
        b.push("SELECT COUNT(*) FROM ").ident(&self.settings.table);
        self.pool.count(&b).await.map(Some)
    }

    /// One round trip where the server has `INSERT … RETURNING`, shared with concurrent creates
    /// where it may be (see `batch`); INSERT then SELECT elsewhere (MySQL).
    async fn create(&self, id: Option<&str>, object: Value) -> ConnectorResult<Value> {
        let id = self.new_id(id, &object);
        let assignments = self.assignments(&object)?;
        let key = self.key_param(&id)?;
        let row = NewRow {
            id,
            key,
            assignments,
        };
        let caps = self.caps().await?;
        if caps.batch_creates {
            return batch::create(self, row).await;
        }
        if caps.insert_returning {
            let rows = self.insert_returning(&[&row]).await?;
            return match rows.first() {
                Some(r) => self.row_to_object(r),
                None => self.read_back(&row.id).await,
            };
        }
        self.pool
            .execute(&self.insert_statement(&[&row], false))
            .await?;
        self.read_back(&row.id).await
    }

    fn creation_id(&self, id: Option<&str>, object: &Value) -> Option<String> {
        self.determined_id(id, object)
    }

    async fn update(&self, id: &str, _rev: Option<&str>, object: Value) -> ConnectorResult<Value> {
        let assignments = self.assignments(&object)?;
        if !assignments.is_empty() {
            let mut b = self.builder();
            b.push("UPDATE ").ident(&self.settings.table).push(" SET ");
            for (i, (col, p)) in assignments.into_iter().enumerate() {
                if i > 0 {
                    b.push(", ");
                }
                b.ident(&col).push(" = ");
                match p {
                    Some(p) => b.param(p),
                    None => b.push("NULL"),
                };
            }
            b.push(" WHERE ")
                .ident(&self.key.name)
                .push(" = ")
                .param(self.key_param(id)?);
            if self.caps().await?.update_returning {
                self.returning(&mut b);
                let rows = self.pool.fetch_text(&b).await?;
                return match rows.first() {
                    Some(r) => self.row_to_object(r),
                    None => Err(ConnectorError::NotFound(id.to_owned())),
                };
            }
            self.pool.execute(&b).await?;
        }
        // MySQL counts only changed rows, so existence is checked by reading back.
        self.get(id)
            .await?
            .ok_or_else(|| ConnectorError::NotFound(id.to_owned()))
    }

    async fn delete(&self, id: &str, _rev: Option<&str>) -> ConnectorResult<Option<Value>> {
        let mut b = self.builder();
        b.push("DELETE FROM ")
            .ident(&self.settings.table)
            .push(" WHERE ")
            .ident(&self.key.name)
            .push(" = ")
            .param(self.key_param(id)?);
        if self.caps().await?.delete_returning {
            self.returning(&mut b);
            let rows = self.pool.fetch_text(&b).await?;
            return match rows.first() {
                Some(r) => self.row_to_object(r).map(Some),
                None => Err(ConnectorError::NotFound(id.to_owned())),
            };
        }
        let old = self
            .get(id)
            .await?
            .ok_or_else(|| ConnectorError::NotFound(id.to_owned()))?;
        if self.pool.execute(&b).await? == 0 {
            return Err(ConnectorError::NotFound(id.to_owned()));
        }
        Ok(Some(old))
    }

    /// liveSync over `changeLogColumn` (a number that grows with each write), with a
    /// look-back for rows committed late (`changes.rs`).
    async fn changes_since(&self, token: Option<&Value>) -> ConnectorResult<ChangeBatch> {
        changes::changes_since(self, token).await
    }
}

impl SqlObjectSet {
    /// The keyset position of a row: the value of each order key, then the id.
    fn position_of(
        &self,
        row: &[Option<String>],
        keys: &[OrderKey],
    ) -> ConnectorResult<Vec<Value>> {
        let mut pos = Vec::with_capacity(keys.len());
        for k in keys {
            if k.column.name == self.key.name {
                pos.push(Value::String(
                    row.first().cloned().flatten().unwrap_or_default(),
                ));
                continue;
            }
            let idx = self.readable.iter().position(|(_, c)| *c == k.column.name);
            let cell = idx.and_then(|i| row.get(i + 1)).cloned().flatten();
            let value = match (cell, idx) {
                (Some(text), Some(i)) => schema::value_from_text(&self.readable[i].0, &text, None)
                    .map_err(ConnectorError::InvalidData)?
                    .unwrap_or(Value::Null),
                _ => Value::Null,
            };
            pos.push(value);
        }
        Ok(pos)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests may unwrap.

    use super::*;
    use serde_json::json;

    fn set() -> Arc<SqlObjectSet> {
        let props: Map<String, Value> = serde_json::from_value(json!({
            "url": "postgres://idsync@127.0.0.1:9/never_connected",
            "table": "accounts", "keyColumn": "id"
        }))
        .unwrap();
        let types = json!({"account": {"nativeType": "__ACCOUNT__", "properties": {
            "userName": {"type": "string", "nativeName": "userName"},
            "age": {"type": "integer", "nativeName": "age"},
            "score": {"type": "number", "nativeName": "score"},
            "active": {"type": "boolean", "nativeName": "active"},
            "note": {"type": "string", "nativeName": "note"}
        }}});
        let c = SqlConnector::new("db", &props, Some(&types), Path::new("/")).unwrap();
        Arc::clone(&c.sets[0])
    }

    fn row(set: &SqlObjectSet, i: i64, score: Value) -> NewRow {
        let obj = json!({"userName": format!("u{i}"), "age": i, "score": score,
            "active": i % 2 == 0, "note": null});
        NewRow {
            id: format!("id{i}"),
            key: set.key_param(&format!("id{i}")).unwrap(),
            assignments: set.assignments(&obj).unwrap(),
        }
    }

    #[tokio::test]
    async fn postgres_batches_of_any_size_share_one_statement_text() {
        let set = set();
        let rows: Vec<NewRow> = (0..3).map(|i| row(&set, i, json!(1.5))).collect();
        let refs: Vec<&NewRow> = rows.iter().collect();
        let two = set.insert_statement(&refs[..2], true);
        let three = set.insert_statement(&refs, true);
        assert_eq!(
            two.sql, three.sql,
            "the text does not depend on the row count"
        );
        assert!(
            three.sql.contains(
                "SELECT u.c0, u.c1, u.c2, u.c3, u.c4, NULL FROM UNNEST($1::text[], \
                 $2::text[], $3::int8[], $4::float8[], $5::bool[]) AS u(c0, c1, c2, c3, c4)"
            ),
            "{}",
            three.sql
        );
        assert_eq!(three.params.len(), 5, "one array per column");
        assert_eq!(
            three.params[2],
            Param::Column(ParamColumn::Int(vec![Some(0), Some(1), Some(2)]))
        );
    }

    #[tokio::test]
    async fn postgres_columns_mixing_kinds_fall_back_to_values() {
        let set = set();
        // A number property holds an integer in one row and a fraction in the other.
        let rows = [row(&set, 1, json!(2)), row(&set, 2, json!(2.5))];
        let refs: Vec<&NewRow> = rows.iter().collect();
        let b = set.insert_statement(&refs, false);
        assert!(b.sql.contains(" VALUES ("), "{}", b.sql);
        assert!(!b.sql.contains("UNNEST"), "{}", b.sql);
    }
}
