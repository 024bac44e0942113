//! Back-pressure: when delivery falls behind, SCIM writes get 429 with Retry-After, never 5xx.

use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn c37_a_saturated_sync_queue_turns_writes_into_429_with_retry_after() {
    let app = TestApp::spawn_with(|s| s.backpressure.max_queue_depth = 2).await;
    // No delivery worker drains the queue in this test, so three writes saturate it.
    for n in ["bp1", "bp2", "bp3"] {
        app.user(n).await;
    }
    app.state_refresh().await;
    let r = app.post("/Users", json!({"userName": "bp4"})).await;
    r.assert_scim_error(429, None);
    assert_eq!(r.header("retry-after"), Some("30"));
    // Reads keep working, and nothing was written.
    let list = app.get("/Users").await;
    list.assert_status(200);
    assert_eq!(list.body["totalResults"], 3);
}
