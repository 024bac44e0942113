use std::time::Duration;

use super::*;

fn line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.lines().find(|l| l.starts_with(prefix))
}

#[test]
fn series_are_encoded_with_their_labels_and_prefix() {
    let m = Metrics::new();
    m.scim_request(&ScimRequest {
        connector: "okta",
        route: "/scim/v2/{connector}/Users",
        method: "POST",
        status: 201,
        elapsed: Duration::from_millis(3),
    });
    m.delivery_outcome("okta", "delivered", "none");
    m.delivered("okta", "user", false, Duration::from_millis(20));
    m.target_call(
        "confluence",
        "PUT /rest/api/admin/user/{username}/disable",
        "ok",
        Duration::from_millis(2),
    );
    let text = m.encode();
    assert!(
        text.contains("# TYPE usersync_scim_requests_total counter"),
        "{text}"
    );
    assert!(
        line(&text, "usersync_scim_requests_total{").is_some_and(|l| l
            .contains("connector=\"okta\"")
            && l.contains("route=\"/scim/v2/:connector/Users\"")
            && l.contains("status=\"201\"")
            && l.ends_with(" 1")),
        "{text}"
    );
    assert!(text.contains(
        "usersync_delivery_commit_to_delivered_seconds_count{connector=\"okta\",kind=\"user\",active=\"false\"} 1"
    ), "{text}");
    assert!(
        text.contains("call=\"PUT /rest/api/admin/user/:username/disable\""),
        "{text}"
    );
}

#[test]
fn queue_gauges_are_replaced_by_each_scrape() {
    let m = Metrics::new();
    let q = |c: &str, dead| QueueGauge {
        connector: c.into(),
        pending: 2,
        waiting: 0,
        dead,
        oldest_pending: Duration::from_secs(3),
    };
    m.set_queue(&[q("a", 1), q("b", 0)]);
    m.set_queue(&[q("b", 4)]);
    let text = m.encode();
    assert!(!text.contains("connector=\"a\""), "{text}");
    assert!(
        text.contains("usersync_queue_dead_keys{connector=\"b\"} 4"),
        "{text}"
    );
    assert!(
        text.contains("usersync_queue_oldest_pending_age_seconds{connector=\"b\"} 3"),
        "{text}"
    );
    m.clear_queue();
    assert!(!m.encode().contains("connector=\"b\""));
}

#[test]
fn a_feed_counts_as_aborted_unless_it_completed() {
    let m = Metrics::new();
    drop(m.feed_started("okta"));
    let mut t = m.feed_started("okta");
    t.complete();
    drop(t);
    let text = m.encode();
    assert!(
        text.contains(
            "usersync_linchpin_feed_generations_total{connector=\"okta\",outcome=\"aborted\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "usersync_linchpin_feed_generations_total{connector=\"okta\",outcome=\"complete\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains("usersync_linchpin_feed_duration_seconds_count{connector=\"okta\"} 1"),
        "{text}"
    );
}
