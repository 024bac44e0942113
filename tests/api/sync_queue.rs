//! Every acknowledged write marks its key in the sync queue, in the same transaction.

use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn every_write_marks_its_key_and_rejected_writes_do_not() {
    let app = TestApp::spawn().await;
    let u = app.user("q1").await;
    assert_eq!(app.queued().await, vec![u.clone()]);
    app.post("/Users", json!({"userName": "Q1"}))
        .await
        .assert_status(409);
    app.post("/Users", json!({"userName": 1}))
        .await
        .assert_status(400);
    assert_eq!(app.queued().await, vec![u.clone()]);
    let g = app.group("QG", &[&u]).await;
    let rows = app.store.queue_rows(Some("idp")).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().any(|r| r.key.id == g));
    let before = rows.iter().find(|r| r.key.id == u).unwrap().generation;
    app.patch_ops(
        &format!("/Users/{u}"),
        json!([{"op": "add", "path": "title", "value": "T"}]),
    )
    .await
    .assert_status(200);
    let after = app
        .store
        .queue_rows(Some("idp"))
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.key.id == u)
        .unwrap()
        .generation;
    assert_eq!(after, before + 1);
}

#[tokio::test]
async fn an_unchanged_resend_marks_nothing() {
    let app = TestApp::spawn().await;
    let body = json!({"userName": "resend", "title": "T", "active": true});
    let id = app.create_user(body.clone()).await;
    let generation = |rows: Vec<usersync::store::queue::QueueRow>| rows[0].generation;
    let before = generation(app.store.queue_rows(Some("idp")).await.unwrap());
    app.put(&format!("/Users/{id}"), body)
        .await
        .assert_status(200);
    app.patch_ops(
        &format!("/Users/{id}"),
        json!([{"op": "replace", "path": "active", "value": true}]),
    )
    .await
    .assert_status(200);
    assert_eq!(
        generation(app.store.queue_rows(Some("idp")).await.unwrap()),
        before
    );
}

#[tokio::test]
async fn deletes_stay_in_the_queue_for_deprovisioning() {
    let app = TestApp::spawn().await;
    let id = app.user("leaver").await;
    app.delete(&format!("/Users/{id}")).await.assert_status(204);
    assert_eq!(app.queued().await, vec![id]);
}
