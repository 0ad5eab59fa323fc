//! Many threads at once, and nothing of one call visible in the next.

use std::sync::Arc;

use idsync_script::{Bindings, Script, ScriptError, ScriptOrigin};
use serde_json::{Map, json};

fn compile(source: &str) -> Script {
    Script::compile(
        source,
        ScriptOrigin::inline("mapping test onUpdate"),
        Map::new(),
    )
    .expect("script compiles")
}

#[test]
fn eight_threads_evaluate_with_their_own_bindings() {
    let transform = compile("source.givenName + ' ' + source.sn");
    let general = compile(
        "var n = source.employeeNumber;\nvar doubled = n * 2;\nlinkQualifier + ':' + doubled;",
    );
    let barrier = Arc::new(std::sync::Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|thread| {
            let (transform, general, barrier) = (transform.clone(), general.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                for i in 0..2000 {
                    let n = thread * 100_000 + i;
                    let source = json!({"givenName": format!("G{n}"), "sn": format!("S{n}"), "employeeNumber": n});
                    let qualifier = json!(format!("q{thread}"));
                    let bindings = Bindings::new().with("source", &source).with("linkQualifier", &qualifier);
                    assert_eq!(transform.eval(&bindings).unwrap(), json!(format!("G{n} S{n}")));
                    assert_eq!(general.eval(&bindings).unwrap(), json!(format!("q{thread}:{}", n * 2)));
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
}

#[test]
fn tokio_worker_threads_can_evaluate() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .build()
        .unwrap();
    let script = compile("source.n * 3");
    let results = runtime.block_on(async move {
        let tasks: Vec<_> = (0..64)
            .map(|n| {
                let script = script.clone();
                tokio::spawn(async move {
                    let source = json!({"n": n});
                    script
                        .eval(&Bindings::new().with("source", &source))
                        .unwrap()
                })
            })
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap());
        }
        results
    });
    assert_eq!(results, (0..64).map(|n| json!(n * 3)).collect::<Vec<_>>());
}

#[test]
fn a_binding_of_one_call_is_not_visible_in_the_next() {
    let probe = compile("typeof target === 'undefined' ? 'no target' : target.uid");
    let target = json!({"uid": "t1"});
    let source = json!({"uid": "s1"});
    assert_eq!(
        probe
            .eval(
                &Bindings::new()
                    .with("source", &source)
                    .with("target", &target)
            )
            .unwrap(),
        json!("t1")
    );
    assert_eq!(
        probe
            .eval(&Bindings::new().with("source", &source))
            .unwrap(),
        json!("no target")
    );
}

#[test]
fn declared_and_undeclared_variables_do_not_survive_the_call() {
    let writer =
        compile("var declared = 'kept?';\nundeclared = 'kept?';\nfor (loose in {a: 1}) {}\n1");
    let reader = compile("[typeof declared, typeof undeclared, typeof loose]");
    assert_eq!(writer.eval(&Bindings::new()).unwrap(), json!(1));
    assert_eq!(
        reader.eval(&Bindings::new()).unwrap(),
        json!(["undefined", "undefined", "undefined"])
    );
    // The same script does not see its own earlier assignment either.
    let counter =
        compile("if (typeof count === 'undefined') { count = 0; }\ncount = count + 1;\ncount");
    assert_eq!(counter.eval(&Bindings::new()).unwrap(), json!(1));
    assert_eq!(counter.eval(&Bindings::new()).unwrap(), json!(1));
}

#[test]
fn a_failed_call_leaves_nothing_behind() {
    let failing = compile("leaked = 'x';\nthrow new Error('after the assignment')");
    assert!(matches!(
        failing.eval(&Bindings::new()).unwrap_err(),
        ScriptError::Thrown { .. }
    ));
    assert_eq!(
        compile("typeof leaked").eval(&Bindings::new()).unwrap(),
        json!("undefined")
    );
}

#[test]
fn changes_to_a_bound_object_do_not_reach_the_callers_value_or_the_next_call() {
    let source = json!({"list": [1, 2]});
    let script = compile("source.list.push(3); source.list.length");
    let bindings = Bindings::new().with("source", &source);
    assert_eq!(script.eval(&bindings).unwrap(), json!(3));
    assert_eq!(script.eval(&bindings).unwrap(), json!(3));
    assert_eq!(source, json!({"list": [1, 2]}));
}

#[test]
fn scripts_and_errors_cross_threads() {
    fn shareable<T: Send + Sync + Clone + 'static>() {}
    shareable::<Script>();
    shareable::<ScriptError>();
    shareable::<ScriptOrigin>();
}
