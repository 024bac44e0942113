//! A connector can never read or change another connector's resources.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{Opts, TestApp, OTHER};
use crate::process::{cli, succeeds};

fn other(app: &TestApp) -> Opts {
    Opts {
        auth: Some(format!("Bearer {}", app.other_token)),
        ..Opts::default()
    }
}

fn other_url(app: &TestApp, path: &str) -> String {
    format!("{}/scim/v2/{OTHER}{path}", app.address)
}

#[tokio::test]
async fn a_token_of_one_connector_is_refused_on_another() {
    let app = TestApp::spawn().await;
    let r = app
        .send_url(
            Method::GET,
            &other_url(&app, "/Users"),
            None,
            Opts::default(),
        )
        .await;
    r.assert_scim_error(401, None);
    let r = app.send(Method::GET, "/Users", None, other(&app)).await;
    r.assert_scim_error(401, None);
    let r = app
        .send_url(
            Method::GET,
            &format!("{}/scim/v2/nonexistent/Users", app.address),
            None,
            Opts::default(),
        )
        .await;
    r.assert_scim_error(401, None);
}

#[tokio::test]
async fn connectors_see_only_their_own_resources() {
    let app = TestApp::spawn().await;
    let id = app.create_user(json!({"userName": "shared-name"})).await;
    let o = other(&app);
    // The other connector cannot read, list, change or delete it by id.
    let r = app
        .send_url(
            Method::GET,
            &other_url(&app, &format!("/Users/{id}")),
            None,
            o.clone(),
        )
        .await;
    r.assert_scim_error(404, None);
    let r = app
        .send_url(Method::GET, &other_url(&app, "/Users"), None, o.clone())
        .await;
    assert_eq!(r.body["totalResults"], 0);
    let patch = json!({"Operations": [{"op": "replace", "path": "title", "value": "hijacked"}]});
    let r = app
        .send_url(
            Method::PATCH,
            &other_url(&app, &format!("/Users/{id}")),
            Some(patch),
            o.clone(),
        )
        .await;
    r.assert_scim_error(404, None);
    let r = app
        .send_url(
            Method::DELETE,
            &other_url(&app, &format!("/Users/{id}")),
            None,
            o.clone(),
        )
        .await;
    r.assert_scim_error(404, None);
    // It may create its own user with the same name, and cannot add ours to its groups.
    let r = app
        .send_url(
            Method::POST,
            &other_url(&app, "/Users"),
            Some(json!({"userName": "shared-name"})),
            o.clone(),
        )
        .await;
    r.assert_status(201);
    let r = app
        .send_url(
            Method::POST,
            &other_url(&app, "/Groups"),
            Some(json!({"displayName": "G", "members": [{"value": id}]})),
            o,
        )
        .await;
    r.assert_status(201);
    assert!(r.body.get("members").is_none());
    assert!(app
        .get(&format!("/Users/{id}"))
        .await
        .body
        .get("title")
        .is_none());
}

#[tokio::test]
async fn a_connector_created_by_the_cli_works_without_restart() {
    let app = TestApp::spawn().await;
    let token = usersync::connectors::generate_token();
    let hash = usersync::connectors::hash_hex(&usersync::connectors::hash_token(&token));
    app.store
        .create_connector("late", &hash, time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    // Reloads after a failed lookup are rate-limited (200 ms); the server has just loaded.
    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    let opts = Opts {
        auth: Some(format!("Bearer {token}")),
        ..Opts::default()
    };
    let r = app
        .send_url(
            Method::GET,
            &format!("{}/scim/v2/late/Users", app.address),
            None,
            opts,
        )
        .await;
    r.assert_status(200);
}

#[tokio::test]
async fn a_rotated_token_works_and_the_old_one_expires_after_the_grace() {
    let app = TestApp::spawn().await;
    let now = time::OffsetDateTime::now_utc();
    let new = usersync::connectors::generate_token();
    let hash = usersync::connectors::hash_hex(&usersync::connectors::hash_token(&new));
    // Rotate with a grace period that is already over: the old token must stop working.
    app.store
        .rotate_connector_token("idp", &hash, now, now - time::Duration::seconds(1))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    let opts = Opts {
        auth: Some(format!("Bearer {new}")),
        ..Opts::default()
    };
    app.send(Method::GET, "/Users", None, opts)
        .await
        .assert_status(200);
    app.get("/Users").await.assert_scim_error(401, None);
}

/// Okta refuses a SCIM base URL containing `_`, and the connector name is the URL's last
/// segment: `usersync connector create` refuses such a name, says why and suggests one. A
/// stored connector whose name already has `_` keeps working, and `check-config` warns
/// about it with the same suggestion.
#[tokio::test]
async fn a_new_connector_name_with_an_underscore_is_refused_and_an_old_one_keeps_working() {
    use clap::Parser;
    let app = TestApp::spawn().await;
    let dir = std::env::temp_dir().join(format!("usersync-names-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("usersync.toml");
    std::fs::write(
        &config,
        format!("database = {:?}\n", app.state.settings.database),
    )
    .unwrap();
    let cli = usersync::cli::Cli::parse_from([
        "usersync",
        "--config",
        config.to_str().unwrap(),
        "connector",
        "create",
        "okta_prod",
    ]);
    let err = usersync::cli::run(cli).await.unwrap_err().to_string();
    assert!(
        err.contains("'_'") && err.contains("Okta") && err.contains("\"okta-prod\""),
        "{err}"
    );
    let names: Vec<String> = app
        .store
        .connectors()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert!(!names.contains(&"okta_prod".to_owned()), "{names:?}");

    // A connector stored before the rule: still served, and check-config says what to do.
    let token = usersync::connectors::generate_token();
    let hash = usersync::connectors::hash_hex(&usersync::connectors::hash_token(&token));
    app.store
        .create_connector("legacy_okta", &hash, time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    let r = app
        .send_url(
            Method::GET,
            &format!("{}/scim/v2/legacy_okta/Users", app.address),
            None,
            Opts {
                auth: Some(format!("Bearer {token}")),
                ..Opts::default()
            },
        )
        .await;
    r.assert_status(200);
    let lines = usersync::cli::mapping::check(app.state.runtime.table(), Some(&app.store), None)
        .await
        .unwrap();
    assert!(
        lines.iter().any(|l| l.starts_with("# warning:")
            && l.contains("\"legacy_okta\"")
            && l.contains("Okta")
            && l.contains("\"legacy-okta\"")),
        "{lines:#?}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn a_rotation_on_the_command_line_is_in_the_audit_trail() {
    let app = TestApp::spawn().await;
    succeeds(cli(&app.db_url).args(["connector", "rotate", "other"]));
    let rows = app
        .store
        .audit_query(&usersync::store::audit::AuditQuery {
            actor: Some("(command line)".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].operation, "connector.rotate_token");
    assert_eq!(rows[0].connector, "other");
}
