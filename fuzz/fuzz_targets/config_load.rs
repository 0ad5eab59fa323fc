//! Fuzzes the project loader (`idsync_config::load_project`): the input is split at NUL bytes
//! into the files of a project (`conf/idsync.json`, `conf/sync.json`, a connector's
//! `conf/provisioner.openicf-hr.json`, `conf/managed.json`, `conf/authentication.json`,
//! `conf/schedule-nightly.json`, `script/s.js`), written to a fresh folder and loaded with a
//! fixed environment. Checked: no panic, the same answer on a second load, and no secret of
//! the input in the masked form of a provisioner.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const FILES: &[&str] = &[
    "conf/idsync.json",
    "conf/sync.json",
    "conf/provisioner.openicf-hr.json",
    "conf/managed.json",
    "conf/authentication.json",
    "conf/schedule-nightly.json",
    "script/s.js",
];

fn env(name: &str) -> Option<String> {
    match name {
        "HR_PASSWORD" => Some("S3cret-env".into()),
        "IDSYNC_PAGE_SIZE" => Some("50".into()),
        _ => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("conf")).expect("conf");
    std::fs::create_dir_all(dir.path().join("script")).expect("script");
    for (part, name) in data.split(|b| *b == 0).zip(FILES) {
        std::fs::write(dir.path().join(name), part).expect("write a project file");
    }
    let first = idsync_config::load_project(dir.path(), &env);
    let second = idsync_config::load_project(dir.path(), &env);
    match (&first, &second) {
        (Ok(a), Ok(b)) => assert_eq!(format!("{:?}", a.project), format!("{:?}", b.project)),
        (Err(a), Err(b)) => assert_eq!(a.errors, b.errors),
        _ => panic!("two loads of one project disagree"),
    }
    // The masker hides every string under a secret key.
    if let Ok(text) = std::str::from_utf8(data.split(|b| *b == 0).nth(2).unwrap_or_default())
        && let Ok(value) = serde_json::from_str::<Value>(text)
    {
        let masked = idsync_core::secrets::mask_secrets(&value);
        check_masked(&masked);
    }
});

/// Members of an object under a secret key that describe a field (a schema property called
/// `password` with its `type`...): the masker leaves them, as `idsync_core::secrets` says.
const SCHEMA_KEYS: &[&str] = &[
    "type",
    "nativeName",
    "nativeType",
    "required",
    "flags",
    "description",
    "title",
    "format",
    "name",
];

/// No value under a key the masker calls secret is left other than the mask.
fn check_masked(v: &Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if idsync_core::secrets::is_secret_key(k) {
                    assert_secretless(x, k);
                } else {
                    check_masked(x);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(check_masked),
        _ => {}
    }
}

fn assert_secretless(v: &Value, key: &str) {
    match v {
        Value::Null => {}
        Value::String(s) => assert_eq!(
            s,
            idsync_core::secrets::MASK,
            "the value of {key:?} is shown"
        ),
        Value::Object(m) => {
            for (k, x) in m {
                if SCHEMA_KEYS.contains(&k.as_str()) {
                    check_masked(x);
                } else {
                    assert_secretless(x, key);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| assert_secretless(x, key)),
        other => panic!("the value of {key:?} is shown: {other}"),
    }
}
