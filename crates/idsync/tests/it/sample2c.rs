//! IDM's `sample2c` (LDAP group membership, docs/idm-samples.md) with the real binary and a real
//! slapd: the sample's `conf/`, `script/` and `data/Example.ldif` as published (fixtures), only
//! the connection settings pointed at the test directory. Recon LDAP → managed/user carries
//! `ldapGroups`; a change of a user's `ldapGroups` over REST reaches the groups in the
//! directory through implicit synchronization of `managedUser_systemLdapAccounts`.
//!
//! The user here has no password: the sample's password transform calls `openidm.decrypt`, and
//! its condition (`object.password != null`) keeps it out of the way for him. No user is created
//! in managed/user: the sample's correlation script answers IDM's older `{"query": {"Equals":
//! ...}}` form, which idsync's correlation does not read (docs/idm-samples.md).

use crate::server::Server;
use crate::slapd::{ADMIN_DN, ADMIN_PW, GROUPS, PEOPLE, Slapd};
use crate::support::{Project, repo_root};
use serde_json::{Value, json};
use std::process::Command;

const FIXTURE: &str = "crates/idsync/tests/fixtures/sample2c";
const LDAP_TO_MANAGED: &str = "systemLdapAccounts_managedUser";

/// The sample's entries below `ou=People` and `ou=Groups`: the test directory already has the
/// suffix and both containers (the sample's LDIF also makes `dc=com`, outside its suffix).
fn sample_entries() -> String {
    let ldif = std::fs::read_to_string(repo_root().join(FIXTURE).join("data/Example.ldif"))
        .expect("the sample's LDIF");
    let below = |dn: &str, parent: &str| {
        let dn = dn.to_ascii_lowercase();
        dn.ends_with(&format!(",{}", parent.to_ascii_lowercase()))
    };
    ldif.split("\n\n")
        .filter(|entry| {
            let dn = entry
                .lines()
                .find_map(|l| l.strip_prefix("dn: "))
                .unwrap_or("");
            below(dn, PEOPLE) || below(dn, GROUPS)
        })
        .map(|entry| format!("{}\n\n", entry.trim()))
        .collect()
}

/// A copy of the sample with only the connection settings changed.
fn project(s: &Slapd) -> Project {
    let p = Project::copy_of(FIXTURE);
    let path = "conf/provisioner.openicf-ldap.json";
    let mut provisioner: Value = serde_json::from_str(&p.read(path)).unwrap();
    let props = &mut provisioner["configurationProperties"];
    props["host"] = json!("127.0.0.1");
    props["port"] = json!(s.port());
    props["principal"] = json!(ADMIN_DN);
    props["credentials"] = json!(ADMIN_PW);
    p.write(path, &serde_json::to_string_pretty(&provisioner).unwrap());
    p
}

fn group(cn: &str) -> String {
    format!("cn={cn},{GROUPS}")
}

fn person(uid: &str) -> String {
    format!("uid={uid},{PEOPLE}")
}

/// The `uniqueMember` values of a group as the directory holds them (read with OpenLDAP's own
/// `ldapsearch`, not with idsync), lower-cased.
fn members(s: &Slapd, cn: &str) -> Vec<String> {
    let out = Command::new("ldapsearch")
        .args([
            "-x",
            "-LLL",
            "-o",
            "ldif-wrap=no",
            "-H",
            &s.url(),
            "-D",
            ADMIN_DN,
        ])
        .args([
            "-w",
            ADMIN_PW,
            "-s",
            "base",
            "-b",
            &group(cn),
            "uniqueMember",
        ])
        .output()
        .expect("run ldapsearch (Debian package ldap-utils)");
    assert!(
        out.status.success(),
        "ldapsearch {cn}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut m: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("uniqueMember: "))
        .map(|v| v.replace(", ", ",").to_ascii_lowercase())
        .collect();
    m.sort();
    m
}

/// Adds `member` to a group with OpenLDAP's own `ldapmodify`.
fn add_member(s: &Slapd, cn: &str, member: &str) {
    let mut child = Command::new("ldapmodify")
        .args(["-x", "-H", &s.url(), "-D", ADMIN_DN, "-w", ADMIN_PW])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("run ldapmodify (Debian package ldap-utils)");
    let change = format!(
        "dn: {}\nchangetype: modify\nadd: uniqueMember\nuniqueMember: {member}\n",
        group(cn)
    );
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), change.as_bytes()).unwrap();
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success(), "ldapmodify {cn}");
}

fn lower(items: &[String]) -> Vec<String> {
    let mut v: Vec<String> = items.iter().map(|s| s.to_ascii_lowercase()).collect();
    v.sort();
    v
}

fn groups_of(user: &Value) -> Vec<String> {
    let mut v: Vec<String> = user["ldapGroups"]
        .as_array()
        .unwrap_or_else(|| panic!("ldapGroups is an array: {user:#}"))
        .iter()
        .map(|g| g.as_str().unwrap().replace(", ", ",").to_ascii_lowercase())
        .collect();
    v.sort();
    v
}

async fn managed_user(s: &Server, user_name: &str) -> Value {
    let (status, users) = s
        .get(&format!(
            "managed/user?_queryFilter=userName%20eq%20%22{user_name}%22"
        ))
        .await;
    assert_eq!(status, 200, "{users}");
    assert_eq!(users["resultCount"], 1, "{users:#}");
    users["result"][0].clone()
}

async fn set_groups(s: &Server, id: &str, groups: &[String]) {
    let (status, body) = crate::server::send(
        s.admin(reqwest::Method::PATCH, &format!("managed/user/{id}"))
            .json(&json!([{"operation": "replace", "field": "/ldapGroups", "value": groups}])),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sample2c_synchronizes_ldap_group_membership_both_ways() {
    let slapd = Slapd::start_unchecked(&sample_entries());
    assert_eq!(members(&slapd, "openidm"), lower(&[person("jdoe")]));
    assert!(members(&slapd, "openidm2").is_empty());
    let p = project(&slapd);

    // `idsync recon` LDAP → managed/user: jdoe arrives with the group that holds him.
    let (code, summary) = p.recon_json(LDAP_TO_MANAGED, &[]);
    assert_eq!(code, 0, "{summary:#}");
    assert_eq!(summary["situationSummary"]["ABSENT"], 1, "{summary:#}");
    assert_eq!(summary["progress"]["target"]["created"], 1, "{summary:#}");

    let s = Server::start(p.path());
    let jdoe = managed_user(&s, "jdoe").await;
    assert_eq!(groups_of(&jdoe), lower(&[group("openidm")]), "{jdoe:#}");
    let jdoe_id = jdoe["_id"].as_str().unwrap().to_string();

    // managed/user → LDAP: a new group in jdoe's ldapGroups puts him in it.
    set_groups(&s, &jdoe_id, &[group("openidm"), group("openidm2")]).await;
    assert_eq!(members(&slapd, "openidm2"), lower(&[person("jdoe")]));
    assert_eq!(members(&slapd, "openidm"), lower(&[person("jdoe")]));

    // An administrator adds another member to openidm in the directory (OpenLDAP refuses to
    // empty a groupOfUniqueNames, which the next step would otherwise do).
    add_member(&slapd, "openidm", ADMIN_DN);

    // A group dropped from jdoe's ldapGroups drops him from it.
    set_groups(&s, &jdoe_id, &[group("openidm2")]).await;
    assert_eq!(members(&slapd, "openidm"), lower(&[ADMIN_DN.to_string()]));
    assert_eq!(members(&slapd, "openidm2"), lower(&[person("jdoe")]));

    // A user created in managed/user is provisioned with its groups: the mapping correlates
    // with the sample's script, which answers IDM's older query form
    // ({"query": {"Equals": ...}}), finds no one, and creates the entry (its DN from the
    // mapping's onCreate). The password passes openidm.decrypt; the sample's account type
    // declares no password attribute, so, as with IDM's connector, none is written.
    let created = s
        .create(
            "managed/user",
            json!({"userName": "bjensen", "givenName": "Barbara", "sn": "Jensen",
                   "displayName": "Barbara Jensen", "mail": "bjensen@example.com",
                   "password": "Passw0rd!", "ldapGroups": [group("openidm2")]}),
        )
        .await;
    assert_eq!(created["userName"], "bjensen", "{created}");
    assert_eq!(
        members(&slapd, "openidm2"),
        lower(&[person("bjensen"), person("jdoe")])
    );

    // A second recon LDAP → managed reads the directory's membership back unchanged.
    drop(s);
    let (code, summary) = p.recon_json(LDAP_TO_MANAGED, &[]);
    assert_eq!(code, 0, "{summary:#}");
    assert_eq!(summary["situationSummary"]["CONFIRMED"], 2, "{summary:#}");
    let s = Server::start(p.path());
    assert_eq!(
        groups_of(&managed_user(&s, "jdoe").await),
        lower(&[group("openidm2")])
    );
}
