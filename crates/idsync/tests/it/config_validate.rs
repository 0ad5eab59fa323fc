//! `idsync config validate`: exit codes and the `FILE: /pointer: message` lines (docs/cli.md).

use crate::support::{Project, idsync, validate};

#[test]
fn a_valid_sample_validates() {
    for sample in ["samples/getting-started", "samples/hr-to-managed"] {
        let p = Project::copy_of(sample);
        let out = idsync()
            .args(["config", "validate", "--project"])
            .arg(p.path())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{sample}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn an_invalid_project_exits_2_with_one_line_per_error() {
    let p = Project::copy_of("samples/getting-started");
    let sync = p
        .read("conf/sync.json")
        .replace("system/engineering/account", "system/ldap-main/account")
        .replace("\"action\": \"IGNORE\"", "\"action\": \"SHRUG\"");
    p.write("conf/sync.json", &sync);
    let out = idsync()
        .args(["config", "validate", "--project"])
        .arg(p.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.lines().any(|l| l
            .starts_with("conf/sync.json: /mappings/0/target: unknown connector \"ldap-main\"")),
        "{stderr}"
    );
    assert!(
        stderr.lines().any(
            |l| l.starts_with("conf/sync.json: /mappings/0/policies/6/action: ")
                && l.contains("SHRUG")
        ),
        "{stderr}"
    );
}

#[test]
fn a_script_that_does_not_compile_is_an_error_naming_the_script() {
    let p = Project::copy_of("samples/getting-started");
    p.write("script/broken.js", "var x = ;\n");
    p.write(
        "conf/managed.json",
        r#"{"objects": [{"name": "user",
            "onCreate": {"type": "text/javascript", "file": "script/broken.js"},
            "onUpdate": {"type": "text/javascript", "source": "object.x = (;"}}]}"#,
    );
    let (code, stderr) = validate(&p);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("managed object type user: ") && l.contains("broken.js")),
        "{stderr}"
    );
    assert!(stderr.contains("error(s)"), "{stderr}");
}
