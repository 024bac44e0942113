//! Server limits (issue 8 item 5): silent, half-open, idle and slow-loris connections are
//! closed after `[server]` timeouts (short ones here), the connection cap holds without
//! starving new clients, and a slow streamed response is not mistaken for an idle
//! connection.

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::TestApp;
use usersync::config::Dur;

/// Generous: a connection must be closed well before this.
const EVENTUALLY: Duration = Duration::from_secs(15);

async fn app(max_connections: usize) -> TestApp {
    TestApp::spawn_with(|s| {
        s.server.header_read_timeout = Dur(Duration::from_millis(300));
        s.server.idle_timeout = Dur(Duration::from_millis(400));
        s.server.max_connections = max_connections;
    })
    .await
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Reads until the server closes the connection; returns what it sent.
async fn until_closed(mut c: TcpStream) -> String {
    let mut got = Vec::new();
    tokio::time::timeout(EVENTUALLY, c.read_to_end(&mut got))
        .await
        .expect("the server closes the connection")
        .expect("a clean close");
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn silent_half_open_idle_and_slow_loris_connections_are_closed() {
    let app = app(64).await;
    // Connects and says nothing.
    let silent = connect(&app).await;
    // Starts a request head and never finishes it.
    let mut half = connect(&app).await;
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // Finishes one request, then keeps the connection open and idle.
    let mut idle = connect(&app).await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // Dribbles a head one byte at a time, fast enough for the idle timeout but not for the
    // header-read timeout.
    let loris = connect(&app).await;
    let dribble = tokio::spawn(async move {
        let mut loris = loris;
        for b in b"GET /healthz HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
            if loris.write_all(&[*b]).await.is_err() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    });
    assert_eq!(until_closed(silent).await, "");
    assert_eq!(until_closed(half).await, "");
    let answered = until_closed(idle).await;
    assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");
    assert!(
        tokio::time::timeout(EVENTUALLY, dribble)
            .await
            .unwrap()
            .unwrap(),
        "the slow-loris head was cut off"
    );
    // The server still answers.
    let r = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

#[tokio::test]
async fn at_the_connection_cap_new_clients_are_served_once_idle_ones_are_closed() {
    let app = app(3).await;
    let held: Vec<TcpStream> = futures::future::join_all((0..3).map(|_| connect(&app))).await;
    // A fourth client waits in the accept queue, then is served when the silent ones time
    // out (before the server limits, it waited forever).
    let r = tokio::time::timeout(
        EVENTUALLY,
        reqwest::Client::new()
            .get(format!("{}/healthz", app.address))
            .send(),
    )
    .await
    .expect("served once a slot frees")
    .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    for c in held {
        assert_eq!(until_closed(c).await, "");
    }
}

/// A response whose body is produced slowly (the feed, paused between pages by scripts that
/// run to their deadline) keeps its connection: it is being served, not idle.
#[tokio::test]
async fn a_slow_streamed_response_is_not_cut_by_the_idle_timeout() {
    let app = TestApp::spawn_with_connector_and(
        |c| {
            c.mapping = toml::from_str(
                r#"
[script]
max_operations = 0
timeout_ms = 300
[[fields]]
name = "slow"
source = "userName"
transforms = [{ op = "script", code = "loop {}" }]
"#,
            )
            .unwrap();
        },
        |s| {
            s.server.header_read_timeout = Dur(Duration::from_millis(200));
            s.server.idle_timeout = Dur(Duration::from_millis(250));
        },
    )
    .await;
    for i in 0..4 {
        app.create_user(json!({"userName": format!("slow{i}@example.com")}))
            .await;
    }
    // About 4 × 300 ms without a byte between the head and the first page.
    let body = app
        .client
        .get(app.feed_url())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body.matches("<username>").count(), 4, "{body}");
    assert!(body.ends_with("</users>\n"), "complete: {body}");
}
