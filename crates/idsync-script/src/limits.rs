//! Resource limits of script evaluation: the per-call time budget, and the memory and stack
//! limits of each thread's JavaScript runtime. Owns the process-wide defaults only.

use std::sync::RwLock;
use std::time::Duration;

/// Limits applied to script evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScriptLimits {
    /// Wall-clock budget of one call; an endless loop is interrupted when it is spent.
    pub timeout: Duration,
    /// Heap limit of each thread's runtime, in bytes (all scripts of that thread share it).
    pub memory_limit: usize,
    /// JavaScript stack limit in bytes. It must stay well below the smallest stack of a thread
    /// that evaluates scripts (tokio workers have 2 MiB), so deep recursion is an error, not a
    /// crash.
    pub max_stack_size: usize,
}

impl Default for ScriptLimits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            memory_limit: 256 * 1024 * 1024,
            max_stack_size: 512 * 1024,
        }
    }
}

static LIMITS: RwLock<Option<ScriptLimits>> = RwLock::new(None);

/// Sets the process-wide limits. The time budget applies to scripts compiled afterwards; memory
/// and stack limits apply to runtimes created afterwards, so call this at startup, before the
/// first script is compiled.
pub fn set_default_limits(limits: ScriptLimits) {
    let mut slot = LIMITS
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    *slot = Some(limits);
}

/// The current process-wide limits.
pub fn default_limits() -> ScriptLimits {
    let slot = LIMITS
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    slot.unwrap_or_default()
}
