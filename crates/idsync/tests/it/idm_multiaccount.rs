//! IDM's `multiaccountlinking` sample (docs/idm-samples.md), with the real binary and a real
//! slapd: one managed user, two link qualifiers (`insured`, `agent`), and a `validSource` that
//! reads the user's `effectiveRoles` (IDM's default `managed.json`, computed by idsync's built-in
//! `roles/effectiveRoles`) and each role with `openidm.read`. Granting a role creates the account
//! of that category in its own branch of the directory by implicit synchronization; the password
//! goes through `openidm.decrypt`.

use crate::idm_layout::IDM_DEFAULT_MANAGED;
use crate::serve_ldap::{ldap_entries, link_qualifiers, provisioner_with, send_json};
use crate::server::Server;
use crate::slapd::{SUFFIX, Slapd};
use crate::support::Project;
use reqwest::Method;
use serde_json::{Value, json};

const MAPPING: &str = "managedUser_systemLdapAccounts";

/// The sample's mapping, as its `sync.json` has it: the DN by link qualifier, a correlation per
/// qualifier built in IDM's UI (an expression tree on `dn`), the role check in `validSource`.
fn sync() -> Value {
    json!({"mappings": [{
        "name": MAPPING,
        "source": "managed/user",
        "target": "system/ldap/account",
        "linkQualifiers": ["insured", "agent"],
        "correlationQuery": [
            {"linkQualifier": "insured", "expressionTree": {"all": ["dn"]},
             "mapping": MAPPING, "type": "text/javascript", "file": "ui/correlateTreeToQueryFilter.js"},
            {"linkQualifier": "agent", "expressionTree": {"all": ["dn"]},
             "mapping": MAPPING, "type": "text/javascript", "file": "ui/correlateTreeToQueryFilter.js"}
        ],
        "validSource": {"type": "text/javascript", "globals": {}, "source":
            "var res = false;\nvar i = 0;\n\
             while (!res && i < source.effectiveRoles.length) {\n\
               var roleId = source.effectiveRoles[i]._ref;\n\
               if (roleId != null && roleId.indexOf('/') != -1) {\n\
                 var roleInfo = openidm.read(roleId);\n\
                 res = (roleInfo.name === 'Agent' && linkQualifier === 'agent')\n\
                    || (roleInfo.name === 'Insured' && linkQualifier === 'insured');\n\
               }\n\
               i++;\n\
             }\n\
             res"},
        "properties": [
            {"source": "givenName", "target": "givenName"},
            {"source": "sn", "target": "sn"},
            {"source": "", "target": "cn", "transform": {"type": "text/javascript",
                "source": "source.displayName || (source.givenName + ' ' + source.sn);"}},
            {"source": "userName", "target": "uid"},
            {"source": "mail", "target": "mail"},
            {"source": "password", "target": "userPassword",
             "condition": {"type": "text/javascript", "source": "object.password != null"},
             "transform": {"type": "text/javascript", "source": "openidm.decrypt(source);"}},
            {"source": "", "target": "dn", "transform": {"type": "text/javascript", "globals": {},
                "source": format!("if (linkQualifier === 'agent') {{ 'uid=' + source.userName + ',ou=Contractors,{SUFFIX}'; }} \
                    else if (linkQualifier === 'insured') {{ 'uid=' + source.userName + ',ou=Customers,{SUFFIX}'; }}")}}
        ],
        "policies": [
            {"action": "IGNORE", "situation": "AMBIGUOUS"},
            {"action": "DELETE", "situation": "SOURCE_MISSING"},
            {"action": "IGNORE", "situation": "MISSING"},
            {"action": "EXCEPTION", "situation": "FOUND_ALREADY_LINKED"},
            {"action": "DELETE", "situation": "UNQUALIFIED"},
            {"action": "IGNORE", "situation": "UNASSIGNED"},
            {"action": "EXCEPTION", "situation": "LINK_ONLY"},
            {"action": "IGNORE", "situation": "TARGET_IGNORED"},
            {"action": "IGNORE", "situation": "SOURCE_IGNORED"},
            {"action": "IGNORE", "situation": "ALL_GONE"},
            {"action": "UPDATE", "situation": "CONFIRMED"},
            {"action": "LINK", "situation": "FOUND"},
            {"action": "CREATE", "situation": "ABSENT"}
        ]
    }]})
}

fn branches() -> String {
    ["Customers", "Contractors"]
        .iter()
        .map(|ou| {
            format!("dn: ou={ou},{SUFFIX}\nobjectClass: top\nobjectClass: organizationalUnit\nou: {ou}\n\n")
        })
        .collect()
}

async fn grant(s: &Server, user: &str, role_ref: &str) -> Value {
    let (status, body) = send_json(
        s,
        Method::PATCH,
        &format!("managed/user/{user}"),
        json!([{"operation": "add", "field": "/roles/-", "value": {"_ref": role_ref}}]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn dns(s: &Server, uid: &str) -> Vec<String> {
    let mut dns: Vec<String> = ldap_entries(s, &format!("uid eq \"{uid}\""))
        .await
        .iter()
        .map(|e| e["dn"].as_str().unwrap().to_lowercase())
        .collect();
    dns.sort();
    dns
}

#[tokio::test(flavor = "multi_thread")]
async fn roles_decide_which_accounts_a_user_gets() {
    let slapd = Slapd::start_with(&branches());
    let p = Project {
        dir: tempfile::tempdir().unwrap(),
    };
    let extra = json!({
        "description": {"type": "string", "nativeName": "description"},
        "telephoneNumber": {"type": "string", "nativeName": "telephoneNumber"},
        "userPassword": {"type": "string", "nativeName": "userPassword",
                         "flags": ["NOT_READABLE", "NOT_RETURNED_BY_DEFAULT"]}
    });
    p.write(
        "conf/provisioner.openicf-ldap.json",
        &provisioner_with(&slapd, extra).to_string(),
    );
    p.copy_in(IDM_DEFAULT_MANAGED, "conf/managed.json");
    p.write("conf/sync.json", &sync().to_string());
    let s = Server::start(p.path());

    let mut roles = Vec::new();
    for name in ["Agent", "Insured"] {
        let (status, role) = send_json(
            &s,
            Method::POST,
            "managed/role?_action=create",
            json!({"name": name, "description": format!("Role assigned to {name}s.")}),
        )
        .await;
        assert_eq!(status, 201, "{role}");
        roles.push(format!("managed/role/{}", role["_id"].as_str().unwrap()));
    }
    let (agent, insured) = (&roles[0], &roles[1]);

    for (id, given, sn) in [("bjensen", "Barbara", "Jensen"), ("jdoe", "John", "Doe")] {
        let (status, user) = send_json(
            &s,
            Method::POST,
            "managed/user?_action=create",
            json!({"_id": id, "userName": id, "givenName": given, "sn": sn,
                   "mail": format!("{id}@example.com"), "password": "Passw0rd!",
                   "description": "Created for OpenIDM"}),
        )
        .await;
        assert_eq!(status, 201, "{user}");
        assert_eq!(user["effectiveRoles"], json!([]), "{user}");
    }
    // No role, no account.
    assert!(dns(&s, "bjensen").await.is_empty());
    assert!(dns(&s, "jdoe").await.is_empty());

    let jdoe = grant(&s, "jdoe", agent).await;
    assert_eq!(jdoe["effectiveRoles"], json!([{"_ref": agent}]), "{jdoe}");
    assert_eq!(
        dns(&s, "jdoe").await,
        [format!("uid=jdoe,ou=contractors,{SUFFIX}")]
    );
    grant(&s, "bjensen", insured).await;
    assert_eq!(
        dns(&s, "bjensen").await,
        [format!("uid=bjensen,ou=customers,{SUFFIX}")]
    );
    // Both roles: both accounts, one link per qualifier.
    grant(&s, "bjensen", agent).await;
    assert_eq!(
        dns(&s, "bjensen").await,
        [
            format!("uid=bjensen,ou=contractors,{SUFFIX}"),
            format!("uid=bjensen,ou=customers,{SUFFIX}")
        ]
    );
    assert_eq!(link_qualifiers(&s, "bjensen").await, ["agent", "insured"]);

    // The clear password reached the directory through openidm.decrypt: the account binds.
    let bind = std::process::Command::new("ldapwhoami")
        .args(["-x", "-H", &slapd.url(), "-D"])
        .arg(format!("uid=bjensen,ou=Customers,{SUFFIX}"))
        .args(["-w", "Passw0rd!"])
        .output()
        .unwrap();
    assert!(
        bind.status.success(),
        "{}",
        String::from_utf8_lossy(&bind.stderr)
    );

    // A reconciliation finds every account linked and in step.
    let run = s.recon(MAPPING).await;
    assert_eq!(run["state"], "SUCCESS", "{run:#}");
    assert_eq!(run["situationSummary"]["CONFIRMED"], 3, "{run:#}");
}
