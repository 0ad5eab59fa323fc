//! `POST recon?_action=recon&waitForCompletion=true` waits for the whole run however long it
//! takes (docs/rest.md#reconciliation): the request timeout, which answers 504 for every other
//! request, does not apply to it.

use crate::harness::{Server, assert_crest_error, send};
use axum::Router;
use axum::routing::post;
use idsync_api::{ApiState, Limits};
use idsync_engine::Engine;
use idsync_engine::resources::Resources;
use reqwest::Method;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MAPPING: &str = "systemHrAccounts_managedUser";

async fn never(_: axum::extract::State<ApiState>) -> &'static str {
    std::future::pending::<()>().await;
    "unreachable"
}

#[tokio::test]
async fn wait_for_completion_outlives_the_request_timeout() {
    let timeout = Duration::from_millis(300);
    let limits = Limits {
        request_timeout: timeout,
        ..Limits::default()
    };
    let slot: Arc<Mutex<Option<Arc<Engine>>>> = Arc::default();
    let engine_slot = slot.clone();
    let server = Server::start_with_routes(limits, 50, move |state| {
        let resources =
            Resources::new(&state.project, state.repo.clone(), state.connectors.clone());
        let engine = Engine::new(
            state.project.clone(),
            state.repo.clone(),
            resources,
            state.node_id.clone(),
        )
        .unwrap();
        *engine_slot.lock().unwrap() = Some(engine.clone());
        Router::new()
            .route("/openidm/slow", post(never))
            .merge(idsync_api::recon::routes(engine))
    })
    .await;
    let engine = slot.lock().unwrap().clone().unwrap();

    // Other requests are still bounded, whatever their parameters.
    let (status, body) = send(server.admin(Method::POST, "slow?waitForCompletion=true")).await;
    assert_crest_error(status, &body, 504, "did not finish");

    // No worker runs yet, so the run cannot progress until this test starts one: the run lasts
    // longer than the request timeout by construction.
    let sent = Instant::now();
    let request = tokio::spawn(send(server.admin(
        Method::POST,
        &format!("recon?_action=recon&mapping={MAPPING}&waitForCompletion=true"),
    )));
    loop {
        let started = !engine.recon_list().await.unwrap().is_empty();
        if started && sent.elapsed() > timeout * 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let runs = engine.recon_list().await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["state"], "ACTIVE", "{}", runs[0]);
    let run_id = runs[0]["_id"].as_str().unwrap().to_string();

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(idsync_engine::worker::run_worker(
        engine.clone(),
        2,
        stop_rx,
    ));
    let (status, body) = request.await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["_id"], run_id.as_str(), "{body}");
    assert_eq!(body["state"], "SUCCESS", "{body}");
    let summary = engine.recon_summary(&run_id).await.unwrap();
    assert_eq!(
        summary["progress"]["source"]["existing"]["processed"], 50,
        "{summary}"
    );
    stop_tx.send(true).unwrap();
    worker.await.unwrap().unwrap();
    server.stop().await;
}
