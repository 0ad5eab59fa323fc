//! The HTTP client of the commands that talk to a running server (`idsync queue list`,
//! `idsync recon list|show|cancel`): the token from `--token`/`IDSYNC_TOKEN`/`IDSYNC_ADMIN_TOKEN`,
//! CREST errors turned into one line for the user, and the exit codes they share — 0 done, 1 the
//! server could not be reached or refused the request, 2 a usage error (no token, a bad URL).

use crate::cli::ServerArgs;
use reqwest::Method;
use serde_json::Value;
use std::process::ExitCode;
use std::time::Duration;

/// A failure already explained to the user.
pub struct Failed {
    pub message: String,
    pub code: u8,
}

impl Failed {
    pub fn new(message: impl Into<String>) -> Self {
        Failed {
            message: message.into(),
            code: 1,
        }
    }

    fn usage(message: impl Into<String>) -> Self {
        Failed {
            message: message.into(),
            code: 2,
        }
    }
}

/// The exit code of a command, its failure printed on stderr.
pub fn exit(result: Result<(), Failed>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

/// An authenticated client of one server's `/openidm` API.
pub struct Client {
    http: reqwest::Client,
    /// `http://HOST:PORT/openidm`.
    pub base: String,
    token: String,
}

impl Client {
    pub fn new(server: &ServerArgs) -> Result<Client, Failed> {
        let token = server
            .token
            .clone()
            .or_else(|| std::env::var("IDSYNC_ADMIN_TOKEN").ok())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Failed::usage(
                    "no API token: give --token or set IDSYNC_TOKEN (or IDSYNC_ADMIN_TOKEN)",
                )
            })?;
        let url = server.url.trim_end_matches('/');
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Failed::usage(format!(
                "--url must start with http:// or https://, not {url:?}"
            )));
        }
        let base = if url.ends_with("/openidm") {
            url.to_string()
        } else {
            format!("{url}/openidm")
        };
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
            .build()
            .map_err(|e| Failed::new(format!("cannot build the HTTP client: {e}")))?;
        Ok(Client { http, base, token })
    }

    /// `GET /openidm/<path>?<query>` → the JSON body of a 2xx answer.
    pub async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, Failed> {
        self.send(Method::GET, path, query).await
    }

    /// `POST /openidm/<path>?<query>` with an empty body → the JSON body of a 2xx answer.
    pub async fn post(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, Failed> {
        self.send(Method::POST, path, query).await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Value, Failed> {
        let url = format!("{}/{path}", self.base);
        let resp = self
            .http
            .request(method, &url)
            .query(query)
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| {
                Failed::new(format!(
                    "cannot reach the idsync server at {url}: {}",
                    cause(&e)
                ))
            })?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| {
            Failed::new(format!("reading the answer of {url} failed: {}", cause(&e)))
        })?;
        let body: Option<Value> = serde_json::from_str(&text).ok();
        if status.is_success() {
            return body.ok_or_else(|| {
                Failed::new(format!(
                    "{url} answered {status} with a body that is not JSON: {}",
                    excerpt(&text)
                ))
            });
        }
        let message = body
            .as_ref()
            .and_then(|b| b["message"].as_str())
            .map(str::to_string)
            .unwrap_or_else(|| excerpt(&text));
        let hint = match status.as_u16() {
            401 => " (check --token / IDSYNC_TOKEN)",
            403 => " (the token's role may not do this)",
            _ => "",
        };
        Err(Failed::new(format!(
            "{url} answered {status}: {message}{hint}"
        )))
    }
}

/// Why a request failed, on one line: the error's sources (reqwest's own text only repeats
/// the URL), or the error itself when it has none.
fn cause(e: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source = e.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = inner.source();
    }
    if parts.is_empty() {
        e.to_string()
    } else {
        parts.join(": ")
    }
}

fn excerpt(text: &str) -> String {
    let t: String = text.chars().take(200).collect();
    if t.len() < text.len() {
        format!("{t}…")
    } else {
        t
    }
}
