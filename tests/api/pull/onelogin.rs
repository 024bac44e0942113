//! The OneLogin pull connector against its emulator and the Confluence emulator: client
//! credentials, cursor paging, `updated_since` increments, status codes, deletion by the
//! full read's comparison, `manager_user_id` in the Linchpin feed, token renewal, 429 and
//! the `X-RateLimit-*` quota, a failing page, the deletion guard and dry runs.

use serde_json::{json, Value};
use usersync::config::pull::{ConnectorKind, MaxDeletes, OneloginSettings, PullSettings};
use usersync::config::{ConnectorSettings, Dur};
use usersync::emulator::onelogin::OneloginEmulator;
use usersync::pull::{Mode, RunStatus};

use super::{element, lines_of, settings, spawn_app, three_lines, Pulled, CONNECTOR};

const SECRET_ENV: &str = "USERSYNC_TEST_ONELOGIN_SECRET";
const CLIENT: &str = "onelogin-client-id";
const SECRET: &str = "onelogin-client-secret";

/// Ten minutes: later changes are stamped past the checkpoint.
const LATER: i64 = 600;

/// A server pulling from a OneLogin emulator, without overlap, so each increment reads
/// exactly what changed.
async fn spawn(pull: PullSettings) -> Pulled<OneloginEmulator> {
    spawn_configured(pull, |_| {}).await
}

async fn spawn_configured(
    pull: PullSettings,
    configure: impl FnOnce(&mut ConnectorSettings),
) -> Pulled<OneloginEmulator> {
    let onelogin = OneloginEmulator::new(CLIENT, SECRET);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(onelogin.clone().serve(listener, async move {
        let _ = rx.await;
    }));
    let mut c = ConnectorSettings {
        kind: ConnectorKind::Onelogin,
        pull: Some(pull),
        onelogin: Some(OneloginSettings {
            base_url: format!("http://{addr}"),
            client_id: CLIENT.to_owned(),
            client_secret_env: SECRET_ENV.to_owned(),
            overlap: Dur(std::time::Duration::ZERO),
        }),
        ..ConnectorSettings::default()
    };
    configure(&mut c);
    let app = spawn_app(vec![(SECRET_ENV, SECRET.to_owned())], c).await;
    Pulled {
        app,
        idp: onelogin,
        _stop: tx,
    }
}

fn user(id: i64, name: &str, manager: Option<i64>) -> Value {
    json!({
        "id": id,
        "username": format!("{name}@example.com"),
        "email": format!("{name}@example.com"),
        "firstname": name,
        "lastname": "Example",
        "title": "Engineer",
        "department": "R&D",
        "phone": "+1 555 0100",
        "status": 1,
        "state": 1,
        "manager_user_id": manager,
        "custom_attributes": {"cost_center": "CC-1"},
    })
}

#[tokio::test]
async fn import_change_suspend_and_delete_reach_confluence() {
    let p = spawn(settings(MaxDeletes::Count(5), 2)).await;
    p.idp.upsert_user(user(101, "boss", None));
    p.idp.upsert_user(user(102, "ada", Some(101)));
    p.idp.upsert_user(user(103, "bob", Some(101)));

    let r = p.run().await;
    assert_eq!((r.mode, r.created, r.read), (Mode::Full, 3, 3), "{r:?}");
    assert_eq!(p.idp.pages(), 2, "paged by 2 with After-Cursor");
    assert_eq!(p.idp.queries(), [None]);
    let ada = p.stored("102").await.expect("ada stored");
    assert_eq!(ada["userName"], "ada@example.com");
    assert_eq!(ada["displayName"], "ada Example");
    let ent = &ada["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"];
    assert_eq!(ent["manager"]["value"], "101");
    assert_eq!(ent["department"], "R&D");
    p.app.deliver_all().await;
    assert!(p.app.confluence().user("ada@example.com").unwrap().active);

    // An incremental change asks with updated_since and reads one page.
    p.idp.advance_clock(LATER);
    p.idp.update_user(102, json!({"title": "Lead"}));
    let r = p.run().await;
    assert_eq!(
        (r.mode, r.updated, r.created, r.read),
        (Mode::Incremental, 1, 0, 1),
        "{r:?}"
    );
    assert!(p.idp.queries().last().unwrap().is_some());
    assert_eq!(p.stored("102").await.unwrap()["title"], "Lead");

    // Suspended (status 2) disables the Confluence account; locked (3) does not.
    p.idp.advance_clock(LATER);
    p.idp.update_user(103, json!({"status": 2}));
    p.idp.update_user(102, json!({"status": 3}));
    let r = p.run().await;
    assert_eq!((r.read, r.updated, r.unchanged), (2, 1, 1), "{r:?}");
    p.app.deliver_all().await;
    assert!(!p.app.confluence().user("bob@example.com").unwrap().active);
    assert!(p.app.confluence().user("ada@example.com").unwrap().active);

    // Deleted in OneLogin: found by the next full read; delivery applies on_delete.
    p.idp.delete_user(103);
    assert_eq!(p.run().await.deleted, 0, "increments do not see deletions");
    let r = p.run_with(true, false, false).await.unwrap();
    assert_eq!((r.mode, r.deleted), (Mode::Full, 1), "{r:?}");
    assert!(p.stored("103").await.is_none());
    p.app.deliver_all().await;
    assert!(!p.app.confluence().user("bob@example.com").unwrap().active);
}

#[tokio::test]
async fn a_manager_change_reaches_the_linchpin_feed() {
    let p = spawn(settings(MaxDeletes::Count(5), 200)).await;
    p.idp.upsert_user(user(101, "boss", None));
    p.idp.upsert_user(user(104, "carol", None));
    p.idp.upsert_user(user(102, "ada", Some(101)));
    p.run().await;
    p.app.deliver_all().await;
    let feed = p.feed().await;
    assert!(
        element(&feed, "ada@example.com").contains("<manager>boss@example.com</manager>"),
        "{feed}"
    );
    p.idp.advance_clock(LATER);
    p.idp.update_user(102, json!({"manager_user_id": 104}));
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
    let p = spawn(settings(MaxDeletes::Count(5), 1)).await;
    p.idp.upsert_user(user(102, "ada", None));
    p.idp.upsert_user(user(103, "bob", None));
    p.run().await;
    assert_eq!(p.idp.token_requests(), 1);

    p.idp.expire_tokens();
    p.idp.throttle(1);
    p.idp.advance_clock(LATER);
    p.idp.update_user(102, json!({"department": "Sales"}));
    let r = p.run().await;
    assert_eq!(r.updated, 1, "{r:?}");
    assert_eq!((p.idp.token_requests(), p.idp.throttled()), (2, 1));

    p.idp.advance_clock(LATER);
    p.idp.update_user(102, json!({"department": "R&D"}));
    p.idp.update_user(103, json!({"department": "Sales"}));
    p.idp.quota(1);
    let r = p.run().await;
    assert_eq!(r.updated, 2, "{r:?}");
    assert_eq!(p.idp.throttled(), 1, "no request while the quota was spent");
}

#[tokio::test]
async fn wrong_credentials_are_refused_clearly() {
    let p = spawn(PullSettings::default()).await;
    p.idp.upsert_user(user(102, "ada", None));
    let mut c = p.app.state.runtime.settings().connectors[CONNECTOR].clone();
    c.onelogin.as_mut().unwrap().client_id = "someone-else".to_owned();
    let app = spawn_app(vec![(SECRET_ENV, SECRET.to_owned())], c).await;
    let q = Pulled {
        app,
        idp: p.idp.clone(),
        _stop: tokio::sync::oneshot::channel().0,
    };
    let e = q
        .run_with(false, false, false)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("invalid_client") && e.contains("credentials"),
        "{e}"
    );
    assert_eq!(q.count().await, 0);
}

#[tokio::test]
async fn a_failure_on_page_3_leaves_the_store_and_the_checkpoint_as_they_were() {
    let p = spawn(settings(MaxDeletes::Count(50), 2)).await;
    for i in 0..7 {
        p.idp.upsert_user(user(200 + i, &format!("user{i}"), None));
    }
    p.idp.fail_page(Some(3));
    assert!(p.run_with(false, false, false).await.is_err());
    assert_eq!((p.count().await, p.checkpoint().await), (0, None));

    p.idp.fail_page(None);
    p.run().await;
    let before = p.checkpoint().await.expect("checkpoint");
    let doc = p.stored("200").await;
    p.idp.advance_clock(LATER);
    for i in 0..6 {
        p.idp.update_user(200 + i, json!({"status": 2}));
    }
    p.idp.fail_page(Some(3));
    assert!(p.run_with(false, false, false).await.is_err());
    assert_eq!(p.checkpoint().await.as_deref(), Some(before.as_str()));
    assert_eq!(p.stored("200").await, doc);
    assert_eq!(
        p.app.store.pull_runs(CONNECTOR, 1).await.unwrap()[0].status,
        "failed"
    );
    p.idp.fail_page(None);
    let r = p.run().await;
    assert_eq!((r.mode, r.updated), (Mode::Incremental, 6), "{r:?}");
}

#[tokio::test]
async fn the_deletion_guard_trips_and_force_passes_it() {
    let p = spawn(settings(MaxDeletes::Percent(20.0), 200)).await;
    for i in 0..10 {
        p.idp.upsert_user(user(300 + i, &format!("user{i}"), None));
    }
    p.run().await;
    let before = p.checkpoint().await;
    for i in 0..3 {
        p.idp.delete_user(300 + i);
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
    let p = spawn(settings(MaxDeletes::Count(5), 200)).await;
    p.idp.upsert_user(user(102, "ada", None));
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
    let p = spawn(settings(MaxDeletes::Count(5), 10)).await;
    for i in 0..30 {
        p.idp
            .upsert_user(user(400 + i, &format!("user{i:02}"), None));
    }
    p.run().await;
    assert_eq!(p.idp.pages(), 3);
    p.idp.advance_clock(LATER);
    p.idp.update_user(407, json!({"title": "Lead"}));
    p.idp.update_user(421, json!({"status": 2}));
    let r = p.run().await;
    assert_eq!(
        (r.mode, r.read, r.updated),
        (Mode::Incremental, 2, 2),
        "{r:?}"
    );
    assert_eq!(p.idp.pages(), 4, "one page of changes");
    let r = p.run().await;
    assert_eq!((r.read, r.updated), (0, 0), "{r:?}");
}

#[tokio::test]
async fn a_three_line_manager_chain_reaches_the_feed_and_follows_a_moved_middle_manager() {
    let p = spawn_configured(settings(MaxDeletes::Count(5), 2), three_lines).await;
    p.idp.upsert_user(user(201, "ceo", None));
    p.idp.upsert_user(user(202, "cto", Some(201)));
    p.idp.upsert_user(user(203, "cfo", Some(201)));
    p.idp.upsert_user(user(204, "lead", Some(202)));
    p.idp.upsert_user(user(205, "ada", Some(204)));
    p.run().await;
    let feed = p.feed().await;
    assert_eq!(
        lines_of(&feed, "ada@example.com"),
        ["lead@example.com", "cto@example.com", "ceo@example.com"],
        "{feed}"
    );
    // Only the team lead changes in OneLogin; ada's second line follows.
    p.idp.advance_clock(LATER);
    p.idp.upsert_user(user(204, "lead", Some(203)));
    assert_eq!(p.run().await.updated, 1);
    let feed = p.feed().await;
    assert_eq!(
        lines_of(&feed, "ada@example.com"),
        ["lead@example.com", "cfo@example.com", "ceo@example.com"],
        "{feed}"
    );
}
