//! `Script`: a checked, shareable script and its evaluation entry points. Owns the decision of
//! how a script is wrapped (a single expression is compiled as a function returning it; any other
//! script runs as direct-eval code so its completion value is the result). Must not touch
//! configuration files: callers pass the source text and its origin.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::bindings::Bindings;
use crate::error::ScriptError;
use crate::host::HostSlot;
use crate::limits::default_limits;
use crate::origin::ScriptOrigin;
use crate::{engine, names, usage};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A compiled script: syntax-checked at `compile`, cheap to clone, and usable from any number of
/// threads at once (each thread compiles it once into its own engine on first use).
#[derive(Clone)]
pub struct Script {
    inner: Arc<ScriptInner>,
    timeout: Duration,
    host: Option<HostSlot>,
}

pub(crate) struct ScriptInner {
    /// Key of the per-thread compiled forms.
    pub(crate) id: u64,
    pub(crate) origin: ScriptOrigin,
    pub(crate) source: String,
    /// The script as a single expression, when it is one: the fast path.
    pub(crate) expression: Option<String>,
    pub(crate) globals: Map<String, Value>,
    /// Whether a call may leave properties on the global object that must be swept after it.
    pub(crate) needs_sweep: bool,
}

impl Script {
    /// Checks `source` and makes it a script. `globals` (the script object's `"globals"`) are
    /// variables of every call, unless a binding of the same name replaces them. A syntax error
    /// is reported here, naming `origin` and the JavaScript message.
    pub fn compile(
        source: &str,
        origin: ScriptOrigin,
        globals: Map<String, Value>,
    ) -> Result<Script, ScriptError> {
        for name in globals.keys() {
            names::check_variable(name).map_err(|reason| ScriptError::InvalidName {
                origin: origin.clone(),
                name: name.clone(),
                reason,
            })?;
        }
        engine::check_syntax(source, &origin)?;
        let expression = match expression_candidate(source) {
            Some(candidate) if engine::is_expression(candidate, &origin)? => {
                Some(candidate.to_owned())
            }
            _ => None,
        };
        let inner = ScriptInner {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            origin,
            source: source.to_owned(),
            expression,
            globals,
            needs_sweep: usage::may_create_globals(source),
        };
        Ok(Script {
            inner: Arc::new(inner),
            timeout: default_limits().timeout,
            host: None,
        })
    }

    /// Where the script came from.
    pub fn origin(&self) -> &ScriptOrigin {
        &self.inner.origin
    }

    /// The script's text.
    pub fn source(&self) -> &str {
        &self.inner.source
    }

    /// The time budget of one call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The same script with another time budget per call.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The same script with its `openidm` calls and `identityServer` questions answered by the
    /// host `slot` holds when it runs (docs/adr/0011-script-host-api.md). Without a host, those
    /// calls throw a 503 error; `logger` works either way.
    pub fn with_host(mut self, slot: HostSlot) -> Self {
        self.host = Some(slot);
        self
    }

    /// The host slot attached with [`Script::with_host`].
    pub fn host(&self) -> Option<&HostSlot> {
        self.host.as_ref()
    }

    /// Runs the script with `bindings` as its variables and returns the value of its last
    /// expression statement (`undefined` is `null`). Nothing of one call is visible in the next.
    pub fn eval(&self, bindings: &Bindings<'_>) -> Result<Value, ScriptError> {
        Ok(engine::evaluate(&self.inner, self.host.as_ref(), bindings, &[], self.timeout)?.value)
    }

    /// Runs a script that must answer true or false (validSource, validTarget, conditions).
    pub fn eval_bool(&self, bindings: &Bindings<'_>) -> Result<bool, ScriptError> {
        match self.eval(bindings)? {
            Value::Bool(b) => Ok(b),
            other => Err(ScriptError::NotBoolean {
                origin: self.inner.origin.clone(),
                found: describe(&other),
            }),
        }
    }

    /// Runs the script and also returns the final values of the variables named in `captures`,
    /// in that order: hooks such as `onCreate` change `target`, and those changes are kept.
    /// A captured variable that is neither bound nor a global is an error (ReferenceError).
    pub fn eval_capturing(
        &self,
        bindings: &Bindings<'_>,
        captures: &[&str],
    ) -> Result<(Value, Vec<Value>), ScriptError> {
        let outcome = engine::evaluate(
            &self.inner,
            self.host.as_ref(),
            bindings,
            captures,
            self.timeout,
        )?;
        Ok((outcome.value, outcome.captured))
    }
}

impl fmt::Debug for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Script")
            .field("origin", &self.inner.origin)
            .field("expression", &self.inner.expression.is_some())
            .field("timeout", &self.timeout)
            .field("host", &self.host.is_some())
            .finish()
    }
}

fn describe(value: &Value) -> String {
    let text = value.to_string();
    if text.len() > 80 {
        let cut = (0..=80)
            .rev()
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(0);
        format!("{}…", &text[..cut])
    } else {
        text
    }
}

/// The script without its trailing semicolons, when it may be a single expression. Scripts
/// whose first token makes a statement mean something else than the same text as an expression
/// (`{` a block, not an object; `function f(){}` a declaration) never take the fast path; the
/// rest is decided by whether the engine parses the text as an expression.
fn expression_candidate(source: &str) -> Option<&str> {
    let body = source.trim_end_matches(|c: char| c == ';' || c.is_whitespace());
    let first = skip_comments(body)?;
    if first.starts_with('{') {
        return None;
    }
    let word: String = first
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '$')
        .collect();
    if matches!(
        word.as_str(),
        "function" | "class" | "async" | "let" | "const" | "var"
    ) {
        return None;
    }
    Some(body)
}

/// The text from the first token on, past whitespace and comments; `None` if there is none.
fn skip_comments(mut text: &str) -> Option<&str> {
    loop {
        text = text.trim_start();
        if let Some(rest) = text.strip_prefix("//") {
            text = rest.split_once(['\n', '\r', '\u{2028}', '\u{2029}'])?.1;
        } else if let Some(rest) = text.strip_prefix("/*") {
            text = rest.split_once("*/")?.1;
        } else if text.is_empty() {
            return None;
        } else {
            return Some(text);
        }
    }
}
