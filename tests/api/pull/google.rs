//! The Google Workspace pull connector against its emulator and the Confluence emulator:
//! the service-account JWT grant, full listings with deletions by comparison, suspension,
//! the manager's e-mail, organization fields, token renewal, throttling, a failing page, the
//! deletion guard and dry runs.

use serde_json::{json, Value};
use usersync::config::pull::{ConnectorKind, GoogleSettings, MaxDeletes, PullSettings};
use usersync::config::ConnectorSettings;
use usersync::emulator::google::GoogleEmulator;
use usersync::pull::{Mode, RunStatus};

use super::{element, lines_of, settings, spawn_app, three_lines, Pulled};

const KEY_ENV: &str = "USERSYNC_TEST_GOOGLE_KEY";
const SA: &str = "usersync@example-project.iam.gserviceaccount.com";
const ADMIN: &str = "admin@example.com";

async fn spawn(pull: PullSettings, admin: &str) -> Pulled<GoogleEmulator> {
    spawn_configured(pull, admin, |_| {}).await
}

async fn spawn_configured(
    pull: PullSettings,
    admin: &str,
    configure: impl FnOnce(&mut ConnectorSettings),
) -> Pulled<GoogleEmulator> {
    let google = GoogleEmulator::new(SA, include_str!("../fixtures/auth/key-a.pub.pem"), ADMIN);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(google.clone().serve(listener, async move {
        let _ = rx.await;
    }));
    let key = json!({
        "type": "service_account",
        "project_id": "example-project",
        "private_key_id": "k1",
        "private_key": include_str!("../fixtures/auth/key-a.pem"),
        "client_email": SA,
        "client_id": "1234567890",
        "token_uri": format!("http://{addr}/token"),
    });
    let c = ConnectorSettings {
        kind: ConnectorKind::Google,
        pull: Some(pull),
        google: Some(GoogleSettings {
            key_env: KEY_ENV.to_owned(),
            admin_email: admin.to_owned(),
            customer: "my_customer".to_owned(),
            base_url: format!("http://{addr}"),
            token_url: None,
            custom_schemas: Vec::new(),
        }),
        ..ConnectorSettings::default()
    };
    let mut c = c;
    configure(&mut c);
    let app = spawn_app(vec![(KEY_ENV, key.to_string())], c).await;
    Pulled {
        app,
        idp: google,
        _stop: tx,
    }
}

fn user(id: &str, name: &str, manager: Option<&str>) -> Value {
    let mut u = json!({
        "kind": "admin#directory#user",
        "id": id,
        "primaryEmail": format!("{name}@example.com"),
        "name": {"givenName": name, "familyName": "Example", "fullName": format!("{name} Example")},
        "suspended": false,
        "organizations": [{"primary": true, "title": "Engineer", "department": "R&D"}],
        "externalIds": [{"type": "organization", "value": format!("E-{id}")}],
        "phones": [{"type": "work", "value": "+1 555 0100"}],
        "customSchemas": {"Employment": {"costCenter": "CC-1"}},
    });
    if let Some(m) = manager {
        u["relations"] = json!([{"type": "manager", "value": format!("{m}@example.com")}]);
    }
    u
}

#[tokio::test]
async fn import_change_suspend_and_delete_reach_confluence() {
    let p = spawn(settings(MaxDeletes::Count(5), 2), ADMIN).await;
    p.idp.upsert_user(user("101", "boss", None));
    p.idp.upsert_user(user("102", "ada", Some("boss")));
    p.idp.upsert_user(user("103", "bob", Some("boss")));

    let r = p.run().await;
    assert_eq!((r.mode, r.created, r.read), (Mode::Full, 3, 3), "{r:?}");
    assert_eq!(p.idp.pages(), 2, "paged by 2");
    let ada = p.stored("102").await.expect("ada stored");
    assert_eq!(ada["userName"], "ada@example.com");
    assert_eq!(ada["title"], "Engineer");
    let ent = &ada["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"];
    assert_eq!(ent["manager"]["value"], "boss@example.com");
    assert_eq!(
        (ent["department"].as_str(), ent["employeeNumber"].as_str()),
        (Some("R&D"), Some("E-102"))
    );
    p.app.deliver_all().await;
    assert!(p.app.confluence().user("ada@example.com").unwrap().active);

    p.idp.update_user(
        "102",
        json!({"organizations": [{"primary": true, "title": "Lead", "department": "R&D"}]}),
    );
    let r = p.run().await;
    assert_eq!((r.updated, r.unchanged), (1, 2), "{r:?}");
    assert_eq!(p.stored("102").await.unwrap()["title"], "Lead");

    p.idp.update_user("103", json!({"suspended": true}));
    assert_eq!(p.run().await.updated, 1);
    p.app.deliver_all().await;
    assert!(!p.app.confluence().user("bob@example.com").unwrap().active);

    p.idp.delete_user("103");
    let r = p.run().await;
    assert_eq!(r.deleted, 1, "found by comparing the full list: {r:?}");
    assert!(p.stored("103").await.is_none());
    p.app.deliver_all().await;
}

#[tokio::test]
async fn a_manager_change_reaches_the_linchpin_feed() {
    let p = spawn(settings(MaxDeletes::Count(5), 200), ADMIN).await;
    p.idp.upsert_user(user("101", "boss", None));
    p.idp.upsert_user(user("104", "carol", None));
    p.idp.upsert_user(user("102", "ada", Some("boss")));
    p.run().await;
    p.app.deliver_all().await;
    let feed = p.feed().await;
    assert!(
        element(&feed, "ada@example.com").contains("<manager>boss@example.com</manager>"),
        "{feed}"
    );
    p.idp.update_user(
        "102",
        json!({"relations": [{"type": "manager", "value": "carol@example.com"}]}),
    );
    assert_eq!(p.run().await.updated, 1);
    p.app.deliver_all().await;
    let feed = p.feed().await;
    assert!(
        element(&feed, "ada@example.com").contains("<manager>carol@example.com</manager>"),
        "{feed}"
    );
}

#[tokio::test]
async fn an_expired_token_is_renewed_and_throttling_is_waited_out() {
    let p = spawn(settings(MaxDeletes::Count(5), 200), ADMIN).await;
    p.idp.upsert_user(user("102", "ada", None));
    p.run().await;
    assert_eq!(p.idp.token_requests(), 1);
    p.idp.expire_tokens();
    p.idp.throttle(1);
    p.idp.update_user("102", json!({"suspended": true}));
    let r = p.run().await;
    assert_eq!(r.updated, 1, "{r:?}");
    assert_eq!((p.idp.token_requests(), p.idp.throttled()), (2, 1));
}

#[tokio::test]
async fn a_service_account_without_delegation_is_refused_clearly() {
    let p = spawn(PullSettings::default(), "someone.else@example.com").await;
    p.idp.upsert_user(user("102", "ada", None));
    let e = p
        .run_with(false, false, false)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unauthorized_client") && e.contains("credentials"),
        "{e}"
    );
    assert_eq!(p.count().await, 0);
}

#[tokio::test]
async fn a_failure_on_page_3_leaves_the_store_and_the_checkpoint_as_they_were() {
    let p = spawn(settings(MaxDeletes::Count(50), 2), ADMIN).await;
    for i in 0..7 {
        p.idp
            .upsert_user(user(&format!("{}", 200 + i), &format!("user{i}"), None));
    }
    p.run().await;
    let before = p.checkpoint().await.expect("checkpoint");
    let doc = p.stored("200").await;
    p.idp.update_user("200", json!({"suspended": true}));
    p.idp.delete_user("206");
    p.idp.fail_page(Some(3));
    assert!(p.run_with(false, false, false).await.is_err());
    assert_eq!(p.checkpoint().await.as_deref(), Some(before.as_str()));
    assert_eq!(p.stored("200").await, doc);
    assert_eq!(p.count().await, 7, "no deletion");
    p.idp.fail_page(None);
    let r = p.run().await;
    assert_eq!((r.updated, r.deleted), (1, 1), "{r:?}");
}

#[tokio::test]
async fn the_deletion_guard_trips_and_force_passes_it() {
    let p = spawn(settings(MaxDeletes::Percent(20.0), 200), ADMIN).await;
    for i in 0..10 {
        p.idp
            .upsert_user(user(&format!("{}", 300 + i), &format!("user{i}"), None));
    }
    p.run().await;
    for i in 0..3 {
        p.idp.delete_user(&format!("{}", 300 + i));
    }
    let r = p.run().await;
    assert_eq!(r.status, RunStatus::Stopped, "{r:?}");
    assert_eq!(p.count().await, 10);
    let r = p.run_with(false, false, true).await.unwrap();
    assert_eq!((r.status, r.deleted), (RunStatus::Done, 3), "{r:?}");
    assert_eq!(p.count().await, 7);
}

#[tokio::test]
async fn a_dry_run_changes_nothing() {
    let p = spawn(settings(MaxDeletes::Count(5), 200), ADMIN).await;
    p.idp.upsert_user(user("102", "ada", None));
    let r = p.run_with(false, true, false).await.unwrap();
    assert_eq!((r.created, r.dry_run), (1, true), "{r:?}");
    assert_eq!(p.count().await, 0);
    assert_eq!(p.checkpoint().await, None);
    assert!(p
        .app
        .store
        .pull_runs(super::CONNECTOR, 5)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn a_three_line_manager_chain_named_by_e_mail_reaches_the_feed() {
    let p = spawn_configured(settings(MaxDeletes::Count(5), 2), ADMIN, three_lines).await;
    p.idp.upsert_user(user("201", "ceo", None));
    p.idp.upsert_user(user("202", "cto", Some("ceo")));
    p.idp.upsert_user(user("203", "cfo", Some("ceo")));
    p.idp.upsert_user(user("204", "lead", Some("cto")));
    p.idp.upsert_user(user("205", "ada", Some("lead")));
    p.run().await;
    let feed = p.feed().await;
    assert_eq!(
        lines_of(&feed, "ada@example.com"),
        ["lead@example.com", "cto@example.com", "ceo@example.com"],
        "{feed}"
    );
    p.idp.upsert_user(user("204", "lead", Some("cfo")));
    p.run().await;
    let feed = p.feed().await;
    assert_eq!(
        lines_of(&feed, "ada@example.com"),
        ["lead@example.com", "cfo@example.com", "ceo@example.com"],
        "{feed}"
    );
}
