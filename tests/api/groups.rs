//! `/Groups`: membership as rows, PATCH of members, uniqueness of displayName.

use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn create_with_members_skips_ids_that_name_nothing() {
    let app = TestApp::spawn().await;
    let u = app.user("m1").await;
    let r = app
        .post(
            "/Groups",
            json!({"displayName": "Eng", "members": [{"value": u}, {"value": "no-such-user"}]}),
        )
        .await;
    r.assert_status(201);
    let members = r.body["members"].as_array().unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0]["value"], json!(u));
    assert_eq!(members[0]["type"], "User");
    assert_eq!(members[0]["$ref"], json!(app.url(&format!("/Users/{u}"))));
}

#[tokio::test]
async fn display_names_are_unique_ignoring_case() {
    let app = TestApp::spawn().await;
    app.group("Linchpin Editors", &[]).await;
    let r = app
        .post("/Groups", json!({"displayName": "LINCHPIN editors"}))
        .await;
    r.assert_scim_error(409, Some("uniqueness"));
}

#[tokio::test]
async fn member_patches_add_remove_and_replace_without_touching_others() {
    let app = TestApp::spawn().await;
    let (a, b, c) = (
        app.user("a").await,
        app.user("b").await,
        app.user("c").await,
    );
    let g = app.group("G", &[&a]).await;
    let path = format!("/Groups/{g}");
    app.patch_ops(
        &path,
        json!([{"op": "add", "path": "members", "value": [{"value": b}, {"value": c}]}]),
    )
    .await
    .assert_status(200);
    assert_eq!(app.member_ids(&g).await, sorted(&[&a, &b, &c]));
    app.patch_ops(
        &path,
        json!([{"op": "remove", "path": format!("members[value eq \"{a}\"]")}]),
    )
    .await
    .assert_status(200);
    assert_eq!(app.member_ids(&g).await, sorted(&[&b, &c]));
    app.patch_ops(
        &path,
        json!([{"op": "replace", "path": "members", "value": [{"value": a}]}]),
    )
    .await
    .assert_status(200);
    assert_eq!(app.member_ids(&g).await, vec![a.clone()]);
    app.patch_ops(&path, json!([{"op": "remove", "path": "members"}]))
        .await
        .assert_status(200);
    assert!(app.member_ids(&g).await.is_empty());
}

#[tokio::test]
async fn groups_can_contain_groups() {
    let app = TestApp::spawn().await;
    let inner = app.group("Inner", &[]).await;
    let outer = app.group("Outer", &[&inner]).await;
    let r = app.get(&format!("/Groups/{outer}")).await;
    assert_eq!(r.body["members"][0]["type"], "Group");
    assert_eq!(
        r.body["members"][0]["$ref"],
        json!(app.url(&format!("/Groups/{inner}")))
    );
}

#[tokio::test]
async fn excluded_members_are_not_returned() {
    let app = TestApp::spawn().await;
    let u = app.user("x").await;
    let g = app.group("Sales", &[&u]).await;
    let r = app
        .get(&format!("/Groups/{g}?excludedAttributes=members"))
        .await;
    assert!(r.body.get("members").is_none());
    assert_eq!(r.body["displayName"], "Sales");
    let l = app
        .get("/Groups?excludedAttributes=members&filter=displayName%20eq%20%22sales%22")
        .await;
    assert_eq!(l.body["totalResults"], 1);
    assert!(l.body["Resources"][0].get("members").is_none());
}

#[tokio::test]
async fn put_replaces_the_membership() {
    let app = TestApp::spawn().await;
    let (a, b) = (app.user("a").await, app.user("b").await);
    let g = app.group("G", &[&a]).await;
    app.put(
        &format!("/Groups/{g}"),
        json!({"displayName": "G2", "members": [{"value": b}]}),
    )
    .await
    .assert_status(200);
    assert_eq!(app.member_ids(&g).await, vec![b]);
}

fn sorted(ids: &[&String]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}
