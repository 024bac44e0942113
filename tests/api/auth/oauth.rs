//! The OAuth 2.0 client-credentials token endpoint (docs/reference/idp-behaviour.md §2.9 item 3,
//! §7; c82, c119) and the access tokens it issues.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::{json, Value};

use super::{
    assert_401, assert_oauth_error, assert_token, bearer, call, declare, now, probe, token_request,
    with, BEARER,
};
use crate::helpers::{TestApp, TestResponse};
use usersync::config::Settings;

const SIGNING_KEY: &str = "c82-signing-key-of-at-least-thirty-two-bytes";

fn ping(s: &mut Settings) {
    declare(
        s,
        "ping",
        r#"
        [oauth]
        client_id = "ping-client"
        client_secret_env = ["C82_SECRET_NEW", "C82_SECRET_OLD"]
        signing_key_env = "C82_KEY"
        token_ttl = "2h"
        "#,
        &[
            ("C82_SECRET_NEW", "new-client-secret"),
            ("C82_SECRET_OLD", "old-client-secret"),
            ("C82_KEY", SIGNING_KEY),
        ],
    );
}

fn post_form(id: &str, secret: &str) -> Vec<(&'static str, String)> {
    vec![
        ("grant_type", "client_credentials".to_owned()),
        ("client_id", id.to_owned()),
        ("client_secret", secret.to_owned()),
    ]
}

async fn token(
    app: &TestApp,
    form: &[(&str, String)],
    basic: Option<(&str, &str)>,
) -> TestResponse {
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    token_request(app, "ping", &pairs, basic).await
}

#[tokio::test]
async fn c82_client_credentials_form_and_basic_issue_tokens_and_bad_secret_is_invalid_client() {
    let app = TestApp::spawn_with(ping).await;
    // client_secret_post.
    let r = token(&app, &post_form("ping-client", "new-client-secret"), None).await;
    let access = assert_token(&r);
    assert_eq!(r.body["expires_in"], 7200);
    probe(&app, "ping", bearer(&access))
        .await
        .assert_status(200);
    // client_secret_basic, with the second (older) secret: several secrets are valid at once.
    let grant = vec![("grant_type", "client_credentials".to_owned())];
    let r = token(&app, &grant, Some(("ping-client", "old-client-secret"))).await;
    probe(&app, "ping", bearer(&assert_token(&r)))
        .await
        .assert_status(200);

    let bad_post = token(&app, &post_form("ping-client", "wrong-secret"), None).await;
    assert_oauth_error(&bad_post, 401, "invalid_client");
    let bad_basic = token(&app, &grant, Some(("ping-client", "wrong-secret"))).await;
    assert_oauth_error(&bad_basic, 401, "invalid_client");
    let bad_id = token(&app, &post_form("other-client", "new-client-secret"), None).await;
    assert_oauth_error(&bad_id, 401, "invalid_client");
    // An unknown connector and one without a token endpoint answer exactly the same.
    let pairs = [
        ("grant_type", "client_credentials"),
        ("client_id", "ping-client"),
        ("client_secret", "new-client-secret"),
    ];
    for connector in ["nonexistent", "idp"] {
        let r = token_request(&app, connector, &pairs, None).await;
        assert_oauth_error(&r, 401, "invalid_client");
        assert_eq!(r.text, bad_post.text);
    }
}

#[tokio::test]
async fn c82_token_endpoint_errors_follow_rfc_6749() {
    let app = TestApp::spawn_with(ping).await;
    let id = ("client_id", "ping-client");
    let secret = ("client_secret", "new-client-secret");
    let cc = ("grant_type", "client_credentials");
    let r = token_request(&app, "ping", &[id, secret], None).await;
    assert_oauth_error(&r, 400, "invalid_request");
    let r = token_request(
        &app,
        "ping",
        &[("grant_type", "password"), id, secret],
        None,
    )
    .await;
    assert_oauth_error(&r, 400, "unsupported_grant_type");
    // Header and body naming different clients or secrets: a real conflict.
    let r = token_request(
        &app,
        "ping",
        &[cc, id, secret],
        Some(("ping-client", "old-client-secret")),
    )
    .await;
    assert_oauth_error(&r, 400, "invalid_request");
    let r = token_request(&app, "ping", &[cc, id, secret, secret], None).await;
    assert_oauth_error(&r, 400, "invalid_request");
    let r = token_request(&app, "ping", &[cc, id], None).await;
    assert_oauth_error(&r, 401, "invalid_client");
    // A JSON body is not a token request.
    let r = app
        .client
        .post(format!("{}/scim/v2/ping/oauth/token", app.address))
        .header("Content-Type", "application/json")
        .body(json!({"grant_type": "client_credentials"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    let r = app
        .client
        .get(format!("{}/scim/v2/ping/oauth/token", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
}

/// Entra's OAuth2 client-credentials setting "How credentials are sent: Both" puts the same
/// client id and secret in an HTTP Basic header and in the form body (docs/idp/entra.md):
/// accepted, since it is one client authenticating once. Only a real conflict is refused, and
/// the refusal says so without echoing either secret.
#[tokio::test]
async fn entra_both_header_and_body_with_the_same_pair_gets_a_token_and_a_conflict_is_refused() {
    let app = TestApp::spawn_with(ping).await;
    let body = post_form("ping-client", "new-client-secret");
    let r = token(&app, &body, Some(("ping-client", "new-client-secret"))).await;
    let access = assert_token(&r);
    probe(&app, "ping", bearer(&access))
        .await
        .assert_status(200);
    // Any listed secret, as long as both places carry the same one.
    let old = post_form("ping-client", "old-client-secret");
    assert_token(&token(&app, &old, Some(("ping-client", "old-client-secret"))).await);

    for (header_id, header_secret) in [
        ("ping-client", "old-client-secret"),
        ("other-client", "new-client-secret"),
    ] {
        let r = token(&app, &body, Some((header_id, header_secret))).await;
        assert_oauth_error(&r, 400, "invalid_request");
        let why = r.body["error_description"].as_str().unwrap_or_default();
        assert!(
            why.contains("differ") && !why.contains("client-secret"),
            "{why}"
        );
    }
    // The same wrong pair in both places is a wrong secret, not a conflict.
    let wrong = post_form("ping-client", "wrong-secret");
    let r = token(&app, &wrong, Some(("ping-client", "wrong-secret"))).await;
    assert_oauth_error(&r, 401, "invalid_client");
}

fn mint(claims: &Value, key: &str, typ: &str) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some(typ.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(key.as_bytes())).unwrap()
}

#[tokio::test]
async fn c82_expired_foreign_and_tampered_access_tokens_are_401() {
    let app = TestApp::spawn_with(ping).await;
    let claims = json!({
        "iss": "usersync", "aud": "ping", "sub": "ping-client",
        "iat": now() - 10, "exp": now() + 600, "jti": "t-1",
    });
    // A token minted exactly as ours are is accepted: the cases below differ in one thing.
    probe(&app, "ping", bearer(&mint(&claims, SIGNING_KEY, "at+jwt")))
        .await
        .assert_status(200);
    let refused = [
        mint(
            &with(claims.clone(), json!({"exp": now() - 3600})),
            SIGNING_KEY,
            "at+jwt",
        ),
        mint(
            &with(claims.clone(), json!({"aud": "other"})),
            SIGNING_KEY,
            "at+jwt",
        ),
        mint(
            &with(claims.clone(), json!({"sub": "someone-else"})),
            SIGNING_KEY,
            "at+jwt",
        ),
        mint(
            &with(claims.clone(), json!({"iss": "https://sts.windows.net/x/"})),
            SIGNING_KEY,
            "at+jwt",
        ),
        mint(
            &with(claims.clone(), json!({"exp": null})),
            SIGNING_KEY,
            "at+jwt",
        ),
        mint(&claims, SIGNING_KEY, "JWT"),
        mint(
            &claims,
            "a-different-key-that-is-also-32-bytes-long",
            "at+jwt",
        ),
    ];
    for t in &refused {
        assert_401(&probe(&app, "ping", bearer(t)).await, &[BEARER]);
    }
}

#[tokio::test]
async fn c119_pingone_client_credentials_then_scim_calls_succeed() {
    let app = TestApp::spawn_with(|s| {
        declare(
            s,
            "pingone",
            r#"
            [oauth]
            client_id = "pingone-provisioning"
            client_secret_env = "C119_SECRET"
            "#,
            &[("C119_SECRET", "pingone-secret-119")],
        );
    })
    .await;
    let r = token_request(
        &app,
        "pingone",
        &[("grant_type", "client_credentials")],
        Some(("pingone-provisioning", "pingone-secret-119")),
    )
    .await;
    let access = assert_token(&r);
    let opts = || bearer(&access);
    let created = call(
        &app,
        Method::POST,
        "pingone",
        "/Users",
        Some(json!({"userName": "ping.user@example.com", "active": true})),
        opts(),
    )
    .await;
    created.assert_status(201);
    let id = created.id();
    call(
        &app,
        Method::GET,
        "pingone",
        &format!("/Users/{id}"),
        None,
        opts(),
    )
    .await
    .assert_status(200);
    // PingFederate-style update: PUT of the whole user (docs/reference/idp-behaviour.md §7).
    let r = call(
        &app,
        Method::PUT,
        "pingone",
        &format!("/Users/{id}"),
        Some(json!({"userName": "ping.user@example.com", "active": false})),
        opts(),
    )
    .await;
    r.assert_status(200);
    assert_eq!(r.body["active"], false);
    let r = call(
        &app,
        Method::GET,
        "pingone",
        "/Users?filter=userName%20eq%20%22ping.user@example.com%22",
        None,
        opts(),
    )
    .await;
    assert_eq!(r.body["totalResults"], 1);
    call(
        &app,
        Method::DELETE,
        "pingone",
        &format!("/Users/{id}"),
        None,
        opts(),
    )
    .await
    .assert_status(204);
}
