//! Property mapping, docs/configuration.md#mappings: one test per rule.

use crate::support::{filter, mapping, script, script_at, script_condition};
use idsync_config::PropertyMapping;
use idsync_core::{ErrorCode, HasErrorCode, JsonPointer};
use idsync_mapping::{CompiledMapping, MappingError, PropertyContext};
use serde_json::{Value, json};

fn prop(target: &str, source: Option<&str>) -> PropertyMapping {
    PropertyMapping {
        target: JsonPointer::parse(target),
        source: source.map(JsonPointer::parse),
        transform: None,
        condition: None,
        default: None,
    }
}

fn compile(props: Vec<PropertyMapping>) -> CompiledMapping {
    let mut m = mapping("hr_user");
    m.properties = props;
    CompiledMapping::build(&m).unwrap()
}

fn run(m: &CompiledMapping, source: &Value, target: Value) -> Value {
    let mut target = target;
    m.map_properties(source, &mut target, &PropertyContext::new("default"))
        .unwrap();
    target
}

#[test]
fn copies_source_pointers_in_list_order() {
    let m = compile(vec![
        prop("/userName", Some("uid")),
        prop("/name/given", Some("/first")),
        prop("/userName", Some("email")),
    ]);
    let out = run(
        &m,
        &json!({"uid": "u1", "first": "Ann", "email": "a@x"}),
        json!({}),
    );
    // The later property overwrote the earlier one; intermediate objects were created.
    assert_eq!(out, json!({"userName": "a@x", "name": {"given": "Ann"}}));
}

#[test]
fn empty_source_pointer_is_the_whole_object() {
    let m = compile(vec![prop("/copy", Some(""))]);
    let src = json!({"a": 1, "b": [2]});
    assert_eq!(
        run(&m, &src, json!({})),
        json!({"copy": {"a": 1, "b": [2]}})
    );
}

#[test]
fn absent_source_value_is_written_as_explicit_null() {
    let m = compile(vec![prop("/phone", Some("telephoneNumber"))]);
    assert_eq!(
        run(&m, &json!({}), json!({"phone": "123"})),
        json!({"phone": null})
    );
}

#[test]
fn default_applies_only_when_the_value_is_null() {
    let mut p = prop("/status", Some("state"));
    p.default = Some(json!("active"));
    let m = compile(vec![p]);
    assert_eq!(run(&m, &json!({}), json!({})), json!({"status": "active"}));
    assert_eq!(
        run(&m, &json!({"state": null}), json!({})),
        json!({"status": "active"})
    );
    assert_eq!(
        run(&m, &json!({"state": ""}), json!({})),
        json!({"status": ""})
    );
    assert_eq!(
        run(&m, &json!({"state": false}), json!({})),
        json!({"status": false})
    );
}

#[test]
fn no_source_and_no_transform_gives_the_default() {
    let mut p = prop("/type", None);
    p.default = Some(json!("employee"));
    let m = compile(vec![p, prop("/nothing", None)]);
    assert_eq!(
        run(&m, &json!({"x": 1}), json!({})),
        json!({"type": "employee", "nothing": null})
    );
}

#[test]
fn transform_sees_the_value_and_the_link_qualifier() {
    let mut p = prop("/cn", Some("given"));
    p.transform = Some(script("source.toUpperCase() + '/' + linkQualifier"));
    let m = compile(vec![p]);
    let mut target = json!({});
    m.map_properties(
        &json!({"given": "ann"}),
        &mut target,
        &PropertyContext::new("emp"),
    )
    .unwrap();
    assert_eq!(target, json!({"cn": "ANN/emp"}));
}

#[test]
fn transform_without_source_sees_the_whole_object() {
    let mut p = prop("/displayName", None);
    p.transform = Some(script("source.givenName + ' ' + source.sn"));
    let m = compile(vec![p]);
    let out = run(
        &m,
        &json!({"givenName": "Ada", "sn": "Lovelace"}),
        json!({}),
    );
    assert_eq!(out, json!({"displayName": "Ada Lovelace"}));
}

#[test]
fn transform_result_null_falls_back_to_the_default() {
    let mut p = prop("/mail", Some("mail"));
    p.transform = Some(script("null"));
    p.default = Some(json!("none@example.com"));
    let m = compile(vec![p]);
    assert_eq!(
        run(&m, &json!({"mail": "x"}), json!({})),
        json!({"mail": "none@example.com"})
    );
}

#[test]
fn false_filter_condition_leaves_the_target_untouched() {
    let mut p = prop("/mail", Some("mail"));
    p.condition = Some(filter("/object/type eq \"staff\""));
    let m = compile(vec![p]);
    let staff = json!({"type": "staff", "mail": "s@x"});
    let guest = json!({"type": "guest", "mail": "g@x"});
    assert_eq!(
        run(&m, &staff, json!({"mail": "old"})),
        json!({"mail": "s@x"})
    );
    assert_eq!(
        run(&m, &guest, json!({"mail": "old"})),
        json!({"mail": "old"})
    );
    assert_eq!(run(&m, &guest, json!({})), json!({}));
}

#[test]
fn condition_sees_target_being_built_and_link_qualifier() {
    let mut first = prop("/kind", Some("kind"));
    first.condition = Some(filter("/linkQualifier eq \"emp\""));
    let mut second = prop("/flag", None);
    second.default = Some(json!(true));
    // Only when the previous property wrote /kind into the target under construction.
    second.condition = Some(filter("/target/kind pr"));
    let m = compile(vec![first, second]);
    let src = json!({"kind": "k"});
    let mut t = json!({});
    m.map_properties(&src, &mut t, &PropertyContext::new("emp"))
        .unwrap();
    assert_eq!(t, json!({"kind": "k", "flag": true}));
    let mut t = json!({});
    m.map_properties(&src, &mut t, &PropertyContext::new("default"))
        .unwrap();
    assert_eq!(t, json!({}));
}

#[test]
fn script_condition_sees_content_keys_as_variables() {
    let mut p = prop("/mail", Some("mail"));
    p.condition = Some(script_condition(
        "object.mail !== oldSource.mail && oldTarget.mail === 'old@x' && linkQualifier === 'default'",
    ));
    let m = compile(vec![p]);
    let old_source = json!({"mail": "before@x"});
    let old_target = json!({"mail": "old@x"});
    let ctx = PropertyContext {
        link_qualifier: "default",
        old_source: Some(&old_source),
        old_target: Some(&old_target),
    };
    let mut t = json!({"mail": "old@x"});
    m.map_properties(&json!({"mail": "new@x"}), &mut t, &ctx)
        .unwrap();
    assert_eq!(t, json!({"mail": "new@x"}));
    let mut t = json!({"mail": "old@x"});
    m.map_properties(&json!({"mail": "before@x"}), &mut t, &ctx)
        .unwrap();
    assert_eq!(t, json!({"mail": "old@x"}));
}

#[test]
fn old_source_and_old_target_are_absent_in_recon() {
    let mut p = prop("/seen", None);
    p.default = Some(json!("yes"));
    p.condition = Some(filter("!(/oldSource pr) and !(/oldTarget pr)"));
    let m = compile(vec![p]);
    assert_eq!(run(&m, &json!({}), json!({})), json!({"seen": "yes"}));
}

#[test]
fn a_non_boolean_script_condition_is_an_error() {
    let mut p = prop("/mail", Some("mail"));
    p.condition = Some(script_condition("'yes'"));
    let m = compile(vec![p]);
    let err = m
        .map_properties(&json!({}), &mut json!({}), &PropertyContext::new("default"))
        .unwrap_err();
    assert_eq!(err.error_code(), ErrorCode::Script);
    assert!(
        err.to_string()
            .contains("mapping hr_user property /mail condition"),
        "{err}"
    );
}

#[test]
fn writing_the_root_pointer_is_an_error() {
    let m = compile(vec![prop("", Some("x"))]);
    let err = m
        .map_properties(
            &json!({"x": 1}),
            &mut json!({}),
            &PropertyContext::new("default"),
        )
        .unwrap_err();
    assert!(matches!(err, MappingError::PropertyWrite { .. }), "{err:?}");
    assert_eq!(err.error_code(), ErrorCode::Config);
    assert!(err.to_string().contains("mapping hr_user"), "{err}");
}

#[test]
fn writing_through_a_scalar_is_an_invalid_data_error() {
    let m = compile(vec![prop("/name/given", Some("g"))]);
    let err = m
        .map_properties(
            &json!({"g": "a"}),
            &mut json!({"name": "flat"}),
            &PropertyContext::new("default"),
        )
        .unwrap_err();
    assert_eq!(err.error_code(), ErrorCode::InvalidData);
    assert!(err.to_string().contains("/name/given"), "{err}");
}

#[test]
fn a_throwing_transform_names_the_mapping_property_and_json_path() {
    let mut p = prop("/mail", Some("mail"));
    p.transform = Some(script_at(
        "throw new Error('no mail for ' + source)",
        "conf/sync.json /mappings/0/properties/0/transform",
    ));
    let m = compile(vec![p]);
    let err = m
        .map_properties(
            &json!({"mail": "m"}),
            &mut json!({}),
            &PropertyContext::new("default"),
        )
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("conf/sync.json /mappings/0/properties/0/transform"),
        "{text}"
    );
    assert!(
        text.contains("mapping hr_user property /mail transform"),
        "{text}"
    );
    assert!(text.contains("no mail for m"), "{text}");
    assert_eq!(err.error_code(), ErrorCode::Script);
}
