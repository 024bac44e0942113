//! Lines of managers (docs/mapping.md "Lines of managers"): a field with
//! `from = "manager.manager"` carries the manager's manager, and a write anywhere in a chain
//! re-delivers every report whose fields it changes, however many lines down the mapping
//! reads. The bodies are Okta's AIW shape, the manager named by employee number
//! (docs/idp/okta.md).

use serde_json::{json, Value};

use usersync::mapping::rules::FieldSpec;

use crate::helpers::TestApp;

const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn person(user_name: &str, number: &str, manager: Option<&str>) -> Value {
    let mut ent = json!({"employeeNumber": number});
    if let Some(m) = manager {
        ent["manager"] = json!({"value": m});
    }
    json!({
        "schemas": [USER_URN, ENT],
        "userName": user_name,
        "name": {"givenName": user_name, "familyName": "Example"},
        "emails": [{"primary": true, "value": format!("{user_name}@example.com"), "type": "work"}],
        "externalId": format!("00u{number}"),
        "active": true,
        ENT: ent
    })
}

fn line_field(name: &str, from: &str) -> FieldSpec {
    toml::from_str(&format!("name = \"{name}\"\nfrom = \"{from}\"")).expect("a field spec")
}

/// A connector whose mapping reads three lines of managers (`lines` = 3), or only the
/// built-in `manager` (`lines` = 1).
async fn app(lines: u8) -> TestApp {
    TestApp::spawn_with_connector(|c| {
        if lines >= 2 {
            c.mapping
                .fields
                .push(line_field("manager2", "manager.manager"));
        }
        if lines >= 3 {
            c.mapping
                .fields
                .push(line_field("manager3", "manager.manager.manager"));
        }
    })
    .await
}

async fn feed(app: &TestApp) -> String {
    let r = app.client.get(app.feed_url()).send().await.expect("feed");
    assert_eq!(r.status().as_u16(), 200);
    r.text().await.expect("feed body")
}

/// The text of `<element>` in `username`'s `<user>` element; `""` for an empty element.
fn field(feed: &str, username: &str, element: &str) -> Option<String> {
    let marker = format!("<username>{username}</username>");
    let at = feed
        .find(&marker)
        .unwrap_or_else(|| panic!("{username} in {feed}"));
    let start = feed[..at].rfind("<user>").unwrap_or(0);
    let end = feed[at..].find("</user>").map_or(feed.len(), |e| at + e);
    let user = &feed[start..end];
    if user.contains(&format!("<{element}/>")) {
        return Some(String::new());
    }
    let open = format!("<{element}>");
    let from = user.find(&open)? + open.len();
    let to = user[from..].find(&format!("</{element}>"))? + from;
    Some(user[from..to].to_owned())
}

/// Each user's queue generation: how many times a write marked it for delivery.
async fn generations(app: &TestApp) -> std::collections::HashMap<String, i64> {
    app.queue()
        .await
        .into_iter()
        .map(|r| (r.key.id, r.generation))
        .collect()
}

/// ceo ← vp ← dir ← (eng1, eng2), and a second line ceo2 ← vp2.
async fn org(app: &TestApp) -> std::collections::HashMap<&'static str, String> {
    let mut ids = std::collections::HashMap::new();
    for (name, number, manager) in [
        ("ceo", "E1", None),
        ("vp", "E2", Some("E1")),
        ("dir", "E3", Some("E2")),
        ("eng1", "E4", Some("E3")),
        ("eng2", "E5", Some("E3")),
        ("ceo2", "E6", None),
        ("vp2", "E7", Some("E6")),
    ] {
        ids.insert(name, app.create_user(person(name, number, manager)).await);
    }
    ids
}

async fn set_manager(app: &TestApp, id: &str, manager: &str) {
    app.patch_ops(
        &format!("/Users/{id}"),
        json!([{"op": "replace", "path": format!("{ENT}:manager"), "value": {"value": manager}}]),
    )
    .await
    .assert_status(200);
}

#[tokio::test]
async fn three_lines_of_managers_reach_the_feed() {
    let app = app(3).await;
    org(&app).await;
    let body = feed(&app).await;
    let lines = |user| {
        ["manager", "manager2", "manager3"].map(|e| field(&body, user, e).unwrap_or_default())
    };
    assert_eq!(lines("eng1"), ["dir", "vp", "ceo"], "{body}");
    assert_eq!(lines("eng2"), ["dir", "vp", "ceo"]);
    // The top of the chart: the lines above it are empty, not left as they were.
    assert_eq!(lines("dir"), ["vp", "ceo", ""]);
    assert_eq!(lines("ceo"), ["", "", ""]);
}

#[tokio::test]
async fn moving_a_middle_manager_re_delivers_every_report_below_them() {
    let app = app(3).await;
    let ids = org(&app).await;
    let before = generations(&app).await;
    // vp moves under ceo2: dir's second line and the engineers' third line change.
    set_manager(&app, &ids["vp"], "E6").await;
    let after = generations(&app).await;
    for user in ["vp", "dir", "eng1", "eng2"] {
        assert_eq!(
            after[&ids[user]],
            before[&ids[user]] + 1,
            "{user} is marked once for delivery"
        );
    }
    for user in ["ceo", "ceo2", "vp2"] {
        assert_eq!(
            after[&ids[user]], before[&ids[user]],
            "{user} is not marked"
        );
    }
    let body = feed(&app).await;
    assert_eq!(field(&body, "eng1", "manager3").as_deref(), Some("ceo2"));
    assert_eq!(field(&body, "dir", "manager2").as_deref(), Some("ceo2"));
    assert_eq!(field(&body, "eng1", "manager").as_deref(), Some("dir"));

    // dir moves under vp2: both engineers' second and third lines follow.
    set_manager(&app, &ids["dir"], "E7").await;
    let body = feed(&app).await;
    for eng in ["eng1", "eng2"] {
        assert_eq!(
            field(&body, eng, "manager2").as_deref(),
            Some("vp2"),
            "{body}"
        );
        assert_eq!(field(&body, eng, "manager3").as_deref(), Some("ceo2"));
    }
}

#[tokio::test]
async fn a_write_that_leaves_the_chain_as_it_was_marks_only_the_direct_reports() {
    let app = app(3).await;
    let ids = org(&app).await;
    let before = generations(&app).await;
    app.patch_ops(
        &format!("/Users/{}", ids["vp"]),
        json!([{"op": "replace", "path": "title", "value": "Vice President"}]),
    )
    .await
    .assert_status(200);
    let after = generations(&app).await;
    assert_eq!(after[&ids["dir"]], before[&ids["dir"]] + 1, "direct report");
    assert_eq!(after[&ids["eng1"]], before[&ids["eng1"]], "two lines down");
}

#[tokio::test]
async fn with_one_line_in_the_mapping_a_move_marks_only_the_direct_reports() {
    let app = app(1).await;
    let ids = org(&app).await;
    let before = generations(&app).await;
    set_manager(&app, &ids["vp"], "E6").await;
    let after = generations(&app).await;
    assert_eq!(after[&ids["dir"]], before[&ids["dir"]] + 1);
    assert_eq!(after[&ids["eng1"]], before[&ids["eng1"]]);
    let body = feed(&app).await;
    assert!(field(&body, "eng1", "manager2").is_none(), "{body}");
}

#[tokio::test]
async fn a_cycle_in_the_idp_data_ends_the_chain_instead_of_repeating_it() {
    let app = app(3).await;
    app.create_user(person("ann", "C1", Some("C2"))).await;
    let bob = app.create_user(person("bob", "C2", Some("C1"))).await;
    let body = feed(&app).await;
    assert_eq!(field(&body, "ann", "manager").as_deref(), Some("bob"));
    assert_eq!(
        field(&body, "ann", "manager2").as_deref(),
        Some(""),
        "{body}"
    );
    assert_eq!(field(&body, "ann", "manager3").as_deref(), Some(""));
    // A write in the cycle marks its members once each and ends.
    let before = generations(&app).await;
    set_manager(&app, &bob, "C1").await; // unchanged reference: no write
    app.patch_ops(
        &format!("/Users/{bob}"),
        json!([{"op": "replace", "path": "active", "value": false}]),
    )
    .await
    .assert_status(200);
    assert!(generations(&app).await[&bob] > before[&bob]);
}

#[test]
fn more_lines_than_five_are_refused_with_the_reason() {
    let e = toml::from_str::<FieldSpec>(
        "name = \"x\"\nfrom = \"manager.manager.manager.manager.manager.manager\"",
    )
    .expect_err("six lines");
    assert!(e.to_string().contains("at most 5"), "{e}");
    let e = toml::from_str::<FieldSpec>("name = \"x\"\nfrom = \"managers\"").expect_err("typo");
    assert!(e.to_string().contains("manager.manager"), "{e}");
}
