//! Integration tests of project loading against the fixture projects in `tests/fixtures/`.
#![allow(clippy::unwrap_used)] // tests may unwrap (PREAMBLE), helpers included

mod full;
mod invalid;
mod reference;
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

mod samples {
    //! The shipped sample projects must always load: they are what a new user runs first.
    use crate::{lines, load_with};
    use std::path::Path;

    fn sample(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../samples")
            .join(name)
    }

    #[test]
    fn getting_started_loads() {
        let loaded = load_with(&sample("getting-started"), &[]).unwrap_or_else(|d| panic!("{d}"));
        assert!(loaded.warnings.is_empty(), "{:?}", lines(&loaded.warnings));
        let m = loaded
            .project
            .mapping("HumanResources_Engineering")
            .unwrap();
        assert_eq!(m.properties.len(), 6);
        assert_eq!(m.policies.len(), 8);
        let hr = loaded.project.connector("hr").unwrap();
        let dir = loaded.project.dir.display().to_string();
        assert_eq!(
            hr.configuration_properties["csvFile"],
            serde_json::json!(format!("{dir}/data/hr.csv"))
        );
    }

    #[test]
    fn hr_to_managed_loads() {
        let loaded = load_with(&sample("hr-to-managed"), &[]).unwrap_or_else(|d| panic!("{d}"));
        assert!(loaded.warnings.is_empty(), "{:?}", lines(&loaded.warnings));
        assert!(!loaded.project.mappings.is_empty());
        assert_eq!(
            loaded.project.managed_type("user").unwrap().indexed,
            ["userName", "mail"]
        );
    }
}
