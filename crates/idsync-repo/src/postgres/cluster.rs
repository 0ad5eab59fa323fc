//! Cluster membership (heartbeats) and named locks. Lock tokens come from one sequence, so
//! every acquisition of any lock gets a larger token than all earlier ones.

use super::PgRepository;
use super::convert::{DB_NOW_NS, from_ns, now_ns, pg_err, to_ns};
use crate::error::{RepoError, RepoResult};
use crate::model::{LockRecord, NodeRecord, NodeState};
use chrono::{DateTime, Utc};
use tokio_postgres::Row;

fn node_from_row(row: &Row) -> RepoResult<NodeRecord> {
    let err = RepoError::internal;
    let state: String = row.try_get(1).map_err(err)?;
    Ok(NodeRecord {
        id: row.try_get(0).map_err(err)?,
        state: NodeState::parse(&state)
            .ok_or_else(|| RepoError::Internal(format!("unknown node state {state}")))?,
        startup: from_ns(row.try_get::<_, Option<i64>>(2).map_err(err)?.unwrap_or(0)),
        shutdown: row.try_get::<_, Option<i64>>(3).map_err(err)?.map(from_ns),
        last_heartbeat: from_ns(row.try_get(4).map_err(err)?),
        host: row.try_get(5).map_err(err)?,
    })
}

fn lock_from_row(row: &Row) -> RepoResult<LockRecord> {
    let err = RepoError::internal;
    Ok(LockRecord {
        name: row.try_get(0).map_err(err)?,
        node_id: row.try_get(1).map_err(err)?,
        token: row.try_get(2).map_err(err)?,
        acquired: from_ns(row.try_get(3).map_err(err)?),
    })
}

impl PgRepository {
    pub(crate) async fn pg_db_now(&self) -> RepoResult<DateTime<Utc>> {
        let client = self.client().await?;
        let row = client
            .query_one(&format!("SELECT {DB_NOW_NS}"), &[])
            .await
            .map_err(pg_err)?;
        Ok(from_ns(row.get::<_, i64>(0)))
    }

    pub(crate) async fn pg_heartbeat(
        &self,
        node_id: &str,
        host: &str,
        now: DateTime<Utc>,
    ) -> RepoResult<()> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "INSERT INTO nodes (node_id, state, startup_ns, shutdown_ns, last_heartbeat_ns, host) \
                 VALUES ($1, 'STATE_RUNNING', $2, NULL, $2, $3) ON CONFLICT (node_id) DO UPDATE SET \
                 startup_ns = CASE WHEN nodes.state = 'STATE_DOWN' THEN $2 ELSE nodes.startup_ns END, \
                 shutdown_ns = CASE WHEN nodes.state = 'STATE_DOWN' THEN NULL ELSE nodes.shutdown_ns END, \
                 state = 'STATE_RUNNING', last_heartbeat_ns = $2, host = $3",
            )
            .await
            .map_err(pg_err)?;
        client
            .execute(&stmt, &[&node_id, &to_ns(&now)?, &host])
            .await
            .map_err(pg_err)?;
        Ok(())
    }

    pub(crate) async fn pg_set_node_state(
        &self,
        node_id: &str,
        state: NodeState,
    ) -> RepoResult<()> {
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE nodes SET state = $2, \
                 shutdown_ns = CASE WHEN $2 = 'STATE_DOWN' THEN $3 ELSE shutdown_ns END WHERE node_id = $1",
                &[&node_id, &state.as_str(), &now_ns()],
            )
            .await
            .map_err(pg_err)?;
        if n == 0 {
            return Err(RepoError::NotFound(format!("node {node_id}")));
        }
        Ok(())
    }

    pub(crate) async fn pg_list_nodes(&self) -> RepoResult<Vec<NodeRecord>> {
        let client = self.client().await?;
        let rows = client
            .query("SELECT node_id, state, startup_ns, shutdown_ns, last_heartbeat_ns, host FROM nodes ORDER BY node_id", &[])
            .await
            .map_err(pg_err)?;
        rows.iter().map(node_from_row).collect()
    }

    pub(crate) async fn pg_try_acquire_lock(
        &self,
        name: &str,
        node_id: &str,
    ) -> RepoResult<Option<i64>> {
        let client = self.client().await?;
        // Re-acquiring a lock the node already holds keeps its token (the no-op update returns
        // the row); a lock held by another node returns nothing.
        let row = client
            .query_opt(
                "INSERT INTO locks (name, node_id, token, acquired_ns) VALUES ($1, $2, nextval('lock_tokens'), $3) \
                 ON CONFLICT (name) DO UPDATE SET node_id = locks.node_id WHERE locks.node_id = EXCLUDED.node_id \
                 RETURNING token",
                &[&name, &node_id, &now_ns()],
            )
            .await
            .map_err(pg_err)?;
        Ok(row.map(|r| r.get(0)))
    }

    pub(crate) async fn pg_release_lock(&self, name: &str, node_id: &str) -> RepoResult<bool> {
        let client = self.client().await?;
        let n = client
            .execute(
                "DELETE FROM locks WHERE name = $1 AND node_id = $2",
                &[&name, &node_id],
            )
            .await
            .map_err(pg_err)?;
        Ok(n > 0)
    }

    pub(crate) async fn pg_locks(&self, node_id: Option<&str>) -> RepoResult<Vec<LockRecord>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT name, node_id, token, acquired_ns FROM locks WHERE $1::text IS NULL OR node_id = $1 ORDER BY name",
                &[&node_id],
            )
            .await
            .map_err(pg_err)?;
        rows.iter().map(lock_from_row).collect()
    }

    pub(crate) async fn pg_release_locks_of_node(&self, node_id: &str) -> RepoResult<u64> {
        let client = self.client().await?;
        client
            .execute("DELETE FROM locks WHERE node_id = $1", &[&node_id])
            .await
            .map_err(pg_err)
    }
}
