//! The operations API (docs/admin-api.md) on its own listener: the authorisation matrix,
//! problem+json errors, every endpoint on a real server and store, and the seed's flow end
//! to end (a Linchpin field with source IdP mapped to `manager`, "sync one user", the
//! timeline, the feed).

use reqwest::Method;
use serde_json::{json, Value};
use usersync::emulator::{ConfluenceVersion, Seed};
use usersync::mapping::rules::FieldSpec;
use usersync::store::admin::AdminRole;
use usersync::store::audit::{ActorKind, AuditQuery};

use crate::helpers::{TestApp, TestResponse, CONNECTOR, OTHER};

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// Asserts an RFC 9457 problem with this status.
#[track_caller]
fn assert_problem(r: &TestResponse, status: u16) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(
        r.header("content-type"),
        Some("application/problem+json"),
        "{}",
        r.text
    );
    assert_eq!(r.body["status"], json!(status), "{}", r.text);
    assert!(r.body["type"].is_string() && r.body["title"].is_string());
    assert!(
        r.body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{}",
        r.text
    );
}

struct Tokens {
    admin: String,
    viewer: String,
}

async fn tokens(app: &TestApp) -> Tokens {
    Tokens {
        admin: app.admin_token("ops-admin", AdminRole::Admin).await,
        viewer: app.admin_token("ops-viewer", AdminRole::Viewer).await,
    }
}

async fn delivering_app() -> TestApp {
    TestApp::spawn_with_confluence(ConfluenceVersion::V10_2, |_| {}).await
}

#[tokio::test]
async fn the_authorisation_matrix_holds_for_every_endpoint() {
    let app = delivering_app().await;
    let t = tokens(&app).await;
    let id = app.user("matrix@example.com").await;
    let group = app.group("Matrix", &[&id]).await;
    let reads = [
        "/connectors".to_owned(),
        format!("/connectors/{CONNECTOR}"),
        format!("/connectors/{CONNECTOR}/users?q=matrix"),
        format!("/connectors/{CONNECTOR}/groups"),
        format!("/connectors/{CONNECTOR}/users/{id}"),
        format!("/connectors/{CONNECTOR}/groups/{group}"),
        format!("/connectors/{CONNECTOR}/users/{id}/timeline"),
        format!("/connectors/{CONNECTOR}/groups/{group}/timeline"),
        format!("/connectors/{CONNECTOR}/mapping"),
        format!("/connectors/{CONNECTOR}/mapping/preview/{id}"),
        format!("/connectors/{CONNECTOR}/linchpin-fields"),
        format!("/connectors/{CONNECTOR}/mapping/versions"),
        format!("/connectors/{CONNECTOR}/queue?state=dead"),
        format!("/connectors/{CONNECTOR}/reconcile-runs"),
        format!("/connectors/{CONNECTOR}/pull-runs"),
        "/health".to_owned(),
        "/audit".to_owned(),
    ];
    let actions = [
        format!("/connectors/{CONNECTOR}/users/{id}/dry-run"),
        format!("/connectors/{CONNECTOR}/users/{id}/sync"),
        format!("/connectors/{CONNECTOR}/users/{id}/retry"),
        format!("/connectors/{CONNECTOR}/groups/{group}/retry"),
        format!("/connectors/{CONNECTOR}/retry-dead"),
        format!("/connectors/{CONNECTOR}/pause"),
        format!("/connectors/{CONNECTOR}/resume"),
        format!("/connectors/{CONNECTOR}/rotate-token"),
        format!("/connectors/{CONNECTOR}/pull"),
    ];
    let scim_token = app.token.clone();
    let basic = "Basic b3BzLWFkbWluOnNlY3JldA==";
    for (method, path) in reads
        .iter()
        .map(|p| (Method::GET, p))
        .chain(actions.iter().map(|p| (Method::POST, p)))
    {
        // No token, a SCIM connector's token, a revoked-looking admin token, Basic: 401.
        let none = app.admin(method.clone(), path, None).await;
        assert_problem(&none, 401);
        assert!(none
            .header("www-authenticate")
            .is_some_and(|h| h.starts_with("Bearer")));
        assert_problem(
            &app.admin(method.clone(), path, Some(&scim_token)).await,
            401,
        );
        assert_problem(
            &app.admin(method.clone(), path, Some("usa_not-a-real-token"))
                .await,
            401,
        );
        let url = format!("{}/admin/api/v1{path}", app.admin_address);
        let r = app
            .client
            .request(method.clone(), &url)
            .header("Authorization", basic)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401, "{method} {path} with Basic");
    }
    for path in &reads {
        let r = app.admin(Method::GET, path, Some(&t.viewer)).await;
        assert_eq!(r.status, 200, "viewer GET {path}: {}", r.text);
        let r = app.admin(Method::GET, path, Some(&t.admin)).await;
        assert_eq!(r.status, 200, "admin GET {path}: {}", r.text);
    }
    for path in &actions {
        assert_problem(&app.admin(Method::POST, path, Some(&t.viewer)).await, 403);
    }
    // Each refusal is in the audit trail, with the route template (no ids).
    let refused = app
        .store
        .audit_query(&AuditQuery {
            actor: Some("ops-viewer".into()),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(refused.len(), actions.len());
    assert!(
        refused.iter().all(|r| r.outcome == "refused: viewer role"
            && r.connector == CONNECTOR
            && r.operation
                .starts_with("POST /admin/api/v1/connectors/{connector}/")),
        "{refused:?}"
    );
    for path in &actions[..7] {
        let r = app.admin(Method::POST, path, Some(&t.admin)).await;
        // The key is not dead, so the retries find it but revive nothing; every other
        // action succeeds.
        assert!(
            r.status == 200 || (path.ends_with("/retry") && r.status == 404),
            "admin POST {path}: {} {}",
            r.status,
            r.text
        );
    }
    // A connector's SCIM endpoints refuse an admin token.
    let scim = app
        .send(
            Method::GET,
            "/Users",
            None,
            crate::helpers::Opts {
                auth: Some(format!("Bearer {}", t.admin)),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(scim.status, 401);
    // A revoked token stops working at once.
    let audit = usersync::store::audit::AdminAction {
        connector: String::new(),
        token: "(test)".into(),
        action: "admin_token.revoke".into(),
        target_kind: Some("admin_token".into()),
        target: Some("ops-viewer".into()),
        outcome: "ok".into(),
    };
    assert!(app
        .store
        .revoke_admin_token("ops-viewer", time::OffsetDateTime::now_utc(), &audit)
        .await
        .unwrap());
    assert_problem(
        &app.admin(Method::GET, "/connectors", Some(&t.viewer)).await,
        401,
    );
}

#[tokio::test]
async fn bad_input_is_a_problem_and_the_scim_port_has_no_admin_api() {
    let app = TestApp::spawn().await;
    let t = tokens(&app).await;
    let v = Some(t.viewer.as_str());
    assert_problem(&app.admin(Method::GET, "/connectors/nope", v).await, 404);
    assert_problem(
        &app.admin(Method::GET, "/connectors/nope/users", v).await,
        404,
    );
    assert_problem(
        &app.admin(
            Method::GET,
            &format!("/connectors/{CONNECTOR}/users/no-such-id"),
            v,
        )
        .await,
        404,
    );
    for q in [
        "page=0",
        "page=abc",
        "per_page=0",
        "per_page=201",
        "page=-1",
    ] {
        let r = app
            .admin(
                Method::GET,
                &format!("/connectors/{CONNECTOR}/users?{q}"),
                v,
            )
            .await;
        assert_problem(&r, 400);
        assert!(
            r.body["detail"].as_str().unwrap().contains('='),
            "{}",
            r.text
        );
    }
    assert_problem(
        &app.admin(Method::GET, "/audit?since=yesterday", v).await,
        400,
    );
    assert_problem(&app.admin(Method::GET, "/audit?limit=0", v).await, 400);
    assert_problem(&app.admin(Method::GET, "/no/such/endpoint", v).await, 404);
    assert_problem(&app.admin(Method::DELETE, "/connectors", v).await, 405);
    // Sync needs a Confluence: 409, not a crash.
    let id = app.user("lonely@example.com").await;
    let r = app
        .admin(
            Method::POST,
            &format!("/connectors/{CONNECTOR}/users/{id}/sync"),
            Some(&t.admin),
        )
        .await;
    assert_problem(&r, 409);
    // The SCIM listener does not serve the admin API.
    let r = app
        .client
        .get(format!("{}/admin/api/v1/connectors", app.address))
        .header("Authorization", format!("Bearer {}", t.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
}

#[tokio::test]
async fn the_connector_list_shows_counts_queue_and_last_activity() {
    let app = delivering_app().await;
    let t = tokens(&app).await;
    let a = app.user("ann@example.com").await;
    app.user("bob@example.com").await;
    app.group("Staff", &[&a]).await;
    let r = app.admin(Method::GET, "/connectors", Some(&t.viewer)).await;
    r.assert_status(200);
    let list = r.body["connectors"].as_array().unwrap();
    let names: Vec<&str> = list.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, [CONNECTOR, OTHER]);
    let idp = &list[0];
    assert_eq!(idp["source"], "stored");
    assert_eq!(idp["users"], 2);
    assert_eq!(idp["groups"], 1);
    assert_eq!(idp["queue_depth"], 3);
    assert_eq!(idp["dead_keys"], 0);
    assert_eq!(idp["auth_modes"], json!(["bearer"]));
    assert!(idp["scim_base_url"]
        .as_str()
        .unwrap()
        .ends_with("/scim/v2/idp"));
    assert!(idp["last_scim_request"].is_string());
    assert!(idp["last_scim_write"].is_string());
    assert!(idp["last_delivery"].is_null());
    assert_eq!(idp["delivery_paused"], false);
    assert_eq!(list[1]["users"], 0);
    assert!(list[1]["last_scim_request"].is_null());

    app.deliver_all().await;
    let r = app
        .admin(
            Method::GET,
            &format!("/connectors/{CONNECTOR}"),
            Some(&t.viewer),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.body["queue_depth"], 0);
    assert!(r.body["last_delivery"].is_string(), "{}", r.text);
    assert_eq!(r.body["tokens"].as_array().unwrap().len(), 1);
    assert_eq!(
        r.body["tokens"][0]["fingerprint"].as_str().unwrap().len(),
        12
    );
    assert!(!r.text.contains(&app.token), "never the token itself");

    // A connector created by the CLI (here: straight in the store) shows up at once.
    app.store
        .create_connector("late", "00", time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    let r = app
        .admin(Method::GET, "/connectors/late", Some(&t.viewer))
        .await;
    r.assert_status(200);
}

#[tokio::test]
async fn pause_holds_delivery_on_every_instance_until_resume() {
    let app = delivering_app().await;
    let t = tokens(&app).await;
    let r = app
        .admin(
            Method::POST,
            &format!("/connectors/{CONNECTOR}/pause"),
            Some(&t.admin),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.body["delivery_paused"], true);
    app.user("paused@example.com").await;
    // The worker (another handle on the store: what another instance would do) claims
    // nothing of the paused connector.
    assert_eq!(app.deliver_all().await, 0);
    assert!(app.confluence().user("paused@example.com").is_none());
    assert_eq!(app.queued().await.len(), 1);
    // Other connectors are not held.
    let other = app
        .send_url(
            Method::POST,
            &format!("{}/scim/v2/{OTHER}/Users", app.address),
            Some(json!({"userName": "other@example.com"})),
            crate::helpers::Opts {
                auth: Some(format!("Bearer {}", app.other_token)),
                ..Default::default()
            },
        )
        .await;
    other.assert_status(201);
    assert_eq!(app.deliver_all().await, 1);

    let r = app
        .admin(
            Method::POST,
            &format!("/connectors/{CONNECTOR}/resume"),
            Some(&t.admin),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.body["delivery_paused"], false);
    assert_eq!(app.deliver_all().await, 1);
    assert!(app.confluence().user("paused@example.com").is_some());
    // Both actions are in the audit trail under the token's name.
    let rows = app
        .store
        .audit_query(&AuditQuery {
            actor: Some("ops-admin".into()),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let ops: Vec<&str> = rows.iter().map(|r| r.operation.as_str()).collect();
    assert_eq!(ops, ["connector.resume", "connector.pause"]);
    assert!(rows
        .iter()
        .all(|r| r.actor_kind == ActorKind::Admin && r.outcome == "ok"));
}

#[tokio::test]
async fn rotate_gives_a_working_token_once_and_refuses_declared_connectors() {
    let app = TestApp::spawn().await;
    let t = tokens(&app).await;
    let r = app
        .admin(
            Method::POST,
            &format!("/connectors/{OTHER}/rotate-token"),
            Some(&t.admin),
        )
        .await;
    r.assert_status(200);
    let new = r.body["token"].as_str().unwrap().to_owned();
    assert!(new.starts_with("usy_"));
    assert!(r.body["previous_tokens_expire"].is_string());
    let works = app
        .send_url(
            Method::GET,
            &format!("{}/scim/v2/{OTHER}/Users", app.address),
            None,
            crate::helpers::Opts {
                auth: Some(format!("Bearer {new}")),
                ..Default::default()
            },
        )
        .await;
    works.assert_status(200);
    let detail = app
        .admin(
            Method::GET,
            &format!("/connectors/{OTHER}"),
            Some(&t.viewer),
        )
        .await;
    assert_eq!(detail.body["tokens"].as_array().unwrap().len(), 2);
    assert!(!detail.text.contains(&new));

    let declared = TestApp::spawn_with_connector(|_| {}).await;
    let admin = declared.admin_token("ops", AdminRole::Admin).await;
    let r = declared
        .admin(
            Method::POST,
            &format!("/connectors/{CONNECTOR}/rotate-token"),
            Some(&admin),
        )
        .await;
    assert_problem(&r, 409);
}

#[tokio::test]
async fn search_pages_through_users_and_groups_by_name_email_and_external_id() {
    let app = TestApp::spawn().await;
    let t = tokens(&app).await;
    let v = Some(t.viewer.as_str());
    app.create_user(json!({"userName": "alice.smith@example.com", "externalId": "E-100",
        "displayName": "Alice Smith", "emails": [{"value": "alice@corp.example", "primary": true}]}))
        .await;
    app.create_user(json!({"userName": "bob@example.com", "displayName": "Bob Smith"}))
        .await;
    app.create_user(json!({"userName": "carol@example.com", "displayName": "Carol"}))
        .await;
    app.group("Smith Family", &[]).await;
    let search = |q: &str| format!("/connectors/{CONNECTOR}/users?{q}");
    let names = |r: &TestResponse| -> Vec<String> {
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let r = app.admin(Method::GET, &search("q=SMITH"), v).await;
    r.assert_status(200);
    assert_eq!(r.body["total"], 2);
    assert_eq!(names(&r), ["alice.smith@example.com", "bob@example.com"]);
    let r = app.admin(Method::GET, &search("q=corp.example"), v).await;
    assert_eq!(names(&r), ["alice.smith@example.com"]);
    assert_eq!(r.body["items"][0]["email"], "alice@corp.example");
    assert_eq!(r.body["items"][0]["external_id"], "E-100");
    assert_eq!(r.body["matched"], "contains");
    let r = app.admin(Method::GET, &search("q=E-100"), v).await;
    assert_eq!(r.body["total"], 1);
    assert_eq!(r.body["matched"], "exact");
    // An exact userName finds that user only, not the others containing it.
    let r = app
        .admin(Method::GET, &search("q=Bob%40Example.com"), v)
        .await;
    assert_eq!(
        (r.body["total"].clone(), r.body["matched"].clone()),
        (json!(1), json!("exact"))
    );
    let r = app
        .admin(Method::GET, &search("q=%22quoted%22%20%5C"), v)
        .await;
    r.assert_status(200);
    assert_eq!(r.body["total"], 0);
    // Paging: every user once, in order.
    let mut seen = Vec::new();
    for page in 1..=4 {
        let r = app
            .admin(Method::GET, &search(&format!("per_page=1&page={page}")), v)
            .await;
        r.assert_status(200);
        assert_eq!(r.body["total"], 3);
        seen.extend(names(&r));
    }
    assert_eq!(
        seen,
        [
            "alice.smith@example.com",
            "bob@example.com",
            "carol@example.com"
        ]
    );
    let r = app
        .admin(
            Method::GET,
            &format!("/connectors/{CONNECTOR}/groups?q=smith"),
            v,
        )
        .await;
    assert_eq!(names(&r), ["Smith Family"]);
}

#[tokio::test]
async fn a_user_detail_shows_resource_profile_desired_state_link_and_queue() {
    let app = delivering_app().await;
    let t = tokens(&app).await;
    let id = app
        .create_user(
            json!({"userName": "Dana@Example.com", "displayName": "Dana D",
            ENT: {"department": "Ops"}}),
        )
        .await;
    let path = format!("/connectors/{CONNECTOR}/users/{id}");
    let r = app.admin(Method::GET, &path, Some(&t.viewer)).await;
    r.assert_status(200);
    assert_eq!(r.body["resource"]["userName"], "Dana@Example.com");
    assert_eq!(r.body["desired"]["username"], "dana@example.com");
    assert_eq!(r.body["desired"]["active"], true);
    let dept = r.body["profile"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "department")
        .cloned()
        .unwrap();
    assert_eq!(dept["value"], "Ops");
    assert_eq!(r.body["queue"]["state"], "pending");
    assert!(r.body["link"].is_null() && r.body["applied"].is_null());

    app.deliver_all().await;
    let r = app.admin(Method::GET, &path, Some(&t.viewer)).await;
    assert!(r.body["queue"].is_null(), "{}", r.text);
    assert_eq!(r.body["link"]["confluence_name"], "dana@example.com");
    assert_eq!(r.body["link"]["status"], "active");
    assert!(r.body["applied"].is_object(), "{}", r.text);
}

#[tokio::test]
async fn sync_now_delivers_and_dry_run_plans_without_writing() {
    let app = delivering_app().await;
    let t = tokens(&app).await;
    let id = app.user("erin@example.com").await;
    let r = app
        .admin(
            Method::POST,
            &format!("/connectors/{CONNECTOR}/users/{id}/dry-run"),
            Some(&t.admin),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.body["outcome"], "done");
    let planned = r.body["planned"].as_array().unwrap();
    assert!(
        planned.iter().any(|p| p
            .as_str()
            .unwrap()
            .starts_with("create user erin@example.com")),
        "{}",
        r.text
    );
    assert!(app.confluence().user("erin@example.com").is_none());
    let calls = app.confluence().calls();
    assert!(
        calls.iter().all(|c| c.method == "GET"),
        "a dry run only reads: {calls:?}"
    );

    let r = app
        .admin(
            Method::POST,
            &format!("/connectors/{CONNECTOR}/users/{id}/sync"),
            Some(&t.admin),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.body["outcome"], "done", "{}", r.text);
    assert!(r.body["calls"].as_array().unwrap().len() >= 2);
    assert!(app.confluence().user("erin@example.com").is_some());
    let audit = app
        .admin(Method::GET, "/audit?actor=ops-admin", Some(&t.viewer))
        .await;
    assert_eq!(audit.body["items"][0]["operation"], "user.sync");
    assert_eq!(audit.body["items"][0]["outcome"], "done");
    assert_eq!(audit.body["items"][0]["resource_id"], json!(id));
}

#[tokio::test]
async fn a_dead_key_is_retried_one_by_one_or_all_at_once() {
    let app = delivering_app().await;
    let t = tokens(&app).await;
    // A userName Confluence refuses ends dead (400 is the key's own fault).
    let ids = [
        app.user("frank@example.com").await,
        app.user("gina@example.com").await,
    ];
    let now = time::OffsetDateTime::now_utc();
    for claim in app
        .store
        .claim_due(now, std::time::Duration::from_secs(30), 10)
        .await
        .unwrap()
    {
        assert!(app.store.bury_claim(&claim, "test: refused").await.unwrap());
    }
    let r = app.admin(Method::GET, "/connectors", Some(&t.viewer)).await;
    assert_eq!(r.body["connectors"][0]["dead_keys"], 2);
    let r = app
        .admin(
            Method::POST,
            &format!("/connectors/{CONNECTOR}/users/{}/retry", ids[0]),
            Some(&t.admin),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.body["revived"], 1);
    let r = app
        .admin(
            Method::POST,
            &format!("/connectors/{CONNECTOR}/retry-dead"),
            Some(&t.admin),
        )
        .await;
    assert_eq!(r.body["revived"], 1);
    assert_eq!(app.deliver_all().await, 2);
    let outcomes: Vec<String> = app
        .store
        .audit_query(&AuditQuery {
            actor_kind: Some(ActorKind::Admin),
            connector: Some(CONNECTOR.into()),
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|r| format!("{} {}", r.operation, r.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            "queue.retry_dead ok (1 revived)",
            "queue.retry ok (1 revived)"
        ]
    );
}

#[tokio::test]
async fn the_timeline_lists_writes_with_changes_and_deliveries_newest_first() {
    let app = delivering_app().await;
    let t = tokens(&app).await;
    let id = app
        .create_user(json!({"userName": "hal@example.com", "title": "Engineer", "active": true}))
        .await;
    app.deliver_all().await;
    app.patch_ops(
        &format!("/Users/{id}"),
        json!([{"op": "replace", "path": "title", "value": "Manager"}]),
    )
    .await
    .assert_status(200);
    app.patch_ops(
        &format!("/Users/{id}"),
        json!([{"op": "replace", "path": "active", "value": false}]),
    )
    .await
    .assert_status(200);
    app.deliver_all().await;
    let r = app
        .admin(
            Method::GET,
            &format!("/connectors/{CONNECTOR}/users/{id}/timeline"),
            Some(&t.viewer),
        )
        .await;
    r.assert_status(200);
    let items = r.body["items"].as_array().unwrap();
    let kinds: Vec<&str> = items.iter().map(|i| i["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "delivery",
            "scim_write",
            "scim_write",
            "delivery",
            "scim_write"
        ],
        "{}",
        r.text
    );
    let ats: Vec<&str> = items.iter().map(|i| i["at"].as_str().unwrap()).collect();
    let mut sorted = ats.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(ats, sorted, "newest first");
    let deactivate = &items[1]["detail"];
    assert_eq!(deactivate["operation"], "PATCH");
    assert!(deactivate["actor"].as_str().unwrap().starts_with("token:"));
    assert_eq!(
        deactivate["changes"],
        json!([{"path": "active", "old": true, "new": false}])
    );
    assert_eq!(
        items[2]["detail"]["changes"],
        json!([{"path": "title", "old": "Engineer", "new": "Manager"}])
    );
    assert_eq!(items[4]["detail"]["operation"], "POST");
    let last_delivery = &items[0]["detail"];
    assert_eq!(last_delivery["outcome"], "delivered");
    let calls = last_delivery["calls"].as_array().unwrap();
    assert!(
        calls
            .iter()
            .any(|c| c["call"].as_str().unwrap().contains("disable")),
        "{calls:?}"
    );
    assert!(calls
        .iter()
        .all(|c| !c["call"].as_str().unwrap().contains("hal@")));
    let r = app
        .admin(
            Method::GET,
            &format!("/connectors/{CONNECTOR}/users/{id}/timeline?limit=1"),
            Some(&t.viewer),
        )
        .await;
    assert!(r.body["items"].as_array().unwrap().len() <= 2);
    assert_problem(
        &app.admin(
            Method::GET,
            &format!("/connectors/{CONNECTOR}/users/{id}/timeline?limit=501"),
            Some(&t.viewer),
        )
        .await,
        400,
    );
}

#[tokio::test]
async fn the_audit_log_filters_by_connector_actor_resource_and_time_and_pages() {
    let app = TestApp::spawn().await;
    let t = tokens(&app).await;
    let v = Some(t.viewer.as_str());
    let ids = [
        app.user("ivy@example.com").await,
        app.user("jon@example.com").await,
        app.user("kim@example.com").await,
    ];
    let r = app
        .admin(
            Method::GET,
            &format!("/audit?connector={CONNECTOR}&limit=2"),
            v,
        )
        .await;
    r.assert_status(200);
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["resource_id"], json!(ids[2]));
    let next = r.body["next_before_seq"].as_i64().unwrap();
    let r = app
        .admin(
            Method::GET,
            &format!("/audit?connector={CONNECTOR}&limit=2&before_seq={next}"),
            v,
        )
        .await;
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["resource_id"], json!(ids[0]));
    assert!(r.body["next_before_seq"].is_null());
    let r = app
        .admin(Method::GET, &format!("/audit?resource_id={}", ids[1]), v)
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["items"][0]["operation"], "POST");
    let r = app
        .admin(Method::GET, "/audit?since=2999-01-01T00:00:00Z", v)
        .await;
    assert_eq!(r.body["items"], json!([]));
    let r = app
        .admin(Method::GET, &format!("/audit?connector={OTHER}"), v)
        .await;
    assert_eq!(r.body["items"], json!([]));
}

#[tokio::test]
async fn the_openapi_document_is_served_and_names_every_route() {
    let app = TestApp::spawn().await;
    let r = app.admin(Method::GET, "/openapi.json", None).await;
    r.assert_status(200);
    assert_eq!(r.body["openapi"], "3.1.0");
    let paths = r.body["paths"].as_object().unwrap();
    assert_eq!(paths.len(), 29, "{:?}", paths.keys().collect::<Vec<_>>());
    assert!(paths.contains_key("/connectors/{connector}/users/{id}/timeline"));
    assert_eq!(
        r.body["components"]["securitySchemes"]["admin_token"]["scheme"],
        "bearer"
    );
}

/// The seed's flow: a Linchpin field with source "IdP" is listed, the connector maps
/// `manager` to it, "sync one user" runs, the user's timeline shows the write and the
/// delivery, and the Linchpin feed carries the manager.
#[tokio::test]
async fn a_manager_mapped_to_an_idp_sourced_linchpin_field_flows_from_scim_to_the_feed() {
    let app = TestApp::spawn_with_confluence_and_connector(ConfluenceVersion::V10_2, |c| {
        let spec: FieldSpec = serde_json::from_value(json!({
            "name": "manager", "from": "manager", "linchpin_field": "Line Manager"
        }))
        .unwrap();
        c.mapping.fields.push(spec);
    })
    .await;
    let seed: Seed = serde_json::from_value(json!({
        "lup_fields": [
            {"label": "Department", "dataSourceType": "XML"},
            {"label": "Line Manager", "fieldType": "USERSELECT", "dataSourceType": "IDP"},
            {"label": "Shoe size", "dataSourceType": "USER"}
        ]
    }))
    .unwrap();
    app.confluence().reset(Some(&seed)).unwrap();
    let t = tokens(&app).await;
    let v = Some(t.viewer.as_str());

    let r = app
        .admin(
            Method::GET,
            &format!("/connectors/{CONNECTOR}/linchpin-fields"),
            v,
        )
        .await;
    r.assert_status(200);
    let field = |label: &str| -> Value {
        r.body["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["label"] == label)
            .cloned()
            .unwrap_or_else(|| panic!("{label} in {}", r.text))
    };
    let line = field("Line Manager");
    assert_eq!(line["source"], "IDP");
    assert_eq!(line["mappable"], true);
    assert_eq!(line["mapped_by"], "manager");
    assert!(line["key"]
        .as_str()
        .unwrap()
        .starts_with("cup.line-manager-"));
    assert_eq!(field("Shoe size")["mappable"], false);

    let r = app
        .admin(Method::GET, &format!("/connectors/{CONNECTOR}/mapping"), v)
        .await;
    r.assert_status(200);
    assert_eq!(r.body["defined_in"], "config");
    let row = r.body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["target"] == "profile.manager")
        .cloned()
        .unwrap();
    assert_eq!(row["computed"], "manager");
    assert_eq!(row["linchpin_field"], "Line Manager");
    assert_eq!(row["builtin"], false);

    let boss = app
        .create_user(json!({"userName": "boss@example.com", "displayName": "The Boss"}))
        .await;
    let report = app
        .create_user(json!({"userName": "report@example.com",
            ENT: {"manager": {"value": boss}}}))
        .await;
    let preview = app
        .admin(
            Method::GET,
            &format!("/connectors/{CONNECTOR}/mapping/preview/{report}"),
            v,
        )
        .await;
    preview.assert_status(200);
    assert!(preview.body["manager"]
        .as_str()
        .unwrap()
        .starts_with("found by id"));
    assert!(preview.body["feed_element"]
        .as_str()
        .unwrap()
        .contains("<manager>boss@example.com</manager>"));

    for id in [&boss, &report] {
        let r = app
            .admin(
                Method::POST,
                &format!("/connectors/{CONNECTOR}/users/{id}/sync"),
                Some(&t.admin),
            )
            .await;
        r.assert_status(200);
        assert_eq!(r.body["outcome"], "done", "{}", r.text);
    }
    assert!(app.confluence().user("report@example.com").is_some());
    let r = app
        .admin(
            Method::GET,
            &format!("/connectors/{CONNECTOR}/users/{report}/timeline"),
            v,
        )
        .await;
    let kinds: Vec<&str> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["admin_action", "delivery", "scim_write"],
        "{}",
        r.text
    );
    let feed = app
        .client
        .get(app.feed_url())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let at = feed
        .find("<username>report@example.com</username>")
        .expect(&feed);
    let element = &feed[at..at + feed[at..].find("</user>").unwrap()];
    assert!(
        element.contains("<manager>boss@example.com</manager>"),
        "{element}"
    );
}

#[tokio::test]
async fn the_timeline_shows_the_reconcile_items_about_the_user() {
    use usersync::emulator::UserEdit;
    use usersync::reconcile::progress::Silent;
    use usersync::reconcile::{RunRequest, StartedBy};
    use usersync::targets::confluence::{
        ConfluenceAuth, ConfluenceClient, ConfluenceConfig, Secret,
    };

    let app = delivering_app().await;
    let t = tokens(&app).await;
    let id = app.user("ruth@example.com").await;
    app.deliver_all().await;
    // Someone disables the account by hand in Confluence: drift a full sync finds.
    let edit: UserEdit = serde_json::from_value(json!({"active": false})).unwrap();
    assert!(app.confluence().edit_user("ruth@example.com", &edit));
    let client = ConfluenceClient::new(ConfluenceConfig::new(
        app.confluence_url.clone().unwrap(),
        ConfluenceAuth::Pat(Secret::new(crate::helpers::CONFLUENCE_TOKEN)),
    ))
    .unwrap();
    let request = RunRequest {
        connector: CONNECTOR.to_owned(),
        dry_run: true,
        force: false,
        started_by: StartedBy::Cli,
    };
    usersync::app::reconciler(app.store.clone(), client, &app.state.runtime)
        .run(&request, &Silent)
        .await
        .expect("the run");
    let r = app
        .admin(
            Method::GET,
            &format!("/connectors/{CONNECTOR}/users/{id}/timeline"),
            Some(&t.viewer),
        )
        .await;
    r.assert_status(200);
    let first = &r.body["items"][0];
    assert_eq!(first["type"], "reconcile", "{}", r.text);
    assert_eq!(first["detail"]["mode"], "dry_run");
    assert_eq!(first["detail"]["confluence_name"], "ruth@example.com");
    assert!(first["detail"]["class"].is_string());
}

#[tokio::test]
async fn an_edited_mapping_is_validated_versioned_audited_and_in_force_at_once() {
    let app = delivering_app().await;
    let t = tokens(&app).await;
    let id = app
        .create_user(
            json!({"userName": "mo@example.com", "title": "Chef", ENT: {"costCenter": "CC-7"}}),
        )
        .await;
    let path = format!("/connectors/{CONNECTOR}/mapping");
    let put = |token: String, rules: &str| {
        let url = format!("{}/admin/api/v1{path}", app.admin_address);
        let body = json!({ "rules": rules });
        let client = app.client.clone();
        async move {
            let r = client
                .put(url)
                .header("Authorization", format!("Bearer {token}"))
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let ctype = r
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned());
            let text = r.text().await.unwrap();
            (
                status,
                ctype,
                serde_json::from_str::<Value>(&text).unwrap_or(Value::Null),
            )
        }
    };
    let before = app.admin(Method::GET, &path, Some(&t.viewer)).await;
    assert_eq!(before.body["editable"], true);
    assert_eq!(before.body["defined_in"], "builtin");
    // Refused: a viewer; rules that do not parse; rules that do not compile. Nothing saved.
    assert_eq!(put(t.viewer.clone(), "").await.0, 403);
    let (status, ctype, body) = put(t.admin.clone(), "[[fields]]\nname = ").await;
    assert_eq!(
        (status, ctype.as_deref()),
        (400, Some("application/problem+json"))
    );
    assert!(
        body["detail"].as_str().unwrap().contains("not valid"),
        "{body}"
    );
    let (status, _, body) = put(
        t.admin.clone(),
        "[[fields]]\nname = \"cc\"\nsource = \"noSuchAttribute\"\n",
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("noSuchAttribute"),
        "{body}"
    );
    // A preview of unsaved rules on a user.
    let rules = "[[fields]]\nname = \"cost\"\nxml = \"cost_centre\"\nsource = \"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter\"\n";
    let preview = app
        .send_url(
            Method::POST,
            &format!("{}/admin/api/v1{path}/preview", app.admin_address),
            Some(json!({"rules": rules, "user_id": id})),
            crate::helpers::Opts {
                auth: Some(format!("Bearer {}", t.viewer)),
                content_type: Some("application/json".into()),
                ..Default::default()
            },
        )
        .await;
    preview.assert_status(200);
    let cost = preview.body["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "cost")
        .cloned()
        .unwrap();
    assert_eq!(cost["value"], "CC-7");
    let versions = app
        .admin(Method::GET, &format!("{path}/versions"), Some(&t.viewer))
        .await;
    assert_eq!(
        versions.body["versions"],
        json!([]),
        "a preview saves nothing"
    );
    // Saved: version 1, in force, every user queued, audited.
    app.deliver_all().await;
    let (status, _, body) = put(t.admin.clone(), rules).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["version"], 1);
    assert_eq!(body["defined_in"], "edited");
    assert!(body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["target"] == "profile.cost"));
    assert_eq!(app.queued().await, std::slice::from_ref(&id));
    let detail = app
        .admin(
            Method::GET,
            &format!("/connectors/{CONNECTOR}/users/{id}"),
            Some(&t.viewer),
        )
        .await;
    assert!(detail.body["profile"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["name"] == "cost" && f["value"] == "CC-7"));
    let (_, _, body) = put(t.admin.clone(), "").await;
    assert_eq!(body["version"], 2);
    let versions = app
        .admin(Method::GET, &format!("{path}/versions"), Some(&t.viewer))
        .await;
    let numbers: Vec<i64> = versions.body["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [2, 1]);
    let audit = app
        .admin(Method::GET, "/audit?actor=ops-admin", Some(&t.viewer))
        .await;
    let ops: Vec<String> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r["operation"].as_str().unwrap(),
                r["outcome"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        ops,
        ["mapping.save ok (version 2)", "mapping.save ok (version 1)"]
    );
    // Rules written in usersync.toml are the file's.
    let declared = TestApp::spawn_with_connector(|c| {
        c.mapping.default_fields = false;
    })
    .await;
    let admin = declared.admin_token("ops", AdminRole::Admin).await;
    let r = declared.admin(Method::GET, &path, Some(&admin)).await;
    assert_eq!(r.body["editable"], false);
    assert_eq!(r.body["defined_in"], "config");
    let url = format!("{}/admin/api/v1{path}", declared.admin_address);
    let refused = declared
        .client
        .put(url)
        .header("Authorization", format!("Bearer {admin}"))
        .json(&json!({"rules": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 409);
}

#[tokio::test]
async fn health_queue_and_reconcile_runs_are_served() {
    let app = delivering_app().await;
    let t = tokens(&app).await;
    app.user("nia@example.com").await;
    let h = app.admin(Method::GET, "/health", Some(&t.viewer)).await;
    h.assert_status(200);
    assert_eq!(h.body["database"], "ok");
    assert_eq!(h.body["confluence"]["configured"], true);
    assert_eq!(h.body["confluence"]["reachable"], true);
    assert!(
        h.body["confluence"]["version"]
            .as_str()
            .unwrap()
            .contains("10.2"),
        "{}",
        h.text
    );
    assert_eq!(h.body["queue"]["pending"], 1);
    let q = app
        .admin(
            Method::GET,
            &format!("/connectors/{CONNECTOR}/queue?state=pending"),
            Some(&t.viewer),
        )
        .await;
    assert_eq!(q.body["items"][0]["kind"], "User");
    assert_eq!(q.body["items"][0]["state"], "pending");
    assert_problem(
        &app.admin(
            Method::GET,
            &format!("/connectors/{CONNECTOR}/queue?state=gone"),
            Some(&t.viewer),
        )
        .await,
        400,
    );
    let runs = app
        .admin(
            Method::GET,
            &format!("/connectors/{CONNECTOR}/reconcile-runs"),
            Some(&t.viewer),
        )
        .await;
    assert_eq!(runs.body["runs"], json!([]));
    assert_problem(
        &app.admin(Method::GET, "/reconcile-runs/nope", Some(&t.viewer))
            .await,
        404,
    );
    // Confluence down: the panel says so instead of failing.
    let down = TestApp::spawn_with_confluence(ConfluenceVersion::V10_2, |_| {}).await;
    let token = down.admin_token("ops", AdminRole::Viewer).await;
    down.confluence()
        .arm_fault(usersync::emulator::Fault::status(503).times(1000));
    let h = down.admin(Method::GET, "/health", Some(&token)).await;
    h.assert_status(200);
    assert_eq!(h.body["confluence"]["reachable"], false, "{}", h.text);
    assert!(h.body["confluence"]["error"].is_string());
}
