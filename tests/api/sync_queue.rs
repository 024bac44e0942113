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

#[tokio::test]
async fn membership_changes_mark_the_member_users() {
    let app = TestApp::spawn().await;
    let (a, b) = (app.user("ma").await, app.user("mb").await);
    let g = app.group("MG", &[]).await;
    let generation = |rows: &[usersync::store::queue::QueueRow], id: &str| {
        rows.iter()
            .find(|r| r.key.id == id)
            .map(|r| r.generation)
            .unwrap_or(0)
    };
    let before = app.store.queue_rows(Some("idp")).await.unwrap();
    app.patch_ops(
        &format!("/Groups/{g}"),
        json!([{"op": "add", "path": "members", "value": [{"value": a}]}]),
    )
    .await
    .assert_status(200);
    let after = app.store.queue_rows(Some("idp")).await.unwrap();
    assert_eq!(
        generation(&after, &a),
        generation(&before, &a) + 1,
        "added member marked"
    );
    assert_eq!(
        generation(&after, &b),
        generation(&before, &b),
        "others untouched"
    );
    app.delete(&format!("/Groups/{g}")).await.assert_status(204);
    let gone = app.store.queue_rows(Some("idp")).await.unwrap();
    assert_eq!(
        generation(&gone, &a),
        generation(&after, &a) + 1,
        "members of a deleted group marked"
    );
}
