//! What the integrator plugs in: managed-write hooks (implicit sync) whose ops commit with the
//! write and whose answer is merged into the response, extra routes behind the same
//! authentication, and the request timeout.

use crate::harness::*;
use async_trait::async_trait;
use axum::Router;
use axum::routing::get;
use idsync_api::{ApiResult, ApiState, Limits, ManagedChange, ManagedHooks, SystemActions};
use idsync_repo::{AuditEntry, AuditKind, ChangeSet, Op};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Records every managed write as a sync audit entry in the same change set, and answers
/// with the kind of write it saw.
#[derive(Debug)]
struct AuditingHooks;

#[async_trait]
impl ManagedHooks for AuditingHooks {
    async fn before_commit(
        &self,
        change: &ManagedChange,
        changes: &mut ChangeSet,
    ) -> ApiResult<()> {
        let kind = match (&change.before, &change.after) {
            (None, _) => "create",
            (_, None) => "delete",
            _ => "update",
        };
        changes.push(Op::AppendAudit(AuditEntry {
            id: uuid::Uuid::new_v4().to_string(),
            kind: AuditKind::Sync,
            timestamp: chrono::Utc::now(),
            recon_id: None,
            mapping: Some("test".into()),
            entry_type: Some("entry".into()),
            entry: json!({"action": kind, "sourceObjectId": format!("managed/{}/{}", change.object_type, change.id)}),
        }));
        Ok(())
    }

    async fn after_commit(&self, change: &ManagedChange) -> ApiResult<Option<Value>> {
        Ok(Some(
            json!({"_syncSeen": change.after.as_ref().and_then(|a| a.get("_rev")).cloned()}),
        ))
    }
}

#[tokio::test]
async fn hooks_commit_with_the_write_and_extend_the_answer() {
    let s = Server::start_full(
        Limits::default(),
        3,
        |st| st.with_hooks(Arc::new(AuditingHooks)),
        Router::new(),
    )
    .await;
    let (status, body) = send(
        s.admin(Method::PUT, "managed/user/h1")
            .json(&json!({"userName": "h"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["_syncSeen"], body["_rev"]);
    let (status, _) = send(
        s.admin(Method::PATCH, "managed/user/h1")
            .json(&json!([{"operation": "replace", "field": "/userName", "value": "hh"}])),
    )
    .await;
    assert_eq!(status, 200);
    // A refused write (stale revision) commits none of the hook's ops.
    let (status, _) = send(
        s.admin(Method::DELETE, "managed/user/h1")
            .header("If-Match", "\"1\""),
    )
    .await;
    assert_eq!(status, 412);
    let (status, _) = send(s.admin(Method::DELETE, "managed/user/h1")).await;
    assert_eq!(status, 200);

    let (status, body) = send(
        s.reader(Method::GET, "audit/sync")
            .query(&[("_queryFilter", "sourceObjectId eq \"managed/user/h1\"")]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let mut actions: Vec<&str> = body["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    actions.sort();
    assert_eq!(actions, vec!["create", "delete", "update"], "{body}");
}

async fn never(_: axum::extract::State<ApiState>) -> &'static str {
    std::future::pending::<()>().await;
    "unreachable"
}

#[tokio::test]
async fn extra_routes_share_auth_and_the_timeout() {
    let limits = Limits {
        request_timeout: Duration::from_millis(200),
        ..Limits::default()
    };
    let extra = Router::new().route("/openidm/recon", get(never));
    let s = Server::start_full(limits, 3, |st| st, extra).await;
    let (status, body) = send(s.anon(Method::GET, "recon")).await;
    assert_crest_error(status, &body, 401, "authentication");
    let (status, body) = send(s.reader(Method::GET, "recon")).await;
    assert_crest_error(status, &body, 504, "did not finish");
}

/// Answers `liveSync` with what it was asked, and nothing else.
#[derive(Debug)]
struct LiveSyncActions;

#[async_trait]
impl SystemActions for LiveSyncActions {
    async fn action(
        &self,
        connector: &str,
        object_type: &str,
        action: &str,
        _body: Option<Value>,
    ) -> ApiResult<Option<Value>> {
        Ok((action == "liveSync")
            .then(|| json!({"connector": connector, "objectType": object_type, "action": action})))
    }
}

#[tokio::test]
async fn system_actions_reach_the_handler() {
    let s = Server::start_full(
        Limits::default(),
        3,
        |st| st.with_system_actions(Arc::new(LiveSyncActions)),
        Router::new(),
    )
    .await;
    let (status, body) = send(s.admin(Method::POST, "system/hr/account?_action=liveSync")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"connector": "hr", "objectType": "account", "action": "liveSync"})
    );
    let (status, body) = send(s.admin(Method::POST, "system/hr/account?_action=frob")).await;
    assert_crest_error(status, &body, 400, "frob");
    let (status, body) = send(s.reader(Method::POST, "system/hr/account?_action=liveSync")).await;
    assert_crest_error(status, &body, 403, "may not");
}
