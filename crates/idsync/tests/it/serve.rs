//! `idsync serve`: the real binary on port 0, driven over HTTP (docs/rest.md): ping without
//! credentials, 401 without a token, recon started with waitForCompletion and read back, the
//! plan of a dry run, errors in the CREST shape, and a clean exit on SIGTERM.

use crate::server::{Server, send};
use crate::support::Project;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn serve_answers_ping_auth_recon_and_stops_cleanly() {
    let p = Project::copy_of("samples/getting-started");
    let mut server = Server::start(p.path());

    let (status, ping) = send(server.http().get(server.url("info/ping"))).await;
    assert_eq!(status, 200);
    assert_eq!(
        ping,
        json!({"_id": "", "state": "ACTIVE_READY", "shortDesc": "OpenIDM ready"})
    );

    let (status, err) = send(server.http().get(server.url("recon"))).await;
    assert_eq!(status, 401, "{err}");
    assert_eq!(err["reason"], "Unauthorized");

    let (status, started) = server
        .post(
            "recon?_action=recon&mapping=HumanResources_Engineering&waitForCompletion=true",
            None,
        )
        .await;
    assert_eq!(status, 200, "{started}");
    assert_eq!(started["state"], "SUCCESS");
    let id = started["_id"].as_str().unwrap();

    let (status, summary) = server.get(&format!("recon/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(summary["situationSummary"]["FOUND"], 2, "{summary:#}");
    assert_eq!(summary["situationSummary"]["ABSENT"], 1);

    let (_, list) = server.get("recon").await;
    assert_eq!(list["reconciliations"].as_array().unwrap().len(), 1);

    // A dry run and its plan.
    let (_, dry) = server
        .post(
            "recon?_action=recon&mapping=HumanResources_Engineering&analyze=true&waitForCompletion=true",
            None,
        )
        .await;
    let dry_id = dry["_id"].as_str().unwrap();
    let (status, plan) = server
        .get(&format!(
            "recon/{dry_id}/plan?_queryFilter=situation+eq+\"CONFIRMED\""
        ))
        .await;
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["resultCount"], 3, "{plan:#}");

    // Errors: unknown mapping, unknown run, bad JSON body.
    let (status, err) = server.post("recon?_action=recon&mapping=nope", None).await;
    assert_eq!(status, 400, "{err}");
    assert!(err["message"].as_str().unwrap().contains("nope"));
    let (status, _) = server.post("recon/no-such-run?_action=cancel", None).await;
    assert_eq!(status, 404);
    let (status, _) = send(
        server
            .admin(
                reqwest::Method::POST,
                "recon?_action=recon&mapping=HumanResources_Engineering",
            )
            .body("{not json"),
    )
    .await;
    assert_eq!(status, 400);

    let code = server.sigterm();
    assert!(code.success(), "SIGTERM exits 0: {code:?}");
}
