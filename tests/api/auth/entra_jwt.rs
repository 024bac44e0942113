//! Entra-signed bearer JWTs, Entra's blank Secret Token (docs/reference/idp-behaviour.md §2.9 item
//! 2, c81).

use std::time::Duration;

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use super::{
    assert_401, bearer, declare, entra_claims, key, now, probe, sign, with, JwksServer, BEARER,
    OTHER_TENANT, TENANT,
};
use crate::helpers::TestApp;
use usersync::config::{Dur, Settings};

fn entra(s: &mut Settings, jwks: &JwksServer) {
    declare(
        s,
        "entra",
        &format!(
            "[entra_jwt]\ntenant_id = \"{TENANT}\"\njwks_url = \"{}\"",
            jwks.url
        ),
        &[],
    );
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

#[tokio::test]
async fn c81_entra_jwt_signed_by_tenant_key_is_accepted_and_wrong_iss_aud_expired_are_401() {
    let jwks = JwksServer::start(&[&key("a")]).await;
    let app = TestApp::spawn_with(|s| entra(s, &jwks)).await;
    let a = key("a");
    let kid = Some(a.kid.as_str());
    let valid = entra_claims(TENANT);
    probe(&app, "entra", bearer(&sign(&a, kid, &valid)))
        .await
        .assert_status(200);
    // Within the 60 s leeway, an `exp` just past still works.
    let just_expired = with(valid.clone(), json!({"exp": now() - 20}));
    probe(&app, "entra", bearer(&sign(&a, kid, &just_expired)))
        .await
        .assert_status(200);

    let refused = [
        // Another tenant, and the right tenant without the trailing slash of Entra's `iss`.
        with(
            valid.clone(),
            json!({"iss": format!("https://sts.windows.net/{OTHER_TENANT}/")}),
        ),
        with(
            valid.clone(),
            json!({"iss": format!("https://sts.windows.net/{TENANT}")}),
        ),
        with(valid.clone(), json!({"iss": null})),
        with(valid.clone(), json!({"aud": "api://some-other-app"})),
        with(valid.clone(), json!({"aud": null})),
        with(valid.clone(), json!({"exp": now() - 3600})),
        with(valid.clone(), json!({"exp": null})),
        with(valid.clone(), json!({"nbf": now() + 3600})),
    ];
    for claims in &refused {
        let r = probe(&app, "entra", bearer(&sign(&a, kid, claims))).await;
        assert_401(&r, &[BEARER]);
    }
    // Signed by a key the tenant never published, under the tenant key's kid.
    let forged = sign(&key("c"), kid, &valid);
    assert_401(&probe(&app, "entra", bearer(&forged)).await, &[BEARER]);
    // No kid.
    let no_kid = sign(&a, None, &valid);
    assert_401(&probe(&app, "entra", bearer(&no_kid)).await, &[BEARER]);
    // `alg: none`, unsigned.
    let none = format!(
        "{}.{}.",
        b64(r#"{"alg":"none","typ":"JWT"}"#),
        b64(&valid.to_string())
    );
    assert_401(&probe(&app, "entra", bearer(&none)).await, &[BEARER]);
    // HS256 with the tenant's public key as the HMAC secret (algorithm confusion).
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(a.kid.clone());
    let confused = jsonwebtoken::encode(
        &header,
        &valid,
        &EncodingKey::from_secret(a.public_pem.as_bytes()),
    )
    .unwrap();
    assert_401(&probe(&app, "entra", bearer(&confused)).await, &[BEARER]);
    // None of these made us fetch the keys again.
    assert_eq!(jwks.fetches(), 1);
}

#[tokio::test]
async fn c81_unknown_kid_triggers_one_jwks_refresh() {
    let jwks = JwksServer::start(&[&key("a")]).await;
    let app = TestApp::spawn_with(|s| {
        entra(s, &jwks);
        s.auth.jwks_min_refresh = Dur(Duration::ZERO);
    })
    .await;
    let (a, b) = (key("a"), key("b"));
    let claims = entra_claims(TENANT);
    let token_a = sign(&a, Some(&a.kid), &claims);
    let token_b = sign(&b, Some(&b.kid), &claims);
    probe(&app, "entra", bearer(&token_a))
        .await
        .assert_status(200);
    assert_eq!(jwks.fetches(), 1, "keys are fetched on first use");

    // Entra rotates: key b appears. The first token naming it causes exactly one fetch.
    jwks.publish(&[&a, &b]);
    probe(&app, "entra", bearer(&token_b))
        .await
        .assert_status(200);
    assert_eq!(jwks.fetches(), 2);
    probe(&app, "entra", bearer(&token_a))
        .await
        .assert_status(200);
    probe(&app, "entra", bearer(&token_b))
        .await
        .assert_status(200);
    assert_eq!(jwks.fetches(), 2, "known keys come from the cache");

    // A kid the tenant does not have: one refresh, then 401.
    let forged = sign(&key("c"), Some("not-a-tenant-key"), &claims);
    assert_401(&probe(&app, "entra", bearer(&forged)).await, &[BEARER]);
    assert_eq!(jwks.fetches(), 3);
}

#[tokio::test]
async fn c81_forged_kids_do_not_cause_a_jwks_refresh_storm() {
    let jwks = JwksServer::start(&[&key("a")]).await;
    // The default: at most one fetch per 60 s per JWKS URL.
    let app = TestApp::spawn_with(|s| entra(s, &jwks)).await;
    let claims = entra_claims(TENANT);
    let c = key("c");
    let forged: Vec<String> = (0..20)
        .map(|i| sign(&c, Some(&format!("forged-{i}")), &claims))
        .collect();
    // Twenty concurrent requests with unknown kids, before any key is cached: one fetch.
    let answers =
        futures::future::join_all(forged.iter().map(|t| probe(&app, "entra", bearer(t)))).await;
    for r in &answers {
        assert_401(r, &[BEARER]);
    }
    assert_eq!(jwks.fetches(), 1);
    let a = key("a");
    probe(&app, "entra", bearer(&sign(&a, Some(&a.kid), &claims)))
        .await
        .assert_status(200);
    assert_eq!(jwks.fetches(), 1);
}

#[tokio::test]
async fn c81_cached_keys_keep_working_while_the_jwks_endpoint_is_down() {
    let jwks = JwksServer::start(&[&key("a")]).await;
    let app = TestApp::spawn_with(|s| {
        entra(s, &jwks);
        // Keys are stale at once, so every request tries a fetch.
        s.auth.jwks_max_age = Dur(Duration::ZERO);
        s.auth.jwks_min_refresh = Dur(Duration::ZERO);
    })
    .await;
    let a = key("a");
    let token = sign(&a, Some(&a.kid), &entra_claims(TENANT));
    probe(&app, "entra", bearer(&token))
        .await
        .assert_status(200);
    jwks.set_failing(true);
    probe(&app, "entra", bearer(&token))
        .await
        .assert_status(200);
    assert_eq!(jwks.fetches(), 2, "the failed fetch was attempted");
}
