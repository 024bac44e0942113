//! The request time limit never lies (issue 8 item 2): a request answered 503 at its deadline
//! has nothing committed, and a write already handed to a transaction is waited for, so its
//! answer is its outcome.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sqlx::Connection;

use crate::helpers::{backend, TestApp};
use usersync::config::Dur;
use usersync::store::Backend;

const LIMIT: Duration = Duration::from_millis(300);

async fn app() -> TestApp {
    TestApp::spawn_with(|s| {
        s.limits.request_timeout = Dur(LIMIT);
        // Longer than the test holds the write lock: the store waits for it rather than
        // failing, as a busy production database would.
        s.store.acquire_timeout = Dur(Duration::from_secs(20));
    })
    .await
}

async fn users_named(app: &TestApp, name: &str) -> Value {
    let r = app
        .get(&format!("/Users?filter=userName%20eq%20%22{name}%22"))
        .await;
    r.assert_status(200);
    r.body["totalResults"].clone()
}

/// SQLite: another process holds the write lock, so the group-commit batcher cannot begin
/// its transaction before the deadline. The create is answered 503, is never run once the
/// lock is free, and the IdP's retry creates the user (201, not 409).
#[tokio::test]
async fn a_create_answered_503_by_the_time_limit_leaves_nothing_committed() {
    if backend() != Backend::Sqlite {
        return; // PostgreSQL: see the next test.
    }
    let app = app().await;
    let url = app.state.settings.database.clone();
    let mut holder = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut holder)
        .await
        .unwrap();
    let body = json!({"userName": "late-writer", "active": true});
    let r = app.post("/Users", body.clone()).await;
    r.assert_scim_error(503, None);
    assert!(r.header("retry-after").is_some());
    // The batcher is still waiting for the lock with the abandoned write in hand.
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    drop(holder);
    // Let the batcher take the lock and dispose of that batch.
    app.user("after-the-lock").await;
    assert_eq!(users_named(&app, "late-writer").await, json!(0));
    assert!(
        app.queued().await.len() == 1,
        "only the later user is queued for delivery"
    );
    let retry = app.post("/Users", body).await;
    retry.assert_status(201);
}

/// PostgreSQL (and SQLite alike once a write runs): a write that has started when the
/// deadline passes is waited for, and the IdP hears its real outcome, not a 503 for a
/// write that then commits.
#[tokio::test]
async fn a_write_that_started_before_the_deadline_is_answered_with_its_outcome() {
    if backend() != Backend::Postgres {
        return; // SQLite's writer cannot be blocked after its transaction began from outside.
    }
    let app = app().await;
    let mut holder = sqlx::PgConnection::connect(&app.state.settings.database)
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
    sqlx::query("LOCK TABLE resources IN ACCESS EXCLUSIVE MODE")
        .execute(&mut holder)
        .await
        .unwrap();
    let release = tokio::spawn(async move {
        tokio::time::sleep(LIMIT * 3).await;
        sqlx::query("COMMIT").execute(&mut holder).await.unwrap();
    });
    let started = Instant::now();
    let r = app
        .post(
            "/Users",
            json!({"userName": "slow-but-true", "active": true}),
        )
        .await;
    release.await.unwrap();
    assert!(started.elapsed() >= LIMIT * 2, "the lock delayed the write");
    r.assert_status(201);
    assert_eq!(users_named(&app, "slow-but-true").await, json!(1));
}

/// A `/Bulk` past its deadline: every operation answered as created is stored, and every
/// other one is not (no 503 for the whole request after some of it committed).
#[tokio::test]
async fn a_bulk_past_its_deadline_reports_exactly_what_was_committed() {
    let app =
        TestApp::spawn_with(|s| s.limits.request_timeout = Dur(Duration::from_millis(20))).await;
    let ops: Vec<_> = (0..300)
        .map(|i| json!({"method": "POST", "path": "/Users", "bulkId": format!("b{i}"), "data": {"userName": format!("slow{i}")}}))
        .collect();
    let r = app.post("/Bulk", json!({"Operations": ops})).await;
    let committed = app.get("/Users?count=1").await.body["totalResults"]
        .as_u64()
        .unwrap();
    if r.status == 503 {
        r.assert_scim_error(503, None);
        assert!(r.header("retry-after").is_some());
        assert_eq!(committed, 0, "a 503 means nothing was written");
        return;
    }
    r.assert_status(200);
    let statuses: Vec<&str> = r.body["Operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    let created = statuses.iter().filter(|s| **s == "201").count() as u64;
    assert_eq!(created, committed, "answers: {statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == "201" || *s == "503"),
        "{statuses:?}"
    );
    assert!(created < 300, "300 creates cannot all finish in 20 ms");
}

/// PostgreSQL: a started write that waits on a lock longer than `store.acquire_timeout` fails
/// as saturation (429, nothing written) rather than holding its request for as long as
/// another session keeps the lock.
#[tokio::test]
async fn a_write_blocked_on_a_lock_is_answered_429_after_the_acquire_timeout() {
    if backend() != Backend::Postgres {
        return; // SQLite's equivalent is its busy timeout, the same setting.
    }
    let app = TestApp::spawn_with(|s| {
        s.limits.request_timeout = Dur(Duration::from_millis(200));
        s.store.acquire_timeout = Dur(Duration::from_millis(400));
    })
    .await;
    let mut holder = sqlx::PgConnection::connect(&app.state.settings.database)
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
    sqlx::query("LOCK TABLE resources IN ACCESS EXCLUSIVE MODE")
        .execute(&mut holder)
        .await
        .unwrap();
    let r = tokio::time::timeout(
        Duration::from_secs(15),
        app.post("/Users", json!({"userName": "locked-out", "active": true})),
    )
    .await
    .expect("answered while the lock is still held");
    r.assert_scim_error(429, None);
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    assert_eq!(users_named(&app, "locked-out").await, json!(0));
}
