//! docs/emulator.md test scenarios 1 (full lifecycle) and 2 (idempotency), plus the derived
//! invariants.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;

use super::{base_config, create_user, Req, TestApp};
use crate::emulator::{ConfluenceVersion, StatusStyle};

fn app_on(version: ConfluenceVersion) -> TestApp {
    let mut config = base_config();
    config.version = version;
    TestApp::with_config(config)
}

#[tokio::test]
async fn a_user_goes_through_the_full_lifecycle_on_9_4() {
    let app = app_on(ConfluenceVersion::V9_4);

    // Create: 201 with a 32-hex key, active, in no group.
    let key = create_user(&app, "jdoe").await;
    assert_eq!(key.len(), 32);
    assert!(key.chars().all(|c| c.is_ascii_hexdigit()));
    let user = app.emu.user("jdoe").expect("created");
    assert!(user.active);
    assert!(user.groups.is_empty(), "create adds no group");
    assert!(!user.licensed);

    // Add to confluence-users.
    let resp = app
        .call(Req::put("/rest/api/user/jdoe/group/confluence-users").admin())
        .await;
    assert_eq!(resp.status, StatusCode::NO_CONTENT);
    assert!(app.emu.user("jdoe").is_some_and(|u| u.licensed));

    // Update name and e-mail (9.4+).
    let resp = app
        .call(Req::put("/rest/api/admin/user/jdoe").admin().json(json!({
            "fullName": "Jane Q. Doe", "email": "jane.doe@corp.example.org"
        })))
        .await;
    assert_eq!(resp.status, StatusCode::NO_CONTENT, "{}", resp.text());
    let by_key = app
        .call(Req::get(&format!("/rest/api/user?key={key}&expand=status")).admin())
        .await;
    assert_eq!(by_key.status, StatusCode::OK);
    let body = by_key.json();
    assert_eq!(body["displayName"], "Jane Q. Doe");
    assert_eq!(body["username"], "jdoe");
    assert_eq!(body["status"], "current");
    let profile = app
        .call(Req::get("/rest/mobile/1.0/profile/jdoe").admin())
        .await;
    assert_eq!(profile.json()["email"], "jane.doe@corp.example.org");

    // Disable: still resolvable, excluded from the active list and the licence count.
    let resp = app
        .call(Req::put("/rest/api/admin/user/jdoe/disable").admin())
        .await;
    assert_eq!(resp.status, StatusCode::NO_CONTENT);
    let status = app
        .call(Req::get("/rest/api/user?username=jdoe&expand=status").admin())
        .await;
    assert_eq!(status.json()["status"], "deactivated");
    let active = app
        .call(Req::get("/rest/api/admin/users/list/active").admin())
        .await
        .json();
    let active_names: Vec<&str> = active["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|u| u["username"].as_str())
        .collect();
    assert!(!active_names.contains(&"jdoe"));
    assert_eq!(active["totalCount"], active_names.len());
    let all = app
        .call(Req::get("/rest/api/user/list?limit=50").admin())
        .await
        .json();
    assert!(all["results"]
        .as_array()
        .expect("results")
        .iter()
        .any(|u| u["username"] == "jdoe"));
    let state = app.emu.state_json();
    assert_eq!(state["licence"]["used"], 3, "admin, alice and carol only");

    // Enable.
    let resp = app
        .call(Req::put("/rest/api/admin/user/jdoe/enable").admin())
        .await;
    assert_eq!(resp.status, StatusCode::NO_CONTENT);
    assert!(app.emu.user("jdoe").is_some_and(|u| u.active));

    // Delete: 202 with a long task; the user goes when the task finishes.
    let resp = app
        .call(Req::delete("/rest/api/admin/user/jdoe").admin())
        .await;
    assert_eq!(resp.status, StatusCode::ACCEPTED);
    let status_link = resp.json()["links"]["status"]
        .as_str()
        .expect("a status link")
        .to_owned();
    let first = app.call(Req::get(&status_link).admin()).await.json();
    assert_eq!(first["finished"], false);
    assert!(
        app.emu.user("jdoe").is_some(),
        "still there while the task runs"
    );
    let mut finished = first;
    for _ in 0..50 {
        if finished["finished"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        finished = app.call(Req::get(&status_link).admin()).await.json();
    }
    assert_eq!(finished["finished"], true);
    assert_eq!(finished["successful"], true);
    assert_eq!(finished["percentageComplete"], 100);
    let gone = app
        .call(Req::get("/rest/api/user?username=jdoe").admin())
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert!(app
        .emu
        .group_members("confluence-users")
        .is_some_and(|m| !m.contains(&"jdoe".to_owned())));
}

#[tokio::test]
async fn disable_enable_and_membership_calls_are_idempotent() {
    let app = TestApp::new();
    create_user(&app, "jdoe").await;
    for path in [
        "/rest/api/admin/user/jdoe/disable",
        "/rest/api/admin/user/jdoe/disable",
        "/rest/api/admin/user/jdoe/enable",
        "/rest/api/admin/user/jdoe/enable",
        "/rest/api/user/jdoe/group/confluence-users",
        "/rest/api/user/jdoe/group/confluence-users",
    ] {
        let resp = app.call(Req::put(path).admin()).await;
        assert_eq!(resp.status, StatusCode::NO_CONTENT, "PUT {path}");
    }
    for _ in 0..2 {
        let resp = app
            .call(Req::delete("/rest/api/user/jdoe/group/confluence-users").admin())
            .await;
        assert_eq!(resp.status, StatusCode::NO_CONTENT);
    }
    assert!(app.emu.user("jdoe").is_some_and(|u| u.groups.is_empty()));
}

#[tokio::test]
async fn a_disabled_user_can_be_added_to_a_group() {
    let app = TestApp::new();
    create_user(&app, "jdoe").await;
    app.call(Req::put("/rest/api/admin/user/jdoe/disable").admin())
        .await;
    let resp = app
        .call(Req::put("/rest/api/user/jdoe/group/confluence-users").admin())
        .await;
    assert_eq!(resp.status, StatusCode::NO_CONTENT);
    let user = app.emu.user("jdoe").expect("exists");
    assert!(!user.active);
    assert_eq!(user.groups, vec!["confluence-users".to_owned()]);
    assert_eq!(app.emu.state_json()["licence"]["used"], 3);
}

#[tokio::test]
async fn deleting_a_group_drops_its_memberships() {
    let app = TestApp::new();
    let resp = app
        .call(
            Req::post("/rest/api/admin/group")
                .admin()
                .json(json!({"name": "engineering", "type": "group"})),
        )
        .await;
    assert_eq!(resp.status, StatusCode::CREATED);
    assert_eq!(resp.json()["name"], "engineering");
    app.call(Req::put("/rest/api/user/alice/group/engineering").admin())
        .await;
    assert_eq!(
        app.emu.group_members("engineering"),
        Some(vec!["alice".to_owned()])
    );
    let resp = app
        .call(Req::delete("/rest/api/admin/group/engineering").admin())
        .await;
    assert_eq!(resp.status, StatusCode::NO_CONTENT);
    assert_eq!(app.emu.group_members("engineering"), None);
    assert!(app
        .emu
        .user("alice")
        .is_some_and(|u| !u.groups.contains(&"engineering".to_owned())));
}

#[tokio::test]
async fn the_status_literal_follows_the_status_style_knob() {
    let app = TestApp::new();
    let mut knobs = app.emu.knobs();
    knobs.status_style = StatusStyle::Active;
    app.emu.set_knobs(knobs);
    let body = app
        .call(Req::get("/rest/api/user?username=alice&expand=status").admin())
        .await
        .json();
    assert_eq!(body["status"], "Active");
    let plain = app
        .call(Req::get("/rest/api/user?username=alice").admin())
        .await
        .json();
    assert!(plain.get("status").is_none());
    assert_eq!(plain["_expandable"]["status"], "");
}

#[tokio::test]
async fn lists_are_paginated_with_next_links() {
    let app = TestApp::new();
    let mut seen = Vec::new();
    let mut path = "/rest/api/user/list?limit=2".to_owned();
    for _ in 0..5 {
        let page = app.call(Req::get(&path).admin()).await.json();
        for user in page["results"].as_array().expect("results") {
            seen.push(user["username"].as_str().unwrap_or_default().to_owned());
        }
        match page["_links"]["next"].as_str() {
            Some(next) => path = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen, vec!["admin", "alice", "carol"]);
}

#[tokio::test]
async fn group_listings_show_groups_members_and_memberships() {
    let app = TestApp::new();
    let groups = app.call(Req::get("/rest/api/group").admin()).await.json();
    let names: Vec<&str> = groups["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|g| g["name"].as_str())
        .collect();
    assert_eq!(names, vec!["confluence-administrators", "confluence-users"]);
    let one = app
        .call(Req::get("/rest/api/group/Confluence-Users").admin())
        .await;
    assert_eq!(one.json()["type"], "group");
    let members = app
        .call(Req::get("/rest/api/group/confluence-users/member?expand=status").admin())
        .await
        .json();
    assert_eq!(members["size"], 2);
    assert_eq!(members["results"][0]["status"], "current");
    let memberof = app
        .call(Req::get("/rest/api/user/memberof?username=alice").admin())
        .await
        .json();
    assert_eq!(memberof["results"][0]["name"], "confluence-users");
    let missing = app
        .call(Req::get("/rest/api/group/nope/member").admin())
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_admin_can_change_a_password_and_the_user_logs_in_with_it() {
    let app = TestApp::new();
    let resp = app
        .call(
            Req::post("/rest/api/admin/user/alice/password")
                .admin()
                .json(json!({"password": "New-Secret-43"})),
        )
        .await;
    assert_eq!(resp.status, StatusCode::NO_CONTENT);
    let me = app
        .call(Req::get("/rest/api/user/current").basic("alice", "New-Secret-43"))
        .await;
    assert_eq!(me.json()["username"], "alice");
    let blank = app
        .call(
            Req::post("/rest/api/admin/user/alice/password")
                .admin()
                .json(json!({"password": " "})),
        )
        .await;
    assert_eq!(blank.status, StatusCode::BAD_REQUEST);
}
