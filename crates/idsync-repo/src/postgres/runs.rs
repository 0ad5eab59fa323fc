//! Reconciliation runs, their counters and pruning. The one-active-run-per-mapping rule is the
//! partial unique index `runs_one_active_per_mapping`, so it holds across every node.

use super::PgRepository;
use super::convert::{as_i64, from_ns, opt_ns, parse_enum, pg_err, to_ns, violated_constraint};
use crate::error::{ConflictKind, RepoError, RepoResult};
use crate::model::{RunCounters, RunRecord, RunUpdate};
use deadpool_postgres::GenericClient;
use idsync_core::ReconState;
use tokio_postgres::Row;

const RUN_COLUMNS: &str = "id, mapping, is_analyze, state, stage, started_ns, ended_ns, \
     cancel_requested, message, parameters, summary, totals, node_id";

fn run_from_row(row: &Row) -> RepoResult<RunRecord> {
    let err = RepoError::internal;
    Ok(RunRecord {
        id: row.try_get(0).map_err(err)?,
        mapping: row.try_get(1).map_err(err)?,
        analyze: row.try_get(2).map_err(err)?,
        state: parse_enum(row.try_get(3).map_err(err)?)?,
        stage: parse_enum(row.try_get(4).map_err(err)?)?,
        started: from_ns(row.try_get::<_, Option<i64>>(5).map_err(err)?.unwrap_or(0)),
        ended: row.try_get::<_, Option<i64>>(6).map_err(err)?.map(from_ns),
        cancel_requested: row.try_get(7).map_err(err)?,
        message: row.try_get(8).map_err(err)?,
        parameters: row.try_get(9).map_err(err)?,
        summary: row.try_get(10).map_err(err)?,
        totals: row.try_get(11).map_err(err)?,
        node_id: row
            .try_get::<_, Option<String>>(12)
            .map_err(err)?
            .unwrap_or_default(),
    })
}

impl PgRepository {
    pub(crate) async fn pg_create_run(&self, run: &RunRecord) -> RepoResult<()> {
        let client = self.client().await?;
        let sql = format!(
            "INSERT INTO runs ({RUN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        );
        let result = client
            .execute(
                &sql,
                &[
                    &run.id,
                    &run.mapping,
                    &run.analyze,
                    &run.state.as_str(),
                    &run.stage.as_str(),
                    &to_ns(&run.started)?,
                    &opt_ns(&run.ended)?,
                    &run.cancel_requested,
                    &run.message,
                    &run.parameters,
                    &run.summary,
                    &run.totals,
                    &run.node_id,
                ],
            )
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match violated_constraint(&e).as_deref() {
                Some("runs_one_active_per_mapping") => {
                    let active = self.pg_active_run(&run.mapping).await?;
                    Err(RepoError::Conflict(ConflictKind::ActiveRun {
                        mapping: run.mapping.clone(),
                        active_run_id: active.map(|r| r.id).unwrap_or_default(),
                    }))
                }
                Some(_) => Err(RepoError::already_exists("run", run.id.clone())),
                None => Err(pg_err(e)),
            },
        }
    }

    pub(crate) async fn pg_update_run(&self, run_id: &str, u: &RunUpdate) -> RepoResult<RunRecord> {
        let client = self.client().await?;
        update_run_on(&client, run_id, u).await
    }

    pub(crate) async fn pg_request_cancel(&self, run_id: &str) -> RepoResult<bool> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "UPDATE runs SET cancel_requested = (state = 'ACTIVE') OR cancel_requested WHERE id = $1 \
                 RETURNING state = 'ACTIVE'",
                &[&run_id],
            )
            .await
            .map_err(pg_err)?;
        match row {
            Some(r) => Ok(r.get(0)),
            None => Err(RepoError::NotFound(format!("run {run_id}"))),
        }
    }

    async fn runs_where(
        &self,
        cond: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> RepoResult<Vec<RunRecord>> {
        let client = self.client().await?;
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs {cond}");
        let rows = client.query(&sql, params).await.map_err(pg_err)?;
        rows.iter().map(run_from_row).collect()
    }

    pub(crate) async fn pg_get_run(&self, run_id: &str) -> RepoResult<Option<RunRecord>> {
        Ok(self
            .runs_where("WHERE id = $1", &[&run_id])
            .await?
            .into_iter()
            .next())
    }

    pub(crate) async fn pg_list_runs(&self, mapping: Option<&str>) -> RepoResult<Vec<RunRecord>> {
        self.runs_where(
            "WHERE $1::text IS NULL OR mapping = $1 ORDER BY seq DESC",
            &[&mapping],
        )
        .await
    }

    pub(crate) async fn pg_active_run(&self, mapping: &str) -> RepoResult<Option<RunRecord>> {
        Ok(self
            .runs_where("WHERE mapping = $1 AND state = 'ACTIVE'", &[&mapping])
            .await?
            .into_iter()
            .next())
    }

    pub(crate) async fn pg_run_counters(&self, run_id: &str) -> RepoResult<RunCounters> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT node_id, key, value FROM run_counters WHERE run_id = $1",
                &[&run_id],
            )
            .await
            .map_err(pg_err)?;
        let mut out = RunCounters::default();
        for r in rows {
            let (node, key, value): (String, String, i64) = (r.get(0), r.get(1), r.get(2));
            *out.totals.entry(key.clone()).or_insert(0) += value;
            out.by_node.entry(node).or_default().insert(key, value);
        }
        Ok(out)
    }

    pub(crate) async fn pg_prune_runs(&self, mapping: &str, keep: usize) -> RepoResult<u64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let ids: Vec<String> = tx
            .query(
                "SELECT id FROM runs WHERE mapping = $1 AND state <> 'ACTIVE' ORDER BY seq DESC OFFSET $2",
                &[&mapping, &as_i64(keep)],
            )
            .await
            .map_err(pg_err)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if ids.is_empty() {
            return Ok(0);
        }
        for table in ["run_counters", "plan_entries", "target_ids", "jobs"] {
            let sql = format!("DELETE FROM {table} WHERE run_id = ANY($1)");
            tx.execute(&sql, &[&ids]).await.map_err(pg_err)?;
        }
        let n = tx
            .execute("DELETE FROM runs WHERE id = ANY($1)", &[&ids])
            .await
            .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        Ok(n)
    }
}

/// Applies a run update on a connection or inside a transaction (`Op::UpdateRun`).
pub(crate) async fn update_run_on<C: GenericClient + Sync>(
    client: &C,
    run_id: &str,
    u: &RunUpdate,
) -> RepoResult<RunRecord> {
    let sql = format!(
        "UPDATE runs SET state = COALESCE($2, state), stage = COALESCE($3, stage), \
         ended_ns = COALESCE($4, ended_ns), message = COALESCE($5, message), \
         summary = COALESCE($6, summary), totals = COALESCE($7, totals) \
         WHERE id = $1 RETURNING {RUN_COLUMNS}"
    );
    let row = client
        .query_opt(
            &sql,
            &[
                &run_id,
                &u.state.map(ReconState::as_str),
                &u.stage.map(|s| s.as_str()),
                &opt_ns(&u.ended)?,
                &u.message,
                &u.summary,
                &u.totals,
            ],
        )
        .await
        .map_err(|e| match violated_constraint(&e) {
            // Re-activating a finished run while another is active.
            Some(_) => RepoError::Conflict(ConflictKind::Other(format!(
                "run {run_id}: another run is active"
            ))),
            None => pg_err(e),
        })?;
    match row {
        Some(r) => run_from_row(&r),
        None => Err(RepoError::NotFound(format!("run {run_id}"))),
    }
}
