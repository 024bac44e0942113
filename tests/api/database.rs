//! The database ends the server's connections under it (PostgreSQL: a failover, a restart,
//! an administrator ending sessions). The pools do not ping a connection before lending it
//! (README.md "Benchmark"), so a request can meet a connection that is already dead: it
//! must be answered 503 with Retry-After, the IdP's cue to send it again, never 500; and
//! the server must serve again without a restart.

use serde_json::json;
use usersync::store::Backend;

use crate::helpers::{backend, TestApp};

#[tokio::test]
async fn requests_on_connections_postgres_ended_get_503_and_the_server_recovers() {
    if backend() != Backend::Postgres {
        eprintln!("skipped: PostgreSQL only; run with USERSYNC_TEST_BACKEND=postgres");
        return;
    }
    let app = TestApp::spawn().await;
    let id = app.user("before.kill").await;
    // Concurrent lookups, so the pool holds several idle connections.
    let path = format!("/Users/{id}");
    let warm = (0..8).map(|_| app.get(&path));
    for r in futures_util::future::join_all(warm).await {
        r.assert_status(200);
    }

    let admin = sqlx::PgPool::connect(&app.db_url).await.unwrap();
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(&admin)
    .await
    .unwrap();
    assert!(ended.len() >= 2, "the server held connections: {ended:?}");
    admin.close().await;

    // Each dead connection fails at most the one request that meets it; the pool drops it.
    let mut failed = 0;
    let mut served = 0;
    let mut created = 0;
    for n in 0..40 {
        let r = if n % 2 == 0 {
            app.get(&format!("/Users/{id}")).await
        } else {
            app.post("/Users", json!({"userName": format!("after.kill.{n}")}))
                .await
        };
        match r.status {
            200 => served += 1,
            201 => {
                served += 1;
                created += 1;
            }
            503 => {
                r.assert_scim_error(503, None);
                assert!(r.header("retry-after").is_some(), "503 without Retry-After");
                failed += 1;
            }
            other => panic!("request {n}: {other} {}", r.body),
        }
    }
    assert!(
        failed <= ended.len(),
        "{failed} failures for {} connections",
        ended.len()
    );
    assert!(served >= 40 - ended.len(), "served {served} of 40");
    // Nothing half-written: exactly the creates answered 201 are stored.
    let list = app
        .get("/Users?filter=userName%20sw%20%22after.kill.%22")
        .await;
    list.assert_status(200);
    assert_eq!(list.body["totalResults"], created);
}
