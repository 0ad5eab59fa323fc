//! Fuzzes the CREST filter parser: it must never panic, and whatever it accepts must print to a
//! string that parses back to the same AST (and prints identically). Evaluation of accepted
//! filters runs too, so the evaluator sees the same odd shapes.

#![no_main]

use idsync_core::filter::parse;
use libfuzzer_sys::fuzz_target;
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(filter) = parse(text) else {
        return;
    };
    let printed = filter.to_string();
    let reparsed = match parse(&printed) {
        Ok(f) => f,
        Err(e) => panic!("{text:?} printed as {printed:?}, which does not parse: {e}"),
    };
    assert_eq!(reparsed, filter, "{text:?} printed as {printed:?}");
    assert_eq!(reparsed.to_string(), printed);

    let object = json!({
        "a": "Jensen", "b": 5, "c": [1, "x", true, null], "d": {"e": null, "f": 2.5},
        "pr": false, "and": "or"
    });
    let _ = filter.matches(&object);
    let _ = filter.referenced_fields();
    let _ = filter.extended_operators();
});
