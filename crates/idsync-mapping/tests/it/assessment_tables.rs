//! Every row of the reference's decision tables: §2.1 default actions (code column), §2.2
//! source-side assessment (with the correlation-skipped rule), §2.3 target phase and §2.4 the
//! delete branch. A row missing here is a behaviour nobody pinned.

use idsync_core::{Action, Situation};
use idsync_mapping::{
    Assessment, CorrelationOutcome as C, DeleteFacts, LinkedSource, OldValueFacts, SourceFacts,
    SourceLink, TargetFacts, TargetState, assess_delete, assess_source, assess_target,
    correlation_skipped,
};

fn ids(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn one(id: &str, already_linked: bool) -> C {
    C::One {
        target_id: id.into(),
        already_linked,
    }
}

fn expect(a: Assessment, situation: Situation, target: Option<&str>, ambiguous: &[&str]) {
    assert_eq!(a.situation, situation, "{a:?}");
    assert_eq!(a.target_id.as_deref(), target, "{a:?}");
    assert_eq!(a.ambiguous_target_ids, ids(ambiguous), "{a:?}");
}

#[test]
fn default_actions_follow_the_code_column() {
    let table = [
        (Situation::Confirmed, Action::Update),
        (Situation::Found, Action::Update),
        (Situation::FoundAlreadyLinked, Action::Exception),
        (Situation::Absent, Action::Create),
        (Situation::Ambiguous, Action::Exception),
        (Situation::Missing, Action::Exception),
        (Situation::Unqualified, Action::Delete),
        (Situation::SourceIgnored, Action::Report),
        (Situation::TargetIgnored, Action::Report),
        (Situation::Unassigned, Action::Exception),
        (Situation::SourceMissing, Action::Exception),
        (Situation::LinkOnly, Action::Exception),
        (Situation::AllGone, Action::Noreport),
    ];
    assert_eq!(table.len(), Situation::ALL.len());
    for s in Situation::ALL {
        let (_, a) = table
            .iter()
            .find(|(x, _)| *x == s)
            .expect("every situation has a row");
        assert_eq!(s.default_action(), *a, "{s}");
    }
}

#[test]
fn qualified_linked_source() {
    let linked = |exists| SourceFacts {
        qualifies: true,
        link: SourceLink::Linked {
            target_id: "t1".into(),
            target_exists: exists,
        },
    };
    expect(
        assess_source(&linked(true)),
        Situation::Confirmed,
        Some("t1"),
        &[],
    );
    expect(
        assess_source(&linked(false)),
        Situation::Missing,
        Some("t1"),
        &[],
    );
}

#[test]
fn qualified_unlinked_source_by_correlation() {
    let f = |c| {
        assess_source(&SourceFacts {
            qualifies: true,
            link: SourceLink::Unlinked(c),
        })
    };
    expect(f(C::Skipped), Situation::Absent, None, &[]);
    expect(f(C::None), Situation::Absent, None, &[]);
    expect(f(one("t1", false)), Situation::Found, Some("t1"), &[]);
    expect(
        f(one("t1", true)),
        Situation::FoundAlreadyLinked,
        Some("t1"),
        &[],
    );
    expect(
        f(C::Many(ids(&["t1", "t2"]))),
        Situation::Ambiguous,
        None,
        &["t1", "t2"],
    );
    expect(
        f(C::Many(ids(&["t1", "t2", "t3"]))),
        Situation::Ambiguous,
        None,
        &["t1", "t2", "t3"],
    );
}

#[test]
fn unqualified_source() {
    let linked = |exists| SourceFacts {
        qualifies: false,
        link: SourceLink::Linked {
            target_id: "t1".into(),
            target_exists: exists,
        },
    };
    expect(
        assess_source(&linked(true)),
        Situation::Unqualified,
        Some("t1"),
        &[],
    );
    expect(
        assess_source(&linked(false)),
        Situation::Unqualified,
        Some("t1"),
        &[],
    );

    let f = |c| {
        assess_source(&SourceFacts {
            qualifies: false,
            link: SourceLink::Unlinked(c),
        })
    };
    expect(f(C::Skipped), Situation::SourceIgnored, None, &[]);
    expect(f(C::None), Situation::SourceIgnored, None, &[]);
    // Quirk §11.3: one correlated, never-linked target becomes the target (default DELETE).
    expect(f(one("t1", false)), Situation::Unqualified, Some("t1"), &[]);
    // The candidate's own link is not consulted for an unqualified source.
    expect(f(one("t1", true)), Situation::Unqualified, Some("t1"), &[]);
    expect(
        f(C::Many(ids(&["t1", "t2"]))),
        Situation::Unqualified,
        None,
        &["t1", "t2"],
    );
}

#[test]
fn malformed_many_is_assessed_by_its_length() {
    let f = |q, v: &[&str]| {
        assess_source(&SourceFacts {
            qualifies: q,
            link: SourceLink::Unlinked(C::Many(ids(v))),
        })
    };
    expect(f(true, &[]), Situation::Absent, None, &[]);
    expect(f(true, &["t1"]), Situation::Found, Some("t1"), &[]);
    expect(f(false, &[]), Situation::SourceIgnored, None, &[]);
    expect(f(false, &["t1"]), Situation::Unqualified, Some("t1"), &[]);
}

#[test]
fn correlation_skipped_rule() {
    // (has query/script for the qualifier, target query count, correlateEmptyTargetSet)
    let table = [
        (false, None, false, true),
        (false, None, true, true),
        (false, Some(0), true, true),
        (false, Some(5), false, true),
        (true, None, false, false),
        (true, None, true, false),
        (true, Some(0), false, true),
        (true, Some(0), true, false),
        (true, Some(5), false, false),
        (true, Some(5), true, false),
    ];
    for (has, count, empty, skipped) in table {
        assert_eq!(
            correlation_skipped(has, count, empty),
            skipped,
            "{has} {count:?} {empty}"
        );
    }
}

#[test]
fn from_candidates_asks_for_the_link_only_for_one_candidate() {
    let mut asked = Vec::new();
    let none = C::from_candidates::<()>(vec![], |id| {
        asked.push(id.to_string());
        Ok(true)
    });
    assert_eq!(none, Ok(C::None));
    let many = C::from_candidates::<()>(ids(&["a", "b"]), |id| {
        asked.push(id.to_string());
        Ok(true)
    });
    assert_eq!(many, Ok(C::Many(ids(&["a", "b"]))));
    assert!(asked.is_empty());
    let single = C::from_candidates::<()>(ids(&["a"]), |id| {
        asked.push(id.to_string());
        Ok(true)
    });
    assert_eq!(single, Ok(one("a", true)));
    assert_eq!(asked, ["a"]);
    assert_eq!(
        C::from_candidates(ids(&["a"]), |_| Err("repo down")),
        Err("repo down")
    );
}

#[test]
fn claimed_target_ids() {
    let a = assess_source(&SourceFacts {
        qualifies: true,
        link: SourceLink::Unlinked(one("t", false)),
    });
    assert_eq!(a.claimed_target_ids(), ["t"]);
    let a = assess_source(&SourceFacts {
        qualifies: true,
        link: SourceLink::Unlinked(C::Many(ids(&["x", "y"]))),
    });
    assert_eq!(a.claimed_target_ids(), ["x", "y"]);
    let a = assess_source(&SourceFacts {
        qualifies: true,
        link: SourceLink::Unlinked(C::None),
    });
    assert!(a.claimed_target_ids().is_empty());
}

#[test]
fn target_phase() {
    use LinkedSource as L;
    use TargetState as T;
    let every_source = [
        L::Unlinked,
        L::Missing,
        L::Exists {
            valid_source: false,
        },
        L::Exists { valid_source: true },
    ];
    // An invalid or vanished target is TARGET_IGNORED whatever its link says.
    for source in every_source {
        for target in [T::Gone, T::Invalid] {
            assert_eq!(
                assess_target(&TargetFacts { target, source }),
                Situation::TargetIgnored
            );
        }
    }
    let table = [
        (L::Unlinked, Situation::Unassigned),
        (L::Missing, Situation::SourceMissing),
        (
            L::Exists {
                valid_source: false,
            },
            Situation::Unqualified,
        ),
        (L::Exists { valid_source: true }, Situation::Confirmed),
    ];
    for (source, situation) in table {
        assert_eq!(
            assess_target(&TargetFacts {
                target: T::Valid,
                source
            }),
            situation
        );
    }
}

#[test]
fn delete_branch_linked() {
    let f = |target| {
        assess_delete(&DeleteFacts::Linked {
            target_id: "t1".into(),
            target,
        })
    };
    expect(
        f(TargetState::Valid),
        Situation::SourceMissing,
        Some("t1"),
        &[],
    );
    expect(
        f(TargetState::Invalid),
        Situation::TargetIgnored,
        Some("t1"),
        &[],
    );
    expect(f(TargetState::Gone), Situation::LinkOnly, Some("t1"), &[]);
}

#[test]
fn delete_branch_unlinked() {
    expect(
        assess_delete(&DeleteFacts::Unlinked { old_value: None }),
        Situation::AllGone,
        None,
        &[],
    );
    let f = |valid_source, correlation| {
        assess_delete(&DeleteFacts::Unlinked {
            old_value: Some(OldValueFacts {
                valid_source,
                correlation,
            }),
        })
    };
    for valid in [true, false] {
        expect(f(valid, C::Skipped), Situation::AllGone, None, &[]);
        expect(f(valid, C::None), Situation::AllGone, None, &[]);
        expect(f(valid, C::Many(vec![])), Situation::AllGone, None, &[]);
    }
    expect(
        f(true, one("t1", false)),
        Situation::Unassigned,
        Some("t1"),
        &[],
    );
    expect(
        f(true, one("t1", true)),
        Situation::Unassigned,
        Some("t1"),
        &[],
    );
    expect(
        f(false, one("t1", false)),
        Situation::TargetIgnored,
        Some("t1"),
        &[],
    );
    expect(
        f(true, C::Many(ids(&["a", "b"]))),
        Situation::Ambiguous,
        None,
        &["a", "b"],
    );
    expect(
        f(false, C::Many(ids(&["a", "b"]))),
        Situation::Unqualified,
        None,
        &["a", "b"],
    );
}
