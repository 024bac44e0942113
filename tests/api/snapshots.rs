//! Snapshots of the wire format: discovery documents, a User, a Group, a ListResponse and
//! each error body. Ids, timestamps and the server address are redacted.

use insta::assert_json_snapshot;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{Opts, TestApp, TestResponse};

/// The body with the server address replaced, so snapshots do not depend on the port.
fn wire(app: &TestApp, r: &TestResponse) -> Value {
    serde_json::from_str(&r.text.replace(&app.address, "http://[host]")).unwrap_or(Value::Null)
}

macro_rules! snapshot_resource {
    ($name:expr, $value:expr) => {
        assert_json_snapshot!($name, $value, {
            ".id" => "[id]",
            ".meta.created" => "[datetime]",
            ".meta.lastModified" => "[datetime]",
            ".meta.location" => "[location]",
            ".members[].value" => "[id]",
            ".members[].$ref" => "[ref]",
            ".Resources[].id" => "[id]",
            ".Resources[].meta.created" => "[datetime]",
            ".Resources[].meta.lastModified" => "[datetime]",
            ".Resources[].meta.location" => "[location]",
        })
    };
}

#[tokio::test]
async fn discovery_documents() {
    let app = TestApp::spawn().await;
    assert_json_snapshot!(
        "service_provider_config",
        wire(&app, &app.get("/ServiceProviderConfig").await)
    );
    assert_json_snapshot!(
        "resource_types",
        wire(&app, &app.get("/ResourceTypes").await)
    );
    assert_json_snapshot!("schemas", wire(&app, &app.get("/Schemas").await));
}

#[tokio::test]
async fn a_user_a_group_and_a_list_response() {
    let app = TestApp::spawn().await;
    let r = app
        .post(
            "/Users",
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
                "externalId": "bjensen", "userName": "bjensen@example.com", "active": "True",
                "name": {"givenName": "Barbara", "familyName": "Jensen", "formatted": "Barbara Jensen"},
                "displayName": "Babs Jensen", "title": "Tour Guide",
                "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}],
                "phoneNumbers": [{"value": "+1 555 0100", "type": "mobile"}],
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                    "employeeNumber": "701984", "department": "Tour Operations", "manager": "26118915-6090-4610-87e4-49d8ca9f808d"
                }
            }),
        )
        .await;
    snapshot_resource!("user_created", wire(&app, &r));
    let u = r.id();
    let g = app
        .post(
            "/Groups",
            json!({"displayName": "Tour Guides", "members": [{"value": u, "display": "Babs"}]}),
        )
        .await;
    snapshot_resource!("group_created", wire(&app, &g));
    let l = app
        .get("/Users?filter=userName%20eq%20%22BJENSEN@example.com%22&attributes=userName,emails")
        .await;
    snapshot_resource!("list_response", wire(&app, &l));
}

#[tokio::test]
async fn error_bodies() {
    let app = TestApp::spawn().await;
    let id = app.user("err").await;
    let raw = Opts {
        raw_body: Some("{".into()),
        ..Opts::default()
    };
    let many: Vec<Value> = (0..1001)
        .map(|i| json!({"value": format!("{i}@example.com")}))
        .collect();
    let full = app
        .create_user(json!({"userName": "full", "emails": many[..1000]}))
        .await;
    // 101 filtered operations on 1000 e-mails: over the default budget of 100,000.
    let costly: Vec<Value> = (0..101)
        .map(|i| json!({"op": "replace", "path": format!("emails[value eq \"{i}@example.com\"].type"), "value": "work"}))
        .collect();
    let cases: Vec<(&str, TestResponse)> = vec![
        (
            "invalid_syntax",
            app.send(Method::POST, "/Users", None, raw).await,
        ),
        (
            "invalid_value",
            app.post("/Users", json!({"userName": 7})).await,
        ),
        (
            "invalid_value_invisible_character",
            app.post("/Users", json!({"userName": "ali\u{200B}ce"}))
                .await,
        ),
        (
            "invalid_value_too_many_values",
            app.post("/Users", json!({"userName": "many", "emails": many}))
                .await,
        ),
        (
            "invalid_value_patch_cost",
            app.patch_ops(&format!("/Users/{full}"), Value::Array(costly))
                .await,
        ),
        (
            "invalid_filter",
            app.get("/Users?filter=userName%20eqq%20%22x%22").await,
        ),
        (
            "invalid_path",
            app.patch_ops(
                &format!("/Users/{id}"),
                json!([{"op": "add", "path": "emails[", "value": "x"}]),
            )
            .await,
        ),
        (
            "no_target",
            app.patch_ops(&format!("/Users/{id}"), json!([{"op": "remove"}]))
                .await,
        ),
        (
            "mutability",
            app.patch_ops(
                &format!("/Users/{id}"),
                json!([{"op": "replace", "path": "id", "value": "x"}]),
            )
            .await,
        ),
        (
            "uniqueness",
            app.post("/Users", json!({"userName": "ERR"})).await,
        ),
        (
            "unauthorized",
            app.send(
                Method::GET,
                "/Users",
                None,
                Opts {
                    auth: Some(String::new()),
                    ..Opts::default()
                },
            )
            .await,
        ),
        ("not_found", app.get("/Users/nope").await),
        (
            "method_not_allowed",
            app.send(Method::DELETE, "/Schemas", None, Opts::default())
                .await,
        ),
        (
            "precondition_failed",
            app.send(
                Method::DELETE,
                &format!("/Users/{id}"),
                None,
                Opts {
                    headers: vec![("If-Match".into(), "W/\"9\"".into())],
                    ..Opts::default()
                },
            )
            .await,
        ),
    ];
    for (name, r) in cases {
        assert_json_snapshot!(
            format!("error_{name}"),
            json!({"status": r.status, "body": wire(&app, &r)})
        );
    }
}
