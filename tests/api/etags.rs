//! Versions and entity tags (RFC 7644 §3.14).

use reqwest::Method;
use serde_json::json;

use crate::helpers::{Opts, TestApp};

fn header(name: &str, value: &str) -> Opts {
    Opts {
        headers: vec![(name.into(), value.into())],
        ..Opts::default()
    }
}

#[tokio::test]
async fn if_none_match_with_the_current_version_is_304() {
    let app = TestApp::spawn().await;
    let id = app.user("etag").await;
    let r = app
        .send(
            Method::GET,
            &format!("/Users/{id}"),
            None,
            header("If-None-Match", "W/\"1\""),
        )
        .await;
    r.assert_status(304);
    assert_eq!(r.header("etag"), Some("W/\"1\""));
    let r = app
        .send(
            Method::GET,
            &format!("/Users/{id}"),
            None,
            header("If-None-Match", "W/\"0\""),
        )
        .await;
    r.assert_status(200);
}

#[tokio::test]
async fn if_match_with_a_stale_version_is_412_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let id = app.user("etag2").await;
    let path = format!("/Users/{id}");
    app.patch_ops(
        &path,
        json!([{"op": "replace", "path": "title", "value": "v2"}]),
    )
    .await
    .assert_status(200);
    let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "title", "value": "stale"}]});
    let r = app
        .send(
            Method::PATCH,
            &path,
            Some(body.clone()),
            header("If-Match", "W/\"1\""),
        )
        .await;
    r.assert_scim_error(412, None);
    let r = app
        .send(
            Method::PUT,
            &path,
            Some(json!({"userName": "etag2"})),
            header("If-Match", "W/\"1\""),
        )
        .await;
    r.assert_scim_error(412, None);
    let r = app
        .send(Method::DELETE, &path, None, header("If-Match", "W/\"1\""))
        .await;
    r.assert_scim_error(412, None);
    assert_eq!(app.get(&path).await.body["title"], "v2");
    let r = app
        .send(
            Method::PATCH,
            &path,
            Some(body),
            header("If-Match", "W/\"2\""),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.header("etag"), Some("W/\"3\""));
}

/// RFC 7232 §3.1: an `If-Match` list none of whose tags match the current version fails the
/// precondition with 412, whatever the tags look like: a tag usersync never issued is simply
/// a tag that does not match, not a malformed request.
#[tokio::test]
async fn if_match_with_a_tag_that_is_not_ours_is_412_on_put_patch_and_delete() {
    let app = TestApp::spawn().await;
    let id = app.user("etag3").await;
    let path = format!("/Users/{id}");
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "title", "value": "changed"}]});
    for tag in [
        "W/\"definitely-stale\"",
        "\"abc\"",
        "W/\"\"",
        "3",
        "W/\"1",
        "W/\"7\", \"x\"",
    ] {
        let r = app
            .send(
                Method::PATCH,
                &path,
                Some(patch.clone()),
                header("If-Match", tag),
            )
            .await;
        r.assert_scim_error(412, None);
        let r = app
            .send(
                Method::PUT,
                &path,
                Some(json!({"userName": "etag3", "title": "changed"})),
                header("If-Match", tag),
            )
            .await;
        r.assert_scim_error(412, None);
        let r = app
            .send(Method::DELETE, &path, None, header("If-Match", tag))
            .await;
        r.assert_scim_error(412, None);
    }
    let r = app.get(&path).await;
    r.assert_status(200);
    assert_eq!(r.body["title"], json!(null));
    assert_eq!(r.header("etag"), Some("W/\"1\""));

    // A list holding the current version among foreign tags matches.
    let r = app
        .send(
            Method::PATCH,
            &path,
            Some(patch),
            header("If-Match", "W/\"definitely-stale\", W/\"1\""),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.body["title"], "changed");
    let r = app
        .send(Method::DELETE, &path, None, header("If-Match", "\"2\""))
        .await;
    r.assert_status(204);
}

/// A Bulk operation's `version` is its `If-Match` (RFC 7644 §3.7): a version that is not one
/// of ours fails that operation with 412 and leaves the resource alone.
#[tokio::test]
async fn a_bulk_version_that_is_not_ours_is_412() {
    let app = TestApp::spawn().await;
    let id = app.user("etag4").await;
    let r = app
        .post(
            "/Bulk",
            json!({"Operations": [
                {"method": "PUT", "path": format!("/Users/{id}"), "version": "W/\"definitely-stale\"",
                 "data": {"userName": "etag4", "title": "bulk"}},
                {"method": "DELETE", "path": format!("/Users/{id}"), "version": "nonsense"}
            ]}),
        )
        .await;
    r.assert_status(200);
    let statuses: Vec<&str> = r.body["Operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["412", "412"], "{}", r.text);
    let u = app.get(&format!("/Users/{id}")).await;
    u.assert_status(200);
    assert_eq!(u.body["title"], json!(null));
}

#[tokio::test]
async fn an_unchanged_write_keeps_the_version() {
    let app = TestApp::spawn().await;
    let id = app
        .create_user(json!({"userName": "same", "title": "T"}))
        .await;
    let r = app
        .put(
            &format!("/Users/{id}"),
            json!({"userName": "same", "title": "T"}),
        )
        .await;
    assert_eq!(r.body["meta"]["version"], "W/\"1\"");
}
