//! Short-lived session tokens for the admin console (docs/console.md): a user name and password
//! from `conf/authentication.json` are checked once by `POST authentication?_action=login`,
//! which answers a random bearer token valid for a while; later requests carry that token and
//! cost a hash lookup instead of an argon2 check per poll. `_action=logout` forgets it, and
//! `GET info/login` tells a client who it is signed in as and with which roles (IDM's
//! endpoint), so the console can disable what a reader may not do.
//!
//! Sessions live in this process's memory only: a restart signs everyone out, and in a cluster
//! a session token is accepted by the node that issued it (configured tokens work everywhere).
//! Only the token's SHA-256 is kept, as for configured tokens.

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::http::{OptionalJsonBody, object_response};
use crate::params::Params;
use crate::state::ApiState;
use axum::Router;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use idsync_config::Role;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a session lives without being used.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// How long a session lives at most, used or not.
pub const MAX_LIFETIME: Duration = Duration::from_secs(8 * 60 * 60);
/// Sessions kept at most; the oldest is dropped past it (a client looping on login cannot
/// grow the server's memory).
const MAX_SESSIONS: usize = 10_000;

#[derive(Debug, Clone)]
struct Session {
    principal: Principal,
    issued: Instant,
    last_used: Instant,
}

impl Session {
    fn alive(&self, now: Instant) -> bool {
        now.duration_since(self.last_used) < IDLE_TIMEOUT
            && now.duration_since(self.issued) < MAX_LIFETIME
    }
}

/// The sessions of this process, keyed by the SHA-256 of their token. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Sessions(Arc<Mutex<HashMap<[u8; 32], Session>>>);

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new session for `principal`; returns its token (shown once, never stored).
    pub fn open(&self, principal: Principal) -> String {
        let token = crate::auth::random_token();
        let now = Instant::now();
        let mut map = self.lock();
        map.retain(|_, s| s.alive(now));
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map.iter().min_by_key(|(_, s)| s.issued).map(|(k, _)| *k)
        {
            map.remove(&oldest);
        }
        map.insert(
            Sha256::digest(token.as_bytes()).into(),
            Session {
                principal,
                issued: now,
                last_used: now,
            },
        );
        token
    }

    /// The principal of a live session whose token has this SHA-256, which counts as a use.
    pub fn find(&self, sha256: &[u8; 32]) -> Option<Principal> {
        self.find_at(sha256, Instant::now())
    }

    fn find_at(&self, sha256: &[u8; 32], now: Instant) -> Option<Principal> {
        let mut map = self.lock();
        match map.get_mut(sha256) {
            Some(s) if s.alive(now) => {
                s.last_used = now;
                Some(s.principal.clone())
            }
            Some(_) => {
                map.remove(sha256);
                None
            }
            None => None,
        }
    }

    /// Forgets the session of `token`; false when there was none.
    pub fn close(&self, token: &str) -> bool {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.lock().remove(&key).is_some()
    }
}

/// `POST authentication?_action=login|logout`: outside the authenticated routes, because login
/// is where credentials are checked.
pub fn login_routes() -> Router<ApiState> {
    Router::new().route("/openidm/authentication", post(authentication_action))
}

/// `GET info/login`: behind authentication like every other call.
pub fn routes() -> Router<ApiState> {
    Router::new().route("/openidm/info/login", get(info_login))
}

fn role_names(roles: &[Role]) -> Vec<&'static str> {
    roles
        .iter()
        .map(|r| match r {
            Role::Admin => "admin",
            Role::Reader => "reader",
        })
        .collect()
}

async fn authentication_action(
    State(state): State<ApiState>,
    headers: HeaderMap,
    params: Params,
    body: OptionalJsonBody,
) -> ApiResult<Response> {
    match params.action()? {
        Some("login") => login(&state, &headers, body.0).await,
        Some("logout") => logout(&state, &headers),
        Some(other) => Err(ApiError::BadRequest(format!(
            "unknown action \"{other}\" on authentication (supported: login, logout)"
        ))),
        None => Err(ApiError::BadRequest(
            "POST authentication needs _action=login or _action=logout".into(),
        )),
    }
}

/// Checks a user name and password (the body's `username`/`password`, or IDM's
/// `X-OpenIDM-Username`/`X-OpenIDM-Password` headers) and opens a session.
async fn login(state: &ApiState, headers: &HeaderMap, body: Option<Value>) -> ApiResult<Response> {
    let mut creds = headers.clone();
    if let Some(body) = body {
        let field = |k: &str| {
            body.get(k).and_then(Value::as_str).ok_or_else(|| {
                ApiError::BadRequest(format!("the login body needs the string field {k}"))
            })
        };
        let user = HeaderValue::from_str(field("username")?)
            .map_err(|_| ApiError::Unauthorized("invalid credentials".into()))?;
        let pass = HeaderValue::from_str(field("password")?)
            .map_err(|_| ApiError::Unauthorized("invalid credentials".into()))?;
        creds = HeaderMap::new();
        creds.insert("x-openidm-username", user);
        creds.insert("x-openidm-password", pass);
    } else if headers.contains_key(axum::http::header::AUTHORIZATION) {
        return Err(ApiError::BadRequest(
            "login exchanges a user name and password for a session token; a bearer token \
             needs no login"
                .into(),
        ));
    }
    let principal = state.auth.authenticate(&creds).await?.ok_or_else(|| {
        ApiError::Unauthorized(
            "login needs {\"username\",\"password\"} or X-OpenIDM-Username/X-OpenIDM-Password"
                .into(),
        )
    })?;
    let token = state.auth.sessions().open(principal.clone());
    Ok(object_response(
        StatusCode::OK,
        json!({
            "token": token,
            "tokenType": "Bearer",
            "expiresIn": IDLE_TIMEOUT.as_secs(),
            "authenticationId": principal.name,
            "roles": role_names(&principal.roles),
        }),
    ))
}

/// Forgets the session whose token the request carries. Answers 200 whether or not the
/// session still existed, so that signing out never fails.
fn logout(state: &ApiState, headers: &HeaderMap) -> ApiResult<Response> {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_string())
        .ok_or_else(|| {
            ApiError::BadRequest("logout needs the session token as a bearer token".into())
        })?;
    let closed = state.auth.sessions().close(&token);
    Ok(object_response(
        StatusCode::OK,
        json!({"action": "logout", "closed": closed}),
    ))
}

async fn info_login(Extension(principal): Extension<Principal>) -> ApiResult<Response> {
    Ok(object_response(
        StatusCode::OK,
        json!({
            "_id": "login",
            "authenticationId": principal.name,
            "authorization": {"roles": role_names(&principal.roles)},
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader() -> Principal {
        Principal {
            name: "r".into(),
            roles: vec![Role::Reader],
        }
    }

    #[test]
    fn sessions_open_find_and_close() {
        let s = Sessions::default();
        let token = s.open(reader());
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        assert_eq!(s.find(&key), Some(reader()));
        assert!(s.close(&token));
        assert_eq!(s.find(&key), None);
        assert!(!s.close(&token));
    }

    #[test]
    fn a_session_ends_after_its_lifetime_even_when_used() {
        let s = Sessions::default();
        let token = s.open(reader());
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut t = Instant::now();
        while t < Instant::now() + MAX_LIFETIME - IDLE_TIMEOUT {
            t += IDLE_TIMEOUT / 2;
            assert_eq!(s.find_at(&key, t), Some(reader()));
        }
        assert_eq!(s.find_at(&key, Instant::now() + MAX_LIFETIME), None);
    }

    #[test]
    fn an_idle_session_expires() {
        let s = Sessions::default();
        let token = s.open(reader());
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let soon = Instant::now() + IDLE_TIMEOUT / 2;
        assert_eq!(
            s.find_at(&key, soon),
            Some(reader()),
            "a use keeps it alive"
        );
        assert_eq!(s.find_at(&key, soon + IDLE_TIMEOUT / 2), Some(reader()));
        let idle = soon + IDLE_TIMEOUT / 2 + IDLE_TIMEOUT;
        assert_eq!(s.find_at(&key, idle), None);
        assert!(s.lock().is_empty(), "an expired session is dropped");
    }
}
