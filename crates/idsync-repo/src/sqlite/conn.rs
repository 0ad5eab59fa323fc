//! SQLite connections: one serialised writer and a small pool of WAL readers, all used on
//! tokio's blocking threads. Every connection gets the same pragmas and the `idsync_lower` /
//! `idsync_ci` functions (filters and expression indexes depend on them).
//!
//! Checkpoints (copying the WAL back into the database file) run on a thread and connection of
//! their own, not inside the writer's commits: a checkpoint needs no write lock, so commits go
//! on while it copies. The writer still checkpoints itself if the WAL grows past
//! `WRITER_AUTOCHECKPOINT_PAGES` (the checkpointer is behind, e.g. readers hold old snapshots).

use super::query::map_err;
use crate::error::{RepoError, RepoResult};
use rusqlite::Connection;
use rusqlite::functions::FunctionFlags;
use rusqlite::types::ValueRef;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// Readers kept open between calls; more may be opened under load and are then dropped.
const MAX_IDLE_READERS: usize = 16;

/// How often the checkpointer copies the WAL back into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// WAL size (in pages) at which the writer checkpoints during its own commit (SQLite's default
/// is 1,000: about 10 ms of a busy queue drain).
const WRITER_AUTOCHECKPOINT_PAGES: u32 = 10_000;

#[derive(Debug)]
pub struct Pool {
    path: PathBuf,
    writer: Arc<Mutex<Connection>>,
    readers: Arc<Mutex<Vec<Connection>>>,
}

/// Opens a connection with the pragmas and functions every idsync connection needs.
pub fn connect(path: &Path) -> RepoResult<Connection> {
    let conn = Connection::open(path)
        .map_err(|e| RepoError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
    conn.busy_timeout(Duration::from_secs(30))
        .map_err(map_err)?;
    conn.execute_batch(
        // A 64 MiB page cache keeps index pages of bulk inserts (10,000-row change sets) hot.
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA temp_store = MEMORY; \
         PRAGMA cache_size = -65536;",
    )
    .map_err(map_err)?;
    conn.set_prepared_statement_cache_capacity(256);
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    conn.create_scalar_function("idsync_lower", 1, flags, |ctx| {
        Ok(match ctx.get_raw(0) {
            ValueRef::Text(t) => Some(super::filter::lower(&String::from_utf8_lossy(t))),
            _ => None,
        })
    })
    .map_err(map_err)?;
    conn.create_scalar_function("idsync_ci", 2, flags, |ctx| {
        let is_text = matches!(ctx.get_raw(0), ValueRef::Text(b"text"));
        Ok(match (is_text, ctx.get_raw(1)) {
            (true, ValueRef::Text(t)) => Some(super::filter::lower(&String::from_utf8_lossy(t))),
            _ => None,
        })
    })
    .map_err(map_err)?;
    Ok(conn)
}

impl Pool {
    pub fn new(path: PathBuf, writer: Connection) -> RepoResult<Self> {
        writer
            .pragma_update(None, "wal_autocheckpoint", WRITER_AUTOCHECKPOINT_PAGES)
            .map_err(map_err)?;
        let writer = Arc::new(Mutex::new(writer));
        spawn_checkpointer(path.clone(), Arc::downgrade(&writer))?;
        Ok(Pool {
            path,
            writer,
            readers: Arc::new(Mutex::new(Vec::new())),
        })
    }

    /// Runs `f` on the writer connection on a blocking thread; writes are serialised here.
    pub async fn write<T, F>(&self, f: F) -> RepoResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> RepoResult<T> + Send + 'static,
    {
        let writer = self.writer.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = writer
                .lock()
                .map_err(|_| RepoError::Internal("sqlite writer mutex poisoned".into()))?;
            f(&mut conn)
        })
        .await
        .map_err(|e| RepoError::Internal(format!("sqlite task failed: {e}")))?
    }

    /// Runs `f` on a reader connection (WAL: readers do not block the writer).
    pub async fn read<T, F>(&self, f: F) -> RepoResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> RepoResult<T> + Send + 'static,
    {
        let readers = self.readers.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let idle = readers
                .lock()
                .map_err(|_| RepoError::Internal("sqlite reader pool poisoned".into()))?
                .pop();
            let conn = match idle {
                Some(c) => c,
                None => connect(&path)?,
            };
            let out = f(&conn);
            if let Ok(mut pool) = readers.lock()
                && pool.len() < MAX_IDLE_READERS
            {
                pool.push(conn);
            }
            out
        })
        .await
        .map_err(|e| RepoError::Internal(format!("sqlite task failed: {e}")))?
    }
}

/// Runs PASSIVE checkpoints every `CHECKPOINT_EVERY` until the writer is gone (the repository
/// was dropped).
fn spawn_checkpointer(path: PathBuf, writer: Weak<Mutex<Connection>>) -> RepoResult<()> {
    let conn = connect(&path)?;
    std::thread::Builder::new()
        .name("idsync-sqlite-checkpoint".into())
        .spawn(move || {
            loop {
                std::thread::sleep(CHECKPOINT_EVERY);
                if writer.strong_count() == 0 {
                    return;
                }
                // PASSIVE copies what no reader still needs and never waits for a lock; a
                // failure (the database busy or gone) is tried again on the next round.
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::debug!(error = %e, path = %path.display(), "WAL checkpoint failed");
                }
            }
        })
        .map_err(|e| RepoError::Internal(format!("cannot start the checkpoint thread: {e}")))?;
    Ok(())
}
