//! The `postRetryAction` script of a failure handler — a provisioner's `syncFailureHandler`
//! (liveSync) or a mapping's `queuedSync` — with IDM's variables: `syncFailure` (what failed),
//! `failureCause` (why), and `failureHandlers`, IDM's built-in handlers a script may hand the
//! failure on to (`failureHandlers.deadLetterQueue.invoke(syncFailure, failureCause)`,
//! `failureHandlers.loggedIgnore.invoke(...)`; docs/configuration.md#syncfailurehandler).
//!
//! A handler's work (writing a dead letter) is the caller's, done after the script returns:
//! the script records which handlers it invoked, and [`run`] answers them in order.

use idsync_config::ScriptSpec;
use idsync_script::{Bindings, HostSlot, Script, ScriptError, ScriptOrigin};
use serde_json::Value;

/// A built-in handler a failure script invoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handed {
    /// `failureHandlers.deadLetterQueue`: store the failure as a dead letter.
    DeadLetterQueue,
    /// `failureHandlers.loggedIgnore`: log it and let it go.
    LoggedIgnore,
}

/// The variable the prelude records invoked handlers in.
const HANDED: &str = "__idsync_handed";

/// Put before the script on its first line, so that the script's line numbers stay its own.
const PRELUDE: &str = "var __idsync_handed = []; var failureHandlers = {\
    deadLetterQueue: {invoke: function () { __idsync_handed.push('deadLetterQueue'); }}, \
    loggedIgnore: {invoke: function () { __idsync_handed.push('loggedIgnore'); }}};";

/// Compiles a failure script of `spec`, `place` naming where it is configured.
pub(crate) fn compile(
    spec: &ScriptSpec,
    place: String,
    host: &HostSlot,
) -> Result<Script, ScriptError> {
    let origin = ScriptOrigin::file_used_by(spec.origin.clone(), place);
    let source = format!("{PRELUDE}{}", spec.source);
    Ok(Script::compile(&source, origin, spec.globals.clone())?.with_host(host.clone()))
}

/// Runs a script made by [`compile`]: the built-in handlers it invoked, in order; the error
/// of a script that threw.
pub(crate) fn run(script: &Script, failure: Value, cause: &str) -> Result<Vec<Handed>, String> {
    let bindings = Bindings::new()
        .with_owned("syncFailure", failure)
        .with_owned("failureCause", Value::String(cause.to_string()));
    let (_, captured) = script
        .eval_capturing(&bindings, &[HANDED])
        .map_err(|e| e.to_string())?;
    let handed = captured
        .first()
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter_map(|n| match n.as_str() {
                    Some("deadLetterQueue") => Some(Handed::DeadLetterQueue),
                    Some("loggedIgnore") => Some(Handed::LoggedIgnore),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(handed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn script(source: &str) -> Script {
        let spec = ScriptSpec {
            source: source.into(),
            file: None,
            globals: Default::default(),
            origin: "test".into(),
        };
        compile(&spec, "test".into(), &HostSlot::new()).unwrap()
    }

    #[test]
    fn a_script_hands_the_failure_to_the_built_in_handlers() {
        let s = script(
            "(function () { failureHandlers.deadLetterQueue.invoke(syncFailure, failureCause); \
             if (syncFailure.uid === 'x') { failureHandlers.loggedIgnore.invoke(syncFailure, failureCause); } }());",
        );
        assert_eq!(
            run(&s, json!({"uid": "x"}), "down").unwrap(),
            vec![Handed::DeadLetterQueue, Handed::LoggedIgnore]
        );
        assert_eq!(
            run(&s, json!({"uid": "y"}), "down").unwrap(),
            vec![Handed::DeadLetterQueue]
        );
        let quiet = script("var seen = failureCause; null");
        assert!(run(&quiet, json!({}), "down").unwrap().is_empty());
    }

    #[test]
    fn a_throwing_script_is_an_error_with_its_own_line_numbers() {
        let s = script("var a = 1;\nthrow new Error('no ' + failureCause);");
        let e = run(&s, json!({}), "target").unwrap_err();
        assert!(e.contains("no target"), "{e}");
        assert!(e.contains("line 2"), "{e}");
    }
}
