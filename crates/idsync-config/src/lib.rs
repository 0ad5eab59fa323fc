//! Project loading: parse → validate → typed [`Project`]. Owns reading the project folder
//! (`conf/`, script files), `&{NAME}` substitution and every config validation rule, collecting
//! every error with its file and JSON pointer. It must not run scripts (they stay data here), open
//! connections, or depend on the JS engine.

mod access;
mod auth;
pub mod builtin;
mod connector;
mod crossref;
mod cx;
mod defaults;
pub mod diag;
mod error;
mod load;
mod managed;
mod mapping;
mod schedule;
mod script;
mod settings;
mod subst;
pub mod types;

pub use connector::{MASK, is_secret_key, mask_secrets};
pub use diag::{Diagnostic, Diagnostics};
pub use error::ConfigError;
pub use load::{load_project, load_project_from_env, recognised_keys};
pub use script::{ScriptFileError, read_module, read_script_file};
pub use settings::env_var_for;
pub use types::*;

/// A successfully loaded project and the warnings found on the way.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub project: Project,
    pub warnings: Vec<Diagnostic>,
}
