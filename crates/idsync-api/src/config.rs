//! `GET config[/<name>]` (docs/rest.md): the effective configuration as written
//! (after substitution), with every secret masked as `"********"`. Read-only: configuration is
//! changed in the project folder, never over REST.

use crate::error::{ApiError, ApiResult};
use crate::http::object_response;
use crate::state::ApiState;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

pub use idsync_core::secrets::{MASK, is_secret_key, mask_secrets};

/// The routes of this resource.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/openidm/config", get(list))
        .route("/openidm/config/{*name}", get(read))
}

fn names(state: &ApiState) -> Vec<String> {
    let p = &state.project;
    let mut out = vec!["sync".to_string(), "managed".to_string()];
    out.extend(
        p.connectors
            .keys()
            .map(|n| format!("provisioner.openicf/{n}")),
    );
    out.extend(p.schedules.keys().map(|n| format!("schedule/{n}")));
    out
}

async fn list(State(state): State<ApiState>) -> ApiResult<Response> {
    let configurations: Vec<Value> = names(&state)
        .into_iter()
        .map(|n| json!({"_id": n, "pid": n, "factoryPid": null}))
        .collect();
    Ok(object_response(
        StatusCode::OK,
        json!({"_id": "", "configurations": configurations}),
    ))
}

async fn read(State(state): State<ApiState>, Path(name): Path<String>) -> ApiResult<Response> {
    let p = &state.project;
    let doc = match name.trim_matches('/') {
        "sync" => json!({
            "_id": "sync",
            "mappings": p.mappings.iter().map(|m| m.raw.clone()).collect::<Vec<_>>(),
        }),
        "managed" => json!({
            "_id": "managed",
            "objects": p.managed.iter().map(|m| m.raw.clone()).collect::<Vec<_>>(),
        }),
        other => {
            let found = if let Some(c) = other.strip_prefix("provisioner.openicf/") {
                p.connector(c).map(|c| with_id(c.raw.clone(), other))
            } else if let Some(s) = other.strip_prefix("schedule/") {
                p.schedules.get(s).map(|s| with_id(s.raw.clone(), other))
            } else {
                None
            };
            found.ok_or_else(|| {
                ApiError::NotFound(format!(
                    "config/{other} not found (available: {})",
                    names(&state).join(", ")
                ))
            })?
        }
    };
    Ok(object_response(StatusCode::OK, mask_secrets(&doc)))
}

fn with_id(mut v: Value, id: &str) -> Value {
    if let Value::Object(m) = &mut v
        && !m.contains_key("_id")
    {
        m.insert("_id".into(), Value::String(id.to_string()));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_every_secret_and_keeps_locations() {
        let cfg = json!({
            "configurationProperties": {
                "host": "db", "password": "pw1", "passwordColumn": "pwd",
                "principal": "cn=admin", "credentials": {"$crypt": "xyz"},
                "clientSecret": "s", "apiToken": "t", "nested": [{"Password": "p"}],
                "unset": null, "userPassword": null, "passwordAttribute": "userPassword",
                "url": "postgres://u:pw2@db/x", "passwd": "pw3", "pwd": "pw4",
                "clientKey": "pw5", "accessKey": "pw6",
                "credentials2": {"type": "password", "value": "pw7"}
            },
            "objectTypes": {"account": {"properties": {"password": {"type": "string"}}}}
        });
        let m = mask_secrets(&cfg);
        let c = &m["configurationProperties"];
        assert_eq!(c["password"], MASK);
        assert_eq!(c["credentials"]["$crypt"], MASK);
        assert_eq!(c["clientSecret"], MASK);
        assert_eq!(c["apiToken"], MASK);
        assert_eq!(c["nested"][0]["Password"], MASK);
        assert_eq!(c["passwordColumn"], "pwd");
        assert_eq!(c["passwordAttribute"], "userPassword");
        assert_eq!(c["host"], "db");
        assert_eq!(c["userPassword"], Value::Null);
        assert_eq!(
            m["objectTypes"]["account"]["properties"]["password"]["type"],
            "string"
        );
        assert_eq!(c["url"], "postgres://u:********@db/x");
        for secret in [
            "pw1", "pw2", "pw3", "pw4", "pw5", "pw6", "pw7", "xyz", "\"s\"", "\"t\"", "\"p\"",
        ] {
            assert!(!m.to_string().contains(secret), "{secret} leaked: {m}");
        }
    }
}
