//! What scripts return: transforms, conditions, the last-expression rule, globals, captured
//! variables of hooks, and JSON conversion of results.

use idsync_script::{Bindings, Script, ScriptError, ScriptOrigin};
use serde_json::{Map, Value, json};

fn compile(source: &str) -> Script {
    Script::compile(
        source,
        ScriptOrigin::inline("mapping test property /x transform"),
        Map::new(),
    )
    .expect("script compiles")
}

fn person() -> Value {
    json!({
        "_id": "u1", "uid": "ada", "givenName": "Ada", "sn": "Lovelace",
        "mail": "Ada@Example.com", "department": "Engineering", "employeeNumber": 1815,
        "active": true, "phones": ["+44 1", "+44 2"], "manager": {"_id": "u0", "sn": "Babbage"}
    })
}

#[test]
fn transform_joins_two_attributes() {
    let source = person();
    let script = compile("source.givenName + ' ' + source.sn");
    assert_eq!(
        script
            .eval(&Bindings::new().with("source", &source))
            .unwrap(),
        json!("Ada Lovelace")
    );
}

#[test]
fn transform_of_a_single_value_as_idm_binds_it() {
    // A property mapping with `"source": "mail"` binds `source` to that value, not the object.
    let mail = json!("Ada@Example.com");
    let script = compile("source.toLowerCase();");
    assert_eq!(
        script.eval(&Bindings::new().with("source", &mail)).unwrap(),
        json!("ada@example.com")
    );
}

#[test]
fn condition_returns_a_boolean() {
    let object = person();
    let script = compile("object.active === true && object.department == 'Engineering'");
    let bindings = Bindings::new()
        .with("object", &object)
        .with_owned("linkQualifier", json!("default"));
    assert!(script.eval_bool(&bindings).unwrap());
    let inactive = json!({"active": false, "department": "Engineering"});
    assert!(
        !script
            .eval_bool(&Bindings::new().with("object", &inactive))
            .unwrap()
    );
}

#[test]
fn eval_bool_rejects_a_non_boolean_result() {
    let source = person();
    let script = compile("source.sn");
    let error = script
        .eval_bool(&Bindings::new().with("source", &source))
        .unwrap_err();
    assert!(matches!(error, ScriptError::NotBoolean { .. }), "{error}");
    assert_eq!(
        error.to_string(),
        "mapping test property /x transform: script must return a boolean, returned \"Lovelace\""
    );
}

#[test]
fn the_value_is_the_last_expression_statement() {
    let source = person();
    let bindings = Bindings::new().with("source", &source);
    let cases = [
        (
            "var first = source.givenName;\nvar last = source.sn;\nfirst.charAt(0) + last;",
            json!("ALovelace"),
        ),
        (
            "var n = 0;\nfor (var i = 0; i < source.phones.length; i++) { n++; }\nn;",
            json!(2),
        ),
        ("if (source.active) { 'yes' } else { 'no' }", json!("yes")),
        (
            "function initials(o) { return o.givenName[0] + o.sn[0]; }\ninitials(source);",
            json!("AL"),
        ),
        ("var x = source.sn;", Value::Null),
        ("", Value::Null),
        ("// only a comment", Value::Null),
        ("undefined", Value::Null),
        (
            "({cn: source.givenName, tags: [1, 'two', null]})",
            json!({"cn": "Ada", "tags": [1, "two", null]}),
        ),
        ("{ cn: 1 }", json!(1)),
        ("/* a block, not an object */ { cn: 1 }", json!(1)),
        ("function declared() { return 1; }", Value::Null),
        ("class Declared {}", Value::Null),
        ("source.sn;;\n", json!("Lovelace")),
        ("source.sn // trailing comment", json!("Lovelace")),
        ("'use strict'; source.sn", json!("Lovelace")),
        (
            "[9007199254740991, 3000000000, -0.5, 1e300]",
            json!([9007199254740991_i64, 3000000000_i64, -0.5, 1e300]),
        ),
        ("source.employeeNumber / 2", json!(907.5)),
        ("source.employeeNumber * 2", json!(3630)),
        ("new Date(0)", json!("1970-01-01T00:00:00.000Z")),
        ("[1, undefined, function () {}]", json!([1, null, null])),
        ("({a: undefined, b: NaN})", json!({"b": null})),
        ("source.manager", json!({"_id": "u0", "sn": "Babbage"})),
        ("source", person()),
    ];
    for (text, expected) in cases {
        assert_eq!(compile(text).eval(&bindings).unwrap(), expected, "{text}");
    }
}

#[test]
fn a_function_result_is_not_json() {
    let error = compile("(function () {})")
        .eval(&Bindings::new())
        .unwrap_err();
    assert!(matches!(error, ScriptError::NotJson { .. }), "{error}");
    let error = compile("var o = {}; o.self = o; o")
        .eval(&Bindings::new())
        .unwrap_err();
    assert!(matches!(error, ScriptError::NotJson { .. }), "{error}");
    let error = compile("10n").eval(&Bindings::new()).unwrap_err();
    assert!(matches!(error, ScriptError::NotJson { .. }), "{error}");
}

#[test]
fn globals_are_variables_and_bindings_replace_them() {
    let mut globals = Map::new();
    globals.insert("domain".into(), json!("example.com"));
    globals.insert("suffixes".into(), json!({"eng": "-e"}));
    let script = Script::compile(
        "source.uid + suffixes[source.department == 'Engineering' ? 'eng' : 'x'] + '@' + domain",
        ScriptOrigin::inline("mapping test property /mail transform"),
        globals,
    )
    .unwrap();
    let source = person();
    assert_eq!(
        script
            .eval(&Bindings::new().with("source", &source))
            .unwrap(),
        json!("ada-e@example.com")
    );
    let bindings = Bindings::new()
        .with("source", &source)
        .with_owned("domain", json!("corp.test"));
    assert_eq!(script.eval(&bindings).unwrap(), json!("ada-e@corp.test"));
}

#[test]
fn a_global_changed_by_one_call_is_fresh_in_the_next() {
    let mut globals = Map::new();
    globals.insert("seen".into(), json!([]));
    let script = Script::compile(
        "seen.push(source); seen.length",
        ScriptOrigin::inline("mapping test onCreate"),
        globals,
    )
    .unwrap();
    for value in ["a", "b", "c"] {
        let source = json!(value);
        assert_eq!(
            script
                .eval(&Bindings::new().with("source", &source))
                .unwrap(),
            json!(1)
        );
    }
}

#[test]
fn hooks_return_the_changed_target() {
    let source = person();
    let target = json!({"uid": "ada"});
    let script =
        compile("target.mail = source.mail.toLowerCase();\ntarget.description = 'created';");
    let bindings = Bindings::new()
        .with("source", &source)
        .with("target", &target);
    let (value, captured) = script.eval_capturing(&bindings, &["target"]).unwrap();
    assert_eq!(value, json!("created"));
    assert_eq!(
        captured,
        vec![json!({"uid": "ada", "mail": "ada@example.com", "description": "created"})]
    );

    // Reassigning the variable is captured too, and a single-expression script works as well.
    let reassign = compile("target = {replaced: source.sn}");
    let (_, captured) = reassign
        .eval_capturing(&bindings, &["target", "source"])
        .unwrap();
    assert_eq!(captured[0], json!({"replaced": "Lovelace"}));
    assert_eq!(
        captured[1], source,
        "an unchanged variable comes back whole"
    );
}

#[test]
fn console_log_does_not_disturb_the_result() {
    let source = person();
    let script =
        compile("console.log('mapping', source.uid, {n: 1}); console.warn('w'); source.sn");
    assert_eq!(
        script
            .eval(&Bindings::new().with("source", &source))
            .unwrap(),
        json!("Lovelace")
    );
}

#[test]
fn a_script_compiled_on_one_thread_runs_on_another() {
    let script = compile("source.sn + '!'");
    let handle = std::thread::spawn(move || {
        let source = person();
        script
            .eval(&Bindings::new().with("source", &source))
            .unwrap()
    });
    assert_eq!(handle.join().unwrap(), json!("Lovelace!"));
}

#[test]
fn the_same_script_with_different_variable_sets() {
    let source = person();
    let script =
        compile("typeof target == 'undefined' ? source.uid : target.uid + '/' + source.uid");
    assert_eq!(
        script
            .eval(&Bindings::new().with("source", &source))
            .unwrap(),
        json!("ada")
    );
    let target = json!({"uid": "t"});
    let both = Bindings::new()
        .with("target", &target)
        .with("source", &source);
    assert_eq!(script.eval(&both).unwrap(), json!("t/ada"));
}

#[test]
fn unusual_keys_are_plain_properties() {
    let source = json!({"__proto__": {"polluted": true}, "a-b": 1, "": 2});
    let script = compile(
        "[source['a-b'], source[''], source.polluted === undefined, Object.keys(source).length]",
    );
    assert_eq!(
        script
            .eval(&Bindings::new().with("source", &source))
            .unwrap(),
        json!([1, 2, true, 3])
    );
}
