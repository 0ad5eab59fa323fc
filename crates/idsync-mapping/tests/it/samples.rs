//! The shipped samples, loaded by the real config loader and compiled here: the contract
//! between idsync-config's typed mapping and this crate, on the acceptance scenarios.

use idsync_core::{Action, Situation};
use idsync_mapping::{
    CompiledMapping, Correlation, DecisionContext, HookContext, SourceFacts, SourceLink,
    assess_source,
};
use serde_json::json;
use std::path::PathBuf;

fn load(sample: &str) -> idsync_config::Project {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../samples")
        .join(sample);
    idsync_config::load_project(&dir, &|_| None)
        .unwrap_or_else(|d| panic!("{sample}: {d:?}"))
        .project
}

/// getting-started: Barbara Jensen from hr.csv becomes the engineering account the README shows.
#[test]
fn getting_started_creates_the_engineering_account() {
    let project = load("getting-started");
    let m = CompiledMapping::build(&project.mappings[0]).unwrap();
    let barbara = json!({"_id": "BJENSEN", "firstName": "Barbara", "uid": "BJENSEN",
        "lastName": "Jensen", "email": "bjensen@example.com", "employeeNumber": "123456"});

    assert!(m.source_qualifies(&barbara, "default").unwrap());
    assert_eq!(
        m.correlation(&barbara, "default").unwrap(),
        Some(Correlation::Query(
            r#"name eq "bjensen@example.com""#.parse().unwrap()
        ))
    );
    let a = assess_source(&SourceFacts {
        qualifies: true,
        link: SourceLink::Unlinked(idsync_mapping::CorrelationOutcome::None),
    });
    assert_eq!(a.situation, Situation::Absent);
    let d = m
        .decide(
            a.situation,
            &DecisionContext {
                source: Some(&barbara),
                link_qualifier: "default",
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!((d.action, d.policy), (Action::Create, Some(2)));

    let ctx = HookContext {
        situation: Some(a.situation),
        link_qualifier: "default",
        ..Default::default()
    };
    let created = m.prepare_create(&barbara, &ctx).unwrap();
    assert_eq!(
        created,
        json!({"name": "bjensen@example.com", "lastname": "Jensen", "firstname": "Barbara",
            "email": "bjensen@example.com", "roles": "openidm-authorized", "telephoneNumber": "N/A"})
    );
    // UNQUALIFIED is IGNORE in this sample, not the default DELETE.
    let d = m
        .decide(Situation::Unqualified, &DecisionContext::default())
        .unwrap();
    assert_eq!(d.action, Action::Ignore);
}

#[test]
fn hr_to_managed_updates_only_changed_users() {
    let project = load("hr-to-managed");
    let m = CompiledMapping::build(&project.mappings[0]).unwrap();
    let src = json!({"_id": "u1", "userName": "ada", "givenName": "Ada", "sn": "Lovelace",
        "mail": "ada@example.com", "employeeNumber": "1", "department": "eng",
        "telephoneNumber": null, "city": "London", "accountStatus": "active"});
    let ctx = HookContext {
        link_qualifier: "default",
        ..Default::default()
    };
    let mut current = m.prepare_create(&src, &ctx).unwrap();
    assert_eq!(current["_id"], json!("u1"));
    current["_rev"] = json!("1");
    assert!(!m.prepare_update(&src, &current, &ctx).unwrap().changed);
    let mut moved = src.clone();
    moved["city"] = json!("Paris");
    let plan = m.prepare_update(&moved, &current, &ctx).unwrap();
    assert!(plan.changed);
    assert_eq!(
        serde_json::to_value(&plan.diff).unwrap(),
        json!([{"operation": "replace", "field": "/city", "oldValue": "London", "value": "Paris"}])
    );
}
