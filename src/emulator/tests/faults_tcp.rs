//! Fault injection: one-shot statuses, ratios, latency and plain-text errors through the
//! router; connection reset and outages over a real TCP listener.

use std::time::{Duration, Instant};

use axum::http::StatusCode;

use super::{base_config, Req, Served, TestApp, ADMIN_PAT};
use crate::emulator::{Emulator, Fault, OutageMode, RouteLatency, RouteScope};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("a reqwest client")
}

/// The I/O error kind at the bottom of a reqwest error, if any.
fn io_kind(error: &reqwest::Error) -> Option<std::io::ErrorKind> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        source = e.source();
    }
    None
}

async fn get_current(
    client: &reqwest::Client,
    served: &Served,
) -> reqwest::Result<reqwest::Response> {
    client
        .get(served.url("/rest/api/user/current"))
        .bearer_auth(ADMIN_PAT)
        .send()
        .await
}

#[tokio::test]
async fn a_one_shot_503_with_retry_after_is_followed_by_success() {
    let app = TestApp::new();
    app.emu.arm_fault(Fault::status(503).with_retry_after(2));
    let failed = app.call(Req::get("/rest/api/user/current").admin()).await;
    assert_eq!(failed.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(failed.header("retry-after"), Some("2"));
    assert_eq!(failed.json()["statusCode"], 503);
    let ok = app.call(Req::get("/rest/api/user/current").admin()).await;
    assert_eq!(ok.status, StatusCode::OK);
    let calls = app.emu.calls();
    assert_eq!(calls[0].fault.as_deref(), Some("status 503"));
    assert_eq!(calls[1].fault, None);
}

#[tokio::test]
async fn a_scoped_fault_spares_other_routes() {
    let app = TestApp::new();
    app.emu
        .arm_fault(Fault::status(500).on("PUT", "/rest/api/admin/user/{username}/disable"));
    let other = app.call(Req::get("/rest/api/user/current").admin()).await;
    assert_eq!(other.status, StatusCode::OK);
    let hit = app
        .call(Req::put("/rest/api/admin/user/alice/disable").admin())
        .await;
    assert_eq!(hit.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        app.emu.user("alice").is_some_and(|u| u.active),
        "no side effect"
    );
}

#[tokio::test]
async fn a_failure_ratio_of_one_fails_every_matching_call() {
    let app = TestApp::new();
    let mut knobs = app.emu.knobs();
    knobs.error_ratio.ratio = 1.0;
    knobs.error_ratio.status = 500;
    knobs.error_ratio.scope = RouteScope {
        method: Some("GET".to_owned()),
        path: Some("/rest/api/group*".to_owned()),
    };
    app.emu.set_knobs(knobs);
    for _ in 0..3 {
        let resp = app.call(Req::get("/rest/api/group").admin()).await;
        assert_eq!(resp.status, StatusCode::INTERNAL_SERVER_ERROR);
    }
    let spared = app.call(Req::get("/rest/api/user/current").admin()).await;
    assert_eq!(spared.status, StatusCode::OK);
}

#[tokio::test]
async fn latency_is_added_to_matching_routes() {
    let app = TestApp::new();
    let mut knobs = app.emu.knobs();
    knobs.latency.routes = vec![RouteLatency {
        scope: RouteScope {
            method: None,
            path: Some("/rest/api/group".to_owned()),
        },
        ms: 150,
    }];
    app.emu.set_knobs(knobs);
    let started = Instant::now();
    app.call(Req::get("/rest/api/group").admin()).await;
    assert!(started.elapsed() >= Duration::from_millis(150));
    let calls = app.emu.calls();
    assert!(calls[0].duration_ms >= 150);
    let started = Instant::now();
    app.call(Req::get("/rest/api/user/current").admin()).await;
    assert!(started.elapsed() < Duration::from_millis(150));
}

#[tokio::test]
async fn a_plain_text_ratio_of_one_turns_401_and_404_bodies_into_text() {
    let app = TestApp::new();
    let mut knobs = app.emu.knobs();
    knobs.plain_text_errors_ratio = 1.0;
    app.emu.set_knobs(knobs);
    let resp = app
        .call(Req::get("/rest/api/user?username=ghost").admin())
        .await;
    assert_eq!(resp.status, StatusCode::NOT_FOUND);
    assert!(resp
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/plain")));
    assert_eq!(resp.header("x-ausername"), Some("admin"));
    let conflict = app
        .call(
            Req::post("/rest/api/admin/group")
                .admin()
                .json(serde_json::json!({"name": "confluence-users"})),
        )
        .await;
    assert_eq!(conflict.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn a_reset_through_the_bare_router_is_marked_as_a_500() {
    let app = TestApp::new();
    app.emu.arm_fault(Fault::reset());
    let resp = app.call(Req::get("/rest/api/user/current").admin()).await;
    assert_eq!(resp.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(resp.header("x-emulator-fault"), Some("connection-reset"));
}

#[tokio::test]
async fn a_reset_drops_the_connection_without_a_response() {
    let served = Served::start(Emulator::new(base_config())).await;
    let client = client();
    assert!(get_current(&client, &served).await.is_ok(), "warm-up call");
    served.emu.arm_fault(Fault::reset());
    let error = get_current(&client, &served)
        .await
        .expect_err("the connection is reset");
    assert_eq!(
        io_kind(&error),
        Some(std::io::ErrorKind::ConnectionReset),
        "{error:?}"
    );
    let after = get_current(&client, &served).await.expect("served again");
    assert_eq!(after.status(), reqwest::StatusCode::OK);
    let calls = served.emu.calls();
    assert_eq!(calls[1].status, None);
    assert_eq!(calls[1].fault.as_deref(), Some("connection reset"));
    served.stop().await;
}

#[tokio::test]
async fn an_outage_answers_503_for_its_duration() {
    let served = Served::start(Emulator::new(base_config())).await;
    let client = client();
    served.emu.arm_fault(Fault::outage(
        Duration::from_millis(300),
        OutageMode::ServiceUnavailable,
    ));
    let started = Instant::now();
    let during = get_current(&client, &served).await.expect("answered");
    assert_eq!(during.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    let mut last = during.status();
    while started.elapsed() < Duration::from_secs(3) && last != reqwest::StatusCode::OK {
        tokio::time::sleep(Duration::from_millis(50)).await;
        last = get_current(&client, &served)
            .await
            .expect("answered")
            .status();
    }
    assert_eq!(last, reqwest::StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(300));
    served.stop().await;
}

#[tokio::test]
async fn a_refuse_mode_outage_refuses_connections_and_then_recovers() {
    let served = Served::start(Emulator::new(base_config())).await;
    served.emu.arm_fault(Fault::outage(
        Duration::from_millis(800),
        OutageMode::Refuse,
    ));
    // The listener is woken at once; leave it ample time to close even on a busy machine.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let fresh = client();
    let error = get_current(&fresh, &served)
        .await
        .expect_err("no connection during the outage");
    assert_eq!(
        io_kind(&error),
        Some(std::io::ErrorKind::ConnectionRefused),
        "{error:?}"
    );
    let started = Instant::now();
    let mut recovered = false;
    while started.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if let Ok(resp) = get_current(&client(), &served).await {
            recovered = resp.status() == reqwest::StatusCode::OK;
            break;
        }
    }
    assert!(recovered, "the listener reopened after the outage");
    served.stop().await;
}
