//! A credential of one connector never authenticates another, in every mode.

use serde_json::json;

use super::{
    assert_401, assert_oauth_error, assert_token, basic_auth, bearer, declare, entra_claims, key,
    now, probe, sign, token_request, JwksServer, BASIC, BEARER, OTHER_TENANT, TENANT,
};
use crate::helpers::{Opts, TestApp};
use usersync::config::Settings;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Two connectors with every mode; their Entra connectors trust different tenants, their
/// WIF subjects differ, and they even share one signing key for access tokens.
fn two_connectors(s: &mut Settings, jwks: &JwksServer) {
    for (name, tenant) in [("alpha", TENANT), ("beta", OTHER_TENANT)] {
        let upper = name.to_uppercase();
        declare(
            s,
            name,
            &format!(
                r#"
                token_env = "ISO_{upper}_TOKEN"
                basic = {{ username = "provisioner", password_env = "ISO_{upper}_PW" }}
                [entra_jwt]
                tenant_id = "{tenant}"
                jwks_url = "{url}"
                [oauth]
                client_id = "{name}-client"
                client_secret_env = "ISO_{upper}_SECRET"
                signing_key_env = "ISO_SHARED_KEY"
                [oauth.wif]
                tenant_id = "{TENANT}"
                audience = "api://usersync"
                subject = "{name}-workload"
                jwks_url = "{url}"
                "#,
                url = jwks.url
            ),
            &[
                (
                    &format!("ISO_{upper}_TOKEN"),
                    &format!("{name}-static-token"),
                ),
                (&format!("ISO_{upper}_PW"), &format!("{name}-password")),
                (
                    &format!("ISO_{upper}_SECRET"),
                    &format!("{name}-client-secret"),
                ),
                (
                    "ISO_SHARED_KEY",
                    "one-signing-key-shared-by-both-connectors",
                ),
            ],
        );
    }
}

#[tokio::test]
async fn every_mode_refuses_the_credentials_of_another_connector() {
    let jwks = JwksServer::start(&[&key("a")]).await;
    let app = TestApp::spawn_with(|s| two_connectors(s, &jwks)).await;
    let a = key("a");
    let both = |opts: Opts| {
        let app = &app;
        async move {
            (
                probe(app, "alpha", opts.clone()).await.status,
                probe(app, "beta", opts).await,
            )
        }
    };

    // Static token.
    let (alpha, beta) = both(bearer("alpha-static-token")).await;
    assert_eq!(alpha, 200);
    // A Basic challenge answers a Basic attempt only, whatever the connector offers.
    assert_401(&beta, &[BEARER]);
    // Basic: same user name, alpha's password.
    let (alpha, beta) = both(basic_auth("provisioner", "alpha-password")).await;
    assert_eq!(alpha, 200);
    assert_401(&beta, &[BEARER, BASIC]);
    // An Entra JWT of alpha's tenant.
    let entra = sign(&a, Some(&a.kid), &entra_claims(TENANT));
    let (alpha, beta) = both(bearer(&entra)).await;
    assert_eq!(alpha, 200);
    assert_401(&beta, &[BEARER]);
    // An access token from alpha's token endpoint (same signing key, different audience).
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", "alpha-client"),
        ("client_secret", "alpha-client-secret"),
    ];
    let access = assert_token(&token_request(&app, "alpha", &form, None).await);
    let (alpha, beta) = both(bearer(&access)).await;
    assert_eq!(alpha, 200);
    assert_401(&beta, &[BEARER]);
    // Alpha's client secret at beta's token endpoint.
    let r = token_request(&app, "beta", &form, None).await;
    assert_oauth_error(&r, 401, "invalid_client");
    // Alpha's WIF assertion at beta's token endpoint.
    let assertion = sign(
        &a,
        Some(&a.kid),
        &json!({
            "iss": format!("https://login.microsoftonline.com/{TENANT}/v2.0"),
            "aud": "api://usersync", "sub": "alpha-workload", "tid": TENANT,
            "nbf": now() - 10, "exp": now() + 600,
        }),
    );
    let wif = |connector: &'static str| {
        let app = &app;
        let assertion = assertion.clone();
        async move {
            token_request(
                app,
                connector,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_assertion_type", ASSERTION_TYPE),
                    ("client_assertion", &assertion),
                ],
                None,
            )
            .await
        }
    };
    assert_token(&wif("alpha").await);
    assert_oauth_error(&wif("beta").await, 401, "invalid_client");
    // Stored (CLI) connectors and configured ones do not accept each other's tokens either.
    assert_401(&probe(&app, "alpha", Opts::default()).await, &[BEARER]);
    let r = app
        .send(
            reqwest::Method::GET,
            "/Users",
            None,
            bearer("alpha-static-token"),
        )
        .await;
    assert_401(&r, &[BEARER]);
}
