//! Jobs and leases: claims with `FOR UPDATE SKIP LOCKED` (two claimers never get the
//! same row, and neither waits for the other), a token incremented on every claim, and lease
//! renewal/release checked against that token.

use super::PgRepository;
use super::convert::{DB_NOW_NS, as_u64, from_ns, lease_ns, parse_enum, pg_err};
use crate::error::{RepoError, RepoResult};
use crate::model::{ClaimedJob, Job};
use std::time::Duration;
use tokio_postgres::Row;

const JOB_COLUMNS: &str = "id, kind, run_id, payload, state, owner_node, lease_until_ns, token, not_before_ns, created_ns";

fn job_from_row(row: &Row) -> RepoResult<Job> {
    let err = RepoError::internal;
    Ok(Job {
        id: row.try_get(0).map_err(err)?,
        kind: row.try_get(1).map_err(err)?,
        run_id: row.try_get(2).map_err(err)?,
        payload: row.try_get(3).map_err(err)?,
        state: parse_enum(row.try_get(4).map_err(err)?)?,
        owner_node: row.try_get(5).map_err(err)?,
        lease_until: row.try_get::<_, Option<i64>>(6).map_err(err)?.map(from_ns),
        token: row.try_get(7).map_err(err)?,
        not_before: row.try_get::<_, Option<i64>>(8).map_err(err)?.map(from_ns),
        created: from_ns(row.try_get(9).map_err(err)?),
    })
}

impl PgRepository {
    pub(crate) async fn pg_enqueue_job(&self, job: &Job) -> RepoResult<()> {
        let client = self.client().await?;
        super::commit::enqueue_job(&client, job).await
    }

    pub(crate) async fn pg_claim_next(
        &self,
        kinds: &[&str],
        node_id: &str,
        lease: Duration,
        recovered_only: bool,
    ) -> RepoResult<Option<ClaimedJob>> {
        let client = self.client().await?;
        // Lost work first: a job with a lease that is not CLAIMED any more, or whose lease
        // expired (its node died), i.e. `lease_until_ns` set. `release_job` (a job given back
        // by its owner) clears it; `release_jobs_of_node` (a node found down) keeps it.
        let sql = format!(
            "UPDATE jobs SET state = 'CLAIMED', owner_node = $2, lease_until_ns = {DB_NOW_NS} + $3, token = token + 1 \
             WHERE id = (SELECT id FROM jobs WHERE kind = ANY($1) \
                 AND (not_before_ns IS NULL OR not_before_ns <= {DB_NOW_NS}) \
                 AND (state = 'PENDING' OR (state = 'CLAIMED' AND lease_until_ns <= {DB_NOW_NS})) \
                 AND (NOT $4 OR lease_until_ns IS NOT NULL) \
                 ORDER BY lease_until_ns IS NOT NULL DESC, seq LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING {JOB_COLUMNS}"
        );
        let stmt = client.prepare_cached(&sql).await.map_err(pg_err)?;
        let row = client
            .query_opt(
                &stmt,
                &[&kinds, &node_id, &lease_ns(lease), &recovered_only],
            )
            .await
            .map_err(pg_err)?;
        match row {
            Some(r) => {
                let job = job_from_row(&r)?;
                Ok(Some(ClaimedJob {
                    token: job.token,
                    job,
                }))
            }
            None => Ok(None),
        }
    }

    pub(crate) async fn pg_renew_lease(
        &self,
        job_id: &str,
        token: i64,
        lease: Duration,
    ) -> RepoResult<()> {
        let client = self.client().await?;
        let sql = format!(
            "UPDATE jobs SET lease_until_ns = {DB_NOW_NS} + $3 \
             WHERE id = $1 AND token = $2 AND state = 'CLAIMED'"
        );
        let n = client
            .execute(&sql, &[&job_id, &token, &lease_ns(lease)])
            .await
            .map_err(pg_err)?;
        if n == 0 {
            return Err(RepoError::StaleToken {
                job_id: job_id.to_string(),
            });
        }
        Ok(())
    }

    pub(crate) async fn pg_release_job(&self, job_id: &str, token: i64) -> RepoResult<()> {
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE jobs SET state = 'PENDING', owner_node = NULL, lease_until_ns = NULL \
                 WHERE id = $1 AND token = $2 AND state = 'CLAIMED'",
                &[&job_id, &token],
            )
            .await
            .map_err(pg_err)?;
        if n == 0 {
            return Err(RepoError::StaleToken {
                job_id: job_id.to_string(),
            });
        }
        Ok(())
    }

    pub(crate) async fn pg_get_job(&self, job_id: &str) -> RepoResult<Option<Job>> {
        let client = self.client().await?;
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1 AND state <> 'DONE'");
        client
            .query_opt(&sql, &[&job_id])
            .await
            .map_err(pg_err)?
            .as_ref()
            .map(job_from_row)
            .transpose()
    }

    pub(crate) async fn pg_claimed_jobs(&self) -> RepoResult<Vec<Job>> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE state = 'CLAIMED' ORDER BY owner_node, id"
        );
        client
            .query(&sql, &[])
            .await
            .map_err(pg_err)?
            .iter()
            .map(job_from_row)
            .collect()
    }

    pub(crate) async fn pg_job_exists(&self, job_id: &str) -> RepoResult<bool> {
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT 1 FROM jobs WHERE id = $1", &[&job_id])
            .await
            .map_err(pg_err)?;
        Ok(row.is_some())
    }

    pub(crate) async fn pg_count_jobs(&self, run_id: &str) -> RepoResult<u64> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT count(*) FROM jobs WHERE run_id = $1 AND state <> 'DONE'",
                &[&run_id],
            )
            .await
            .map_err(pg_err)?;
        Ok(as_u64(row.get(0)))
    }

    pub(crate) async fn pg_release_jobs_of_node(&self, node_id: &str) -> RepoResult<u64> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE jobs SET state = 'PENDING', owner_node = NULL \
                 WHERE owner_node = $1 AND state = 'CLAIMED'",
                &[&node_id],
            )
            .await
            .map_err(pg_err)
    }
}
