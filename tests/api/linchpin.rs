//! The Linchpin feed end to end: SCIM writes from Entra- and Okta-style clients, the feed
//! served by usersync, and the emulator's Linchpin XML import (L3) pulling it, as Linchpin's
//! XML data source would. The emulator's Confluence accounts are created directly (the
//! Confluence delivery client is not part of this suite), under the usernames usersync
//! derives.

use reqwest::Method;
use serde_json::json;

use usersync::emulator::{Emulator, EmulatorConfig, LupValue, SeedUser};
use usersync::mapping::{ManagerKey, OnManagerGone};
use usersync::scim::schema::ResourceKind;
use usersync::store::links::{Link, LinkStatus};
use usersync::targets::linchpin::fields::Credentials;

use crate::helpers::{Opts, TestApp, CONNECTOR, FEED_KEY};

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const BOM: &str = "\u{feff}";

/// An emulated Confluence + Linchpin whose XML data source pulls `app`'s feed.
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

fn manager_of(emu: &Emulator, username: &str) -> Option<LupValue> {
    emu.lup_values(username)
        .and_then(|values| values.get("Manager").cloned())
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

#[tokio::test]
async fn an_entra_manager_patch_by_scim_id_reaches_linchpin_through_the_feed() {
    let app = TestApp::spawn_with_connector(|_| {}).await;
    let boss = app
        .create_user(
            json!({"userName": "Boss@Example.com", "displayName": "The Boss",
            ENT: {"department": "Board"}}),
        )
        .await;
    let emp = app
        .create_user(
            json!({"userName": "emp@example.com", "displayName": "Emp Loyee",
            "title": "Engineer", ENT: {"department": "R&D"}}),
        )
        .await;
    // Entra sends the manager in a separate PATCH, by our SCIM id (docs/reference/idp-behaviour.md
    // §2.6).
    app.patch_ops(
        &format!("/Users/{emp}"),
        json!([{"op": "Add", "path": format!("{ENT}:manager"), "value": boss}]),
    )
    .await
    .assert_status(200);

    let body = feed(&app).await;
    assert!(body.starts_with(BOM), "UTF-8 with the byte-order mark");
    let element = element_of(&body, "emp@example.com");
    assert!(
        element.contains("<manager>boss@example.com</manager>"),
        "{element}"
    );
    assert!(
        element.contains("<department>R&amp;D</department>"),
        "{element}"
    );
    assert!(element.contains("<title>Engineer</title>"), "{element}");

    let emu = linchpin_for(&app, &["emp@example.com", "boss@example.com"]);
    let report = emu.run_xml_import().await;
    assert!(report.successful, "{report:?}");
    assert_eq!(report.bom_present, Some(true));
    assert_eq!(
        manager_of(&emu, "emp@example.com"),
        Some(LupValue::Single("boss@example.com".into()))
    );
    let values = emu.lup_values("emp@example.com").unwrap();
    assert_eq!(
        values.get("Department"),
        Some(&LupValue::Single("R&D".into()))
    );
    assert_eq!(emu.lup_read_only("emp@example.com", "Manager"), Some(true));
}

#[tokio::test]
async fn an_okta_manager_given_by_employee_number_reaches_linchpin() {
    let app = TestApp::spawn_with_connector(|c| {
        c.mapping.manager.refers_to = Some(ManagerKey::EmployeeNumber);
    })
    .await;
    app.create_user(json!({"userName": "chief@example.com", ENT: {"employeeNumber": "E100"}}))
        .await;
    // Okta re-sends the HR key of the manager in every push (docs/reference/idp-behaviour.md §3.4
    // O10).
    app.create_user(json!({"userName": "worker@example.com",
        ENT: {"employeeNumber": "E200", "manager": {"value": "E100"}}}))
        .await;
    let body = feed(&app).await;
    assert!(
        element_of(&body, "worker@example.com").contains("<manager>chief@example.com</manager>")
    );
    let emu = linchpin_for(&app, &["worker@example.com", "chief@example.com"]);
    assert!(emu.run_xml_import().await.successful);
    assert_eq!(
        manager_of(&emu, "worker@example.com"),
        Some(LupValue::Single("chief@example.com".into()))
    );
}

#[tokio::test]
async fn a_manager_arriving_after_the_employee_fills_the_pending_field() {
    let app = TestApp::spawn_with_connector(|c| {
        c.mapping.manager.refers_to = Some(ManagerKey::EmployeeNumber);
    })
    .await;
    let emp = app
        .create_user(json!({"userName": "early@example.com",
            ENT: {"manager": {"value": "E300"}}}))
        .await;
    // Pending: the feed leaves the manager out (Linchpin keeps what it has), never empty.
    let before = feed(&app).await;
    assert!(!element_of(&before, "early@example.com").contains("<manager>"));
    let emu = linchpin_for(&app, &["early@example.com", "late@example.com"]);
    assert!(emu.run_xml_import().await.successful);
    assert_eq!(manager_of(&emu, "early@example.com"), None);

    let marked = generation(&app, &emp).await;
    app.create_user(json!({"userName": "late@example.com", ENT: {"employeeNumber": "E300"}}))
        .await;
    assert_eq!(
        generation(&app, &emp).await,
        marked + 1,
        "the employee is marked for delivery again when the manager arrives"
    );
    let after = feed(&app).await;
    assert!(element_of(&after, "early@example.com").contains("<manager>late@example.com</manager>"));
    assert!(emu.run_xml_import().await.successful);
    assert_eq!(
        manager_of(&emu, "early@example.com"),
        Some(LupValue::Single("late@example.com".into()))
    );
}

#[tokio::test]
async fn the_feed_needs_its_key_answers_plainly_and_supports_conditional_gets() {
    let app = TestApp::spawn_with_connector(|_| {}).await;
    app.user("cached@example.com").await;
    let url = |q: &str| format!("{}/linchpin/{CONNECTOR}/profiles.xml{q}", app.address);
    let no_auth = || Opts {
        auth: Some(String::new()),
        ..Opts::default()
    };
    // A missing or wrong key, a connector without a feed (`other`) and no connector at all
    // get one answer: the URL tells a prober nothing.
    let mut answers = Vec::new();
    for u in [
        url(""),
        url("?key=wrong"),
        format!("{}/linchpin/other/profiles.xml?key={FEED_KEY}", app.address),
        format!(
            "{}/linchpin/nobody/profiles.xml?key={FEED_KEY}",
            app.address
        ),
    ] {
        let r = app.send_url(Method::GET, &u, None, no_auth()).await;
        r.assert_status(404);
        assert!(r.header("content-type").unwrap().starts_with("text/plain"));
        assert!(!r.text.contains("scim"), "errors are not SCIM: {}", r.text);
        let mut headers: Vec<(String, String)> = r
            .headers
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "x-request-id" | "date"))
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        headers.sort();
        answers.push((headers, r.text));
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:#?}");

    let first = app
        .send_url(Method::GET, &app.feed_url(), None, no_auth())
        .await;
    first.assert_status(200);
    assert!(first.header("content-type").unwrap().contains("xml"));
    assert!(first.header("last-modified").is_some());
    let etag = first.header("etag").expect("an ETag").to_owned();
    let conditional = Opts {
        headers: vec![("If-None-Match".into(), etag.clone())],
        ..no_auth()
    };
    let again = app
        .send_url(Method::GET, &app.feed_url(), None, conditional.clone())
        .await;
    again.assert_status(304);
    assert!(again.text.is_empty());
    app.user("newcomer@example.com").await;
    let changed = app
        .send_url(Method::GET, &app.feed_url(), None, conditional)
        .await;
    changed.assert_status(200);
    assert_ne!(changed.header("etag"), Some(etag.as_str()));
    assert!(changed
        .text
        .contains("<username>newcomer@example.com</username>"));
}

#[tokio::test]
async fn deprovisioned_users_are_left_out_or_kept_and_usernames_stay_unique() {
    let app = TestApp::spawn_with_connector(|_| {}).await;
    app.create_user(json!({"userName": "gone@example.com", "active": false}))
        .await;
    // Both derive the Confluence username a_b@example.com; Linchpin aborts on duplicates.
    app.user("a+b@example.com").await;
    app.user("a_b@example.com").await;
    let body = feed(&app).await;
    assert!(!body.contains("gone@example.com"));
    assert_eq!(
        body.matches("<username>a_b@example.com</username>").count(),
        1
    );

    let keep = TestApp::spawn_with_connector(|c| {
        c.linchpin.deprovisioned = usersync::targets::linchpin::Deprovisioned::Keep;
        c.linchpin.user_tag = "person".into();
        c.linchpin.username_tag = "login".into();
        c.linchpin.root_tag = "people".into();
    })
    .await;
    keep.create_user(json!({"userName": "gone@example.com", "active": false}))
        .await;
    let body = feed(&keep).await;
    assert!(body.contains("<people>") && body.contains("<person>"));
    assert!(body.contains("<login>gone@example.com</login>"));
}

#[tokio::test]
async fn mapping_rules_shape_the_feed_and_the_fields_check_reads_the_emulator() {
    let app = TestApp::spawn_with_connector(|c| {
        c.mapping = toml::from_str(
            r#"
[[fields]]
name = "mails"
source = "emails.value"
[[fields]]
name = "mobile"
source = "phoneNumbers[type eq \"mobile\"].value"
transforms = [{ op = "replace", pattern = "\\s+", with = "" }]
"#,
        )
        .unwrap();
    })
    .await;
    app.create_user(json!({"userName": "sk@example.com",
        "emails": [{"value": "a@example.com"}, {"value": "b@example.com"}],
        "phoneNumbers": [{"value": "+49 170 1234", "type": "mobile"}]}))
        .await;
    let body = feed(&app).await;
    let element = element_of(&body, "sk@example.com");
    assert!(element.contains("<mobile>+491701234</mobile>"), "{element}");
    assert!(
        element.contains("<mails>a@example.com;b@example.com</mails>"),
        "multi-valued fields are joined with the delimiter: {element}"
    );

    // check-config's comparison with Linchpin's field list (L1), read over HTTP.
    let emu = Emulator::new(EmulatorConfig::new("admin-pat-for-tests"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(emu.clone().serve(listener, std::future::pending()));
    let credentials = Credentials::Bearer("admin-pat-for-tests".into());
    let warnings = usersync::cli::mapping::linchpin_field_warnings(
        app.state.runtime.table(),
        &base,
        &credentials,
    )
    .await
    .expect("the fields endpoint answers");
    let about = |field: &str| {
        warnings
            .iter()
            .any(|w| w.contains(&format!("field \"{field}\"")))
    };
    // The emulator's default fields: Department, Manager, Skills, Phone, Position, Location.
    for matched in ["department", "manager", "phone", "location"] {
        assert!(!about(matched), "{matched}: {warnings:?}");
    }
    for unmatched in ["title", "mails", "mobile", "costCenter"] {
        assert!(about(unmatched), "{unmatched}: {warnings:?}");
    }
    let refused = usersync::cli::mapping::linchpin_field_warnings(
        app.state.runtime.table(),
        &base,
        &Credentials::Anonymous,
    )
    .await;
    assert!(refused.is_err(), "anonymous reads are refused");
}

#[tokio::test]
async fn managers_in_a_cycle_or_naming_themselves_do_not_loop() {
    let app = TestApp::spawn_with_connector(|c| {
        c.mapping.manager.refers_to = Some(ManagerKey::UserName);
    })
    .await;
    app.create_user(json!({"userName": "a@example.com", ENT: {"manager": "B@example.com"}}))
        .await;
    app.create_user(json!({"userName": "b@example.com", ENT: {"manager": "a@example.com"}}))
        .await;
    app.create_user(json!({"userName": "c@example.com", ENT: {"manager": "c@example.com"}}))
        .await;
    let body = tokio::time::timeout(std::time::Duration::from_secs(5), feed(&app))
        .await
        .expect("the feed ends");
    assert!(element_of(&body, "a@example.com").contains("<manager>b@example.com</manager>"));
    assert!(element_of(&body, "b@example.com").contains("<manager>a@example.com</manager>"));
    assert!(
        element_of(&body, "c@example.com").contains("<manager></manager>"),
        "a self-reference is no manager"
    );
}

#[tokio::test]
async fn a_deprovisioned_manager_is_kept_or_cleared_per_policy() {
    for (policy, expected) in [
        (OnManagerGone::Keep, "<manager>boss@example.com</manager>"),
        (OnManagerGone::Clear, "<manager></manager>"),
    ] {
        let app = TestApp::spawn_with_connector(|c| {
            c.mapping.manager.on_deprovisioned = policy;
        })
        .await;
        let boss = app.user("boss@example.com").await;
        app.create_user(json!({"userName": "emp@example.com", ENT: {"manager": boss}}))
            .await;
        app.patch_ops(
            &format!("/Users/{boss}"),
            json!([{"op": "replace", "path": "active", "value": false}]),
        )
        .await
        .assert_status(200);
        let body = feed(&app).await;
        assert!(
            element_of(&body, "emp@example.com").contains(expected),
            "{policy:?} inactive: {body}"
        );
        // Deleted, while its identity link (made when delivery created the account) remains.
        app.store
            .save_link(
                &Link {
                    connector: CONNECTOR.into(),
                    kind: ResourceKind::User,
                    scim_id: boss.clone(),
                    target_name: "boss@example.com".into(),
                    target_key: Some("k".into()),
                    status: LinkStatus::Active,
                    applied: None,
                    note: None,
                },
                time::OffsetDateTime::now_utc(),
            )
            .await
            .unwrap();
        app.delete(&format!("/Users/{boss}"))
            .await
            .assert_status(204);
        let body = feed(&app).await;
        assert!(
            element_of(&body, "emp@example.com").contains(expected),
            "{policy:?} deleted: {body}"
        );
    }
}

#[tokio::test]
async fn mapping_preview_shows_sources_mapped_values_and_what_the_feed_carries() {
    let app = TestApp::spawn_with_connector(|c| {
        c.mapping.username = Some(
            toml::from_str(
                "source = \"userName\"\ntransforms = [\"lower\", { op = \"before\", sep = \"@\" }]",
            )
            .unwrap(),
        );
    })
    .await;
    app.create_user(
        json!({"userName": "Prev.Iew@Example.com", "title": "Tester",
        ENT: {"manager": {"value": "nobody-yet"}}}),
    )
    .await;
    let out =
        usersync::cli::mapping::preview(&app.state.runtime, CONNECTOR, "prev.iew@example.com")
            .await
            .unwrap();
    assert!(out.contains("[\"Prev.Iew@Example.com\"]"), "{out}");
    assert!(out.contains("-> \"prev.iew\""), "{out}");
    assert!(
        out.contains("NOT RESOLVED: no user of connector idp has this value"),
        "{out}"
    );
    assert!(out.contains("<username>prev.iew</username>"), "{out}");
    assert!(out.contains("<title>Tester</title>"), "{out}");
    assert!(out.contains("no webhook configured"), "{out}");
}
