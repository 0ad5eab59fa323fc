//! The configuration reference (`docs/configuration.md`) against the loader: it names every key
//! the loader recognises (used, or accepted and ignored with a warning) and no other.
//!
//! The loader reports the keys its readers asked for ([`idsync_config::recognised_keys`]) on the
//! `every-key` fixture, which holds one object of each kind. The reference marks each key table
//! with `<!-- keys: FILE [PREFIX] -->`; the first cell of each row is a key path under PREFIX.

use crate::fixture;
use std::collections::BTreeSet;
use std::path::Path;

/// `FILE PATH` entries of the key tables of a markdown document.
fn documented_keys(markdown: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut scope: Option<(String, String)> = None;
    let mut in_table = false;
    for line in markdown.lines() {
        let line = line.trim();
        if let Some(rest) = line
            .strip_prefix("<!-- keys:")
            .and_then(|r| r.strip_suffix("-->"))
        {
            let mut parts = rest.split_whitespace();
            let file = parts.next().unwrap_or_default().to_string();
            let prefix = parts.next().unwrap_or_default().to_string();
            scope = Some((file, prefix));
            in_table = false;
            continue;
        }
        let Some((file, prefix)) = &scope else {
            continue;
        };
        if !line.starts_with('|') {
            if in_table {
                scope = None;
                in_table = false;
            }
            continue;
        }
        in_table = true;
        let first = line.trim_start_matches('|').split('|').next().unwrap_or("");
        let Some(key) = first
            .trim()
            .strip_prefix('`')
            .and_then(|k| k.strip_suffix('`'))
        else {
            continue; // the header and separator rows
        };
        let sep = if prefix.is_empty() { "" } else { "." };
        out.insert(format!("{file} {prefix}{sep}{key}"));
    }
    out
}

#[test]
fn the_configuration_reference_names_exactly_the_recognised_keys() {
    let recognised = idsync_config::recognised_keys(&fixture("every-key"));
    // The fixture reaches every reader: one key of each kind must be there.
    for probe in [
        "sync.json mappings[].queuedSync.workers",
        "provisioner.openicf-<name>.json objectTypes.<type>.properties.<property>.nativeName",
        "schedule-<name>.json invokeContext.source",
        "idsync.json maxConcurrentJobs",
        "script source",
    ] {
        assert!(
            recognised.contains(probe),
            "{probe} not reported: {recognised:#?}"
        );
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let documented = documented_keys(&text);
    let missing: Vec<_> = recognised.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&recognised).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "docs/configuration.md is out of step with the loader.\n\
         Recognised but not documented: {missing:#?}\n\
         Documented but not recognised: {unknown:#?}"
    );
}

#[test]
fn key_tables_are_read_with_their_file_and_prefix() {
    let md = "<!-- keys: sync.json mappings[] -->\n\
              | Key | Type |\n|---|---|\n| `name` | string |\n| `queuedSync.workers` | int |\n\n\
              | `outside` | a table without a marker |\n\
              <!-- keys: idsync.json -->\n| Key |\n|---|\n| `repo` | x |\n";
    let keys: Vec<String> = documented_keys(md).into_iter().collect();
    assert_eq!(
        keys,
        [
            "idsync.json repo",
            "sync.json mappings[].name",
            "sync.json mappings[].queuedSync.workers"
        ]
    );
}
