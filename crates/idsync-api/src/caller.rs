//! Who made a request, as managed objects' lifecycle scripts see it (`context`, and the
//! request's `additionalParameters`; docs/scripts.md#context-and-request): an extractor that builds the
//! engine's [`Caller`] from the authenticated principal, the method, the path and the query.

use crate::auth::Principal;
use crate::script_host::InternalCall;
use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use idsync_config::Role;
use idsync_engine::Caller;
use serde_json::{Map, Value};
use std::convert::Infallible;

/// The request's [`Caller`]. A request made by a script's `openidm` call is `internal`.
#[derive(Debug)]
pub struct RequestCaller(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for RequestCaller {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Infallible> {
        // Parameters of IDM's own (`_queryFilter`, `_action`, `_fields`, ...) are not
        // additional parameters. A malformed query string is the `Params` extractor's 400.
        let pairs = Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map(|Query(p)| p)
            .unwrap_or_default();
        let params: Map<String, Value> = pairs
            .into_iter()
            .filter(|(k, _)| !k.starts_with('_'))
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        if parts.extensions.get::<InternalCall>().is_some() {
            let mut caller = Caller::internal();
            caller.params = params;
            return Ok(RequestCaller(caller));
        }
        let (user, roles) = match parts.extensions.get::<Principal>() {
            Some(p) => (
                p.name.clone(),
                p.roles
                    .iter()
                    .map(|r| match r {
                        Role::Admin => "admin",
                        Role::Reader => "reader",
                    })
                    .collect::<Vec<_>>(),
            ),
            None => ("anonymous".to_string(), Vec::new()),
        };
        Ok(RequestCaller(Caller::http(
            &user,
            &roles,
            parts.method.as_str(),
            parts.uri.path(),
            params,
        )))
    }
}
