//! End to end: an IdP request in, the Confluence emulator's state checked.

use std::time::{Duration, Instant};

use serde_json::json;
use usersync::config::Dur;
use usersync::delivery::settings::{OnConflict, OnDelete, Provisioning};
use usersync::emulator::{
    ConfluenceVersion, Fault, OutageMode, RateLimitKnobs, RateLimitMode, SeedUser,
};

use crate::helpers::{LogCapture, TestApp, CONNECTOR};

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
            &usersync::store::ResourceKey {
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
            &usersync::store::ResourceKey {
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
        s.delivery.probe_interval = usersync::config::Dur(Duration::from_millis(300));
    })
    .await;
    // The outage lasts until the test ends it, so a slow machine cannot see it end early
    // (a timed 400 ms window ran out under load before the first delivery pass).
    app.confluence()
        .arm_fault(Fault::outage(Duration::from_secs(120), OutageMode::Refuse));
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
    // An outage is Confluence's condition, not the keys' failure: no retry is spent.
    assert!(
        rows.iter().all(|r| r.state == "pending" && r.attempts == 0),
        "{rows:?}"
    );
    // Confluence comes back; the next probe (every 300 ms) finds it and the queue drains.
    app.confluence().clear_faults();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !app.queue().await.is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        app.deliver_all().await;
    }
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
    let key = usersync::store::ResourceKey {
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

// ---- target health: rate limits and outages are Confluence's condition, not the keys' ----

/// Polls `check` every 100 ms until it returns `Some`, for at most `limit`; `None` then.
async fn within<T, F: std::future::Future<Output = Option<T>>>(
    limit: Duration,
    mut check: impl FnMut() -> F,
) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Dead keys, with their last error.
async fn dead(app: &TestApp) -> Vec<(String, Option<String>)> {
    app.queue()
        .await
        .into_iter()
        .filter(|r| r.state == "dead")
        .map(|r| (r.key.id, r.last_error))
        .collect()
}

#[tokio::test]
async fn a_burst_under_confluence_rate_limiting_all_arrives_and_no_key_dies() {
    // The server's own worker delivers; each user costs a lookup and a create.
    let app = TestApp::spawn_with_confluence(ConfluenceVersion::V10_2, |s| {
        s.delivery.enabled = true;
        s.connectors
            .entry(CONNECTOR.to_owned())
            .or_default()
            .provisioning
            .default_groups = vec![];
    })
    .await;
    // Confluence's rate limiting for the service account: a bucket of 10, 10 more per second.
    let mut knobs = app.confluence().knobs();
    knobs.rate_limit = RateLimitKnobs {
        mode: RateLimitMode::Limit,
        capacity: 10,
        fill_rate: 10,
        interval_s: 1,
        exempt: vec![],
    };
    app.confluence().set_knobs(knobs);
    // A burst of 60 new users, and one whose e-mail Confluence refuses (400).
    for n in 0..60 {
        app.create_user(json!({"userName": format!("burst{n}@example.com")}))
            .await;
    }
    let bad = app
        .create_user(
            json!({"userName": "bad@example.com", "emails": [{"value": "not-an-address"}]}),
        )
        .await;
    let arrived = within(Duration::from_secs(120), || async {
        let dead = dead(&app).await;
        assert!(
            dead.iter().all(|(id, _)| *id == bad),
            "a key died under rate limiting: {dead:?}"
        );
        let all = (0..60).all(|n| {
            app.confluence()
                .user(&format!("burst{n}@example.com"))
                .is_some()
        });
        // Everything delivered but the bad key, which is dead.
        (all && app.queue().await.len() == 1 && dead.len() == 1).then_some(())
    })
    .await;
    assert!(arrived.is_some(), "not all users reached Confluence");
    // A 400 is the key's own failure: dead at once, with the reason.
    let dead = dead(&app).await;
    assert_eq!(dead.len(), 1);
    assert!(dead[0].1.as_deref().unwrap().contains("400"), "{dead:?}");
    // Paced by Confluence's rate-limit headers, 429s are the exception.
    let calls = app.confluence().calls();
    let refused = calls.iter().filter(|c| c.status == Some(429)).count();
    assert!(
        refused * 10 <= calls.len(),
        "{refused} of {} calls were refused with 429",
        calls.len()
    );
}

/// Ten users in Confluence, delivered by the server's own worker with the production retry
/// schedule shortened to its first three steps (1 s, 5 s, 30 s).
async fn ten_delivered_users() -> (TestApp, Vec<String>) {
    let app = TestApp::spawn_with_confluence(ConfluenceVersion::V10_2, |s| {
        s.delivery.enabled = true;
        s.delivery.retry_schedule = [1, 5, 30]
            .iter()
            .map(|s| Dur(Duration::from_secs(*s)))
            .collect();
    })
    .await;
    let mut ids = Vec::new();
    for n in 0..10 {
        ids.push(
            app.create_user(json!({"userName": format!("leaver{n}@example.com")}))
                .await,
        );
    }
    let delivered = within(Duration::from_secs(30), || async {
        app.queue().await.is_empty().then_some(())
    })
    .await;
    assert!(delivered.is_some(), "the users reached Confluence");
    (app, ids)
}

/// Deactivates every user during an outage of Confluence lasting `outage`, then checks that
/// every deactivation lands within 10 s of the outage's end and no key is dead.
async fn deactivations_land_after(app: &TestApp, ids: &[String], fault: Fault, outage: Duration) {
    app.confluence().arm_fault(fault);
    let ends = Instant::now() + outage;
    for id in ids {
        app.patch_ops(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "path": "active", "value": false}]),
        )
        .await
        .assert_status(200);
    }
    tokio::time::sleep_until(ends.into()).await;
    let landed = within(Duration::from_secs(10), || async {
        let disabled = (0..10).all(|n| {
            app.confluence()
                .user(&format!("leaver{n}@example.com"))
                .is_some_and(|u| !u.active)
        });
        disabled.then_some(())
    })
    .await;
    let dead = dead(app).await;
    assert!(dead.is_empty(), "keys died during the outage: {dead:?}");
    assert!(
        landed.is_some(),
        "deactivations had not landed 10 s after Confluence answered again: {:?}",
        app.queue().await
    );
}

#[tokio::test]
async fn deactivations_sent_during_a_503_outage_land_within_seconds_of_its_end() {
    let (app, ids) = ten_delivered_users().await;
    // Confluence answers 503 with Retry-After: 1 for 8 s (an outage of a minute, shortened
    // like the schedule: longer than the retries a key has).
    let outage = Duration::from_secs(8);
    let fault = Fault::outage(outage, OutageMode::ServiceUnavailable).with_retry_after(1);
    deactivations_land_after(&app, &ids, fault, outage).await;
}

#[tokio::test]
async fn deactivations_sent_while_confluence_refuses_connections_land_within_seconds_of_its_end() {
    let (app, ids) = ten_delivered_users().await;
    let outage = Duration::from_secs(8);
    let fault = Fault::outage(outage, OutageMode::Refuse);
    deactivations_land_after(&app, &ids, fault, outage).await;
}

#[tokio::test]
async fn confluence_refusing_our_credentials_pauses_delivery_instead_of_burying_keys() {
    let app = TestApp::spawn_with_confluence(ConfluenceVersion::V10_2, |s| {
        s.delivery.credentials_probe_interval = Dur(Duration::from_millis(300));
    })
    .await;
    // The service account's token was revoked: Confluence answers 401 to everything.
    app.confluence().arm_fault(Fault::status(401).times(10_000));
    for n in 0..3 {
        app.create_user(json!({"userName": format!("new{n}@example.com")}))
            .await;
    }
    // Far longer than the retry schedule (three immediate retries) allows.
    for _ in 0..5 {
        app.deliver_all().await;
        tokio::time::sleep(Duration::from_millis(350)).await;
    }
    let rows = app.queue().await;
    assert_eq!(rows.len(), 3);
    assert!(
        rows.iter().all(|r| r.state == "pending" && r.attempts == 0),
        "{rows:?}"
    );
    let worker = app.worker.as_ref().unwrap();
    let down = worker.health().down("confluence").expect("paused");
    assert_eq!(down.class, usersync::targets::ErrorClass::Unauthorized);
    // The administrator fixes the credentials: the next probe finds out, everything goes.
    app.confluence().clear_faults();
    tokio::time::sleep(Duration::from_millis(350)).await;
    app.deliver_all().await;
    for n in 0..3 {
        assert!(app
            .confluence()
            .user(&format!("new{n}@example.com"))
            .is_some());
    }
    assert!(app.queue().await.is_empty());
}

#[tokio::test]
async fn delivery_logs_name_the_key_never_the_user_at_info_or_above() {
    let logs = LogCapture::start();
    // Confluence 8.4 cannot update names over REST (a warning), and the connector adopts an
    // existing account (an info line): both used to name the Confluence user.
    let app = TestApp::spawn_with_confluence(ConfluenceVersion::V8_4, |s| {
        let p = &mut s
            .connectors
            .entry(CONNECTOR.to_owned())
            .or_default()
            .provisioning;
        p.on_conflict = OnConflict::Adopt;
    })
    .await;
    app.confluence().add_user(&existing(ADA)).unwrap();
    let id = app.create_user(ada()).await;
    app.deliver_all().await;
    // A key's own failure (Confluence refuses the e-mail) and a paused Confluence (429).
    app.create_user(json!({"userName": "grace.hopper@example.com",
                           "emails": [{"value": "grace-at-example"}]}))
        .await;
    app.deliver_all().await;
    app.confluence()
        .arm_fault(Fault::status(429).with_retry_after(30));
    app.patch_ops(
        &format!("/Users/{id}"),
        json!([{"op": "replace", "path": "active", "value": false}]),
    )
    .await
    .assert_status(200);
    app.deliver_all().await;
    let logged = logs.text();
    for expected in [
        "adopted an existing Confluence account",
        "Confluence cannot update name and e-mail on this version",
        "delivery failed",
        "delivery to it is paused",
    ] {
        assert!(
            logged.contains(expected),
            "{expected:?} missing from: {logged}"
        );
    }
    let delivery_lines: Vec<&str> = logged
        .lines()
        .filter(|l| l.contains("usersync::delivery") || l.contains("usersync::targets"))
        .collect();
    // Every line names its key by the span's fields.
    assert!(
        delivery_lines
            .iter()
            .filter(|l| l.contains("adopted"))
            .all(|l| l.contains(&format!("id={id}")) && l.contains("connector=idp")),
        "{delivery_lines:#?}"
    );
    for line in delivery_lines
        .iter()
        .filter(|l| l.contains(" INFO ") || l.contains(" WARN ") || l.contains("ERROR"))
    {
        for personal in [
            "ada.lovelace",
            "Ada Lovelace",
            "ada@example.com",
            "grace",
            "Someone Else",
        ] {
            assert!(!line.contains(personal), "{personal:?} logged: {line}");
        }
    }
}

#[tokio::test]
async fn an_instance_that_cannot_reach_confluence_leaves_its_keys_to_the_others() {
    use usersync::delivery::Worker;
    use usersync::targets::confluence::{
        ConfluenceAuth, ConfluenceClient, ConfluenceConfig, Secret,
    };
    let app = TestApp::spawn_with_confluence(ConfluenceVersion::V10_2, |s| {
        s.delivery.probe_interval = Dur(Duration::from_millis(500));
        s.delivery.probe_interval_max = Dur(Duration::from_millis(500));
    })
    .await;
    // A second instance on the same database whose network path to Confluence is broken.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let cut_off = Worker::new(
        app.store.clone(),
        ConfluenceClient::new(ConfluenceConfig::new(
            nowhere,
            ConfluenceAuth::Pat(Secret::new("irrelevant")),
        ))
        .unwrap(),
        app.state.settings.delivery.clone(),
        Default::default(),
    );
    for n in 0..3 {
        app.create_user(json!({"userName": format!("shared{n}@example.com")}))
            .await;
    }
    cut_off.drain().await.unwrap();
    let rows = app.queue().await;
    assert!(
        rows.iter()
            .all(|r| r.attempts == 0 && r.waiting_on.as_deref() == Some("confluence")),
        "set aside by the cut-off instance, no retry spent: {rows:?}"
    );
    // The healthy instance takes them when the cut-off one expected Confluence back.
    let delivered = within(Duration::from_secs(10), || async {
        app.deliver_all().await;
        app.queue().await.is_empty().then_some(())
    })
    .await;
    assert!(delivered.is_some(), "{:?}", app.queue().await);
    for n in 0..3 {
        assert!(app
            .confluence()
            .user(&format!("shared{n}@example.com"))
            .is_some());
    }
}
