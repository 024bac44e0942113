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

// The sandbox's memory bounds, measured: nextest runs each test in its own process, so the
// peak resident size (`VmHWM`) is this test's. Here rather than next to the sandbox because
// `mapping/` may not do I/O, not even in its tests (scripts/layering).

use usersync::mapping::script::{Sandbox, ScriptLimits};

fn run_with(sandbox: &Sandbox, code: &str, values: &[&str]) -> Result<Vec<String>, String> {
    let script = sandbox.compile(code).map_err(|e| e.to_string())?;
    let values: Vec<String> = values.iter().map(|s| s.to_string()).collect();
    let user = json!({"userName": "ada@example.com"})
        .as_object()
        .cloned()
        .unwrap_or_default();
    sandbox
        .run(&script, &values, &user)
        .map_err(|e| e.to_string())
}

/// Peak resident memory of this process (`VmHWM`), in KiB. nextest runs each test in a
/// process of its own, so the peak is this test's.
fn peak_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

#[test]
fn an_exploding_replace_fails_before_allocating() {
    let s = Sandbox::new(ScriptLimits {
        max_operations: 0,
        timeout_ms: 60_000,
        ..ScriptLimits::default()
    });
    let before = peak_kib();
    // 16 KiB of "a", each replaced by 16 KiB: 256 MiB if it were built.
    let value = "a".repeat(16 * 1024);
    let e = run_with(&s, "value.replace(\"a\", value)", &[&value]).unwrap_err();
    assert!(e.contains("larger than allowed"), "{e}");
    let e = run_with(&s, "value.replace(\"\", \"0123456789\")", &[&value]).unwrap_err();
    assert!(e.contains("larger than allowed"), "{e}");
    let e = run_with(&s, "value.replace('a', value)", &[&value]).unwrap_err();
    assert!(e.contains("larger than allowed"), "{e}");
    let grown_mib = peak_kib().saturating_sub(before) / 1024;
    assert!(grown_mib < 32, "the peak grew by {grown_mib} MiB");
    // Within bounds, replace works as Rhai's does, in every combination.
    assert_eq!(
        run_with(&s, "let t = value; t.replace(\"b\", \"[b]\"); t.replace('c', '*'); t.replace('a', \"A\"); t.replace(\"d\", 'D'); t", &["abcd"]).unwrap(),
        ["A[b]*D"]
    );
}

#[test]
fn a_map_grown_item_by_item_is_stopped_before_it_takes_the_memory() {
    let s = Sandbox::new(ScriptLimits {
        timeout_ms: 60_000,
        ..ScriptLimits::default()
    });
    let before = peak_kib();
    let e = run_with(
        &s,
        "let m = #{}; let s = value; s.pad(60000, 'y'); let i = 0; \
         loop { m[`${i}`] = s + i; i += 1; }",
        &["x"],
    )
    .unwrap_err();
    assert!(e.contains("larger than allowed"), "{e}");
    let grown_mib = peak_kib().saturating_sub(before) / 1024;
    assert!(grown_mib < 32, "the peak grew by {grown_mib} MiB");
    // The user is read-only.
    let e = run_with(&s, "user.userName = \"x\"", &[]).unwrap_err();
    assert!(e.to_lowercase().contains("constant"), "{e}");
}
