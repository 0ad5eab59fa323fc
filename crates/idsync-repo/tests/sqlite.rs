//! The conformance suite on the SQLite backend: each case gets its own temporary directory
//! (removed when the case ends) and each `fresh()` a new database file in it.

use idsync_repo::Repository;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Sqlite {
    dir: tempfile::TempDir,
    n: AtomicUsize,
}

impl Sqlite {
    fn new() -> Self {
        Sqlite {
            dir: tempfile::tempdir().expect("temporary directory"),
            n: AtomicUsize::new(0),
        }
    }
}

#[async_trait::async_trait]
impl idsync_repo::testsuite::Backend for Sqlite {
    async fn fresh(&self) -> (Arc<dyn Repository>, String) {
        let n = self.n.fetch_add(1, Ordering::SeqCst);
        // A nested path: open() must create the parent directories.
        let url = format!(
            "sqlite://{}/db{n}/nested/idsync.db",
            self.dir.path().display()
        );
        (
            idsync_repo::open(&url)
                .await
                .expect("open sqlite repository"),
            url,
        )
    }
}

idsync_repo::conformance_suite!(Sqlite::new());
