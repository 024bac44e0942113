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
