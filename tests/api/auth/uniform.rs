//! Every 401 is the same, byte for byte, whatever the connector offers and whether it exists
//! (issue 8 item 7): the answer depends on the request only (a Basic challenge answers a
//! Basic attempt), so a prober learns neither connector names nor their modes.

use reqwest::Method;
use serde_json::json;

use super::{auth, basic_auth, bearer, call, declare};
use crate::helpers::{Opts, TestApp, TestResponse};

/// Status, headers (but the request id and date, which differ on every answer) and body.
fn wire(r: &TestResponse) -> (u16, Vec<(String, String)>, String) {
    let mut headers: Vec<(String, String)> = r
        .headers
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "x-request-id" | "date"))
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    headers.sort();
    (r.status, headers, r.text.clone())
}

#[tokio::test]
async fn every_401_is_byte_identical_across_existing_and_unknown_connectors() {
    let app = TestApp::spawn_with(|s| {
        declare(
            s,
            "okta",
            r#"
            token_env = "UNIFORM_T"
            basic = { username = "okta", password_env = "UNIFORM_PW" }
            "#,
            &[
                ("UNIFORM_T", "uniform-token"),
                ("UNIFORM_PW", "uniform-password"),
            ],
        );
        declare(
            s,
            "ping",
            r#"
            [oauth]
            client_id = "uniform-client"
            client_secret_env = "UNIFORM_SECRET"
            "#,
            &[("UNIFORM_SECRET", "uniform-client-secret")],
        );
    })
    .await;
    // Basic + bearer (declared), OAuth only (declared), bearer only (stored by the CLI),
    // and no connector at all.
    let connectors = ["okta", "ping", "idp", "nobody"];
    let jwt_like = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
    let attempts: Vec<(&str, Opts)> = vec![
        ("none", auth("")),
        ("empty bearer", auth("Bearer")),
        ("wrong bearer", bearer("not-a-token")),
        ("jwt-like bearer", bearer(jwt_like)),
        ("wrong basic", basic_auth("okta", "wrong")),
        (
            "basic of another",
            basic_auth("someone", "uniform-password"),
        ),
        ("malformed basic", auth("Basic %%%")),
        ("unknown scheme", auth("Digest username=\"x\"")),
    ];
    for (what, opts) in attempts {
        for (method, path, body) in [
            (Method::GET, "/Users?filter=userName%20eq%20%22x%22", None),
            (Method::POST, "/Users", Some(json!({"userName": "u"}))),
            (Method::GET, "/ServiceProviderConfig", None),
        ] {
            let mut seen = Vec::new();
            for c in connectors {
                let r = call(&app, method.clone(), c, path, body.clone(), opts.clone()).await;
                assert_eq!(r.status, 401, "{what} {method} {path} on {c}: {}", r.text);
                seen.push((c, wire(&r)));
            }
            for (c, w) in &seen[1..] {
                assert_eq!(
                    w, &seen[0].1,
                    "{what} {method} {path}: {c} answers differently from {}",
                    seen[0].0
                );
            }
        }
    }
}
