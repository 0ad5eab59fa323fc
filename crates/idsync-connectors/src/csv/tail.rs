//! Append mode: how rows appended to the end of a CSV file stay crash-safe and are never read
//! half-written.
//!
//! A batch of creates of new ids is appended with one `write` and one `fdatasync` instead of a
//! rewrite of the whole file (see `write`). A crash or a concurrent reader may then meet the end
//! of a batch not yet (or never) fully written. Such a tail is recognised thanks to a note, the
//! *journal*, kept in the sidecar `<file>.lock`: "this file (device, inode, birth time) has
//! been appended to by idsync from byte `mark` on". It is written, and made durable, before the
//! first append to a file, and cleared (durably) before a rewrite replaces the file.
//!
//! In the appended region idsync writes no field that holds a line break (such a batch is
//! rewritten instead), so there every line break ends a row: a reader stops after the last line
//! break of the file, and an unterminated tail after `mark` is the torn end of a batch whose
//! callers got no answer. Reads ignore it, and the next write, finding the file not ending with a
//! line break, rewrites it from its complete rows only, which removes the torn tail. Files idsync
//! has not appended to (no journal for them) are read to their end as before, so a file written
//! by hand whose last line has no line break keeps that line.
//!
//! Decision and alternatives: docs/adr/0005-connector-write-coalescing.md.

use std::fs::{File, Metadata};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

const MAGIC: &str = "idsync-csv-append-v1";
/// The journal is always written as one line of this length, in place, so a reader racing
/// with a writer sees the old or the new line (or an unparseable one, taken for none).
const LINE_LEN: usize = 128;

/// Which file is in append mode, and from where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Journal {
    pub dev: u64,
    pub ino: u64,
    pub born: u64,
    pub mark: u64,
}

/// The identity of a file: device, inode and birth time (0 where the file system keeps none).
pub(crate) fn identity(meta: &Metadata) -> (u64, u64, u64) {
    let born = meta
        .created()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    (meta.dev(), meta.ino(), born)
}

impl Journal {
    pub fn for_file(meta: &Metadata, mark: u64) -> Journal {
        let (dev, ino, born) = identity(meta);
        Journal {
            dev,
            ino,
            born,
            mark,
        }
    }

    /// Whether this journal describes the file `meta` belongs to.
    pub fn covers(&self, meta: &Metadata) -> bool {
        identity(meta) == (self.dev, self.ino, self.born) && meta.len() >= self.mark
    }
}

/// The sidecar that holds the cross-process lock and the journal.
pub(crate) fn lock_path(csv_file: &Path) -> PathBuf {
    let mut name = csv_file.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

fn parse(bytes: &[u8]) -> Option<Journal> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut words = text.split_whitespace();
    if words.next()? != MAGIC {
        return None;
    }
    let mut num = || words.next()?.parse::<u64>().ok();
    Some(Journal {
        dev: num()?,
        ino: num()?,
        born: num()?,
        mark: num()?,
    })
}

/// Reads the journal from the open sidecar.
pub(crate) fn read_from(lock_file: &File) -> Option<Journal> {
    let mut buf = [0u8; LINE_LEN];
    let n = lock_file.read_at(&mut buf, 0).ok()?;
    parse(&buf[..n])
}

/// Reads the journal of a CSV file (none when the sidecar is missing or holds none).
pub(crate) fn read_for(csv_file: &Path) -> Option<Journal> {
    let f = File::open(lock_path(csv_file)).ok()?;
    read_from(&f)
}

/// Writes (or clears, with `None`) the journal in place and makes it durable.
pub(crate) fn write(lock_file: &File, journal: Option<&Journal>) -> std::io::Result<()> {
    let mut line = match journal {
        Some(j) => format!("{MAGIC} {} {} {} {}", j.dev, j.ino, j.born, j.mark),
        None => "none".to_owned(),
    };
    line.truncate(LINE_LEN - 1);
    while line.len() < LINE_LEN - 1 {
        line.push(' ');
    }
    line.push('\n');
    lock_file.write_all_at(line.as_bytes(), 0)?;
    lock_file.sync_data()
}

pub(crate) fn is_line_break(b: u8) -> bool {
    b == b'\n' || b == b'\r'
}

/// How much of the file holds complete rows: its length, unless the journal covers it and its
/// end is a torn (or still being written) batch; then the end of the last complete row.
pub(crate) fn complete_len(
    file: &File,
    meta: &Metadata,
    journal: Option<&Journal>,
) -> std::io::Result<u64> {
    let len = meta.len();
    let Some(j) = journal.filter(|j| j.covers(meta)) else {
        return Ok(len);
    };
    let mut end = len;
    let mut buf = vec![0u8; 64 * 1024];
    while end > j.mark {
        let start = end.saturating_sub(buf.len() as u64).max(j.mark);
        let chunk = &mut buf[..usize::try_from(end - start).unwrap_or(0)];
        file.read_exact_at(chunk, start)?;
        if let Some(i) = chunk.iter().rposition(|b| is_line_break(*b)) {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(j.mark)
}

/// A file read only up to a limit (its complete rows), seekable within it.
pub(crate) struct Bounded {
    file: File,
    limit: u64,
    pos: u64,
}

impl Bounded {
    pub fn new(file: File, limit: u64) -> Self {
        Bounded {
            file,
            limit,
            pos: 0,
        }
    }
}

impl Read for Bounded {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.limit.saturating_sub(self.pos);
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Bounded {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.limit.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let target = target.ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek out of range")
        })?;
        self.pos = target;
        Ok(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journal_round_trips_and_garbage_is_none() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("x.lock");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read_from(&f), None, "an empty sidecar holds no journal");
        let j = Journal {
            dev: 1,
            ino: 2,
            born: 3,
            mark: 4,
        };
        write(&f, Some(&j)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read_from(&f), Some(j));
        write(&f, None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read_from(&f), None);
        assert_eq!(parse(b"idsync-csv-append-v1 1 2"), None);
    }
}
