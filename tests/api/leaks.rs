//! Leaks closed (issue 8 item 7): no user name or e-mail in the log at info or above (the
//! delivery worker's log is tested with delivery), health checks at debug, and an
//! unreachable database reported as such, not as saturation.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};

use crate::errors::urlencode;
use crate::helpers::{backend, LogCapture, Opts, TestApp};
use usersync::config::Dur;
use usersync::store::Backend;

/// Lines of a capture at info, warn or error.
fn loud_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.contains(" INFO ") || l.contains(" WARN ") || l.contains("ERROR "))
        .collect()
}

#[tokio::test]
async fn no_user_name_or_email_reaches_the_log_at_info_or_above() {
    let app = TestApp::spawn_with_connector(|_| {}).await;
    let logs = LogCapture::start();
    let name = "Leaky.McLeakface@example.com";
    let mail = "private.mailbox@example.org";
    let id = app
        .create_user(
            json!({"userName": name, "emails": [{"value": mail, "primary": true}],
                            "name": {"givenName": "Leaky"}, "active": true}),
        )
        .await;
    app.post("/Users", json!({"userName": name}))
        .await
        .assert_status(409);
    app.post("/Users", json!({"userName": format!("{name}\u{200B}")}))
        .await
        .assert_status(400);
    app.get(&format!(
        "/Users?filter=userName%20eq%20%22{}%22",
        urlencode(name)
    ))
    .await
    .assert_status(200);
    app.get(&format!(
        "/Users?filter=emails.value%20eqq%20%22{}%22",
        urlencode(mail)
    ))
    .await
    .assert_status(400);
    app.patch_ops(
        &format!("/Users/{id}"),
        json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": mail},
               {"op": "replace", "path": "active", "value": "nope"}]),
    )
    .await
    .assert_status(400);
    let feed = app.client.get(app.feed_url()).send().await.unwrap();
    assert!(feed.text().await.unwrap().contains("leaky.mcleakface"));
    app.patch_ops(
        &format!("/Users/{id}"),
        json!([{"op": "replace", "path": "active", "value": false}]),
    )
    .await
    .assert_status(200);
    app.delete(&format!("/Users/{id}")).await.assert_status(204);
    // Basic credentials that carry a user name.
    let basic = Opts {
        auth: Some(format!(
            "Basic {}",
            base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                format!("{name}:pw")
            )
        )),
        ..Opts::default()
    };
    app.send(Method::GET, "/Users", None, basic)
        .await
        .assert_status(401);

    let text = logs.text();
    assert!(
        text.contains("resource created"),
        "the capture works: {text}"
    );
    for line in loud_lines(&text) {
        for secret in [name, mail, "leaky", "private.mailbox"] {
            assert!(
                !line.to_lowercase().contains(&secret.to_lowercase()),
                "{secret} logged: {line}"
            );
        }
    }
}

#[tokio::test]
async fn health_checks_log_at_debug_only() {
    let app = TestApp::spawn().await;
    let logs = LogCapture::start();
    for path in ["/healthz", "/readyz"] {
        let r = app
            .send_url(
                Method::GET,
                &format!("{}{path}", app.address),
                None,
                Opts::default(),
            )
            .await;
        r.assert_status(200);
    }
    app.get("/Users").await.assert_status(200);
    let text = logs.text();
    let loud = loud_lines(&text);
    assert!(
        loud.iter().any(|l| l.contains("request finished")),
        "other requests still log at info: {text}"
    );
    assert_eq!(
        loud.iter()
            .filter(|l| l.contains("request finished"))
            .count(),
        1,
        "only GET /Users: {loud:#?}"
    );
}

/// A TCP relay between usersync and PostgreSQL that can be cut, as a network partition or a
/// stopped database would.
struct Relay {
    addr: std::net::SocketAddr,
    cut: tokio::sync::watch::Sender<bool>,
}

impl Relay {
    async fn start(upstream: std::net::SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (cut, watch) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            loop {
                let mut stop = watch.clone();
                tokio::select! {
                    _ = stop.wait_for(|c| *c) => break, // drops the listener: refused from now on
                    accepted = listener.accept() => {
                        let Ok((mut inbound, _)) = accepted else { break };
                        let mut stop = watch.clone();
                        tokio::spawn(async move {
                            let Ok(mut outbound) = TcpStream::connect(upstream).await else { return };
                            tokio::select! {
                                _ = copy_bidirectional(&mut inbound, &mut outbound) => {}
                                _ = stop.wait_for(|c| *c) => {} // resets both sides
                            }
                        });
                    }
                }
            }
        });
        Relay { addr, cut }
    }
}

#[tokio::test]
async fn an_unreachable_database_is_reported_as_unreachable_not_saturated() {
    if backend() != Backend::Postgres {
        return; // An embedded SQLite file cannot become unreachable.
    }
    let base = usersync::store::testdb::postgres_base();
    let upstream = tokio::net::lookup_host(
        base.trim_start_matches("postgres://")
            .rsplit('@')
            .next()
            .unwrap(),
    )
    .await
    .unwrap()
    .next()
    .unwrap();
    let relay = Relay::start(upstream).await;
    let relay_addr = relay.addr;
    let app = TestApp::spawn_with(|s| {
        // The test database, reached through the relay.
        let (scheme_user, rest) = s.database.rsplit_once('@').unwrap();
        let db = rest.split_once('/').unwrap().1;
        s.database = format!("{scheme_user}@{relay_addr}/{db}");
        s.store.acquire_timeout = Dur(Duration::from_millis(500));
    })
    .await;
    app.get("/Users").await.assert_status(200);
    let logs = LogCapture::start();
    relay.cut.send(true).unwrap();
    let r = app.get("/Users").await;
    r.assert_scim_error(503, None);
    assert!(r.header("retry-after").is_some());
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("cannot be reached"),
        "{}",
        r.text
    );
    let ready = app
        .send_url(
            Method::GET,
            &format!("{}/readyz", app.address),
            None,
            Opts::default(),
        )
        .await;
    ready.assert_status(503);
    let text = logs.text();
    assert!(text.contains("cannot be reached"), "{text}");
    assert!(!text.contains("saturated"), "{text}");
}
