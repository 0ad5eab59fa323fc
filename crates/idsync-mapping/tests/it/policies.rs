//! Policies (docs/configuration.md#mappings), mirroring IDM's PolicyTest plus the default-action and postAction
//! rules.

use crate::support::{filter, mapping, script, script_condition, script_with_globals};
use idsync_config::{ActionSpec, Condition, Policy, ScriptSpec};
use idsync_core::{Action, ErrorCode, HasErrorCode, Situation};
use idsync_mapping::{CompiledMapping, Decision, DecisionContext, MappingError};
use serde_json::{Value, json};

fn policy(situation: Situation, action: Action, condition: Option<Condition>) -> Policy {
    Policy {
        situation,
        action: ActionSpec::Name(action),
        condition,
        post_action: None,
    }
}

fn scripted(situation: Situation, action: ScriptSpec) -> Policy {
    Policy {
        situation,
        action: ActionSpec::Script(action),
        condition: None,
        post_action: None,
    }
}

fn build(policies: Vec<Policy>) -> CompiledMapping {
    let mut m = mapping("hr_user");
    m.policies = policies;
    CompiledMapping::build(&m).unwrap()
}

fn ctx<'a>(source: Option<&'a Value>, q: &'a str) -> DecisionContext<'a> {
    DecisionContext {
        source,
        link_qualifier: q,
        source_action: true,
        ..Default::default()
    }
}

#[test]
fn no_policy_means_the_default_action_of_every_situation() {
    let m = build(vec![]);
    for s in Situation::ALL {
        let d = m.decide(s, &ctx(None, "default")).unwrap();
        assert_eq!(
            d,
            Decision {
                situation: s,
                action: s.default_action(),
                policy: None
            }
        );
    }
}

/// PolicyTest: two ABSENT policies distinguished by linkQualifier conditions; the first whose
/// condition holds wins.
#[test]
fn first_matching_policy_of_the_situation_wins() {
    let m = build(vec![
        policy(Situation::Confirmed, Action::Ignore, None),
        policy(
            Situation::Absent,
            Action::Ignore,
            Some(filter(r#"/linkQualifier eq "user""#)),
        ),
        policy(
            Situation::Absent,
            Action::Report,
            Some(filter(r#"/linkQualifier eq "test""#)),
        ),
        policy(
            Situation::Absent,
            Action::Noreport,
            Some(filter(r#"/linkQualifier eq "test""#)),
        ),
    ]);
    let src = json!({"_id": "1"});
    let d = m
        .decide(Situation::Absent, &ctx(Some(&src), "user"))
        .unwrap();
    assert_eq!((d.action, d.policy), (Action::Ignore, Some(1)));
    let d = m
        .decide(Situation::Absent, &ctx(Some(&src), "test"))
        .unwrap();
    assert_eq!((d.action, d.policy), (Action::Report, Some(2)));
    // No condition holds: the default applies.
    let d = m
        .decide(Situation::Absent, &ctx(Some(&src), "other"))
        .unwrap();
    assert_eq!((d.action, d.policy), (Action::Create, None));
    let d = m
        .decide(Situation::Confirmed, &ctx(Some(&src), "other"))
        .unwrap();
    assert_eq!((d.action, d.policy), (Action::Ignore, Some(0)));
}

#[test]
fn policy_condition_sees_object_and_null_without_source() {
    let m = build(vec![
        policy(
            Situation::Found,
            Action::Link,
            Some(filter(r#"/object/dept eq "eng""#)),
        ),
        policy(
            Situation::Found,
            Action::Ignore,
            Some(script_condition("object === null")),
        ),
    ]);
    let eng = json!({"dept": "eng"});
    let ops = json!({"dept": "ops"});
    assert_eq!(
        m.decide(Situation::Found, &ctx(Some(&eng), "default"))
            .unwrap()
            .action,
        Action::Link
    );
    assert_eq!(
        m.decide(Situation::Found, &ctx(Some(&ops), "default"))
            .unwrap()
            .action,
        Action::Update
    );
    assert_eq!(
        m.decide(Situation::Found, &ctx(None, "default"))
            .unwrap()
            .action,
        Action::Ignore
    );
}

#[test]
fn action_script_sees_its_scope_and_globals() {
    let m = build(vec![scripted(
        Situation::Ambiguous,
        script_with_globals(
            "if (workflowName !== 'wf' || !sourceAction) { 'EXCEPTION' } \
             else if (recon.actionParam._action === 'performAction' \
                      && recon.actionParam.reconId === 'r1' \
                      && recon.actionParam.situation === 'AMBIGUOUS' \
                      && recon.actionParam.ambiguousTargetIds.length === 2 \
                      && source.n === 1 && target === null && linkQualifier === 'emp') { 'ASYNC' } \
             else { 'IGNORE' }",
            json!({"workflowName": "wf"}),
        ),
    )]);
    let src = json!({"n": 1});
    let ambiguous = vec!["a".to_string(), "b".to_string()];
    let c = DecisionContext {
        source: Some(&src),
        target: None,
        link_qualifier: "emp",
        source_action: true,
        recon_id: Some("r1"),
        source_id: Some("s1"),
        target_id: None,
        ambiguous_target_ids: &ambiguous,
    };
    let d = m.decide(Situation::Ambiguous, &c).unwrap();
    assert_eq!((d.action, d.policy), (Action::Async, Some(0)));
    let d = m
        .decide(
            Situation::Ambiguous,
            &DecisionContext {
                source_action: false,
                ..c
            },
        )
        .unwrap();
    assert_eq!(d.action, Action::Exception);
}

#[test]
fn action_script_must_return_an_action_name() {
    for bad in ["null", "'create'", "'NOPE'", "42"] {
        let m = build(vec![scripted(Situation::Missing, script(bad))]);
        let err = m
            .decide(Situation::Missing, &ctx(None, "default"))
            .unwrap_err();
        assert!(
            matches!(err, MappingError::InvalidAction { index: 0, .. }),
            "{bad}: {err:?}"
        );
        assert_eq!(err.error_code(), ErrorCode::Script);
        assert!(
            err.to_string()
                .contains("mapping hr_user policy 0 (MISSING)"),
            "{err}"
        );
    }
}

fn with_post(
    situation: Situation,
    action: Action,
    condition: Option<Condition>,
    post: &str,
) -> Policy {
    Policy {
        post_action: Some(script(post)),
        ..policy(situation, action, condition)
    }
}

/// The postAction throws its scope so the test can read what it saw.
const ECHO: &str = "throw new Error('SCOPE ' + [source && source.id, target && target.id, action, \
                    sourceAction, linkQualifier, reconId, situation].join('|'))";

#[test]
fn post_action_runs_with_its_scope() {
    let m = build(vec![with_post(
        Situation::Absent,
        Action::Create,
        None,
        ECHO,
    )]);
    let src = json!({"id": "s1"});
    let tgt = json!({"id": "t1"});
    let c = DecisionContext {
        source: Some(&src),
        target: Some(&tgt),
        link_qualifier: "emp",
        source_action: true,
        recon_id: Some("r9"),
        ..Default::default()
    };
    let d = m.decide(Situation::Absent, &c).unwrap();
    let err = m.post_action(&d, &c).unwrap_err();
    assert!(
        err.to_string()
            .contains("SCOPE s1|t1|CREATE|true|emp|r9|ABSENT"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("mapping hr_user policy 0 (ABSENT) postAction"),
        "{err}"
    );
}

#[test]
fn post_action_runs_only_for_actions_that_have_one() {
    for action in Action::ALL {
        let m = build(vec![with_post(Situation::Confirmed, action, None, "true")]);
        let d = m
            .decide(Situation::Confirmed, &ctx(None, "default"))
            .unwrap();
        assert_eq!(d.action, action);
        assert_eq!(
            m.post_action(&d, &ctx(None, "default")).unwrap(),
            action.runs_post_action(),
            "{action}"
        );
    }
    let m = build(vec![policy(Situation::Confirmed, Action::Update, None)]);
    let d = m
        .decide(Situation::Confirmed, &ctx(None, "default"))
        .unwrap();
    assert!(!m.post_action(&d, &ctx(None, "default")).unwrap());
}

/// Quirk of docs/configuration.md#mappings: REPORT/NOREPORT with no matching policy use the first policy listed
/// for the situation for postAction; other default actions run none.
#[test]
fn default_report_uses_the_first_policy_of_the_situation_for_post_action() {
    let never = Some(filter(r#"/linkQualifier eq "never""#));
    let m = build(vec![
        with_post(
            Situation::SourceIgnored,
            Action::Ignore,
            never.clone(),
            "true",
        ),
        with_post(Situation::AllGone, Action::Ignore, never.clone(), "true"),
        with_post(Situation::Absent, Action::Ignore, never, "true"),
    ]);
    for (s, runs) in [
        (Situation::SourceIgnored, true),
        (Situation::AllGone, true),
        (Situation::Absent, false),
    ] {
        let d = m.decide(s, &ctx(None, "default")).unwrap();
        assert_eq!(d.policy, None);
        assert_eq!(
            m.post_action(&d, &ctx(None, "default")).unwrap(),
            runs,
            "{s}"
        );
    }
}
