//! The web console (docs/console.md) in a real browser: headless Chromium driven over
//! WebDriver against a real server, store and Confluence emulator. Screenshots of the main
//! pages go to `target/console-screenshots/`.

use reqwest::Method;
use serde_json::json;
use usersync::emulator::{ConfluenceVersion, Seed};
use usersync::store::admin::AdminRole;

use crate::browser::Browser;
use crate::helpers::{TestApp, CONNECTOR};
use crate::process::{cli, succeeds};

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// Signs in with `token` and lands on the dashboard.
pub async fn sign_in(b: &Browser, app: &TestApp, token: &str) {
    b.goto(&format!("{}/", app.admin_address)).await;
    assert!(b.url().await.ends_with("/login"), "not signed in yet");
    if b.find_all("#token").await.is_empty() {
        panic!("no sign-in form at {}: {}", b.url().await, b.source().await);
    }
    b.type_into("#token", token).await;
    b.click_on("form.signin button[type=submit]").await;
    assert!(page_has(b, "<h2 id=\"health\">").await, "signed in");
}

/// Waits for a condition on the page (the console has no script: this only covers the
/// browser finishing a navigation).
pub async fn page_has(b: &Browser, text: &str) -> bool {
    for _ in 0..50 {
        if b.source().await.contains(text) {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn an_admin_finds_a_user_reads_its_timeline_and_runs_a_dry_run_then_a_sync() {
    let app = TestApp::spawn_with_confluence(ConfluenceVersion::V10_2, |_| {}).await;
    let token = app.admin_token("ops-admin", AdminRole::Admin).await;
    // A connector created by the CLI, as an operator would.
    succeeds(cli(&app.db_url).args(["connector", "create", "from-cli"]));
    let id = app
        .create_user(
            json!({"userName": "jane.doe@example.com", "displayName": "Jane Doe",
            "active": true, ENT: {"department": "Research"}}),
        )
        .await;
    app.patch_ops(
        &format!("/Users/{id}"),
        json!([{"op": "replace", "path": "displayName", "value": "Jane Q. Doe"}]),
    )
    .await
    .assert_status(200);

    let b = Browser::start(1280, 900).await;
    sign_in(&b, &app, &token).await;
    assert!(
        page_has(&b, ">from-cli<").await,
        "the CLI's connector is listed"
    );
    assert!(b.text("#connectors + div table").await.contains(CONNECTOR));
    b.screenshot("dashboard").await;

    // Search.
    b.goto(&format!(
        "{}/connectors/{CONNECTOR}/users",
        app.admin_address
    ))
    .await;
    b.type_into("#q", "jane").await;
    b.click_on("form.search button").await;
    assert!(page_has(&b, " found").await);
    let results = b.text("#results").await;
    assert!(results.contains("jane.doe@example.com"), "{results}");
    b.screenshot("users").await;
    b.click_on("#results tbody a").await;
    assert!(page_has(&b, "Timeline").await);
    assert!(b.url().await.ends_with(&format!("/users/{id}")));

    // The timeline shows the PATCH with what it changed.
    let timeline = b.text("ol.timeline").await;
    assert!(timeline.contains("PATCH"), "{timeline}");
    assert!(
        timeline.contains("Jane Q. Doe") && timeline.contains("displayName"),
        "{timeline}"
    );

    // Dry run: planned calls on the page, nothing written to Confluence.
    app.confluence().clear_calls();
    b.click_on("form[action$='/dry-run'] button").await;
    assert!(page_has(&b, "id=\"outcome\"").await);
    let outcome = b.text("#outcome").await;
    assert!(outcome.contains("Dry run: done"), "{outcome}");
    assert!(b
        .text("#planned")
        .await
        .contains("create user jane.doe@example.com"));
    assert!(app.confluence().user("jane.doe@example.com").is_none());
    assert!(app.confluence().calls().iter().all(|c| c.method == "GET"));
    b.screenshot("user-dry-run").await;

    // Sync now: the emulator receives the user.
    b.click_on("form[action$='/sync'] button").await;
    assert!(page_has(&b, "Sync: done").await, "{}", b.source().await);
    assert!(b.text("#outcome").await.contains("Sync: done"));
    let created = app
        .confluence()
        .user("jane.doe@example.com")
        .expect("delivered");
    assert_eq!(created.full_name, "Jane Q. Doe");
    assert!(app
        .confluence()
        .calls()
        .iter()
        .any(|c| c.method == "POST" && c.path.contains("/rest/api/admin/user")));
    // The page now shows the link and the delivery in the timeline.
    assert!(b.text("ol.timeline").await.contains("delivered"));
    b.screenshot("user").await;

    // The audit log page lists the sync under the token's name.
    b.goto(&format!("{}/audit?actor=ops-admin", app.admin_address))
        .await;
    assert!(b.text("#audit").await.contains("user.sync"));
    b.screenshot("audit").await;

    // A phone-sized window still shows the dashboard (no sideways page scroll).
    b.resize(390, 844).await;
    b.goto(&format!("{}/", app.admin_address)).await;
    let wide = b
        .run_async("const done = arguments[arguments.length - 1]; done(document.documentElement.scrollWidth);")
        .await;
    assert!(
        wide.as_u64().unwrap() <= 400,
        "the page is {wide} px wide on a phone"
    );
    b.screenshot("dashboard-phone").await;
}

#[tokio::test]
async fn a_mapping_edit_is_previewed_then_saved_and_changes_the_linchpin_feed() {
    // A declared connector with a feed and no rules in the file: its rules are editable.
    let app = TestApp::spawn_with_confluence_and_connector(ConfluenceVersion::V10_2, |_| {}).await;
    let seed: Seed = serde_json::from_value(json!({"lup_fields": [
        {"label": "Department", "dataSourceType": "XML"},
        {"label": "Line Manager", "fieldType": "USERSELECT", "dataSourceType": "IDP"}
    ]}))
    .unwrap();
    app.confluence().reset(Some(&seed)).unwrap();
    let token = app.admin_token("ops-admin", AdminRole::Admin).await;
    let boss = app
        .create_user(json!({"userName": "boss@example.com"}))
        .await;
    app.create_user(json!({"userName": "kim@example.com", ENT: {"manager": {"value": boss}}}))
        .await;
    let feed = || async {
        app.client
            .get(app.feed_url())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    assert!(!feed().await.contains("<line_manager>"));

    let b = Browser::start(1280, 1000).await;
    sign_in(&b, &app, &token).await;
    b.goto(&format!(
        "{}/connectors/{CONNECTOR}/provisioning",
        app.admin_address
    ))
    .await;
    let fields = b.text("#linchpin-fields").await;
    assert!(
        fields.contains("Line Manager") && fields.contains("IdP"),
        "{fields}"
    );
    // Map the IdP-sourced field to the manager, preview on Kim, then save.
    b.click_on("#add_field option[value='Line Manager']").await;
    b.type_into("#add_source", "manager").await;
    b.click_on("button[value=add]").await;
    assert!(page_has(&b, "Field added").await);
    let rules = b.source().await;
    assert!(
        rules.contains("linchpin_field = &quot;Line Manager&quot;")
            || rules.contains("linchpin_field = \"Line Manager\"")
    );
    b.type_into("#user", "kim@example.com").await;
    b.click_on("button[value=preview]").await;
    assert!(
        page_has(&b, "Preview (not saved)").await,
        "{}",
        b.source().await
    );
    let preview = b.text("#preview").await;
    assert!(preview.contains("boss@example.com"), "{preview}");
    assert!(b
        .text("#feed-element")
        .await
        .contains("<line_manager>boss@example.com</line_manager>"));
    assert!(
        !feed().await.contains("<line_manager>"),
        "a preview changes nothing"
    );
    b.screenshot("provisioning-preview").await;
    b.click_on("button[value=save]").await;
    assert!(
        page_has(&b, "Saved as version").await,
        "{}",
        b.source().await
    );
    assert!(b.text("p.notice.ok").await.contains("Saved as version 1"));
    let mapping = b.text("#mapping").await;
    assert!(mapping.contains("profile.line_manager"), "{mapping}");
    b.screenshot("provisioning").await;
    let after = feed().await;
    assert!(
        after.contains("<line_manager>boss@example.com</line_manager>"),
        "{after}"
    );
    // Versioned and audited.
    let versions = app
        .admin(
            Method::GET,
            &format!("/connectors/{CONNECTOR}/mapping/versions"),
            Some(&token),
        )
        .await;
    assert_eq!(versions.body["versions"][0]["version"], 1);
    assert_eq!(versions.body["versions"][0]["created_by"], "ops-admin");
    let audit = app
        .admin(Method::GET, "/audit?actor=ops-admin", Some(&token))
        .await;
    assert_eq!(audit.body["items"][0]["operation"], "mapping.save");
}

#[tokio::test]
async fn a_viewer_has_no_action_buttons_and_forged_or_unprotected_posts_are_refused() {
    let app = TestApp::spawn_with_confluence(ConfluenceVersion::V10_2, |_| {}).await;
    let viewer = app.admin_token("ops-viewer", AdminRole::Viewer).await;
    let admin = app.admin_token("ops-admin", AdminRole::Admin).await;
    let id = app.user("lee@example.com").await;
    let user_page = format!("{}/connectors/{CONNECTOR}/users/{id}", app.admin_address);

    let b = Browser::start(1280, 900).await;
    sign_in(&b, &app, &viewer).await;
    b.goto(&user_page).await;
    assert!(b.text("main h1").await.contains("lee@example.com"));
    assert!(
        b.find_all("form[action$='/sync']").await.is_empty(),
        "no Sync now for a viewer"
    );
    assert!(b.find_all("form[action$='/dry-run']").await.is_empty());
    b.goto(&format!(
        "{}/connectors/{CONNECTOR}/sync",
        app.admin_address
    ))
    .await;
    assert!(b.find_all("form[action$='/pause']").await.is_empty());
    b.screenshot("viewer-sync-tab").await;
    b.goto(&user_page).await;
    // A forged POST with the viewer's own session and CSRF token (from the sign-out form):
    // refused. Sent from outside the page: the console's CSP lets no script send requests.
    let post = |cookie: String, body: String| {
        let client = app.client.clone();
        let url = format!(
            "{}/connectors/{CONNECTOR}/users/{id}/sync",
            app.admin_address
        );
        async move {
            client
                .post(url)
                .header("Cookie", cookie)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let session_of = |cookies: Vec<serde_json::Value>| {
        let c = cookies
            .into_iter()
            .find(|c| c["name"] == "usersync_session")
            .expect("a session cookie");
        format!("usersync_session={}", c["value"].as_str().unwrap())
    };
    let csrf_of = |html: String| {
        html.split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap()
            .to_owned()
    };
    let viewer_session = session_of(b.cookies().await);
    let viewer_csrf = csrf_of(b.source().await);
    assert_eq!(
        post(viewer_session, format!("csrf={viewer_csrf}")).await,
        403
    );
    assert!(app.confluence().user("lee@example.com").is_none());

    // An admin's POST without the CSRF token, or with another session's: refused too.
    let b2 = Browser::start(1280, 900).await;
    sign_in(&b2, &app, &admin).await;
    b2.goto(&user_page).await;
    let admin_session = session_of(b2.cookies().await);
    assert_eq!(post(admin_session.clone(), String::new()).await, 403);
    assert_eq!(
        post(admin_session.clone(), format!("csrf={viewer_csrf}")).await,
        403
    );
    assert!(app.confluence().user("lee@example.com").is_none());
    // With its own token the same request goes through: the refusals above were the CSRF
    // check's, not something else.
    let admin_csrf = csrf_of(b2.source().await);
    assert_eq!(post(admin_session, format!("csrf={admin_csrf}")).await, 200);
    assert!(app.confluence().user("lee@example.com").is_some());
    let refused = app
        .admin(Method::GET, "/audit?actor=ops-viewer", Some(&admin))
        .await;
    assert!(
        refused.text.contains("refused: viewer role"),
        "{}",
        refused.text
    );
}

#[tokio::test]
async fn sign_out_ends_the_session_on_the_server() {
    let app = TestApp::spawn().await;
    let token = app.admin_token("ops-admin", AdminRole::Admin).await;
    let b = Browser::start(1280, 900).await;
    // A wrong token is refused with a message.
    b.goto(&format!("{}/login", app.admin_address)).await;
    b.type_into("#token", "usa_wrong").await;
    b.click_on("form.signin button[type=submit]").await;
    assert!(page_has(&b, "not a live admin token").await);
    b.screenshot("sign-in").await;
    sign_in(&b, &app, &token).await;
    // The pages forbid framing and any script or resource from elsewhere.
    let page = app
        .client
        .get(format!("{}/login", app.admin_address))
        .send()
        .await
        .unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"));
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    let session = b
        .cookies()
        .await
        .into_iter()
        .find(|c| c["name"] == "usersync_session")
        .expect("a session cookie");
    assert_eq!(session["httpOnly"], true);
    assert_eq!(session["sameSite"], "Strict");
    b.click_on("form[action='/logout'] button").await;
    assert!(page_has(&b, "form class=\"signin\"").await);
    // The old cookie, put back, opens nothing: the session is gone on the server.
    b.add_cookie(json!({"name": "usersync_session", "value": session["value"], "path": "/"}))
        .await;
    b.goto(&format!("{}/", app.admin_address)).await;
    assert!(page_has(&b, "form class=\"signin\"").await);
    assert!(b.url().await.ends_with("/login"));
}

#[tokio::test]
async fn an_idle_session_expires_and_a_revoked_token_ends_its_sessions() {
    let app = TestApp::spawn_with(|s| {
        s.admin.session_idle = usersync::config::Dur(std::time::Duration::from_secs(1));
    })
    .await;
    let token = app.admin_token("ops-admin", AdminRole::Admin).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = client
        .get(format!("{}/login", app.admin_address))
        .send()
        .await
        .unwrap();
    let login_cookie = login
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let html = login.text().await.unwrap();
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_owned();
    let signed = client
        .post(format!("{}/login", app.admin_address))
        .header("Cookie", &login_cookie)
        .form(&[("token", token.as_str()), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status().as_u16(), 303);
    let session = signed
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .find(|c| c.starts_with("usersync_session="))
        .unwrap();
    let get = |cookie: String| {
        let client = client.clone();
        let url = format!("{}/", app.admin_address);
        async move {
            client
                .get(url)
                .header("Cookie", cookie)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(get(session.clone()).await, 200);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(
        get(session).await,
        303,
        "idle past session_idle: back to sign-in"
    );
    // Revoking the token ends its sessions at once.
    let login = client
        .get(format!("{}/login", app.admin_address))
        .send()
        .await
        .unwrap();
    let login_cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let csrf2 = login
        .text()
        .await
        .unwrap()
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_owned();
    let signed = client
        .post(format!("{}/login", app.admin_address))
        .header("Cookie", &login_cookie)
        .form(&[("token", token.as_str()), ("csrf", csrf2.as_str())])
        .send()
        .await
        .unwrap();
    let session = signed
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .find(|c| c.starts_with("usersync_session="))
        .unwrap();
    assert_eq!(get(session.clone()).await, 200);
    let audit = usersync::store::audit::AdminAction {
        connector: String::new(),
        token: "(test)".into(),
        action: "admin_token.revoke".into(),
        target_kind: None,
        target: Some("ops-admin".into()),
        outcome: "ok".into(),
    };
    app.store
        .revoke_admin_token("ops-admin", time::OffsetDateTime::now_utc(), &audit)
        .await
        .unwrap();
    assert_eq!(get(session).await, 303, "a revoked token's session is over");
    // A sign-in without the form's cookie is refused.
    let forged = client
        .post(format!("{}/login", app.admin_address))
        .form(&[("token", token.as_str()), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 403);
}
