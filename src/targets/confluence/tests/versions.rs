//! Version detection on every feature level, and the per-version fallbacks (docs/emulator.md test
//! scenario 6).

use super::{class_of, Harness};
use crate::emulator::{ConfluenceVersion, Fault};
use crate::targets::confluence::{Availability, DetectionMethod, Feature, UserUpdated, Version};
use crate::targets::ErrorClass;

const LEVELS: [(ConfluenceVersion, Version); 4] = [
    (ConfluenceVersion::V8_2, Version::new(8, 2, 0)),
    (ConfluenceVersion::V8_4, Version::new(8, 4, 0)),
    (ConfluenceVersion::V9_4, Version::new(9, 4, 0)),
    (ConfluenceVersion::V10_2, Version::new(10, 2, 0)),
];

#[tokio::test]
async fn the_manifest_names_the_exact_version_on_every_feature_level() {
    for (level, expected) in LEVELS {
        let h = Harness::on(level).await;
        let detected = h.admin().detect_version().await.expect("a version");
        assert_eq!(detected.method, DetectionMethod::Manifest, "{level}");
        assert_eq!(detected.exact, Some(expected), "{level}");
        let update = detected.supports(Feature::UpdateUser);
        let create = detected.supports(Feature::CreateUser);
        match level {
            ConfluenceVersion::V8_2 => {
                assert_eq!(
                    (create, update),
                    (Availability::Absent, Availability::Absent)
                );
            }
            ConfluenceVersion::V8_4 => {
                assert_eq!(
                    (create, update),
                    (Availability::Available, Availability::Absent)
                );
            }
            _ => assert_eq!(
                (create, update),
                (Availability::Available, Availability::Available)
            ),
        }
        assert_eq!(h.calls().len(), 1, "one call: the manifest");
    }
}

#[tokio::test]
async fn without_a_manifest_read_only_probes_bound_the_version_on_every_feature_level() {
    for (level, _) in LEVELS {
        let h = Harness::on(level).await;
        h.emu
            .arm_fault(Fault::status(404).on("GET", "/rest/applinks/1.0/manifest"));
        let detected = h.admin().detect_version().await.expect("a version");
        assert_eq!(detected.method, DetectionMethod::Probe, "{level}");
        assert_eq!(detected.exact, None);
        let (at_least, below) = match level {
            ConfluenceVersion::V8_2 => (Version::new(0, 0, 0), Some(Version::new(8, 4, 0))),
            ConfluenceVersion::V8_4 => (Version::new(8, 4, 0), Some(Version::new(9, 3, 0))),
            _ => (Version::new(9, 3, 0), None),
        };
        assert_eq!(
            (detected.at_least, detected.below),
            (at_least, below),
            "{level}"
        );
        let creates = detected.supports(Feature::CreateUser);
        let expected = if level == ConfluenceVersion::V8_2 {
            Availability::Absent
        } else {
            Availability::Available
        };
        assert_eq!(creates, expected, "{level}");
        // The probes are reads: nothing was written.
        assert!(h.calls().iter().all(|c| c.method == "GET"));
    }
}

#[tokio::test]
async fn the_detected_version_is_cached_after_one_call() {
    let h = Harness::on(ConfluenceVersion::V9_4).await;
    let c = h.admin();
    assert_eq!(c.cached_version(), None);
    let first = c.detect_version().await.expect("a version");
    let second = c.detect_version().await.expect("a version");
    assert_eq!(first, second);
    assert_eq!(c.cached_version(), Some(first));
    assert_eq!(h.calls().len(), 1);
    // Clones share the cache.
    let clone = c.clone();
    clone.detect_version().await.expect("a version");
    assert_eq!(h.calls().len(), 1);
}

#[tokio::test]
async fn a_failed_detection_is_not_cached() {
    let h = Harness::start().await;
    let c = h.admin();
    h.emu.arm_fault(Fault::status(503));
    let (class, e) = class_of(c.detect_version().await);
    assert_eq!(class, ErrorClass::Transient, "{e}");
    assert_eq!(c.cached_version(), None);
    assert!(c.detect_version().await.is_ok());
}

#[tokio::test]
async fn on_8_4_an_update_falls_back_to_json_rpc_with_basic_auth() {
    let h = Harness::on(ConfluenceVersion::V8_4).await;
    let c = h.admin_basic();
    // Before detection: the REST call is tried, answers "no such endpoint", then JSON-RPC.
    let how = c
        .update_user("alice", "Alice Q. Example", "alice.q@example.org")
        .await
        .expect("updated");
    assert_eq!(how, UserUpdated::ViaJsonRpc);
    let alice = h.emu.user("alice").expect("alice");
    assert_eq!(alice.full_name, "Alice Q. Example");
    assert_eq!(alice.email, "alice.q@example.org");
    assert_eq!(h.count("PUT", "/rest/api/admin/user/alice"), 1);
    assert_eq!(h.count("POST", "/confluenceservice-v2/editUser"), 1);
    // After detection: straight to JSON-RPC.
    c.detect_version().await.expect("a version");
    h.emu.clear_calls();
    c.update_user("alice", "Alice Example", "alice@example.org")
        .await
        .expect("updated");
    let calls = h.calls();
    assert_eq!(calls.len(), 1);
    assert!(calls[0]
        .path
        .ends_with("/rpc/json-rpc/confluenceservice-v2/editUser"));
    assert!(calls[0].xsrf_no_check);
}

#[tokio::test]
async fn on_a_release_between_levels_the_update_is_tried_over_rest_first() {
    let h = Harness::on(ConfluenceVersion::V8_4).await;
    h.knobs(|k| k.manifest_version = Some("9.2.1".to_owned()));
    let c = h.admin_basic();
    let detected = c.detect_version().await.expect("a version");
    assert_eq!(
        detected.supports(Feature::UpdateUser),
        Availability::Unknown
    );
    let how = c
        .update_user("alice", "Alice Q. Example", "alice.q@example.org")
        .await
        .expect("updated");
    assert_eq!(how, UserUpdated::ViaJsonRpc);
    assert_eq!(h.count("PUT", "/rest/api/admin/user/alice"), 1);
}

#[tokio::test]
async fn on_8_4_an_update_with_a_pat_is_unsupported_and_says_what_to_do() {
    let h = Harness::on(ConfluenceVersion::V8_4).await;
    let (class, e) = class_of(
        h.admin()
            .update_user("alice", "Alice Q. Example", "alice.q@example.org")
            .await,
    );
    assert_eq!(class, ErrorClass::Unsupported, "{e}");
    let text = e.to_string();
    assert!(
        text.contains("9.4") && text.contains("Basic auth"),
        "{text}"
    );
    assert_eq!(
        h.count("POST", "/editUser"),
        0,
        "no JSON-RPC call with a PAT"
    );
    assert_eq!(
        h.emu.user("alice").map(|u| u.full_name).as_deref(),
        Some("Alice Example")
    );
}

#[tokio::test]
async fn with_the_remote_api_off_the_update_fallback_is_unsupported() {
    let h = Harness::on(ConfluenceVersion::V8_4).await;
    h.knobs(|k| k.remote_api_enabled = false);
    let (class, e) = class_of(
        h.admin_basic()
            .update_user("alice", "Alice Q. Example", "alice.q@example.org")
            .await,
    );
    assert_eq!(class, ErrorClass::Unsupported, "{e}");
    assert!(e.to_string().contains("Remote API"), "{e}");
}

#[tokio::test]
async fn the_json_rpc_fallback_reports_an_unknown_user_as_not_found() {
    let h = Harness::on(ConfluenceVersion::V8_4).await;
    let (class, e) = class_of(
        h.admin_basic()
            .update_user("ghost", "Ghost", "ghost@example.org")
            .await,
    );
    assert_eq!(class, ErrorClass::NotFound, "{e}");
    assert!(!e.to_string().contains("ghost"), "{e}");
    assert!(e
        .failure()
        .body
        .as_deref()
        .is_some_and(|b| b.contains("ghost")));
}

#[tokio::test]
async fn on_8_2_creating_a_user_is_unsupported() {
    let h = Harness::on(ConfluenceVersion::V8_2).await;
    let c = h.admin();
    // Undetected: the call is made and its HTML 404 classified.
    let (class, e) = class_of(c.create_user("jdoe", "Jane Doe", "jane@example.org").await);
    assert_eq!(class, ErrorClass::Unsupported, "{e}");
    assert_eq!(e.status(), Some(404));
    assert_eq!(h.count("POST", "/rest/api/admin/user"), 1);
    // Detected: no call at all.
    c.detect_version().await.expect("a version");
    h.emu.clear_calls();
    let (class, e) = class_of(c.create_user("jdoe", "Jane Doe", "jane@example.org").await);
    assert_eq!(class, ErrorClass::Unsupported, "{e}");
    assert!(e.to_string().contains("8.4"), "{e}");
    assert!(h.calls().is_empty());
    // What 8.2 does have still works.
    c.disable_user("alice")
        .await
        .expect("disable exists on 8.2");
    c.add_member("alice", "engineering")
        .await
        .expect("membership exists on 8.2");
}
