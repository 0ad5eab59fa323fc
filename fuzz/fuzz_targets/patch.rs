//! Fuzzes the PATCH engine (`idsync_api::patch::apply_patch`) with the limits a server applies
//! after it (`idsync_api::limits::check_object`). The input is a JSON object, a newline and a
//! JSON patch document; an input whose first part is not JSON patches a fixed user instead.
//! Checked: no panic; every refusal is a 400 (`transform`, which needs scripts, a 501); the object never grows past the size limit on
//! the way; `_id` and `_rev` are never changed; and an object the limits accept serialises to
//! text that parses back to the same value (a stored object can always be read again).

#![no_main]

use idsync_api::ApiError;
use idsync_api::state::Limits;
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

const MAX_BYTES: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (first, second) = text.split_once('\n').unwrap_or(("", text));
    let mut object = match serde_json::from_str::<Value>(first) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({"userName": "bjensen", "mail": ["a@x", "b@x"], "d": {"n": 1, "s": "x"}}),
    };
    object["_id"] = json!("bjensen");
    object["_rev"] = json!("3");
    let Ok(patch) = serde_json::from_str::<Value>(second) else {
        return;
    };
    let limits = Limits {
        max_object_bytes: MAX_BYTES,
        ..Limits::default()
    };
    let start_size = idsync_api::limits::json_size(&object, usize::MAX);
    let mut again = object.clone();
    let outcome = idsync_api::patch::apply_patch(&mut object, &patch, MAX_BYTES);
    let outcome_again = idsync_api::patch::apply_patch(&mut again, &patch, MAX_BYTES);
    assert_eq!(outcome.is_ok(), outcome_again.is_ok(), "not deterministic");
    match outcome {
        // `transform` needs the script engine: refused as not supported.
        Err(ApiError::BadRequest(_) | ApiError::NotSupported(_)) => return,
        Err(e) => panic!("a patch answered other than 400 or 501: {e:?}"),
        Ok(()) => {}
    }
    assert_eq!(object, again, "not deterministic");
    let size = idsync_api::limits::json_size(&object, usize::MAX);
    assert!(
        size <= MAX_BYTES.max(start_size),
        "a patch grew the object to {size} bytes past the limit of {MAX_BYTES}"
    );
    assert_eq!(object["_id"], "bjensen");
    assert_eq!(object["_rev"], "3");
    if idsync_api::limits::check_object(&object, &limits).is_ok() {
        let text = object.to_string();
        let back: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("an accepted object does not parse back: {e}"));
        assert_eq!(back, object);
    }
});
