//! Static bearer tokens from the configuration (docs/reference/idp-behaviour.md §2.9 item 1, §3.5
//! item 1).

use reqwest::Method;

use super::{assert_401, auth, bearer, call, declare, probe, BEARER};
use crate::helpers::TestApp;

#[tokio::test]
async fn c80_static_tokens_rotate_and_wrong_token_is_401() {
    // Rotation step 1: the new token is listed next to the old one; both work.
    let app = TestApp::spawn_with(|s| {
        declare(
            s,
            "entra",
            r#"token_env = ["C80_NEW", "C80_OLD"]"#,
            &[
                ("C80_NEW", "new-secret-token-80"),
                ("C80_OLD", "old-secret-token-80"),
            ],
        );
    })
    .await;
    probe(&app, "entra", bearer("new-secret-token-80"))
        .await
        .assert_status(200);
    let r = probe(&app, "entra", bearer("old-secret-token-80")).await;
    r.assert_status(200);
    assert_eq!(r.body["totalResults"], 0);
    assert_401(
        &probe(&app, "entra", bearer("wrong-token")).await,
        &[BEARER],
    );
    assert_401(&probe(&app, "entra", auth("")).await, &[BEARER]);
    assert_401(&probe(&app, "entra", auth("Bearer")).await, &[BEARER]);
    drop(app);

    // Step 2: the old variable is removed from the list; the old token stops working.
    let app = TestApp::spawn_with(|s| {
        declare(
            s,
            "entra",
            r#"token_env = "C80_NEW""#,
            &[("C80_NEW", "new-secret-token-80")],
        );
    })
    .await;
    probe(&app, "entra", bearer("new-secret-token-80"))
        .await
        .assert_status(200);
    assert_401(
        &probe(&app, "entra", bearer("old-secret-token-80")).await,
        &[BEARER],
    );
}

#[tokio::test]
async fn c104_okta_header_token_authenticates_the_connector_test_and_spec_calls() {
    let app = TestApp::spawn_with(|s| {
        declare(
            s,
            "okta",
            r#"token_env = "C104_TOKEN""#,
            &[("C104_TOKEN", "okta-header-token-104")],
        );
    })
    .await;
    let okta = || bearer("okta-header-token-104");
    // Okta's "Test Connector Configuration" calls (OKTA-REF).
    let r = call(
        &app,
        Method::GET,
        "okta",
        "/Users?startIndex=1&count=2",
        None,
        okta(),
    )
    .await;
    r.assert_status(200);
    let r = call(
        &app,
        Method::GET,
        "okta",
        "/Groups?startIndex=1&count=100",
        None,
        okta(),
    )
    .await;
    r.assert_status(200);
    // Okta's SPEC test #11: an invalid credential gets 401 with a SCIM error body whose
    // status is the string "401".
    let r = call(&app, Method::GET, "okta", "/Users", None, auth("non-token")).await;
    assert_401(&r, &[BEARER]);
    assert_eq!(r.body["status"], "401");
}

#[tokio::test]
async fn unknown_connector_and_wrong_token_get_the_same_401() {
    let app = TestApp::spawn_with(|s| {
        declare(
            s,
            "entra",
            r#"token_env = "SAME_T""#,
            &[("SAME_T", "same-401-token")],
        );
    })
    .await;
    let wrong = probe(&app, "entra", bearer("not-the-token")).await;
    let unknown = probe(&app, "nonexistent", bearer("same-401-token")).await;
    assert_401(&wrong, &[BEARER]);
    assert_401(&unknown, &[BEARER]);
    assert_eq!(wrong.text, unknown.text);
}
