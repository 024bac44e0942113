//! docs/emulator.md test scenario 6 (version fallback) and the context path.

use axum::http::StatusCode;
use serde_json::json;

use super::{base_config, Req, TestApp};
use crate::emulator::ConfluenceVersion;

fn app_on(version: ConfluenceVersion) -> TestApp {
    let mut config = base_config();
    config.version = version;
    TestApp::with_config(config)
}

fn create_body() -> serde_json::Value {
    json!({"userName": "jdoe", "fullName": "Jane Doe", "email": "j@example.org", "password": "x"})
}

fn is_html_404(resp: &super::Resp) -> bool {
    resp.status == StatusCode::NOT_FOUND
        && resp
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/html"))
}

#[tokio::test]
async fn on_8_2_create_password_and_user_list_do_not_exist() {
    let app = app_on(ConfluenceVersion::V8_2);
    for req in [
        Req::post("/rest/api/admin/user")
            .admin()
            .json(create_body()),
        Req::post("/rest/api/admin/user/alice/password")
            .admin()
            .json(json!({"password": "p"})),
        Req::get("/rest/api/user/list").admin(),
        // The gate answers before the permission check, as for any unknown path.
        Req::post("/rest/api/admin/user").json(create_body()),
    ] {
        let resp = app.call(req).await;
        assert!(is_html_404(&resp), "{} {}", resp.status, resp.text());
    }
    let disable = app
        .call(Req::put("/rest/api/admin/user/alice/disable").admin())
        .await;
    assert_eq!(disable.status, StatusCode::NO_CONTENT);
    let membership = app
        .call(Req::put("/rest/api/user/alice/group/confluence-administrators").admin())
        .await;
    assert_eq!(membership.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn on_8_4_create_works_but_the_update_endpoint_does_not_exist() {
    let app = app_on(ConfluenceVersion::V8_4);
    let created = app
        .call(
            Req::post("/rest/api/admin/user")
                .admin()
                .json(create_body()),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let update = app
        .call(
            Req::put("/rest/api/admin/user/jdoe")
                .admin()
                .json(json!({"fullName": "X"})),
        )
        .await;
    assert!(is_html_404(&update));
    let active = app
        .call(Req::get("/rest/api/admin/users/list/active").admin())
        .await;
    assert!(is_html_404(&active));
    // Delete is 8.2+ and shares the path with the update.
    let delete = app
        .call(Req::delete("/rest/api/admin/user/jdoe").admin())
        .await;
    assert_eq!(delete.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn the_version_can_be_changed_at_run_time() {
    let app = TestApp::new();
    let mut knobs = app.emu.knobs();
    knobs.version = ConfluenceVersion::V8_2;
    app.emu.set_knobs(knobs);
    let resp = app
        .call(
            Req::post("/rest/api/admin/user")
                .admin()
                .json(create_body()),
        )
        .await;
    assert!(is_html_404(&resp));
}

#[tokio::test]
async fn the_api_is_served_under_the_context_path() {
    let mut config = base_config();
    config.context_path = "/confluence/".to_owned();
    let app = TestApp::with_config(config);
    let me = app
        .call(Req::get("/confluence/rest/api/user/current").admin())
        .await;
    assert_eq!(me.status, StatusCode::OK);
    let body = me.json();
    assert_eq!(body["_links"]["base"], "http://emulator.test/confluence");
    assert_eq!(body["_links"]["context"], "/confluence");
    let outside = app.call(Req::get("/rest/api/user/current").admin()).await;
    assert!(is_html_404(&outside));
    let created = app
        .call(
            Req::post("/confluence/rest/api/admin/user")
                .admin()
                .json(create_body()),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let fields = app
        .call(Req::get("/confluence/rest/cup/1.0/fields").admin())
        .await;
    assert_eq!(fields.status, StatusCode::OK);
    // The control API stays at the root.
    let state = app.call(Req::get("/__emulator/state")).await;
    assert_eq!(state.status, StatusCode::OK);
    assert_eq!(state.json()["contextPath"], "/confluence");
    let calls = app.emu.calls();
    assert!(calls
        .iter()
        .any(|c| c.path == "/confluence/rest/api/admin/user" && c.status == Some(201)));
}

#[tokio::test]
async fn unknown_paths_answer_an_html_404() {
    let app = TestApp::new();
    let resp = app.call(Req::get("/rest/api/space/ds").admin()).await;
    assert!(is_html_404(&resp));
    assert!(resp.text().contains("Page Not Found"));
}

#[tokio::test]
async fn the_applinks_manifest_reports_the_feature_level_to_anonymous_callers() {
    for (version, expected) in [
        (ConfluenceVersion::V8_2, "8.2.0"),
        (ConfluenceVersion::V8_4, "8.4.0"),
        (ConfluenceVersion::V9_4, "9.4.0"),
        (ConfluenceVersion::V10_2, "10.2.0"),
    ] {
        let app = app_on(version);
        let xml = app.call(Req::get("/rest/applinks/1.0/manifest")).await;
        assert_eq!(xml.status, StatusCode::OK);
        assert!(xml
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/xml")));
        let text = xml.text();
        assert!(
            text.contains(&format!("<version>{expected}</version>")),
            "{text}"
        );
        assert!(text.contains("<typeId>confluence</typeId>"), "{text}");
        let json = app
            .call(Req::get("/rest/applinks/1.0/manifest").header("accept", "application/json"))
            .await;
        assert_eq!(json.json()["version"], expected);
    }
}

#[tokio::test]
async fn the_manifest_version_knob_overrides_the_reported_version() {
    let app = app_on(ConfluenceVersion::V8_4);
    let mut knobs = app.emu.knobs();
    knobs.manifest_version = Some("8.5.16".to_owned());
    app.emu.set_knobs(knobs);
    let xml = app.call(Req::get("/rest/applinks/1.0/manifest")).await;
    assert!(xml.text().contains("<version>8.5.16</version>"));
}
