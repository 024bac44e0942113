//! `/ServiceProviderConfig` lists the authentication schemes of the connector asked.

use reqwest::Method;
use serde_json::Value;

use super::{basic_auth, bearer, call, declare, TENANT};
use crate::helpers::{Opts, TestApp};

fn types(body: &Value) -> Vec<String> {
    body["authenticationSchemes"]
        .as_array()
        .expect("authenticationSchemes")
        .iter()
        .map(|s| s["type"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn service_provider_config_lists_the_schemes_each_connector_offers() {
    let app = TestApp::spawn_with(|s| {
        declare(
            s,
            "all",
            &format!(
                r#"
                token_env = "SCHEMES_T"
                basic = {{ username = "u", password_env = "SCHEMES_PW" }}
                [entra_jwt]
                tenant_id = "{TENANT}"
                jwks_url = "http://127.0.0.1:9/keys"
                [oauth]
                client_id = "schemes-client"
                client_secret_env = "SCHEMES_SECRET"
                "#
            ),
            &[
                ("SCHEMES_T", "schemes-token"),
                ("SCHEMES_PW", "schemes-password"),
                ("SCHEMES_SECRET", "schemes-secret"),
            ],
        );
        declare(
            s,
            "basiconly",
            r#"basic = { username = "u2", password_env = "SCHEMES_PW2" }"#,
            &[("SCHEMES_PW2", "other-password")],
        );
    })
    .await;
    let r = call(
        &app,
        Method::GET,
        "all",
        "/ServiceProviderConfig",
        None,
        bearer("schemes-token"),
    )
    .await;
    r.assert_status(200);
    assert_eq!(types(&r.body), ["oauthbearertoken", "oauth2", "httpbasic"]);
    assert_eq!(r.body["authenticationSchemes"][0]["primary"], true);
    assert_eq!(r.body["authenticationSchemes"][1]["primary"], false);
    let oauth2 = r.body["authenticationSchemes"][1]["description"]
        .as_str()
        .unwrap();
    assert!(oauth2.ends_with("/scim/v2/all/oauth/token"), "{oauth2}");

    let r = call(
        &app,
        Method::GET,
        "basiconly",
        "/ServiceProviderConfig",
        None,
        basic_auth("u2", "other-password"),
    )
    .await;
    r.assert_status(200);
    assert_eq!(types(&r.body), ["httpbasic"]);
    assert_eq!(r.body["authenticationSchemes"][0]["primary"], true);

    // A connector created by the CLI has bearer tokens only.
    let r = app
        .send(Method::GET, "/ServiceProviderConfig", None, Opts::default())
        .await;
    assert_eq!(types(&r.body), ["oauthbearertoken"]);
}
