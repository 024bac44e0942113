//! Bad input gets a clear SCIM error and changes nothing; every error is a SCIM body.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{Opts, TestApp};

#[tokio::test]
async fn malformed_json_is_invalid_syntax() {
    let app = TestApp::spawn().await;
    let opts = Opts {
        raw_body: Some("{\"userName\": ".into()),
        ..Opts::default()
    };
    let r = app.send(Method::POST, "/Users", None, opts).await;
    r.assert_scim_error(400, Some("invalidSyntax"));
    assert!(app.queued().await.is_empty());
}

#[tokio::test]
async fn wrong_types_are_invalid_value() {
    let app = TestApp::spawn().await;
    for body in [
        json!({"userName": 42}),
        json!({"userName": "a", "active": "maybe"}),
        json!({"userName": "a", "name": "not an object"}),
        json!({"userName": "a", "title": ["two", "values"]}),
        json!(["not", "an", "object"]),
    ] {
        let r = app.post("/Users", body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text);
    }
    let r = app.post("/Users", json!({"userName": true})).await;
    r.assert_scim_error(400, Some("invalidValue"));
    assert_eq!(
        app.get("/Users").await.body["totalResults"],
        0,
        "nothing was written"
    );
}

#[tokio::test]
async fn missing_required_attribute_is_invalid_value() {
    let app = TestApp::spawn().await;
    app.post("/Users", json!({"displayName": "Nameless"}))
        .await
        .assert_scim_error(400, Some("invalidValue"));
    app.post("/Groups", json!({"members": []}))
        .await
        .assert_scim_error(400, Some("invalidValue"));
}

#[tokio::test]
async fn duplicates_are_409_uniqueness_ignoring_case() {
    let app = TestApp::spawn().await;
    app.user("alice@example.com").await;
    app.post("/Users", json!({"userName": "ALICE@example.COM"}))
        .await
        .assert_scim_error(409, Some("uniqueness"));
}

#[tokio::test]
async fn unknown_routes_and_methods_get_scim_errors() {
    let app = TestApp::spawn().await;
    app.get("/Printers").await.assert_scim_error(404, None);
    let r = app
        .send_url(
            Method::GET,
            &format!("{}/nothing/here", app.address),
            None,
            Opts::default(),
        )
        .await;
    r.assert_scim_error(404, None);
    app.send(Method::PATCH, "/Users", Some(json!({})), Opts::default())
        .await
        .assert_scim_error(405, None);
}

#[tokio::test]
async fn missing_or_wrong_credentials_are_401_without_data() {
    let app = TestApp::spawn().await;
    app.user("secret-person").await;
    for auth in ["", "non-token", "Bearer wrong", "Basic Zm9vOmJhcg=="] {
        let opts = Opts {
            auth: Some(auth.into()),
            ..Opts::default()
        };
        let r = app.send(Method::GET, "/Users", None, opts).await;
        r.assert_scim_error(401, None);
        assert!(r.header("www-authenticate").is_some());
        assert!(!r.text.contains("secret-person"));
    }
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let app = TestApp::spawn_with(|s| s.limits.max_body_bytes = 2048).await;
    let r = app
        .post(
            "/Users",
            json!({"userName": "big", "title": "x".repeat(4000)}),
        )
        .await;
    r.assert_scim_error(413, None);
}

#[tokio::test]
async fn both_json_media_types_are_accepted_with_or_without_charset() {
    let app = TestApp::spawn().await;
    for (i, ct) in [
        "application/scim+json",
        "application/json",
        "application/scim+json; charset=utf-8",
        "application/json; charset=utf-8",
    ]
    .iter()
    .enumerate()
    {
        let opts = Opts {
            content_type: Some(ct.to_string()),
            ..Opts::default()
        };
        let r = app
            .send(
                Method::POST,
                "/Users",
                Some(json!({"userName": format!("ct{i}")})),
                opts,
            )
            .await;
        r.assert_status(201);
        assert_eq!(r.header("content-type"), Some("application/scim+json"));
    }
}

#[tokio::test]
async fn a_bad_filter_says_where_it_went_wrong() {
    let app = TestApp::spawn().await;
    let r = app.get("/Users?filter=userName%20eqq%20%22x%22").await;
    r.assert_scim_error(400, Some("invalidFilter"));
    assert!(
        r.body["detail"].as_str().unwrap().contains("character"),
        "{}",
        r.text
    );
    let deep = format!(
        "{}userName eq \"x\"{}",
        "not (".repeat(100),
        ")".repeat(100)
    );
    let r = app
        .get(&format!("/Users?filter={}", urlencode(&deep)))
        .await;
    r.assert_scim_error(400, Some("invalidFilter"));
    let r = app
        .get("/Users?filter=favouriteColour%20eq%20%22teal%22")
        .await;
    r.assert_scim_error(400, Some("invalidFilter"));
}

pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
