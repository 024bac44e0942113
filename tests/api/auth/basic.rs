//! HTTP Basic (docs/reference/idp-behaviour.md §3.5 item 2: Okta "Basic Auth"; §7: PingOne).

use reqwest::Method;
use serde_json::json;

use super::{assert_401, auth, basic_auth, bearer, call, declare, probe, BASIC, BEARER};
use crate::helpers::TestApp;

fn okta_basic(s: &mut usersync::config::Settings) {
    declare(
        s,
        "okta",
        r#"
        token_env = "C103_TOKEN"
        basic = { username = "okta-provisioner", password_env = ["C103_PW_NEW", "C103_PW_OLD"] }
        "#,
        &[
            ("C103_TOKEN", "okta-static-103"),
            ("C103_PW_NEW", "correct horse:battery"),
            ("C103_PW_OLD", "previous-password"),
        ],
    );
}

#[tokio::test]
async fn c103_basic_auth_accepts_the_configured_pair_and_wrong_is_401_with_a_basic_challenge() {
    let app = TestApp::spawn_with(okta_basic).await;
    let good = || basic_auth("okta-provisioner", "correct horse:battery");
    probe(&app, "okta", good()).await.assert_status(200);
    let r = call(
        &app,
        Method::POST,
        "okta",
        "/Users",
        Some(json!({"userName": "basic@example.com"})),
        good(),
    )
    .await;
    r.assert_status(201);
    // Either listed password works (rotation); the static token still works beside it.
    probe(
        &app,
        "okta",
        basic_auth("okta-provisioner", "previous-password"),
    )
    .await
    .assert_status(200);
    probe(&app, "okta", bearer("okta-static-103"))
        .await
        .assert_status(200);
    // Wrong password, wrong user name, malformed credentials: 401 with both challenges,
    // since the request tried Basic. No credentials: the Bearer challenge only, as on every
    // connector (the 401 does not tell which connectors offer Basic).
    for opts in [
        basic_auth("okta-provisioner", "wrong"),
        basic_auth("Okta-Provisioner", "correct horse:battery"),
        basic_auth("okta-provisioner", ""),
        auth("Basic %%%not-base64"),
    ] {
        assert_401(&probe(&app, "okta", opts).await, &[BEARER, BASIC]);
    }
    assert_401(&probe(&app, "okta", auth("")).await, &[BEARER]);
}

#[tokio::test]
async fn c103_basic_on_an_unknown_connector_or_one_without_basic_looks_like_a_wrong_password() {
    let app = TestApp::spawn_with(okta_basic).await;
    let wrong = probe(&app, "okta", basic_auth("okta-provisioner", "wrong")).await;
    let unknown = probe(
        &app,
        "nonexistent",
        basic_auth("okta-provisioner", "correct horse:battery"),
    )
    .await;
    // The stored connector `idp` has bearer tokens only.
    let no_basic = probe(
        &app,
        "idp",
        basic_auth("okta-provisioner", "correct horse:battery"),
    )
    .await;
    for r in [&wrong, &unknown, &no_basic] {
        assert_401(r, &[BEARER, BASIC]);
        assert_eq!(r.text, wrong.text);
    }
}
