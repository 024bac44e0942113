//! One request cannot stall the others (issue 8 item 3): the values of one multi-valued
//! attribute and the work of one PATCH are bounded, each refused with a clear `400
//! invalidValue` before anything is written.

use serde_json::{json, Value};

use crate::helpers::TestApp;

const MAX_VALUES: usize = 50;
const MAX_COST: u64 = 2_000;

async fn app() -> TestApp {
    TestApp::spawn_with(|s| {
        s.limits.max_values_per_attribute = MAX_VALUES;
        s.limits.max_patch_cost = MAX_COST;
    })
    .await
}

fn emails(n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| json!({"value": format!("a{i}@example.com"), "type": format!("t{i}")}))
            .collect(),
    )
}

#[tokio::test]
async fn more_values_in_one_attribute_than_the_limit_are_refused() {
    let app = app().await;
    let r = app
        .post(
            "/Users",
            json!({"userName": "many", "emails": emails(MAX_VALUES + 1)}),
        )
        .await;
    r.assert_scim_error(400, Some("invalidValue"));
    let detail = r.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("emails") && detail.contains("limits.max_values_per_attribute"),
        "{detail}"
    );
    // Extension attributes count too; duplicates are one value.
    let mut dup = emails(MAX_VALUES).as_array().unwrap().clone();
    dup.extend(dup.clone());
    let id = app
        .create_user(json!({"userName": "full", "emails": dup}))
        .await;
    let r = app
        .patch_ops(
            &format!("/Users/{id}"),
            json!([{"op": "add", "path": "emails", "value": [{"value": "one-more@example.com"}]}]),
        )
        .await;
    r.assert_scim_error(400, Some("invalidValue"));
    let r = app
        .put(
            &format!("/Users/{id}"),
            json!({"userName": "full", "emails": emails(MAX_VALUES + 5)}),
        )
        .await;
    r.assert_scim_error(400, Some("invalidValue"));
    let stored = app.get(&format!("/Users/{id}")).await;
    assert_eq!(stored.body["emails"].as_array().unwrap().len(), MAX_VALUES);
    // Group members are rows, not values of the document: not counted.
    let mut members = Vec::new();
    for i in 0..MAX_VALUES * 2 {
        members.push(app.user(&format!("m{i}")).await);
    }
    let refs: Vec<&str> = members.iter().map(String::as_str).collect();
    let g = app.group("big", &refs).await;
    assert_eq!(app.member_ids(&g).await.len(), MAX_VALUES * 2);
}

#[tokio::test]
async fn a_patch_touching_more_values_than_its_budget_is_refused_whole() {
    let app = app().await;
    let id = app
        .create_user(json!({"userName": "target", "emails": emails(MAX_VALUES)}))
        .await;
    let before = app.get(&format!("/Users/{id}")).await;
    // Each filtered operation evaluates its filter on all 50 e-mails: 60 of them cost
    // 60 × 51 > 2000.
    let ops: Vec<Value> = (0..60)
        .map(|i| {
            json!({"op": "replace", "path": format!("emails[type eq \"t{i}\"].value"),
                   "value": format!("changed{i}@example.com")})
        })
        .collect();
    let r = app
        .patch_ops(&format!("/Users/{id}"), Value::Array(ops))
        .await;
    r.assert_scim_error(400, Some("invalidValue"));
    let detail = r.body["detail"].as_str().unwrap();
    assert!(detail.contains("limits.max_patch_cost"), "{detail}");
    // All or nothing: not even the first operations were applied.
    let after = app.get(&format!("/Users/{id}")).await;
    assert_eq!(after.body, before.body);
    // The same work in smaller requests is accepted.
    let ops: Vec<Value> = (0..20)
        .map(|i| {
            json!({"op": "replace", "path": format!("emails[type eq \"t{i}\"].value"),
                   "value": format!("changed{i}@example.com")})
        })
        .collect();
    app.patch_ops(&format!("/Users/{id}"), Value::Array(ops))
        .await
        .assert_status(200);
    // Many operations on plain attributes stay cheap: 1 per operation plus its value.
    let ops: Vec<Value> = (0..500)
        .map(|i| json!({"op": "replace", "path": "title", "value": format!("t{i}")}))
        .collect();
    let r = app
        .patch_ops(&format!("/Users/{id}"), Value::Array(ops))
        .await;
    r.assert_status(200);
    assert_eq!(r.body["title"], "t499");
}

/// Concurrent PATCHes to one user are computed outside the write transaction and written
/// only if the user did not change meanwhile: none is lost.
#[tokio::test]
async fn concurrent_large_patches_to_one_user_all_apply() {
    let app = app().await;
    let id = app
        .create_user(json!({"userName": "raced", "emails": emails(MAX_VALUES - 20)}))
        .await;
    let patches = (0..20).map(|i| {
        let app = &app;
        let id = id.clone();
        async move {
            // 30 values held: heavy enough for the blocking pool with 20 operations.
            let ops: Vec<Value> = (0..20)
                .map(|_| json!({"op": "add", "path": "emails", "value": [{"value": format!("new{i}@example.com")}]}))
                .collect();
            app.patch_ops(&format!("/Users/{id}"), Value::Array(ops)).await.status
        }
    });
    let statuses = futures::future::join_all(patches).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let stored = app.get(&format!("/Users/{id}")).await;
    assert_eq!(stored.body["emails"].as_array().unwrap().len(), MAX_VALUES);
}

/// The PATCHes of one `/Bulk` share the request's budget: a Bulk of many PATCHes cannot do
/// many times the work of one.
#[tokio::test]
async fn the_patches_of_one_bulk_share_one_budget() {
    let app = app().await;
    let id = app
        .create_user(json!({"userName": "bulked", "emails": emails(MAX_VALUES)}))
        .await;
    // 15 filtered operations on 50 e-mails cost about 780: two fit in 2000, a third does not.
    let patch = |k: usize| {
        let ops: Vec<Value> = (0..15)
            .map(|i| {
                json!({"op": "replace", "path": format!("emails[type eq \"t{i}\"].display"),
                       "value": format!("round {k}")})
            })
            .collect();
        json!({"method": "PATCH", "path": format!("/Users/{id}"),
               "data": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops}})
    };
    let r = app
        .post(
            "/Bulk",
            json!({"Operations": [patch(1), patch(2), patch(3)]}),
        )
        .await;
    r.assert_status(200);
    let statuses: Vec<&str> = r.body["Operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["200", "200", "400"], "{}", r.text);
    assert_eq!(
        r.body["Operations"][2]["response"]["scimType"], "invalidValue",
        "{}",
        r.text
    );
}
