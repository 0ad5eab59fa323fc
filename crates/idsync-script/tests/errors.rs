//! Script failures: every error names the script's origin and carries the JavaScript message.

use std::time::Duration;

use idsync_core::{ErrorCode, HasErrorCode};
use idsync_script::{Bindings, Script, ScriptError, ScriptOrigin};
use serde_json::{Map, json};

/// A project folder with a script file, as `{"type":"text/javascript","file":"script/x.js"}`
/// refers to it; removed at the end of the test.
struct Project {
    dir: std::path::PathBuf,
}

impl Project {
    fn with_file(relative: &str, contents: &str) -> Project {
        let dir = std::env::temp_dir().join(format!(
            "idsync-script-test-{}-{}",
            std::process::id(),
            relative.replace('/', "_")
        ));
        let folder = dir
            .join(relative)
            .parent()
            .map(|p| p.to_path_buf())
            .expect("a folder");
        std::fs::create_dir_all(folder).expect("create the project folder");
        std::fs::write(dir.join(relative), contents).expect("write the script file");
        Project { dir }
    }

    fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.dir.join(relative)).expect("read the script file")
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn a_script_file_runs_and_its_errors_name_the_file() {
    let project = Project::with_file(
        "script/onCreate.js",
        "// sets the mail of a new account\nvar domain = 'example.com';\n\
         if (!source.uid) {\n  throw new Error('source has no uid');\n}\n\
         target.mail = source.uid + '@' + domain;\n",
    );
    let script = Script::compile(
        &project.read("script/onCreate.js"),
        ScriptOrigin::file_used_by("script/onCreate.js", "mapping hr_user onCreate"),
        Map::new(),
    )
    .unwrap();

    let source = json!({"uid": "ada"});
    let target = json!({});
    let bindings = Bindings::new()
        .with("source", &source)
        .with("target", &target);
    let (_, captured) = script.eval_capturing(&bindings, &["target"]).unwrap();
    assert_eq!(captured[0], json!({"mail": "ada@example.com"}));

    let nameless = json!({});
    let bindings = Bindings::new()
        .with("source", &nameless)
        .with("target", &target);
    let error = script.eval_capturing(&bindings, &["target"]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "script/onCreate.js (mapping hr_user onCreate), line 4: Error: source has no uid"
    );
    assert_eq!(error.origin().file_path(), Some("script/onCreate.js"));
    assert_eq!(error.error_code(), ErrorCode::Script);
}

#[test]
fn a_thrown_error_names_the_origin_and_carries_the_message() {
    let origin = ScriptOrigin::inline("mapping hr_user property /cn transform");
    let cases = [
        (
            "throw new Error('no manager for ' + source.uid)",
            "line 1: Error: no manager for ada",
        ),
        (
            "var x = 1;\n\nsource.manager.sn",
            "line 3: TypeError: cannot read property 'sn' of undefined",
        ),
        ("throw 'plain text'", "plain text"),
        ("throw {code: 7}", "{\"code\":7}"),
        (
            "nosuchvariable + 1",
            "line 1: ReferenceError: nosuchvariable is not defined",
        ),
        (
            "function f() { return f(); }\nf()",
            "RangeError: Maximum call stack size exceeded",
        ),
    ];
    let source = json!({"uid": "ada"});
    for (text, expected) in cases {
        let script = Script::compile(text, origin.clone(), Map::new()).unwrap();
        let error = script
            .eval(&Bindings::new().with("source", &source))
            .unwrap_err();
        assert!(
            matches!(error, ScriptError::Thrown { .. }),
            "{text}: {error:?}"
        );
        let message = error.to_string();
        assert!(
            message.starts_with("mapping hr_user property /cn transform"),
            "{message}"
        );
        assert!(message.ends_with(expected), "{text}: {message}");
    }
}

#[test]
fn a_syntax_error_is_reported_at_compile() {
    let origin = ScriptOrigin::file("script/broken.js");
    for (text, fragment) in [
        ("var a = ;", "SyntaxError"),
        ("source.givenName +", "SyntaxError"),
        (
            "if (source.x) {\n  return 1;\n}",
            "return not in a function",
        ),
        ("var ok = 1;\n\nfunction (", "line 3"),
        ("a) + (b", "SyntaxError"),
    ] {
        let error = Script::compile(text, origin.clone(), Map::new()).unwrap_err();
        assert!(
            matches!(error, ScriptError::Syntax { .. }),
            "{text}: {error:?}"
        );
        let message = error.to_string();
        assert!(
            message.starts_with("script/broken.js: syntax error"),
            "{message}"
        );
        assert!(message.contains(fragment), "{text}: {message}");
        assert_eq!(error.error_code(), ErrorCode::Config);
    }
}

#[test]
fn compiling_does_not_run_the_script() {
    // If compile ran the code, this would loop forever or throw.
    let script = Script::compile(
        "while (true) {}\nthrow new Error('ran')",
        ScriptOrigin::inline("mapping m onUpdate"),
        Map::new(),
    );
    assert!(script.is_ok());
}

#[test]
fn an_endless_loop_is_stopped_by_the_time_budget() {
    let script = Script::compile(
        "var n = 0; while (true) { n++; }",
        ScriptOrigin::inline("mapping m onCreate"),
        Map::new(),
    )
    .unwrap()
    .with_timeout(Duration::from_millis(200));
    let error = script.eval(&Bindings::new()).unwrap_err();
    assert!(matches!(error, ScriptError::Timeout { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        "mapping m onCreate: script interrupted after its time budget of 200ms"
    );

    // The thread's engine is still usable afterwards, by this script and by others.
    let ok = Script::compile(
        "1 + 1",
        ScriptOrigin::inline("mapping m transform"),
        Map::new(),
    )
    .unwrap();
    assert_eq!(ok.eval(&Bindings::new()).unwrap(), json!(2));
}

#[test]
fn a_loop_inside_catch_cannot_swallow_the_interrupt() {
    let script = Script::compile(
        "for (;;) { try { while (true) {} } catch (e) { } }",
        ScriptOrigin::inline("mapping m onCreate"),
        Map::new(),
    )
    .unwrap()
    .with_timeout(Duration::from_millis(100));
    let error = script.eval(&Bindings::new()).unwrap_err();
    assert!(matches!(error, ScriptError::Timeout { .. }), "{error:?}");
}

#[test]
fn variable_names_that_are_not_identifiers_are_rejected() {
    let script =
        Script::compile("1", ScriptOrigin::inline("mapping m onCreate"), Map::new()).unwrap();
    let value = json!(1);
    for name in ["link-qualifier", "a){evil()}(", "eval", "class", ""] {
        let error = script
            .eval(&Bindings::new().with(name, &value))
            .unwrap_err();
        assert!(
            matches!(error, ScriptError::InvalidName { .. }),
            "{name}: {error:?}"
        );
    }
    let mut globals = Map::new();
    globals.insert("bad name".into(), json!(1));
    let error =
        Script::compile("1", ScriptOrigin::inline("mapping m onCreate"), globals).unwrap_err();
    assert!(
        matches!(error, ScriptError::InvalidName { .. }),
        "{error:?}"
    );
}
