//! A project folder written here and loaded by the real config loader: qualifiers, qualification,
//! policies with conditions, action scripts and postActions, and hooks, as IDM users write them.

use idsync_core::{Action, Situation};
use idsync_mapping::{CompiledMapping, DecisionContext, HookContext};
use serde_json::json;
use std::path::Path;

const SYNC: &str = r#"{
  "mappings": [{
    "name": "hr_user",
    "source": "system/hr/account",
    "target": "managed/user",
    "comment": "unknown keys are ignored",
    "linkQualifiers": {"type": "text/javascript",
      "source": "returnAll ? ['employee', 'contractor'] : [object.kind]"},
    "validSource": {"type": "text/javascript", "source": "source.userName != null"},
    "sourceCondition": "/source/accountStatus eq \"active\"",
    "correlationQuery": [
      {"linkQualifier": "employee", "type": "text/javascript",
       "source": "({_queryFilter: 'userName eq \"' + source.userName + '\"'})"}
    ],
    "properties": [
      {"source": "userName", "target": "userName"},
      {"source": "mail", "target": "mail", "condition": "/linkQualifier eq \"employee\""},
      {"target": "kind", "transform": {"type": "text/javascript", "source": "linkQualifier + ':' + source.userName"}}
    ],
    "onCreate": {"type": "text/javascript", "source": "target.createdBy = prefix + situation;", "prefix": "idsync-"},
    "policies": [
      {"situation": "ABSENT", "action": "IGNORE", "condition": "/linkQualifier eq \"contractor\""},
      {"situation": "ABSENT", "action": "CREATE",
       "postAction": {"type": "text/javascript", "source": "if (action !== 'CREATE') { throw new Error('bad') }"}},
      {"situation": "UNQUALIFIED", "action": {"type": "text/javascript",
       "source": "sourceAction ? 'UNLINK' : decision", "decision": "REPORT"}}
    ]
  }]
}"#;

fn project(dir: &Path) -> idsync_config::Project {
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples/hr-to-managed");
    std::fs::create_dir_all(dir.join("conf")).unwrap();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    for f in [
        "conf/managed.json",
        "conf/provisioner.openicf-hr.json",
        "data/hr.csv",
    ] {
        std::fs::copy(samples.join(f), dir.join(f)).unwrap();
    }
    std::fs::write(dir.join("conf/sync.json"), SYNC).unwrap();
    idsync_config::load_project(dir, &|_| None)
        .unwrap_or_else(|d| panic!("{d:?}"))
        .project
}

#[test]
fn a_project_mapping_behaves_as_written() {
    let tmp = tempfile::tempdir().unwrap();
    let project = project(tmp.path());
    let m = CompiledMapping::build(project.mapping("hr_user").unwrap()).unwrap();

    let ada = json!({"_id": "1", "userName": "ada", "mail": "ada@x", "kind": "employee",
        "accountStatus": "active"});
    assert_eq!(
        m.link_qualifiers(None, None, true).unwrap(),
        ["employee", "contractor"]
    );
    assert_eq!(
        m.link_qualifiers(Some(&ada), None, false).unwrap(),
        ["employee"]
    );

    assert!(m.source_qualifies(&ada, "employee").unwrap());
    let mut inactive = ada.clone();
    inactive["accountStatus"] = json!("disabled");
    assert!(!m.source_qualifies(&inactive, "employee").unwrap());
    assert!(m.valid_source(&inactive, "employee").unwrap());

    assert!(m.has_correlation("employee"));
    assert!(!m.has_correlation("contractor"));

    let ctx = |q| DecisionContext {
        source: Some(&ada),
        link_qualifier: q,
        source_action: true,
        ..Default::default()
    };
    let d = m.decide(Situation::Absent, &ctx("contractor")).unwrap();
    assert_eq!((d.action, d.policy), (Action::Ignore, Some(0)));
    let d = m.decide(Situation::Absent, &ctx("employee")).unwrap();
    assert_eq!((d.action, d.policy), (Action::Create, Some(1)));
    assert!(m.post_action(&d, &ctx("employee")).unwrap());

    // The action script's extra key is a variable.
    let d = m.decide(Situation::Unqualified, &ctx("employee")).unwrap();
    assert_eq!(d.action, Action::Unlink);
    let target_phase = DecisionContext {
        source_action: false,
        ..ctx("employee")
    };
    assert_eq!(
        m.decide(Situation::Unqualified, &target_phase)
            .unwrap()
            .action,
        Action::Report
    );

    let hook = |q| HookContext {
        situation: Some(Situation::Absent),
        link_qualifier: q,
        ..Default::default()
    };
    assert_eq!(
        m.prepare_create(&ada, &hook("employee")).unwrap(),
        json!({"userName": "ada", "mail": "ada@x", "kind": "employee:ada", "createdBy": "idsync-ABSENT"})
    );
    assert_eq!(
        m.prepare_create(&ada, &hook("contractor")).unwrap(),
        json!({"userName": "ada", "kind": "contractor:ada", "createdBy": "idsync-ABSENT"})
    );
}
