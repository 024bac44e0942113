//! docs/emulator.md test scenarios 4 (permissions, anonymous fallback) and 7 (XSRF), plus Basic
//! auth and websudo.

use axum::http::StatusCode;
use serde_json::json;

use super::{Req, TestApp, ADMIN_PASSWORD, ALICE_PASSWORD, ALICE_PAT, CAROL_PAT};
use crate::emulator::InvalidCredentials;

fn create_body() -> serde_json::Value {
    json!({"userName": "jdoe", "fullName": "Jane Doe", "email": "j@example.org", "password": "x"})
}

#[tokio::test]
async fn a_licensed_non_admin_gets_403_on_admin_endpoints() {
    let app = TestApp::new();
    for req in [
        Req::post("/rest/api/admin/user")
            .bearer(ALICE_PAT)
            .json(create_body()),
        Req::put("/rest/api/admin/user/carol/disable").bearer(ALICE_PAT),
        Req::put("/rest/api/user/alice/group/confluence-administrators").bearer(ALICE_PAT),
        Req::get("/rest/api/admin/users/list/active").bearer(ALICE_PAT),
    ] {
        let resp = app.call(req).await;
        assert_eq!(resp.status, StatusCode::FORBIDDEN, "{}", resp.text());
        assert_eq!(resp.header("x-ausername"), Some("alice"));
    }
    assert!(app.emu.user("jdoe").is_none());
    assert!(app.emu.user("carol").is_some_and(|u| u.active));
}

#[tokio::test]
async fn an_admin_who_is_not_a_system_administrator_cannot_do_sysadmin_operations() {
    let app = TestApp::new();
    let ok = app
        .call(Req::put("/rest/api/admin/user/alice/disable").bearer(CAROL_PAT))
        .await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT);
    for req in [
        Req::delete("/rest/api/admin/user/alice").bearer(CAROL_PAT),
        Req::post("/rest/api/admin/group")
            .bearer(CAROL_PAT)
            .json(json!({"name": "x"})),
        Req::delete("/rest/api/admin/group/confluence-users").bearer(CAROL_PAT),
        Req::post("/rest/api/admin/user/alice/password")
            .bearer(CAROL_PAT)
            .json(json!({"password": "p"})),
    ] {
        let resp = app.call(req).await;
        assert_eq!(resp.status, StatusCode::FORBIDDEN, "{}", resp.text());
    }
}

#[tokio::test]
async fn a_bad_pat_is_served_as_anonymous_by_default() {
    let app = TestApp::new();
    let me = app
        .call(Req::get("/rest/api/user/current").bearer("not-a-token"))
        .await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.header("x-ausername"), Some("anonymous"));
    assert_eq!(
        me.header("x-seraph-loginreason"),
        Some("AUTHENTICATED_FAILED")
    );
    assert_eq!(me.json()["type"], "anonymous");
    assert_eq!(me.json()["displayName"], "Anonymous");

    let write = app
        .call(
            Req::post("/rest/api/admin/user")
                .bearer("not-a-token")
                .json(create_body()),
        )
        .await;
    assert_eq!(write.status, StatusCode::UNAUTHORIZED);
    assert_eq!(write.header("x-ausername"), Some("anonymous"));
    let list = app
        .call(Req::get("/rest/api/user/list").bearer("not-a-token"))
        .await;
    assert_eq!(list.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_bad_pat_gets_401_when_the_knob_says_so() {
    let app = TestApp::new();
    let mut knobs = app.emu.knobs();
    knobs.invalid_bearer = InvalidCredentials::Unauthorized;
    app.emu.set_knobs(knobs);
    let me = app
        .call(Req::get("/rest/api/user/current").bearer("not-a-token"))
        .await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        me.header("x-seraph-loginreason"),
        Some("AUTHENTICATED_FAILED")
    );
}

#[tokio::test]
async fn valid_credentials_report_ok_and_the_username() {
    let app = TestApp::new();
    let me = app.call(Req::get("/rest/api/user/current").admin()).await;
    assert_eq!(me.header("x-ausername"), Some("admin"));
    assert_eq!(me.header("x-seraph-loginreason"), Some("OK"));
    assert_eq!(me.json()["type"], "known");
    let basic = app
        .call(Req::get("/rest/api/user/current").basic("alice", ALICE_PASSWORD))
        .await;
    assert_eq!(basic.json()["username"], "alice");
    let anonymous = app.call(Req::get("/rest/api/user/current")).await;
    assert_eq!(anonymous.header("x-ausername"), Some("anonymous"));
    assert_eq!(anonymous.header("x-seraph-loginreason"), None);
}

#[tokio::test]
async fn a_wrong_basic_password_answers_401() {
    let app = TestApp::new();
    let resp = app
        .call(Req::get("/rest/api/user/current").basic("alice", "wrong"))
        .await;
    assert_eq!(resp.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        resp.header("x-seraph-loginreason"),
        Some("AUTHENTICATED_FAILED")
    );
}

#[tokio::test]
async fn a_disabled_user_cannot_authenticate() {
    let app = TestApp::new();
    app.call(Req::put("/rest/api/admin/user/alice/disable").admin())
        .await;
    let me = app
        .call(Req::get("/rest/api/user/current").bearer(ALICE_PAT))
        .await;
    assert_eq!(me.header("x-ausername"), Some("anonymous"));
}

#[tokio::test]
async fn anonymous_reads_need_anonymous_access() {
    let app = TestApp::new();
    let denied = app.call(Req::get("/rest/api/user?username=alice")).await;
    assert_eq!(denied.status, StatusCode::UNAUTHORIZED);
    let mut knobs = app.emu.knobs();
    knobs.anonymous_access = true;
    app.emu.set_knobs(knobs);
    let allowed = app.call(Req::get("/rest/api/user?username=alice")).await;
    assert_eq!(allowed.status, StatusCode::OK);
    assert_eq!(allowed.header("x-ausername"), Some("anonymous"));
}

#[tokio::test]
async fn websudo_refuses_basic_auth_on_admin_endpoints_only() {
    let app = TestApp::new();
    let mut knobs = app.emu.knobs();
    knobs.websudo = true;
    app.emu.set_knobs(knobs);
    let basic = app
        .call(Req::put("/rest/api/admin/user/alice/disable").basic("admin", ADMIN_PASSWORD))
        .await;
    assert_eq!(basic.status, StatusCode::UNAUTHORIZED);
    let pat = app
        .call(Req::put("/rest/api/admin/user/alice/disable").admin())
        .await;
    assert_eq!(pat.status, StatusCode::NO_CONTENT);
    let read = app
        .call(Req::get("/rest/api/user/current").basic("admin", ADMIN_PASSWORD))
        .await;
    assert_eq!(read.status, StatusCode::OK);
}

#[tokio::test]
async fn a_form_encoded_post_without_the_no_check_header_fails_the_xsrf_check() {
    let app = TestApp::new();
    for content_type in [
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "text/plain",
    ] {
        let resp = app
            .call(
                Req::raw(axum::http::Method::POST, "/rest/api/admin/group")
                    .admin()
                    .text_body(content_type, "name=x"),
            )
            .await;
        assert_eq!(resp.status, StatusCode::FORBIDDEN, "{content_type}");
        assert_eq!(resp.text(), "XSRF check failed");
        assert!(resp
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/plain")));
    }
    // With the header the XSRF check passes (and the JSON endpoint refuses the media type).
    let resp = app
        .call(
            Req::raw(axum::http::Method::POST, "/rest/api/admin/group")
                .admin()
                .header("x-atlassian-token", "no-check")
                .text_body("application/x-www-form-urlencoded", "name=x"),
        )
        .await;
    assert_eq!(resp.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // JSON without the header passes.
    let resp = app
        .call(
            Req::raw(axum::http::Method::POST, "/rest/api/admin/group")
                .admin()
                .json(json!({"name": "ok-group"})),
        )
        .await;
    assert_eq!(resp.status, StatusCode::CREATED);
    // The call log says which calls carried the header.
    let flags: Vec<bool> = app.emu.calls().iter().map(|c| c.xsrf_no_check).collect();
    assert_eq!(flags, [false, false, false, true, false]);
}
