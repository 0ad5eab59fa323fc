//! In-memory evaluation (docs/rest.md#the-query-language), IDM's ConditionsTest cases and
//! ObjectMappingTest.testSourceCondition, plus the introspection helpers.

use idsync_core::filter::parse;
use idsync_core::{CompareOp, Filter, JsonPointer};
use serde_json::{Value, json};

fn check(cases: &[(&str, bool)], object: &Value) {
    for (filter, expected) in cases {
        let f = parse(filter).unwrap_or_else(|e| panic!("{filter:?}: {e}"));
        assert_eq!(f.matches(object), *expected, "{filter:?} on {object}");
    }
}

#[test]
fn array_fields_match_when_any_element_matches() {
    let obj = json!({
        "roles": ["User", "admin"], "nums": [1, 5, 9], "mixed": ["1", 1, true],
        "empty": [], "nested": [["a"]], "one": "admin"
    });
    check(
        &[
            (r#"roles eq "admin""#, true),
            (r#"roles eq "ADMIN""#, true),
            (r#"roles eq "guest""#, false),
            (r#"roles sw "us""#, true),
            (r#"roles co "dmi""#, true),
            ("nums gt 8", true),
            ("nums lt 1", false),
            ("nums le 1", true),
            ("nums eq 5", true),
            (r#"mixed eq "1""#, true),
            ("mixed eq 1", true),
            ("mixed eq true", true),
            ("mixed eq false", false),
            (r#"empty eq "x""#, false),
            // An element that is itself an array is a type mismatch, not a deeper search.
            (r#"nested eq "a""#, false),
            // A scalar is a one-element list.
            (r#"one eq "admin""#, true),
            // An index addresses one element.
            (r#"roles/0 eq "user""#, true),
            (r#"roles/1 eq "user""#, false),
        ],
        &obj,
    );
}

#[test]
fn operands_of_different_json_types_never_match() {
    let obj = json!({"n": 5, "s": "5", "b": true, "o": {"k": 1}, "z": null});
    check(
        &[
            (r#"n eq "5""#, false),
            ("s eq 5", false),
            (r#"b eq "true""#, false),
            ("b eq 1", false),
            ("n eq true", false),
            (r#"s lt "6""#, true),
            ("s lt 6", false),
            ("n ge 5", true),
            ("o eq 1", false),
            (r#"o eq "x""#, false),
            ("z eq 0", false),
            (r#"z eq "null""#, false),
            ("missing eq 1", false),
            ("o/k eq 1", true),
            ("o/k/deeper eq 1", false),
        ],
        &obj,
    );
}

#[test]
fn strings_compare_case_insensitively() {
    let obj = json!({"name": "Jensen", "city": "apple", "school": "École"});
    check(
        &[
            (r#"name eq "jensen""#, true),
            (r#"name eq "JENSEN""#, true),
            (r#"name eq "Jense""#, false),
            (r#"name co "ENS""#, true),
            (r#"name co "xyz""#, false),
            (r#"name co """#, true),
            (r#"name sw "jEn""#, true),
            (r#"name sw "ens""#, false),
            // Case-sensitively "apple" > "Banana" ('a' > 'B'); ignoring case it is less.
            (r#"city lt "Banana""#, true),
            (r#"city le "APPLE""#, true),
            (r#"city ge "APPLE""#, true),
            (r#"city gt "APPLE""#, false),
            (r#"city gt "Aardvark""#, true),
            (r#"city lt "APPLE""#, false),
            (r#"school eq "ÉCOLE""#, true),
            (r#"school eq "école""#, true),
            (r#"school sw "éC""#, true),
            (r#"school sw "écolex""#, false),
            (r#"school co "COL""#, true),
            (r#"school gt "ECOLE""#, true),
        ],
        &obj,
    );
}

#[test]
fn numbers_compare_as_doubles_and_booleans_as_false_before_true() {
    let obj =
        json!({"i": 5, "d": 2.5, "neg": -1, "big": 9007199254740993u64, "t": true, "f": false});
    check(
        &[
            ("i eq 5", true),
            ("i eq 5.0", true),
            ("i eq 5.5", false),
            ("d eq 2.5", true),
            ("d gt 2", true),
            ("d lt 3", true),
            ("i lt 2.5", false),
            ("neg lt 0", true),
            ("neg ge -1", true),
            ("neg gt -1", false),
            ("i le 5", true),
            ("i ge 5", true),
            // As doubles, 2^53 + 1 equals 2^53.
            ("big eq 9007199254740992", true),
            // co and sw are string operations.
            ("i co 5", false),
            ("i sw 5", false),
            ("t eq true", true),
            ("t eq false", false),
            ("f lt true", true),
            ("t gt false", true),
            ("f ge true", false),
            ("t le true", true),
            ("f le false", true),
            ("t co true", false),
        ],
        &obj,
    );
}

#[test]
fn presence_means_a_non_null_value() {
    let obj = json!({"s": "", "zero": 0, "no": false, "list": [], "obj": {}, "null": null});
    check(
        &[
            ("s pr", true),
            ("zero pr", true),
            ("no pr", true),
            ("list pr", true),
            ("obj pr", true),
            ("null pr", false),
            ("missing pr", false),
            ("obj/inner pr", false),
            ("/ pr", true),
            ("!(null pr)", true),
        ],
        &obj,
    );
}

#[test]
fn literals_boolean_operators_and_extended_operators() {
    let obj = json!({"a": "x", "n": 1});
    check(
        &[
            ("true", true),
            ("false", false),
            ("!true", false),
            ("!false", true),
            (r#"a eq "x" and n eq 1"#, true),
            (r#"a eq "x" and n eq 2"#, false),
            (r#"a eq "y" or n eq 1"#, true),
            (r#"a eq "y" or n eq 2"#, false),
            (r#"!(a eq "y") and n eq 1"#, true),
            (r#"a eq "y" or n eq 2 or true"#, true),
            (r#"(a eq "y" or n eq 1) and false"#, false),
            // Extended operators evaluate to false, so their negation is true.
            (r#"a ne "y""#, false),
            (r#"a ne "x""#, false),
            (r#"a ew "x""#, false),
            (r#"a ca "x""#, false),
            (r#"!(a ne "y")"#, true),
            // Keywords are case-sensitive: EQ is an extended operator.
            (r#"a EQ "x""#, false),
        ],
        &obj,
    );
}

#[test]
fn empty_boolean_nodes_built_by_hand_are_neutral() {
    assert!(Filter::And(vec![]).matches(&json!({})));
    assert!(!Filter::Or(vec![]).matches(&json!({})));
}

/// IDM `ObjectMappingTest.testSourceCondition` with the `sourceCondition` of its test sync.json.
#[test]
fn object_mapping_source_condition() {
    let condition = parse(
        r#"/source/equalsKey eq "foo" and /source/includesKey eq "1" and /source/json/pointer/key eq "foo""#,
    )
    .unwrap();
    let sample = json!({
        "source": {
            "equalsKey": "foo",
            "includesKey": ["1", "2", "3"],
            "json": {"pointer": {"key": "foo"}}
        }
    });
    assert!(condition.matches(&sample));

    let changes = [
        ("/source/equalsKey", json!("bar")),
        ("/source/includesKey", json!(["2", "3"])),
        ("/source/includesKey", json!("2")),
        ("/source/json/pointer/key", json!("bar")),
        ("/source/json/pointer", json!({"other": "foo"})),
    ];
    for (at, value) in changes {
        let mut changed = sample.clone();
        JsonPointer::parse(at)
            .set(&mut changed, value.clone())
            .unwrap();
        assert!(
            !condition.matches(&changed),
            "{at} = {value} must fail the condition"
        );
    }
    let mut without = sample.clone();
    JsonPointer::parse("/source/equalsKey").remove(&mut without);
    assert!(!condition.matches(&without));
}

/// The cases of IDM `openidm-util` ConditionsTest, as conditions over a source object.
#[test]
fn idm_conditions_table() {
    let object = json!({
        "object": {
            "name": "John", "age": 30, "height": 1.85, "active": true,
            "nothing": null, "email": "john.doe@example.com"
        },
        "linkQualifier": "user"
    });
    check(
        &[
            // eq on string, number, double, bool
            (r#"/object/name eq "John""#, true),
            (r#"/object/name eq "john""#, true),
            (r#"/object/name eq "Jane""#, false),
            ("/object/age eq 30", true),
            ("/object/age eq 31", false),
            ("/object/height eq 1.85", true),
            ("/object/height eq 1.8", false),
            ("/object/active eq true", true),
            ("/object/active eq false", false),
            // lt/le/gt/ge
            ("/object/age lt 31", true),
            ("/object/age lt 30", false),
            ("/object/age le 30", true),
            ("/object/age gt 29", true),
            ("/object/age gt 30", false),
            ("/object/age ge 30", true),
            ("/object/height gt 1.5", true),
            // co/sw
            (r#"/object/email co "@EXAMPLE""#, true),
            (r#"/object/email co "nope""#, false),
            (r#"/object/email sw "john.""#, true),
            (r#"/object/email sw "doe""#, false),
            // pr on present, missing and null
            ("/object/name pr", true),
            ("/object/missing pr", false),
            ("/object/nothing pr", false),
            // and/or
            (r#"/object/name eq "John" and /object/age eq 30"#, true),
            (r#"/object/name eq "John" and /object/age eq 31"#, false),
            (r#"/object/name eq "Jane" or /object/age eq 30"#, true),
            (r#"/object/name eq "Jane" or /object/age eq 31"#, false),
            // ne is not a core operator: false whatever the value
            (r#"/object/name ne "Jane""#, false),
            (r#"/object/name ne "John""#, false),
            // linkQualifier conditions (PolicyTest's ABSENT policies)
            (r#"/linkQualifier eq "user""#, true),
            (r#"/linkQualifier eq "test""#, false),
        ],
        &object,
    );
}

#[test]
fn referenced_fields_and_extended_operators_are_listed_once_in_order() {
    let f =
        parse(r#"(b eq 1 or a pr) and !(b ne 2) and c ew "x" and d ca 1 and a ew "y""#).unwrap();
    let fields: Vec<String> = f
        .referenced_fields()
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert_eq!(fields, ["/b", "/a", "/c", "/d"]);
    assert_eq!(f.extended_operators(), ["ne", "ew", "ca"]);

    let plain = parse("true or x gt 2").unwrap();
    assert_eq!(plain.referenced_fields(), [&JsonPointer::parse("x")]);
    assert!(plain.extended_operators().is_empty());
    assert!(Filter::True.referenced_fields().is_empty());
    assert_eq!(
        parse("x eq 1").unwrap(),
        Filter::Compare {
            field: JsonPointer::parse("x"),
            op: CompareOp::Eq,
            value: json!(1)
        }
    );
}
