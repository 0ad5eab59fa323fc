//! One QuickJS runtime and context per OS thread, and the per-thread cache of compiled scripts.
//! QuickJS runtimes are not `Send` (machine-facts), so a `Script` is plain data shared across
//! threads and each thread compiles it once, on first use, into a JavaScript function whose
//! parameters are the call's variables. Must not hold any JavaScript value across threads.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Weak;
use std::time::{Duration, Instant};

use rquickjs::context::EvalOptions;
use rquickjs::function::Args;
use rquickjs::{Context, Ctx, Function, Persistent, Runtime, Value as JsValue};
use serde_json::Value;

use crate::bindings::Bindings;
use crate::console::install_console;
use crate::convert::{self, FromJsError};
use crate::error::ScriptError;
use crate::failure::{Failure, WRAPPER_FILE, describe_failure, describe_thrown};
use crate::host::HostSlot;
use crate::limits::default_limits;
use crate::origin::ScriptOrigin;
use crate::script::ScriptInner;
use crate::{names, usage};

/// The variable that holds a multi-statement script's text inside its compiled wrapper.
pub(crate) const SOURCE_VAR: &str = "__idsync_src";

thread_local! {
    static ENGINE: RefCell<Option<ThreadEngine>> = const { RefCell::new(None) };
    /// How long the call in progress on this thread has waited in host calls (`openidm.*`):
    /// the time budget is the script's own time, not the time the systems it called took to
    /// answer. Host calls per evaluation are bounded (docs/scripts.md), so a script looping over
    /// slow calls still ends.
    static HOST_WAIT: Cell<Duration> = const { Cell::new(Duration::ZERO) };
}

/// Runs a host call of the script in progress on this thread; the time it takes does not count
/// against the script's time budget.
pub(crate) fn waiting_on_host<R>(call: impl FnOnce() -> R) -> R {
    let started = Instant::now();
    let result = call();
    HOST_WAIT.with(|w| w.set(w.get() + started.elapsed()));
    result
}

/// What the interrupt handler shares with the call in progress.
struct CallState {
    deadline: Cell<Option<Instant>>,
    timed_out: Cell<bool>,
}

/// One compiled form of a script for one list of variable names.
struct Variant {
    params: Vec<Box<str>>,
    captures: Vec<Box<str>>,
    /// Per parameter: the only keys the script can read, when it reads nothing else of it.
    plans: Vec<Option<Box<[Box<str>]>>>,
    function: Persistent<Function<'static>>,
}

struct CachedScript {
    owner: Weak<ScriptInner>,
    variants: Vec<Variant>,
}

/// Field order is drop order: compiled functions must be freed before their runtime.
struct ThreadEngine {
    cache: HashMap<u64, CachedScript>,
    sweeper: Persistent<Function<'static>>,
    purge_at: usize,
    state: Rc<CallState>,
    memory_limit: usize,
    context: Context,
    _runtime: Runtime,
}

/// What one evaluation returns: the script's value and the values of the captured variables.
pub(crate) struct Outcome {
    pub value: Value,
    pub captured: Vec<Value>,
}

/// Runs `f` with this thread's engine, creating it on first use.
fn with_engine<R>(
    origin: &ScriptOrigin,
    f: impl FnOnce(&mut ThreadEngine) -> Result<R, ScriptError>,
) -> Result<R, ScriptError> {
    let evaluated = ENGINE.try_with(|cell| {
        // A script cannot call back into Rust code that evaluates another script, so a busy
        // engine here means a caller evaluated from inside `console` output: report, not panic.
        let Ok(mut slot) = cell.try_borrow_mut() else {
            return Err(engine_error(
                origin,
                "script evaluation re-entered on the same thread",
            ));
        };
        if slot.is_none() {
            *slot = Some(ThreadEngine::new().map_err(|e| engine_error(origin, e))?);
        }
        match slot.as_mut() {
            Some(engine) => f(engine),
            None => Err(engine_error(origin, "no JavaScript engine on this thread")),
        }
    });
    // Only fails while the thread is exiting and its engine is already destroyed.
    evaluated.unwrap_or_else(|_| Err(engine_error(origin, "the thread is shutting down")))
}

fn engine_error(origin: &ScriptOrigin, message: impl ToString) -> ScriptError {
    ScriptError::Engine {
        origin: origin.clone(),
        message: message.to_string(),
    }
}

/// Checks that `source` is valid script code, as it will run (direct-eval code in a function).
pub(crate) fn check_syntax(source: &str, origin: &ScriptOrigin) -> Result<(), ScriptError> {
    with_engine(origin, |engine| engine.check_syntax(source, origin))
}

/// Whether `expression` compiles as a single expression (the fast path of transforms).
pub(crate) fn is_expression(expression: &str, origin: &ScriptOrigin) -> Result<bool, ScriptError> {
    with_engine(origin, |engine| {
        engine.context.with(|ctx| {
            let text = format!("(function(){{return({expression}\n)}})");
            match sloppy_eval::<JsValue>(&ctx, text) {
                Ok(_) => Ok(true),
                Err(rquickjs::Error::Exception) => {
                    let _ = ctx.catch();
                    Ok(false)
                }
                Err(e) => Err(engine_error(origin, e)),
            }
        })
    })
}

/// Evaluates a script on this thread's engine, its `openidm` calls answered by `host`'s host.
pub(crate) fn evaluate(
    script: &std::sync::Arc<ScriptInner>,
    host: Option<&HostSlot>,
    bindings: &Bindings<'_>,
    captures: &[&str],
    timeout: Duration,
) -> Result<Outcome, ScriptError> {
    with_engine(&script.origin, |engine| {
        crate::host::evaluating(host, &script.origin, || {
            engine.evaluate(script, bindings, captures, timeout)
        })
    })
}

impl ThreadEngine {
    fn new() -> rquickjs::Result<Self> {
        let limits = default_limits();
        let runtime = Runtime::new()?;
        runtime.set_memory_limit(limits.memory_limit);
        runtime.set_max_stack_size(limits.max_stack_size);
        let state = Rc::new(CallState {
            deadline: Cell::new(None),
            timed_out: Cell::new(false),
        });
        let handler_state = Rc::clone(&state);
        runtime.set_interrupt_handler(Some(Box::new(move || match handler_state.deadline.get() {
            Some(deadline) if Instant::now() >= deadline + HOST_WAIT.with(Cell::get) => {
                handler_state.timed_out.set(true);
                true
            }
            _ => false,
        })));
        let context = Context::full(&runtime)?;
        let sweeper = context.with(|ctx| {
            install_console(&ctx)?;
            let factory: Function = sloppy_eval(&ctx, crate::api::factory_source())?;
            crate::api::install(&ctx, factory)?;
            // Built-ins and `console` are not enumerable, so every enumerable own property of the
            // global object was made by a script assigning an undeclared variable (`i = 0`).
            // Deleting them after each call keeps one call's variables out of the next.
            let sweeper: Function = sloppy_eval(
                &ctx,
                "(function(){var g=globalThis;return function(){for(var k in g){delete g[k]}}})()",
            )?;
            Ok::<_, rquickjs::Error>(Persistent::save(&ctx, sweeper))
        })?;
        Ok(Self {
            cache: HashMap::new(),
            sweeper,
            purge_at: 64,
            state,
            memory_limit: limits.memory_limit,
            context,
            _runtime: runtime,
        })
    }

    fn check_syntax(&mut self, source: &str, origin: &ScriptOrigin) -> Result<(), ScriptError> {
        self.context.with(|ctx| {
            // The checker throws a private sentinel before the first statement runs: the whole
            // text is parsed first, so a syntax error surfaces and no user code executes.
            let checker: Function = sloppy_eval(
                &ctx,
                "(function(){var sentinel={};return function(src){\
                     try{eval('throw sentinel;'+src)}catch(e){if(e===sentinel)return null;\
                     return e}return null}})()",
            )
            .map_err(|e| engine_error(origin, e))?;
            let found: JsValue = checker
                .call((source,))
                .map_err(|e| engine_error(origin, e))?;
            if found.is_null() {
                return Ok(());
            }
            let (message, line) = describe_thrown(&found);
            Err(ScriptError::Syntax {
                origin: origin.clone(),
                message,
                line,
            })
        })
    }

    fn evaluate(
        &mut self,
        script: &std::sync::Arc<ScriptInner>,
        bindings: &Bindings<'_>,
        captures: &[&str],
        timeout: Duration,
    ) -> Result<Outcome, ScriptError> {
        let origin = &script.origin;
        let index = self.variant_index(script, bindings, captures)?;
        let state = Rc::clone(&self.state);
        let sweeper = &self.sweeper;
        let memory_limit = self.memory_limit;
        let Some(variant) = self
            .cache
            .get(&script.id)
            .and_then(|c| c.variants.get(index))
        else {
            return Err(engine_error(
                origin,
                "compiled script vanished from the cache",
            ));
        };
        let outcome: Result<Outcome, Failure> = self.context.with(|ctx| {
            let prepared = prepare_call(&ctx, variant, script, bindings);
            let (function, args) = prepared.map_err(|e| describe_failure(&ctx, e))?;
            state.timed_out.set(false);
            // The deadline also covers the JSON conversion, which may run a script's `toJSON`.
            HOST_WAIT.with(|w| w.set(Duration::ZERO));
            state.deadline.set(Some(Instant::now() + timeout));
            let called = function
                .call_arg::<JsValue>(args)
                .map_err(|e| describe_failure(&ctx, e))
                .and_then(|value| collect(&ctx, &value, captures.len()));
            state.deadline.set(None);
            if !script.needs_sweep {
                return called;
            }
            let swept = sweeper
                .clone()
                .restore(&ctx)
                .and_then(|f| f.call::<_, ()>(()))
                .map_err(|e| describe_failure(&ctx, e));
            called.and_then(|outcome| swept.map(|()| outcome))
        });
        outcome.map_err(|failure| {
            let timed_out = state.timed_out.replace(false);
            let error = failure.into_error(origin, timed_out, timeout, memory_limit);
            if matches!(error, ScriptError::OutOfMemory { .. }) {
                // Give the heap back now rather than at the next allocation threshold.
                self.context.runtime().run_gc();
            }
            error
        })
    }

    /// Finds or compiles the variant of `script` for these variable names.
    fn variant_index(
        &mut self,
        script: &std::sync::Arc<ScriptInner>,
        bindings: &Bindings<'_>,
        captures: &[&str],
    ) -> Result<usize, ScriptError> {
        let found = self.cache.get(&script.id).and_then(|cached| {
            cached
                .variants
                .iter()
                .position(|v| matches(v, script, bindings, captures))
        });
        if let Some(i) = found {
            return Ok(i);
        }
        let variant = self.compile_variant(script, bindings, captures)?;
        if self.cache.len() >= self.purge_at {
            // Scripts of a replaced configuration are dropped by their owners; forget them here.
            self.cache.retain(|_, c| c.owner.strong_count() > 0);
            self.purge_at = (self.cache.len() * 2).max(64);
        }
        let entry = self.cache.entry(script.id).or_insert_with(|| CachedScript {
            owner: std::sync::Arc::downgrade(script),
            variants: Vec::new(),
        });
        entry.variants.push(variant);
        Ok(entry.variants.len() - 1)
    }

    fn compile_variant(
        &mut self,
        script: &std::sync::Arc<ScriptInner>,
        bindings: &Bindings<'_>,
        captures: &[&str],
    ) -> Result<Variant, ScriptError> {
        let origin = &script.origin;
        let params: Vec<Box<str>> = param_names(script, bindings).map(Box::from).collect();
        for name in &params {
            names::check_variable(name).map_err(|reason| ScriptError::InvalidName {
                origin: origin.clone(),
                name: name.to_string(),
                reason,
            })?;
        }
        for name in captures {
            names::check_variable(name).map_err(|reason| ScriptError::InvalidName {
                origin: origin.clone(),
                name: (*name).to_owned(),
                reason,
            })?;
        }
        let plans = params
            .iter()
            .map(|p| {
                if captures.contains(&p.as_ref()) {
                    None
                } else {
                    usage::member_keys(&script.source, p)
                }
            })
            .collect();
        let param_list = params.join(",");
        let result = match captures.len() {
            0 => "".to_owned(),
            _ => format!(",{}", captures.join(",")),
        };
        let function = self.context.with(|ctx| {
            let function: Function = match &script.expression {
                Some(expression) if captures.is_empty() => sloppy_eval(
                    &ctx,
                    format!("(function({param_list}){{return({expression}\n)}})"),
                )?,
                Some(expression) => sloppy_eval(
                    &ctx,
                    format!("(function({param_list}){{return[({expression}\n){result}]}})"),
                )?,
                None => {
                    let body = if captures.is_empty() {
                        format!("return eval({SOURCE_VAR})")
                    } else {
                        format!("return[eval({SOURCE_VAR}){result}]")
                    };
                    let factory: Function = sloppy_eval(
                        &ctx,
                        format!(
                            "(function({SOURCE_VAR}){{return function({param_list}){{{body}}}}})"
                        ),
                    )?;
                    factory.call((script.source.as_str(),))?
                }
            };
            Ok::<_, rquickjs::Error>(Persistent::save(&ctx, function))
        });
        let function = function.map_err(|e| {
            let detail = self.context.with(|ctx| describe_failure(&ctx, e));
            engine_error(
                origin,
                format!("cannot compile the script wrapper: {}", detail.message()),
            )
        })?;
        Ok(Variant {
            params,
            captures: captures.iter().map(|c| Box::from(*c)).collect(),
            plans,
            function,
        })
    }
}

/// Evaluates engine-made wrapper code in sloppy mode, as IDM's engine runs scripts: old IDM
/// scripts assign undeclared loop variables (`for (i = 0; ...)`), an error in strict mode.
fn sloppy_eval<'js, V: rquickjs::FromJs<'js>>(
    ctx: &Ctx<'js>,
    text: impl Into<Vec<u8>>,
) -> rquickjs::Result<V> {
    let mut options = EvalOptions::default();
    options.strict = false;
    options.filename = Some(WRAPPER_FILE.to_owned());
    ctx.eval_with_options(text, options)
}

/// Globals not shadowed by a binding, then the bindings: the parameter order of a variant.
fn param_names<'s>(
    script: &'s ScriptInner,
    bindings: &'s Bindings<'_>,
) -> impl Iterator<Item = &'s str> {
    script
        .globals
        .keys()
        .filter(|name| bindings.get(name).is_none())
        .map(String::as_str)
        .chain(bindings.iter().map(|(name, _)| name))
}

fn matches(
    variant: &Variant,
    script: &ScriptInner,
    bindings: &Bindings<'_>,
    captures: &[&str],
) -> bool {
    variant.captures.len() == captures.len()
        && variant
            .captures
            .iter()
            .zip(captures)
            .all(|(a, b)| a.as_ref() == *b)
        && {
            let mut expected = variant.params.iter();
            param_names(script, bindings)
                .all(|name| expected.next().is_some_and(|p| p.as_ref() == name))
                && expected.next().is_none()
        }
}

/// Turns the call's JS result into JSON, splitting off captured variables.
fn collect(ctx: &Ctx<'_>, value: &JsValue<'_>, capture_count: usize) -> Result<Outcome, Failure> {
    let to_json = |v: &JsValue<'_>| match convert::from_js(v) {
        Ok(json) => Ok(json),
        Err(FromJsError::NotJson(message)) => Err(Failure::NotJson(message)),
        Err(FromJsError::Js(e)) => Err(describe_failure(ctx, e)),
    };
    if capture_count == 0 {
        return Ok(Outcome {
            value: to_json(value)?,
            captured: Vec::new(),
        });
    }
    let Some(array) = value.as_array() else {
        return Err(Failure::Plain(
            "the capture wrapper did not return an array".to_owned(),
        ));
    };
    let mut items = array.iter::<JsValue>();
    let mut next = || -> Result<Value, Failure> {
        match items.next() {
            Some(Ok(v)) => to_json(&v),
            Some(Err(e)) => Err(describe_failure(ctx, e)),
            None => Ok(Value::Null),
        }
    };
    let value = next()?;
    let mut captured = Vec::with_capacity(capture_count);
    for _ in 0..capture_count {
        captured.push(next()?);
    }
    Ok(Outcome { value, captured })
}

/// Restores the compiled function and converts the call's variables into its arguments.
fn prepare_call<'js>(
    ctx: &Ctx<'js>,
    variant: &Variant,
    script: &ScriptInner,
    bindings: &Bindings<'_>,
) -> rquickjs::Result<(Function<'js>, Args<'js>)> {
    let function = variant.function.clone().restore(ctx)?;
    let mut args = Args::new(ctx.clone(), variant.params.len());
    let mut plans = variant.plans.iter();
    for (name, value) in script.globals.iter() {
        if bindings.get(name).is_none() {
            args.push_arg(convert::to_js(ctx, value)?)?;
            plans.next();
        }
    }
    for ((_, value), plan) in bindings.iter().zip(plans) {
        let js = match (value, plan) {
            (Value::Object(map), Some(keys)) => {
                convert::object_to_js(ctx, map, Some(keys))?.into_value()
            }
            _ => convert::to_js(ctx, value)?,
        };
        args.push_arg(js)?;
    }
    Ok((function, args))
}
