//! #21: the legacy JSON-RPC fallback (docs/reference/confluence-api.md §1.4), envelope and light
//! styles.

use axum::http::StatusCode;
use serde_json::json;

use super::{base_config, Req, TestApp, ADMIN_PASSWORD, ALICE_PASSWORD};
use crate::emulator::ConfluenceVersion;

const ENVELOPE: &str = "/rpc/json-rpc/confluenceservice-v2";

fn app_on_8_2() -> TestApp {
    let mut config = base_config();
    config.version = ConfluenceVersion::V8_2;
    TestApp::with_config(config)
}

fn rpc(method: &str, params: serde_json::Value) -> Req {
    Req::post(ENVELOPE)
        .basic("admin", ADMIN_PASSWORD)
        .json(json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 7}))
}

#[tokio::test]
async fn on_8_2_a_client_falls_back_to_json_rpc_to_create_and_edit_users() {
    let app = app_on_8_2();
    let rest = app
        .call(Req::post("/rest/api/admin/user").admin().json(json!({
            "userName": "jdoe", "fullName": "Jane", "email": "j@example.org", "password": "x"
        })))
        .await;
    assert_eq!(rest.status, StatusCode::NOT_FOUND);

    let created = app
        .call(rpc(
            "addUser",
            json!([{"name": "jdoe", "fullname": "Jane Doe", "email": "j@example.org"}, "Secret-1"]),
        ))
        .await;
    assert_eq!(created.status, StatusCode::OK);
    assert_eq!(
        created.json(),
        json!({"jsonrpc": "2.0", "result": true, "id": 7})
    );

    let edited = app
        .call(
            Req::post(&format!("{ENVELOPE}/editUser"))
                .basic("admin", ADMIN_PASSWORD)
                .json(
                    json!([{"name": "jdoe", "fullname": "Jane Q. Doe", "email": "jq@example.org"}]),
                ),
        )
        .await;
    assert_eq!(edited.json(), json!(true));
    let user = app.emu.user("jdoe").expect("created");
    assert_eq!(
        (user.full_name.as_str(), user.email.as_str()),
        ("Jane Q. Doe", "jq@example.org")
    );
    assert!(user.groups.is_empty());
}

#[tokio::test]
async fn json_rpc_covers_deactivation_groups_memberships_and_removal() {
    let app = app_on_8_2();
    for (method, params) in [
        ("deactivateUser", json!(["alice"])),
        ("reactivateUser", json!(["alice"])),
        ("deactivateUser", json!(["alice"])),
        ("addGroup", json!(["engineering"])),
        ("addUserToGroup", json!(["alice", "engineering"])),
        ("removeUserFromGroup", json!(["alice", "confluence-users"])),
        ("changeUserPassword", json!(["alice", "New-Secret-2"])),
    ] {
        let resp = app.call(rpc(method, params)).await;
        assert_eq!(resp.json()["result"], true, "{method}: {}", resp.text());
    }
    let alice = app.emu.user("alice").expect("alice");
    assert!(!alice.active);
    assert_eq!(alice.groups, vec!["engineering".to_owned()]);

    let moved = app
        .call(rpc(
            "removeGroup",
            json!(["engineering", "confluence-users"]),
        ))
        .await;
    assert_eq!(moved.json()["result"], true);
    assert_eq!(app.emu.group_members("engineering"), None);
    assert!(app
        .emu
        .user("alice")
        .is_some_and(|a| a.groups == vec!["confluence-users".to_owned()]));

    let removed = app.call(rpc("removeUser", json!(["alice"]))).await;
    assert_eq!(removed.json()["result"], true);
    assert!(app.emu.user("alice").is_none(), "removeUser is synchronous");
}

#[tokio::test]
async fn json_rpc_failures_are_error_objects() {
    let app = app_on_8_2();
    let unknown = app.call(rpc("deactivateUser", json!(["ghost"]))).await;
    assert_eq!(unknown.status, StatusCode::OK);
    assert_eq!(unknown.json()["error"]["code"], 404);
    assert_eq!(unknown.json()["id"], 7);
    let no_method = app.call(rpc("launchRockets", json!([]))).await;
    assert_eq!(no_method.json()["error"]["code"], -32601);
    let bad_params = app.call(rpc("addUserToGroup", json!(["alice"]))).await;
    assert_eq!(bad_params.json()["error"]["code"], -32602);
    let not_admin = app
        .call(
            Req::post(&format!("{ENVELOPE}/deactivateUser"))
                .basic("alice", ALICE_PASSWORD)
                .json(json!(["carol"])),
        )
        .await;
    assert_eq!(not_admin.json()["error"]["code"], 403);
}

#[tokio::test]
async fn json_rpc_refuses_pats_anonymous_callers_and_a_disabled_remote_api() {
    let app = app_on_8_2();
    let pat = app
        .call(
            Req::post(&format!("{ENVELOPE}/deactivateUser"))
                .admin()
                .json(json!(["alice"])),
        )
        .await;
    assert_eq!(pat.status, StatusCode::UNAUTHORIZED);
    let anonymous = app
        .call(Req::post(&format!("{ENVELOPE}/deactivateUser")).json(json!(["alice"])))
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let mut knobs = app.emu.knobs();
    knobs.remote_api_enabled = false;
    app.emu.set_knobs(knobs);
    let disabled = app.call(rpc("deactivateUser", json!(["alice"]))).await;
    assert_eq!(disabled.status, StatusCode::FORBIDDEN);
    assert!(app.emu.user("alice").is_some_and(|a| a.active));
}
