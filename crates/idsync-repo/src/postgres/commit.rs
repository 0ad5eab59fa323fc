//! `commit`: a ChangeSet in one transaction. The fence is checked first with the job row locked
//! ([`FENCE_SQL`]), so a claim by another node cannot slip in between the check and the writes.
//! Runs of consecutive creates (objects, links, audit entries) are written with one `unnest`
//! INSERT each, so a 10,000-object page is a handful of statements.

use super::PgRepository;
use super::convert::{now_ns, opt_ns, parse_rev, pg_err, rev_str, to_ns};
use crate::changes::{ChangeSet, CommitOutcome, Op};
use crate::error::{RepoError, RepoResult};
use crate::model::{AuditEntry, Job, Link, PlanEntry, SyncEvent};
use deadpool_postgres::GenericClient;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;

/// The fence check. `FOR KEY SHARE` is the weakest lock that keeps claimers out — a claim picks
/// its job with `FOR UPDATE SKIP LOCKED`, which skips a row held in any mode — while the owner's
/// own lease renewals (an `UPDATE` of non-key columns) go through: a page's commit can take
/// seconds, and a renewal queued behind it used to land late with a lease end computed before
/// it waited.
pub(crate) const FENCE_SQL: &str =
    "SELECT token FROM jobs WHERE id = $1 AND state <> 'DONE' FOR KEY SHARE";

/// From this many consecutive creates on, a binary COPY beats `INSERT ... SELECT unnest(...)`.
const COPY_THRESHOLD: usize = 1000;

impl PgRepository {
    pub(crate) async fn pg_commit(&self, changes: ChangeSet) -> RepoResult<CommitOutcome> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        if let Some(fence) = &changes.fence {
            let row = tx
                .query_opt(FENCE_SQL, &[&fence.job_id])
                .await
                .map_err(pg_err)?;
            if row.map(|r| r.get::<_, i64>(0)) != Some(fence.token) {
                return Err(RepoError::StaleToken {
                    job_id: fence.job_id.clone(),
                });
            }
        }
        let mut out = CommitOutcome::default();
        let ops = &by_table(&changes.ops);
        let mut i = 0;
        while i < ops.len() {
            let same_kind =
                |op: &&Op| std::mem::discriminant(*op) == std::mem::discriminant(ops[i]);
            let end = i + ops[i..].iter().take_while(|op| same_kind(op)).count();
            match ops[i] {
                Op::CreateObject { .. } if end - i >= COPY_THRESHOLD => {
                    copy_objects(&tx, &ops[i..end], &mut out).await?
                }
                Op::CreateObject { .. } => create_objects(&tx, &ops[i..end], &mut out).await?,
                Op::CreateLink(_) => {
                    let links: Vec<&Link> = ops[i..end]
                        .iter()
                        .filter_map(|op| {
                            if let Op::CreateLink(l) = op {
                                Some(l)
                            } else {
                                None
                            }
                        })
                        .collect();
                    create_links(&tx, &links, &mut out).await?;
                }
                Op::AppendAudit(_) => {
                    let entries: Vec<&AuditEntry> = ops[i..end]
                        .iter()
                        .filter_map(|op| {
                            if let Op::AppendAudit(e) = op {
                                Some(e)
                            } else {
                                None
                            }
                        })
                        .collect();
                    append_audit(&tx, &entries).await?;
                }
                Op::DeleteSyncEvent { .. } => delete_events(&tx, &ops[i..end]).await?,
                // A queue batch carries one lock fence per event: check each lock once.
                Op::HoldsLock { .. } => {
                    let mut seen: Vec<&Op> = Vec::new();
                    for op in &ops[i..end] {
                        if !seen.contains(op) {
                            seen.push(*op);
                            apply_one(&tx, op, &mut out).await?;
                        }
                    }
                }
                _ => {
                    for op in &ops[i..end] {
                        apply_one(&tx, op, &mut out).await?;
                    }
                }
            }
            i = end;
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(out)
    }
}

/// The table an op writes. There are no foreign keys between tables, so ops on different
/// tables commute inside a transaction.
fn table_of(op: &Op) -> u8 {
    match op {
        Op::CreateObject { .. } | Op::UpdateObject { .. } | Op::DeleteObject { .. } => 0,
        Op::CreateLink(_) | Op::UpdateLink { .. } | Op::DeleteLink { .. } => 1,
        Op::AppendAudit(_) => 2,
        Op::AddRunCounters { .. } => 3,
        Op::AddPlanEntries(_) => 4,
        Op::RegisterTargetIds { .. } | Op::RecordCreateIntents { .. } => 5,
        Op::EnqueueSyncEvent(_) | Op::DeleteSyncEvent { .. } => 6,
        Op::CompleteJob { .. } | Op::EnqueueJob(_) => 7,
        Op::SetSyncToken { .. } => 8,
        Op::DeleteDeadLetter { .. } => 9,
        Op::UpdateRun { .. } => 10,
        Op::DeadLetterEvent { .. } => 11,
        Op::HoldsLock { .. } => 12,
    }
}

/// The ops grouped by table, each table's ops in their original order, tables in the order they
/// first appear. A recon page interleaves its writes per object (create the object, its link,
/// its audit entry, then the next object); grouped, they are three runs of consecutive creates
/// — a COPY and two `unnest` INSERTs instead of one statement per op.
fn by_table(ops: &[Op]) -> Vec<&Op> {
    let mut order: Vec<u8> = Vec::new();
    for op in ops {
        let t = table_of(op);
        if !order.contains(&t) {
            order.push(t);
        }
    }
    let mut out = Vec::with_capacity(ops.len());
    for t in order {
        out.extend(ops.iter().filter(|op| table_of(op) == t));
    }
    out
}

async fn apply_one<C: GenericClient + Sync>(
    c: &C,
    op: &Op,
    out: &mut CommitOutcome,
) -> RepoResult<()> {
    match op {
        Op::CreateObject { .. } => create_objects(c, &[op], out).await,
        Op::UpdateObject {
            object_type,
            id,
            expected_rev,
            value,
        } => {
            let value = with_identity(value, id, None)?;
            let expected = expected_rev.as_deref().map(parse_rev);
            let stmt = c
                .prepare_cached(
                    "UPDATE objects SET rev = rev + 1, \
                     obj = $3::jsonb || jsonb_build_object('_id', id, '_rev', (rev + 1)::text) \
                     WHERE object_type = $1 AND id = $2 AND ($4::bigint IS NULL OR rev = $4) RETURNING rev",
                )
                .await
                .map_err(pg_err)?;
            match c
                .query_opt(&stmt, &[object_type, id, &value, &expected])
                .await
                .map_err(pg_err)?
            {
                Some(row) => {
                    out.object_revs
                        .push((object_type.clone(), id.clone(), rev_str(row.get(0))));
                    Ok(())
                }
                None => Err(missing_or_mismatch(
                    c,
                    "objects WHERE object_type = $1 AND id = $2",
                    &[object_type, id],
                    id,
                    expected_rev,
                )
                .await),
            }
        }
        Op::DeleteObject {
            object_type,
            id,
            expected_rev,
        } => {
            let expected = expected_rev.as_deref().map(parse_rev);
            let stmt = c
                .prepare_cached(
                    "DELETE FROM objects WHERE object_type = $1 AND id = $2 \
                     AND ($3::bigint IS NULL OR rev = $3) RETURNING rev",
                )
                .await
                .map_err(pg_err)?;
            match c
                .query_opt(&stmt, &[object_type, id, &expected])
                .await
                .map_err(pg_err)?
            {
                Some(_) => Ok(()),
                None => Err(missing_or_mismatch(
                    c,
                    "objects WHERE object_type = $1 AND id = $2",
                    &[object_type, id],
                    id,
                    expected_rev,
                )
                .await),
            }
        }
        Op::CreateLink(link) => create_links(c, &[link], out).await,
        Op::UpdateLink { link, expected_rev } => {
            let expected = expected_rev.as_deref().map(parse_rev);
            let stmt = c
                .prepare_cached(
                    "UPDATE links SET rev = rev + 1, link_type = $2, link_qualifier = $3, \
                     first_id = $4, second_id = $5 WHERE id = $1 AND ($6::bigint IS NULL OR rev = $6) \
                     RETURNING rev",
                )
                .await
                .map_err(pg_err)?;
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 6] = [
                &link.id,
                &link.link_type,
                &link.link_qualifier,
                &link.first_id,
                &link.second_id,
                &expected,
            ];
            match c.query_opt(&stmt, &params).await.map_err(pg_err)? {
                Some(row) => {
                    out.link_revs.push((link.id.clone(), rev_str(row.get(0))));
                    Ok(())
                }
                None => Err(missing_or_mismatch(
                    c,
                    "links WHERE id = $1",
                    &[&link.id],
                    &link.id,
                    expected_rev,
                )
                .await),
            }
        }
        Op::DeleteLink { id, expected_rev } => {
            let expected = expected_rev.as_deref().map(parse_rev);
            let stmt = c
                .prepare_cached("DELETE FROM links WHERE id = $1 AND ($2::bigint IS NULL OR rev = $2) RETURNING rev")
                .await
                .map_err(pg_err)?;
            match c.query_opt(&stmt, &[id, &expected]).await.map_err(pg_err)? {
                Some(_) => Ok(()),
                None => Err(
                    missing_or_mismatch(c, "links WHERE id = $1", &[id], id, expected_rev).await,
                ),
            }
        }
        Op::AppendAudit(entry) => append_audit(c, &[entry]).await,
        Op::AddRunCounters {
            run_id,
            node_id,
            counters,
        } => add_counters(c, run_id, node_id, counters).await,
        Op::AddPlanEntries(entries) => add_plan_entries(c, entries).await,
        Op::RegisterTargetIds { run_id, ids } => {
            let stmt = c
                .prepare_cached(
                    "INSERT INTO target_ids (run_id, target_id) SELECT $1, t FROM unnest($2::text[]) AS t \
                     ON CONFLICT DO NOTHING",
                )
                .await
                .map_err(pg_err)?;
            c.execute(&stmt, &[run_id, ids]).await.map_err(pg_err)?;
            Ok(())
        }
        Op::RecordCreateIntents {
            run_id,
            job_id,
            source_ids,
        } => {
            let stmt = c
                .prepare_cached(
                    "INSERT INTO create_intents (job_id, source_id, run_id) \
                     SELECT $1, s, $2 FROM unnest($3::text[]) AS s ON CONFLICT DO NOTHING",
                )
                .await
                .map_err(pg_err)?;
            c.execute(&stmt, &[job_id, run_id, source_ids])
                .await
                .map_err(pg_err)?;
            Ok(())
        }
        Op::EnqueueSyncEvent(event) => enqueue_event(c, event).await,
        Op::CompleteJob { job_id } => {
            let stmt = c
                // A done job stays as a tombstone (until its run is pruned), so a re-run of
                // the page that scheduled it cannot schedule it again.
                .prepare_cached(
                    "UPDATE jobs SET state = 'DONE', owner_node = NULL, lease_until_ns = NULL \
                     WHERE id = $1 AND state <> 'DONE'",
                )
                .await
                .map_err(pg_err)?;
            match c.execute(&stmt, &[job_id]).await.map_err(pg_err)? {
                0 => Err(RepoError::NotFound(format!("job {job_id}"))),
                _ => Ok(()),
            }
        }
        Op::EnqueueJob(job) => enqueue_job(c, job).await,
        Op::SetSyncToken { source, token } => set_sync_token(c, source, token).await,
        Op::DeleteDeadLetter { id } => {
            let stmt = c
                .prepare_cached("DELETE FROM deadletters WHERE id = $1")
                .await
                .map_err(pg_err)?;
            match c.execute(&stmt, &[id]).await.map_err(pg_err)? {
                0 => Err(RepoError::NotFound(format!("dead letter {id}"))),
                _ => Ok(()),
            }
        }
        Op::DeleteSyncEvent { .. } => delete_events(c, &[op]).await,
        Op::UpdateRun { run_id, update } => {
            super::runs::update_run_on(c, run_id, update).await?;
            Ok(())
        }
        Op::HoldsLock {
            name,
            node_id,
            token,
        } => {
            // `FOR KEY SHARE` keeps the row from being deleted (released, or given away by
            // recovery) until this commit ends, while the holder's own re-acquire (an update
            // of non-key columns) still goes through.
            let stmt = c
                .prepare_cached(
                    "SELECT 1 FROM locks WHERE name = $1 AND node_id = $2 AND token = $3 \
                     FOR KEY SHARE",
                )
                .await
                .map_err(pg_err)?;
            match c.query_opt(&stmt, &[name, node_id, token]).await {
                Ok(Some(_)) => Ok(()),
                Ok(None) => Err(RepoError::LockLost {
                    name: name.clone(),
                    node_id: node_id.clone(),
                }),
                Err(e) => Err(pg_err(e)),
            }
        }
        Op::DeadLetterEvent { letter, node_id } => {
            let n = c
                .execute(
                    "DELETE FROM syncqueue WHERE id = $1 AND state = 'ACQUIRED' AND node_id = $2",
                    &[&letter.event.id, node_id],
                )
                .await
                .map_err(pg_err)?;
            if n == 0 {
                return Err(RepoError::NotFound(format!(
                    "sync/queue/{} acquired by {node_id}",
                    letter.event.id
                )));
            }
            let whole = serde_json::to_value(letter).map_err(RepoError::internal)?;
            let n = c
                .execute(
                    "INSERT INTO deadletters (id, mapping, entry, letter) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT DO NOTHING",
                    &[&letter.id, &letter.event.mapping, &letter.to_json(), &whole],
                )
                .await
                .map_err(pg_err)?;
            if n == 0 {
                return Err(RepoError::already_exists("dead letter", letter.id.clone()));
            }
            Ok(())
        }
    }
}

/// A run of `DeleteSyncEvent`s: one statement per node (a queue consumer's batch is one).
/// Every event must be deleted: one that is no longer ACQUIRED by the node refuses the commit.
async fn delete_events<C: GenericClient + Sync>(c: &C, ops: &[&Op]) -> RepoResult<()> {
    let mut by_node: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for op in ops {
        if let Op::DeleteSyncEvent { id, node_id } = op {
            by_node.entry(node_id).or_default().push(id);
        }
    }
    let stmt = c
        .prepare_cached(
            "DELETE FROM syncqueue WHERE id = ANY($1) AND state = 'ACQUIRED' AND node_id = $2",
        )
        .await
        .map_err(pg_err)?;
    for (node, ids) in by_node {
        let n = c.execute(&stmt, &[&ids, &node]).await.map_err(pg_err)?;
        if n as usize != ids.len() {
            return Err(RepoError::NotFound(format!(
                "{} of {} sync/queue events are no longer acquired by {node}",
                ids.len() - n as usize,
                ids.len()
            )));
        }
    }
    Ok(())
}

/// `value` as stored: a JSON object carrying `_id` (and `_rev` when known).
fn with_identity(value: &Value, id: &str, rev: Option<i64>) -> RepoResult<Value> {
    let Value::Object(map) = value else {
        return Err(RepoError::BadQuery(format!(
            "managed object {id} must be a JSON object"
        )));
    };
    let mut map = map.clone();
    map.insert("_id".into(), Value::String(id.to_string()));
    match rev {
        Some(r) => map.insert("_rev".into(), Value::String(rev_str(r))),
        None => map.shift_remove("_rev"),
    };
    Ok(Value::Object(map))
}

/// After a conditional write matched nothing: NotFound, or the revision that did not match.
async fn missing_or_mismatch<C: GenericClient + Sync>(
    c: &C,
    from_where: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    id: &str,
    expected: &Option<String>,
) -> RepoError {
    let sql = format!("SELECT rev FROM {from_where}");
    match c.query_opt(&sql, params).await {
        Err(e) => pg_err(e),
        Ok(None) => RepoError::NotFound(id.to_string()),
        Ok(Some(row)) => RepoError::RevisionMismatch {
            id: id.to_string(),
            expected: expected.clone().unwrap_or_default(),
            actual: rev_str(row.get(0)),
        },
    }
}

async fn create_objects<C: GenericClient + Sync>(
    c: &C,
    ops: &[&Op],
    out: &mut CommitOutcome,
) -> RepoResult<()> {
    let mut types = Vec::with_capacity(ops.len());
    let mut ids = Vec::with_capacity(ops.len());
    let mut values = Vec::with_capacity(ops.len());
    let mut seen = HashSet::with_capacity(ops.len());
    for op in ops {
        if let Op::CreateObject {
            object_type,
            id,
            value,
        } = op
        {
            if !seen.insert((object_type.as_str(), id.as_str())) {
                return Err(RepoError::already_exists(
                    format!("managed/{object_type}"),
                    id.clone(),
                ));
            }
            types.push(object_type.as_str());
            ids.push(id.as_str());
            values.push(with_identity(value, id, Some(1))?);
        }
    }
    let stmt = c
        .prepare_cached(
            "INSERT INTO objects (object_type, id, rev, obj) \
             SELECT t, i, 1, o FROM unnest($1::text[], $2::text[], $3::jsonb[]) AS u(t, i, o) \
             ON CONFLICT DO NOTHING RETURNING object_type, id",
        )
        .await
        .map_err(pg_err)?;
    let rows = c
        .query(&stmt, &[&types, &ids, &values])
        .await
        .map_err(pg_err)?;
    if rows.len() != ids.len() {
        let inserted: HashSet<(String, String)> =
            rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        for (t, i) in types.iter().zip(&ids) {
            if !inserted.contains(&(t.to_string(), i.to_string())) {
                return Err(RepoError::already_exists(format!("managed/{t}"), *i));
            }
        }
    }
    for (t, i) in types.iter().zip(&ids) {
        out.object_revs
            .push((t.to_string(), i.to_string(), rev_str(1)));
    }
    Ok(())
}

/// Bulk creates by binary COPY straight into `objects`. COPY has no ON CONFLICT: an existing
/// id fails the statement with a unique violation, which aborts the (rolled-back) transaction
/// and is reported as the Conflict on the id the server names.
async fn copy_objects(
    tx: &deadpool_postgres::Transaction<'_>,
    ops: &[&Op],
    out: &mut CommitOutcome,
) -> RepoResult<()> {
    let mut seen = HashSet::with_capacity(ops.len());
    for op in ops {
        if let Op::CreateObject {
            object_type, id, ..
        } = op
            && !seen.insert((object_type.as_str(), id.as_str()))
        {
            return Err(RepoError::already_exists(
                format!("managed/{object_type}"),
                id.clone(),
            ));
        }
    }
    let sink = tx
        .copy_in("COPY objects (object_type, id, rev, obj) FROM STDIN BINARY")
        .await
        .map_err(pg_err)?;
    let writer = BinaryCopyInWriter::new(sink, &[Type::TEXT, Type::TEXT, Type::INT8, Type::JSONB]);
    let mut writer = std::pin::pin!(writer);
    for op in ops {
        if let Op::CreateObject {
            object_type,
            id,
            value,
        } = op
        {
            let value = with_identity(value, id, Some(1))?;
            writer
                .as_mut()
                .write(&[object_type, id, &1i64, &value])
                .await
                .map_err(copy_err)?;
        }
    }
    writer.as_mut().finish().await.map_err(copy_err)?;
    for op in ops {
        if let Op::CreateObject {
            object_type, id, ..
        } = op
        {
            out.object_revs
                .push((object_type.clone(), id.clone(), rev_str(1)));
        }
    }
    Ok(())
}

/// A COPY failure; a duplicate key names the object from the server's
/// `Key (object_type, id)=(user, u1) already exists.` detail.
fn copy_err(e: tokio_postgres::Error) -> RepoError {
    let key = e
        .as_db_error()
        .filter(|db| *db.code() == tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
        .and_then(|db| db.detail())
        .and_then(|d| {
            d.split_once("=(")?
                .1
                .rsplit_once(") already exists")
                .map(|(k, _)| k.to_string())
        });
    match key.as_deref().and_then(|k| k.split_once(", ")) {
        Some((object_type, id)) => RepoError::already_exists(format!("managed/{object_type}"), id),
        None => pg_err(e),
    }
}

async fn create_links<C: GenericClient + Sync>(
    c: &C,
    links: &[&Link],
    out: &mut CommitOutcome,
) -> RepoResult<()> {
    let mut ids = HashSet::new();
    let mut firsts = HashSet::new();
    let mut seconds = HashSet::new();
    for l in links {
        let key = (l.link_type.as_str(), l.link_qualifier.as_str());
        if !ids.insert(l.id.as_str())
            || !firsts.insert((key, l.first_id.as_str()))
            || !seconds.insert((key, l.second_id.as_str()))
        {
            return Err(RepoError::already_exists("link", l.id.clone()));
        }
    }
    let col = |f: fn(&Link) -> &str| links.iter().map(|l| f(l)).collect::<Vec<&str>>();
    let stmt = c
        .prepare_cached(
            "INSERT INTO links (id, rev, link_type, link_qualifier, first_id, second_id) \
             SELECT i, 1, t, q, f, s FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) \
             AS u(i, t, q, f, s) ON CONFLICT DO NOTHING RETURNING id",
        )
        .await
        .map_err(pg_err)?;
    let rows = c
        .query(
            &stmt,
            &[
                &col(|l| &l.id),
                &col(|l| &l.link_type),
                &col(|l| &l.link_qualifier),
                &col(|l| &l.first_id),
                &col(|l| &l.second_id),
            ],
        )
        .await
        .map_err(pg_err)?;
    if rows.len() != links.len() {
        let inserted: HashSet<String> = rows.iter().map(|r| r.get(0)).collect();
        if let Some(l) = links.iter().find(|l| !inserted.contains(&l.id)) {
            return Err(RepoError::already_exists("link", l.id.clone()));
        }
    }
    out.link_revs
        .extend(links.iter().map(|l| (l.id.clone(), rev_str(1))));
    Ok(())
}

pub(crate) async fn append_audit<C: GenericClient + Sync>(
    c: &C,
    entries: &[&AuditEntry],
) -> RepoResult<()> {
    if entries.is_empty() {
        return Ok(());
    }
    // Recon decisions go to their narrow table (src/recon_entry.rs), the rest as documents.
    let mut narrow = Vec::new();
    let mut full = Vec::new();
    for e in entries {
        match crate::recon_entry::narrow(e) {
            Some(values) => narrow.push((*e, values)),
            None => full.push(*e),
        }
    }
    if !narrow.is_empty() {
        append_recon_entries(c, &narrow).await?;
    }
    if full.is_empty() {
        return Ok(());
    }
    let entries = full;
    let kinds: Vec<&str> = entries.iter().map(|e| e.kind.as_str()).collect();
    let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
    let recon: Vec<Option<&str>> = entries.iter().map(|e| e.recon_id.as_deref()).collect();
    let mapping: Vec<Option<&str>> = entries.iter().map(|e| e.mapping.as_deref()).collect();
    let types: Vec<Option<&str>> = entries.iter().map(|e| e.entry_type.as_deref()).collect();
    let ts = entries
        .iter()
        .map(|e| to_ns(&e.timestamp))
        .collect::<RepoResult<Vec<i64>>>()?;
    let docs: Vec<&Value> = entries.iter().map(|e| &e.entry).collect();
    let stmt = c
        .prepare_cached(
            "INSERT INTO audit (kind, id, recon_id, mapping, entry_type, timestamp_ns, entry) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::jsonb[]) \
             ON CONFLICT DO NOTHING",
        )
        .await
        .map_err(pg_err)?;
    c.execute(&stmt, &[&kinds, &ids, &recon, &mapping, &types, &ts, &docs])
        .await
        .map_err(pg_err)?;
    Ok(())
}

/// Recon decisions with their narrow column values (`FIELDS` order), one `unnest` INSERT.
async fn append_recon_entries<C: GenericClient + Sync>(
    c: &C,
    rows: &[(&AuditEntry, crate::recon_entry::Narrow<'_>)],
) -> RepoResult<()> {
    use crate::recon_entry::FIELDS;
    let ids: Vec<&str> = rows.iter().map(|(e, _)| e.id.as_str()).collect();
    let ts = rows
        .iter()
        .map(|(e, _)| to_ns(&e.timestamp))
        .collect::<RepoResult<Vec<i64>>>()?;
    let columns: Vec<Vec<Option<&str>>> = (0..FIELDS.len())
        .map(|i| rows.iter().map(|(_, v)| v[i]).collect())
        .collect();
    let names: Vec<&str> = FIELDS.iter().map(|(_, col)| *col).collect();
    let arrays: Vec<String> = (3..FIELDS.len() + 3)
        .map(|i| format!("${i}::text[]"))
        .collect();
    let sql = format!(
        "INSERT INTO recon_entries (id, timestamp_ns, {}) \
         SELECT * FROM unnest($1::text[], $2::bigint[], {}) ON CONFLICT DO NOTHING",
        names.join(", "),
        arrays.join(", ")
    );
    let stmt = c.prepare_cached(&sql).await.map_err(pg_err)?;
    let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&ids, &ts];
    for col in &columns {
        params.push(col);
    }
    c.execute(&stmt, &params).await.map_err(pg_err)?;
    Ok(())
}

async fn add_counters<C: GenericClient + Sync>(
    c: &C,
    run_id: &str,
    node_id: &str,
    counters: &BTreeMap<String, i64>,
) -> RepoResult<()> {
    let keys: Vec<&str> = counters.keys().map(String::as_str).collect();
    let values: Vec<i64> = counters.values().copied().collect();
    let stmt = c
        .prepare_cached(
            "INSERT INTO run_counters (run_id, node_id, key, value) \
             SELECT $1, $2, k, v FROM unnest($3::text[], $4::bigint[]) AS u(k, v) \
             ON CONFLICT (run_id, node_id, key) DO UPDATE SET value = run_counters.value + EXCLUDED.value",
        )
        .await
        .map_err(pg_err)?;
    c.execute(&stmt, &[&run_id, &node_id, &keys, &values])
        .await
        .map_err(pg_err)?;
    Ok(())
}

async fn add_plan_entries<C: GenericClient + Sync>(c: &C, entries: &[PlanEntry]) -> RepoResult<()> {
    let runs: Vec<&str> = entries.iter().map(|e| e.run_id.as_str()).collect();
    let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
    let docs: Vec<&Value> = entries.iter().map(|e| &e.entry).collect();
    // A reprocessed page (lease lost, page re-claimed) rewrites its entries: idempotent.
    let stmt = c
        .prepare_cached(
            "INSERT INTO plan_entries (run_id, id, entry) SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[]) \
             ON CONFLICT (run_id, id) DO UPDATE SET entry = EXCLUDED.entry",
        )
        .await
        .map_err(pg_err)?;
    c.execute(&stmt, &[&runs, &ids, &docs])
        .await
        .map_err(pg_err)?;
    Ok(())
}

pub(crate) async fn enqueue_event<C: GenericClient + Sync>(c: &C, e: &SyncEvent) -> RepoResult<()> {
    let stmt = c
        .prepare_cached(
            "INSERT INTO syncqueue (id, rev, mapping, resource_id, resource_collection, sync_action, state, \
             node_id, remaining_retries, create_date_ns, object_rev, old_object, new_object, context) \
             VALUES ($1, 1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT DO NOTHING",
        )
        .await
        .map_err(pg_err)?;
    let n = c
        .execute(
            &stmt,
            &[
                &e.id,
                &e.mapping,
                &e.resource_id,
                &e.resource_collection,
                &e.sync_action.as_str(),
                &e.state.as_str(),
                &e.node_id,
                &e.remaining_retries,
                &to_ns(&e.create_date)?,
                &e.object_rev,
                &e.old_object,
                &e.new_object,
                &e.context,
            ],
        )
        .await
        .map_err(pg_err)?;
    if n == 0 {
        return Err(RepoError::already_exists("sync event", e.id.clone()));
    }
    Ok(())
}

pub(crate) async fn enqueue_job<C: GenericClient + Sync>(c: &C, job: &Job) -> RepoResult<()> {
    let stmt = c
        .prepare_cached(
            "INSERT INTO jobs (id, kind, run_id, payload, state, owner_node, lease_until_ns, token, not_before_ns, created_ns) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
        )
        .await
        .map_err(pg_err)?;
    let n = c
        .execute(
            &stmt,
            &[
                &job.id,
                &job.kind,
                &job.run_id,
                &job.payload,
                &job.state.as_str(),
                &job.owner_node,
                &opt_ns(&job.lease_until)?,
                &job.token,
                &opt_ns(&job.not_before)?,
                &to_ns(&job.created)?,
            ],
        )
        .await
        .map_err(pg_err)?;
    if n == 0 {
        return Err(RepoError::already_exists("job", job.id.clone()));
    }
    Ok(())
}

pub(crate) async fn set_sync_token<C: GenericClient + Sync>(
    c: &C,
    source: &str,
    token: &Value,
) -> RepoResult<()> {
    let stmt = c
        .prepare_cached(
            "INSERT INTO livesync_tokens (source, token, updated_ns) VALUES ($1, $2, $3) \
             ON CONFLICT (source) DO UPDATE SET token = EXCLUDED.token, updated_ns = EXCLUDED.updated_ns",
        )
        .await
        .map_err(pg_err)?;
    c.execute(&stmt, &[&source, token, &now_ns()])
        .await
        .map_err(pg_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::by_table;
    use crate::changes::Op;
    use crate::model::Link;

    fn object(id: &str) -> Op {
        Op::CreateObject {
            object_type: "user".into(),
            id: id.into(),
            value: serde_json::json!({}),
        }
    }

    fn link(id: &str) -> Op {
        Op::CreateLink(Link {
            id: id.into(),
            rev: String::new(),
            link_type: "t".into(),
            link_qualifier: "default".into(),
            first_id: id.into(),
            second_id: id.into(),
        })
    }

    fn ids(ops: &[&Op]) -> Vec<String> {
        ops.iter()
            .map(|op| match op {
                Op::CreateObject { id, .. } => format!("o:{id}"),
                Op::CreateLink(l) => format!("l:{}", l.id),
                Op::DeleteLink { id, .. } => format!("-l:{id}"),
                Op::CompleteJob { job_id } => format!("j:{job_id}"),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn ops_are_grouped_by_table_keeping_each_tables_order() {
        let ops = vec![
            object("a"),
            link("a"),
            object("b"),
            Op::DeleteLink {
                id: "x".into(),
                expected_rev: None,
            },
            link("x"),
            Op::CompleteJob { job_id: "j".into() },
            object("c"),
            link("c"),
        ];
        assert_eq!(
            ids(&by_table(&ops)),
            ["o:a", "o:b", "o:c", "l:a", "-l:x", "l:x", "l:c", "j:j"]
        );
    }
}
