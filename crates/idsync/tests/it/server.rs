//! A real `idsync serve` for end-to-end tests: the binary on `127.0.0.1:0`, its address read
//! from the `listening on http://ADDR` line (docs/cli.md), killed when the value drops.
//!
//! ```ignore
//! let p = Project::copy_of("samples/hr-to-managed");
//! let s = Server::start(p.path());                       // admin token = ADMIN_TOKEN
//! let (status, body) = s.get("managed/user?_queryFilter=true").await;
//! let (status, body) = s.post("recon?_action=recon&mapping=m", None).await;
//! let (status, body) = send(s.http().get(s.url("info/ping"))).await; // any request
//! assert!(s.sigterm().success());
//! ```
//!
//! Every server gets `IDSYNC_ADMIN_TOKEN=`[`ADMIN_TOKEN`] and `--node-id e2e-node` unless the
//! extra arguments give another `--node-id`. Its stderr goes to the test's stderr (shown when
//! a test fails).

// A shared harness: each test file uses a subset of it.
#![allow(dead_code)]

use crate::support::idsync;
use reqwest::{Method, RequestBuilder};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The admin token every [`Server`] accepts.
pub const ADMIN_TOKEN: &str = "e2e-admin-token";

/// A running `idsync serve`.
#[derive(Debug)]
pub struct Server {
    child: Child,
    base: String,
    http: reqwest::Client,
}

impl Server {
    /// Serves `project` with the default options.
    pub fn start(project: &Path) -> Server {
        Server::start_with(project, &[], &[])
    }

    /// Serves `project` with extra environment variables and extra `serve` arguments (e.g.
    /// `["--repo", url]`). Panics with the exit status if the server stops before listening.
    pub fn start_with(project: &Path, env: &[(&str, &str)], args: &[&str]) -> Server {
        let mut cmd = idsync();
        cmd.args(["serve", "--bind", "127.0.0.1:0", "--project"])
            .arg(project)
            .env("IDSYNC_ADMIN_TOKEN", ADMIN_TOKEN)
            .envs(env.iter().copied())
            .args(args);
        if !args.contains(&"--node-id") {
            cmd.args(["--node-id", "e2e-node"]);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn idsync serve");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let Some(Ok(line)) = lines.next() else {
            let status = child.wait();
            panic!("idsync serve stopped before listening: {status:?} (its stderr is above)");
        };
        let base = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from serve: {line}"))
            .to_string();
        // Keep draining stdout so that the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server {
            child,
            base,
            http: reqwest::Client::new(),
        }
    }

    /// `http://ADDR/openidm/<path>` (`path` may hold a query string).
    pub fn url(&self, path: &str) -> String {
        format!("{}/openidm/{path}", self.base)
    }

    /// `http://ADDR` (for paths outside `/openidm`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The HTTP client, for requests without credentials or with other ones.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// A request to `/openidm/<path>` with the admin bearer token.
    pub fn admin(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(ADMIN_TOKEN)
    }

    /// `GET` as admin: `(status, json)`.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        send(self.admin(Method::GET, path)).await
    }

    /// `POST` as admin with an optional JSON body: `(status, json)`.
    pub async fn post(&self, path: &str, body: Option<Value>) -> (u16, Value) {
        let req = self.admin(Method::POST, path);
        send(match body {
            Some(b) => req.json(&b),
            None => req,
        })
        .await
    }

    /// `POST <collection>?_action=create` as admin; asserts 201 and returns the created object.
    pub async fn create(&self, collection: &str, body: Value) -> Value {
        let (status, created) = self
            .post(&format!("{collection}?_action=create"), Some(body))
            .await;
        assert_eq!(status, 201, "create in {collection}: {created}");
        created
    }

    /// Runs a reconciliation of `mapping` to its end (`waitForCompletion=true`) and returns its
    /// summary as `GET recon/<id>` shows it (with `situationSummary`).
    pub async fn recon(&self, mapping: &str) -> Value {
        let (status, run) = self
            .post(
                &format!("recon?_action=recon&mapping={mapping}&waitForCompletion=true"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{run}");
        let id = run["_id"]
            .as_str()
            .unwrap_or_else(|| panic!("no _id: {run}"));
        let (status, summary) = self.get(&format!("recon/{id}")).await;
        assert_eq!(status, 200, "{summary}");
        summary
    }

    /// Polls `GET recon/<id>` until the run is no longer ACTIVE and returns its summary. Not a
    /// timed assertion: the 10-minute bound only turns a hang into a failure.
    pub async fn wait_run(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let (status, summary) = self.get(&format!("recon/{id}")).await;
            assert_eq!(status, 200, "GET recon/{id}: {summary}");
            if summary["state"] != "ACTIVE" {
                return summary;
            }
            assert!(
                Instant::now() < deadline,
                "run {id} still active: {summary:#}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn sigterm(&mut self) -> ExitStatus {
        let kill = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(kill.success(), "kill -TERM failed");
        self.child.wait().expect("wait for idsync serve")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `req` and returns `(status, body)`: the body parsed as JSON, or as a JSON string
/// when it is not JSON (e.g. Prometheus text), or `null` when empty.
pub async fn send(req: RequestBuilder) -> (u16, Value) {
    let resp = req.send().await.expect("HTTP request");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("response body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

/// Asserts a CREST error: `status`, `{"code": status, "reason", "message"}` with a message
/// that contains `needle` (case-insensitive).
pub fn assert_crest_error(status: u16, body: &Value, expected: u16, needle: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["code"], expected, "{body}");
    assert!(body["reason"].is_string(), "no reason: {body}");
    let message = body["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no message: {body}"));
    assert!(
        message.to_lowercase().contains(&needle.to_lowercase()),
        "message {message:?} does not mention {needle:?}"
    );
}
