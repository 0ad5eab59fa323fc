//! Security and error answers of the real `idsync serve` (docs/rest.md#common-rules): 401 in the
//! CREST shape on every route but `info/ping`, a reader token from `conf/authentication.json` that
//! may GET but not write (403), connector secrets masked in `config/*`, and 400/404 CREST errors
//! with messages for bad input and unknown resources.

use crate::server::{ADMIN_TOKEN, Server, assert_crest_error, send};
use crate::support::Project;
use reqwest::Method;
use serde_json::json;

const READER_TOKEN: &str = "e2e-reader-token-5c1f";
const READER_USER: &str = "auditor";
const READER_PASSWORD: &str = "e2e-reader-password";
const LDAP_SECRET: &str = "e2e-ldap-secret-8d2b";
const MAPPING: &str = "systemHrAccounts_managedUser";

/// `samples/hr-to-managed` plus a reader token and a reader user, and an LDAP connector whose
/// password comes from the environment (`&{LDAP_PASSWORD}`,
/// docs/configuration.md#values-from-outside-name-substitution). Building connectors opens nothing,
/// so no directory needs to run.
fn project() -> Project {
    let p = Project::copy_of("samples/hr-to-managed");
    p.write(
        "conf/authentication.json",
        &json!({
            "tokens": [{"name": "r", "roles": ["reader"],
                        "sha256": idsync_api::sha256_hex(READER_TOKEN)}],
            "users": [{"username": READER_USER, "roles": ["reader"],
                       "password": idsync_api::hash_password(READER_PASSWORD).unwrap()}]
        })
        .to_string(),
    );
    p.write(
        "conf/provisioner.openicf-directory.json",
        &json!({
            "name": "directory",
            "connectorRef": {"connectorName": "org.identityconnectors.ldap.LdapConnector"},
            "configurationProperties": {
                "host": "127.0.0.1",
                "port": 1,
                "principal": "cn=admin,dc=example,dc=com",
                "credentials": "&{LDAP_PASSWORD}",
                "baseContexts": ["ou=People,dc=example,dc=com"],
                "accountObjectClasses": ["top", "person", "organizationalPerson", "inetOrgPerson"],
                "uidAttribute": "entryUUID"
            },
            "objectTypes": {"account": {"nativeType": "__ACCOUNT__", "properties": {
                "dn": {"type": "string", "nativeName": "__NAME__", "required": true},
                "uid": {"type": "string", "nativeName": "uid"},
                "userPassword": {"type": "string", "nativeName": "userPassword"}
            }}}
        })
        .to_string(),
    );
    p
}

fn server(p: &Project) -> Server {
    Server::start_with(p.path(), &[("LDAP_PASSWORD", LDAP_SECRET)], &[])
}

/// Every protected route, as (method, path).
const PROTECTED: &[(&str, &str)] = &[
    ("GET", "managed/user?_queryFilter=true"),
    ("GET", "managed/user/u00000001"),
    ("POST", "managed/user?_action=create"),
    ("GET", "system/hr/account?_queryFilter=true"),
    ("POST", "system/hr?_action=test"),
    ("GET", "recon"),
    (
        "POST",
        "recon?_action=recon&mapping=systemHrAccounts_managedUser",
    ),
    ("GET", "sync/mappings"),
    ("GET", "repo/link?_queryFilter=true"),
    ("GET", "config/sync"),
    ("GET", "config/provisioner.openicf/directory"),
    ("GET", "audit/recon?_queryFilter=true"),
    ("GET", "cluster"),
    ("GET", "metrics/prometheus"),
    ("GET", "no/such/route"),
];

fn method(m: &str) -> Method {
    Method::from_bytes(m.as_bytes()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_but_ping_needs_credentials() {
    let p = project();
    let s = server(&p);
    let http = s.http();

    let (status, ping) = send(http.get(s.url("info/ping"))).await;
    assert_eq!(status, 200, "{ping}");
    assert_eq!(ping["state"], "ACTIVE_READY");

    for (m, path) in PROTECTED {
        let (status, body) = send(http.request(method(m), s.url(path))).await;
        assert_crest_error(status, &body, 401, "");
        assert_eq!(body["reason"], "Unauthorized", "{m} {path}: {body}");
        // A wrong token, a wrong password and an unknown user are 401 too.
        let (status, body) = send(
            http.request(method(m), s.url(path))
                .bearer_auth("not-a-token"),
        )
        .await;
        assert_eq!(status, 401, "{m} {path} with a wrong token: {body}");
        let (status, body) = send(
            http.request(method(m), s.url(path))
                .header("X-OpenIDM-Username", READER_USER)
                .header("X-OpenIDM-Password", "wrong"),
        )
        .await;
        assert_eq!(status, 401, "{m} {path} with a wrong password: {body}");
    }
    // Nothing was written by the refused calls.
    let (status, runs) = s.get("recon").await;
    assert_eq!(status, 200, "{runs}");
    assert_eq!(runs["reconciliations"], json!([]), "{runs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reader_may_read_but_not_write() {
    let p = project();
    let s = server(&p);
    let (status, run) = s
        .post(
            &format!("recon?_action=recon&mapping={MAPPING}&waitForCompletion=true"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["state"], "SUCCESS", "{run}");
    let run_id = run["_id"].as_str().unwrap();

    // The token and the user/password headers both carry the reader role.
    let as_token =
        |m: Method, path: &str| s.http().request(m, s.url(path)).bearer_auth(READER_TOKEN);
    let as_user = |m: Method, path: &str| {
        s.http()
            .request(m, s.url(path))
            .header("X-OpenIDM-Username", READER_USER)
            .header("X-OpenIDM-Password", READER_PASSWORD)
    };
    let run_path = format!("recon/{run_id}");
    for path in [
        "managed/user?_queryFilter=true",
        "managed/user/u00000001",
        "system/hr/account?_queryFilter=true",
        "recon",
        run_path.as_str(),
        "repo/link?_queryFilter=true",
        "config/sync",
        "config/managed",
        "audit/recon?_queryFilter=true",
        "cluster",
    ] {
        let (status, body) = send(as_token(Method::GET, path)).await;
        assert_eq!(status, 200, "reader token GET {path}: {body}");
        let (status, body) = send(as_user(Method::GET, path)).await;
        assert_eq!(status, 200, "reader user GET {path}: {body}");
    }
    let (_, users) = send(as_token(Method::GET, "managed/user?_queryFilter=true")).await;
    assert_eq!(users["resultCount"], 10, "{users}");

    let new_user = json!({"_id": "reader-made", "userName": "readermade"});
    let writes = [
        (Method::POST, "managed/user?_action=create"),
        (Method::PUT, "managed/user/reader-made"),
        (Method::PATCH, "managed/user/u00000001"),
        (Method::DELETE, "managed/user/u00000001"),
        (Method::PUT, "system/hr/account/u00000001"),
        (Method::DELETE, "system/hr/account/u00000001"),
        (
            Method::POST,
            "recon?_action=recon&mapping=systemHrAccounts_managedUser",
        ),
        (Method::POST, "system/hr?_action=test"),
    ];
    for (m, path) in &writes {
        let body = if *m == Method::PATCH {
            json!([{"operation": "replace", "field": "/sn", "value": "Changed"}])
        } else {
            new_user.clone()
        };
        let (status, err) = send(as_token(m.clone(), path).json(&body)).await;
        assert_crest_error(status, &err, 403, "");
        assert_eq!(err["reason"], "Forbidden", "{m} {path}: {err}");
        let (status, err) = send(as_user(m.clone(), path).json(&body)).await;
        assert_eq!(status, 403, "reader user {m} {path}: {err}");
    }
    let (status, err) = send(as_token(
        Method::POST,
        &format!("{run_path}?_action=cancel"),
    ))
    .await;
    assert_eq!(status, 403, "{err}");

    // None of the refused writes happened.
    let (status, _) = s.get("managed/user/reader-made").await;
    assert_eq!(status, 404);
    let (status, user) = s.get("managed/user/u00000001").await;
    assert_eq!(status, 200, "{user}");
    assert_ne!(user["sn"], "Changed");
    let (_, runs) = s.get("recon").await;
    assert_eq!(
        runs["reconciliations"].as_array().unwrap().len(),
        1,
        "{runs}"
    );
    let hr = p.read("data/hr.csv");
    assert!(hr.contains("u00000001"), "the reader deleted a CSV row");
}

#[tokio::test(flavor = "multi_thread")]
async fn connector_secrets_are_masked_in_config() {
    let p = project();
    let s = server(&p);
    let (status, body) = s.get("config/provisioner.openicf/directory").await;
    assert_eq!(status, 200, "{body}");
    let props = &body["configurationProperties"];
    assert_eq!(props["credentials"], "********", "{body}");
    assert_eq!(props["principal"], "cn=admin,dc=example,dc=com", "{body}");
    // A schema property called userPassword describes a field and stays readable.
    assert_eq!(
        body["objectTypes"]["account"]["properties"]["userPassword"]["nativeName"], "userPassword",
        "{body}"
    );
    // The reader sees the same masked document.
    let (status, as_reader) = send(
        s.http()
            .get(s.url("config/provisioner.openicf/directory"))
            .bearer_auth(READER_TOKEN),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(as_reader, body);

    for path in [
        "config",
        "config/provisioner.openicf/directory",
        "config/provisioner.openicf/hr",
        "config/sync",
        "config/managed",
    ] {
        let resp = s
            .admin(Method::GET, path)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!resp.contains(LDAP_SECRET), "{path} shows the password");
        assert!(!resp.contains(ADMIN_TOKEN), "{path} shows the admin token");
        assert!(
            !resp.contains(READER_TOKEN),
            "{path} shows the reader token"
        );
        assert!(!resp.contains(READER_PASSWORD), "{path} shows a password");
        assert!(
            !resp.contains(&idsync_api::sha256_hex(READER_TOKEN)),
            "{path} shows a token hash"
        );
    }
    // An error about the unreachable directory does not quote the password either.
    let (status, body) = s.post("system/directory?_action=test", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ok"], false, "{body}");
    assert!(!body.to_string().contains(LDAP_SECRET), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_and_unknown_resources_are_crest_errors() {
    let p = project();
    let s = server(&p);

    // Malformed JSON bodies.
    for (m, path) in [
        (Method::POST, "managed/user?_action=create"),
        (Method::PUT, "managed/user/broken"),
        (Method::PATCH, "managed/user/u00000001"),
        (
            Method::POST,
            &format!("recon?_action=recon&mapping={MAPPING}") as &str,
        ),
    ] {
        let (status, err) = send(
            s.admin(m.clone(), path)
                .header("Content-Type", "application/json")
                .body("{\"userName\": \"x\","),
        )
        .await;
        assert_crest_error(status, &err, 400, "json");
        assert_eq!(err["reason"], "Bad Request", "{m} {path}: {err}");
    }
    // The refused recon did not start.
    let (_, runs) = s.get("recon").await;
    assert_eq!(runs["reconciliations"], json!([]), "{runs}");

    // Broken filters: the message names the problem and where it is.
    for (filter, needle) in [
        ("userName eq", "position 11"),
        ("userName eq \"x", "position"),
        ("(userName eq \"x\"", "position"),
        ("userName zz \"x\"", "zz"),
    ] {
        for path in [
            "managed/user",
            "system/hr/account",
            "repo/link",
            "audit/recon",
        ] {
            let (status, err) = send(
                s.admin(Method::GET, path)
                    .query(&[("_queryFilter", filter)]),
            )
            .await;
            assert_crest_error(status, &err, 400, needle);
            assert!(
                err["message"].as_str().unwrap().contains("filter"),
                "{path} {filter}: {err}"
            );
        }
    }
    // Other bad parameters.
    let (status, err) = s.get("managed/user?_queryFilter=true&_pageSize=ten").await;
    assert_crest_error(status, &err, 400, "_pageSize");
    let (status, err) = s
        .get("managed/user?_queryFilter=true&_totalPagedResultsPolicy=ALL")
        .await;
    assert_crest_error(status, &err, 400, "_totalPagedResultsPolicy");

    // Unknown mapping, missing mapping, unknown action.
    let (status, err) = s.post("recon?_action=recon&mapping=nope", None).await;
    assert_crest_error(status, &err, 400, "nope");
    let (status, err) = s.post("recon?_action=recon", None).await;
    assert_crest_error(status, &err, 400, "mapping");
    let (status, err) = s
        .post(&format!("recon?_action=explode&mapping={MAPPING}"), None)
        .await;
    assert_crest_error(status, &err, 400, "explode");

    // Unknown resources.
    let (status, err) = s.get("managed/nosuchtype?_queryFilter=true").await;
    assert_crest_error(status, &err, 404, "nosuchtype");
    let (status, err) = s.get("managed/nosuchtype/x").await;
    assert_crest_error(status, &err, 404, "nosuchtype");
    let (status, err) = s.get("managed/user/no-such-user").await;
    assert_crest_error(status, &err, 404, "no-such-user");
    let (status, err) = s.get("system/nosuch/account?_queryFilter=true").await;
    assert_crest_error(status, &err, 404, "nosuch");
    let (status, err) = s.get("system/hr/nosuchtype?_queryFilter=true").await;
    assert_crest_error(status, &err, 404, "nosuchtype");
    let (status, err) = s.get("recon/no-such-run").await;
    assert_crest_error(status, &err, 404, "no-such-run");
    let (status, err) = s.get("config/nosuchconfig").await;
    assert_crest_error(status, &err, 404, "nosuchconfig");
    let (status, err) = s.get("audit/nosuchtopic?_queryFilter=true").await;
    assert_crest_error(status, &err, 404, "nosuchtopic");

    // Accept-API-Version is accepted and ignored.
    let (status, body) = send(
        s.admin(Method::GET, "managed/user?_queryFilter=true")
            .header("Accept-API-Version", "protocol=2.1,resource=1.0"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}
