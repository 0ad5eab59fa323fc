//! Hooks and the CREATE/UPDATE preparation (docs/configuration.md#mappings).

use crate::support::{mapping, script};
use idsync_config::PropertyMapping;
use idsync_core::{ErrorCode, HasErrorCode, JsonPointer, Situation};
use idsync_mapping::{CompiledMapping, DiffOperation, HookContext};
use serde_json::json;

fn copy(target: &str, source: &str) -> PropertyMapping {
    PropertyMapping {
        target: JsonPointer::parse(target),
        source: Some(JsonPointer::parse(source)),
        transform: None,
        condition: None,
        default: None,
    }
}

fn ctx() -> HookContext<'static> {
    HookContext {
        situation: Some(Situation::Absent),
        link_qualifier: "default",
        source_id: Some("s1"),
        target_id: None,
        old_source: None,
        context: None,
    }
}

#[test]
fn prepare_create_maps_properties_then_runs_on_create_whose_changes_persist() {
    let mut m = mapping("hr_user");
    m.properties = vec![copy("/userName", "uid"), copy("/_id", "uid")];
    m.on_create = Some(script(
        "target.mail = target.userName + '@example.com'; \
         target.how = [situation, sourceId, linkQualifier, mappingConfig.name].join(',');",
    ));
    let m = CompiledMapping::build(&m).unwrap();
    let created = m.prepare_create(&json!({"uid": "bj"}), &ctx()).unwrap();
    assert_eq!(
        created,
        json!({"userName": "bj", "_id": "bj", "mail": "bj@example.com", "how": "ABSENT,s1,default,hr_user"})
    );
}

#[test]
fn on_create_may_replace_the_target_object() {
    let mut m = mapping("m");
    m.on_create = Some(script("target = {replaced: true}; 'ignored result'"));
    let m = CompiledMapping::build(&m).unwrap();
    assert_eq!(
        m.prepare_create(&json!({}), &ctx()).unwrap(),
        json!({"replaced": true})
    );
}

#[test]
fn prepare_update_reports_change_only_when_something_changed() {
    let mut m = mapping("m");
    m.properties = vec![copy("/mail", "mail"), copy("/name/given", "given")];
    let m = CompiledMapping::build(&m).unwrap();
    let current =
        json!({"_id": "t1", "_rev": "4", "mail": "a@x", "name": {"given": "Ann"}, "extra": 1});
    let same = m
        .prepare_update(&json!({"mail": "a@x", "given": "Ann"}), &current, &ctx())
        .unwrap();
    assert!(!same.changed);
    assert!(same.diff.is_empty());
    assert_eq!(same.new_target, current);

    let plan = m
        .prepare_update(&json!({"mail": "b@x", "given": "Ann"}), &current, &ctx())
        .unwrap();
    assert!(plan.changed);
    // Fields the mapping does not own are kept: the update starts from a copy of the target.
    assert_eq!(plan.new_target["extra"], json!(1));
    assert_eq!(plan.diff.len(), 1);
    assert_eq!(plan.diff[0].operation, DiffOperation::Replace);
    assert_eq!(plan.diff[0].field.to_string(), "/mail");
    assert_eq!(plan.diff[0].old_value, Some(json!("a@x")));
    assert_eq!(plan.diff[0].value, Some(json!("b@x")));
}

#[test]
fn on_update_always_runs_sees_old_target_and_its_changes_count() {
    let mut m = mapping("m");
    m.properties = vec![copy("/mail", "mail")];
    m.on_update = Some(script(
        "if (oldTarget.mail !== target.mail) { target.mailChanged = true; }",
    ));
    let m = CompiledMapping::build(&m).unwrap();
    let current = json!({"_id": "t1", "mail": "a@x"});
    let plan = m
        .prepare_update(&json!({"mail": "a@x"}), &current, &ctx())
        .unwrap();
    assert!(!plan.changed);
    let plan = m
        .prepare_update(&json!({"mail": "b@x"}), &current, &ctx())
        .unwrap();
    assert_eq!(
        plan.new_target,
        json!({"_id": "t1", "mail": "b@x", "mailChanged": true})
    );
    assert_eq!(plan.diff.len(), 2);
}

#[test]
fn a_changed_id_is_a_change_but_not_in_the_diff() {
    let mut m = mapping("m");
    m.properties = vec![copy("/_id", "uid")];
    let m = CompiledMapping::build(&m).unwrap();
    let plan = m
        .prepare_update(&json!({"uid": "new"}), &json!({"_id": "old"}), &ctx())
        .unwrap();
    assert!(plan.changed);
    assert!(plan.diff.is_empty());
}

#[test]
fn hooks_without_scripts_do_nothing() {
    let m = CompiledMapping::build(&mapping("m")).unwrap();
    let t = json!({"a": 1});
    assert!(!m.on_delete(None, &t, &ctx()).unwrap());
    assert!(!m.on_link(None, &t, &ctx()).unwrap());
    assert!(!m.on_unlink(None, &t, &ctx()).unwrap());
    assert!(!m.result(&json!({})).unwrap());
    let mut t2 = t.clone();
    m.on_update(&json!({}), &mut t2, &t, &ctx()).unwrap();
    assert_eq!(t2, t);
}

#[test]
fn delete_link_unlink_and_result_see_their_scopes() {
    let mut m = mapping("m");
    let echo = |name: &str, expr: &str| script(&format!("throw new Error('{name} ' + {expr})"));
    m.on_delete = Some(echo(
        "onDelete",
        "[source, target.id, oldTarget.id, targetId].join('|')",
    ));
    m.on_link = Some(echo(
        "onLink",
        "[source.id, target.id, situation].join('|')",
    ));
    m.on_unlink = Some(echo(
        "onUnlink",
        "[source, target.id, typeof oldTarget].join('|')",
    ));
    m.result = Some(echo(
        "result",
        "[source.processed, target.processed, global.reconId].join('|')",
    ));
    let m = CompiledMapping::build(&m).unwrap();
    let t = json!({"id": "t1"});
    let s = json!({"id": "s1"});
    let c = HookContext {
        target_id: Some("t1"),
        situation: Some(Situation::Found),
        ..ctx()
    };
    let text = |r: idsync_mapping::Result<bool>| r.unwrap_err().to_string();
    assert!(text(m.on_delete(None, &t, &c)).contains("onDelete |t1|t1|t1"));
    assert!(text(m.on_link(Some(&s), &t, &c)).contains("onLink s1|t1|FOUND"));
    assert!(text(m.on_unlink(None, &t, &c)).contains("onUnlink |t1|undefined"));
    let stats = json!({"source": {"processed": 3}, "target": {"processed": 2}, "global": {"reconId": "r1"}});
    let err = text(m.result(&stats));
    assert!(err.contains("result 3|2|r1"), "{err}");
    assert!(err.contains("mapping m result"), "{err}");
}

#[test]
fn a_throwing_on_create_aborts_and_names_the_hook() {
    let mut m = mapping("hr_user");
    m.on_create = Some(script("throw new Error('refused')"));
    let m = CompiledMapping::build(&m).unwrap();
    let err = m.prepare_create(&json!({}), &ctx()).unwrap_err();
    assert_eq!(err.error_code(), ErrorCode::Script);
    let text = err.to_string();
    assert!(
        text.contains("mapping hr_user onCreate") && text.contains("refused"),
        "{text}"
    );
}

/// ObjectMappingTest.testUpdateActionWithNullTargetObject: UPDATE with a link but a null target
/// object neither fails nor writes, and runs no hook.
#[test]
fn update_with_a_null_target_object_is_no_write_and_no_error() {
    let mut m = mapping("m");
    m.properties = vec![copy("/mail", "mail")];
    m.on_update = Some(script("throw new Error('must not run')"));
    let m = CompiledMapping::build(&m).unwrap();
    let plan = m
        .prepare_update(&json!({"mail": "a@x"}), &serde_json::Value::Null, &ctx())
        .unwrap();
    assert!(!plan.changed);
    assert!(plan.diff.is_empty());
    assert!(plan.new_target.is_null());
}
