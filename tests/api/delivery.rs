//! End to end: an IdP request in, the Confluence emulator's state checked.

use std::time::Duration;

use serde_json::json;
use usersync::delivery::settings::{OnConflict, OnDelete, Provisioning};
use usersync::emulator::{ConfluenceVersion, Fault, OutageMode, SeedUser};

use crate::helpers::{TestApp, CONNECTOR};

fn ada() -> serde_json::Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "Ada.Lovelace@Example.com",
        "displayName": "Ada Lovelace",
        "emails": [{"value": "ada@example.com", "type": "work", "primary": true}],
        "active": true
    })
}

const ADA: &str = "ada.lovelace@example.com";

async fn with_policy(p: Provisioning) -> TestApp {
    TestApp::spawn_with_confluence(ConfluenceVersion::V10_2, move |s| {
        s.connectors
            .entry(CONNECTOR.to_owned())
            .or_default()
            .provisioning = p;
    })
    .await
}

#[tokio::test]
async fn a_created_user_exists_active_and_in_the_default_group() {
    let app = TestApp::spawn_with_confluence(ConfluenceVersion::V10_2, |_| {}).await;
    app.create_user(ada()).await;
    app.deliver_all().await;
    let u = app.confluence().user(ADA).expect("created in Confluence");
    assert!(u.active);
    assert_eq!(
        (u.full_name.as_str(), u.email.as_str()),
        ("Ada Lovelace", "ada@example.com")
    );
    assert_eq!(u.groups, ["confluence-users"]);
    assert!(app.queue().await.is_empty(), "nothing left to deliver");
}

#[tokio::test]
async fn updates_deactivation_reactivation_reach_confluence() {
    let app = TestApp::spawn_with_confluence(ConfluenceVersion::V9_4, |_| {}).await;
    let id = app.create_user(ada()).await;
    app.deliver_all().await;
    let path = format!("/Users/{id}");
    app.patch_ops(&path, json!([
        {"op": "Replace", "path": "displayName", "value": "Ada King"},
        {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "ada.king@example.com"}
    ]))
    .await
    .assert_status(200);
    app.deliver_all().await;
    let u = app.confluence().user(ADA).unwrap();
    assert_eq!(
        (u.full_name.as_str(), u.email.as_str()),
        ("Ada King", "ada.king@example.com")
    );
    // Entra's default dialect: a string boolean.
    app.patch_ops(
        &path,
        json!([{"op": "Replace", "path": "active", "value": "False"}]),
    )
    .await
    .assert_status(200);
    app.deliver_all().await;
    assert!(!app.confluence().user(ADA).unwrap().active, "disabled");
    app.patch_ops(&path, json!([{"op": "replace", "value": {"active": true}}]))
        .await
        .assert_status(200);
    app.deliver_all().await;
    assert!(app.confluence().user(ADA).unwrap().active, "enabled again");
}

#[tokio::test]
async fn delete_disables_by_default_and_deletes_when_the_connector_says_so() {
    let app = TestApp::spawn_with_confluence(ConfluenceVersion::V10_2, |_| {}).await;
    let id = app.create_user(ada()).await;
    app.deliver_all().await;
    app.delete(&format!("/Users/{id}")).await.assert_status(204);
    app.deliver_all().await;
    let u = app.confluence().user(ADA).expect("kept");
    assert!(!u.active);

    let app = with_policy(Provisioning {
        on_delete: OnDelete::Delete,
        ..Provisioning::default()
    })
    .await;
    let id = app.create_user(ada()).await;
    app.deliver_all().await;
    app.delete(&format!("/Users/{id}")).await.assert_status(204);
    app.deliver_all().await;
    let calls = app.confluence().calls();
    assert!(calls
        .iter()
        .any(|c| c.method == "DELETE" && c.path.starts_with("/rest/api/admin/user/")));
}

#[tokio::test]
async fn groups_and_memberships_follow_create_rename_add_and_remove() {
    let app = TestApp::spawn_with_confluence(ConfluenceVersion::V10_2, |_| {}).await;
    let a = app.create_user(ada()).await;
    let b = app
        .create_user(
            json!({"userName": "grace@example.com", "emails": [{"value": "grace@example.com"}]}),
        )
        .await;
    let g = app.group("Linchpin Editors", &[&a]).await;
    app.deliver_all().await;
    assert_eq!(
        app.confluence().group_members("linchpin editors").unwrap(),
        [ADA]
    );
    let path = format!("/Groups/{g}");
    app.patch_ops(
        &path,
        json!([
            {"op": "add", "path": "members", "value": [{"value": b}]},
            {"op": "remove", "path": format!("members[value eq \"{a}\"]")}
        ]),
    )
    .await
    .assert_status(200);
    app.deliver_all().await;
    assert_eq!(
        app.confluence().group_members("linchpin editors").unwrap(),
        ["grace@example.com"]
    );
    // Okta's rename: a path-less replace carrying the id.
    app.patch_ops(
        &path,
        json!([{"op": "replace", "value": {"id": g, "displayName": "Linchpin Authors"}}]),
    )
    .await
    .assert_status(200);
    app.deliver_all().await;
    assert_eq!(
        app.confluence().group_members("linchpin authors").unwrap(),
        ["grace@example.com"]
    );
    assert!(app
        .confluence()
        .group_members("linchpin editors")
        .unwrap_or_default()
        .is_empty());
}

#[tokio::test]
async fn an_unchanged_resend_makes_no_confluence_call() {
    let app = TestApp::spawn_with_confluence(ConfluenceVersion::V10_2, |_| {}).await;
    let id = app.create_user(ada()).await;
    app.deliver_all().await;
    app.confluence().clear_calls();
    // Okta re-sends the same profile on every push (AIW PUT of our own GET output).
    let mut body = app.get(&format!("/Users/{id}")).await.body;
    body.as_object_mut().unwrap().remove("meta");
    app.put(&format!("/Users/{id}"), body)
        .await
        .assert_status(200);
    // Even a forced re-delivery of the same state makes no call.
    app.store
        .mark_dirty(
            &usersync::store::queue::QueueKey {
                connector: CONNECTOR.into(),
                kind: usersync::scim::schema::ResourceKind::User,
                id,
            },
            time::OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    app.deliver_all().await;
    assert!(
        app.confluence().calls().is_empty(),
        "{:?}",
        app.confluence().calls()
    );
}

#[tokio::test]
async fn confluence_8_4_creates_users_but_cannot_update_them_over_rest() {
    let app = TestApp::spawn_with_confluence(ConfluenceVersion::V8_4, |_| {}).await;
    let id = app.create_user(ada()).await;
    app.deliver_all().await;
    assert!(app.confluence().user(ADA).is_some());
    app.patch_ops(
        &format!("/Users/{id}"),
        json!([{"op": "replace", "path": "displayName", "value": "Ada King"}]),
    )
    .await
    .assert_status(200);
    app.deliver_all().await;
    // No REST update before 9.4 and a PAT cannot use JSON-RPC: recorded, not retried forever.
    assert_eq!(
        app.confluence().user(ADA).unwrap().full_name,
        "Ada Lovelace"
    );
    assert!(app.queue().await.is_empty());
    let attempts = app
        .store
        .attempts(
            &usersync::store::queue::QueueKey {
                connector: CONNECTOR.into(),
                kind: usersync::scim::schema::ResourceKind::User,
                id,
            },
            10,
        )
        .await
        .unwrap();
    assert!(
        attempts
            .iter()
            .any(|a| a.error_class.as_deref() == Some("unsupported")),
        "{attempts:?}"
    );
}

fn existing(username: &str) -> SeedUser {
    serde_json::from_value(
        json!({"username": username, "fullName": "Someone Else", "email": "else@example.com"}),
    )
    .unwrap()
}

#[tokio::test]
async fn an_existing_username_is_refused_by_default_and_adopted_when_configured() {
    let app = TestApp::spawn_with_confluence(ConfluenceVersion::V10_2, |_| {}).await;
    app.confluence().add_user(&existing(ADA)).unwrap();
    app.create_user(ada()).await;
    app.deliver_all().await;
    let rows = app.queue().await;
    assert_eq!(rows[0].state, "dead");
    assert!(
        rows[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("on_conflict"),
        "{:?}",
        rows[0].last_error
    );
    assert_eq!(
        app.confluence().user(ADA).unwrap().full_name,
        "Someone Else",
        "left alone"
    );

    let app = with_policy(Provisioning {
        on_conflict: OnConflict::Adopt,
        ..Provisioning::default()
    })
    .await;
    app.confluence().add_user(&existing(ADA)).unwrap();
    app.create_user(ada()).await;
    app.deliver_all().await;
    let u = app.confluence().user(ADA).unwrap();
    assert_eq!(
        (u.full_name.as_str(), u.email.as_str()),
        ("Ada Lovelace", "ada@example.com")
    );
    assert!(u.groups.contains(&"confluence-users".to_owned()));
}

#[tokio::test]
async fn confluence_down_for_a_while_loses_nothing_and_converges_after() {
    let app = TestApp::spawn_with_confluence(ConfluenceVersion::V10_2, |s| {
        s.delivery.retry_schedule = vec![usersync::config::Dur(Duration::from_millis(300)); 5];
    })
    .await;
    app.confluence().arm_fault(Fault::outage(
        Duration::from_millis(400),
        OutageMode::Refuse,
    ));
    // SCIM keeps answering while Confluence is unreachable.
    let mut ids = Vec::new();
    for n in 0..5 {
        let r = app
            .post("/Users", json!({"userName": format!("u{n}@example.com")}))
            .await;
        r.assert_status(201);
        ids.push(r.id());
    }
    app.deliver_all().await;
    assert!(
        app.confluence().user("u0@example.com").is_none(),
        "still down"
    );
    let rows = app.queue().await;
    assert_eq!(rows.len(), 5, "every change is still queued");
    assert!(
        rows.iter().all(|r| r.state == "pending" && r.attempts == 1),
        "{rows:?}"
    );
    // The injected outage ends; the retries (300 ms later) find Confluence back.
    tokio::time::sleep(Duration::from_millis(450)).await;
    app.deliver_all().await;
    for n in 0..5 {
        assert!(app
            .confluence()
            .user(&format!("u{n}@example.com"))
            .is_some());
    }
    assert!(app.queue().await.is_empty());
}

#[tokio::test]
async fn a_rate_limit_storm_is_retried_after_the_retry_after_it_announced() {
    let app = TestApp::spawn_with_confluence(ConfluenceVersion::V10_2, |s| {
        s.delivery.retry_schedule = vec![usersync::config::Dur(Duration::from_secs(60)); 3];
    })
    .await;
    app.confluence()
        .arm_fault(Fault::status(429).with_retry_after(1).times(3));
    let id = app.create_user(ada()).await;
    app.deliver_all().await;
    let rows = app.queue().await;
    assert_eq!(rows.len(), 1);
    let wait = rows[0].next_attempt_at - time::OffsetDateTime::now_utc();
    assert!(
        wait <= time::Duration::seconds(1),
        "Retry-After (1 s), not the 60 s schedule: {wait}"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    app.deliver_all().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    app.deliver_all().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    app.deliver_all().await;
    assert!(
        app.confluence().user(ADA).is_some(),
        "converged after the storm"
    );
    let key = usersync::store::queue::QueueKey {
        connector: CONNECTOR.into(),
        kind: usersync::scim::schema::ResourceKind::User,
        id,
    };
    let attempts = app.store.attempts(&key, 20).await.unwrap();
    assert_eq!(
        attempts
            .iter()
            .filter(|a| a.error_class.as_deref() == Some("rate_limited"))
            .count(),
        3
    );
}

#[tokio::test]
async fn a_permanent_400_parks_the_key_with_the_reason_and_a_fix_revives_it() {
    let app = TestApp::spawn_with_confluence(ConfluenceVersion::V10_2, |_| {}).await;
    // Confluence refuses this e-mail address (400); retrying cannot help.
    let id = app
        .create_user(
            json!({"userName": "bad@example.com", "emails": [{"value": "not-an-address"}]}),
        )
        .await;
    app.deliver_all().await;
    let rows = app.queue().await;
    assert_eq!(rows[0].state, "dead");
    assert!(
        rows[0].last_error.as_deref().unwrap().contains("400"),
        "{:?}",
        rows[0].last_error
    );
    // The admin fixes the data in the IdP; the new change revives the key.
    app.patch_ops(
        &format!("/Users/{id}"),
        json!([{"op": "replace", "path": "emails", "value": [{"value": "good@example.com"}]}]),
    )
    .await
    .assert_status(200);
    app.deliver_all().await;
    assert_eq!(
        app.confluence().user("bad@example.com").unwrap().email,
        "good@example.com"
    );
    assert!(app.queue().await.is_empty());
}

#[tokio::test]
async fn c106_scim_answers_do_not_wait_for_a_slow_confluence() {
    // Confluence takes 10 s to create a user; the server's own worker delivers in the
    // background.
    let app =
        TestApp::spawn_with_confluence(ConfluenceVersion::V10_2, |s| s.delivery.enabled = true)
            .await;
    let mut knobs = app.confluence().knobs();
    knobs.latency.routes = vec![usersync::emulator::RouteLatency {
        scope: usersync::emulator::RouteScope {
            method: Some("POST".into()),
            path: Some("/rest/api/admin/user".into()),
        },
        ms: 10_000,
    }];
    app.confluence().set_knobs(knobs);
    // Okta gives up after about 60 s and Entra counts timeouts toward quarantine; the IdP's
    // requests must be answered without waiting for Confluence. A 5 s client timeout (half the
    // Confluence latency) makes the test fail if any answer waited for a Confluence call.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let url = app.url("/Users");
    let r = client
        .post(&url)
        .bearer_auth(&app.token)
        .header("Content-Type", "application/scim+json")
        .body(ada().to_string())
        .send()
        .await
        .expect("answered without waiting for Confluence");
    assert_eq!(r.status(), 201);
    let id = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The worker is at work: it has looked the user up and is now waiting on the slow create.
    for _ in 0..200 {
        if app
            .confluence()
            .calls()
            .iter()
            .any(|c| c.method == "GET" && c.path == "/rest/api/user")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        app.confluence()
            .calls()
            .iter()
            .any(|c| c.path == "/rest/api/user"),
        "the worker reached Confluence"
    );
    let patch = json!({"Operations": [{"op": "Replace", "path": "active", "value": "False"}]});
    let r = client
        .patch(format!("{url}/{id}"))
        .bearer_auth(&app.token)
        .header("Content-Type", "application/scim+json")
        .body(patch.to_string())
        .send()
        .await
        .expect("answered without waiting for Confluence");
    assert_eq!(r.status(), 200);
    assert!(
        app.confluence().user(ADA).is_none(),
        "Confluence has not answered yet"
    );
}
