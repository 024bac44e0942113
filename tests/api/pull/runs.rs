//! Pull runs in the operations API (docs/admin-api.md "Pull runs"): the list with counts and
//! the checkpoint, one run with the users it changed, "pull now" for each mode and role, and
//! the answers when the connector is pushed to or the IdP fails.

use reqwest::Method;
use serde_json::{json, Value};
use usersync::config::pull::MaxDeletes;
use usersync::store::admin::AdminRole;

use super::{settings, spawn_configured, user};
use crate::helpers::{TestApp, CONNECTOR};

async fn pull_now(app: &TestApp, token: &str, body: Value) -> (u16, Value) {
    let r = app
        .client
        .post(format!(
            "{}/admin/api/v1/connectors/{CONNECTOR}/pull",
            app.admin_address
        ))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("pull now answers");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn get(app: &TestApp, token: &str, path: &str) -> Value {
    let r = app.admin(Method::GET, path, Some(token)).await;
    r.assert_status(200);
    r.body
}

#[tokio::test]
async fn runs_are_listed_with_counts_and_a_run_shows_the_users_it_changed() {
    let p = spawn_configured(settings(MaxDeletes::Count(5), 200), |_| {}).await;
    p.idp.upsert_user(user("u-boss", "boss", None));
    p.idp.upsert_user(user("u-ada", "ada", Some("u-boss")));
    let admin = p.app.admin_token("ops", AdminRole::Admin).await;
    let viewer = p.app.admin_token("look", AdminRole::Viewer).await;

    // A viewer reads but cannot start a run; the refusal is audited.
    let (status, _) = pull_now(&p.app, &viewer, json!({})).await;
    assert_eq!(status, 403);

    // A dry run reports the plan and writes nothing: no users, no record, no checkpoint.
    let (status, out) = pull_now(&p.app, &admin, json!({"dry_run": true})).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["report"]["created"], 2, "{out}");
    assert_eq!(out["run_id"], Value::Null);
    assert_eq!(p.count().await, 0);
    let listed = get(
        &p.app,
        &viewer,
        &format!("/connectors/{CONNECTOR}/pull-runs"),
    )
    .await;
    assert_eq!(listed["pull"], true);
    assert_eq!(listed["checkpoint"], Value::Null);
    assert_eq!(listed["runs"].as_array().map(Vec::len), Some(0));

    // A real run: done, recorded, the checkpoint written (its value, a delta link, never shown).
    let (status, out) = pull_now(&p.app, &admin, json!({})).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["status"], "done");
    let run_id = out["run_id"].as_str().expect("a run id").to_owned();
    assert_eq!(p.count().await, 2);
    let listed = get(
        &p.app,
        &viewer,
        &format!("/connectors/{CONNECTOR}/pull-runs"),
    )
    .await;
    let run = &listed["runs"][0];
    assert_eq!(run["id"], run_id.as_str());
    assert_eq!(
        (run["mode"].as_str(), run["created"].as_i64()),
        (Some("full"), Some(2))
    );
    assert_eq!(run["started_by"], "admin:ops");
    assert_eq!(listed["checkpoint"]["kind"], "graph");
    assert!(!listed.to_string().contains("deltatoken"), "{listed}");

    let detail = get(&p.app, &viewer, &format!("/pull-runs/{run_id}")).await;
    let names: Vec<&str> = detail["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["userName"].as_str())
        .collect();
    assert_eq!(names.len(), 2, "{detail}");
    assert!(names.contains(&"ada@example.com"));

    let audit = get(&p.app, &viewer, "/audit?action=pull.run").await;
    assert!(audit.to_string().contains("pull.run"), "{audit}");
    let r = p
        .app
        .admin(Method::GET, "/pull-runs/nope", Some(&viewer))
        .await;
    r.assert_status(404);
}

#[tokio::test]
async fn a_failing_idp_is_a_502_and_a_push_connector_a_409() {
    let p = spawn_configured(settings(MaxDeletes::Count(5), 1), |_| {}).await;
    for i in 0..4 {
        p.idp
            .upsert_user(user(&format!("u-{i}"), &format!("user{i}"), None));
    }
    p.idp.fail_page(Some(3));
    let admin = p.app.admin_token("ops", AdminRole::Admin).await;
    let (status, problem) = pull_now(&p.app, &admin, json!({"full": true})).await;
    assert_eq!(status, 502, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("Graph"),
        "{problem}"
    );
    assert_eq!(p.count().await, 0, "nothing written");

    let push = TestApp::spawn_with_connector(|_| {}).await;
    let admin = push.admin_token("ops", AdminRole::Admin).await;
    let (status, _) = pull_now(&push, &admin, json!({})).await;
    assert_eq!(status, 409);
    let listed = get(&push, &admin, &format!("/connectors/{CONNECTOR}/pull-runs")).await;
    assert_eq!(listed["pull"], false);
}

#[tokio::test]
async fn the_console_pulls_now_and_shows_the_run_with_its_users() {
    let p = spawn_configured(settings(MaxDeletes::Count(5), 200), |_| {}).await;
    p.idp.upsert_user(user("u-boss", "boss", None));
    p.idp.upsert_user(user("u-ada", "ada", Some("u-boss")));
    let admin = p.app.admin_token("ops", AdminRole::Admin).await;
    let b = crate::browser::Browser::start(1280, 900).await;
    crate::console::sign_in(&b, &p.app, &admin).await;
    b.goto(&format!(
        "{}/connectors/{CONNECTOR}/sync",
        p.app.admin_address
    ))
    .await;
    assert!(
        crate::console::page_has(&b, "Pull runs (graph)").await,
        "{}",
        b.source().await
    );
    assert!(b.source().await.contains("none yet"), "no checkpoint yet");
    // The dry run shows the plan on its own page and writes nothing.
    b.click_on("form.inline:has(input[value=dry_run]) button")
        .await;
    assert!(crate::console::page_has(&b, "nothing was written").await);
    assert!(
        b.source().await.contains("<td>u-ada</td>"),
        "{}",
        b.source().await
    );
    assert_eq!(p.count().await, 0);

    b.goto(&format!(
        "{}/connectors/{CONNECTOR}/sync",
        p.app.admin_address
    ))
    .await;
    b.click_on("form.inline:has(input[value=incremental]) button")
        .await;
    assert!(
        crate::console::page_has(&b, "/pull-runs/").await,
        "{}",
        b.source().await
    );
    assert_eq!(p.count().await, 2);
    b.screenshot("pull-runs").await;
    b.click_on("a[href^='/pull-runs/']").await;
    assert!(crate::console::page_has(&b, "Users changed").await);
    let page = b.source().await;
    assert!(
        page.contains("ada@example.com") && page.contains("created"),
        "{page}"
    );
    b.screenshot("pull-run").await;
}
