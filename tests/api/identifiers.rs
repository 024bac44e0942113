//! Identifiers a person and Confluence can tell apart (issue 8 item 4): `userName` and group
//! `displayName` with control, zero-width or bidirectional characters, or only whitespace,
//! are refused; NFC and NFD spellings are one name; rows stored before the rule stay usable;
//! the Linchpin feed never carries two entries for one username.

use serde_json::json;
use sqlx::Connection;

use usersync::emulator::{Emulator, EmulatorConfig, SeedUser};
use usersync::scim::schema::ResourceKind;
use usersync::store::links::{Link, LinkStatus};

use crate::helpers::{LogCapture, TestApp, CONNECTOR};

/// Runs SQL on the app's database directly, as an older usersync would have written it.
async fn raw_sql(app: &TestApp, sql: &str, args: &[&str]) {
    sqlx::any::install_default_drivers();
    let mut c = sqlx::AnyConnection::connect(&app.state.settings.database)
        .await
        .unwrap();
    let mut q = sqlx::query(sql);
    for a in args {
        q = q.bind(a.to_string());
    }
    q.execute(&mut c).await.unwrap();
}

/// A user row as a version before the rule stored it: inserted past the SCIM checks, with
/// the key that version computed (lower case, no NFC).
async fn stored_before_the_rule(app: &TestApp, user_name: &str) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    let doc = json!({"userName": user_name, "active": true});
    app.store
        .insert_resource(
            &usersync::store::ResourceKey::new(CONNECTOR, ResourceKind::User, &id),
            doc.as_object().unwrap(),
            &[],
            time::OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    raw_sql(
        app,
        "UPDATE resources SET name_lower = $1 WHERE id = $2",
        &[&user_name.to_lowercase(), &id],
    )
    .await;
    id
}

#[tokio::test]
async fn look_alike_and_blank_names_are_refused_with_invalid_value() {
    let app = TestApp::spawn().await;
    for name in [
        "   ",
        "\u{3000}",
        "alice\u{7}@example.com",
        "ali\u{200B}ce@example.com",
        "\u{202E}moc.elpmaxe@ecila",
        "alice@example.com\u{FEFF}",
        "alice\n@example.com",
    ] {
        let r = app.post("/Users", json!({"userName": name})).await;
        r.assert_scim_error(400, Some("invalidValue"));
        assert!(
            r.body["detail"].as_str().unwrap().contains("userName"),
            "{}",
            r.text
        );
    }
    let r = app
        .post("/Groups", json!({"displayName": "Admins\u{200D}"}))
        .await;
    r.assert_scim_error(400, Some("invalidValue"));
    let r = app.post("/Groups", json!({"displayName": " \t "})).await;
    r.assert_scim_error(400, Some("invalidValue"));

    // Renaming to such a name is refused too, by PATCH and by PUT.
    let id = app.user("plain@example.com").await;
    let r = app
        .patch_ops(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "path": "userName", "value": "plain@example.com\u{200C}"}]),
        )
        .await;
    r.assert_scim_error(400, Some("invalidValue"));
    let r = app
        .put(
            &format!("/Users/{id}"),
            json!({"userName": "\u{2066}plain"}),
        )
        .await;
    r.assert_scim_error(400, Some("invalidValue"));
    assert_eq!(
        app.get(&format!("/Users/{id}")).await.body["userName"],
        "plain@example.com"
    );
    assert_eq!(app.get("/Users").await.body["totalResults"], 1);
}

#[tokio::test]
async fn composed_and_decomposed_spellings_are_one_user_name() {
    let app = TestApp::spawn().await;
    let nfc = "Jos\u{E9}.Garc\u{ED}a@example.com";
    let nfd = "Jose\u{301}.Garci\u{301}a@example.com";
    let id = app.user(nfc).await;
    let r = app.post("/Users", json!({"userName": nfd})).await;
    r.assert_scim_error(409, Some("uniqueness"));
    // The IdP's lookup before a create finds the user whatever spelling it sends.
    let filter = format!(
        "/Users?filter=userName%20eq%20%22{}%22",
        crate::errors::urlencode(nfd)
    );
    let found = app.get(&filter).await;
    assert_eq!(found.body["totalResults"], 1, "{}", found.text);
    assert_eq!(found.body["Resources"][0]["id"], id.as_str());
    // Stored as sent.
    assert_eq!(found.body["Resources"][0]["userName"], nfc);
    let g = app.group("Équipe", &[]).await;
    let r = app
        .post("/Groups", json!({"displayName": "E\u{301}quipe"}))
        .await;
    r.assert_scim_error(409, Some("uniqueness"));
    assert!(!g.is_empty());
}

#[tokio::test]
async fn rows_stored_before_the_rule_stay_readable_writable_and_deletable() {
    let app = TestApp::spawn().await;
    let id = stored_before_the_rule(&app, "old\u{200B}timer@example.com").await;
    let path = format!("/Users/{id}");
    app.get(&path).await.assert_status(200);
    // Deprovisioning never depends on renaming first.
    let r = app
        .patch_ops(
            &path,
            json!([{"op": "replace", "path": "active", "value": false}]),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.body["active"], false);
    let r = app
        .put(
            &path,
            json!({"userName": "old\u{200B}timer@example.com", "active": true}),
        )
        .await;
    r.assert_status(200);
    // A rename must produce a name the rule accepts.
    let r = app
        .patch_ops(
            &path,
            json!([{"op": "replace", "path": "userName", "value": "old\u{200B}timer2"}]),
        )
        .await;
    r.assert_scim_error(400, Some("invalidValue"));
    app.patch_ops(
        &path,
        json!([{"op": "replace", "path": "userName", "value": "oldtimer@example.com"}]),
    )
    .await
    .assert_status(200);
    app.delete(&path).await.assert_status(204);
}

/// Rows from before the rule whose usernames collide once written to XML or compared as
/// Linchpin could: the feed leaves the extra ones out, reports how many, and Linchpin's
/// import (the emulator's) still succeeds.
#[tokio::test]
async fn the_feed_with_look_alike_names_stays_importable() {
    let app = TestApp::spawn_with_connector(|_| {}).await;
    app.user("alice@example.com").await;
    // Two spellings of one name, each stored under its own old key.
    stored_before_the_rule(&app, "Jose\u{301}@example.com").await;
    stored_before_the_rule(&app, "Jos\u{E9}@example.com").await;
    // A Confluence account created before the rule with a control character in its name:
    // XML cannot carry it, and without it the element would name alice.
    let carol = stored_before_the_rule(&app, "alice\u{1}@example.com").await;
    app.store
        .save_link(
            &Link {
                connector: CONNECTOR.into(),
                kind: ResourceKind::User,
                scim_id: carol,
                target_name: "alice\u{1}@example.com".into(),
                target_key: Some("k-carol".into()),
                status: LinkStatus::Active,
                applied: None,
                note: None,
            },
            time::OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    // Zero-width in an old row: its derived username shows the character as `_`.
    stored_before_the_rule(&app, "bob\u{200B}@example.com").await;
    app.user("bob@example.com").await;

    let logs = LogCapture::start();
    let r = app.client.get(app.feed_url()).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body = r.text().await.unwrap();
    let usernames: Vec<&str> = body
        .split("<username>")
        .skip(1)
        .filter_map(|s| s.split("</username>").next())
        .collect();
    assert_eq!(
        usernames,
        [
            "alice@example.com",
            "jos\u{E9}@example.com",
            "bob_@example.com",
            "bob@example.com"
        ],
        "{body}"
    );
    let log = logs.text();
    assert!(
        log.contains("feed.duplicates=1") && log.contains("feed.uncarriable=1"),
        "{log}"
    );
    assert!(
        !log.contains("example.com"),
        "no usernames in the log: {log}"
    );

    let emu = Emulator::new(EmulatorConfig::new("admin-pat-for-tests"));
    for u in &usernames {
        let user: SeedUser = serde_json::from_value(json!({"username": u})).unwrap();
        emu.add_user(&user).unwrap();
    }
    let mut knobs = emu.knobs();
    knobs.lup.xml_url = Some(app.feed_url());
    emu.set_knobs(knobs);
    let report = emu.run_xml_import().await;
    assert!(report.successful, "{report:?}");
    assert_eq!(report.users_in_feed, 4);
    assert!(report.unknown_users.is_empty(), "{report:?}");
}
