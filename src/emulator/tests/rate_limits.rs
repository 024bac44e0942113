//! docs/emulator.md test scenario 5: rate limiting with Confluence's headers.

use axum::http::StatusCode;

use super::{Req, TestApp, ALICE_PAT};
use crate::emulator::{RateLimitKnobs, RateLimitMode};

fn limited(app: &TestApp, mode: RateLimitMode) {
    let mut knobs = app.emu.knobs();
    knobs.rate_limit = RateLimitKnobs {
        mode,
        capacity: 2,
        fill_rate: 1,
        interval_s: 30,
        exempt: vec!["admin".to_owned()],
    };
    app.emu.set_knobs(knobs);
}

#[tokio::test]
async fn an_exhausted_bucket_answers_429_with_retry_after() {
    let app = TestApp::new();
    limited(&app, RateLimitMode::Limit);
    let first = app
        .call(Req::get("/rest/api/user/current").bearer(ALICE_PAT))
        .await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.header("x-ratelimit-limit"), Some("2"));
    assert_eq!(first.header("x-ratelimit-remaining"), Some("1"));
    assert_eq!(first.header("x-ratelimit-interval-seconds"), Some("30"));
    assert_eq!(first.header("x-ratelimit-fillrate"), Some("1"));
    assert_eq!(first.header("retry-after"), Some("0"));
    let second = app
        .call(Req::get("/rest/api/user/current").bearer(ALICE_PAT))
        .await;
    assert_eq!(second.header("x-ratelimit-remaining"), Some("0"));
    let third = app
        .call(Req::get("/rest/api/user/current").bearer(ALICE_PAT))
        .await;
    assert_eq!(third.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(third.header("x-ratelimit-remaining"), Some("0"));
    let retry: u64 = third
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("a numeric Retry-After");
    assert!((1..=30).contains(&retry), "retry after {retry}");
    assert_eq!(third.json()["statusCode"], 429);
    // The 429 is in the call log with the user.
    let last = app.emu.calls().pop().expect("logged");
    assert_eq!(
        (last.status, last.user.as_deref()),
        (Some(429), Some("alice"))
    );
}

#[tokio::test]
async fn block_all_answers_429_with_long_max_value() {
    let app = TestApp::new();
    limited(&app, RateLimitMode::BlockAll);
    let resp = app
        .call(Req::get("/rest/api/user/current").bearer(ALICE_PAT))
        .await;
    assert_eq!(resp.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.header("retry-after"), Some("9223372036854775807"));
    assert_eq!(resp.header("x-ratelimit-limit"), Some("0"));
    assert_eq!(resp.header("x-ratelimit-fillrate"), Some("0"));
}

#[tokio::test]
async fn exempt_users_and_anonymous_calls_are_not_limited() {
    let app = TestApp::new();
    limited(&app, RateLimitMode::BlockAll);
    let admin = app.call(Req::get("/rest/api/user/current").admin()).await;
    assert_eq!(admin.status, StatusCode::OK);
    assert_eq!(admin.header("x-ratelimit-limit"), None);
    let anonymous = app.call(Req::get("/rest/api/user/current")).await;
    assert_eq!(anonymous.status, StatusCode::OK);
    assert_eq!(anonymous.header("retry-after"), None);
}
