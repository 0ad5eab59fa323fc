//! The host API scripts see (docs/scripts.md) against a fake host: how calls and their
//! arguments reach the host, errors thrown with their CREST code, `read` and `getProperty`
//! defaults, no host attached, the depth bound across threads, and the override.

#![allow(clippy::unwrap_used)] // Tests may unwrap.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use idsync_script::host::{
    self, HostError, HostMethod, HostRequest, HostSlot, MAX_DEPTH, ScriptHost, scoped,
};
use idsync_script::{Bindings, ModuleSource, Script, ScriptOrigin};
use serde_json::{Map, Value, json};

/// How long the fake takes to answer a `read` of `slow/...`.
const SLOW_CALL: Duration = Duration::from_millis(400);

/// Records calls; answers `read` of `slow/...` after [`SLOW_CALL`], `read` of `missing` with 404 and `update` with 412; anything else
/// echoes the request.
#[derive(Default)]
struct Fake {
    calls: Mutex<Vec<HostRequest>>,
    /// When set, a `create` evaluates this script again on another thread, nested.
    recurse: Mutex<Option<Script>>,
    /// The modules `require` finds, by name.
    modules: Mutex<std::collections::HashMap<String, String>>,
}

impl ScriptHost for Fake {
    fn call(&self, request: HostRequest) -> Result<Value, HostError> {
        self.calls.lock().unwrap().push(request.clone());
        let recurse = self.recurse.lock().unwrap().clone();
        match request.method {
            HostMethod::Read if request.resource.starts_with("slow/") => {
                std::thread::sleep(SLOW_CALL);
                Ok(json!({"_id": request.resource}))
            }
            HostMethod::Read if request.resource.ends_with("missing") => {
                Err(HostError::new(404, "managed/user/missing not found"))
            }
            HostMethod::Update => Err(HostError {
                code: 412,
                message: "revision mismatch".into(),
                detail: Some(json!({"expected": "1"})),
            }),
            HostMethod::Create if recurse.is_some() => {
                let script = recurse.unwrap();
                let scope = request.scope.clone();
                // Nested work runs elsewhere, in the call's scope (as RouterHost does).
                std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .build()
                        .unwrap();
                    rt.block_on(scoped(scope, async move { script.eval(&Bindings::new()) }))
                })
                .join()
                .unwrap()
                .map_err(|e| HostError::new(400, e.to_string()))
            }
            _ => Ok(json!({
                "method": request.method.name(),
                "resource": request.resource,
                "newId": request.new_id,
                "rev": request.rev,
                "content": request.content,
                "action": request.action,
                "params": request.params,
                "fields": request.fields,
                "depth": request.scope.depth(),
            })),
        }
    }

    fn property(&self, name: &str) -> Option<String> {
        (name == "known").then(|| "value".to_owned())
    }

    fn project_location(&self) -> String {
        "/projects/p".to_owned()
    }

    fn module(&self, name: &str) -> Result<ModuleSource, HostError> {
        match self.modules.lock().unwrap().get(name) {
            Some(source) => Ok(ModuleSource {
                key: format!("{name}.js"),
                source: source.clone(),
            }),
            None => Err(HostError::new(404, format!("require('{name}'): not found"))),
        }
    }
}

fn hosted(source: &str) -> (Script, Arc<Fake>, Arc<dyn ScriptHost>) {
    let fake = Arc::new(Fake::default());
    let host: Arc<dyn ScriptHost> = fake.clone();
    let slot = HostSlot::new();
    slot.set(&host);
    let script = Script::compile(source, ScriptOrigin::inline("test hook"), Map::new())
        .unwrap()
        .with_host(slot);
    (script, fake, host)
}

#[test]
fn each_call_reaches_the_host_with_its_arguments() {
    let (script, fake, _host) = hosted(
        r#"[
            openidm.create("managed/user", "u1", {"a": 1}),
            openidm.create("managed/user", null, {"b": 2}, {"x": "y"}, ["a", "b"]),
            openidm.read("managed/user/u1", null, "a,b"),
            openidm.patch("managed/user/u1", "3", [{"operation": "remove", "field": "/a"}]),
            openidm["delete"]("managed/user/u1", "4"),
            openidm.query("managed/user", {"_queryFilter": "true"}),
            openidm.action("recon", "recon", {}, {"mapping": "m"})
        ]"#,
    );
    let out = script.eval(&Bindings::new()).unwrap();
    assert_eq!(out[0]["method"], "create");
    assert_eq!(out[0]["newId"], "u1");
    assert_eq!(out[0]["content"], json!({"a": 1}));
    assert_eq!(out[0]["depth"], 1);
    assert_eq!(out[1]["newId"], Value::Null);
    assert_eq!(out[1]["params"], json!({"x": "y"}));
    assert_eq!(out[1]["fields"], json!(["a", "b"]));
    assert_eq!(out[2]["fields"], json!(["a", "b"]));
    assert_eq!(out[3]["rev"], "3");
    assert_eq!(out[3]["content"][0]["operation"], "remove");
    assert_eq!(out[4]["method"], "delete");
    assert_eq!(out[5]["params"]["_queryFilter"], "true");
    assert_eq!(out[6]["action"], "recon");
    assert_eq!(out[6]["params"]["mapping"], "m");
    assert_eq!(fake.calls.lock().unwrap().len(), 7);
}

/// The time budget is the script's own time: waiting for the systems it calls does not spend it
/// (three calls of 400 ms each, then some work of its own, within a 300 ms budget), and a
/// script that then loops for ever is still stopped.
#[test]
fn waiting_on_slow_host_calls_does_not_spend_the_time_budget() {
    let (script, fake, _host) = hosted(
        "var r = [openidm.read('slow/a'), openidm.read('slow/b'), openidm.read('slow/c')]; \
         for (var i = 0, n = 0; i < 100000; i++) { n += i; } r",
    );
    let script = script.with_timeout(Duration::from_millis(300));
    let out = script.eval(&Bindings::new()).unwrap();
    assert_eq!(out[2]["_id"], "slow/c");
    assert_eq!(fake.calls.lock().unwrap().len(), 3);

    let (looping, _, _host) = hosted("openidm.read('slow/a'); while (true) {}");
    let looping = looping.with_timeout(Duration::from_millis(300));
    let error = looping.eval(&Bindings::new()).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("interrupted after its time budget"),
        "{error}"
    );
}

#[test]
fn a_failed_call_throws_its_crest_code_and_message() {
    let (script, _, _host) = hosted(
        r#"var r;
        try { openidm.update("managed/user/u1", "1", {}); }
        catch (e) { r = [e.code, e.message, e.detail, e instanceof Error]; }
        r"#,
    );
    assert_eq!(
        script.eval(&Bindings::new()).unwrap(),
        json!([412, "revision mismatch", {"expected": "1"}, true])
    );
    let (script, _, _host) = hosted(r#"openidm.update("managed/user/u1", "1", {})"#);
    let err = script.eval(&Bindings::new()).unwrap_err().to_string();
    assert!(err.contains("test hook"), "{err}");
    assert!(err.contains("revision mismatch"), "{err}");
}

#[test]
fn a_bad_argument_is_a_400_naming_the_call() {
    let (script, fake, _host) = hosted(
        r#"var r = [];
        try { openidm.read(42); } catch (e) { r.push([e.code, e.message]); }
        try { openidm.query("managed/user", "not an object"); } catch (e) { r.push([e.code, e.message]); }
        r"#,
    );
    let out = script.eval(&Bindings::new()).unwrap();
    assert_eq!(out[0][0], 400);
    assert!(
        out[0][1].as_str().unwrap().contains("openidm.read"),
        "{out}"
    );
    assert_eq!(out[1][0], 400);
    assert!(out[1][1].as_str().unwrap().contains("params"), "{out}");
    assert!(fake.calls.lock().unwrap().is_empty());
}

#[test]
fn identity_server_answers_from_the_host() {
    let (script, _, _host) = hosted(
        r#"[identityServer.getProperty("known"), identityServer.getProperty("unknown"),
            identityServer.getProperty("unknown", "dflt"), identityServer.getProperty("known", "dflt"),
            identityServer.getProjectLocation(), identityServer.getInstallLocation()]"#,
    );
    assert_eq!(
        script.eval(&Bindings::new()).unwrap(),
        json!(["value", null, "dflt", "value", "/projects/p", "/projects/p"])
    );
}

#[test]
fn without_a_host_openidm_throws_a_503_and_logger_still_works() {
    let script = Script::compile(
        r#"logger.info("still {}", "works"); var c; try { openidm.read("managed/user/1"); } catch (e) { c = e.code; } c"#,
        ScriptOrigin::inline("unhosted"),
        Map::new(),
    )
    .unwrap();
    assert_eq!(script.eval(&Bindings::new()).unwrap(), 503);
    // A slot whose host is gone is the same.
    let slot = HostSlot::new();
    {
        let host: Arc<dyn ScriptHost> = Arc::new(Fake::default());
        slot.set(&host);
    }
    assert_eq!(script.with_host(slot).eval(&Bindings::new()).unwrap(), 503);
}

#[test]
fn a_script_that_calls_itself_again_stops_at_the_depth_limit() {
    let (script, fake, _host) = hosted(r#"openidm.create("managed/user", null, {});"#);
    *fake.recurse.lock().unwrap() = Some(script.clone());
    let err = script.eval(&Bindings::new()).unwrap_err().to_string();
    assert!(
        err.contains(&format!("nested deeper than {MAX_DEPTH}")),
        "{err}"
    );
    let calls = fake.calls.lock().unwrap();
    assert_eq!(calls.len(), MAX_DEPTH as usize, "one call per level");
    assert_eq!(calls.last().unwrap().scope.depth(), MAX_DEPTH);
}

#[test]
fn an_override_answers_instead_of_the_scripts_host() {
    let (script, fake, _host) = hosted(r#"openidm.read("managed/user/1")"#);
    let other: Arc<dyn ScriptHost> = Arc::new(Fake::default());
    let out = host::with_override(other, || script.eval(&Bindings::new())).unwrap();
    assert_eq!(out["method"], "read");
    assert!(
        fake.calls.lock().unwrap().is_empty(),
        "the override answered"
    );
    script.eval(&Bindings::new()).unwrap();
    assert_eq!(
        fake.calls.lock().unwrap().len(),
        1,
        "and only for that evaluation"
    );
}

#[test]
fn a_missing_object_read_by_a_host_that_gives_404_throws() {
    // The 404-to-null rule is the REST host's (RouterHost); the engine passes errors on.
    let (script, _, _host) = hosted(
        r#"var c; try { openidm.read("managed/user/missing"); } catch (e) { c = e.code; } c"#,
    );
    assert_eq!(script.eval(&Bindings::new()).unwrap(), 404);
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn logger_formats_placeholders_and_names_the_script() {
    let (script, _, _host) = hosted(
        r#"logger.info("a {} b {}", 1, {"x": 2}); logger.warn("left {} over", "x", "extra");
           logger.error("{} and {}", "only one"); logger.debug("quiet at info"); true"#,
    );
    let buf = Captured::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .finish();
    let out = tracing::subscriber::with_default(subscriber, || script.eval(&Bindings::new()));
    assert_eq!(out.unwrap(), true);
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains(r#"INFO idsync::script: a 1 b {"x":2} origin=test hook"#),
        "{text}"
    );
    assert!(
        text.contains("WARN idsync::script: left x over extra"),
        "{text}"
    );
    assert!(
        text.contains("ERROR idsync::script: only one and {}"),
        "{text}"
    );
    assert!(!text.contains("quiet at info"), "{text}");
}

#[test]
fn require_runs_a_module_once_and_again_when_its_text_changed() {
    let (script, fake, _host) = hosted("require('counter').next()");
    fake.modules.lock().unwrap().insert(
        "counter".into(),
        "var n = 0;\nexports.next = function () { return ++n; };".into(),
    );
    // The module's state lives on between evaluations (on this thread), as in IDM.
    assert_eq!(script.eval(&Bindings::new()).unwrap(), 1);
    assert_eq!(script.eval(&Bindings::new()).unwrap(), 2);
    fake.modules.lock().unwrap().insert(
        "counter".into(),
        "var n = 10;\nmodule.exports = {next: function () { return ++n; }};".into(),
    );
    assert_eq!(script.eval(&Bindings::new()).unwrap(), 11);
}

#[test]
fn a_module_that_fails_names_itself_and_a_missing_one_throws_its_code() {
    let (script, fake, _host) = hosted(
        "var out = [];\n\
         try { require('nowhere'); } catch (e) { out.push(e.code, e.message); }\n\
         try { require('broken'); } catch (e) { out.push(e.code, e.message); }\n\
         try { require('thrower').f(); } catch (e) { out.push(String(e.stack || e)); }\n\
         out",
    );
    fake.modules.lock().unwrap().extend([
        ("broken".to_string(), "var x = ;".to_string()),
        (
            "thrower".to_string(),
            "exports.f = function () {\n  throw new Error('inside');\n};".to_string(),
        ),
    ]);
    let out = script.eval(&Bindings::new()).unwrap();
    assert_eq!(out[0], 404);
    assert_eq!(out[1], "require('nowhere'): not found");
    assert_eq!(out[2], 500);
    let broken = out[3].as_str().unwrap();
    assert!(broken.contains("broken.js"), "{broken}");
    let stack = out[4].as_str().unwrap();
    assert!(stack.contains("thrower.js:2"), "{stack}");
}

#[test]
fn the_library_helpers_match_filters_and_pass_clear_values_through_decrypt() {
    let (script, _fake, _host) = hosted(
        r#"[
            __idsync.filterMatches('/city eq "London"', {"city": "London"}),
            __idsync.filterMatches('/city eq "London"', {"city": "Paris"}),
            openidm.decrypt("secret"),
            openidm.isEncrypted({"$crypto": {"type": "x-simple-encryption"}}),
            openidm.isEncrypted("secret"),
            (function () { try { openidm.decrypt({"$crypto": {}}); } catch (e) { return e.code; } })(),
            (function () { try { __idsync.filterMatches('city eq', {}); } catch (e) { return e.code; } })()
        ]"#,
    );
    let out = script.eval(&Bindings::new()).unwrap();
    assert_eq!(out, json!([true, false, "secret", true, false, 501, 400]));
}
