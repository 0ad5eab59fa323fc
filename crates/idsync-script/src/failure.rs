//! Describing a failed script call: the JavaScript message and line of a thrown value, and the
//! mapping of engine failures to `ScriptError`. Must not run scripts.

use std::time::Duration;

use rquickjs::{Ctx, Value as JsValue};
use serde_json::Value;

use crate::convert;
use crate::error::ScriptError;
use crate::origin::ScriptOrigin;

/// The file name of compiled wrappers in stack traces; multi-statement code shows as `<input>`.
pub(crate) const WRAPPER_FILE: &str = "idsync-script";

/// A failed call, described while the context is still at hand.
pub(crate) enum Failure {
    /// A JavaScript exception: message and line.
    Thrown(String, Option<u32>),
    /// The result could not become JSON.
    NotJson(String),
    /// An engine-level error without a JavaScript exception.
    Plain(String),
}

impl Failure {
    pub(crate) fn message(&self) -> &str {
        match self {
            Failure::Thrown(m, _) | Failure::NotJson(m) | Failure::Plain(m) => m,
        }
    }

    pub(crate) fn into_error(
        self,
        origin: &ScriptOrigin,
        timed_out: bool,
        budget: Duration,
        memory_limit: usize,
    ) -> ScriptError {
        let origin = origin.clone();
        if timed_out {
            return ScriptError::Timeout { origin, budget };
        }
        match self {
            Failure::Thrown(message, _) | Failure::Plain(message)
                if message == "InternalError: out of memory" || message == "out of memory" =>
            {
                ScriptError::OutOfMemory {
                    origin,
                    limit_bytes: memory_limit,
                }
            }
            Failure::Thrown(message, line) => ScriptError::Thrown {
                origin,
                message,
                line,
            },
            Failure::NotJson(message) => ScriptError::NotJson { origin, message },
            Failure::Plain(message) => ScriptError::Engine { origin, message },
        }
    }
}

pub(crate) fn describe_failure(ctx: &Ctx<'_>, error: rquickjs::Error) -> Failure {
    match error {
        rquickjs::Error::Exception => {
            let thrown = ctx.catch();
            let (message, line) = describe_thrown(&thrown);
            Failure::Thrown(message, line)
        }
        rquickjs::Error::Allocation => Failure::Plain("out of memory".to_owned()),
        other => Failure::Plain(other.to_string()),
    }
}

/// The message of a thrown value: `TypeError: x is undefined` for errors, the text of a thrown
/// string, the JSON of anything else; and the script line from the error's stack, if any.
pub(crate) fn describe_thrown(thrown: &JsValue<'_>) -> (String, Option<u32>) {
    if let Some(exception) = thrown.as_exception() {
        let name: Option<String> = exception.get("name").ok();
        let message = exception.message().unwrap_or_default();
        let text = match name {
            Some(name) if !name.is_empty() && !message.is_empty() => format!("{name}: {message}"),
            Some(name) if !name.is_empty() => name,
            _ => message,
        };
        let line = exception.stack().as_deref().and_then(stack_line);
        return (text, line);
    }
    if thrown.is_null() || thrown.is_undefined() {
        // QuickJS throws a bare null when it runs out of memory before it can even create its
        // "out of memory" error, which looks exactly like a script's own `throw null`.
        return (
            format!(
                "the script threw {} (QuickJS also ends a script this way when it exhausts its \
                 memory limit)",
                if thrown.is_null() {
                    "null"
                } else {
                    "undefined"
                }
            ),
            None,
        );
    }
    if let Some(s) = thrown.as_string() {
        return (s.to_string().unwrap_or_default(), None);
    }
    match convert::from_js(thrown) {
        Ok(Value::String(s)) => (s, None),
        Ok(value) => (value.to_string(), None),
        Err(_) => (format!("a thrown {}", thrown.type_name()), None),
    }
}

/// The line of the innermost frame that is the script's own code. The wrapper keeps the
/// script's first line on the wrapper's first line, so the numbers are the script's.
fn stack_line(stack: &str) -> Option<u32> {
    stack.lines().find_map(|frame| {
        let frame = frame.trim().trim_end_matches(')');
        let mut parts = frame.rsplitn(3, ':');
        let _column = parts.next()?.parse::<u32>().ok()?;
        let line = parts.next()?.parse::<u32>().ok()?;
        let file = parts.next()?;
        (file.ends_with(WRAPPER_FILE) || file.ends_with("<input>")).then_some(line)
    })
}
