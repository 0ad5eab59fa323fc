//! Project loading: parse → validate → typed [`Project`]. Owns reading the project folder
//! (`conf/`, `script/`), `&{NAME}` substitution and every config validation rule. It must not run
//! scripts (they stay data here), open connections, or depend on the JS engine.

pub mod diag;
pub mod types;

pub use diag::{Diagnostic, Diagnostics};
pub use types::*;

/// A successfully loaded project and the warnings found on the way.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub project: Project,
    pub warnings: Vec<Diagnostic>,
}
