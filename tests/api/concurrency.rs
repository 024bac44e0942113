//! Concurrent writers: uniqueness holds, nothing deadlocks.

use std::sync::Arc;

use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn thirty_identical_posts_yield_exactly_one_201() {
    let app = Arc::new(TestApp::spawn().await);
    let tasks: Vec<_> = (0..30)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                app.post("/Users", json!({"userName": "race@example.com"}))
                    .await
                    .status
            })
        })
        .collect();
    let statuses: Vec<u16> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        29,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn thirty_distinct_posts_all_succeed() {
    let app = Arc::new(TestApp::spawn().await);
    let tasks: Vec<_> = (0..30)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                app.post("/Users", json!({"userName": format!("user{i}")}))
                    .await
                    .status
            })
        })
        .collect();
    let statuses: Vec<u16> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    assert_eq!(app.get("/Users").await.body["totalResults"], 30);
}

#[tokio::test]
async fn concurrent_patches_to_one_user_all_apply() {
    let app = Arc::new(TestApp::spawn().await);
    let id = app.user("busy").await;
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let app = app.clone();
            let id = id.clone();
            tokio::spawn(async move {
                app.patch_ops(&format!("/Users/{id}"), json!([{"op": "add", "path": "emails", "value": [{"value": format!("e{i}@x.org")}]}]))
                    .await
                    .status
            })
        })
        .collect();
    let statuses: Vec<u16> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let r = app.get(&format!("/Users/{id}")).await;
    assert_eq!(
        r.body["emails"].as_array().unwrap().len(),
        10,
        "no update was lost"
    );
    assert_eq!(r.body["meta"]["version"], "W/\"11\"");
}
