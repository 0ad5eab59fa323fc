//! Integration tests of project loading against the fixture projects in `tests/fixtures/`.
#![allow(clippy::unwrap_used)] // tests may unwrap (PREAMBLE), helpers included

mod full;
mod invalid;
mod split;
mod temp;

use idsync_config::{Diagnostics, Loaded, load_project};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Loads a fixture with exactly the given environment.
pub fn load_with(dir: &Path, env: &[(&str, &str)]) -> Result<Loaded, Diagnostics> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    load_project(dir, &|n| env.get(n).cloned())
}

pub fn lines(d: &[idsync_config::Diagnostic]) -> Vec<String> {
    d.iter().map(ToString::to_string).collect()
}
