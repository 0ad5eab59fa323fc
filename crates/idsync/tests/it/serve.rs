//! `idsync serve`: the real binary on port 0, driven over HTTP (SPEC §11, §15): ping without
//! credentials, 401 without a token, recon started with waitForCompletion and read back, the
//! plan of a dry run, errors in the CREST shape, and a clean exit on SIGTERM.

use crate::support::{Project, idsync};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

const TOKEN: &str = "e2e-admin-token";

struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(p: &Project) -> Server {
        let mut child = idsync()
            .args([
                "serve",
                "--bind",
                "127.0.0.1:0",
                "--node-id",
                "e2e-node",
                "--project",
            ])
            .arg(p.path())
            .env("IDSYNC_ADMIN_TOKEN", TOKEN)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = lines.next().expect("serve printed nothing").unwrap();
        let base = line.strip_prefix("listening on ").expect(&line).to_string();
        std::thread::spawn(move || for _ in lines {});
        Server { child, base }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/openidm/{path}", self.base)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn json_of(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_answers_ping_auth_recon_and_stops_cleanly() {
    let p = Project::copy_of("samples/getting-started");
    let mut server = Server::start(&p);
    let http = reqwest::Client::new();

    let (status, ping) = json_of(http.get(server.url("info/ping")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(
        ping,
        json!({"_id": "", "state": "ACTIVE_READY", "shortDesc": "OpenIDM ready"})
    );

    let (status, err) = json_of(http.get(server.url("recon")).send().await.unwrap()).await;
    assert_eq!(status, 401, "{err}");
    assert_eq!(err["reason"], "Unauthorized");

    let (status, started) =
        json_of(
            http.post(server.url(
                "recon?_action=recon&mapping=HumanResources_Engineering&waitForCompletion=true",
            ))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap(),
        )
        .await;
    assert_eq!(status, 200, "{started}");
    assert_eq!(started["state"], "SUCCESS");
    let id = started["_id"].as_str().unwrap();

    let (status, summary) = json_of(
        http.get(server.url(&format!("recon/{id}")))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(summary["situationSummary"]["FOUND"], 2, "{summary:#}");
    assert_eq!(summary["situationSummary"]["ABSENT"], 1);

    let (_, list) = json_of(
        http.get(server.url("recon"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(list["reconciliations"].as_array().unwrap().len(), 1);

    // A dry run and its plan.
    let (_, dry) = json_of(
        http.post(server.url(
            "recon?_action=recon&mapping=HumanResources_Engineering&analyze=true&waitForCompletion=true",
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap(),
    )
    .await;
    let dry_id = dry["_id"].as_str().unwrap();
    let (status, plan) = json_of(
        http.get(server.url(&format!(
            "recon/{dry_id}/plan?_queryFilter=situation+eq+\"CONFIRMED\""
        )))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["resultCount"], 3, "{plan:#}");

    // Errors: unknown mapping, unknown run, bad JSON body.
    let (status, err) = json_of(
        http.post(server.url("recon?_action=recon&mapping=nope"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400, "{err}");
    assert!(err["message"].as_str().unwrap().contains("nope"));
    let (status, _) = json_of(
        http.post(server.url("recon/no-such-run?_action=cancel"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = json_of(
        http.post(server.url("recon?_action=recon&mapping=HumanResources_Engineering"))
            .bearer_auth(TOKEN)
            .body("{not json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);

    let kill = std::process::Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let code = server.child.wait().unwrap();
    assert!(code.success(), "SIGTERM exits 0: {code:?}");
}
