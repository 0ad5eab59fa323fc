//! Building a compiled mapping: every script once, syntax errors at build naming the place.

use crate::support::{mapping, script, script_at};
use idsync_config::{ActionSpec, Condition, Policy, PropertyMapping};
use idsync_core::{Action, ErrorCode, HasErrorCode, JsonPointer, Situation};
use idsync_mapping::CompiledMapping;
use std::sync::Arc;

type Setter = Box<dyn Fn(&mut idsync_config::Mapping)>;

#[test]
fn syntax_errors_are_reported_at_build_with_mapping_and_place() {
    let broken = || script_at("function (", "conf/sync.json /mappings/0/x");
    let cases: Vec<(&str, Setter)> = vec![
        (
            "validSource",
            Box::new(move |m| m.valid_source = Some(broken())),
        ),
        (
            "validTarget",
            Box::new(move |m| m.valid_target = Some(broken())),
        ),
        (
            "sourceCondition",
            Box::new(move |m| m.source_condition = Some(Condition::Script(broken()))),
        ),
        ("onCreate", Box::new(move |m| m.on_create = Some(broken()))),
        ("onUpdate", Box::new(move |m| m.on_update = Some(broken()))),
        ("onDelete", Box::new(move |m| m.on_delete = Some(broken()))),
        ("onLink", Box::new(move |m| m.on_link = Some(broken()))),
        ("onUnlink", Box::new(move |m| m.on_unlink = Some(broken()))),
        ("result", Box::new(move |m| m.result = Some(broken()))),
        (
            "linkQualifiers",
            Box::new(move |m| m.link_qualifiers = idsync_config::LinkQualifiers::Script(broken())),
        ),
        (
            "correlationScript",
            Box::new(move |m| m.correlation = Some(idsync_config::Correlation::Script(broken()))),
        ),
        (
            "property /mail transform",
            Box::new(move |m| {
                m.properties = vec![PropertyMapping {
                    target: JsonPointer::parse("mail"),
                    source: None,
                    transform: Some(broken()),
                    condition: None,
                    default: None,
                }]
            }),
        ),
        (
            "policy 1 (FOUND) postAction",
            Box::new(move |m| {
                let ok = Policy {
                    situation: Situation::Absent,
                    action: ActionSpec::Name(Action::Create),
                    condition: None,
                    post_action: None,
                };
                m.policies = vec![
                    ok.clone(),
                    Policy {
                        situation: Situation::Found,
                        post_action: Some(broken()),
                        ..ok
                    },
                ]
            }),
        ),
        (
            "policy 0 (ABSENT) action",
            Box::new(move |m| {
                m.policies = vec![Policy {
                    situation: Situation::Absent,
                    action: ActionSpec::Script(broken()),
                    condition: None,
                    post_action: None,
                }]
            }),
        ),
    ];
    for (place, set) in cases {
        let mut m = mapping("hr_user");
        set(&mut m);
        let err = CompiledMapping::build(&m).unwrap_err();
        assert_eq!(err.error_code(), ErrorCode::Config, "{place}");
        let text = err.to_string();
        assert!(
            text.contains(&format!("mapping hr_user {place}")),
            "{place}: {text}"
        );
        assert!(
            text.contains("conf/sync.json /mappings/0/x"),
            "{place}: {text}"
        );
    }
}

#[test]
fn a_compiled_mapping_is_shared_across_threads() {
    let mut m = mapping("m");
    m.valid_source = Some(script("source.n % 2 === 0"));
    let m = Arc::new(CompiledMapping::build(&m).unwrap());
    assert_eq!(m.name(), "m");
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let m = Arc::clone(&m);
            std::thread::spawn(move || {
                (0..200).all(|i| {
                    let n = t * 1000 + i;
                    m.valid_source(&serde_json::json!({"n": n}), "default")
                        .unwrap()
                        == (n % 2 == 0)
                })
            })
        })
        .collect();
    for h in handles {
        assert!(h.join().unwrap());
    }
}
