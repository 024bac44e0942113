//! `GET /metrics` (docs/metrics.md), read with a Prometheus text parser: a SCIM write, its
//! delivery and a deactivation move the series they should, and no label carries the user.

use std::sync::atomic::{AtomicUsize, Ordering};

use prometheus_parse::{Sample, Scrape, Value};
use serde_json::json;
use usersync::emulator::ConfluenceVersion;
use usersync::store::admin::AdminRole;

use crate::helpers::{TestApp, CONNECTOR, OTHER};

const USER_NAME: &str = "Grace.Hopper@Metrics.Example";

/// Where `/metrics` is served: the admin listener.
fn metrics_url(app: &TestApp) -> String {
    format!("{}/metrics", app.admin_address)
}

/// Scrapes `/metrics` with a viewer token (what a Prometheus server is given).
async fn scrape(app: &TestApp) -> (String, Scrape) {
    static SCRAPES: AtomicUsize = AtomicUsize::new(0);
    let name = format!("prometheus-{}", SCRAPES.fetch_add(1, Ordering::Relaxed));
    let token = app.admin_token(&name, AdminRole::Viewer).await;
    let r = app
        .client
        .get(metrics_url(app))
        .bearer_auth(token)
        .send()
        .await
        .expect("/metrics answers");
    assert_eq!(r.status().as_u16(), 200);
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = r.text().await.expect("body");
    let parsed = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("parses");
    (text, parsed)
}

/// The value of the sample `metric` whose labels include every pair of `labels` (0 when there
/// is none: a counter not moved yet has no series).
fn value(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<&Sample> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(v)))
        .collect();
    assert!(found.len() <= 1, "{metric} {labels:?}: {found:?}");
    match found.first().map(|s| &s.value) {
        None => 0.0,
        Some(Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v)) => *v,
        Some(other) => panic!("{metric}: unexpected {other:?}"),
    }
}

#[tokio::test]
async fn a_write_its_delivery_and_a_deactivation_move_their_series() {
    let app = TestApp::spawn_with_confluence(ConfluenceVersion::V10_2, |_| {}).await;
    let created = app
        .post(
            "/Users",
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": USER_NAME,
                "displayName": "Grace Hopper",
                "emails": [{"value": "grace@metrics.example", "type": "work", "primary": true}],
                "active": true
            }),
        )
        .await;
    created.assert_status(201);
    let id = created.id();
    // A request for a connector that does not exist is counted, but not under its name.
    let stranger = app
        .client
        .get(format!("{}/scim/v2/no-such-idp/Users", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(stranger.status().as_u16(), 401);

    let (_, before) = scrape(&app).await;
    let post = [
        ("connector", CONNECTOR),
        ("route", "/scim/v2/:connector/Users"),
        ("method", "POST"),
        ("status", "201"),
    ];
    assert_eq!(value(&before, "usersync_scim_requests_total", &post), 1.0);
    assert_eq!(
        value(
            &before,
            "usersync_scim_request_duration_seconds_count",
            &post[..3]
        ),
        1.0
    );
    assert_eq!(
        value(
            &before,
            "usersync_scim_requests_total",
            &[("connector", "unknown"), ("status", "401")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &before,
            "usersync_queue_pending_keys",
            &[("connector", CONNECTOR)]
        ),
        1.0
    );
    assert_eq!(
        value(
            &before,
            "usersync_queue_pending_keys",
            &[("connector", OTHER)]
        ),
        0.0,
        "every connector has its gauge"
    );

    assert!(app.deliver_all().await >= 1);
    let (_, delivered) = scrape(&app).await;
    let done = [
        ("connector", CONNECTOR),
        ("outcome", "delivered"),
        ("class", "none"),
    ];
    assert_eq!(
        value(&delivered, "usersync_delivery_outcomes_total", &done),
        1.0
    );
    let commit = |active| {
        [
            ("connector", CONNECTOR),
            ("kind", "User"),
            ("active", active),
        ]
    };
    assert_eq!(
        value(
            &delivered,
            "usersync_delivery_commit_to_delivered_seconds_count",
            &commit("true")
        ),
        1.0
    );
    assert_eq!(
        value(
            &delivered,
            "usersync_queue_pending_keys",
            &[("connector", CONNECTOR)]
        ),
        0.0
    );
    let creates = value(
        &delivered,
        "usersync_target_calls_total",
        &[
            ("target", "confluence"),
            ("call", "POST /rest/api/admin/user"),
            ("outcome", "ok"),
        ],
    );
    assert_eq!(creates, 1.0, "the Confluence create call is counted");

    app.patch_ops(
        &format!("/Users/{id}"),
        json!([{"op": "replace", "path": "active", "value": false}]),
    )
    .await
    .assert_status(200);
    app.deliver_all().await;
    assert!(
        !app.confluence()
            .user("grace.hopper@metrics.example")
            .unwrap()
            .active
    );
    let (text, after) = scrape(&app).await;
    assert_eq!(
        value(
            &after,
            "usersync_delivery_commit_to_delivered_seconds_count",
            &commit("false")
        ),
        1.0,
        "the deactivation is in the deprovisioning slice"
    );
    assert_eq!(
        value(
            &after,
            "usersync_delivery_commit_to_delivered_seconds_count",
            &commit("true")
        ),
        1.0
    );
    let disables = value(
        &after,
        "usersync_target_call_duration_seconds_count",
        &[
            ("target", "confluence"),
            ("call", "PUT /rest/api/admin/user/:username/disable"),
        ],
    );
    assert_eq!(disables, 1.0, "{text}");
    assert_eq!(
        value(&after, "usersync_delivery_outcomes_total", &done),
        2.0
    );

    // No personal data: neither the userName (in any case, or its local part), the e-mail
    // nor the SCIM id appears anywhere in the exposition, labels included.
    let lower = text.to_lowercase();
    // A made-up connector name (it could be anything a client sends) is no label either.
    for personal in [
        "grace",
        "hopper",
        "metrics.example",
        &id.to_lowercase(),
        "no-such-idp",
    ] {
        assert!(!lower.contains(personal), "{personal} in /metrics:\n{text}");
    }
    for s in &after.samples {
        for v in s.labels.values() {
            assert!(
                !v.to_lowercase().contains("grace"),
                "{}: label {v}",
                s.metric
            );
        }
    }
}

#[tokio::test]
async fn a_linchpin_feed_is_counted_and_timed_when_complete() {
    let app = TestApp::spawn_with_connector(|_| {}).await;
    app.create_user(json!({"userName": USER_NAME, "displayName": "Grace Hopper"}))
        .await;
    let feed = app.client.get(app.feed_url()).send().await.unwrap();
    assert_eq!(feed.status().as_u16(), 200);
    let etag = feed.headers()["etag"].clone();
    assert!(feed.text().await.unwrap().contains("grace.hopper"));
    // Not modified: nothing generated, nothing counted.
    let again = app
        .client
        .get(app.feed_url())
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 304);

    let (text, s) = scrape(&app).await;
    let complete = [("connector", CONNECTOR), ("outcome", "complete")];
    assert_eq!(
        value(&s, "usersync_linchpin_feed_generations_total", &complete),
        1.0,
        "{text}"
    );
    assert_eq!(
        value(
            &s,
            "usersync_linchpin_feed_duration_seconds_count",
            &[("connector", CONNECTOR)]
        ),
        1.0
    );
    assert!(!text.to_lowercase().contains("grace"));
    // The feed is not a SCIM request.
    assert!(!text.contains("linchpin/:connector"), "{text}");
}

#[tokio::test]
async fn metrics_are_served_on_the_admin_listener_to_an_admin_token_only() {
    let app = TestApp::spawn().await;
    let anonymous = app.client.get(metrics_url(&app)).send().await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let scim_token = app
        .client
        .get(metrics_url(&app))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        scim_token.status().as_u16(),
        401,
        "a connector's token is no admin token"
    );
    let scim_port = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(scim_port.status().as_u16(), 404, "not on the SCIM port");
    let (_, s) = scrape(&app).await;
    assert!(s
        .samples
        .iter()
        .any(|x| x.metric == "usersync_queue_dead_keys"));
}
