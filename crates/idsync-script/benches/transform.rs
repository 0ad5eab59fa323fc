//! Per-call cost of script evaluation (target: ≤ 2 µs per transform call, BENCHMARKS.md).
//! Run: `cargo bench -p idsync-script` (prints ns/call per case; no timing assertions).

use std::hint::black_box;
use std::time::Instant;

use idsync_script::{Bindings, Script, ScriptOrigin};
use serde_json::{Value, json};

const CALLS: u32 = 500_000;

fn source_object(i: u32) -> Value {
    json!({
        "_id": format!("u{i:07}"),
        "uid": format!("user{i}"),
        "givenName": "Ada",
        "sn": format!("Lovelace{i}"),
        "mail": format!("user{i}@example.com"),
        "telephoneNumber": "+44 20 7946 0000",
        "department": "Engineering",
        "employeeNumber": i,
        "title": "Analyst",
        "active": true
    })
}

fn measure(name: &str, script: &Script, variable: &str, objects: &[Value]) -> f64 {
    // Warm up: the first call on a thread compiles the script into that thread's engine.
    for object in objects.iter().take(1000) {
        black_box(
            script
                .eval(&Bindings::new().with(variable, object))
                .expect("script runs"),
        );
    }
    let started = Instant::now();
    for i in 0..CALLS {
        let object = &objects[i as usize % objects.len()];
        black_box(
            script
                .eval(&Bindings::new().with(variable, object))
                .expect("script runs"),
        );
    }
    let ns = started.elapsed().as_nanos() as f64 / f64::from(CALLS);
    println!("{name:<58} {ns:>8.0} ns/call  ({:.0}k calls/s)", 1e6 / ns);
    ns
}

fn compile(source: &str) -> Script {
    Script::compile(source, ScriptOrigin::inline("bench"), Default::default()).expect("compiles")
}

fn main() {
    let objects: Vec<Value> = (0..1024).map(source_object).collect();
    println!("idsync-script benchmark: {CALLS} calls per case, 10-attribute source object");

    measure(
        "transform source.givenName + ' ' + source.sn",
        &compile("source.givenName + ' ' + source.sn"),
        "source",
        &objects,
    );
    measure(
        "same, whole object converted (source['givenName'] ...)",
        &compile("source['givenName'] + ' ' + source['sn']"),
        "source",
        &objects,
    );
    measure(
        "multi-statement script (direct eval path)",
        &compile("var name = source.givenName;\nname + ' ' + source.sn;"),
        "source",
        &objects,
    );
    measure(
        "condition object.active === true && object.department == 'Engineering'",
        &compile("object.active === true && object.department == 'Engineering'"),
        "object",
        &objects,
    );
    measure(
        "identity (returns the whole 10-attribute object)",
        &compile("source"),
        "source",
        &objects,
    );

    // Two threads (the machine has 2 cores): each thread has its own engine.
    let script = compile("source.givenName + ' ' + source.sn");
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..2 {
            let script = script.clone();
            let objects = &objects;
            scope.spawn(move || {
                for i in 0..CALLS {
                    let object = &objects[i as usize % objects.len()];
                    let bindings = Bindings::new().with("source", object);
                    black_box(script.eval(&bindings).expect("script runs"));
                }
            });
        }
    });
    let total = started.elapsed().as_secs_f64();
    println!(
        "{:<58} {:>8.0} ns/call  ({:.0}k calls/s overall)",
        "transform on 2 threads at once",
        total * 1e9 / f64::from(CALLS),
        2.0 * f64::from(CALLS) / total / 1e3
    );
}
