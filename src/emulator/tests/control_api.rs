//! The control API and the call log.

use axum::http::StatusCode;
use base64::Engine;
use serde_json::json;

use super::{Req, TestApp, ADMIN_PAT, ALICE_PASSWORD, ALICE_PAT};
use crate::emulator::{AuthScheme, ConfluenceVersion};

#[tokio::test]
async fn the_call_log_records_calls_without_credentials() {
    let app = TestApp::new();
    app.call(Req::get("/rest/api/user?username=alice&os_password=hunter2").admin())
        .await;
    app.call(Req::get("/rest/api/user/current").basic("alice", ALICE_PASSWORD))
        .await;
    app.call(
        Req::post("/rest/api/admin/user/alice/password")
            .admin()
            .json(json!({"password": "Very-Secret-99"})),
    )
    .await;
    app.call(Req::get("/rest/api/group").bearer("bogus-token-77"))
        .await;
    app.call(Req::get("/__emulator/state")).await;

    let calls = app.emu.calls();
    assert_eq!(calls.len(), 4, "control calls are not logged");
    let first = &calls[0];
    assert_eq!(first.method, "GET");
    assert_eq!(first.path, "/rest/api/user");
    assert_eq!(
        first.query.as_deref(),
        Some("username=alice&os_password=[redacted]")
    );
    assert_eq!(first.user.as_deref(), Some("admin"));
    assert_eq!(first.auth, AuthScheme::Bearer);
    assert_eq!(first.status, Some(200));
    assert!(calls.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(calls[1].auth, AuthScheme::Basic);
    assert_eq!(calls[2].status, Some(204));
    assert_eq!(calls[3].user, None);

    let dump = app.call(Req::get("/__emulator/calls")).await.text();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("alice:{ALICE_PASSWORD}"));
    for secret in [
        ADMIN_PAT,
        ALICE_PAT,
        ALICE_PASSWORD,
        basic.as_str(),
        "hunter2",
        "Very-Secret-99",
        "bogus-token-77",
        "Bearer",
        "Basic ",
    ] {
        assert!(!dump.contains(secret), "the call log leaks {secret:?}");
    }
    let state = app.call(Req::get("/__emulator/state")).await.text();
    for secret in [ADMIN_PAT, ALICE_PAT, ALICE_PASSWORD, "Very-Secret-99"] {
        assert!(!state.contains(secret), "the state leaks {secret:?}");
    }
}

#[tokio::test]
async fn clearing_the_call_log_empties_it() {
    let app = TestApp::new();
    app.call(Req::get("/rest/api/user/current")).await;
    let resp = app
        .call(Req::raw(axum::http::Method::DELETE, "/__emulator/calls"))
        .await;
    assert_eq!(resp.status, StatusCode::NO_CONTENT);
    assert!(app.emu.calls().is_empty());
    app.call(Req::get("/rest/api/user/current")).await;
    assert_eq!(app.emu.calls().len(), 1);
    app.emu.clear_calls();
    assert!(app.emu.calls().is_empty());
}

#[tokio::test]
async fn knobs_are_read_and_merged_through_the_control_api() {
    let app = TestApp::new();
    let knobs = app.call(Req::get("/__emulator/knobs")).await.json();
    assert_eq!(knobs["version"], "10.2");
    assert_eq!(knobs["invalid_bearer"], "anonymous");
    let resp = app
        .call(
            Req::raw(axum::http::Method::PUT, "/__emulator/knobs").json(json!({
                "version": "8.4",
                "rate_limit": {"mode": "limit"},
                "lup": {"user_tag": "person"}
            })),
        )
        .await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    let knobs = app.emu.knobs();
    assert_eq!(knobs.version, ConfluenceVersion::V8_4);
    assert_eq!(
        knobs.rate_limit.capacity, 20,
        "untouched keys keep their value"
    );
    assert_eq!(knobs.lup.user_tag, "person");
    assert_eq!(knobs.lup.username_tag, "username");
    let bad = app
        .call(
            Req::raw(axum::http::Method::PUT, "/__emulator/knobs").json(json!({"version": "7.0"})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn reset_restores_the_seed_and_knobs_or_loads_a_new_seed() {
    let app = TestApp::new();
    super::create_user(&app, "jdoe").await;
    let mut knobs = app.emu.knobs();
    knobs.websudo = true;
    app.emu.set_knobs(knobs);
    let resp = app
        .call(Req::raw(axum::http::Method::POST, "/__emulator/reset"))
        .await;
    assert_eq!(resp.status, StatusCode::NO_CONTENT);
    assert!(app.emu.user("jdoe").is_none());
    assert!(app.emu.user("alice").is_some());
    assert!(!app.emu.knobs().websudo);
    assert!(app.emu.calls().is_empty());

    let resp = app
        .call(
            Req::raw(axum::http::Method::POST, "/__emulator/reset").json(json!({
                "users": [{"username": "zed", "pat": "zed-pat", "groups": ["team-z"]}],
                "groups": ["extra"],
                "licence_seats": 7
            })),
        )
        .await;
    assert_eq!(resp.status, StatusCode::NO_CONTENT);
    assert!(app.emu.user("alice").is_none());
    assert_eq!(
        app.emu.group_members("team-z"),
        Some(vec!["zed".to_owned()])
    );
    assert_eq!(app.emu.group_members("extra"), Some(vec![]));
    assert_eq!(app.emu.knobs().licence_seats, Some(7));
    let me = app
        .call(Req::get("/rest/api/user/current").bearer("zed-pat"))
        .await;
    assert_eq!(me.json()["username"], "zed");

    let bad = app
        .call(
            Req::raw(axum::http::Method::POST, "/__emulator/reset")
                .json(json!({"users": [{"username": "admin"}]})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(app.emu.user("zed").is_some(), "a bad seed changes nothing");
}

#[tokio::test]
async fn users_can_be_seeded_through_the_control_api() {
    let app = TestApp::new();
    let resp = app
        .call(
            Req::raw(axum::http::Method::POST, "/__emulator/users").json(json!({
                "username": "Dave", "fullName": "Dave D", "pat": "dave-pat",
                "sysadmin": true, "active": false
            })),
        )
        .await;
    assert_eq!(resp.status, StatusCode::CREATED, "{}", resp.text());
    let user = resp.json();
    assert_eq!(user["username"], "dave");
    assert_eq!(user["active"], false);
    assert_eq!(user["sysadmin"], true);
    let again = app
        .call(
            Req::raw(axum::http::Method::POST, "/__emulator/users")
                .json(json!({"username": "dave"})),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn the_state_shows_users_groups_licence_and_long_tasks() {
    let app = TestApp::new();
    super::create_user(&app, "jdoe").await;
    app.call(Req::delete("/rest/api/admin/user/jdoe").admin())
        .await;
    let state = app.call(Req::get("/__emulator/state")).await.json();
    let users = state["users"].as_array().expect("users");
    let alice = users
        .iter()
        .find(|u| u["username"] == "alice")
        .expect("alice");
    assert_eq!(alice["active"], true);
    assert_eq!(alice["groups"], json!(["confluence-users"]));
    assert_eq!(alice["userKey"].as_str().map(str::len), Some(32));
    assert_eq!(state["licence"]["used"], 3);
    assert_eq!(state["longTasks"][0]["username"], "jdoe");
    assert_eq!(state["lup"]["fields"].as_array().map(Vec::len), Some(6));
    assert!(state["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .any(|g| g["name"] == "confluence-users" && g["members"] == json!(["alice", "carol"])));
}

#[tokio::test]
async fn faults_are_armed_and_cleared_through_the_control_api() {
    let app = TestApp::new();
    let resp = app
        .call(
            Req::raw(axum::http::Method::POST, "/__emulator/faults").json(json!([
                {"kind": "status", "status": 500, "path": "/rest/api/group"},
                {"kind": "status", "status": 503, "times": 5, "method": "PUT"}
            ])),
        )
        .await;
    assert_eq!(resp.status, StatusCode::NO_CONTENT, "{}", resp.text());
    let armed = app.call(Req::get("/__emulator/faults")).await.json();
    assert_eq!(armed["armed"].as_array().map(Vec::len), Some(2));
    let failed = app.call(Req::get("/rest/api/group").admin()).await;
    assert_eq!(failed.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(failed.json()["statusCode"], 500);
    let resp = app
        .call(Req::raw(axum::http::Method::DELETE, "/__emulator/faults"))
        .await;
    assert_eq!(resp.status, StatusCode::NO_CONTENT);
    let ok = app
        .call(Req::put("/rest/api/admin/user/alice/disable").admin())
        .await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT);
    let bad = app
        .call(
            Req::raw(axum::http::Method::POST, "/__emulator/faults")
                .json(json!({"kind": "meteor"})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn drift_controls_change_accounts_and_memberships_behind_the_api_without_a_call_log_entry() {
    let app = TestApp::new();
    let edited = app
        .call(
            Req::raw(axum::http::Method::PATCH, "/__emulator/users/Alice")
                .json(json!({"fullName": "Alice Renamed", "active": false})),
        )
        .await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.text());
    assert_eq!(edited.json()["fullName"], "Alice Renamed");
    let alice = app.emu.user("alice").expect("alice");
    assert!(!alice.active);
    assert_eq!(alice.email, "alice@example.org", "fields not given stay");

    let added = app
        .call(Req::put("/__emulator/groups/Hand%20Made/members/alice"))
        .await;
    assert_eq!(added.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.emu.group_members("hand made"),
        Some(vec!["alice".to_owned()]),
        "the group is created when missing"
    );
    let removed = app
        .call(Req::delete(
            "/__emulator/groups/confluence-users/members/alice",
        ))
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    assert!(!app
        .emu
        .group_members("confluence-users")
        .unwrap()
        .contains(&"alice".to_owned()));

    let gone = app.call(Req::delete("/__emulator/users/carol")).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    assert!(app.emu.user("carol").is_none());
    for (req, what) in [
        (Req::delete("/__emulator/users/carol"), "delete"),
        (
            Req::raw(axum::http::Method::PATCH, "/__emulator/users/nobody")
                .json(json!({"active": true})),
            "patch",
        ),
        (Req::put("/__emulator/groups/x/members/nobody"), "add"),
    ] {
        assert_eq!(app.call(req).await.status, StatusCode::NOT_FOUND, "{what}");
    }
    assert!(app.emu.calls().is_empty(), "drift is not a Confluence call");
}

#[tokio::test]
async fn a_fault_can_fail_one_page_of_the_user_list() {
    let app = TestApp::new();
    for i in 0..7 {
        app.emu
            .add_user(&serde_json::from_value(json!({"username": format!("u{i}")})).unwrap())
            .unwrap();
    }
    let armed = app
        .call(Req::post("/__emulator/faults").json(json!({
            "kind": "status", "status": 500, "times": 5,
            "method": "GET", "path": "/rest/api/user/list", "page": 3
        })))
        .await;
    assert_eq!(armed.status, StatusCode::NO_CONTENT);
    let page =
        |start: usize| Req::get(&format!("/rest/api/user/list?start={start}&limit=3")).admin();
    assert_eq!(app.call(page(0)).await.status, StatusCode::OK);
    assert_eq!(app.call(page(3)).await.status, StatusCode::OK);
    assert_eq!(
        app.call(page(6)).await.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "the third page fails"
    );
    assert_eq!(app.call(page(9)).await.status, StatusCode::OK);
}
