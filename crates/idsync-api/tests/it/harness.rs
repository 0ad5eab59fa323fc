//! A temp project (managed user type, a CSV connector `hr`, authentication.json with an admin
//! token, a reader token and an argon2 user), a SQLite repository in the project, and the API
//! served on 127.0.0.1:0 until the harness is dropped.

use axum::Router;
use idsync_api::{ApiState, AuthState, Limits, hash_password, sha256_hex};
use idsync_connectors::Connector;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use tempfile::TempDir;

pub const ADMIN_TOKEN: &str = "admin-token-for-tests-0123456789";
pub const READER_TOKEN: &str = "reader-token-for-tests-0123456789";
pub const USER: &str = "openidm-admin";
pub const USER_PASSWORD: &str = "correct horse battery staple";
pub const CSV_PASSWORD: &str = "csv-connector-secret-pw";

pub struct Server {
    pub base: String,
    pub client: reqwest::Client,
    pub dir: TempDir,
    /// The repository the server uses (tests seed rows through it).
    pub repo: Arc<dyn idsync_repo::Repository>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

fn write(dir: &std::path::Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

pub fn hr_csv(rows: usize) -> String {
    let mut s = String::from("uid,userName,givenName,sn,mail,department\n");
    for i in 0..rows {
        s.push_str(&format!(
            "u{i:04},user{i},Given{i},Sn{i},user{i}@example.com,{}\n",
            ["Sales", "Finance", "IT"][i % 3]
        ));
    }
    s
}

impl Server {
    pub async fn start() -> Server {
        Self::start_with(Limits::default(), 10).await
    }

    pub async fn start_with(limits: Limits, csv_rows: usize) -> Server {
        Self::start_full(limits, csv_rows, |s| s, Router::new()).await
    }

    /// With the state adjusted by `configure` (hooks) and extra routes (what the integrator
    /// plugs in).
    pub async fn start_full(
        limits: Limits,
        csv_rows: usize,
        configure: impl FnOnce(ApiState) -> ApiState,
        extra: Router<ApiState>,
    ) -> Server {
        Self::start_project(limits, csv_rows, configure, move |_| extra, None, None).await
    }

    /// With extra routes built from the state (e.g. the engine's `recon` routes over the same
    /// project, repository and connectors).
    pub async fn start_with_routes(
        limits: Limits,
        csv_rows: usize,
        routes_of: impl FnOnce(&ApiState) -> Router<ApiState>,
    ) -> Server {
        Self::start_project(limits, csv_rows, |s| s, routes_of, None, None).await
    }

    /// With `sync` as conf/sync.json instead of the default one-mapping file.
    pub async fn start_with_sync(sync: Value) -> Server {
        Self::start_project(
            Limits::default(),
            10,
            |s| s,
            |_| Router::new(),
            Some(sync),
            None,
        )
        .await
    }

    /// With `managed` as conf/managed.json instead of the one `user` type.
    pub async fn start_with_managed(managed: Value) -> Server {
        let (limits, none) = (Limits::default(), None);
        Self::start_project(limits, 10, |s| s, |_| Router::new(), none, Some(managed)).await
    }

    async fn start_project(
        limits: Limits,
        csv_rows: usize,
        configure: impl FnOnce(ApiState) -> ApiState,
        routes_of: impl FnOnce(&ApiState) -> Router<ApiState>,
        sync: Option<Value>,
        managed: Option<Value>,
    ) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let managed = managed.unwrap_or_else(|| {
            json!({"objects": [{"name": "user", "schema": {"type": "object", "properties": {
                "userName": {"type": "string"}, "mail": {"type": "string"}}}}]})
        });
        write(d, "conf/managed.json", &managed.to_string());
        write(
            d,
            "conf/provisioner.openicf-hr.json",
            &json!({
                "name": "hr",
                "connectorRef": {"connectorName": "org.forgerock.openicf.csvfile.CSVFileConnector"},
                "configurationProperties": {
                    "csvFile": "data/hr.csv", "headerUid": "uid",
                    "password": CSV_PASSWORD, "credentials": CSV_PASSWORD
                },
                "objectTypes": {"account": {"id": "__ACCOUNT__", "type": "object",
                    "nativeType": "__ACCOUNT__", "properties": {
                        "uid": {"type": "string", "nativeName": "__NAME__"},
                        "userName": {"type": "string", "nativeName": "userName"},
                        "givenName": {"type": "string", "nativeName": "givenName"},
                        "sn": {"type": "string", "nativeName": "sn"},
                        "mail": {"type": "string", "nativeName": "mail"},
                        "department": {"type": "string", "nativeName": "department"}}}}
            })
            .to_string(),
        );
        let sync = sync.unwrap_or_else(|| {
            json!({"mappings": [{
                "name": "systemHrAccounts_managedUser",
                "source": "system/hr/account", "target": "managed/user",
                "properties": [{"source": "userName", "target": "userName"}],
                "policies": [{"situation": "ABSENT", "action": "CREATE"}]
            }]})
        });
        write(d, "conf/sync.json", &sync.to_string());
        write(
            d,
            "conf/authentication.json",
            &json!({
                "tokens": [
                    {"name": "ci-admin", "roles": ["admin"], "sha256": sha256_hex(ADMIN_TOKEN)},
                    {"name": "ci-reader", "roles": ["reader"], "sha256": sha256_hex(READER_TOKEN)}
                ],
                "users": [{"username": USER, "roles": ["admin"],
                           "password": hash_password(USER_PASSWORD).unwrap()}]
            })
            .to_string(),
        );
        write(d, "data/hr.csv", &hr_csv(csv_rows));

        let loaded = idsync_config::load_project(d, &|_| None)
            .unwrap_or_else(|e| panic!("test project does not load: {e:?}"));
        let project = Arc::new(loaded.project);
        let repo = idsync_repo::open(&format!("sqlite://{}", d.join(".idsync/repo.db").display()))
            .await
            .unwrap();
        let mut connectors: BTreeMap<String, Arc<dyn Connector>> = BTreeMap::new();
        for (name, cfg) in &project.connectors {
            let conn = idsync_connectors::build_connector(cfg, &project.dir).unwrap();
            connectors.insert(name.to_string(), conn);
        }
        let auth = AuthState::new(&project.auth, None).unwrap();
        let state = configure(
            ApiState::new(project, repo.clone(), connectors, "node-test", auth).with_limits(limits),
        );

        let extra = routes_of(&state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(idsync_api::serve_with(state, extra, listener, async move {
            let _ = rx.await;
        }));
        Server {
            base: format!("http://{addr}/openidm"),
            client: reqwest::Client::new(),
            dir,
            repo,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// A request without credentials.
    pub fn anon(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(
            method,
            format!("{}/{}", self.base, path.trim_start_matches('/')),
        )
    }

    pub fn admin(&self, method: Method, path: &str) -> RequestBuilder {
        self.anon(method, path).bearer_auth(ADMIN_TOKEN)
    }

    pub fn reader(&self, method: Method, path: &str) -> RequestBuilder {
        self.anon(method, path).bearer_auth(READER_TOKEN)
    }

    /// Stops the server and waits for it (graceful shutdown).
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Sends a request and returns the status and the JSON body (asserting the body is JSON).
pub async fn send(req: RequestBuilder) -> (StatusCode, Value) {
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    let body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{status}: body is not JSON ({e}): {text:?}"));
    (status, body)
}

/// Asserts a CREST error body with `code` and a message containing `needle`.
pub fn assert_crest_error(status: StatusCode, body: &Value, code: u16, needle: &str) {
    assert_eq!(status.as_u16(), code, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(body["reason"].is_string(), "{body}");
    let msg = body["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no message: {body}"));
    assert!(
        msg.to_lowercase().contains(&needle.to_lowercase()),
        "message {msg:?} lacks {needle:?}"
    );
}
