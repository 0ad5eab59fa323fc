//! `samples/idm-scripts`, an IDM-style project (docs/scripts.md): a correlation script calling
//! `openidm.query`, transforms from `script/` files, `onCreate`/`onUpdate`/`onValidate` and a
//! `postCreate` that creates a related object with `openidm.create`, `logger` calls — run with
//! `idsync recon` as the README runs a sample, and with `idsync serve`.

use crate::server::Server;
use crate::support::{Project, urlencode};
use serde_json::{Value, json};

const MAPPING: &str = "systemHrAccounts_managedUser";

fn by_mail(users: &[Value], mail: &str) -> Value {
    users
        .iter()
        .find(|u| u["mail"] == mail)
        .cloned()
        .unwrap_or_else(|| panic!("no user {mail}: {users:?}"))
}

async fn all(s: &Server, path: &str) -> Vec<Value> {
    let (status, body) = s.get(&format!("{path}?_queryFilter=true")).await;
    assert_eq!(status, 200, "{body}");
    body["result"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idm_style_project_with_scripts_runs_from_the_cli_and_the_server() {
    let p = Project::copy_of("samples/idm-scripts");

    // First load from the CLI: four users, made by the scripts.
    let out = p.recon(MAPPING, &["--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{summary:#}\n{stderr}");
    assert_eq!(summary["situationSummary"]["ABSENT"], 4, "{summary:#}");
    assert_eq!(summary["statusSummary"]["FAILURE"], 0, "{summary:#}");
    // logger.info lines reach the default log with the script's origin.
    assert!(
        stderr.contains("creating user ada@example.com (Ada Lovelace)")
            && stderr.contains("onCreate-user.js"),
        "{stderr}"
    );

    // A second run: the correlation script finds every user, nothing is created again.
    let (code, again) = p.recon_json(MAPPING, &[]);
    assert_eq!(code, 0, "{again:#}");
    assert_eq!(again["situationSummary"]["CONFIRMED"], 4, "{again:#}");

    // A department changes in HR: onUpdate sees the old and the new user.
    let hr = p.read("data/hr.csv").replace(
        "1001,Ada,Lovelace,ada@example.com, Engineering",
        "1001,Ada,Lovelace,ada@example.com,research",
    );
    p.write("data/hr.csv", &hr);
    // A row with no valid mail: onValidate refuses that user, the run goes on.
    p.write(
        "data/hr.csv",
        &format!("{hr}1005,No,Mail,nobody,Research\n"),
    );
    let out = p.recon(MAPPING, &["--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let third: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(third["state"], "SUCCESS", "{third:#}");
    assert_eq!(third["statusSummary"]["FAILURE"], 1, "{third:#}");
    assert!(
        stderr.contains("ada@example.com moves from Engineering to Research"),
        "{stderr}"
    );

    // The server on the same project sees what the CLI runs made.
    let s = Server::start(p.path());
    let users = all(&s, "managed/user").await;
    assert_eq!(users.len(), 4, "{users:?}");
    let ada = by_mail(&users, "ada@example.com");
    assert_eq!(ada["displayName"], "Ada Lovelace", "transform from a file");
    assert_eq!(ada["department"], "Research", "{ada}");
    assert_eq!(ada["accountStatus"], "active", "set by onCreate");
    assert_eq!(
        by_mail(&users, "grace@example.com")["department"],
        "Engineering"
    );
    let (_, failures) = s
        .get(&format!(
            "audit/recon?_queryFilter={}",
            urlencode(r#"status eq "FAILURE""#)
        ))
        .await;
    let failure = &failures["result"][0];
    assert_eq!(
        failure["sourceObjectId"], "system/hr/account/1005",
        "{failures:#}"
    );
    assert!(
        failure["message"]
            .as_str()
            .is_some_and(|m| m.contains("needs a valid mail")),
        "{failure:#}"
    );
    // postCreate gave each user a welcome note through openidm.create.
    let notes = all(&s, "managed/welcome").await;
    assert_eq!(notes.len(), 4, "{notes:?}");
    assert!(
        notes
            .iter()
            .any(|n| n["userId"] == ada["_id"] && n["message"] == "Welcome, Ada!"),
        "{notes:?}"
    );

    // Over REST the same lifecycle scripts run: a user without a valid mail is refused with
    // the script's message; a valid one is created, with its welcome note.
    let (status, body) = s
        .post(
            "managed/user?_action=create",
            Some(json!({"userName": "x", "mail": "x"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("needs a valid mail"),
        "{body}"
    );
    let (status, body) = s
        .post(
            "managed/user?_action=create",
            Some(
                json!({"userName": "lin@example.com", "mail": "lin@example.com",
                        "givenName": "Lin"}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["accountStatus"], "active", "{body}");
    assert_eq!(all(&s, "managed/welcome").await.len(), 5);
}
