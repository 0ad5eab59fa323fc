//! idsync-script: embedded JavaScript (QuickJS through rquickjs) for mapping scripts —
//! transforms, conditions, validSource/validTarget, correlation and action scripts, hooks.
//!
//! It owns compiling a script's text once (syntax errors at load, naming the script's origin),
//! and evaluating it from any thread with the call's variables bound, returning JSON. It must
//! not read configuration or files (callers pass text and a [`ScriptOrigin`]) and must not depend
//! on idsync-config: the engine turns config's script specs into [`Script`]s through this API.
//!
//! ```
//! use idsync_script::{Bindings, Script, ScriptOrigin};
//! let script = Script::compile(
//!     "source.givenName + ' ' + source.sn",
//!     ScriptOrigin::inline("mapping hr_user property /cn transform"),
//!     Default::default(),
//! )?;
//! let source = serde_json::json!({"givenName": "Ada", "sn": "Lovelace"});
//! assert_eq!(script.eval(&Bindings::new().with("source", &source))?, "Ada Lovelace");
//! # Ok::<(), idsync_script::ScriptError>(())
//! ```
//!
//! Threading: each OS thread that evaluates scripts gets its own QuickJS runtime (QuickJS is not
//! `Send`); a `Script` is `Send + Sync` data compiled lazily per thread and cached there. A call
//! blocks its thread for at most the script's time budget.

mod api;
mod bindings;
mod console;
mod convert;
mod engine;
mod error;
mod failure;
pub mod host;
mod limits;
mod names;
mod origin;
mod script;
mod usage;

pub use bindings::Bindings;
pub use error::ScriptError;
pub use host::{HostError, HostMethod, HostRequest, HostSlot, ModuleSource, ScriptHost};
pub use limits::{ScriptLimits, default_limits, set_default_limits};
pub use origin::ScriptOrigin;
pub use script::Script;
