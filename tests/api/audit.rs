//! The audit trail (docs/audit.md): one row per acknowledged SCIM write, each Bulk operation
//! included, written in the write's transaction; none for a refused or rolled-back write;
//! the hash chain catches an edited or a deleted row.

use serde_json::json;
use sqlx::Connection;
use time::OffsetDateTime;
use usersync::connectors::{hash_hex, hash_token};
use usersync::scim::diff::REDACTED;
use usersync::store::audit::{ActorKind, AdminAction, AuditQuery, AuditRecord};
use usersync::store::Backend;

use crate::helpers::{backend, TestApp, CONNECTOR};
use crate::process::{cli as usersync, outcome, Serve};

/// Every audit row, oldest first.
async fn rows(app: &TestApp) -> Vec<AuditRecord> {
    let mut all = app
        .store
        .audit_query(&AuditQuery {
            limit: 1000,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    all.reverse();
    all
}

/// The SCIM rows (not the test set-up's own), oldest first.
async fn scim_rows(app: &TestApp) -> Vec<AuditRecord> {
    rows(app)
        .await
        .into_iter()
        .filter(|r| r.actor_kind == ActorKind::Scim)
        .collect()
}

/// The credential name of the test's bearer token.
fn credential(app: &TestApp) -> String {
    format!("token:{}", &hash_hex(&hash_token(&app.token))[..12])
}

fn change<'a>(r: &'a AuditRecord, path: &str) -> Option<&'a usersync::scim::diff::AttributeChange> {
    r.changes.iter().find(|c| c.path == path)
}

/// Runs `sql` on the test's database over a connection of its own (as someone with access
/// to the database would).
pub async fn raw_sql(app: &TestApp, sql: &str) {
    sqlx::any::install_default_drivers();
    let mut c = sqlx::AnyConnection::connect(&app.db_url).await.unwrap();
    sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
    c.close().await.unwrap();
}

#[tokio::test]
async fn every_acknowledged_write_has_one_row_with_who_what_and_the_change() {
    let app = TestApp::spawn().await;
    let r = app
        .post(
            "/Users",
            json!({"userName": "ann", "name": {"givenName": "Ann"}, "active": true}),
        )
        .await;
    r.assert_status(201);
    let id = r.id();
    app.put(
        &format!("/Users/{id}"),
        json!({"userName": "ann", "name": {"givenName": "Anne"}, "active": true}),
    )
    .await
    .assert_status(200);
    app.patch_ops(
        &format!("/Users/{id}"),
        json!([{"op": "replace", "path": "active", "value": false}]),
    )
    .await
    .assert_status(200);
    let gid = app.group("team", &[&id]).await;
    app.delete(&format!("/Users/{id}")).await.assert_status(204);

    let rows = scim_rows(&app).await;
    let ops: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r.operation.as_str(),
                r.resource_kind.as_deref().unwrap(),
                r.outcome.as_str(),
            )
        })
        .collect();
    assert_eq!(
        ops,
        [
            ("POST", "User", "created"),
            ("PUT", "User", "updated"),
            ("PATCH", "User", "updated"),
            ("POST", "Group", "created"),
            ("DELETE", "User", "deleted"),
        ]
    );
    for r in &rows {
        assert_eq!(r.connector, CONNECTOR);
        assert_eq!(r.actor, credential(&app), "the token that authenticated");
    }
    assert_eq!(rows[0].resource_id.as_deref(), Some(id.as_str()));
    assert_eq!(change(&rows[0], "userName").unwrap().new, json!("ann"));
    let renamed = change(&rows[1], "name.givenName").unwrap();
    assert_eq!(
        (&renamed.old, &renamed.new),
        (&json!("Ann"), &json!("Anne"))
    );
    assert_eq!(
        rows[1].changes.len(),
        1,
        "only what changed: {:?}",
        rows[1].changes
    );
    let deactivated = change(&rows[2], "active").unwrap();
    assert_eq!(
        (&deactivated.old, &deactivated.new),
        (&json!(true), &json!(false))
    );
    assert_eq!(rows[3].resource_id.as_deref(), Some(gid.as_str()));
    assert_eq!(change(&rows[3], "members").unwrap().new, json!([id]));
    assert_eq!(change(&rows[4], "userName").unwrap().old, json!("ann"));
    assert!(change(&rows[4], "userName").unwrap().new.is_null());

    // Rows of one resource, newest first, through the query API.
    let of_user = app
        .store
        .audit_query(&AuditQuery {
            connector: Some(CONNECTOR.into()),
            resource_kind: Some("User".into()),
            resource_id: Some(id.clone()),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(of_user.len(), 4);
    assert_eq!(of_user[0].operation, "DELETE");
    assert!(app.store.audit_verify().await.unwrap().bad.is_empty());
}

#[tokio::test]
async fn each_bulk_operation_has_its_row_and_a_failed_one_none() {
    let app = TestApp::spawn().await;
    let taken = app.user("taken").await;
    let before = scim_rows(&app).await.len();
    let r = app
        .post(
            "/Bulk",
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": [
                {"method": "POST", "path": "/Users", "bulkId": "a", "data": {"userName": "bulk-a"}},
                {"method": "POST", "path": "/Users", "bulkId": "t", "data": {"userName": "taken"}},
                {"method": "POST", "path": "/Groups", "bulkId": "g", "data": {"displayName": "G",
                    "members": [{"value": "bulkId:a"}]}},
                {"method": "PATCH", "path": format!("/Users/{taken}"), "data": {"Operations": [
                    {"op": "replace", "path": "displayName", "value": "A"}]}}
            ]}),
        )
        .await;
    r.assert_status(200);
    let statuses: Vec<&str> = r.body["Operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == "409").count(),
        1,
        "{}",
        r.text
    );
    let rows = scim_rows(&app).await;
    let bulk: Vec<&str> = rows[before..]
        .iter()
        .map(|r| r.operation.as_str())
        .collect();
    assert_eq!(bulk, ["Bulk POST", "Bulk POST", "Bulk PATCH"]);
    assert!(rows[before..]
        .iter()
        .all(|r| change(r, "userName").is_none_or(|c| c.new != json!("taken"))));
}

#[tokio::test]
async fn refused_and_unchanged_writes_leave_no_row() {
    let app = TestApp::spawn().await;
    let id = app.user("only").await;
    let before = scim_rows(&app).await.len();
    // 409: the userName is taken (the insert reached the database and was rolled back).
    app.post("/Users", json!({"userName": "ONLY"}))
        .await
        .assert_status(409);
    // 400: no userName.
    app.post("/Users", json!({"displayName": "x"}))
        .await
        .assert_status(400);
    // 412: If-Match names an old version.
    app.send(
        reqwest::Method::PATCH,
        &format!("/Users/{id}"),
        Some(
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": false}]}),
        ),
        crate::helpers::Opts {
            headers: vec![("If-Match".into(), "W/\"99\"".into())],
            ..Default::default()
        },
    )
    .await
    .assert_status(412);
    // 404: nothing to delete.
    app.delete("/Users/no-such-id").await.assert_status(404);
    // A PATCH that changes nothing writes nothing (docs/audit.md).
    app.patch_ops(
        &format!("/Users/{id}"),
        json!([{"op": "replace", "path": "userName", "value": "only"}]),
    )
    .await
    .assert_status(200);
    assert_eq!(scim_rows(&app).await.len(), before);
}

#[tokio::test]
async fn a_password_is_recorded_as_changed_never_by_value() {
    let app = TestApp::spawn().await;
    let id = app
        .create_user(json!({"userName": "pw", "password": "Sup3r-Secret-1"}))
        .await;
    app.patch_ops(
        &format!("/Users/{id}"),
        json!([{"op": "replace", "path": "password", "value": "Sup3r-Secret-2"}]),
    )
    .await
    .assert_status(200);
    let rows = scim_rows(&app).await;
    let text: String = rows
        .iter()
        .map(|r| r.to_json().to_string())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(!text.contains("Sup3r-Secret"), "{text}");
    // The password is dropped when the body is read (`returned: never`, never stored), so
    // no write of it reaches the store; were one to, `scim/diff.rs` redacts it (unit tests).
    assert!(rows
        .iter()
        .flat_map(|r| &r.changes)
        .all(|c| !c.path.eq_ignore_ascii_case("password") || c.new == json!(REDACTED)));
}

#[tokio::test]
async fn admin_actions_are_recorded_and_the_query_filters_and_pages() {
    let app = TestApp::spawn().await;
    for i in 0..5 {
        app.user(&format!("page-{i}")).await;
    }
    let action = AdminAction {
        connector: CONNECTOR.into(),
        token: "ops-alice".into(),
        action: "connector.pause".into(),
        target_kind: Some("connector".into()),
        target: Some(CONNECTOR.into()),
        outcome: "ok".into(),
    };
    app.store
        .audit_admin_action(&action, OffsetDateTime::now_utc())
        .await
        .unwrap();
    let by_admin = app
        .store
        .audit_query(&AuditQuery {
            actor: Some("ops-alice".into()),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(by_admin.len(), 1);
    assert_eq!(by_admin[0].actor_kind, ActorKind::Admin);
    assert_eq!(by_admin[0].operation, "connector.pause");
    assert_eq!(by_admin[0].outcome, "ok");

    // Paging newest first with the seq cursor.
    let q = AuditQuery {
        connector: Some(CONNECTOR.into()),
        limit: 2,
        ..AuditQuery::default()
    };
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = app
            .store
            .audit_query(&AuditQuery {
                before_seq: cursor,
                ..q.clone()
            })
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 2);
        cursor = page.last().map(|r| r.seq);
        seen.extend(page.into_iter().map(|r| r.seq));
    }
    assert_eq!(seen.len(), 6);
    assert!(seen.windows(2).all(|w| w[0] > w[1]), "{seen:?}");
    let future = app
        .store
        .audit_query(&AuditQuery {
            since: Some(OffsetDateTime::now_utc() + time::Duration::hours(1)),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert!(future.is_empty());
    assert!(app.store.audit_verify().await.unwrap().bad.is_empty());
}

/// Drops the append-only trigger, as someone editing the database by hand would.
async fn drop_trigger(app: &TestApp) {
    let sql = match backend() {
        Backend::Sqlite => "DROP TRIGGER audit_log_append_only",
        Backend::Postgres => "DROP TRIGGER audit_log_append_only ON audit_log",
    };
    raw_sql(app, sql).await;
}

async fn three_users(app: &TestApp) -> Vec<AuditRecord> {
    for name in ["v1", "v2", "v3", "v4", "v5", "v6"] {
        app.user(name).await;
    }
    let rows = scim_rows(app).await;
    assert!(app.store.audit_verify().await.unwrap().bad.is_empty());
    rows
}

#[tokio::test]
async fn rows_cannot_be_updated_in_place() {
    let app = TestApp::spawn().await;
    let rows = three_users(&app).await;
    sqlx::any::install_default_drivers();
    let mut c = sqlx::AnyConnection::connect(&app.db_url).await.unwrap();
    let refused = sqlx::query("UPDATE audit_log SET actor = 'someone' WHERE seq = $1")
        .bind(rows[0].seq)
        .execute(&mut c)
        .await;
    assert!(refused.is_err(), "the trigger refuses updates");
}

#[tokio::test]
async fn verify_names_an_edited_row() {
    let app = TestApp::spawn().await;
    let rows = three_users(&app).await;
    let target = &rows[2];
    drop_trigger(&app).await;
    raw_sql(
        &app,
        &format!(
            "UPDATE audit_log SET changes = '[]' WHERE seq = {}",
            target.seq
        ),
    )
    .await;
    let v = app.store.audit_verify().await.unwrap();
    assert_eq!(v.bad.len(), 1, "{:?}", v.bad);
    assert_eq!(v.bad[0].seq, Some(target.seq));
    assert!(v.bad[0].reason.contains("edited"), "{}", v.bad[0]);
}

#[tokio::test]
async fn verify_names_where_a_row_was_deleted_in_the_middle_or_at_the_end() {
    let app = TestApp::spawn().await;
    // Enough rows that some chain has two.
    for i in 0..40 {
        app.user(&format!("d{i}")).await;
    }
    let rows = scim_rows(&app).await;
    let (first, second) = rows
        .iter()
        .enumerate()
        .find_map(|(i, a)| {
            rows[i + 1..]
                .iter()
                .find(|b| b.chain == a.chain)
                .map(|b| (a.clone(), b.clone()))
        })
        .expect("two rows in one chain");
    // The middle one: the row after it is named.
    raw_sql(
        &app,
        &format!("DELETE FROM audit_log WHERE seq = {}", first.seq),
    )
    .await;
    let v = app.store.audit_verify().await.unwrap();
    let bad = v.bad.iter().find(|b| b.chain == first.chain).unwrap();
    assert_eq!(bad.chain_seq, first.chain_seq);
    assert!(bad.reason.contains("missing"), "{bad}");
    // The last one of another chain: the head points past the rows.
    let last = rows
        .iter()
        .rev()
        .find(|r| r.chain != first.chain)
        .unwrap()
        .clone();
    let last_of_chain = rows.iter().rfind(|r| r.chain == last.chain).unwrap();
    raw_sql(
        &app,
        &format!("DELETE FROM audit_log WHERE seq = {}", last_of_chain.seq),
    )
    .await;
    let v = app.store.audit_verify().await.unwrap();
    let bad = v.bad.iter().find(|b| b.chain == last.chain).unwrap();
    assert!(bad.reason.contains("head"), "{bad}");
    assert_eq!(bad.chain_seq, last_of_chain.chain_seq);
    assert!(second.chain_seq > first.chain_seq);
}

#[tokio::test]
async fn pruning_keeps_an_anchor_so_verify_stays_green() {
    let app = TestApp::spawn().await;
    for i in 0..20 {
        app.user(&format!("old{i}")).await;
    }
    let cut = OffsetDateTime::now_utc() + time::Duration::milliseconds(5);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    for i in 0..5 {
        app.user(&format!("new{i}")).await;
    }
    let pruned = app.store.audit_prune(cut).await.unwrap();
    assert_eq!(pruned, 20);
    let left = scim_rows(&app).await;
    assert_eq!(left.len(), 5);
    assert!(left.iter().all(|r| change(r, "userName")
        .and_then(|c| c.new.as_str())
        .is_some_and(|n| n.starts_with("new"))));
    let v = app.store.audit_verify().await.unwrap();
    assert!(v.bad.is_empty(), "{:?}", v.bad);
    // Writes after pruning go on from the heads.
    app.user("after").await;
    assert!(app.store.audit_verify().await.unwrap().bad.is_empty());
    // Pruning everything still leaves a verifiable trail.
    app.store
        .audit_prune(OffsetDateTime::now_utc() + time::Duration::seconds(1))
        .await
        .unwrap();
    assert!(scim_rows(&app).await.is_empty());
    assert!(app.store.audit_verify().await.unwrap().bad.is_empty());
}

/// Runs `usersync audit ARGS` on the test's database; (exit code, stdout).
fn cli(app: &TestApp, args: &[&str]) -> (i32, String) {
    let (code, out, _) = outcome(usersync(&app.db_url).arg("audit").args(args));
    (code, out)
}

#[tokio::test]
async fn audit_verify_exits_non_zero_and_names_the_first_bad_row() {
    let app = TestApp::spawn().await;
    let rows = three_users(&app).await;
    let (code, out) = cli(&app, &["verify"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("verified: 6 rows"), "{out}");
    drop_trigger(&app).await;
    raw_sql(
        &app,
        &format!(
            "UPDATE audit_log SET at = at + 1 WHERE seq = {}",
            rows[3].seq
        ),
    )
    .await;
    let (code, out) = cli(&app, &["verify"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("the first bad row is row seq {}", rows[3].seq)),
        "{out}"
    );
}

#[tokio::test]
async fn audit_export_writes_json_lines_since_a_time_or_a_duration() {
    let app = TestApp::spawn().await;
    let id = app.user("exported").await;
    app.patch_ops(
        &format!("/Users/{id}"),
        json!([{"op": "replace", "path": "displayName", "value": "E"}]),
    )
    .await
    .assert_status(200);
    let (code, out) = cli(
        &app,
        &[
            "export",
            "--since",
            "1h",
            "--connector",
            CONNECTOR,
            "--format",
            "jsonl",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0]["operation"], "POST");
    assert_eq!(lines[1]["operation"], "PATCH");
    assert_eq!(lines[1]["resource_id"], json!(id));
    assert_eq!(lines[1]["actor"], json!(credential(&app)));
    assert_eq!(lines[1]["changes"][0]["path"], "displayName");
    assert_eq!(lines[1]["prev_hash"].as_str().unwrap().len(), 64);
    assert!(lines[0]["at"].as_str().unwrap().ends_with('Z'));
    // Another connector's rows, and rows before --since, are not exported.
    let (_, other) = cli(&app, &["export", "--since", "1h", "--connector", "other"]);
    assert!(other.is_empty(), "{other}");
    let (_, later) = cli(&app, &["export", "--since", "2999-01-01T00:00:00Z"]);
    assert!(later.is_empty(), "{later}");
    let (code, _) = cli(&app, &["export", "--since", "last tuesday"]);
    assert_ne!(code, 0);
}

#[tokio::test]
async fn the_server_prunes_past_retention_in_the_background_and_verify_stays_green() {
    let app = TestApp::spawn_with(|s| {
        s.audit.retention = usersync::values::Dur(std::time::Duration::from_secs(2));
    })
    .await;
    for i in 0..10 {
        app.user(&format!("short-lived-{i}")).await;
    }
    assert_eq!(scim_rows(&app).await.len(), 10);
    let mut left = 10;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        left = scim_rows(&app).await.len();
        if left == 0 {
            break;
        }
    }
    assert_eq!(left, 0, "rows older than the retention are pruned");
    app.user("after-pruning").await;
    let v = app.store.audit_verify().await.unwrap();
    assert!(v.bad.is_empty(), "{:?}", v.bad);
}

#[tokio::test]
async fn kill_9_during_writes_leaves_no_acknowledged_write_without_its_row() {
    const TOKEN: &str = "audit-crash-test-token";
    let db = usersync::store::testdb::TestDb::create(backend()).await;
    let mut server = Serve::new(&db.url)
        .set("store.single_instance", true)
        .connector("crash", "AUDIT_CRASH_TOKEN", TOKEN)
        .start()
        .await;
    let client = reqwest::Client::new();
    let base = server.scim("crash");

    // Sixteen writers create and then deactivate users until the process is killed; each
    // keeps what the server acknowledged.
    let writers: Vec<_> = (0..16)
        .map(|w| {
            let (client, base) = (client.clone(), base.clone());
            tokio::spawn(async move {
                let mut acked: Vec<(String, &'static str)> = Vec::new();
                for i in 0.. {
                    let created = client
                        .post(format!("{base}/Users"))
                        .bearer_auth(TOKEN)
                        .header("Content-Type", "application/scim+json")
                        .body(
                            json!({"userName": format!("crash-{w}-{i}"), "active": true})
                                .to_string(),
                        )
                        .send()
                        .await;
                    let Ok(res) = created else { break };
                    if res.status().as_u16() != 201 {
                        break;
                    }
                    let Ok(body) = res.json::<serde_json::Value>().await else {
                        break;
                    };
                    let id = body["id"].as_str().unwrap().to_owned();
                    acked.push((id.clone(), "POST"));
                    let patched = client
                        .patch(format!("{base}/Users/{id}"))
                        .bearer_auth(TOKEN)
                        .header("Content-Type", "application/scim+json")
                        .body(
                            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                            "Operations": [{"op": "replace", "path": "active", "value": false}]})
                            .to_string(),
                        )
                        .send()
                        .await;
                    let Ok(res) = patched else { break };
                    if res.status().as_u16() != 200 || res.bytes().await.is_err() {
                        break;
                    }
                    acked.push((id, "PATCH"));
                }
                acked
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    server.kill();
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await.unwrap());
    }
    assert!(
        acked.len() > 20,
        "writes happened before the kill: {}",
        acked.len()
    );

    // What the killed process committed, read from the database.
    let store = usersync::store::Store::connect(&db.url, &usersync::store::StoreOptions::default())
        .await
        .unwrap();
    let mut rows = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .audit_query(&AuditQuery {
                connector: Some("crash".into()),
                before_seq: cursor,
                limit: 1000,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        cursor = Some(last.seq);
        rows.extend(page);
    }
    let recorded: std::collections::HashSet<(String, String)> = rows
        .iter()
        .map(|r| (r.resource_id.clone().unwrap(), r.operation.clone()))
        .collect();
    for (id, op) in &acked {
        assert!(
            recorded.contains(&(id.clone(), (*op).to_owned())),
            "acknowledged {op} of {id} has no audit row"
        );
    }
    // And no committed write without its row: every stored user has its creation recorded,
    // and every deactivated one its PATCH.
    let users = store
        .count_resources("crash", usersync::scim::schema::ResourceKind::User)
        .await
        .unwrap();
    let created = rows.iter().filter(|r| r.operation == "POST").count();
    assert_eq!(created as i64, users, "one creation row per stored user");
    let v = store.audit_verify().await.unwrap();
    assert!(v.bad.is_empty(), "{:?}", v.bad);
    store.close().await;
}
