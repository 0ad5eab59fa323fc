//! Per-object cost of the mapping engine on a 10-attribute source: property mapping for CREATE
//! (10 properties: 6 copies, 2 transforms, 1 default, 1 filter condition), UPDATE preparation
//! with the deep compare, qualification (validSource script + sourceCondition filter), and
//! assessment + policy decision. Run: `cargo bench -p idsync-mapping`. Prints ns per object.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark binary, not library code

use idsync_config::{
    ActionSpec, Condition, LinkQualifiers, Mapping, Policy, PropertyMapping, ScriptSpec,
};
use idsync_core::{Action, JsonPointer, ResourcePath, Situation};
use idsync_mapping::{
    CompiledMapping, DecisionContext, HookContext, SourceFacts, SourceLink, assess_source,
};
use serde_json::{Map, Value, json};
use std::hint::black_box;
use std::time::Instant;

fn script(source: &str) -> ScriptSpec {
    ScriptSpec {
        source: source.into(),
        file: None,
        globals: Map::new(),
        origin: "bench".into(),
    }
}

fn prop(target: &str, source: Option<&str>) -> PropertyMapping {
    PropertyMapping {
        target: JsonPointer::parse(target),
        source: source.map(JsonPointer::parse),
        transform: None,
        condition: None,
        default: None,
    }
}

fn mapping() -> Mapping {
    let mut props: Vec<PropertyMapping> = ["uid", "givenName", "sn", "mail", "title", "dept"]
        .iter()
        .map(|f| prop(&format!("/{f}"), Some(f)))
        .collect();
    let mut cn = prop("/cn", None);
    cn.transform = Some(script("source.givenName + ' ' + source.sn"));
    let mut lower = prop("/userName", Some("uid"));
    lower.transform = Some(script("source.toLowerCase()"));
    let mut status = prop("/status", Some("state"));
    status.default = Some(json!("active"));
    let mut phone = prop("/phone", Some("phone"));
    phone.condition = Some(Condition::Filter(
        "/object/phone pr".parse().unwrap(),
        "/object/phone pr".into(),
    ));
    props.extend([cn, lower, status, phone]);
    Mapping {
        name: "bench".into(),
        source: ResourcePath::parse("system/hr/account").unwrap(),
        source_str: "system/hr/account".into(),
        target: ResourcePath::parse("managed/user").unwrap(),
        target_str: "managed/user".into(),
        links: None,
        enable_sync: true,
        enable_linking: true,
        source_ids_case_sensitive: true,
        target_ids_case_sensitive: true,
        valid_source: Some(script("source.uid !== null")),
        valid_target: None,
        source_condition: Some(Condition::Filter(
            "/source/dept pr".parse().unwrap(),
            "/source/dept pr".into(),
        )),
        correlation: None,
        link_qualifiers: LinkQualifiers::default(),
        properties: props,
        policies: vec![Policy {
            situation: Situation::Confirmed,
            action: ActionSpec::Name(Action::Update),
            condition: Some(Condition::Filter(
                "/linkQualifier eq \"default\"".parse().unwrap(),
                String::new(),
            )),
            post_action: None,
        }],
        on_create: None,
        on_update: None,
        on_delete: None,
        on_link: None,
        on_unlink: None,
        result: None,
        task_threads: 10,
        feed_size: 1000,
        prefetch_links: true,
        correlate_empty_target_set: false,
        source_query: None,
        target_query: None,
        source_query_full_entry: None,
        target_query_full_entry: None,
        allow_empty_source_set: false,
        run_target_phase: None,
        recon_source_query_paging: false,
        recon_source_query_page_size: None,
        recon_target_query_paging: false,
        recon_target_query_page_size: None,
        clustered_source_recon_enabled: false,
        queued_sync: None,
        trigger_sync_properties: None,
        safety: None,
        recon_association: None,
        sync_after: vec![],
        raw: json!({"name": "bench"}),
    }
}

fn source(i: usize) -> Value {
    json!({
        "_id": format!("{i}"), "uid": format!("U{i}"), "givenName": "Ada", "sn": format!("Lovelace{i}"),
        "mail": format!("u{i}@example.com"), "title": "Engineer", "dept": "eng",
        "phone": "+1 555 0100", "city": "London", "state": null,
    })
}

fn measure(name: &str, n: usize, mut f: impl FnMut(usize)) {
    for i in 0..n / 10 {
        f(i);
    }
    let start = Instant::now();
    for i in 0..n {
        f(i);
    }
    let ns = start.elapsed().as_nanos() as f64 / n as f64;
    println!(
        "{name:<44} {ns:>9.0} ns/object  ({:.0} objects/s)",
        1e9 / ns
    );
}

fn main() {
    let m = CompiledMapping::build(&mapping()).unwrap();
    let n = 100_000;
    let sources: Vec<Value> = (0..1000).map(source).collect();
    let ctx = HookContext {
        link_qualifier: "default",
        ..Default::default()
    };
    let targets: Vec<Value> = sources
        .iter()
        .map(|s| m.prepare_create(s, &ctx).unwrap())
        .collect();

    measure("prepare_create (10 properties)", n, |i| {
        black_box(m.prepare_create(&sources[i % 1000], &ctx).unwrap());
    });
    measure("prepare_update, unchanged", n, |i| {
        let plan = m
            .prepare_update(&sources[i % 1000], &targets[i % 1000], &ctx)
            .unwrap();
        assert!(!plan.changed);
    });
    measure("prepare_update, changed (diff built)", n, |i| {
        let plan = m
            .prepare_update(&sources[(i + 1) % 1000], &targets[i % 1000], &ctx)
            .unwrap();
        assert!(plan.changed);
    });
    measure("source_qualifies (script + filter)", n, |i| {
        assert!(m.source_qualifies(&sources[i % 1000], "default").unwrap());
    });
    measure("assess_source + decide (filter condition)", n, |i| {
        let facts = SourceFacts {
            qualifies: true,
            link: SourceLink::Linked {
                target_id: format!("{i}"),
                target_exists: true,
            },
        };
        let a = assess_source(&facts);
        let c = DecisionContext {
            source: Some(&sources[i % 1000]),
            link_qualifier: "default",
            ..Default::default()
        };
        black_box(m.decide(a.situation, &c).unwrap());
    });
}
