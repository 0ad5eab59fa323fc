//! Audit entries, dry-run plan entries, the clustered-recon target-id registry and liveSync
//! tokens: the append-mostly records of runs and sync.

use super::PgRepository;
use super::convert::{as_u64, pg_err, to_ns};
use super::filter::{FieldSource, SqlParams};
use super::query::{self, QuerySpec};
use crate::error::{RepoError, RepoResult};
use crate::model::{AuditEntry, AuditKind};
use chrono::{DateTime, Utc};
use idsync_core::{QueryPage, QueryRequest};
use serde_json::Value;

/// Every recon audit entry as `(kind, id, entry)`: the documents of `audit` and the narrow recon
/// decisions rendered as the same JSON (src/recon_entry.rs).
static RECON_AUDIT_FROM: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let pairs: Vec<String> = crate::recon_entry::FIELDS
        .iter()
        .map(|(key, col)| format!("'{key}', {col}"))
        .collect();
    format!(
        "(SELECT kind, id, entry FROM audit WHERE kind = 'recon' \
         UNION ALL SELECT 'recon' COLLATE \"C\", id, jsonb_build_object('entryType', 'entry', {}, '_id', id) \
         FROM recon_entries) a",
        pairs.join(", ")
    )
});

impl PgRepository {
    pub(crate) async fn pg_append_audit(&self, entries: &[AuditEntry]) -> RepoResult<()> {
        let client = self.client().await?;
        let refs: Vec<&AuditEntry> = entries.iter().collect();
        super::commit::append_audit(&client, &refs).await
    }

    pub(crate) async fn pg_query_audit(
        &self,
        kind: AuditKind,
        q: &QueryRequest,
    ) -> RepoResult<QueryPage> {
        let client = self.client().await?;
        let mut params = SqlParams::new();
        let kind_param = params.push(kind.as_str().to_string());
        let spec = QuerySpec {
            from: match kind {
                AuditKind::Recon => RECON_AUDIT_FROM.as_str(),
                AuditKind::Sync => "audit",
            },
            base_where: vec![format!("kind = {kind_param}::text")],
            fields: FieldSource::DocumentWithId {
                column: "entry",
                id_column: "id",
            },
            id_col: "id",
            select: "id, entry",
        };
        query::run(&client, spec, params, q, |row| {
            let id: String = row.try_get(0).map_err(RepoError::internal)?;
            let mut entry: Value = row.try_get(1).map_err(RepoError::internal)?;
            if let Value::Object(map) = &mut entry {
                map.entry("_id").or_insert(Value::String(id));
            }
            Ok(super::objects::present(entry))
        })
        .await
    }

    pub(crate) async fn pg_prune_audit(
        &self,
        kind: AuditKind,
        before: DateTime<Utc>,
    ) -> RepoResult<u64> {
        let client = self.client().await?;
        let before = to_ns(&before)?;
        let mut n = client
            .execute(
                "DELETE FROM audit WHERE kind = $1 AND timestamp_ns < $2",
                &[&kind.as_str(), &before],
            )
            .await
            .map_err(pg_err)?;
        if kind == AuditKind::Recon {
            n += client
                .execute(
                    "DELETE FROM recon_entries WHERE timestamp_ns < $1",
                    &[&before],
                )
                .await
                .map_err(pg_err)?;
        }
        Ok(n)
    }

    pub(crate) async fn pg_query_plan(
        &self,
        run_id: &str,
        q: &QueryRequest,
    ) -> RepoResult<QueryPage> {
        let client = self.client().await?;
        let mut params = SqlParams::new();
        let run_param = params.push(run_id.to_string());
        let spec = QuerySpec {
            from: "plan_entries",
            base_where: vec![format!("run_id = {run_param}::text")],
            fields: FieldSource::DocumentWithId {
                column: "entry",
                id_column: "id",
            },
            id_col: "id",
            select: "id, entry",
        };
        query::run(&client, spec, params, q, |row| {
            let id: String = row.try_get(0).map_err(RepoError::internal)?;
            let mut entry: Value = row.try_get(1).map_err(RepoError::internal)?;
            if let Value::Object(map) = &mut entry {
                map.entry("_id").or_insert(Value::String(id));
            }
            Ok(super::objects::present(entry))
        })
        .await
    }

    pub(crate) async fn pg_registry_among(
        &self,
        run_id: &str,
        ids: &[String],
        claimed: bool,
    ) -> RepoResult<Vec<String>> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT w.id FROM unnest($2::text[]) WITH ORDINALITY AS w(id, n) WHERE {} EXISTS \
             (SELECT 1 FROM target_ids t WHERE t.run_id = $1 AND t.target_id = w.id) ORDER BY w.n",
            if claimed { "" } else { "NOT" }
        );
        let stmt = client.prepare_cached(&sql).await.map_err(pg_err)?;
        let rows = client
            .query(&stmt, &[&run_id, &ids])
            .await
            .map_err(pg_err)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    pub(crate) async fn pg_count_registered(&self, run_id: &str) -> RepoResult<u64> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT count(*) FROM target_ids WHERE run_id = $1",
                &[&run_id],
            )
            .await
            .map_err(pg_err)?;
        Ok(as_u64(row.get(0)))
    }

    pub(crate) async fn pg_delete_registry(&self, run_id: &str) -> RepoResult<u64> {
        let client = self.client().await?;
        client
            .execute("DELETE FROM create_intents WHERE run_id = $1", &[&run_id])
            .await
            .map_err(pg_err)?;
        client
            .execute("DELETE FROM target_ids WHERE run_id = $1", &[&run_id])
            .await
            .map_err(pg_err)
    }

    pub(crate) async fn pg_create_intents(&self, job_id: &str) -> RepoResult<Vec<String>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT source_id FROM create_intents WHERE job_id = $1 ORDER BY source_id",
                &[&job_id],
            )
            .await
            .map_err(pg_err)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    pub(crate) async fn pg_get_sync_token(&self, source: &str) -> RepoResult<Option<Value>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT token FROM livesync_tokens WHERE source = $1",
                &[&source],
            )
            .await
            .map_err(pg_err)?;
        Ok(row.map(|r| r.get(0)))
    }

    pub(crate) async fn pg_set_sync_token(&self, source: &str, token: &Value) -> RepoResult<()> {
        let client = self.client().await?;
        super::commit::set_sync_token(&client, source, token).await
    }

    pub(crate) async fn pg_shared_key(&self, name: &str, candidate: &[u8]) -> RepoResult<Vec<u8>> {
        let client = self.client().await?;
        // One statement: the insert loses to a concurrent first writer without an error, and
        // the select then sees the winner's row (READ COMMITTED takes a new snapshot).
        client
            .execute(
                "INSERT INTO server_keys (name, key) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                &[&name, &candidate],
            )
            .await
            .map_err(pg_err)?;
        let row = client
            .query_one("SELECT key FROM server_keys WHERE name = $1", &[&name])
            .await
            .map_err(pg_err)?;
        Ok(row.get(0))
    }
}
