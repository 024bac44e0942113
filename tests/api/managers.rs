//! The manager reaches Linchpin without guesswork (docs/mapping.md "Manager resolution"):
//! with no `refers_to`, a reference is matched by our id, then by externalId,
//! employeeNumber, userName and e-mail, and used only when exactly one user matches. The
//! request bodies are the IdPs' own shapes: Okta's AIW create (docs/reference/idp-behaviour.md
//! §3.3), a OneLogin "SCIM Provisioner with SAML (SCIM v2 Enterprise)" template whose `externalId`
//! is OneLogin's user id and whose manager is the manager's OneLogin id (§4.2).

use serde_json::{json, Value};

use usersync::emulator::{Emulator, EmulatorConfig, LupValue, SeedUser};
use usersync::mapping::ManagerKey;

use crate::helpers::{LogCapture, TestApp, CONNECTOR};

const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// Okta's AIW create body: `externalId` is Okta's own id, the manager is whatever the Okta
/// profile's manager attribute holds (here the manager's employee number).
fn okta_user(
    user_name: &str,
    okta_id: &str,
    employee_number: &str,
    manager: Option<&str>,
) -> Value {
    let mut ent = json!({"employeeNumber": employee_number, "department": "Finance"});
    if let Some(m) = manager {
        ent["manager"] = json!({"value": m, "displayName": "Max Boss"});
    }
    json!({
        "schemas": [USER_URN, ENT],
        "userName": user_name,
        "name": {"givenName": "Jane", "familyName": "Doe"},
        "emails": [{"primary": true, "value": user_name, "type": "work"}],
        "displayName": "Jane Doe",
        "locale": "en-US",
        "externalId": okta_id,
        "groups": [],
        "password": "kX93mqzA",
        "active": true,
        ENT: ent
    })
}

/// A OneLogin SCIM v2 Enterprise template, filled in: `externalId` is `{$user.id}`, the
/// manager `{"managerId": "{$user.manager_id}"}`: the manager's OneLogin id.
fn onelogin_user(user_name: &str, onelogin_id: &str, manager_id: Option<&str>) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "userName": user_name,
        "externalId": onelogin_id,
        "displayName": "Olga Login",
        "name": {"givenName": "Olga", "familyName": "Login"},
        "emails": {"value": user_name, "type": "work", "primary": true},
        "title": "",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "department": "Controlling",
            "manager": {"managerId": manager_id.unwrap_or(""), "displayName": " "}
        }
    })
}

async fn feed(app: &TestApp) -> String {
    let r = app
        .client
        .get(app.feed_url())
        .send()
        .await
        .expect("feed answers");
    assert_eq!(r.status().as_u16(), 200);
    r.text().await.expect("feed body")
}

/// The `<user>` element of one username in a feed.
fn element_of<'f>(feed: &'f str, username: &str) -> &'f str {
    let marker = format!("<username>{username}</username>");
    let at = feed
        .find(&marker)
        .unwrap_or_else(|| panic!("{username} in {feed}"));
    let start = feed[..at].rfind("<user>").unwrap_or(0);
    let end = feed[at..].find("</user>").map_or(feed.len(), |e| at + e);
    &feed[start..end]
}

/// An emulated Linchpin whose XML data source pulls `app`'s feed.
fn linchpin_for(app: &TestApp, usernames: &[&str]) -> Emulator {
    let emu = Emulator::new(EmulatorConfig::new("admin-pat-for-tests"));
    for u in usernames {
        let user: SeedUser = serde_json::from_value(json!({"username": u})).unwrap();
        emu.add_user(&user).unwrap();
    }
    let mut knobs = emu.knobs();
    knobs.lup.xml_url = Some(app.feed_url());
    emu.set_knobs(knobs);
    emu
}

fn manager_in_linchpin(emu: &Emulator, username: &str) -> Option<LupValue> {
    emu.lup_values(username)
        .and_then(|values| values.get("Manager").cloned())
}

async fn preview(app: &TestApp, user: &str) -> String {
    usersync::cli::mapping::preview(&app.state.runtime, CONNECTOR, user)
        .await
        .unwrap()
}

async fn generation(app: &TestApp, id: &str) -> i64 {
    app.store
        .queue_rows(Some(CONNECTOR))
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.key.id == id)
        .map(|r| r.generation)
        .unwrap_or(0)
}

async fn check_config(app: &TestApp) -> Vec<String> {
    usersync::cli::mapping::check(app.state.runtime.table(), Some(&app.store), None)
        .await
        .unwrap()
}

#[tokio::test]
async fn okta_manager_by_employee_number_resolves_with_no_refers_to() {
    let app =
        TestApp::spawn_with_connector(|c| assert_eq!(c.mapping.manager.refers_to, None)).await;
    app.create_user(okta_user(
        "max.boss@example.com",
        "00u1bossAAAAAAAAAAA1",
        "1234",
        None,
    ))
    .await;
    app.create_user(okta_user(
        "jane.doe@example.com",
        "00u2janeAAAAAAAAAAA2",
        "4711",
        Some("1234"),
    ))
    .await;
    let body = feed(&app).await;
    assert!(
        element_of(&body, "jane.doe@example.com")
            .contains("<manager>max.boss@example.com</manager>"),
        "{body}"
    );
    let emu = linchpin_for(&app, &["jane.doe@example.com", "max.boss@example.com"]);
    assert!(emu.run_xml_import().await.successful);
    assert_eq!(
        manager_in_linchpin(&emu, "jane.doe@example.com"),
        Some(LupValue::Single("max.boss@example.com".into()))
    );
    let out = preview(&app, "jane.doe@example.com").await;
    assert!(
        out.contains("found by employeeNumber: max.boss@example.com"),
        "{out}"
    );
    let lines = check_config(&app).await;
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("connector {CONNECTOR}: managers:"))
                && l.contains("1 of 2 users name a manager: 1 resolved (1 by employeeNumber)")),
        "{lines:#?}"
    );
}

#[tokio::test]
async fn onelogin_manager_id_holding_onelogin_ids_resolves_through_external_id() {
    let app = TestApp::spawn_with_connector(|_| {}).await;
    // The report first: OneLogin provisions in the order access is granted.
    let olga = app
        .create_user(onelogin_user(
            "olga@example.com",
            "48213017",
            Some("48213001"),
        ))
        .await;
    let pending = feed(&app).await;
    assert!(
        !element_of(&pending, "olga@example.com").contains("<manager>"),
        "the manager is pending, never emptied: {pending}"
    );
    let before = generation(&app, &olga).await;
    app.create_user(onelogin_user("manny@example.com", "48213001", None))
        .await;
    assert_eq!(
        generation(&app, &olga).await,
        before + 1,
        "the report is delivered again when its manager arrives"
    );
    let body = feed(&app).await;
    assert!(
        element_of(&body, "olga@example.com").contains("<manager>manny@example.com</manager>"),
        "{body}"
    );
    let out = preview(&app, "olga@example.com").await;
    assert!(
        out.contains("found by externalId: manny@example.com"),
        "{out}"
    );
    let emu = linchpin_for(&app, &["olga@example.com", "manny@example.com"]);
    assert!(emu.run_xml_import().await.successful);
    assert_eq!(
        manager_in_linchpin(&emu, "olga@example.com"),
        Some(LupValue::Single("manny@example.com".into()))
    );
}

#[tokio::test]
async fn a_value_two_users_share_stays_unresolved_is_warned_once_and_never_guessed() {
    let app = TestApp::spawn_with_connector(|_| {}).await;
    let logs = LogCapture::start();
    // A person and their admin account carry the same HR number.
    let boss = app
        .create_user(okta_user(
            "boss@example.com",
            "00u3bossAAAAAAAAAAA3",
            "E42",
            None,
        ))
        .await;
    let admin = app
        .create_user(okta_user(
            "boss.admin@example.com",
            "00u4admnAAAAAAAAAAA4",
            "E42",
            None,
        ))
        .await;
    let report = app
        .create_user(okta_user(
            "report@example.com",
            "00u5reprAAAAAAAAAAA5",
            "E77",
            Some("E42"),
        ))
        .await;
    for _ in 0..3 {
        let body = feed(&app).await;
        assert!(
            !element_of(&body, "report@example.com").contains("<manager>"),
            "never a guess: {body}"
        );
    }
    let text = logs.text();
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("manager reference"))
        .collect();
    assert_eq!(warnings.len(), 1, "once, not once per pull: {text}");
    let served: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("Linchpin feed served"))
        .collect();
    assert_eq!(served.len(), 3, "{text}");
    assert!(
        served
            .iter()
            .all(|l| l.contains("feed.manager_unresolved=1")),
        "every pull counts it: {served:#?}"
    );
    let w = warnings[0];
    assert!(
        w.contains(CONNECTOR)
            && w.contains(&report)
            && w.contains("E42")
            && w.contains("ambiguous")
            && w.contains("employeeNumber"),
        "{w}"
    );
    assert!(
        !w.contains("report@example.com") && !w.contains("Jane") && !w.contains("boss@"),
        "no personal data in the log: {w}"
    );
    let out = preview(&app, &report).await;
    assert!(
        out.contains("NOT RESOLVED: 2 users of connector idp match this value (by employeeNumber)"),
        "{out}"
    );
    assert!(
        out.contains("(manager not resolved: left as it is)"),
        "{out}"
    );
    let lines = check_config(&app).await;
    assert!(
        lines
            .iter()
            .any(|l| l.contains("1 ambiguous (several users match)")
                && l.contains("mapping preview")),
        "{lines:#?}"
    );

    // Once the admin account gets its own number, the report resolves (and is delivered
    // again, as the store marks it when a user carrying its reference changes).
    let before = generation(&app, &report).await;
    app.patch_ops(
        &format!("/Users/{admin}"),
        json!([{"op": "replace", "path": format!("{ENT}:employeeNumber"), "value": "E42-A"}]),
    )
    .await
    .assert_status(200);
    assert_eq!(generation(&app, &report).await, before + 1);
    let body = feed(&app).await;
    assert!(
        element_of(&body, "report@example.com").contains("<manager>boss@example.com</manager>"),
        "{body}"
    );
    assert_eq!(boss.len(), 36);
}

#[tokio::test]
async fn a_value_matching_two_keys_of_two_users_is_ambiguous_too() {
    let app = TestApp::spawn_with_connector(|_| {}).await;
    // One user's externalId is another's employee number.
    app.create_user(okta_user("a@example.com", "7001", "1", None))
        .await;
    app.create_user(okta_user(
        "b@example.com",
        "00u6bbbbAAAAAAAAAAA6",
        "7001",
        None,
    ))
    .await;
    app.create_user(okta_user(
        "c@example.com",
        "00u7ccccAAAAAAAAAAA7",
        "3",
        Some("7001"),
    ))
    .await;
    let out = preview(&app, "c@example.com").await;
    assert!(
        out.contains("2 users of connector idp match this value (by externalId, employeeNumber)"),
        "{out}"
    );
    assert!(!element_of(&feed(&app).await, "c@example.com").contains("<manager>"));
}

#[tokio::test]
async fn an_explicit_refers_to_matches_that_key_only() {
    let app = TestApp::spawn_with_connector(|c| {
        c.mapping.manager.refers_to = Some(ManagerKey::ExternalId);
    })
    .await;
    app.create_user(okta_user(
        "boss@example.com",
        "00u8bossAAAAAAAAAAA8",
        "1234",
        None,
    ))
    .await;
    // The manager sent as an employee number: no user has it as externalId, and the other
    // keys are not asked, because the admin said what the value means.
    app.create_user(okta_user(
        "emp@example.com",
        "00u9empAAAAAAAAAAAA9",
        "5",
        Some("1234"),
    ))
    .await;
    app.create_user(okta_user(
        "emp2@example.com",
        "00uAemp2AAAAAAAAAAAA",
        "6",
        Some("00u8bossAAAAAAAAAAA8"),
    ))
    .await;
    let body = feed(&app).await;
    assert!(
        !element_of(&body, "emp@example.com").contains("<manager>"),
        "{body}"
    );
    assert!(element_of(&body, "emp2@example.com").contains("<manager>boss@example.com</manager>"));
    let out = preview(&app, "emp@example.com").await;
    assert!(
        out.contains("refers to externalId (refers_to): NOT RESOLVED: no user of connector idp has this value as externalId"),
        "{out}"
    );
}

#[tokio::test]
async fn a_manager_named_by_e_mail_is_resolved_and_marks_its_reports_when_it_arrives() {
    let app = TestApp::spawn_with_connector(|_| {}).await;
    let report = app
        .create_user(
            json!({"schemas": [USER_URN, ENT], "userName": "early@example.com",
            ENT: {"manager": {"value": "Chief.Person@Example.com"}}}),
        )
        .await;
    let before = generation(&app, &report).await;
    // The manager's userName is a login, not the address the report names.
    app.create_user(json!({"schemas": [USER_URN], "userName": "chief",
        "emails": [{"value": "chief.person@example.com", "type": "work", "primary": true}]}))
        .await;
    assert_eq!(generation(&app, &report).await, before + 1);
    let body = feed(&app).await;
    assert!(
        element_of(&body, "early@example.com").contains("<manager>chief</manager>"),
        "{body}"
    );
    let out = preview(&app, "early@example.com").await;
    assert!(out.contains("found by email: chief"), "{out}");
}
