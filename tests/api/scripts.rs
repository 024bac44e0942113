//! Scripts in a box (issue 8 item 6): a mapping script that loops to its deadline for every
//! user, or explodes a string, fails that user's field with a clear error and delays no SCIM
//! request: mappings with scripts run on the dedicated script threads.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{LogCapture, TestApp};

const DEADLINE_MS: u64 = 250;
const USERS: usize = 8;

#[tokio::test]
async fn a_looping_script_in_the_feed_does_not_stall_a_concurrent_scim_get() {
    let app = TestApp::spawn_with_connector(|c| {
        c.mapping = toml::from_str(&format!(
            r#"
[script]
max_operations = 0          # unlimited: only the wall-clock deadline can stop it
timeout_ms = {DEADLINE_MS}
[[fields]]
name = "looping"
source = "userName"
transforms = [{{ op = "script", code = "loop {{}}" }}]
[[fields]]
name = "exploding"
source = "userName"
transforms = [{{ op = "script", code = 'let v = value; v.replace("", v); v.replace("", v); v' }}]
"#
        ))
        .unwrap();
    })
    .await;
    for i in 0..USERS {
        app.user(&format!("looper{i}@example.com")).await;
    }
    let logs = LogCapture::start();
    // Every user's looping field runs to its deadline: the feed takes USERS × DEADLINE_MS.
    let started = Instant::now();
    let feed = {
        let (client, url) = (app.client.clone(), app.feed_url());
        tokio::spawn(async move {
            let body = client.get(url).send().await.unwrap().text().await.unwrap();
            (Instant::now(), body)
        })
    };
    // Give the feed time to start mapping, then ask for a user while it does.
    tokio::time::sleep(Duration::from_millis(DEADLINE_MS)).await;
    let r = app
        .get("/Users?filter=userName%20eq%20%22looper0@example.com%22")
        .await;
    let get_done = started.elapsed();
    r.assert_status(200);
    assert_eq!(r.body["totalResults"], json!(1));
    let (feed_done, body) = feed.await.unwrap();
    let feed_done = feed_done - started;
    // Relative, not absolute: the GET was answered in the first half of the time the
    // scripts ran (had they run on the request threads, not before they all ended).
    assert!(
        get_done * 2 < feed_done,
        "the GET was answered after {get_done:?}, the feed after {feed_done:?}"
    );
    // The users are still in the feed, without the failed fields.
    assert_eq!(body.matches("<username>").count(), USERS, "{body}");
    assert!(
        !body.contains("<looping>") && !body.contains("<exploding>"),
        "{body}"
    );
    let log = logs.text();
    assert!(
        log.contains(&format!("feed.failed_fields={}", 2 * USERS)),
        "{log}"
    );
}
