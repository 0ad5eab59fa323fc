//! The mapping-*.json form: names from the file when absent, order from `syncAfter`.

use crate::{fixture, lines, load_with};
use idsync_config::LinksRef;

#[test]
fn mapping_files_are_ordered_by_sync_after() {
    let loaded = match load_with(&fixture("split"), &[]) {
        Ok(l) => l,
        Err(d) => panic!("{d}"),
    };
    assert!(loaded.warnings.is_empty(), "{:?}", lines(&loaded.warnings));
    let p = loaded.project;
    let names: Vec<&str> = p.mappings.iter().map(|m| m.name.as_str()).collect();
    // File order is alpha, mid, zeta; alpha must wait for zeta.
    assert_eq!(names, ["mid", "zeta", "alpha"]);
    let alpha = p.mapping("alpha").unwrap();
    assert_eq!(
        alpha.links,
        Some(LinksRef {
            mapping: "zeta".into(),
            reversed: true
        })
    );
    assert_eq!(alpha.sync_after, ["zeta"]);
    let mid = p.mapping("mid").unwrap();
    assert_eq!(
        mid.links,
        Some(LinksRef {
            mapping: "zeta".into(),
            reversed: false
        })
    );
    assert!(!mid.enable_sync);
}
