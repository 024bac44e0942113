//! docs/emulator.md test scenario 3 (conflicts and validation) and the other rules of the state
//! model.

use axum::http::StatusCode;
use serde_json::json;

use super::{base_config, create_user, Req, TestApp};
use crate::emulator::{Directory, SeedUser};

fn new_user(username: &str) -> serde_json::Value {
    json!({
        "userName": username,
        "fullName": "Jane Doe",
        "email": "jane@example.org",
        "password": "Initial-Secret-42",
    })
}

#[tokio::test]
async fn creating_an_existing_username_conflicts() {
    let app = TestApp::new();
    let resp = app
        .call(
            Req::post("/rest/api/admin/user")
                .admin()
                .json(new_user("alice")),
        )
        .await;
    assert_eq!(resp.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn usernames_with_upper_case_whitespace_or_forbidden_characters_are_refused() {
    let app = TestApp::new();
    for bad in ["JDoe", "j doe", "j+doe", "anonymous", ""] {
        let resp = app
            .call(
                Req::post("/rest/api/admin/user")
                    .admin()
                    .json(new_user(bad)),
            )
            .await;
        assert_eq!(resp.status, StatusCode::BAD_REQUEST, "{bad:?}");
        let body = resp.json();
        assert_eq!(body["statusCode"], 400);
        assert_eq!(body["data"]["valid"], false);
        assert!(body["data"]["errors"][0]["message"]["translation"].is_string());
    }
    assert!(app.emu.user("jdoe").is_none());
}

#[tokio::test]
async fn a_create_needs_either_a_password_or_a_notification() {
    let app = TestApp::new();
    let mut both = new_user("jdoe");
    both["notifyViaEmail"] = json!(true);
    let resp = app
        .call(Req::post("/rest/api/admin/user").admin().json(both))
        .await;
    assert_eq!(resp.status, StatusCode::BAD_REQUEST);
    let notify_only =
        json!({"userName": "jdoe", "fullName": "J", "email": "j@x.org", "notifyViaEmail": true});
    let resp = app
        .call(Req::post("/rest/api/admin/user").admin().json(notify_only))
        .await;
    assert_eq!(resp.status, StatusCode::CREATED);
    let bad_email =
        json!({"userName": "k", "fullName": "K", "email": "not-an-address", "password": "x"});
    let resp = app
        .call(Req::post("/rest/api/admin/user").admin().json(bad_email))
        .await;
    assert_eq!(resp.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn creating_a_user_without_a_free_seat_answers_402() {
    let mut config = base_config();
    if let Some(seed) = config.seed.as_mut() {
        seed.licence_seats = Some(3);
    }
    let app = TestApp::with_config(config);
    let resp = app
        .call(
            Req::post("/rest/api/admin/user")
                .admin()
                .json(new_user("jdoe")),
        )
        .await;
    assert_eq!(resp.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(resp.json()["statusCode"], 402);

    // Disabling a licensed user frees a seat.
    app.call(Req::put("/rest/api/admin/user/alice/disable").admin())
        .await;
    let resp = app
        .call(
            Req::post("/rest/api/admin/user")
                .admin()
                .json(new_user("jdoe")),
        )
        .await;
    assert_eq!(resp.status, StatusCode::CREATED);
}

#[tokio::test]
async fn group_names_are_unique_case_insensitively() {
    let app = TestApp::new();
    let resp = app
        .call(
            Req::post("/rest/api/admin/group")
                .admin()
                .json(json!({"name": "Confluence-Users"})),
        )
        .await;
    assert_eq!(resp.status, StatusCode::CONFLICT);
    let missing = app
        .call(
            Req::post("/rest/api/admin/group")
                .admin()
                .json(json!({"type": "group"})),
        )
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_last_admin_group_cannot_be_deleted_and_unknown_groups_are_404() {
    let app = TestApp::new();
    let resp = app
        .call(Req::delete("/rest/api/admin/group/confluence-administrators").admin())
        .await;
    assert_eq!(resp.status, StatusCode::BAD_REQUEST);
    let resp = app
        .call(Req::delete("/rest/api/admin/group/ghosts").admin())
        .await;
    assert_eq!(resp.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn writes_to_users_of_a_read_only_directory_are_refused() {
    let app = TestApp::new();
    let ldap: SeedUser = serde_json::from_value(json!({
        "username": "ldapuser", "directory": "ldap-readonly", "groups": ["confluence-users"]
    }))
    .expect("parses");
    app.emu.add_user(&ldap).expect("seeded");
    assert_eq!(
        app.emu.user("ldapuser").map(|u| u.directory),
        Some(Directory::LdapReadonly)
    );
    for req in [
        Req::put("/rest/api/admin/user/ldapuser/disable").admin(),
        Req::put("/rest/api/admin/user/ldapuser")
            .admin()
            .json(json!({"fullName": "New"})),
        Req::delete("/rest/api/admin/user/ldapuser").admin(),
    ] {
        let resp = app.call(req).await;
        assert_eq!(resp.status, StatusCode::BAD_REQUEST, "{}", resp.text());
    }
    // Group membership is Confluence's own business, even for LDAP users.
    let resp = app
        .call(Req::put("/rest/api/user/ldapuser/group/confluence-administrators").admin())
        .await;
    assert_eq!(resp.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn unknown_users_and_groups_answer_404() {
    let app = TestApp::new();
    for req in [
        Req::put("/rest/api/user/ghost/group/confluence-users").admin(),
        Req::put("/rest/api/user/alice/group/ghosts").admin(),
        Req::delete("/rest/api/user/ghost/group/confluence-users").admin(),
        Req::put("/rest/api/admin/user/ghost/disable").admin(),
        Req::put("/rest/api/admin/user/ghost/enable").admin(),
        Req::put("/rest/api/admin/user/ghost")
            .admin()
            .json(json!({"fullName": "G"})),
        Req::delete("/rest/api/admin/user/ghost").admin(),
        Req::get("/rest/api/user?username=ghost").admin(),
        Req::get("/rest/api/user/memberof?username=ghost").admin(),
        Req::get("/rest/mobile/1.0/profile/ghost").admin(),
        Req::get("/rest/api/longtask/42").admin(),
    ] {
        let resp = app.call(req).await;
        assert_eq!(resp.status, StatusCode::NOT_FOUND, "{}", resp.text());
    }
}

#[tokio::test]
async fn errors_use_the_confluence_json_envelope() {
    let app = TestApp::new();
    let resp = app
        .call(Req::get("/rest/api/user?username=ghost.user").admin())
        .await;
    assert_eq!(resp.header("content-type"), Some("application/json"));
    assert_eq!(
        resp.json(),
        json!({
            "statusCode": 404,
            "data": {"authorized": false, "valid": true, "allowedInReadOnlyMode": true,
                     "errors": [], "successful": false},
            "message": "No user found with username: ghost.user",
            "reason": "Not Found",
        })
    );
}

#[tokio::test]
async fn a_user_lookup_needs_exactly_one_of_username_or_key() {
    let app = TestApp::new();
    for path in ["/rest/api/user", "/rest/api/user?username=alice&key=abc"] {
        let resp = app.call(Req::get(path).admin()).await;
        assert_eq!(resp.status, StatusCode::BAD_REQUEST, "{path}");
    }
}

#[tokio::test]
async fn an_update_with_a_bad_name_or_e_mail_is_refused() {
    let app = TestApp::new();
    create_user(&app, "jdoe").await;
    for body in [
        json!({"fullName": "<script>"}),
        json!({"fullName": "anonymous"}),
        json!({"email": "nope"}),
    ] {
        let resp = app
            .call(Req::put("/rest/api/admin/user/jdoe").admin().json(body))
            .await;
        assert_eq!(resp.status, StatusCode::BAD_REQUEST);
    }
    assert!(app
        .emu
        .user("jdoe")
        .is_some_and(|u| u.full_name == "Test User"));
}
