//! Links (docs/configuration.md#mappings): point lookups on the two unique keys, batch lookups for a page of
//! ids, keyset batches for prefetch, and `GET repo/link` queries.

use super::PgRepository;
use super::convert::{as_i64, as_u64, pg_err, rev_str};
use super::filter::{FieldSource, SqlParams};
use super::query::{self, QuerySpec};
use crate::error::{RepoError, RepoResult};
use crate::model::Link;
use idsync_core::{QueryPage, QueryRequest};
use tokio_postgres::Row;

pub(crate) const LINK_COLUMNS: &str = "id, rev, link_type, link_qualifier, first_id, second_id";

const LINK_FIELDS: &[(&str, &str)] = &[
    ("_id", "to_jsonb(id)"),
    ("_rev", "to_jsonb(rev::text)"),
    ("linkType", "to_jsonb(link_type)"),
    ("linkQualifier", "to_jsonb(link_qualifier)"),
    ("firstId", "to_jsonb(first_id)"),
    ("secondId", "to_jsonb(second_id)"),
];

/// The batch lookup by `side` (`first_id` or `second_id`): `$1` the link type, `$2` the ids, every
/// qualifier. The side's unique index leads with (type, side), so the natural plan is one index
/// probe per id; the only other plans a planner can pick (on stale statistics) read the type's
/// links once against a hashed id list — linear, never one scan per id.
fn links_for_sql(side: &str) -> String {
    format!(
        "SELECT {LINK_COLUMNS} FROM links WHERE link_type = $1 AND {side} = ANY($2::text[]) \
         ORDER BY id"
    )
}

pub(crate) fn link_from_row(row: &Row) -> RepoResult<Link> {
    let get = |i: usize| row.try_get::<_, String>(i).map_err(RepoError::internal);
    Ok(Link {
        id: get(0)?,
        rev: rev_str(row.try_get::<_, i64>(1).map_err(RepoError::internal)?),
        link_type: get(2)?,
        link_qualifier: get(3)?,
        first_id: get(4)?,
        second_id: get(5)?,
    })
}

impl PgRepository {
    async fn links_where(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> RepoResult<Vec<Link>> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(sql).await.map_err(pg_err)?;
        let rows = client.query(&stmt, params).await.map_err(pg_err)?;
        rows.iter().map(link_from_row).collect()
    }

    pub(crate) async fn pg_get_link(&self, id: &str) -> RepoResult<Option<Link>> {
        let sql = format!("SELECT {LINK_COLUMNS} FROM links WHERE id = $1");
        Ok(self.links_where(&sql, &[&id]).await?.into_iter().next())
    }

    pub(crate) async fn pg_link_by(
        &self,
        side: &str,
        link_type: &str,
        qualifier: &str,
        id: &str,
    ) -> RepoResult<Option<Link>> {
        self.stats.keep_fresh(&self.pool);
        let sql = format!(
            "SELECT {LINK_COLUMNS} FROM links WHERE link_type = $1 AND link_qualifier = $2 AND {side} = $3"
        );
        Ok(self
            .links_where(&sql, &[&link_type, &qualifier, &id])
            .await?
            .into_iter()
            .next())
    }

    /// The links of `link_type` whose `side` is one of `ids`, sent as a fresh (unnamed)
    /// statement so that it is planned with the ids as constants: a cached generic plan made
    /// while `links` was empty once chose to compare every link of the type with the whole
    /// array, unhashed — quadratic as the table grows (BENCHMARKS.md, clustered first load).
    pub(crate) async fn pg_links_for(
        &self,
        side: &str,
        link_type: &str,
        ids: &[String],
    ) -> RepoResult<Vec<Link>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.client().await?;
        self.stats.keep_fresh(&self.pool);
        let rows = client
            .query(&links_for_sql(side), &[&link_type, &ids])
            .await
            .map_err(pg_err)?;
        rows.iter().map(link_from_row).collect()
    }

    /// `EXPLAIN (ANALYZE)` of [`Self::pg_links_for`]'s statement (tests and diagnostics).
    pub async fn explain_links_for(
        &self,
        side: &str,
        link_type: &str,
        ids: &[String],
    ) -> RepoResult<String> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!("EXPLAIN (ANALYZE, COSTS OFF) {}", links_for_sql(side)),
                &[&link_type, &ids],
            )
            .await
            .map_err(pg_err)?;
        Ok(rows
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<Vec<_>>()
            .join("\n"))
    }

    pub(crate) async fn pg_load_links(
        &self,
        link_type: &str,
        qualifier: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> RepoResult<Vec<Link>> {
        let sql = format!(
            "SELECT {LINK_COLUMNS} FROM links WHERE link_type = $1 \
             AND ($2::text IS NULL OR link_qualifier = $2) AND ($3::text IS NULL OR id > $3) \
             ORDER BY id LIMIT $4"
        );
        self.links_where(&sql, &[&link_type, &qualifier, &after, &as_i64(limit)])
            .await
    }

    pub(crate) async fn pg_count_links(&self, link_type: &str) -> RepoResult<u64> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT count(*) FROM links WHERE link_type = $1")
            .await
            .map_err(pg_err)?;
        let row = client
            .query_one(&stmt, &[&link_type])
            .await
            .map_err(pg_err)?;
        Ok(as_u64(row.get(0)))
    }

    pub(crate) async fn pg_query_links(&self, q: &QueryRequest) -> RepoResult<QueryPage> {
        let client = self.client().await?;
        let spec = QuerySpec {
            from: "links",
            base_where: Vec::new(),
            fields: FieldSource::Columns(LINK_FIELDS),
            id_col: "id",
            select: LINK_COLUMNS,
        };
        query::run(&client, spec, SqlParams::new(), q, |row| {
            Ok(link_from_row(row)?.to_json())
        })
        .await
    }
}
