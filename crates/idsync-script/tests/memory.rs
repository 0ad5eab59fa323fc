//! The memory limit: a script that allocates without end fails with an error instead of taking
//! the process down. Its own test binary, because limits are process-wide.

use std::time::Duration;

use idsync_script::{
    Bindings, Script, ScriptError, ScriptLimits, ScriptOrigin, set_default_limits,
};
use serde_json::{Map, json};

#[test]
fn exhausting_memory_is_a_script_error_and_the_thread_recovers() {
    set_default_limits(ScriptLimits {
        memory_limit: 16 * 1024 * 1024,
        ..ScriptLimits::default()
    });
    // A fresh thread, so its runtime is created with the limit above.
    std::thread::spawn(|| {
        let origin = ScriptOrigin::inline("mapping big onCreate");
        for text in [
            "var parts = []; while (true) { parts.push('item number ' + parts.length); }",
            "var big = new Array(64 * 1024 * 1024).fill(1); big.length",
            "var s = 'x'; while (true) { s = s + s; }",
        ] {
            let script = Script::compile(text, origin.clone(), Map::new())
                .unwrap()
                .with_timeout(Duration::from_secs(60));
            let error = script.eval(&Bindings::new()).unwrap_err();
            let message = error.to_string();
            assert!(
                !matches!(error, ScriptError::Timeout { .. }),
                "{text}: {message}"
            );
            assert!(message.starts_with("mapping big onCreate"), "{message}");
            assert!(
                message.contains("memory") || message.contains("string too long"),
                "{text}: {message}"
            );
        }
        let after = Script::compile("[1, 2, 3].length", origin, Map::new()).unwrap();
        assert_eq!(after.eval(&Bindings::new()).unwrap(), json!(3));
    })
    .join()
    .unwrap();
}
