//! PATCH (RFC 7644 §3.5.2): all-or-nothing, paths with filters, extensions.

use serde_json::json;

use crate::helpers::TestApp;

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

#[tokio::test]
async fn patch_answers_200_with_the_resource_honouring_attributes() {
    let app = TestApp::spawn().await;
    let id = app.user("p1").await;
    let r = app
        .patch_ops(
            &format!("/Users/{id}?attributes=title"),
            json!([{"op": "add", "path": "title", "value": "Eng"}]),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.body["title"], "Eng");
    assert!(r.body.get("userName").is_none());
}

#[tokio::test]
async fn a_failing_operation_discards_the_whole_patch() {
    let app = TestApp::spawn().await;
    let id = app
        .create_user(json!({"userName": "atomic", "title": "before"}))
        .await;
    let r = app
        .patch_ops(
            &format!("/Users/{id}"),
            json!([
                {"op": "replace", "path": "title", "value": "after"},
                {"op": "replace", "path": "active", "value": "not a boolean"}
            ]),
        )
        .await;
    r.assert_scim_error(400, Some("invalidValue"));
    assert_eq!(
        app.get(&format!("/Users/{id}")).await.body["title"],
        "before"
    );
}

#[tokio::test]
async fn filtered_add_creates_the_element_and_filtered_replace_updates_it() {
    let app = TestApp::spawn().await;
    let id = app
        .create_user(json!({"userName": "f", "phoneNumbers": [{"type": "work", "value": "1"}]}))
        .await;
    let path = format!("/Users/{id}");
    app.patch_ops(
        &path,
        json!([{"op": "add", "path": "emails[type eq \"work\"].value", "value": "w@x.org"}]),
    )
    .await
    .assert_status(200);
    app.patch_ops(
        &path,
        json!([{"op": "replace", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "2"}]),
    )
    .await
    .assert_status(200);
    app.patch_ops(
        &path,
        json!([{"op": "replace", "path": "phoneNumbers[type eq \"work\"].value", "value": "3"}]),
    )
    .await
    .assert_status(200);
    let r = app.get(&path).await;
    assert_eq!(
        r.body["emails"],
        json!([{"type": "work", "value": "w@x.org"}])
    );
    assert_eq!(
        r.body["phoneNumbers"],
        json!([{"type": "work", "value": "3"}, {"type": "mobile", "value": "2"}])
    );
}

#[tokio::test]
async fn remove_paths_with_filters_and_sub_attributes() {
    let app = TestApp::spawn().await;
    let id = app
        .create_user(
            json!({"userName": "r", "name": {"givenName": "G", "familyName": "F"},
            "emails": [{"type": "work", "value": "a@x"}, {"type": "home", "value": "b@x"}]}),
        )
        .await;
    let path = format!("/Users/{id}");
    app.patch_ops(
        &path,
        json!([
            {"op": "remove", "path": "emails[type eq \"home\"]"},
            {"op": "remove", "path": "name.givenName"}
        ]),
    )
    .await
    .assert_status(200);
    let r = app.get(&path).await;
    assert_eq!(r.body["emails"], json!([{"type": "work", "value": "a@x"}]));
    assert_eq!(r.body["name"], json!({"familyName": "F"}));
}

#[tokio::test]
async fn extension_attributes_by_urn_path_and_pathless_value() {
    let app = TestApp::spawn().await;
    let id = app.user("ext").await;
    let path = format!("/Users/{id}");
    app.patch_ops(
        &path,
        json!([{"op": "add", "path": format!("{ENT}:department"), "value": "R&D"}]),
    )
    .await
    .assert_status(200);
    app.patch_ops(
        &path,
        json!([{"op": "replace", "value": {ENT: {"costCenter": "42"}}}]),
    )
    .await
    .assert_status(200);
    let r = app.get(&path).await;
    assert_eq!(
        r.body[ENT],
        json!({"department": "R&D", "costCenter": "42"})
    );
    app.patch_ops(&path, json!([{"op": "remove", "path": ENT}]))
        .await
        .assert_status(200);
    assert!(app.get(&path).await.body.get(ENT).is_none());
}

#[tokio::test]
async fn immutable_and_read_only_targets_are_refused() {
    let app = TestApp::spawn().await;
    let id = app.user("imm").await;
    let r = app
        .patch_ops(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "path": "id", "value": "x"}]),
        )
        .await;
    r.assert_scim_error(400, Some("mutability"));
    let r = app
        .patch_ops(
            &format!("/Users/{id}"),
            json!([{"op": "remove", "path": "userName"}]),
        )
        .await;
    r.assert_scim_error(400, Some("invalidValue"));
}

#[tokio::test]
async fn malformed_paths_are_invalid_path() {
    let app = TestApp::spawn().await;
    let id = app.user("bad-path").await;
    let r = app
        .patch_ops(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "path": "emails[type eq", "value": "x"}]),
        )
        .await;
    r.assert_scim_error(400, Some("invalidPath"));
    let r = app
        .patch_ops(&format!("/Users/{id}"), json!([{"op": "remove"}]))
        .await;
    r.assert_scim_error(400, Some("noTarget"));
    let r = app
        .patch_ops(
            &format!("/Users/{id}"),
            json!([{"op": "jump", "path": "title"}]),
        )
        .await;
    r.assert_scim_error(400, Some("invalidSyntax"));
    app.patch_ops("/Users/missing", json!([]))
        .await
        .assert_scim_error(404, None);
}

#[tokio::test]
async fn a_onelogin_manager_id_sets_the_manager_in_every_patch_form() {
    let app = TestApp::spawn().await;
    let id = app
        .create_user(json!({"userName": "ol", ENT: {"manager": {"value": "E0"}}}))
        .await;
    let path = format!("/Users/{id}");
    for (i, op) in [
        json!({"op": "replace", "path": "manager", "value": {"managerId": "E1"}}),
        json!({"op": "replace", "path": format!("{ENT}:manager"), "value": {"managerId": "E2", "displayName": "B"}}),
        json!({"op": "replace", "value": {"manager": {"managerId": "E3"}}}),
        json!({"op": "replace", "value": {ENT: {"manager": {"managerId": "E4"}}}}),
        json!({"op": "replace", "value": {"urn:scim:schemas:extension:enterprise:1.0": {"manager": {"managerId": "E5"}}}}),
    ]
    .into_iter()
    .enumerate()
    {
        app.patch_ops(&path, json!([op])).await.assert_status(200);
        let want = format!("E{}", i + 1);
        assert_eq!(
            app.get(&path).await.body[ENT]["manager"],
            json!({"value": want}),
            "{op}"
        );
    }
}
