//! The Okta pull connector against its emulator and the Confluence emulator: the
//! `private_key_jwt` service app and the `SSWS` API token, the full read (with the
//! DEPROVISIONED listing) and `lastUpdated` increments, suspension, deletion by the full
//! read's comparison, `managerId` in the Linchpin feed, token renewal, 429 and the
//! `X-Rate-Limit-*` quota, a failing page, the deletion guard and dry runs.

use serde_json::{json, Value};
use usersync::config::pull::{ConnectorKind, MaxDeletes, OktaSettings, PullSettings};
use usersync::config::{ConnectorSettings, Dur};
use usersync::emulator::okta::OktaEmulator;
use usersync::pull::{Mode, RunStatus};

use super::{element, lines_of, settings, spawn_app, three_lines, Pulled, CONNECTOR};

const KEY_ENV: &str = "USERSYNC_TEST_OKTA_KEY";
const TOKEN_ENV: &str = "USERSYNC_TEST_OKTA_TOKEN";
const API_TOKEN: &str = "00emulated-okta-api-token";
const CLIENT: &str = "0oa1serviceapp";

/// Ten minutes: later changes are stamped past the checkpoint's overlap.
const LATER: i64 = 600;

/// A server pulling from an Okta emulator with the service app (`oauth`) or the API token,
/// without overlap, so each increment reads exactly what changed.
async fn spawn(pull: PullSettings, oauth: bool) -> Pulled<OktaEmulator> {
    spawn_with(pull, oauth, 0).await
}

async fn spawn_with(pull: PullSettings, oauth: bool, overlap: u64) -> Pulled<OktaEmulator> {
    spawn_configured(pull, oauth, overlap, |_| {}).await
}

async fn spawn_configured(
    pull: PullSettings,
    oauth: bool,
    overlap: u64,
    configure: impl FnOnce(&mut ConnectorSettings),
) -> Pulled<OktaEmulator> {
    let okta = OktaEmulator::new(
        Some(API_TOKEN),
        Some((CLIENT, include_str!("../fixtures/auth/key-a.pub.pem"))),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(okta.clone().serve(listener, async move {
        let _ = rx.await;
    }));
    let (settings, secret) = if oauth {
        (
            OktaSettings {
                org_url: format!("http://{addr}"),
                token_env: None,
                client_id: Some(CLIENT.to_owned()),
                private_key_env: Some(KEY_ENV.to_owned()),
                key_id: Some("k1".to_owned()),
                token_url: None,
                overlap: Dur(std::time::Duration::from_secs(overlap)),
            },
            (
                KEY_ENV,
                include_str!("../fixtures/auth/key-a.pem").to_owned(),
            ),
        )
    } else {
        (
            OktaSettings {
                org_url: format!("http://{addr}"),
                token_env: Some(TOKEN_ENV.to_owned()),
                client_id: None,
                private_key_env: None,
                key_id: None,
                token_url: None,
                overlap: Dur(std::time::Duration::from_secs(overlap)),
            },
            (TOKEN_ENV, API_TOKEN.to_owned()),
        )
    };
    let mut c = ConnectorSettings {
        kind: ConnectorKind::Okta,
        pull: Some(pull),
        okta: Some(settings),
        ..ConnectorSettings::default()
    };
    configure(&mut c);
    let app = spawn_app(vec![secret], c).await;
    Pulled {
        app,
        idp: okta,
        _stop: tx,
    }
}

fn user(id: &str, name: &str, manager: Option<&str>) -> Value {
    json!({
        "id": id,
        "status": "ACTIVE",
        "profile": {
            "login": format!("{name}@example.com"),
            "email": format!("{name}@example.com"),
            "firstName": name,
            "lastName": "Example",
            "displayName": format!("{name} Example"),
            "title": "Engineer",
            "department": "R&D",
            "employeeNumber": format!("E-{id}"),
            "mobilePhone": "+1 555 0100",
            "managerId": manager,
        },
    })
}

fn incremental(search: &Option<String>) -> bool {
    search
        .as_deref()
        .is_some_and(|s| s.starts_with("lastUpdated gt \""))
}

#[tokio::test]
async fn import_change_suspend_and_delete_reach_confluence() {
    let p = spawn(settings(MaxDeletes::Count(5), 2), true).await;
    p.idp.upsert_user(user("00uboss", "boss", None));
    p.idp.upsert_user(user("00uada", "ada", Some("00uboss")));
    p.idp.upsert_user(user("00ubob", "bob", Some("00uboss")));
    let mut gone = user("00ugone", "gone", None);
    gone["status"] = json!("DEPROVISIONED");
    p.idp.upsert_user(gone);

    // The first run lists everyone, and asks for the deprovisioned users apart.
    let r = p.run().await;
    assert_eq!((r.mode, r.created, r.read), (Mode::Full, 4, 4), "{r:?}");
    assert_eq!(
        p.idp.searches(),
        [None, Some("status eq \"DEPROVISIONED\"".to_owned())]
    );
    assert_eq!(p.idp.pages(), 3, "two pages of 2, one of the deprovisioned");
    let ada = p.stored("00uada").await.expect("ada stored");
    assert_eq!(ada["userName"], "ada@example.com");
    assert_eq!(ada["active"], true);
    let ent = &ada["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"];
    assert_eq!(ent["manager"]["value"], "00uboss");
    assert_eq!(
        (ent["department"].as_str(), ent["employeeNumber"].as_str()),
        (Some("R&D"), Some("E-00uada"))
    );
    assert_eq!(p.stored("00ugone").await.unwrap()["active"], false);
    p.app.deliver_all().await;
    assert!(p.app.confluence().user("ada@example.com").unwrap().active);

    // An incremental change: one search for what changed since the checkpoint, one page.
    p.idp.advance_clock(LATER);
    p.idp.update_profile("00uada", json!({"title": "Lead"}));
    let pages = p.idp.pages();
    let r = p.run().await;
    assert_eq!(
        (r.mode, r.updated, r.created, r.read),
        (Mode::Incremental, 1, 0, 1),
        "{r:?}"
    );
    assert_eq!(p.idp.pages() - pages, 1);
    assert!(incremental(p.idp.searches().last().unwrap()));
    assert_eq!(p.stored("00uada").await.unwrap()["title"], "Lead");

    // A suspension disables the Confluence account.
    p.idp.advance_clock(LATER);
    p.idp.set_status("00ubob", "SUSPENDED");
    assert_eq!(p.run().await.updated, 1);
    p.app.deliver_all().await;
    assert!(!p.app.confluence().user("bob@example.com").unwrap().active);

    // A locked-out user is still employed: still active.
    p.idp.advance_clock(LATER);
    p.idp.set_status("00uada", "LOCKED_OUT");
    let r = p.run().await;
    assert_eq!((r.read, r.updated, r.unchanged), (1, 0, 1), "{r:?}");

    // A user deleted in Okta is not in any increment; the next full read finds it gone and
    // delivery applies the connector's policy (on_delete = "disable").
    p.idp.delete_user("00ubob");
    let r = p.run().await;
    assert_eq!((r.mode, r.deleted), (Mode::Incremental, 0), "{r:?}");
    let r = p.run_with(true, false, false).await.unwrap();
    assert_eq!((r.mode, r.deleted), (Mode::Full, 1), "{r:?}");
    assert!(p.stored("00ubob").await.is_none());
    p.app.deliver_all().await;
    assert!(!p.app.confluence().user("bob@example.com").unwrap().active);

    let q = usersync::store::audit::AuditQuery {
        connector: Some(CONNECTOR.to_owned()),
        resource_id: Some("00ubob".to_owned()),
        ..Default::default()
    };
    let rows = p.app.store.audit_query(&q).await.unwrap();
    assert!(rows.iter().all(|r| r.actor == "pull:okta"), "{rows:?}");
    assert_eq!(rows.len(), 3, "create, update, delete");
}

#[tokio::test]
async fn a_manager_change_reaches_the_linchpin_feed() {
    let p = spawn(settings(MaxDeletes::Count(5), 200), true).await;
    p.idp.upsert_user(user("00uboss", "boss", None));
    p.idp.upsert_user(user("00ucarol", "carol", None));
    p.idp.upsert_user(user("00uada", "ada", Some("00uboss")));
    p.run().await;
    p.app.deliver_all().await;
    let feed = p.feed().await;
    assert!(
        element(&feed, "ada@example.com").contains("<manager>boss@example.com</manager>"),
        "{feed}"
    );
    p.idp.advance_clock(LATER);
    p.idp.set_manager("00uada", Some("00ucarol"));
    assert_eq!(p.run().await.updated, 1);
    p.app.deliver_all().await;
    let feed = p.feed().await;
    assert!(
        element(&feed, "ada@example.com").contains("<manager>carol@example.com</manager>"),
        "{feed}"
    );
}

#[tokio::test]
async fn an_expired_token_is_renewed_and_throttling_and_the_quota_are_waited_out() {
    let p = spawn(settings(MaxDeletes::Count(5), 1), true).await;
    p.idp.upsert_user(user("00uada", "ada", None));
    p.idp.upsert_user(user("00ubob", "bob", None));
    p.run().await;
    assert_eq!(p.idp.token_requests(), 1);

    p.idp.expire_tokens();
    p.idp.throttle(1);
    p.idp.advance_clock(LATER);
    p.idp
        .update_profile("00uada", json!({"department": "Sales"}));
    let r = p.run().await;
    assert_eq!(r.updated, 1, "{r:?}");
    assert_eq!(p.idp.token_requests(), 2, "the token was renewed once");
    assert_eq!(p.idp.throttled(), 1, "a 429 waited out");

    // The quota runs out after the first page: the client waits for the reset instead of
    // calling again early (which the emulator would answer 429).
    p.idp.advance_clock(LATER);
    p.idp.update_profile("00uada", json!({"department": "R&D"}));
    p.idp
        .update_profile("00ubob", json!({"department": "Sales"}));
    p.idp.quota(1);
    let r = p.run().await;
    assert_eq!(r.updated, 2, "{r:?}");
    assert_eq!(p.idp.throttled(), 1, "no request while the quota was spent");
}

#[tokio::test]
async fn an_api_token_works_and_a_wrong_one_is_refused_clearly() {
    let p = spawn(settings(MaxDeletes::Count(5), 200), false).await;
    p.idp.upsert_user(user("00uada", "ada", None));
    assert_eq!(p.run().await.created, 1);
    assert_eq!(p.idp.token_requests(), 0, "SSWS needs no token endpoint");

    let other = OktaEmulator::new(Some("another-token"), None);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(other.clone().serve(listener, std::future::pending()));
    other.upsert_user(user("00ubob", "bob", None));
    let mut c = p.app.state.runtime.settings().connectors[CONNECTOR].clone();
    c.okta.as_mut().unwrap().org_url = format!("http://{addr}");
    let app = spawn_app(vec![(TOKEN_ENV, API_TOKEN.to_owned())], c).await;
    let q = Pulled {
        app,
        idp: other,
        _stop: tokio::sync::oneshot::channel().0,
    };
    let e = q
        .run_with(false, false, false)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("401") && e.contains("E0000011"), "{e}");
    assert_eq!(q.count().await, 0);
}

#[tokio::test]
async fn a_failure_on_page_3_leaves_the_store_and_the_checkpoint_as_they_were() {
    let p = spawn(settings(MaxDeletes::Count(50), 2), true).await;
    for i in 0..7 {
        p.idp
            .upsert_user(user(&format!("00u{i}"), &format!("user{i}"), None));
    }
    p.idp.fail_page(Some(3));
    assert!(p.run_with(false, false, false).await.is_err());
    assert_eq!((p.count().await, p.checkpoint().await), (0, None));

    p.idp.fail_page(None);
    p.run().await;
    let before = p.checkpoint().await.expect("checkpoint");
    let doc = p.stored("00u0").await;
    p.idp.advance_clock(LATER);
    for i in 0..6 {
        p.idp
            .update_profile(&format!("00u{i}"), json!({"title": "Changed"}));
    }
    p.idp.fail_page(Some(3));
    assert!(p.run_with(false, false, false).await.is_err());
    assert_eq!(p.checkpoint().await.as_deref(), Some(before.as_str()));
    assert_eq!(p.stored("00u0").await, doc);
    let runs = p.app.store.pull_runs(CONNECTOR, 1).await.unwrap();
    assert_eq!(runs[0].status, "failed");

    p.idp.fail_page(None);
    let r = p.run().await;
    assert_eq!((r.mode, r.updated), (Mode::Incremental, 6), "{r:?}");
}

#[tokio::test]
async fn the_deletion_guard_trips_and_force_passes_it() {
    let p = spawn(settings(MaxDeletes::Percent(20.0), 200), true).await;
    for i in 0..10 {
        p.idp
            .upsert_user(user(&format!("00u{i}"), &format!("user{i}"), None));
    }
    p.run().await;
    let before = p.checkpoint().await;
    for i in 0..3 {
        p.idp.delete_user(&format!("00u{i}"));
    }
    let r = p.run_with(true, false, false).await.unwrap();
    assert_eq!(r.status, RunStatus::Stopped, "{r:?}");
    assert_eq!(p.count().await, 10);
    assert_eq!(p.checkpoint().await, before);
    let r = p.run_with(true, false, true).await.unwrap();
    assert_eq!((r.status, r.deleted), (RunStatus::Done, 3), "{r:?}");
    assert_eq!(p.count().await, 7);
}

#[tokio::test]
async fn a_dry_run_changes_nothing() {
    let p = spawn(settings(MaxDeletes::Count(5), 200), true).await;
    p.idp.upsert_user(user("00uada", "ada", None));
    let r = p.run_with(false, true, false).await.unwrap();
    assert_eq!((r.created, r.dry_run), (1, true), "{r:?}");
    assert_eq!((p.count().await, p.checkpoint().await), (0, None));
    assert!(p
        .app
        .store
        .pull_runs(CONNECTOR, 5)
        .await
        .unwrap()
        .is_empty());
    assert!(p.app.queued().await.is_empty());
}

#[tokio::test]
async fn an_incremental_run_asks_only_for_changes() {
    let p = spawn(settings(MaxDeletes::Count(5), 10), true).await;
    for i in 0..30 {
        p.idp
            .upsert_user(user(&format!("00u{i:02}"), &format!("user{i:02}"), None));
    }
    p.run().await;
    assert_eq!(
        p.idp.pages(),
        4,
        "three pages of 10, one of the deprovisioned"
    );
    p.idp.advance_clock(LATER);
    p.idp.update_profile("00u07", json!({"title": "Lead"}));
    p.idp.set_status("00u21", "SUSPENDED");
    let r = p.run().await;
    assert_eq!(
        (r.mode, r.read, r.updated),
        (Mode::Incremental, 2, 2),
        "{r:?}"
    );
    assert_eq!(p.idp.pages(), 5, "one page of changes");
    assert!(incremental(p.idp.searches().last().unwrap()));
    // Nothing changed since: the next increment reads nothing.
    p.idp.advance_clock(LATER);
    let r = p.run().await;
    assert_eq!((r.read, r.updated), (0, 0), "{r:?}");
}

#[tokio::test]
async fn the_overlap_reads_recent_changes_again_and_writes_nothing_twice() {
    let p = spawn_with(settings(MaxDeletes::Count(5), 200), true, 60).await;
    p.idp.upsert_user(user("00uold", "old", None));
    p.idp.advance_clock(LATER);
    p.idp.upsert_user(user("00uada", "ada", None));
    p.run().await;
    // The search starts a minute before the newest change seen: ada again, not old.
    p.idp.advance_clock(LATER);
    p.idp.update_profile("00uada", json!({"title": "Lead"}));
    p.idp.advance_clock(30);
    p.idp.upsert_user(user("00ubob", "bob", None));
    let r = p.run().await;
    assert_eq!((r.read, r.created, r.updated), (2, 1, 1), "{r:?}");
    let r = p.run().await;
    assert_eq!(
        (r.read, r.created, r.updated, r.unchanged),
        (2, 0, 0, 2),
        "{r:?}"
    );
}

#[tokio::test]
async fn a_three_line_manager_chain_reaches_the_feed_and_follows_a_moved_middle_manager() {
    let p = spawn_configured(settings(MaxDeletes::Count(5), 2), false, 0, three_lines).await;
    p.idp.upsert_user(user("00uceo", "ceo", None));
    p.idp.upsert_user(user("00ucto", "cto", Some("00uceo")));
    p.idp.upsert_user(user("00ucfo", "cfo", Some("00uceo")));
    p.idp.upsert_user(user("00ulead", "lead", Some("00ucto")));
    p.idp.upsert_user(user("00uada", "ada", Some("00ulead")));
    p.run().await;
    let feed = p.feed().await;
    assert_eq!(
        lines_of(&feed, "ada@example.com"),
        ["lead@example.com", "cto@example.com", "ceo@example.com"],
        "{feed}"
    );
    // Only the team lead changes in Okta; ada's second line follows.
    p.idp.advance_clock(LATER);
    p.idp.set_manager("00ulead", Some("00ucfo"));
    assert_eq!(p.run().await.updated, 1);
    let feed = p.feed().await;
    assert_eq!(
        lines_of(&feed, "ada@example.com"),
        ["lead@example.com", "cfo@example.com", "ceo@example.com"],
        "{feed}"
    );
}
