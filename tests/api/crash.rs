//! `kill -9` of the real `usersync serve` in the middle of delivery: after a restart on the
//! same database everything converges and nothing is lost.

use std::time::Duration;

use serde_json::json;
use usersync::emulator::{Emulator, EmulatorConfig, RouteLatency, RouteScope};
use usersync::store::testdb::TestDb;
use usersync::store::{Store, StoreOptions};

use crate::helpers::backend;
use crate::process::Serve;

const SCIM_TOKEN: &str = "crash-test-scim-token";
const CONFLUENCE_TOKEN: &str = "crash-test-confluence-pat";

#[tokio::test]
async fn kill_9_in_the_middle_of_delivery_converges_after_restart() {
    let db = TestDb::create(backend()).await;

    // A slow Confluence: every create takes 1.5 s, so creates are in flight when we kill.
    let emulator = Emulator::new(EmulatorConfig::new(CONFLUENCE_TOKEN));
    let mut knobs = emulator.knobs();
    knobs.latency.routes = vec![RouteLatency {
        scope: RouteScope {
            method: Some("POST".into()),
            path: Some("/rest/api/admin/user".into()),
        },
        ms: 1500,
    }];
    emulator.set_knobs(knobs);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let confluence = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(emulator.clone().serve(listener, std::future::pending()));

    let client = reqwest::Client::new();
    let mut server = Serve::new(&db.url)
        .connector("crash", "CRASH_SCIM_TOKEN", SCIM_TOKEN)
        .confluence(&confluence, "CRASH_CONFLUENCE_TOKEN", CONFLUENCE_TOKEN)
        .set(
            "delivery.retry_schedule",
            vec!["100ms", "200ms", "400ms", "800ms", "1s"],
        )
        // On PostgreSQL the killed worker's claims are taken again when their lease expires
        // (on SQLite at once, at start); a short lease keeps the test short.
        .set("delivery.lease", "2s")
        .start()
        .await;
    let base = server.scim("crash");
    for n in 0..3 {
        let r = client
            .post(format!("{base}/Users"))
            .bearer_auth(SCIM_TOKEN)
            .header("Content-Type", "application/scim+json")
            .body(json!({"userName": format!("crash{n}@example.com")}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "acknowledged before the crash");
    }
    // Let the worker start its first (slow) creates, then kill it without warning.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let in_flight = emulator
        .calls()
        .iter()
        .filter(|c| c.method == "GET")
        .count();
    assert!(
        in_flight > 0,
        "the worker had looked the users up and was creating them"
    );
    server.kill();

    let mut knobs = emulator.knobs();
    knobs.latency.routes.clear();
    emulator.set_knobs(knobs);
    server.restart().await;

    let store = Store::connect(&db.url, &StoreOptions::default())
        .await
        .unwrap();
    let mut converged = false;
    for _ in 0..150 {
        let all_there = (0..3).all(|n| {
            emulator
                .user(&format!("crash{n}@example.com"))
                .is_some_and(|u| u.active)
        });
        let queue_empty = store.queue_rows(None).await.unwrap().is_empty();
        if all_there && queue_empty {
            converged = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rows = store.queue_rows(None).await.unwrap();
    assert!(converged, "not converged after restart; queue: {rows:?}");
    for n in 0..3 {
        let u = emulator.user(&format!("crash{n}@example.com")).unwrap();
        assert_eq!(u.groups, ["confluence-users"]);
    }
    store.close().await;
}
