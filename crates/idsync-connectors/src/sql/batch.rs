//! Write coalescing for `create` (group commit): concurrent creates on one object set are
//! gathered into one multi-row `INSERT … VALUES (…),(…) … RETURNING …`, one statement and one
//! round trip (one WAL flush) for the lot, each caller still getting its own row or error.
//!
//! No timer: the first create of an idle set starts a flusher task; creates that arrive while a
//! statement runs queue up and go together in the next statement. A lone create therefore waits
//! for nothing but its own statement. The flusher is a spawned task (not one of the callers), so
//! a caller that gives up (a dropped future) never strands the others' rows.
//!
//! A failed multi-row statement changes nothing (a statement is atomic in PostgreSQL and
//! SQLite); when the failure may be one row's fault (a duplicate key, a bad value) the rows are
//! inserted again one by one, in queue order, so each caller gets exactly its own answer. A
//! failure that is not about the data (server down, configuration) goes to every caller as is.
//! See docs/adr/0005-connector-write-coalescing.md.

use super::SqlObjectSet;
use super::builder::Param;
use crate::contract::{ConnectorError, ConnectorResult};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// Most rows one statement carries (also bounded by the dialect's parameter limit).
pub(super) const MAX_ROWS: usize = 1000;

/// A row to insert: its id, the bound key and the other columns (`None` is NULL).
#[derive(Debug)]
pub(super) struct NewRow {
    pub id: String,
    pub key: Param,
    pub assignments: Vec<(String, Option<Param>)>,
}

impl NewRow {
    /// The bound parameters of this row in a statement.
    pub fn param_count(&self) -> usize {
        1 + self.assignments.iter().filter(|(_, p)| p.is_some()).count()
    }

    fn columns(&self) -> Vec<&str> {
        self.assignments.iter().map(|(c, _)| c.as_str()).collect()
    }
}

struct Waiting {
    row: NewRow,
    reply: oneshot::Sender<ConnectorResult<Value>>,
}

#[derive(Default)]
struct State {
    queue: Vec<Waiting>,
    /// Whether a flusher task is running (it takes everything queued before it stops).
    flushing: bool,
}

/// The create queue of one object set.
#[derive(Default)]
pub(super) struct CreateBatcher {
    state: Mutex<State>,
}

impl std::fmt::Debug for CreateBatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateBatcher").finish_non_exhaustive()
    }
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    // The state is a queue and a flag: still consistent after a panic elsewhere.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Clears `flushing` (and fails what is queued) if the flusher task panics or is cancelled, so
/// that the next create starts a new one instead of waiting forever.
struct FlushGuard<'a>(&'a CreateBatcher, bool);

impl Drop for FlushGuard<'_> {
    fn drop(&mut self) {
        if !self.1 {
            let mut s = lock(&self.0.state);
            s.flushing = false;
            s.queue.clear();
        }
    }
}

/// Queues a create on `set` and waits for the statement that applies it.
pub(super) async fn create(set: &SqlObjectSet, row: NewRow) -> ConnectorResult<Value> {
    let (reply, answer) = oneshot::channel();
    let start = {
        let mut s = lock(&set.batcher.state);
        s.queue.push(Waiting { row, reply });
        !std::mem::replace(&mut s.flushing, true)
    };
    if start {
        match set.this.upgrade() {
            Some(me) => {
                tokio::spawn(flush_loop(me));
            }
            None => {
                lock(&set.batcher.state).flushing = false;
                return Err(ConnectorError::Internal("the object set is gone".into()));
            }
        }
    }
    answer
        .await
        .map_err(|_| ConnectorError::Internal("the create was dropped by its flusher".into()))?
}

async fn flush_loop(set: Arc<SqlObjectSet>) {
    let mut guard = FlushGuard(&set.batcher, false);
    loop {
        let batch: Vec<Waiting> = {
            let mut s = lock(&set.batcher.state);
            if s.queue.is_empty() {
                s.flushing = false;
                guard.1 = true;
                return;
            }
            let n = s.queue.len().min(MAX_ROWS);
            s.queue.drain(..n).collect()
        };
        flush(&set, batch).await;
    }
}

/// Inserts one batch: rows with the same columns share statements of at most `MAX_ROWS` rows and
/// the dialect's parameter limit.
async fn flush(set: &SqlObjectSet, batch: Vec<Waiting>) {
    let mut groups: Vec<(Vec<String>, Vec<Waiting>)> = Vec::new();
    for w in batch {
        let cols = w.row.columns();
        match groups.iter_mut().find(|(c, _)| *c == cols) {
            Some((_, g)) => g.push(w),
            None => groups.push((cols.into_iter().map(str::to_owned).collect(), vec![w])),
        }
    }
    let limit = set.settings.dialect.max_params();
    for (_, group) in groups {
        let mut chunk: Vec<Waiting> = Vec::new();
        let mut params = 0;
        for w in group {
            let n = w.row.param_count();
            if !chunk.is_empty() && params + n > limit {
                insert_chunk(set, std::mem::take(&mut chunk)).await;
                params = 0;
            }
            params += n;
            chunk.push(w);
        }
        if !chunk.is_empty() {
            insert_chunk(set, chunk).await;
        }
    }
}

async fn insert_chunk(set: &SqlObjectSet, chunk: Vec<Waiting>) {
    let rows: Vec<&NewRow> = chunk.iter().map(|w| &w.row).collect();
    match set.insert_returning(&rows).await {
        Ok(returned) => {
            let mut by_key: HashMap<String, Vec<Option<String>>> = returned
                .into_iter()
                .map(|r| (set.returned_key(&r), r))
                .collect();
            for w in chunk {
                let result = match by_key.remove(&key_text(&w.row.key)) {
                    Some(r) => set.row_to_object(&r),
                    // The stored key does not read back as sent (a type conversion): read the
                    // row as a lone create does.
                    None => set.read_back(&w.row.id).await,
                };
                let _ = w.reply.send(result);
            }
        }
        Err(e) if chunk.len() > 1 && may_be_one_rows_fault(&e) => {
            for w in chunk {
                let result = match set.insert_returning(&[&w.row]).await {
                    Ok(returned) => match returned.first() {
                        Some(r) => set.row_to_object(r),
                        None => set.read_back(&w.row.id).await,
                    },
                    Err(e) => Err(e),
                };
                let _ = w.reply.send(result);
            }
        }
        Err(e) => {
            for w in chunk {
                let _ = w.reply.send(Err(e.clone()));
            }
        }
    }
}

/// Whether a failed multi-row insert may have failed because of one of its rows only.
fn may_be_one_rows_fault(e: &ConnectorError) -> bool {
    matches!(
        e,
        ConnectorError::AlreadyExists(_)
            | ConnectorError::InvalidData(_)
            | ConnectorError::BadRequest(_)
            | ConnectorError::Internal(_)
    )
}

/// A key as a map key: the bound value, so `"007"` sent to an integer key matches `7` read back.
pub(super) fn key_text(p: &Param) -> String {
    format!("{p:?}")
}
