//! Managed objects: reads, CREST queries over the jsonb documents, counts, and the expression
//! indexes that make correlation queries (`userName eq "x"` over millions of users) index scans.

use super::PgRepository;
use super::convert::pg_err;
use super::filter::{
    FieldSource, SqlParams, ci_text, equality_only, quote_ident, quote_literal, to_sql,
};
use super::query::{self, QuerySpec, where_clause};
use crate::error::{RepoError, RepoResult};
use idsync_core::{Filter, JsonPointer, QueryPage, QueryRequest};
use serde_json::Value;

pub(crate) const OBJECT_FIELDS: FieldSource<'static> = FieldSource::Document("obj");

/// Puts `_id` and `_rev` first: jsonb stores keys in its own order, the API shows them first.
pub(crate) fn present(obj: Value) -> Value {
    match obj {
        Value::Object(mut map) => {
            let mut out = serde_json::Map::with_capacity(map.len());
            for key in ["_id", "_rev"] {
                if let Some(v) = map.shift_remove(key) {
                    out.insert(key.to_string(), v);
                }
            }
            out.extend(map);
            Value::Object(out)
        }
        other => other,
    }
}

fn spec_for(object_type: &str) -> QuerySpec<'static> {
    QuerySpec {
        from: "objects",
        // The type is inlined (escaped) rather than bound so that the planner can match the
        // partial expression indexes `ensure_indexes` creates for this type.
        base_where: vec![format!("object_type = {}", quote_literal(object_type))],
        fields: OBJECT_FIELDS,
        id_col: "id",
        select: "obj",
    }
}

/// A stable short hash for index names (PostgreSQL names are limited to 63 bytes).
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl PgRepository {
    pub(crate) async fn pg_get_object(
        &self,
        object_type: &str,
        id: &str,
    ) -> RepoResult<Option<Value>> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT obj FROM objects WHERE object_type = $1 AND id = $2")
            .await
            .map_err(pg_err)?;
        let row = client
            .query_opt(&stmt, &[&object_type, &id])
            .await
            .map_err(pg_err)?;
        Ok(row.map(|r| present(r.get(0))))
    }

    pub(crate) async fn pg_get_objects(
        &self,
        object_type: &str,
        ids: &[String],
    ) -> RepoResult<Vec<Value>> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT o.obj FROM unnest($2::text[]) WITH ORDINALITY AS w(id, n) \
                 JOIN objects o ON o.object_type = $1 AND o.id = w.id ORDER BY w.n",
            )
            .await
            .map_err(pg_err)?;
        let rows = client
            .query(&stmt, &[&object_type, &ids])
            .await
            .map_err(pg_err)?;
        Ok(rows.into_iter().map(|r| present(r.get(0))).collect())
    }

    pub(crate) async fn pg_query_objects(
        &self,
        object_type: &str,
        q: &QueryRequest,
    ) -> RepoResult<QueryPage> {
        // Correlation queries run here once per object while `objects` may grow from empty.
        let client = if q.cookie.is_none() && q.filter.as_ref().is_some_and(equality_only) {
            self.generic_plan_client().await?
        } else {
            self.client().await?
        };
        self.stats.keep_fresh(&self.pool);
        query::run(&client, spec_for(object_type), SqlParams::new(), q, |row| {
            Ok(present(row.try_get(0).map_err(RepoError::internal)?))
        })
        .await
    }

    pub(crate) async fn pg_explain_query(
        &self,
        object_type: &str,
        q: &QueryRequest,
    ) -> RepoResult<String> {
        let client = self.client().await?;
        query::explain(&client, spec_for(object_type), SqlParams::new(), q).await
    }

    pub(crate) async fn pg_count_objects(
        &self,
        object_type: &str,
        filter: Option<&Filter>,
    ) -> RepoResult<u64> {
        let client = self.client().await?;
        let mut params = SqlParams::new();
        let mut conditions = spec_for(object_type).base_where;
        if let Some(f) = filter {
            conditions
                .push(to_sql(f, OBJECT_FIELDS, &mut params).map_err(|e| RepoError::BadQuery(e.0))?);
        }
        let sql = format!("SELECT count(*) FROM objects{}", where_clause(&conditions));
        let stmt = client.prepare_cached(&sql).await.map_err(pg_err)?;
        let row = client
            .query_one(&stmt, &params.refs())
            .await
            .map_err(pg_err)?;
        Ok(super::convert::as_u64(row.get(0)))
    }

    /// Per property: a partial btree on the case-insensitive text (serves `eq`, ranges and
    /// sorting by that text) and a tiny partial index of the rows where the property is an
    /// array, so the any-element arm of a translated comparison is an index scan too and the
    /// planner can combine both arms (BitmapOr) instead of scanning the table.
    pub(crate) async fn pg_ensure_indexes(
        &self,
        object_type: &str,
        properties: &[String],
    ) -> RepoResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        // Two nodes starting together must not race on the same index name.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&0x6964_7379_6e64_i64])
            .await
            .map_err(pg_err)?;
        for property in properties {
            let ptr = JsonPointer::parse(property);
            if ptr.is_root() {
                continue;
            }
            let name = format!("ix_obj_{:016x}", fnv1a(&format!("{object_type}\u{0}{ptr}")));
            let type_lit = quote_literal(object_type);
            let text = ci_text(&OBJECT_FIELDS.text(&ptr));
            let jsonb = OBJECT_FIELDS.jsonb(&ptr);
            let sql = format!(
                "CREATE INDEX IF NOT EXISTS {} ON objects ({text}) WHERE object_type = {type_lit}; \
                 CREATE INDEX IF NOT EXISTS {} ON objects (id) \
                 WHERE object_type = {type_lit} AND jsonb_typeof({jsonb}) = 'array'",
                quote_ident(&format!("{name}_ci")),
                quote_ident(&format!("{name}_arr")),
            );
            tx.batch_execute(&sql).await.map_err(pg_err)?;
        }
        tx.commit().await.map_err(pg_err)?;
        // Fresh statistics let the planner see how selective the new indexes are.
        client
            .batch_execute("ANALYZE objects")
            .await
            .map_err(pg_err)
    }
}
