//! Failure classification over real TCP: rate limiting (docs/emulator.md test scenario 5), 5xx,
//! resets, outages, timeouts, 4xx bodies, and non-JSON error bodies.

use std::time::{Duration, Instant};

use super::{class_of, Harness};
use crate::emulator::{Fault, OutageMode, RateLimitKnobs, RateLimitMode, SeedUser};
use crate::targets::confluence::{ConfluenceAuth, ConfluenceClient, Secret, RETRY_AFTER_CAP};
use crate::targets::{ErrorClass, BODY_LIMIT};

fn rate_limit(h: &Harness, mode: RateLimitMode) {
    h.knobs(|k| {
        k.rate_limit = RateLimitKnobs {
            mode,
            capacity: 1,
            fill_rate: 1,
            interval_s: 30,
            exempt: vec![],
        };
    });
}

#[tokio::test]
async fn a_429_carries_the_retry_after_confluence_sent() {
    let h = Harness::start().await;
    rate_limit(&h, RateLimitMode::Limit);
    h.admin()
        .current_user()
        .await
        .expect("the bucket's only token");
    // A client that has not seen the rate-limit headers yet (a second process with the same
    // account) sends the call and gets the 429.
    let (class, e) = class_of(h.admin().get_user("alice").await);
    assert_eq!(class, ErrorClass::RateLimited, "{e}");
    assert_eq!(e.status(), Some(429));
    let wait = e.retry_after().expect("a Retry-After");
    assert!(
        (Duration::from_secs(1)..=Duration::from_secs(30)).contains(&wait),
        "{wait:?}"
    );
    assert!(e.is_retryable());
}

#[tokio::test]
async fn the_client_paces_itself_by_the_rate_limit_headers_instead_of_running_into_429() {
    let h = Harness::start().await;
    h.knobs(|k| {
        k.rate_limit = RateLimitKnobs {
            mode: RateLimitMode::Limit,
            capacity: 3,
            fill_rate: 20,
            interval_s: 1,
            exempt: vec![],
        };
    });
    let c = h.admin();
    h.emu.clear_calls();
    // Three times the bucket, at 20 per second: paced, never refused.
    for _ in 0..9 {
        c.current_user().await.expect("paced, not refused");
    }
    let calls = h.calls();
    assert_eq!(calls.len(), 9);
    assert!(calls.iter().all(|c| c.status == Some(200)), "{calls:?}");
    // A bucket that refills only every 30 s: the next call would wait too long, so it is not
    // sent and fails as rate limited, with the wait.
    rate_limit(&h, RateLimitMode::Limit);
    c.current_user().await.expect("the new bucket's only token");
    h.emu.clear_calls();
    let (class, e) = class_of(c.get_user("alice").await);
    assert_eq!(class, ErrorClass::RateLimited, "{e}");
    assert_eq!(e.status(), None, "not sent");
    assert!(e.to_string().contains("not sent"), "{e}");
    let wait = e.retry_after().expect("the wait");
    assert!(wait > Duration::from_secs(20), "{wait:?}");
    assert!(h.calls().is_empty(), "Confluence saw no request");
}

#[tokio::test]
async fn block_all_sends_an_absurd_retry_after_that_is_clamped() {
    let h = Harness::start().await;
    rate_limit(&h, RateLimitMode::BlockAll);
    let (class, e) = class_of(h.admin().disable_user("alice").await);
    assert_eq!(class, ErrorClass::RateLimited, "{e}");
    assert_eq!(e.retry_after(), Some(RETRY_AFTER_CAP));
    assert!(e.to_string().contains("block all"), "{e}");
}

#[tokio::test]
async fn a_one_shot_503_is_rate_limited_with_retry_after_and_transient_without() {
    let h = Harness::start().await;
    let c = h.admin();
    h.emu.arm_fault(
        Fault::status(503)
            .with_retry_after(2)
            .times(1)
            .on("PUT", "/rest/api/admin/user/*"),
    );
    let (class, e) = class_of(c.disable_user("alice").await);
    assert_eq!(class, ErrorClass::RateLimited, "{e}");
    assert_eq!(e.retry_after(), Some(Duration::from_secs(2)));
    assert_eq!(e.call().template, "/rest/api/admin/user/{username}/disable");
    c.disable_user("alice")
        .await
        .expect("the fault was one-shot");

    h.emu
        .arm_fault(Fault::status(503).on("PUT", "/rest/api/admin/user/*"));
    let (class, e) = class_of(c.enable_user("alice").await);
    assert_eq!(class, ErrorClass::Transient, "{e}");
    assert_eq!(e.retry_after(), None);
    h.emu.arm_fault(Fault::status(500));
    let (class, _) = class_of(c.get_user("alice").await);
    assert_eq!(class, ErrorClass::Transient);
}

#[tokio::test]
async fn a_connection_reset_is_transient() {
    let h = Harness::start().await;
    let c = h.admin();
    h.emu.arm_fault(Fault::reset().on("PUT", "*/disable"));
    let (class, e) = class_of(c.disable_user("alice").await);
    assert_eq!(class, ErrorClass::Transient, "{e}");
    assert_eq!(e.status(), None);
    assert!(
        !e.to_string().contains("127.0.0.1"),
        "no URL in the text: {e}"
    );
    c.disable_user("alice").await.expect("the next call works");
}

#[tokio::test]
async fn an_outage_is_transient_whether_it_answers_503_or_refuses_connections() {
    let h = Harness::start().await;
    let c = h.admin();
    h.emu.arm_fault(Fault::outage(
        Duration::from_millis(300),
        OutageMode::ServiceUnavailable,
    ));
    let (class, e) = class_of(c.get_user("alice").await);
    assert_eq!(class, ErrorClass::Transient, "{e}");
    assert_eq!(e.status(), Some(503));
    assert!(e
        .failure()
        .body
        .as_deref()
        .is_some_and(|b| b.contains("<html>")));
    h.emu.clear_faults();

    // A fresh client, so no pooled keep-alive connection hides the refused connects.
    let fresh = h.admin();
    h.emu.arm_fault(Fault::outage(
        Duration::from_millis(400),
        OutageMode::Refuse,
    ));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (class, e) = class_of(fresh.get_user("alice").await);
    assert_eq!(class, ErrorClass::Transient, "{e}");
    assert_eq!(e.status(), None);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        fresh.get_user("alice").await.is_ok(),
        "back after the outage"
    );
}

#[tokio::test]
async fn nothing_listening_is_transient() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("an address");
    drop(listener);
    let c = ConfluenceClient::new(crate::targets::confluence::ConfluenceConfig::new(
        format!("http://{addr}"),
        ConfluenceAuth::Pat(Secret::new("x")),
    ))
    .expect("a client");
    let (class, e) = class_of(c.current_user().await);
    assert_eq!(class, ErrorClass::Transient, "{e}");
    assert!(e.to_string().contains("could not connect"), "{e}");
}

#[tokio::test]
async fn an_answer_slower_than_the_request_timeout_is_transient() {
    let h = Harness::start().await;
    h.knobs(|k| k.latency.global_ms = 1_000);
    let mut config = h.config(ConfluenceAuth::Pat(Secret::new(super::ADMIN_PAT)));
    config.request_timeout = Duration::from_millis(200);
    let c = ConfluenceClient::new(config).expect("a client");
    let started = Instant::now();
    let (class, e) = class_of(c.get_user("alice").await);
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "gave up in time"
    );
    assert_eq!(class, ErrorClass::Transient, "{e}");
    assert!(e.to_string().contains("timeout"), "{e}");
}

#[tokio::test]
async fn a_400_is_permanent_and_keeps_a_truncated_body() {
    let h = Harness::start().await;
    // A read-only-directory user with a very long name: the 400 echoes the name.
    let long_name = format!("ldap.{}", "x".repeat(5_000));
    h.emu
        .add_user(
            &serde_json::from_value::<SeedUser>(serde_json::json!({
                "username": long_name, "directory": "ldap-readonly"
            }))
            .expect("a seed user"),
        )
        .expect("added");
    let (class, e) = class_of(h.admin().disable_user(&long_name).await);
    assert_eq!(class, ErrorClass::Permanent, "{e}");
    assert_eq!(e.status(), Some(400));
    let body = e.failure().body.clone().expect("a body");
    assert!(body.len() <= BODY_LIMIT + 64, "{} bytes", body.len());
    assert!(body.contains("[truncated"), "{body}");
    assert!(body.starts_with("{\"statusCode\":400"), "{body}");
    assert!(
        !e.to_string().contains("xxxxxxxx"),
        "no username in the text"
    );
}

#[tokio::test]
async fn a_validation_400_keeps_confluence_s_reason_in_the_body_and_no_request_body() {
    let h = Harness::start().await;
    let (class, e) = class_of(
        h.admin()
            .create_user("jdoe", "Jane <b>Doe</b>", "jane@example.org")
            .await,
    );
    assert_eq!(class, ErrorClass::Permanent, "{e}");
    let body = e.failure().body.clone().unwrap_or_default();
    assert!(body.contains("should not contain < or >"), "{body}");
    assert!(!body.contains("notifyViaEmail"), "{body}");
    assert!(!e.to_string().contains("Jane"), "{e}");
    assert!(!format!("{e:?}").contains("password\":"), "{e:?}");
}

#[tokio::test]
async fn no_licence_seat_left_is_permanent_and_names_the_licence() {
    let h = Harness::start().await;
    h.knobs(|k| k.licence_seats = Some(1));
    let (class, e) = class_of(
        h.admin()
            .create_user("jdoe", "Jane Doe", "jane@example.org")
            .await,
    );
    assert_eq!(class, ErrorClass::Permanent, "{e}");
    assert_eq!(e.status(), Some(402));
    assert!(e.to_string().contains("licence seat"), "{e}");
}

#[tokio::test]
async fn plain_text_error_bodies_are_tolerated() {
    let h = Harness::start().await;
    h.knobs(|k| k.plain_text_errors_ratio = 1.0);
    let c = h.admin();
    assert_eq!(c.get_user("ghost").await.expect("a lookup"), None);
    let (class, e) = class_of(c.disable_user("ghost").await);
    assert_eq!(class, ErrorClass::NotFound, "{e}");
    assert_eq!(
        e.failure().body.as_deref(),
        Some("No user found with username: ghost")
    );
}

#[tokio::test]
async fn an_html_404_on_a_read_means_a_wrong_base_url_not_a_missing_user() {
    let h = Harness::start().await;
    let mut config = h.config(ConfluenceAuth::Pat(Secret::new(super::ADMIN_PAT)));
    config.base_url.push_str("/wrong-context");
    let c = ConfluenceClient::new(config).expect("a client");
    let (class, e) = class_of(c.get_user("alice").await);
    assert_eq!(class, ErrorClass::Unsupported, "{e}");
    assert!(e.to_string().contains("base_url"), "{e}");
}
