//! Sample projects run in a working copy (docs/getting-started.md).
//!
//! A sample shipped in a checkout (`"sample": true` in its `conf/idsync.json`) would otherwise be
//! rewritten by its own run (a CSV target is a tracked file), leaving the checkout modified and
//! the next run starting from different data. Commands therefore run a sample in
//! `<sample>/.idsync/work/`, a git-ignored copy: made on the first run, and refreshed file by
//! file from the sample whenever a sample file is newer than its copy, so a user's edit of the
//! sample reaches the next run while what the runs wrote is kept.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// The state folder of a project; never copied into a working copy.
const STATE_DIR: &str = ".idsync";

/// Where the working copy of the sample in `dir` lives.
pub fn working_copy_of(dir: &Path) -> PathBuf {
    dir.join(STATE_DIR).join("work")
}

/// Makes or refreshes the working copy of the sample in `dir` and returns its path.
pub fn refresh_working_copy(dir: &Path) -> Result<PathBuf> {
    let work = working_copy_of(dir);
    copy_newer(dir, &work)
        .with_context(|| format!("making the working copy {} of the sample", work.display()))?;
    Ok(work)
}

/// Copies each file of `from` (but the state folder) to `to` when the copy is missing or older.
fn copy_newer(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_name() == STATE_DIR {
            continue;
        }
        let dest = to.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_newer(&entry.path(), &dest)?;
        } else if kind.is_file() && is_newer(&entry.path(), &dest)? {
            std::fs::copy(entry.path(), &dest)?;
        }
    }
    Ok(())
}

/// Whether `src` was modified after `dest` (or `dest` does not exist). A fresh copy gets the
/// time of the copy, so it counts as newer than its source until the source is edited again.
fn is_newer(src: &Path, dest: &Path) -> std::io::Result<bool> {
    match std::fs::metadata(dest) {
        Ok(d) => Ok(std::fs::metadata(src)?.modified()? > d.modified()?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_keeps_what_runs_wrote_and_takes_what_the_user_edited() {
        let sample = tempfile::tempdir().unwrap();
        let s = sample.path();
        std::fs::create_dir_all(s.join("data")).unwrap();
        std::fs::create_dir_all(s.join(".idsync")).unwrap();
        std::fs::write(s.join("data/target.csv"), "original").unwrap();
        std::fs::write(s.join("data/source.csv"), "v1").unwrap();
        std::fs::write(s.join(".idsync/repo.db"), "state").unwrap();

        let work = refresh_working_copy(s).unwrap();
        assert_eq!(work, s.join(".idsync/work"));
        assert!(
            !work.join(".idsync/repo.db").exists(),
            "state is not copied"
        );
        assert_eq!(
            std::fs::read_to_string(work.join("data/target.csv")).unwrap(),
            "original"
        );

        // A run rewrites the target in the copy; the user edits the sample's source.
        std::fs::write(work.join("data/target.csv"), "reconciled").unwrap();
        std::fs::write(s.join("data/source.csv"), "v2").unwrap();
        // File times are coarser than a test's pace; a user's edit comes seconds later.
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
        let f = std::fs::File::options()
            .write(true)
            .open(s.join("data/source.csv"))
            .unwrap();
        f.set_modified(later).unwrap();

        refresh_working_copy(s).unwrap();
        assert_eq!(
            std::fs::read_to_string(work.join("data/target.csv")).unwrap(),
            "reconciled"
        );
        assert_eq!(
            std::fs::read_to_string(work.join("data/source.csv")).unwrap(),
            "v2"
        );
        assert_eq!(
            std::fs::read_to_string(s.join("data/target.csv")).unwrap(),
            "original"
        );
    }
}
