//! `kill -9` of the real `usersync serve` in the middle of delivery: after a restart on the
//! same database everything converges and nothing is lost.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;
use usersync::emulator::{Emulator, EmulatorConfig, RouteLatency, RouteScope};
use usersync::store::testdb::TestDb;
use usersync::store::{Store, StoreOptions};

use crate::helpers::backend;

const SCIM_TOKEN: &str = "crash-test-scim-token";
const CONFLUENCE_TOKEN: &str = "crash-test-confluence-pat";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(port: u16, database: &str, confluence: &str, dir: &std::path::Path) -> Server {
    let child = Command::new(env!("CARGO_BIN_EXE_usersync"))
        .arg("serve")
        .current_dir(dir)
        .env("USERSYNC__LISTEN", format!("127.0.0.1:{port}"))
        .env("USERSYNC__ADMIN__LISTEN", "127.0.0.1:0")
        .env("USERSYNC__DATABASE", database)
        .env("USERSYNC__CONNECTORS__CRASH__TOKEN_ENV", "CRASH_SCIM_TOKEN")
        .env("CRASH_SCIM_TOKEN", SCIM_TOKEN)
        .env("USERSYNC__CONFLUENCE__BASE_URL", confluence)
        .env("USERSYNC__CONFLUENCE__TOKEN_ENV", "CRASH_CONFLUENCE_TOKEN")
        .env("CRASH_CONFLUENCE_TOKEN", CONFLUENCE_TOKEN)
        .env(
            "USERSYNC__DELIVERY__RETRY_SCHEDULE",
            r#"["100ms", "200ms", "400ms", "800ms", "1s"]"#,
        )
        // On PostgreSQL the killed worker's claims are taken again when their lease expires
        // (on SQLite at once, at start); a short lease keeps the test short.
        .env("USERSYNC__DELIVERY__LEASE", "2s")
        .env("USERSYNC__LOG__LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start usersync");
    Server(child)
}

async fn wait_healthy(client: &reqwest::Client, port: u16) {
    for _ in 0..100 {
        if client
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("usersync did not start");
}

#[tokio::test]
async fn kill_9_in_the_middle_of_delivery_converges_after_restart() {
    let db = TestDb::create(backend()).await;
    let dir = std::env::temp_dir().join(format!("usersync-crash-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();

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
    let port = free_port();
    let server = start(port, &db.url, &confluence, &dir);
    wait_healthy(&client, port).await;
    let base = format!("http://127.0.0.1:{port}/scim/v2/crash");
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
    let mut server = server;
    server.0.kill().expect("kill -9");
    server.0.wait().unwrap();
    drop(server);

    let mut knobs = emulator.knobs();
    knobs.latency.routes.clear();
    emulator.set_knobs(knobs);
    let _restarted = start(port, &db.url, &confluence, &dir);
    wait_healthy(&client, port).await;

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
    let _ = std::fs::remove_dir_all(dir);
}
