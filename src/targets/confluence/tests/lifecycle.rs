//! The user and group lifecycle (docs/emulator.md test scenarios 1–3, 7), pagination, the
//! context path, and the headers every write carries.

use std::time::Duration;

use serde_json::json;

use super::{class_of, emulator_config, Harness};
use crate::emulator::{ConfluenceVersion, SeedUser, StatusStyle};
use crate::targets::confluence::{GroupCreated, UserUpdated};
use crate::targets::ErrorClass;

#[tokio::test]
async fn a_user_goes_through_create_membership_update_disable_enable_and_delete_on_9_4() {
    let h = Harness::on(ConfluenceVersion::V9_4).await;
    let c = h.admin();
    assert_eq!(c.get_user("jdoe").await.expect("a lookup"), None);

    let key = c
        .create_user("jdoe", "Jane Doe", "jane@example.org")
        .await
        .expect("created");
    let created = h.emu.user("jdoe").expect("in the emulator");
    assert_eq!(created.user_key, key.as_str());
    assert!(created.active);
    assert!(created.groups.is_empty(), "create adds no group");

    c.add_member("jdoe", "confluence-users")
        .await
        .expect("added to confluence-users");
    assert!(h.emu.user("jdoe").is_some_and(|u| u.licensed));
    assert_eq!(
        c.user_groups("jdoe").await.expect("groups"),
        ["confluence-users"]
    );

    let updated = c
        .update_user("jdoe", "Jane Q. Doe", "jane.doe@corp.example.org")
        .await
        .expect("updated");
    assert_eq!(updated, UserUpdated::ViaRest);
    let after = h.emu.user("jdoe").expect("still there");
    assert_eq!(after.full_name, "Jane Q. Doe");
    assert_eq!(after.email, "jane.doe@corp.example.org");

    c.disable_user("jdoe").await.expect("disabled");
    assert!(h.emu.user("jdoe").is_some_and(|u| !u.active));
    let remote = c.get_user("jdoe").await.expect("a lookup").expect("a user");
    assert_eq!(remote.active, Some(false));
    assert_eq!(remote.display_name, "Jane Q. Doe");
    assert_eq!(remote.user_key, key);

    c.enable_user("jdoe").await.expect("enabled");
    let remote = c.get_user("jdoe").await.expect("a lookup").expect("a user");
    assert_eq!(remote.active, Some(true));

    let submitted = c.delete_user("jdoe").await.expect("delete accepted");
    let task = submitted.task_id.expect("the 202 names a long task");
    let status = c
        .wait_for_long_task(&task, Duration::from_secs(5))
        .await
        .expect("the task is readable");
    assert!(status.finished && status.successful, "{status:?}");
    assert_eq!(status.percentage_complete, 100);
    assert_eq!(c.get_user("jdoe").await.expect("a lookup"), None);
    assert!(h.emu.user("jdoe").is_none());
    assert!(!h
        .emu
        .group_members("confluence-users")
        .expect("the group")
        .contains(&"jdoe".to_owned()));
}

#[tokio::test]
async fn disable_enable_and_membership_calls_are_idempotent() {
    let h = Harness::start().await;
    let c = h.admin();
    for _ in 0..2 {
        c.disable_user("alice").await.expect("disable");
    }
    assert!(h.emu.user("alice").is_some_and(|u| !u.active));
    for _ in 0..2 {
        c.enable_user("alice").await.expect("enable");
    }
    for _ in 0..2 {
        c.add_member("alice", "engineering").await.expect("add");
    }
    assert_eq!(
        h.emu.group_members("engineering").expect("the group"),
        ["alice"]
    );
    for _ in 0..2 {
        c.remove_member("alice", "engineering")
            .await
            .expect("remove");
    }
    assert_eq!(
        h.emu.group_members("engineering").expect("the group"),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn creating_an_existing_username_is_a_conflict() {
    let h = Harness::start().await;
    let (class, e) = class_of(
        h.admin()
            .create_user("alice", "Alice Again", "alice2@example.org")
            .await,
    );
    assert_eq!(class, ErrorClass::Conflict, "{e}");
    assert_eq!(e.status(), Some(409));
    assert_eq!(e.call().template, "/rest/api/admin/user");
}

#[tokio::test]
async fn a_username_confluence_would_refuse_is_refused_before_any_call() {
    let h = Harness::start().await;
    let (class, e) = class_of(
        h.admin()
            .create_user("Jane.Doe+x@Example.com", "Jane", "jane@example.org")
            .await,
    );
    assert_eq!(class, ErrorClass::Permanent, "{e}");
    assert_eq!(e.status(), None);
    assert!(e.to_string().contains("must not contain"), "{e}");
    assert!(h.calls().is_empty());
}

#[tokio::test]
async fn a_group_is_created_once_and_a_second_create_reports_that_it_already_exists() {
    let h = Harness::start().await;
    let c = h.admin();
    assert_eq!(
        c.create_group("sales").await.expect("created"),
        GroupCreated::Created
    );
    assert_eq!(
        c.create_group("sales").await.expect("no error on 409"),
        GroupCreated::AlreadyExists
    );
    assert!(h.emu.group_members("sales").is_some());
    c.delete_group("sales").await.expect("deleted");
    assert!(h.emu.group_members("sales").is_none());
    let (class, e) = class_of(c.delete_group("sales").await);
    assert_eq!(class, ErrorClass::NotFound, "{e}");
}

#[tokio::test]
async fn every_write_sends_the_xsrf_no_check_header_and_passes_the_check() {
    let h = Harness::start().await;
    let c = h.admin();
    c.create_user("jdoe", "Jane Doe", "jane@example.org")
        .await
        .expect("created");
    c.update_user("jdoe", "Jane Q. Doe", "jq@example.org")
        .await
        .expect("updated");
    c.create_group("sales").await.expect("group");
    c.add_member("jdoe", "sales").await.expect("added");
    c.remove_member("jdoe", "sales").await.expect("removed");
    c.disable_user("jdoe").await.expect("disabled");
    c.enable_user("jdoe").await.expect("enabled");
    c.delete_group("sales").await.expect("group deleted");
    c.delete_user("jdoe").await.expect("delete accepted");
    let writes: Vec<_> = h
        .calls()
        .into_iter()
        .filter(|c| c.method != "GET")
        .collect();
    assert_eq!(writes.len(), 9);
    for call in &writes {
        assert!(
            call.xsrf_no_check,
            "{} {} lacks the header",
            call.method, call.path
        );
        assert!(
            call.status.is_some_and(|s| (200..300).contains(&s)),
            "{} {} answered {:?}",
            call.method,
            call.path,
            call.status
        );
        assert_eq!(call.auth, crate::emulator::AuthScheme::Bearer);
    }
    let reads: Vec<_> = h
        .calls()
        .into_iter()
        .filter(|c| c.method == "GET")
        .collect();
    assert!(
        reads.iter().all(|c| !c.xsrf_no_check),
        "reads need no token"
    );
}

#[tokio::test]
async fn the_client_works_below_a_context_path() {
    let h = Harness::serve(emulator_config(ConfluenceVersion::V10_2, "/confluence")).await;
    assert!(h.base_url.ends_with("/confluence"));
    let c = h.admin();
    let me = c.current_user().await.expect("current user");
    assert_eq!(me.username, "admin");
    c.create_user("jdoe", "Jane Doe", "jane@example.org")
        .await
        .expect("created");
    c.add_member("jdoe", "confluence-users")
        .await
        .expect("added");
    assert!(h.emu.user("jdoe").is_some_and(|u| u.licensed));
    let version = c.detect_version().await.expect("a version");
    assert_eq!(
        version.exact.map(|v| v.to_string()).as_deref(),
        Some("10.2.0")
    );
    assert!(h
        .calls()
        .iter()
        .all(|call| call.path.starts_with("/confluence/rest/")));
    // A trailing slash in the configured base URL changes nothing.
    let mut config = h.config(crate::targets::confluence::ConfluenceAuth::Pat(
        crate::targets::confluence::Secret::new(super::ADMIN_PAT),
    ));
    config.base_url.push('/');
    let slash = crate::targets::confluence::ConfluenceClient::new(config).expect("a client");
    assert!(slash.get_user("jdoe").await.expect("a lookup").is_some());
}

#[tokio::test]
async fn usernames_and_group_names_are_percent_encoded_in_paths() {
    let h = Harness::start().await;
    h.emu
        .add_user(
            &serde_json::from_value::<SeedUser>(serde_json::json!({
                "username": "jane.doe@example.org"
            }))
            .expect("a seed user"),
        )
        .expect("added");
    let c = h.admin();
    c.create_group("r&d team").await.expect("group");
    c.add_member("jane.doe@example.org", "r&d team")
        .await
        .expect("added");
    assert_eq!(
        h.emu.group_members("r&d team").expect("the group"),
        ["jane.doe@example.org"]
    );
    let members = c.group_members("r&d team").await.expect("members");
    assert_eq!(members[0].username, "jane.doe@example.org");
    assert!(h
        .calls()
        .iter()
        .any(|call| call.path.ends_with("/group/r%26d%20team")));
}

#[tokio::test]
async fn group_members_and_user_groups_read_every_page() {
    let h = Harness::start().await;
    h.knobs(|k| k.max_page_limit = 2);
    let c = h.admin();
    let names: Vec<String> = (1..=5).map(|i| format!("user{i}")).collect();
    for name in &names {
        h.emu
            .add_user(
                &serde_json::from_value::<SeedUser>(serde_json::json!({
                    "username": name, "groups": ["engineering", "sales", "support"]
                }))
                .expect("a seed user"),
            )
            .expect("added");
    }
    let members = c.group_members("engineering").await.expect("members");
    let mut got: Vec<String> = members.iter().map(|m| m.username.clone()).collect();
    got.sort();
    assert_eq!(got, names);
    assert!(members.iter().all(|m| m.active == Some(true)));
    assert_eq!(
        h.count("GET", "/engineering/member"),
        3,
        "pages of 2, 2 and 1"
    );
    let mut groups = c.user_groups("user1").await.expect("groups");
    groups.sort();
    assert_eq!(groups, ["engineering", "sales", "support"]);
    assert_eq!(h.count("GET", "/rest/api/user/memberof"), 2);
}

#[tokio::test]
async fn either_status_literal_style_reads_as_active_or_inactive() {
    let h = Harness::start().await;
    let c = h.admin();
    for style in [StatusStyle::Current, StatusStyle::Active] {
        h.knobs(|k| k.status_style = style);
        c.enable_user("alice").await.expect("enabled");
        let user = c.get_user("alice").await.expect("lookup").expect("alice");
        assert_eq!(user.active, Some(true), "{style:?}");
        c.disable_user("alice").await.expect("disabled");
        let user = c.get_user("alice").await.expect("lookup").expect("alice");
        assert_eq!(user.active, Some(false), "{style:?}");
    }
}

#[tokio::test]
async fn writes_to_an_unknown_user_are_not_found() {
    let h = Harness::start().await;
    let c = h.admin();
    for result in [
        c.disable_user("ghost").await,
        c.enable_user("ghost").await,
        c.add_member("ghost", "engineering").await,
        c.add_member("alice", "no-such-group").await,
    ] {
        let (class, e) = class_of(result);
        assert_eq!(class, ErrorClass::NotFound, "{e}");
        assert!(e.failure().body.is_some());
    }
    let (class, _) = class_of(c.delete_user("ghost").await);
    assert_eq!(class, ErrorClass::NotFound);
    let (class, _) = class_of(c.update_user("ghost", "G", "g@example.org").await);
    assert_eq!(class, ErrorClass::NotFound);
}

#[tokio::test]
async fn the_user_list_is_read_page_by_page_with_disabled_accounts_and_the_pages_the_server_caps() {
    let h = Harness::start().await;
    // The server sends 3 per page whatever we ask for (docs/reference/confluence-api.md §1.2).
    h.knobs(|k| k.max_page_limit = 3);
    for i in 0..5 {
        h.emu
            .add_user(
                &serde_json::from_value(json!({"username": format!("u{i}"), "active": i != 2}))
                    .expect("a seed user"),
            )
            .expect("added");
    }
    let c = h.admin();
    let mut pages = c.user_pages();
    let mut seen = Vec::new();
    while let Some(page) = pages.next_page().await.expect("a page") {
        assert!(page.len() <= 3);
        seen.extend(page);
    }
    assert_eq!(pages.pages_read(), 3, "7 accounts, 3 per page");
    let mut names: Vec<&str> = seen.iter().map(|u| u.username.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["admin", "alice", "u0", "u1", "u2", "u3", "u4"]);
    let u2 = seen.iter().find(|u| u.username == "u2").expect("u2");
    assert_eq!(
        u2.active,
        Some(false),
        "disabled accounts are listed, as disabled"
    );
    assert!(seen
        .iter()
        .filter(|u| u.username != "u2")
        .all(|u| u.active == Some(true)));

    let mut members = c.member_pages("confluence-users");
    let page = members.next_page().await.expect("members").expect("a page");
    assert_eq!(
        page.iter().map(|u| u.username.as_str()).collect::<Vec<_>>(),
        ["alice"]
    );
    assert!(members.next_page().await.expect("end").is_none());
    let (class, _) = class_of(c.member_pages("no such group").next_page().await);
    assert_eq!(class, ErrorClass::NotFound);
}

#[tokio::test]
async fn a_failed_page_is_retried_by_calling_again_and_the_list_needs_confluence_8_4() {
    let h = Harness::start().await;
    h.knobs(|k| k.max_page_limit = 1);
    h.emu.arm_fault(
        crate::emulator::Fault::status(500)
            .on("GET", "/rest/api/user/list")
            .on_page(2),
    );
    let c = h.admin();
    let mut pages = c.user_pages();
    assert!(pages.next_page().await.expect("page 1").is_some());
    let (class, _) = class_of(pages.next_page().await);
    assert_eq!(class, ErrorClass::Transient);
    let again = pages
        .next_page()
        .await
        .expect("page 2 again")
        .expect("a page");
    assert_eq!(again.len(), 1);
    assert!(pages.next_page().await.expect("the end").is_none());
    assert_eq!(pages.pages_read(), 2);

    let old = Harness::on(ConfluenceVersion::V8_2).await;
    let c = old.admin();
    c.detect_version().await.expect("detected");
    let (class, _) = class_of(c.user_pages().next_page().await);
    assert_eq!(class, ErrorClass::Unsupported);
}
