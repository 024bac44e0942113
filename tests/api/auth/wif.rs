//! Workload identity federation: an Entra-signed client assertion at the token endpoint
//! (docs/reference/idp-behaviour.md §2.9 item 5, MSREF-WIF; c83).

use serde_json::{json, Value};

use super::{
    assert_oauth_error, assert_token, bearer, declare, key, now, probe, sign, token_request, with,
    JwksServer, OTHER_TENANT, TENANT,
};
use crate::helpers::TestApp;

const AUDIENCE: &str = "api://b5ba7a93-4452-4522-aeb4-a2b5da870c16";
const SUBJECT: &str = "6f4e2d1c-0b9a-4887-a6f5-e4d3c2b1a090";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn assertion_claims() -> Value {
    json!({
        "iss": format!("https://login.microsoftonline.com/{TENANT}/v2.0"),
        "aud": AUDIENCE,
        "sub": SUBJECT,
        "tid": TENANT,
        "oid": "d2f8ee76-c549-45b8-a143-f5b640669704",
        "iat": now() - 30,
        "nbf": now() - 30,
        "exp": now() + 3600,
        "ver": "2.0",
    })
}

#[tokio::test]
async fn c83_wif_client_assertion_gets_a_token_and_wrong_sub_tid_aud_iss_are_invalid_client() {
    let jwks = JwksServer::start(&[&key("a")]).await;
    let app = TestApp::spawn_with(|s| {
        declare(
            s,
            "gallery",
            &format!(
                r#"
                [oauth]
                client_id = "usersync-gallery-client"
                [oauth.wif]
                tenant_id = "{TENANT}"
                audience = "{AUDIENCE}"
                subject = "{SUBJECT}"
                jwks_url = "{}"
                "#,
                jwks.url
            ),
            &[],
        );
        declare(
            s,
            "secretonly",
            r#"
            [oauth]
            client_id = "secret-only-client"
            client_secret_env = "C83_SECRET"
            "#,
            &[("C83_SECRET", "c83-secret")],
        );
    })
    .await;
    let a = key("a");
    let request = |connector: &'static str, assertion: String, client_id: Option<&'static str>| {
        let app = &app;
        async move {
            let mut form = vec![
                ("grant_type", "client_credentials"),
                ("client_assertion_type", ASSERTION_TYPE),
                ("scope", "scim"),
            ];
            if let Some(id) = client_id {
                form.push(("client_id", id));
            }
            form.push(("client_assertion", assertion.as_str()));
            token_request(app, connector, &form, None).await
        }
    };
    // As MSREF-WIF shows Entra's request: grant, client id, assertion type, assertion, scope.
    let good = sign(&a, Some(&a.kid), &assertion_claims());
    let r = request("gallery", good.clone(), Some("usersync-gallery-client")).await;
    let access = assert_token(&r);
    probe(&app, "gallery", bearer(&access))
        .await
        .assert_status(200);
    // client_id is optional with an assertion (RFC 7523 §3).
    assert_token(&request("gallery", good.clone(), None).await);

    let refused = [
        with(assertion_claims(), json!({"sub": "another-workload"})),
        with(assertion_claims(), json!({"sub": null})),
        with(assertion_claims(), json!({"tid": OTHER_TENANT})),
        with(assertion_claims(), json!({"tid": null})),
        with(assertion_claims(), json!({"aud": "api://another-app"})),
        with(
            assertion_claims(),
            json!({"iss": format!("https://login.microsoftonline.com/{OTHER_TENANT}/v2.0")}),
        ),
        // The v1 issuer of the same tenant is not the v2 issuer WIF uses.
        with(
            assertion_claims(),
            json!({"iss": format!("https://sts.windows.net/{TENANT}/")}),
        ),
        with(assertion_claims(), json!({"exp": now() - 3600})),
        with(assertion_claims(), json!({"nbf": now() + 3600})),
    ];
    for claims in &refused {
        let r = request("gallery", sign(&a, Some(&a.kid), claims), None).await;
        assert_oauth_error(&r, 401, "invalid_client");
    }
    // Signed by an unpublished key; or naming another client id.
    let forged = sign(&key("c"), Some(&a.kid), &assertion_claims());
    assert_oauth_error(
        &request("gallery", forged, None).await,
        401,
        "invalid_client",
    );
    let r = request("gallery", good.clone(), Some("secret-only-client")).await;
    assert_oauth_error(&r, 401, "invalid_client");
    // A connector without wif refuses assertions; a wif-only connector refuses secrets.
    let r = request("secretonly", good, Some("secret-only-client")).await;
    assert_oauth_error(&r, 401, "invalid_client");
    let r = token_request(
        &app,
        "gallery",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "usersync-gallery-client"),
            ("client_secret", "anything"),
        ],
        None,
    )
    .await;
    assert_oauth_error(&r, 401, "invalid_client");
}

/// Entra's screen shows the workload identity's audience with the scope suffix,
/// `api://{appId}/.default`; the assertion carries `api://{appId}` (or, in a v2.0 token, the
/// bare app id). A connector configured with what the screen shows accepts the assertion, and
/// still refuses another app's audience.
#[tokio::test]
async fn a_wif_audience_configured_with_default_suffix_accepts_the_assertion_without_it() {
    let jwks = JwksServer::start(&[&key("a")]).await;
    let app_id = AUDIENCE.trim_start_matches("api://");
    let app = TestApp::spawn_with(|s| {
        declare(
            s,
            "entra",
            &format!(
                r#"
                [oauth]
                client_id = "usersync-entra-client"
                [oauth.wif]
                tenant_id = "{TENANT}"
                audience = "{AUDIENCE}/.default"
                subject = "{SUBJECT}"
                jwks_url = "{}"
                "#,
                jwks.url
            ),
            &[],
        );
    })
    .await;
    let a = key("a");
    let request = |aud: &str| {
        let assertion = sign(
            &a,
            Some(&a.kid),
            &with(assertion_claims(), json!({ "aud": aud })),
        );
        let app = &app;
        async move {
            token_request(
                app,
                "entra",
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", "usersync-entra-client"),
                    ("client_assertion_type", ASSERTION_TYPE),
                    ("client_assertion", assertion.as_str()),
                    ("scope", "scim"),
                ],
                None,
            )
            .await
        }
    };
    for carried in [
        AUDIENCE.to_owned(),
        format!("{AUDIENCE}/.default"),
        app_id.to_owned(),
    ] {
        let r = request(&carried).await;
        let access = assert_token(&r);
        probe(&app, "entra", bearer(&access))
            .await
            .assert_status(200);
    }
    for other in [
        "api://0e2d4c6a-8b1f-4e3d-9c7b-5a6f8e9d0c1b",
        "0e2d4c6a-8b1f-4e3d-9c7b-5a6f8e9d0c1b",
        "api://another-app/.default",
    ] {
        assert_oauth_error(&request(other).await, 401, "invalid_client");
    }
}
