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
use serde_json::{Map, Value, json};

/// What a masked secret looks like.
pub const MASK: &str = "********";

/// The routes of this resource.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/openidm/config", get(list))
        .route("/openidm/config/{*name}", get(read))
}

/// Whether a key names a secret: password, credentials, secret, private key, token (and token
/// hashes), API keys, passphrases, in any case and anywhere in the key. Keys that only name
/// *where* a secret lives (`passwordColumn`, `passwordAttribute`) hold no secret and stay
/// readable.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    let names_secret = [
        "password",
        "credential",
        "secret",
        "privatekey",
        "token",
        "sha256",
        "apikey",
        "passphrase",
    ]
    .iter()
    .any(|s| k.contains(s));
    let names_location = ["column", "attribute", "header", "field", "name"]
        .iter()
        .any(|s| k.ends_with(s));
    names_secret && !names_location
}

/// A copy of `value` with the value of every secret key replaced by [`MASK`]. Null stays null
/// (a reader can tell "not set" from "set"). An object under a secret key is masked whole
/// (`"credentials": {"$crypt": ...}`) unless it is a schema property definition (it has
/// `type` or `nativeName`), which describes a field and holds no secret.
pub fn mask_secrets(value: &Value) -> Value {
    match value {
        Value::Object(m) => {
            let mut out = Map::with_capacity(m.len());
            for (k, v) in m {
                let is_schema = v.get("type").is_some() || v.get("nativeName").is_some();
                let masked = if is_secret_key(k) && !v.is_null() && !is_schema {
                    Value::String(MASK.into())
                } else {
                    mask_secrets(v)
                };
                out.insert(k.clone(), masked);
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(mask_secrets).collect()),
        other => other.clone(),
    }
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
                "unset": null, "userPassword": null, "passwordAttribute": "userPassword"
            },
            "objectTypes": {"account": {"properties": {"password": {"type": "string"}}}}
        });
        let m = mask_secrets(&cfg);
        let c = &m["configurationProperties"];
        assert_eq!(c["password"], MASK);
        assert_eq!(c["credentials"], MASK);
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
        for secret in ["pw1", "xyz", "\"s\"", "\"t\"", "\"p\""] {
            assert!(!m.to_string().contains(secret), "{secret} leaked: {m}");
        }
    }
}
