//! The SQLite backend (embedded, a cluster of one): rusqlite on tokio's blocking threads, one
//! serialised writer connection plus a small pool of WAL readers, prepared statements cached
//! per connection. It owns the SQLite SQL only; every CREST filter is translated to SQL here
//! (`filter.rs`), never evaluated in memory.

mod cluster;
mod commit;
mod conn;
pub mod filter;
mod keys;
mod migrate;
mod query;
mod recon_entries;
mod records;
mod time;

use crate::changes::{ChangeSet, CommitOutcome};
use crate::error::{RepoError, RepoResult};
use crate::model::{
    AuditEntry, AuditKind, ClaimedJob, DeadLetter, Job, Link, LockRecord, NodeRecord, NodeState,
    QueueStats, RunCounters, RunRecord, RunUpdate, SyncEvent,
};
use crate::repository::Repository;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use conn::Pool;
use idsync_core::{Filter, QueryPage, QueryRequest};
use query::{Source, map_err};
use records::{links_from, links_where};
use rusqlite::types::Value as SqlValue;
use rusqlite::{OptionalExtension, params};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use time::{from_micros, iso_sql, micros};

/// The SQLite repository.
#[derive(Debug)]
pub struct SqliteRepo {
    pool: Pool,
    path: PathBuf,
    /// Change sets waiting for the writer (group commit, see `commit.rs`).
    waiting: Arc<std::sync::Mutex<Vec<commit::Waiting>>>,
}

/// Opens `sqlite://PATH` (also `sqlite:PATH`); creates the file and its parent directories,
/// enables WAL and applies migrations.
pub async fn open(url: &str) -> RepoResult<Arc<dyn Repository>> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| RepoError::Unavailable(format!("not a sqlite URL: {url}")))?;
    Ok(Arc::new(SqliteRepo::open_path(Path::new(path)).await?))
}

impl SqliteRepo {
    pub async fn open_path(path: &Path) -> RepoResult<Self> {
        let path = path.to_path_buf();
        let p = path.clone();
        let pool = tokio::task::spawn_blocking(move || -> RepoResult<_> {
            if let Some(parent) = p.parent()
                && !parent.as_os_str().is_empty()
            {
                private_dir(parent).map_err(|e| {
                    RepoError::Unavailable(format!("cannot create {}: {e}", parent.display()))
                })?;
            }
            private_file(&p).map_err(|e| {
                RepoError::Unavailable(format!("cannot create {}: {e}", p.display()))
            })?;
            let mut c = conn::connect(&p)?;
            migrate::migrate(&mut c)?;
            Pool::new(p, c)
        })
        .await
        .map_err(|e| RepoError::Internal(format!("sqlite open task failed: {e}")))??;
        Ok(SqliteRepo {
            pool,
            path,
            waiting: Arc::default(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Creates the database's folder (and missing parents) readable by this user only. An existing
/// folder keeps its mode: it may be shared on purpose.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// The database file is readable by this user only (it holds every identity), created so
/// before SQLite opens it: SQLite gives its WAL and shared-memory files the database file's
/// mode. An existing file is tightened to 0600 as well.
fn private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            for suffix in ["", "-wal", "-shm"] {
                let mut name = path.as_os_str().to_owned();
                name.push(suffix);
                let file = Path::new(&name);
                match std::fs::symlink_metadata(file) {
                    Ok(m) if m.is_file() && m.permissions().mode() & 0o077 != 0 => {
                        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))?;
                    }
                    _ => {}
                }
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Managed objects of a type, their indexed properties answered from their key rows.
fn objects_src(conn: &rusqlite::Connection, object_type: &str) -> RepoResult<Source<'static>> {
    let props = keys::indexed(conn, object_type)?;
    Ok(Source {
        from: "objects",
        doc: "obj",
        id: "id",
        scope: "object_type = ?",
        scope_params: vec![SqlValue::Text(object_type.to_string())],
        keys: Some(filter::KeyScope {
            object_type: object_type.to_string(),
            props: props.into_iter().map(|(p, _)| p).collect(),
            id_col: "id",
        }),
        rev: Some("CAST(rev AS TEXT)"),
    })
}

const LINKS_FROM: &str = "(SELECT id, json_object('_id', id, '_rev', CAST(rev AS TEXT), \
    'linkType', link_type, 'linkQualifier', link_qualifier, 'firstId', first_id, \
    'secondId', second_id) AS doc FROM links) l";

fn queue_from() -> String {
    format!(
        "(SELECT id, json_object('_id', id, '_rev', CAST(rev AS TEXT), 'mapping', mapping, \
         'resourceId', resource_id, 'resourceCollection', resource_collection, \
         'syncAction', sync_action, 'state', state, 'nodeId', node_id, \
         'remainingRetries', remaining_retries, 'createDate', {}) AS doc FROM sync_queue) q",
        iso_sql("create_date")
    )
}

fn ids_json(ids: &[String]) -> RepoResult<String> {
    serde_json::to_string(ids).map_err(RepoError::internal)
}

fn collect<T>(rows: impl Iterator<Item = rusqlite::Result<T>>) -> RepoResult<Vec<T>> {
    rows.collect::<Result<Vec<_>, _>>().map_err(map_err)
}

#[async_trait]
impl Repository for SqliteRepo {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn commit(&self, changes: ChangeSet) -> RepoResult<CommitOutcome> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.waiting
            .lock()
            .map_err(|_| RepoError::Internal("commit queue poisoned".into()))?
            .push((changes, reply));
        // Whoever gets the writer first commits everything waiting by then, this change set
        // included or already done by an earlier holder.
        let waiting = self.waiting.clone();
        self.pool
            .write(move |c| {
                let group = std::mem::take(
                    &mut *waiting
                        .lock()
                        .map_err(|_| RepoError::Internal("commit queue poisoned".into()))?,
                );
                if !group.is_empty() {
                    commit::commit_group(c, group);
                }
                Ok(())
            })
            .await?;
        answer
            .await
            .map_err(|_| RepoError::Internal("the commit was dropped".into()))?
    }

    async fn get_object(&self, object_type: &str, id: &str) -> RepoResult<Option<Value>> {
        let (t, id) = (object_type.to_string(), id.to_string());
        self.pool
            .read(move |c| {
                let s: Option<String> = c
                    .prepare_cached("SELECT obj FROM objects WHERE object_type = ? AND id = ?")
                    .map_err(map_err)?
                    .query_row([&t, &id], |r| r.get(0))
                    .optional()
                    .map_err(map_err)?;
                s.map(|s| serde_json::from_str(&s).map_err(RepoError::internal))
                    .transpose()
            })
            .await
    }

    async fn get_objects(&self, object_type: &str, ids: &[String]) -> RepoResult<Vec<Value>> {
        let (t, ids) = (object_type.to_string(), ids_json(ids)?);
        self.pool
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT obj FROM objects WHERE object_type = ? AND id IN \
                         (SELECT value FROM json_each(?)) ORDER BY id",
                    )
                    .map_err(map_err)?;
                let rows = stmt
                    .query_map([&t, &ids], |r| r.get::<_, String>(0))
                    .map_err(map_err)?;
                collect(rows)?
                    .into_iter()
                    .map(|s| serde_json::from_str(&s).map_err(RepoError::internal))
                    .collect()
            })
            .await
    }

    async fn query_objects(
        &self,
        object_type: &str,
        query: &QueryRequest,
    ) -> RepoResult<QueryPage> {
        let (t, q) = (object_type.to_string(), query.clone());
        self.pool
            .read(move |c| query::run(c, &objects_src(c, &t)?, &q))
            .await
    }

    async fn count_objects(&self, object_type: &str, filter: Option<&Filter>) -> RepoResult<u64> {
        let (t, f) = (object_type.to_string(), filter.cloned());
        self.pool
            .read(move |c| query::count(c, &objects_src(c, &t)?, f.as_ref()))
            .await
    }

    async fn ensure_indexes(&self, object_type: &str, properties: &[String]) -> RepoResult<()> {
        let (t, props) = (object_type.to_string(), properties.to_vec());
        self.pool.write(move |c| keys::ensure(c, &t, &props)).await
    }

    async fn explain_query(&self, object_type: &str, query: &QueryRequest) -> RepoResult<String> {
        let (t, q) = (object_type.to_string(), query.clone());
        self.pool
            .read(move |c| {
                let (sql, params, _) = query::build_select(&objects_src(c, &t)?, &q)?;
                let mut stmt = c
                    .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                    .map_err(map_err)?;
                let rows = stmt
                    .query_map(rusqlite::params_from_iter(params.iter()), |r| {
                        r.get::<_, String>(3)
                    })
                    .map_err(map_err)?;
                Ok(collect(rows)?.join("\n"))
            })
            .await
    }

    async fn get_link(&self, id: &str) -> RepoResult<Option<Link>> {
        let id = id.to_string();
        self.pool
            .read(move |c| Ok(links_where(c, "id = ?", &[&id])?.pop()))
            .await
    }

    async fn link_by_first(
        &self,
        link_type: &str,
        qualifier: &str,
        first_id: &str,
    ) -> RepoResult<Option<Link>> {
        let (a, b, d) = (
            link_type.to_string(),
            qualifier.to_string(),
            first_id.to_string(),
        );
        self.pool
            .read(move |c| {
                Ok(links_where(
                    c,
                    "link_type = ? AND link_qualifier = ? AND first_id = ?",
                    &[&a, &b, &d],
                )?
                .pop())
            })
            .await
    }

    async fn link_by_second(
        &self,
        link_type: &str,
        qualifier: &str,
        second_id: &str,
    ) -> RepoResult<Option<Link>> {
        let (a, b, d) = (
            link_type.to_string(),
            qualifier.to_string(),
            second_id.to_string(),
        );
        self.pool
            .read(move |c| {
                Ok(links_where(
                    c,
                    "link_type = ? AND link_qualifier = ? AND second_id = ?",
                    &[&a, &b, &d],
                )?
                .pop())
            })
            .await
    }

    async fn links_for_sources(
        &self,
        link_type: &str,
        first_ids: &[String],
    ) -> RepoResult<Vec<Link>> {
        let (a, ids) = (link_type.to_string(), ids_json(first_ids)?);
        self.pool
            .read(move |c| {
                // One probe per id; sorted here, since an ORDER BY id would tempt the
                // planner to walk every link in id order and test each against the list.
                let mut links = links_where(
                    c,
                    "link_type = ? AND first_id IN (SELECT value FROM json_each(?))",
                    &[&a, &ids],
                )?;
                links.sort_unstable_by(|x, y| x.id.cmp(&y.id));
                Ok(links)
            })
            .await
    }

    async fn links_for_targets(
        &self,
        link_type: &str,
        second_ids: &[String],
    ) -> RepoResult<Vec<Link>> {
        let (a, ids) = (link_type.to_string(), ids_json(second_ids)?);
        self.pool
            .read(move |c| {
                // One probe per id (named: the planner would rather walk every link of the
                // type by the primary key and test each against the list); sorted here, since
                // an ORDER BY id would tempt it to walk them in id order.
                let mut links = links_from(
                    c,
                    "links INDEXED BY links_by_second_side",
                    "link_type = ? AND second_id IN (SELECT value FROM json_each(?))",
                    &[&a, &ids],
                )?;
                links.sort_unstable_by(|x, y| x.id.cmp(&y.id));
                Ok(links)
            })
            .await
    }

    async fn load_links(
        &self,
        link_type: &str,
        qualifier: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> RepoResult<Vec<Link>> {
        let (a, q, after) = (
            link_type.to_string(),
            qualifier.map(str::to_string),
            after.unwrap_or("").to_string(),
        );
        let limit = limit as i64;
        self.pool
            .read(move |c| {
                // In id order, from the id index: left to itself the planner reads every link of
                // the type by the primary key and sorts them, once per batch — quadratic.
                links_from(
                    c,
                    "links INDEXED BY links_by_id",
                    "link_type = ? AND (?2 IS NULL OR link_qualifier = ?2) AND id > ? \
                     ORDER BY id LIMIT ?",
                    &[&a, &q, &after, &limit],
                )
            })
            .await
    }

    async fn count_links(&self, link_type: &str) -> RepoResult<u64> {
        let a = link_type.to_string();
        self.pool
            .read(move |c| {
                let n: i64 = c
                    .prepare_cached("SELECT COUNT(*) FROM links WHERE link_type = ?")
                    .map_err(map_err)?
                    .query_row([&a], |r| r.get(0))
                    .map_err(map_err)?;
                Ok(n as u64)
            })
            .await
    }

    async fn query_links(&self, query: &QueryRequest) -> RepoResult<QueryPage> {
        let q = query.clone();
        self.pool
            .read(move |c| {
                let src = Source {
                    from: LINKS_FROM,
                    doc: "doc",
                    id: "id",
                    scope: "1",
                    scope_params: vec![],
                    keys: None,
                    rev: None,
                };
                query::run(c, &src, &q)
            })
            .await
    }

    async fn create_run(&self, run: &RunRecord) -> RepoResult<()> {
        let run = run.clone();
        self.pool.write(move |c| records::create_run(c, &run)).await
    }

    async fn update_run(&self, run_id: &str, update: &RunUpdate) -> RepoResult<RunRecord> {
        let (id, u) = (run_id.to_string(), update.clone());
        self.pool
            .write(move |c| records::update_run(c, &id, &u))
            .await
    }

    async fn request_cancel(&self, run_id: &str) -> RepoResult<bool> {
        let id = run_id.to_string();
        self.pool
            .write(move |c| {
                let n = c
                    .prepare_cached(
                        "UPDATE runs SET cancel_requested = 1 WHERE id = ? AND state = 'ACTIVE'",
                    )
                    .map_err(map_err)?
                    .execute([&id])
                    .map_err(map_err)?;
                if n == 0 && records::get_run(c, &id)?.is_none() {
                    return Err(RepoError::NotFound(format!("recon/{id}")));
                }
                Ok(n > 0)
            })
            .await
    }

    async fn get_run(&self, run_id: &str) -> RepoResult<Option<RunRecord>> {
        let id = run_id.to_string();
        self.pool.read(move |c| records::get_run(c, &id)).await
    }

    async fn list_runs(&self, mapping: Option<&str>) -> RepoResult<Vec<RunRecord>> {
        let m = mapping.map(str::to_string);
        self.pool
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached(&format!(
                        "SELECT {} FROM runs WHERE ?1 IS NULL OR mapping = ?1 \
                         ORDER BY started DESC, id DESC",
                        records::RUN_COLS
                    ))
                    .map_err(map_err)?;
                let rows = stmt.query_map([&m], records::run_row).map_err(map_err)?;
                collect(rows)
            })
            .await
    }

    async fn active_run(&self, mapping: &str) -> RepoResult<Option<RunRecord>> {
        let m = mapping.to_string();
        self.pool.read(move |c| records::active_run(c, &m)).await
    }

    async fn run_counters(&self, run_id: &str) -> RepoResult<RunCounters> {
        let id = run_id.to_string();
        self.pool.read(move |c| records::run_counters(c, &id)).await
    }

    async fn prune_runs(&self, mapping: &str, keep: usize) -> RepoResult<u64> {
        let m = mapping.to_string();
        self.pool
            .write(move |c| {
                let tx = c
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                    .map_err(map_err)?;
                let old: Vec<String> = {
                    let mut stmt = tx
                        .prepare_cached(
                            "SELECT id FROM runs WHERE mapping = ? AND state <> 'ACTIVE' \
                             ORDER BY started DESC, id DESC LIMIT -1 OFFSET ?",
                        )
                        .map_err(map_err)?;
                    let rows = stmt
                        .query_map(params![m, keep as i64], |r| r.get(0))
                        .map_err(map_err)?;
                    collect(rows)?
                };
                for id in &old {
                    for table in ["run_counters", "plan_entries", "target_ids", "jobs"] {
                        tx.prepare_cached(&format!("DELETE FROM {table} WHERE run_id = ?"))
                            .map_err(map_err)?
                            .execute([id])
                            .map_err(map_err)?;
                    }
                    tx.prepare_cached("DELETE FROM runs WHERE id = ?")
                        .map_err(map_err)?
                        .execute([id])
                        .map_err(map_err)?;
                }
                tx.commit().map_err(map_err)?;
                Ok(old.len() as u64)
            })
            .await
    }

    async fn query_plan(&self, run_id: &str, query: &QueryRequest) -> RepoResult<QueryPage> {
        let (id, q) = (run_id.to_string(), query.clone());
        self.pool
            .read(move |c| {
                let src = Source {
                    from: "plan_entries",
                    doc: "entry",
                    id: "id",
                    scope: "run_id = ?",
                    scope_params: vec![SqlValue::Text(id)],
                    keys: None,
                    rev: None,
                };
                query::run(c, &src, &q)
            })
            .await
    }

    async fn claimed_among(&self, run_id: &str, ids: &[String]) -> RepoResult<Vec<String>> {
        self.registry(run_id, ids, "EXISTS").await
    }

    async fn unclaimed_target_ids(&self, run_id: &str, ids: &[String]) -> RepoResult<Vec<String>> {
        self.registry(run_id, ids, "NOT EXISTS").await
    }

    async fn count_registered(&self, run_id: &str) -> RepoResult<u64> {
        let id = run_id.to_string();
        self.pool
            .read(move |c| {
                let n: i64 = c
                    .prepare_cached("SELECT COUNT(*) FROM target_ids WHERE run_id = ?")
                    .map_err(map_err)?
                    .query_row([&id], |r| r.get(0))
                    .map_err(map_err)?;
                Ok(n as u64)
            })
            .await
    }

    async fn delete_registry(&self, run_id: &str) -> RepoResult<u64> {
        let id = run_id.to_string();
        self.pool
            .write(move |c| {
                c.execute("DELETE FROM create_intents WHERE run_id = ?", [&id])
                    .map_err(map_err)?;
                let n = c
                    .execute("DELETE FROM target_ids WHERE run_id = ?", [&id])
                    .map_err(map_err)?;
                Ok(n as u64)
            })
            .await
    }

    async fn create_intents(&self, job_id: &str) -> RepoResult<Vec<String>> {
        let id = job_id.to_string();
        self.pool
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT source_id FROM create_intents WHERE job_id = ? ORDER BY source_id",
                    )
                    .map_err(map_err)?;
                let rows = stmt
                    .query_map([&id], |r| r.get::<_, String>(0))
                    .map_err(map_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(map_err)
            })
            .await
    }

    async fn enqueue_job(&self, job: &Job) -> RepoResult<()> {
        let job = job.clone();
        self.pool.write(move |c| commit::insert_job(c, &job)).await
    }

    async fn claim_next(
        &self,
        kinds: &[&str],
        node_id: &str,
        lease: Duration,
    ) -> RepoResult<Option<ClaimedJob>> {
        let kinds: Vec<String> = kinds.iter().map(|k| k.to_string()).collect();
        let node = node_id.to_string();
        self.pool
            .write(move |c| cluster::claim_next(c, &kinds, &node, lease, false))
            .await
    }

    async fn claim_recovered(
        &self,
        kinds: &[&str],
        node_id: &str,
        lease: Duration,
    ) -> RepoResult<Option<ClaimedJob>> {
        let kinds: Vec<String> = kinds.iter().map(|k| k.to_string()).collect();
        let node = node_id.to_string();
        self.pool
            .write(move |c| cluster::claim_next(c, &kinds, &node, lease, true))
            .await
    }

    async fn renew_lease(&self, job_id: &str, token: i64, lease: Duration) -> RepoResult<()> {
        let id = job_id.to_string();
        self.pool
            .write(move |c| cluster::renew(c, &id, token, lease))
            .await
    }

    async fn release_job(&self, job_id: &str, token: i64) -> RepoResult<()> {
        let id = job_id.to_string();
        self.pool
            .write(move |c| cluster::release(c, &id, token))
            .await
    }

    async fn get_job(&self, job_id: &str) -> RepoResult<Option<Job>> {
        let id = job_id.to_string();
        self.pool
            .read(move |c| {
                c.prepare_cached(&format!(
                    "SELECT {} FROM jobs WHERE id = ? AND state <> 'DONE'",
                    records::JOB_COLS
                ))
                .map_err(map_err)?
                .query_row([&id], records::job_row)
                .optional()
                .map_err(map_err)
            })
            .await
    }

    async fn db_now(&self) -> RepoResult<DateTime<Utc>> {
        // One file on one machine: the process's clock is the database's.
        Ok(Utc::now())
    }

    async fn job_exists(&self, job_id: &str) -> RepoResult<bool> {
        let id = job_id.to_string();
        self.pool
            .read(move |c| {
                c.prepare_cached("SELECT 1 FROM jobs WHERE id = ?")
                    .map_err(map_err)?
                    .query_row([&id], |_| Ok(()))
                    .optional()
                    .map(|r| r.is_some())
                    .map_err(map_err)
            })
            .await
    }

    async fn count_jobs(&self, run_id: &str) -> RepoResult<u64> {
        let id = run_id.to_string();
        self.pool
            .read(move |c| {
                let n: i64 = c
                    .prepare_cached(
                        "SELECT COUNT(*) FROM jobs WHERE run_id = ? AND state <> 'DONE'",
                    )
                    .map_err(map_err)?
                    .query_row([&id], |r| r.get(0))
                    .map_err(map_err)?;
                Ok(n as u64)
            })
            .await
    }

    async fn claimed_jobs(&self) -> RepoResult<Vec<Job>> {
        self.pool
            .read(move |c| {
                c.prepare_cached(&format!(
                    "SELECT {} FROM jobs WHERE state = 'CLAIMED' ORDER BY owner_node, id",
                    records::JOB_COLS
                ))
                .map_err(map_err)?
                .query_map([], records::job_row)
                .map_err(map_err)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(map_err)
            })
            .await
    }

    async fn release_jobs_of_node(&self, node_id: &str) -> RepoResult<u64> {
        let id = node_id.to_string();
        self.pool
            .write(move |c| {
                let n = c
                    .execute(
                        "UPDATE jobs SET state = 'PENDING', owner_node = NULL \
                         WHERE owner_node = ? AND state = 'CLAIMED'",
                        [&id],
                    )
                    .map_err(map_err)?;
                Ok(n as u64)
            })
            .await
    }

    async fn heartbeat(&self, node_id: &str, host: &str, now: DateTime<Utc>) -> RepoResult<()> {
        let (id, host) = (node_id.to_string(), host.to_string());
        let now = micros(&now);
        self.pool
            .write(move |c| cluster::heartbeat(c, &id, &host, now))
            .await
    }

    async fn set_node_state(&self, node_id: &str, state: NodeState) -> RepoResult<()> {
        let id = node_id.to_string();
        self.pool
            .write(move |c| cluster::set_node_state(c, &id, state))
            .await
    }

    async fn list_nodes(&self) -> RepoResult<Vec<NodeRecord>> {
        self.pool.read(cluster::list_nodes).await
    }

    async fn try_acquire_lock(&self, name: &str, node_id: &str) -> RepoResult<Option<i64>> {
        let (n, id) = (name.to_string(), node_id.to_string());
        self.pool
            .write(move |c| cluster::try_acquire_lock(c, &n, &id))
            .await
    }

    async fn release_lock(&self, name: &str, node_id: &str) -> RepoResult<bool> {
        let (n, id) = (name.to_string(), node_id.to_string());
        self.pool
            .write(move |c| {
                let k = c
                    .execute(
                        "UPDATE locks SET node_id = NULL WHERE name = ? AND node_id = ?",
                        [&n, &id],
                    )
                    .map_err(map_err)?;
                Ok(k > 0)
            })
            .await
    }

    async fn locks_of_node(&self, node_id: &str) -> RepoResult<Vec<LockRecord>> {
        let id = node_id.to_string();
        self.pool
            .read(move |c| cluster::locks_where(c, Some(&id)))
            .await
    }

    async fn list_locks(&self) -> RepoResult<Vec<LockRecord>> {
        self.pool.read(|c| cluster::locks_where(c, None)).await
    }

    async fn release_locks_of_node(&self, node_id: &str) -> RepoResult<u64> {
        let id = node_id.to_string();
        self.pool
            .write(move |c| {
                let k = c
                    .execute("UPDATE locks SET node_id = NULL WHERE node_id = ?", [&id])
                    .map_err(map_err)?;
                Ok(k as u64)
            })
            .await
    }

    async fn query_queue(&self, query: &QueryRequest) -> RepoResult<QueryPage> {
        let q = query.clone();
        self.pool
            .read(move |c| {
                let from = queue_from();
                let src = Source {
                    from: &from,
                    doc: "doc",
                    id: "id",
                    scope: "1",
                    scope_params: vec![],
                    keys: None,
                    rev: None,
                };
                query::run(c, &src, &q)
            })
            .await
    }

    async fn get_event(&self, id: &str) -> RepoResult<Option<SyncEvent>> {
        let id = id.to_string();
        self.pool
            .read(move |c| {
                c.prepare_cached(&format!(
                    "SELECT {} FROM sync_queue WHERE id = ?",
                    records::EVENT_COLS
                ))
                .map_err(map_err)?
                .query_row([&id], records::event_row)
                .optional()
                .map_err(map_err)
            })
            .await
    }

    async fn acquire_events(
        &self,
        mapping: &str,
        node_id: &str,
        limit: usize,
    ) -> RepoResult<Vec<SyncEvent>> {
        let (m, n) = (mapping.to_string(), node_id.to_string());
        let raw = self
            .pool
            .write(move |c| cluster::acquire_events(c, &m, &n, limit))
            .await?;
        Ok(raw.into_iter().map(records::RawEvent::parse).collect())
    }

    async fn release_for_retry(
        &self,
        id: &str,
        remaining_retries: i64,
        node_id: &str,
    ) -> RepoResult<()> {
        let (id, node) = (id.to_string(), node_id.to_string());
        self.pool
            .write(move |c| cluster::release_for_retry(c, &id, remaining_retries, &node))
            .await
    }

    async fn delete_event(&self, id: &str, by_node: Option<&str>) -> RepoResult<()> {
        let (id, by) = (id.to_string(), by_node.map(str::to_string));
        self.pool
            .write(move |c| cluster::delete_event(c, &id, by.as_deref()))
            .await
    }

    async fn return_acquired_to_pending(&self, node_id: &str) -> RepoResult<u64> {
        let id = node_id.to_string();
        self.pool
            .write(move |c| {
                let n = c
                    .execute(
                        "UPDATE sync_queue SET state = 'PENDING', node_id = NULL, rev = rev + 1 \
                         WHERE node_id = ? AND state = 'ACQUIRED'",
                        [&id],
                    )
                    .map_err(map_err)?;
                Ok(n as u64)
            })
            .await
    }

    async fn queue_stats(&self) -> RepoResult<Vec<QueueStats>> {
        self.pool
            .read(|c| {
                let mut stmt = c
                    .prepare_cached(
                        // Each state from its own partial index, without reading a row.
                        "SELECT mapping, SUM(p), SUM(a), MIN(oldest) FROM ( \
                         SELECT mapping, COUNT(*) AS p, 0 AS a, MIN(create_date) AS oldest \
                         FROM sync_queue WHERE state = 'PENDING' GROUP BY mapping UNION ALL \
                         SELECT mapping, 0, COUNT(*), MIN(create_date) FROM sync_queue \
                         WHERE state = 'ACQUIRED' GROUP BY mapping) GROUP BY mapping ORDER BY mapping",
                    )
                    .map_err(map_err)?;
                let rows = stmt
                    .query_map([], |r| {
                        Ok(QueueStats {
                            mapping: r.get(0)?,
                            pending: r.get::<_, i64>(1)? as u64,
                            acquired: r.get::<_, i64>(2)? as u64,
                            oldest_create_date: r.get::<_, Option<i64>>(3)?.map(from_micros),
                        })
                    })
                    .map_err(map_err)?;
                collect(rows)
            })
            .await
    }

    async fn add_dead_letter(&self, letter: &DeadLetter) -> RepoResult<()> {
        let l = letter.clone();
        let event = serde_json::to_string(&l.event).map_err(RepoError::internal)?;
        let doc = l.to_json().to_string();
        self.pool
            .write(move |c| {
                let n = c
                    .execute(
                        "INSERT INTO dead_letters (id, event, failure_cause, retries, \
                         failed_date, doc) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                        params![
                            l.id,
                            event,
                            l.failure_cause,
                            l.retries,
                            micros(&l.failed_date),
                            doc
                        ],
                    )
                    .map_err(map_err)?;
                if n == 0 {
                    return Err(RepoError::already_exists("sync/deadletter", l.id));
                }
                Ok(())
            })
            .await
    }

    async fn query_dead_letters(&self, query: &QueryRequest) -> RepoResult<QueryPage> {
        let q = query.clone();
        self.pool
            .read(move |c| {
                let src = Source {
                    from: "dead_letters",
                    doc: "doc",
                    id: "id",
                    scope: "1",
                    scope_params: vec![],
                    keys: None,
                    rev: None,
                };
                query::run(c, &src, &q)
            })
            .await
    }

    async fn get_dead_letter(&self, id: &str) -> RepoResult<Option<DeadLetter>> {
        let id = id.to_string();
        self.pool
            .read(move |c| {
                let row: Option<(String, String, String, i64, i64)> = c
                    .prepare_cached(
                        "SELECT id, event, failure_cause, retries, failed_date \
                         FROM dead_letters WHERE id = ?",
                    )
                    .map_err(map_err)?
                    .query_row([&id], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                    })
                    .optional()
                    .map_err(map_err)?;
                row.map(|(id, event, failure_cause, retries, failed)| {
                    Ok(DeadLetter {
                        id,
                        event: serde_json::from_str(&event).map_err(RepoError::internal)?,
                        failure_cause,
                        retries,
                        failed_date: from_micros(failed),
                    })
                })
                .transpose()
            })
            .await
    }

    async fn delete_dead_letter(&self, id: &str) -> RepoResult<()> {
        let id = id.to_string();
        self.pool
            .write(move |c| {
                let n = c
                    .execute("DELETE FROM dead_letters WHERE id = ?", [&id])
                    .map_err(map_err)?;
                if n == 0 {
                    return Err(RepoError::NotFound(format!("sync/deadletter/{id}")));
                }
                Ok(())
            })
            .await
    }

    async fn append_audit(&self, entries: &[AuditEntry]) -> RepoResult<()> {
        let entries = entries.to_vec();
        self.pool
            .write(move |c| {
                let tx = c.transaction().map_err(map_err)?;
                for e in entries {
                    commit::insert_audit(&tx, e)?;
                }
                tx.commit().map_err(map_err)
            })
            .await
    }

    async fn query_audit(&self, kind: AuditKind, query: &QueryRequest) -> RepoResult<QueryPage> {
        let q = query.clone();
        self.pool
            .read(move |c| {
                let src = match kind {
                    AuditKind::Recon => Source {
                        from: recon_entries::RECON_AUDIT_FROM.as_str(),
                        doc: "entry",
                        id: "id",
                        scope: "1",
                        scope_params: Vec::new(),
                        keys: None,
                        rev: None,
                    },
                    AuditKind::Sync => Source {
                        from: "audit",
                        doc: "entry",
                        id: "id",
                        scope: "kind = ?",
                        scope_params: vec![SqlValue::Text(kind.as_str().to_string())],
                        keys: None,
                        rev: None,
                    },
                };
                query::run(c, &src, &q)
            })
            .await
    }

    async fn prune_audit(&self, kind: AuditKind, before: DateTime<Utc>) -> RepoResult<u64> {
        let before = micros(&before);
        self.pool
            .write(move |c| {
                let tx = c.transaction().map_err(map_err)?;
                let mut n = tx
                    .execute(
                        "DELETE FROM audit WHERE kind = ? AND timestamp < ?",
                        params![kind.as_str(), before],
                    )
                    .map_err(map_err)?;
                if kind == AuditKind::Recon {
                    n += tx
                        .execute("DELETE FROM recon_entries WHERE timestamp < ?", [before])
                        .map_err(map_err)?;
                }
                tx.commit().map_err(map_err)?;
                Ok(n as u64)
            })
            .await
    }

    async fn get_sync_token(&self, source: &str) -> RepoResult<Option<Value>> {
        let s = source.to_string();
        self.pool
            .read(move |c| {
                let t: Option<String> = c
                    .prepare_cached("SELECT token FROM sync_tokens WHERE source = ?")
                    .map_err(map_err)?
                    .query_row([&s], |r| r.get(0))
                    .optional()
                    .map_err(map_err)?;
                t.map(|t| serde_json::from_str(&t).map_err(RepoError::internal))
                    .transpose()
            })
            .await
    }

    async fn set_sync_token(&self, source: &str, token: &Value) -> RepoResult<()> {
        self.commit(ChangeSet::new().with(crate::changes::Op::SetSyncToken {
            source: source.to_string(),
            token: token.clone(),
        }))
        .await
        .map(|_| ())
    }

    async fn shared_key(&self, name: &str, candidate: &[u8]) -> RepoResult<Vec<u8>> {
        let (name, candidate) = (name.to_string(), candidate.to_vec());
        self.pool
            .write(move |c| {
                c.execute(
                    "INSERT INTO server_keys (name, key) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
                    rusqlite::params![name, candidate],
                )
                .map_err(map_err)?;
                c.query_row("SELECT key FROM server_keys WHERE name = ?", [&name], |r| {
                    r.get(0)
                })
                .map_err(map_err)
            })
            .await
    }
}

impl SqliteRepo {
    async fn registry(
        &self,
        run_id: &str,
        ids: &[String],
        exists: &'static str,
    ) -> RepoResult<Vec<String>> {
        let (id, ids) = (run_id.to_string(), ids_json(ids)?);
        self.pool
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached(&format!(
                        "SELECT value FROM json_each(?1) WHERE {exists} \
                         (SELECT 1 FROM target_ids WHERE run_id = ?2 AND target_id = value)"
                    ))
                    .map_err(map_err)?;
                let rows = stmt
                    .query_map([&ids, &id], |r| r.get::<_, String>(0))
                    .map_err(map_err)?;
                collect(rows)
            })
            .await
    }
}
