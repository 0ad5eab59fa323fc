//! Failpoints for fault-injection tests (the `fail` crate). A failpoint names a place where a
//! crash or a database error would leave the most damage: between two commits, or between an
//! external write and the commit that records it. Tests configure one with
//! `fail::cfg(name, "return")` and assert that the system recovers.
//!
//! Compiled in only with this crate's `failpoints` feature (its own tests and `--all-features`
//! builds); without it [`failpoint!`] expands to nothing. Compiled in but not configured, a
//! failpoint is one read of the `fail` crate's registry and changes nothing.
//!
//! The failpoints (see docs/ARCHITECTURE.md, "where state is committed"):
//! - `recon.page.before_commit` / `recon.page.after_commit`: a source page's or target chunk's
//!   commit (`recon/jobs/mod.rs`).
//! - `recon.finish.before_end`: a finish job about to commit the run's end.
//! - `worker.lease.renew`: one lease renewal attempt fails (`worker.rs`).
//! - `queue.event.before_delete`: a queued-sync batch has written its targets but not yet
//!   committed its links, audit and the deletion of its events (`sync/batch.rs`).
//! - `queue.deadletter.before_commit`: a dead letter about to be committed (`sync/queue.rs`).
//! - `recon.source.unavailable`: a source page's query finds the repository or system
//!   unreachable — a transient error, retried (`recon/jobs/source.rs`, `recon/jobs/mod.rs`).
//! - `recon.object.unavailable`: one source object's write finds its system unreachable — its
//!   chunk is not committed but runs again (`pipeline/object.rs`, `recon/jobs/mod.rs`).

/// Returns `Err(EngineError::Internal)` from the enclosing function when the failpoint `$name`
/// is configured to `return` (a database error or a crash at that point, as far as the
/// repository is concerned).
#[macro_export]
#[doc(hidden)]
macro_rules! failpoint {
    ($name:literal) => {
        ::fail::fail_point!($name, |_| {
            Err($crate::error::EngineError::Internal(format!("failpoint {} fired", $name)).into())
        })
    };
}

/// Like [`failpoint!`], but the error is a transient one: the repository unreachable.
#[macro_export]
#[doc(hidden)]
macro_rules! failpoint_unavailable {
    ($name:literal) => {
        ::fail::fail_point!($name, |_| {
            Err(
                $crate::error::EngineError::Repo(::idsync_repo::RepoError::Unavailable(format!(
                    "failpoint {} fired",
                    $name
                )))
                .into(),
            )
        })
    };
}
