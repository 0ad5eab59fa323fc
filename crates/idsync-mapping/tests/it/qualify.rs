//! Qualification, link qualifiers and correlation (docs/configuration.md#mappings, ObjectMappingTest).

use crate::support::{filter, mapping, script, script_condition};
use idsync_config::{Correlation as CorrelationConfig, CorrelationQuery, LinkQualifiers};
use idsync_core::{ErrorCode, HasErrorCode};
use idsync_mapping::{CompiledMapping, Correlation, is_full_object};
use serde_json::json;

#[test]
fn no_qualification_configured_means_everything_qualifies() {
    let m = CompiledMapping::build(&mapping("m")).unwrap();
    assert!(m.source_qualifies(&json!({}), "default").unwrap());
    assert!(m.valid_source(&json!({}), "default").unwrap());
    assert!(m.target_valid(&json!({}), "default").unwrap());
}

/// ObjectMappingTest.testSourceCondition, with its fixture's filter.
#[test]
fn source_condition_filter_from_idm_fixture() {
    let mut m = mapping("m");
    m.source_condition = Some(filter(
        r#"/source/equalsKey eq "foo" and /source/includesKey eq "1" and /source/json/pointer/key eq "foo""#,
    ));
    let m = CompiledMapping::build(&m).unwrap();
    let good = json!({"equalsKey": "foo", "includesKey": ["1", "2", "3"], "json": {"pointer": {"key": "foo"}}});
    assert!(m.source_qualifies(&good, "default").unwrap());
    let mut bad = good.clone();
    bad["equalsKey"] = json!("bar");
    assert!(!m.source_qualifies(&bad, "default").unwrap());
    let mut bad = good.clone();
    bad["includesKey"] = json!(["2", "3"]);
    assert!(!m.source_qualifies(&bad, "default").unwrap());
    let mut bad = good.clone();
    bad["json"]["pointer"]["key"] = json!("bar");
    assert!(!m.source_qualifies(&bad, "default").unwrap());
}

#[test]
fn source_qualifies_is_valid_source_and_source_condition() {
    let mut m = mapping("m");
    m.valid_source = Some(script("source.active === true && linkQualifier === 'emp'"));
    m.source_condition = Some(filter(
        r#"/source/dept eq "eng" and /linkQualifier eq "emp""#,
    ));
    let m = CompiledMapping::build(&m).unwrap();
    let table = [
        (json!({"active": true, "dept": "eng"}), "emp", true),
        (json!({"active": false, "dept": "eng"}), "emp", false),
        (json!({"active": true, "dept": "ops"}), "emp", false),
        (json!({"active": true, "dept": "eng"}), "default", false),
    ];
    for (src, q, expected) in table {
        assert_eq!(m.source_qualifies(&src, q).unwrap(), expected, "{src} {q}");
    }
    // validSource alone ignores sourceCondition (target phase, docs/migrating-from-idm.md).
    assert!(
        m.valid_source(&json!({"active": true, "dept": "ops"}), "emp")
            .unwrap()
    );
}

#[test]
fn source_condition_may_be_a_script() {
    let mut m = mapping("m");
    m.source_condition = Some(script_condition("source.n > 2"));
    let m = CompiledMapping::build(&m).unwrap();
    assert!(m.source_qualifies(&json!({"n": 3}), "default").unwrap());
    assert!(!m.source_qualifies(&json!({"n": 1}), "default").unwrap());
}

#[test]
fn non_boolean_valid_source_or_target_is_an_error() {
    let mut m = mapping("m");
    m.valid_source = Some(script("source.active"));
    m.valid_target = Some(script("1"));
    let m = CompiledMapping::build(&m).unwrap();
    assert!(m.valid_source(&json!({"active": true}), "default").unwrap());
    let err = m
        .valid_source(&json!({"active": "yes"}), "default")
        .unwrap_err();
    assert_eq!(err.error_code(), ErrorCode::Script);
    assert!(err.to_string().contains("mapping m validSource"), "{err}");
    let err = m.target_valid(&json!({}), "default").unwrap_err();
    assert!(err.to_string().contains("mapping m validTarget"), "{err}");
}

#[test]
fn valid_target_sees_target_and_qualifier() {
    let mut m = mapping("m");
    m.valid_target = Some(script("target.kind === linkQualifier"));
    let m = CompiledMapping::build(&m).unwrap();
    assert!(m.target_valid(&json!({"kind": "emp"}), "emp").unwrap());
    assert!(!m.target_valid(&json!({"kind": "emp"}), "default").unwrap());
}

#[test]
fn link_qualifiers_default_list_and_script() {
    let m = CompiledMapping::build(&mapping("m")).unwrap();
    assert_eq!(m.link_qualifiers(None, None, true).unwrap(), ["default"]);

    let mut m = mapping("m");
    m.link_qualifiers = LinkQualifiers::List(vec!["emp".into(), "contractor".into()]);
    let m = CompiledMapping::build(&m).unwrap();
    assert_eq!(
        m.link_qualifiers(Some(&json!({})), None, false).unwrap(),
        ["emp", "contractor"]
    );

    let mut m = mapping("hr_user");
    m.link_qualifiers = LinkQualifiers::Script(script(
        "if (returnAll) { ['emp', 'contractor'] } \
         else if (object === null) { [oldValue.type] } \
         else { [object.type + '@' + mapping] }",
    ));
    let m = CompiledMapping::build(&m).unwrap();
    assert_eq!(
        m.link_qualifiers(None, None, true).unwrap(),
        ["emp", "contractor"]
    );
    assert_eq!(
        m.link_qualifiers(Some(&json!({"type": "emp"})), None, false)
            .unwrap(),
        ["emp@hr_user"]
    );
    assert_eq!(
        m.link_qualifiers(None, Some(&json!({"type": "contractor"})), false)
            .unwrap(),
        ["contractor"]
    );
}

#[test]
fn link_qualifier_script_must_return_strings() {
    for bad in ["'emp'", "[1]", "null"] {
        let mut m = mapping("m");
        m.link_qualifiers = LinkQualifiers::Script(script(bad));
        let m = CompiledMapping::build(&m).unwrap();
        let err = m.link_qualifiers(None, None, true).unwrap_err();
        assert_eq!(err.error_code(), ErrorCode::Script, "{bad}");
        assert!(err.to_string().contains("linkQualifiers"), "{err}");
    }
}

fn with_queries(queries: Vec<(Option<&str>, &str)>) -> CompiledMapping {
    let mut m = mapping("m");
    m.correlation = Some(CorrelationConfig::Queries(
        queries
            .into_iter()
            .map(|(q, s)| CorrelationQuery {
                link_qualifier: q.map(String::from),
                script: script(s),
            })
            .collect(),
    ));
    CompiledMapping::build(&m).unwrap()
}

#[test]
fn correlation_query_filter_per_qualifier() {
    let m = with_queries(vec![
        (
            None,
            "({_queryFilter: 'userName eq \"' + source.uid + '\"'})",
        ),
        (
            Some("emp"),
            "var q = {}; q._queryFilter = 'mail eq \"' + source.mail + '\" and /x eq ' + (linkQualifier === 'emp'); q",
        ),
    ]);
    let src = json!({"uid": "bj", "mail": "b@x"});
    assert!(m.has_correlation("default") && m.has_correlation("emp") && !m.has_correlation("x"));
    assert_eq!(
        m.correlation(&src, "default").unwrap(),
        Some(Correlation::Query("userName eq \"bj\"".parse().unwrap()))
    );
    assert_eq!(
        m.correlation(&src, "emp").unwrap(),
        Some(Correlation::Query(
            "mail eq \"b@x\" and /x eq true".parse().unwrap()
        ))
    );
    assert_eq!(m.correlation(&src, "contractor").unwrap(), None);
}

#[test]
fn correlation_query_id_is_translated_to_a_filter() {
    let table = [
        (
            "({_queryId: 'for-userName', uid: source.uid})",
            r#"userName eq "bj""#,
        ),
        (
            "({_queryId: 'by-mail', mail: source.mail, _pageSize: 5})",
            r#"mail eq "b@x""#,
        ),
        (
            "({_queryId: 'by-two', mail: source.mail, uid: source.uid})",
            r#"mail eq "b@x" and uid eq "bj""#,
        ),
        ("({_queryId: 'for-userName', uid: null})", "false"),
        ("({_queryId: 'query-all-ids'})", "true"),
    ];
    let src = json!({"uid": "bj", "mail": "b@x"});
    for (s, expected) in table {
        let m = with_queries(vec![(None, s)]);
        assert_eq!(
            m.correlation(&src, "default").unwrap(),
            Some(Correlation::Query(expected.parse().unwrap())),
            "{s}"
        );
    }
}

#[test]
fn malformed_correlation_queries_are_script_errors() {
    for s in [
        "'userName eq \"x\"'",
        "({_queryFilter: 'userName eq'})",
        "({_queryFilter: 5})",
        "({_queryExpression: 'select 1'})",
        "({_queryId: 'by-nothing'})",
        "({foo: 1})",
    ] {
        let m = with_queries(vec![(None, s)]);
        let err = m.correlation(&json!({}), "default").unwrap_err();
        assert_eq!(err.error_code(), ErrorCode::Script, "{s}");
        assert!(
            err.to_string()
                .contains("mapping m correlationQuery (default)"),
            "{err}"
        );
    }
}

#[test]
fn two_queries_for_one_qualifier_do_not_build() {
    let mut m = mapping("m");
    m.correlation = Some(CorrelationConfig::Queries(vec![
        CorrelationQuery {
            link_qualifier: None,
            script: script("1"),
        },
        CorrelationQuery {
            link_qualifier: Some("default".into()),
            script: script("2"),
        },
    ]));
    let err = CompiledMapping::build(&m).unwrap_err();
    assert_eq!(err.error_code(), ErrorCode::Config);
}

#[test]
fn correlation_script_returns_candidates() {
    let mut m = mapping("m");
    m.correlation = Some(CorrelationConfig::Script(script(
        "linkQualifier === 'none' ? [] : [{_id: 'a'}, {_id: 'b', userName: source.uid}]",
    )));
    let m = CompiledMapping::build(&m).unwrap();
    assert!(m.has_correlation("anything"));
    let c = m
        .correlation(&json!({"uid": "bj"}), "default")
        .unwrap()
        .unwrap();
    assert_eq!(c.candidate_ids(), ["a", "b"]);
    let Correlation::Candidates(list) = &c else {
        panic!("{c:?}")
    };
    assert!(!is_full_object(&list[0]));
    assert!(is_full_object(&list[1]));
    assert_eq!(
        m.correlation(&json!({}), "none").unwrap(),
        Some(Correlation::Candidates(vec![]))
    );
}

#[test]
fn correlation_script_candidates_need_ids() {
    for s in ["[{name: 'x'}]", "[{_id: 5}]", "'a'"] {
        let mut m = mapping("m");
        m.correlation = Some(CorrelationConfig::Script(script(s)));
        let m = CompiledMapping::build(&m).unwrap();
        let err = m.correlation(&json!({}), "default").unwrap_err();
        assert!(err.to_string().contains("correlationScript"), "{s}: {err}");
    }
}
