//! The invalid fixture: one error of each kind, all reported at once, in the documented order
//! (file, then position in the file with array indexes compared as numbers, then message).

use crate::{fixture, lines, load_with};

const EXPECTED: &[&str] = &[
    r#"conf/provisioner.openicf-ad.json: /connectorRef/connectorName: unknown connector kind "org.identityconnectors.activedirectory.ADConnector" (known: org.forgerock.openicf.csvfile.CSVFileConnector, csv, org.identityconnectors.databasetable.DatabaseTableConnector, sql, org.identityconnectors.ldap.LdapConnector, ldap)"#,
    r#"conf/provisioner.openicf-engineering.json: /configurationProperties/password: property &{ENGINEERING_PASSWORD} is not defined (set it in conf/idsync.json or the environment variable ENGINEERING_PASSWORD)"#,
    r#"conf/schedule-broken.json: invalid JSON: expected `,` or `}` at line 4 column 5"#,
    r#"conf/sync.json: /mappings/0/target: missing required key "target""#,
    r#"conf/sync.json: /mappings/1/target: unknown connector "ldap-main" (known: engineering, hr)"#,
    r#"conf/sync.json: /mappings/2/target: unknown managed object type "person" (known: user)"#,
    r#"conf/sync.json: /mappings/3/target: unknown object type "group" of connector "hr" (known: account)"#,
    r#"conf/sync.json: /mappings/4/policies/0/situation: unknown situation "FOUND_ALREADY" (known: SOURCE_MISSING, FOUND_ALREADY_LINKED, UNQUALIFIED, AMBIGUOUS, CONFIRMED, FOUND, SOURCE_IGNORED, TARGET_IGNORED, MISSING, UNASSIGNED, ABSENT, LINK_ONLY, ALL_GONE)"#,
    r#"conf/sync.json: /mappings/5/policies/0/action: unknown action "MERGE" (known: CREATE, UPDATE, DELETE, LINK, UNLINK, EXCEPTION, IGNORE, REPORT, NOREPORT, ASYNC)"#,
    r#"conf/sync.json: /mappings/6/links: links names unknown mapping "nope" (known: m1_unknownConnector, m2_unknownManaged, m3_unknownObjectType, m6_linksMissing, m7_linksMismatch)"#,
    r#"conf/sync.json: /mappings/7/links: links to mapping "m2_unknownManaged" (system/hr/account -> managed/person), which has neither the same nor the swapped source and target (system/engineering/account -> managed/user)"#,
    r#"conf/sync.json: /mappings/8/correlationScript: "correlationQuery" and "correlationScript" are both set; a mapping uses one of them"#,
    r#"conf/sync.json: /mappings/9/name: duplicate mapping name "m3_unknownObjectType" (first defined at conf/sync.json /mappings/3)"#,
    r#"conf/sync.json: /mappings/10/reconSourceQueryPageSize: must be a positive integer, found 0"#,
    r#"conf/sync.json: /mappings/11/queuedSync/pageSize: must be a positive integer, found -5"#,
    r#"conf/sync.json: /mappings/11/queuedSync/pollingInterval: must be an integer of at least 10, found 5"#,
    r#"conf/sync.json: /mappings/12/safety/maxDeletes: bad limit "150%": a percentage is "N%" with N from 0 to 100"#,
    r#"conf/sync.json: /mappings/13/onCreate/type: Groovy scripts are not supported: idsync runs JavaScript only (use "type": "text/javascript")"#,
    r#"conf/sync.json: /mappings/14/validSource/file: script file "script/isValid.js" not found (looked in the project folder, its script/ folder and idsync's built-in scripts)"#,
    r#"conf/sync.json: /mappings/15/sourceCondition: invalid query filter at position 17: expected a value after "eq", found end of input"#,
    r#"conf/sync.json: /mappings/16/enableSync: expected a boolean, found a string"#,
    r#"conf/sync.json: /mappings/16/taskThreads: expected an integer, found a string"#,
];

#[test]
fn every_error_is_reported_with_file_pointer_and_sentence() {
    let d = load_with(&fixture("invalid"), &[]).unwrap_err();
    assert_eq!(lines(&d.errors), EXPECTED);
    assert_eq!(
        lines(&d.warnings),
        [r#"conf/sync.json: /mappings/16/comment: unknown key "comment""#]
    );
}

#[test]
fn diagnostics_print_one_line_each_errors_then_warnings() {
    let d = load_with(&fixture("invalid"), &[]).unwrap_err();
    let printed = d.to_string();
    let mut want: Vec<String> = EXPECTED.iter().map(|s| s.to_string()).collect();
    want.push(
        r#"warning: conf/sync.json: /mappings/16/comment: unknown key "comment""#.to_string(),
    );
    assert_eq!(printed.lines().collect::<Vec<_>>(), want);
    let err = idsync_config::ConfigError::from(d);
    assert_eq!(
        idsync_core::HasErrorCode::error_code(&err),
        idsync_core::ErrorCode::Config
    );
}

#[test]
fn providing_the_secret_removes_only_that_error() {
    let d = load_with(&fixture("invalid"), &[("ENGINEERING_PASSWORD", "x")]).unwrap_err();
    assert_eq!(d.errors.len(), EXPECTED.len() - 1);
    assert!(!d.to_string().contains("ENGINEERING_PASSWORD"));
}
