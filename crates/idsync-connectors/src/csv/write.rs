//! Writes to a CSV file that never lose rows. A batch that only adds rows of new ids (the
//! common case of a sync draining creates) is appended to the end of the file with one write and
//! one fdatasync; the end of an append torn by a crash is never read and is dropped by the next
//! write (see `tail`). Any other batch rewrites the file into a temporary file in the same
//! folder, fsyncs it, renames it over the original and fsyncs the folder, so a crash leaves
//! either the old or the new file, never half of one.
//!
//! Appends need to know that an id is new without reading the file: a set of the hashes of
//! the file's ids (8 bytes per row) is kept for the file as last written (device, inode, length,
//! mtime) and rebuilt by one scan whenever the file changed otherwise. An id whose hash is in
//! the set (a duplicate, or a rare collision) sends the batch to the rewrite, which checks
//! exactly.
//!
//! Writers to one file are serialised by one lock per file path (shared by every connector
//! instance in the process, whatever their settings), and batched: writes that queue up while a rewrite runs are all
//! applied by the next single rewrite (group commit), so N concurrent creates during a recon
//! cost far fewer than N rewrites. Each write still gets its own result. Across processes
//! (cluster nodes on one host) an exclusive advisory lock on `<file>.lock`, a file left beside
//! the CSV, serialises the rewrites.

use super::layout::read_error;
use super::read;
use super::settings::CsvSettings;
use super::tail::{self, Journal};
use crate::contract::{ConnectorError, ConnectorResult};
use csv::StringRecord;
use std::collections::{HashMap, HashSet};
use std::fs::{File, Metadata, OpenOptions};
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::io::{BufWriter, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::SystemTime;
use tokio::sync::oneshot;

/// The values one write sets, by column name. `None` is an empty field.
pub(crate) type Fields = Vec<(String, Option<String>)>;

#[derive(Debug)]
pub(crate) enum WriteOp {
    Create {
        id: String,
        fields: Fields,
        column_order: Vec<String>,
    },
    /// Replaces the mapped columns; with `clear_unlisted`, every column not in `fields` (but
    /// the uid) is emptied too (objects without a declared schema own all columns).
    Update {
        id: String,
        fields: Fields,
        clear_unlisted: bool,
    },
    Delete {
        id: String,
    },
}

impl WriteOp {
    fn id(&self) -> &str {
        match self {
            WriteOp::Create { id, .. } | WriteOp::Update { id, .. } | WriteOp::Delete { id } => id,
        }
    }

    /// Whether the id or a value holds a line break (such rows are never appended, see `tail`).
    fn has_line_break(&self) -> bool {
        let breaks = |s: &str| s.bytes().any(tail::is_line_break);
        let fields = match self {
            WriteOp::Create { fields, .. } | WriteOp::Update { fields, .. } => fields.as_slice(),
            WriteOp::Delete { .. } => &[],
        };
        breaks(self.id())
            || fields
                .iter()
                .any(|(c, v)| breaks(c) || v.as_deref().is_some_and(breaks))
    }
}

/// The hash of an id in the id set.
fn id_hash(id: &[u8]) -> u64 {
    BuildHasherDefault::<DefaultHasher>::default().hash_one(id)
}

/// What identifies one state of the file: device, inode, length, mtime (ns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp(u64, u64, u64, i64, i64);

impl Stamp {
    fn of(meta: &Metadata) -> Stamp {
        Stamp(
            meta.dev(),
            meta.ino(),
            meta.len(),
            meta.mtime(),
            meta.mtime_nsec(),
        )
    }
}

/// The header and the hashes of the ids of the file in one state.
struct IdSet {
    stamp: Stamp,
    header: Arc<StringRecord>,
    uid_col: usize,
    ids: HashSet<u64>,
}

/// The header and the row a write produced (for a delete, the row it removed).
pub(crate) type WriteResult = ConnectorResult<(Arc<StringRecord>, StringRecord)>;

struct Pending {
    op: WriteOp,
    reply: oneshot::Sender<WriteResult>,
}

/// The writes waiting for the next batch, and whether a flusher task is running.
#[derive(Default)]
struct Queue {
    ops: Vec<Pending>,
    flushing: bool,
}

/// Clears `flushing` (failing what is queued) if the flusher task ends abnormally, so the next
/// write starts a new one.
struct FlushGuard<'a>(&'a Mutex<Queue>, bool);

impl Drop for FlushGuard<'_> {
    fn drop(&mut self) {
        if !self.1 {
            let mut q = lock(self.0);
            q.flushing = false;
            q.ops.clear();
        }
    }
}

/// One connector's view of a CSV file: its settings, its queue of writes, its count cache, and
/// the process-wide lock of the file's path.
pub(crate) struct CsvFile {
    settings: Arc<CsvSettings>,
    write_lock: Arc<tokio::sync::Mutex<()>>,
    pending: Mutex<Queue>,
    /// The row count for a given file length and modification time.
    count_cache: Mutex<Option<(u64, Option<SystemTime>, u64)>>,
    /// The ids of the file as this connector last wrote or scanned it (for appends).
    ids: Mutex<Option<IdSet>>,
}

impl std::fmt::Debug for CsvFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvFile")
            .field("path", &self.settings.csv_file)
            .finish()
    }
}

type PathLock = tokio::sync::Mutex<()>;

/// The write lock of each file path in use.
static LOCKS: LazyLock<Mutex<HashMap<PathBuf, Weak<PathLock>>>> = LazyLock::new(Default::default);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding these locks leaves plain data that is still consistent.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl CsvFile {
    /// The state for one connector; two connectors naming the same file share its lock, so
    /// their writes are serialised too.
    pub fn for_settings(settings: Arc<CsvSettings>) -> Arc<CsvFile> {
        let key = std::path::absolute(&settings.csv_file).unwrap_or(settings.csv_file.clone());
        let write_lock = {
            let mut locks = lock(&LOCKS);
            match locks.get(&key).and_then(Weak::upgrade) {
                Some(existing) => existing,
                None => {
                    locks.retain(|_, w| w.strong_count() > 0);
                    let fresh = Arc::new(PathLock::new(()));
                    locks.insert(key, Arc::downgrade(&fresh));
                    fresh
                }
            }
        };
        Arc::new(CsvFile {
            settings,
            write_lock,
            pending: Mutex::new(Queue::default()),
            count_cache: Mutex::new(None),
            ids: Mutex::new(None),
        })
    }

    pub fn settings(&self) -> &Arc<CsvSettings> {
        &self.settings
    }

    /// Queues a write and waits for the batch that applies it.
    ///
    /// Group commit without a timer: the first write of an idle file starts a flusher task,
    /// which applies everything queued in one batch, then everything queued meanwhile in the
    /// next, until the queue is empty. Callers only wait for their answer (a waiter never holds
    /// the file lock for a batch it is not in, which would cut the next batch short).
    pub async fn submit(self: &Arc<Self>, op: WriteOp) -> WriteResult {
        let (reply, answer) = oneshot::channel();
        let start = {
            let mut q = lock(&self.pending);
            q.ops.push(Pending { op, reply });
            !std::mem::replace(&mut q.flushing, true)
        };
        if start {
            tokio::spawn(Arc::clone(self).flush_loop());
        }
        answer
            .await
            .map_err(|_| ConnectorError::Internal("CSV write was dropped".into()))?
    }

    async fn flush_loop(self: Arc<Self>) {
        let mut guard = FlushGuard(&self.pending, false);
        loop {
            // The path lock is shared with other connectors naming the same file.
            let _path = self.write_lock.lock().await;
            let batch = {
                let mut q = lock(&self.pending);
                if q.ops.is_empty() {
                    q.flushing = false;
                    guard.1 = true;
                    return;
                }
                std::mem::take(&mut q.ops)
            };
            let file = Arc::clone(&self);
            // A panic in the batch drops its replies: those callers get "dropped".
            let _ = tokio::task::spawn_blocking(move || file.rewrite(batch)).await;
        }
    }

    /// The number of rows, cached against the file's length and modification time.
    pub fn count(&self) -> ConnectorResult<u64> {
        let stamp = match std::fs::metadata(&self.settings.csv_file) {
            Ok(m) => Some((m.len(), m.modified().ok())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(ConnectorError::Unavailable(e.to_string())),
        };
        if let (Some((len, mtime)), Some((clen, cmtime, n))) = (stamp, *lock(&self.count_cache))
            && len == clen
            && mtime == cmtime
        {
            return Ok(n);
        }
        let n = read::count_rows(&self.settings)?;
        if let Some((len, mtime)) = stamp {
            *lock(&self.count_cache) = Some((len, mtime, n));
        }
        Ok(n)
    }

    /// Applies a batch in one rewrite and answers every write in it.
    fn rewrite(&self, batch: Vec<Pending>) {
        let ops: Vec<&WriteOp> = batch.iter().map(|p| &p.op).collect();
        match self.apply(&ops) {
            Ok(results) => {
                for (p, r) in batch.into_iter().zip(results) {
                    let _ = p.reply.send(r);
                }
            }
            Err(e) => {
                for p in batch {
                    let _ = p.reply.send(Err(e.clone()));
                }
            }
        }
    }

    fn apply(&self, ops: &[&WriteOp]) -> ConnectorResult<Vec<WriteResult>> {
        let settings = &self.settings;
        // Other processes (cluster nodes on one host) may write the same file: an exclusive
        // advisory lock on a sidecar file covers the read-modify-rename, so no rewrite is based
        // on a file another process is replacing.
        let process_lock = lock_across_processes(&settings.csv_file)?;
        let journal = tail::read_from(&process_lock);
        if let Some(results) = self.try_append(ops, &process_lock, journal)? {
            return Ok(results);
        }
        let mut open = read::open(settings)?;
        let header = Arc::new(match &open {
            Some(o) => o.header.clone(),
            None => synthesize_header(settings, ops),
        });
        let uid_col = header
            .iter()
            .position(|c| c == settings.header_uid)
            .ok_or_else(|| {
                ConnectorError::Config(format!(
                    "{}: the header has no uid column {:?}",
                    settings.csv_file.display(),
                    settings.header_uid
                ))
            })?;
        let mut by_id: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, op) in ops.iter().enumerate() {
            by_id.entry(op.id()).or_default().push(i);
        }
        let mut results: Vec<Option<WriteResult>> = ops.iter().map(|_| None).collect();
        let mut changed = false;

        let tmp_path = temp_path(&settings.csv_file);
        let tmp = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp_path)
            .map_err(|e| ConnectorError::Unavailable(format!("{}: {e}", tmp_path.display())))?;
        let cleanup = TempGuard(Some(tmp_path.clone()));
        // The rewritten file replaces the old one: it keeps its mode (a 0600 file of personal
        // data must not come back readable by everyone).
        if let Ok(m) = std::fs::metadata(&settings.csv_file) {
            tmp.set_permissions(m.permissions())
                .map_err(|e| ConnectorError::Unavailable(format!("{}: {e}", tmp_path.display())))?;
        }
        let mut writer = settings
            .writer_builder()
            .from_writer(BufWriter::with_capacity(1 << 16, tmp));
        let werr = |e: csv::Error| ConnectorError::Unavailable(format!("writing CSV: {e}"));
        writer.write_record(header.iter()).map_err(werr)?;
        let mut rows = 0u64;
        let mut ids: HashSet<u64> = HashSet::new();

        if let Some(open) = open.as_mut() {
            let mut record = StringRecord::new();
            loop {
                match open.reader.read_record(&mut record) {
                    Ok(false) => break,
                    Ok(true) => {}
                    Err(e) => return Err(read_error(settings, &e)),
                }
                let id = record.get(uid_col).unwrap_or("");
                match by_id.remove(id) {
                    None => {
                        writer.write_record(&record).map_err(werr)?;
                        ids.insert(id_hash(id.as_bytes()));
                        rows += 1;
                    }
                    Some(indexes) => {
                        let mut state = Some(record.clone());
                        for i in indexes {
                            results[i] = Some(apply_one(ops[i], &mut state, &header, uid_col));
                        }
                        changed = true;
                        if let Some(row) = state {
                            writer.write_record(&row).map_err(werr)?;
                            ids.insert(id_hash(row.get(uid_col).unwrap_or("").as_bytes()));
                            rows += 1;
                        }
                    }
                }
            }
        }
        // Ids not in the file: in the order their first write was queued.
        for (i, op) in ops.iter().enumerate() {
            if results[i].is_some() {
                continue;
            }
            let Some(indexes) = by_id.remove(op.id()) else {
                continue;
            };
            let mut state = None;
            for j in indexes {
                results[j] = Some(apply_one(ops[j], &mut state, &header, uid_col));
            }
            if let Some(row) = state {
                changed = true;
                writer.write_record(&row).map_err(werr)?;
                ids.insert(id_hash(row.get(uid_col).unwrap_or("").as_bytes()));
                rows += 1;
            }
        }
        let results: Vec<WriteResult> = results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(ConnectorError::Internal("write not applied".into()))))
            .collect();
        if !changed || results.iter().all(Result::is_err) {
            return Ok(results);
        }

        let file = writer
            .into_inner()
            .map_err(|e| ConnectorError::Unavailable(format!("writing CSV: {e}")))?
            .into_inner()
            .map_err(|e| ConnectorError::Unavailable(format!("writing CSV: {}", e.error())))?;
        let io = |e: std::io::Error| ConnectorError::Unavailable(format!("writing CSV: {e}"));
        file.sync_all().map_err(io)?;
        drop(file);
        // The file that replaces this one may get its inode back: end append mode first.
        if journal.is_some() {
            tail::write(&process_lock, None).map_err(io)?;
        }
        std::fs::rename(&tmp_path, &settings.csv_file).map_err(io)?;
        cleanup.disarm();
        if let Some(dir) = settings.csv_file.parent() {
            sync_dir(dir).map_err(io)?;
        }
        if let Ok(m) = std::fs::metadata(&settings.csv_file) {
            *lock(&self.count_cache) = Some((m.len(), m.modified().ok(), rows));
            *lock(&self.ids) = Some(IdSet {
                stamp: Stamp::of(&m),
                header: Arc::clone(&header),
                uid_col,
                ids,
            });
        }
        Ok(results)
    }

    /// Applies a batch by appending its rows, when it only adds rows of ids not in the file, the
    /// file ends with a line break and no value holds one. `None`: rewrite instead.
    fn try_append(
        &self,
        ops: &[&WriteOp],
        process_lock: &File,
        journal: Option<Journal>,
    ) -> ConnectorResult<Option<Vec<WriteResult>>> {
        let settings = &self.settings;
        if ops.iter().any(|op| op.has_line_break()) {
            return Ok(None);
        }
        let io = |e: std::io::Error| {
            ConnectorError::Unavailable(format!("{}: {e}", settings.csv_file.display()))
        };
        let mut file = match OpenOptions::new()
            .read(true)
            .append(true)
            .open(&settings.csv_file)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
        };
        let meta = file.metadata().map_err(io)?;
        let len = meta.len();
        if len == 0 {
            return Ok(None);
        }
        let mut last = [0u8; 1];
        file.read_exact_at(&mut last, len - 1).map_err(io)?;
        if !tail::is_line_break(last[0]) {
            // A hand-written last line without a line break, or a torn append: rewrite.
            return Ok(None);
        }
        let stamp = Stamp::of(&meta);
        let mut cache = lock(&self.ids);
        if cache.as_ref().is_none_or(|c| c.stamp != stamp) {
            *cache = self.scan_ids(stamp)?;
        }
        let Some(known) = cache.as_mut() else {
            return Ok(None);
        };
        if ops
            .iter()
            .any(|op| known.ids.contains(&id_hash(op.id().as_bytes())))
        {
            return Ok(None);
        }

        // Every id is new: apply the ops in queue order per id, as the rewrite does for ids not
        // in the file.
        let header = Arc::clone(&known.header);
        let mut by_id: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut order: Vec<&str> = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            let e = by_id.entry(op.id()).or_default();
            if e.is_empty() {
                order.push(op.id());
            }
            e.push(i);
        }
        let mut results: Vec<Option<WriteResult>> = ops.iter().map(|_| None).collect();
        let mut new_rows: Vec<StringRecord> = Vec::new();
        for id in order {
            let mut state = None;
            for &i in &by_id[id] {
                results[i] = Some(apply_one(ops[i], &mut state, &header, known.uid_col));
            }
            new_rows.extend(state);
        }
        let results: Vec<WriteResult> = results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(ConnectorError::Internal("write not applied".into()))))
            .collect();
        if new_rows.is_empty() {
            return Ok(Some(results));
        }

        let mut writer = settings.writer_builder().from_writer(Vec::new());
        let werr = |e: csv::Error| ConnectorError::Unavailable(format!("writing CSV: {e}"));
        for row in &new_rows {
            writer.write_record(row).map_err(werr)?;
        }
        let bytes = writer
            .into_inner()
            .map_err(|e| ConnectorError::Unavailable(format!("writing CSV: {}", e.error())))?;
        if journal.is_none_or(|j| !j.covers(&meta)) {
            tail::write(process_lock, Some(&Journal::for_file(&meta, len))).map_err(io)?;
        }
        file.write_all(&bytes).map_err(io)?;
        file.sync_data().map_err(io)?;

        let after = file.metadata().map_err(io)?;
        known.stamp = Stamp::of(&after);
        for row in &new_rows {
            known
                .ids
                .insert(id_hash(row.get(known.uid_col).unwrap_or("").as_bytes()));
        }
        let mut count = lock(&self.count_cache);
        if let Some((clen, cmtime, n)) = *count
            && clen == len
            && cmtime == meta.modified().ok()
        {
            *count = Some((
                after.len(),
                after.modified().ok(),
                n + new_rows.len() as u64,
            ));
        }
        Ok(Some(results))
    }

    /// Reads the ids of the file (one pass over the uid column). `None` when the file is gone or
    /// has no uid column (the rewrite reports that).
    fn scan_ids(&self, stamp: Stamp) -> ConnectorResult<Option<IdSet>> {
        let settings = &self.settings;
        let Some(mut open) = read::open(settings)? else {
            return Ok(None);
        };
        let Some(uid_col) = open.header.iter().position(|c| c == settings.header_uid) else {
            return Ok(None);
        };
        let mut ids = HashSet::new();
        let mut record = csv::ByteRecord::new();
        loop {
            match open.reader.read_byte_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {
                    ids.insert(id_hash(record.get(uid_col).unwrap_or(b"")));
                }
                Err(e) => return Err(read_error(settings, &e)),
            }
        }
        Ok(Some(IdSet {
            stamp,
            header: Arc::new(open.header),
            uid_col,
            ids,
        }))
    }
}

/// The header of a file created by its first write: the uid column, then the columns of the
/// first create in the batch.
fn synthesize_header(settings: &CsvSettings, ops: &[&WriteOp]) -> StringRecord {
    let mut cols = vec![settings.header_uid.clone()];
    if let Some(WriteOp::Create { column_order, .. }) =
        ops.iter().find(|o| matches!(o, WriteOp::Create { .. }))
    {
        for c in column_order {
            if !cols.contains(c) {
                cols.push(c.clone());
            }
        }
    }
    StringRecord::from(cols)
}

fn apply_one(
    op: &WriteOp,
    state: &mut Option<StringRecord>,
    header: &Arc<StringRecord>,
    uid_col: usize,
) -> WriteResult {
    let set_fields = |row: &mut Vec<String>, fields: &Fields| -> ConnectorResult<()> {
        for (col, value) in fields {
            match header.iter().position(|c| c == col) {
                Some(i) if i == uid_col => {}
                Some(i) => row[i] = value.clone().unwrap_or_default(),
                None if value.is_none() => {}
                None => {
                    return Err(ConnectorError::InvalidData(format!(
                        "the CSV file has no column {col:?}"
                    )));
                }
            }
        }
        Ok(())
    };
    match op {
        WriteOp::Create { id, fields, .. } => {
            if state.is_some() {
                return Err(ConnectorError::AlreadyExists(id.clone()));
            }
            let mut row = vec![String::new(); header.len()];
            row[uid_col] = id.clone();
            set_fields(&mut row, fields)?;
            let row = StringRecord::from(row);
            *state = Some(row.clone());
            Ok((Arc::clone(header), row))
        }
        WriteOp::Update {
            id,
            fields,
            clear_unlisted,
        } => {
            let Some(old) = state.as_ref() else {
                return Err(ConnectorError::NotFound(id.clone()));
            };
            let mut row: Vec<String> = old.iter().map(str::to_owned).collect();
            row.resize(header.len(), String::new());
            if *clear_unlisted {
                for (i, cell) in row.iter_mut().enumerate() {
                    if i != uid_col {
                        cell.clear();
                    }
                }
            }
            set_fields(&mut row, fields)?;
            let row = StringRecord::from(row);
            *state = Some(row.clone());
            Ok((Arc::clone(header), row))
        }
        WriteOp::Delete { id } => match state.take() {
            Some(old) => Ok((Arc::clone(header), old)),
            None => Err(ConnectorError::NotFound(id.clone())),
        },
    }
}

fn temp_path(file: &Path) -> PathBuf {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    file.with_file_name(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()))
}

/// Makes the rename durable: the directory entry must reach the disk too.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    File::open(dir)?.sync_all()
}

/// Removes the temporary file unless the rename consumed it.
struct TempGuard(Option<PathBuf>);

impl TempGuard {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Holds an exclusive `flock` on `<file>.lock` until dropped.
fn lock_across_processes(csv_file: &Path) -> ConnectorResult<File> {
    let path = tail::lock_path(csv_file);
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| ConnectorError::Unavailable(format!("{}: {e}", path.display())))?;
    f.lock()
        .map_err(|e| ConnectorError::Unavailable(format!("locking {}: {e}", path.display())))?;
    Ok(f)
}
