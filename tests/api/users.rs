//! `/Users`: create, read, replace, delete, and what the server keeps and returns.

use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn create_returns_201_with_location_meta_and_etag() {
    let app = TestApp::spawn().await;
    let r = app
        .post(
            "/Users",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "bjensen", "active": true}),
        )
        .await;
    r.assert_status(201);
    let id = r.id();
    let location = app.url(&format!("/Users/{id}"));
    assert_eq!(r.header("location"), Some(location.as_str()));
    assert_eq!(r.body["meta"]["location"], json!(location));
    assert_eq!(r.body["meta"]["resourceType"], "User");
    assert_eq!(r.body["meta"]["version"], "W/\"1\"");
    assert_eq!(r.header("etag"), Some("W/\"1\""));
    assert_eq!(r.body["meta"]["created"], r.body["meta"]["lastModified"]);
    assert_eq!(r.header("content-type"), Some("application/scim+json"));
}

#[tokio::test]
async fn values_are_returned_exactly_as_sent() {
    let app = TestApp::spawn().await;
    let id = app
        .create_user(json!({
            "userName": "Alice@Example.COM",
            "phoneNumbers": [{"value": "+1 (555) 010-9999", "type": "work"}],
            "emails": [{"value": "Alice.Smith@Example.com", "type": "work", "primary": true}],
            "name": {"givenName": " Alice", "familyName": "Smith"}
        }))
        .await;
    let r = app.get(&format!("/Users/{id}")).await;
    r.assert_status(200);
    assert_eq!(r.body["userName"], "Alice@Example.COM");
    assert_eq!(r.body["phoneNumbers"][0]["value"], "+1 (555) 010-9999");
    assert_eq!(r.body["emails"][0]["value"], "Alice.Smith@Example.com");
    assert_eq!(r.body["name"]["givenName"], " Alice");
}

#[tokio::test]
async fn password_is_neither_stored_nor_returned() {
    let app = TestApp::spawn().await;
    let r = app
        .post(
            "/Users",
            json!({"userName": "p", "password": "S3cret!pass"}),
        )
        .await;
    r.assert_status(201);
    assert!(r.body.get("password").is_none());
    let stored = app
        .store
        .get_resource(&usersync::store::ResourceKey::new(
            "idp",
            usersync::scim::schema::ResourceKind::User,
            r.id(),
        ))
        .await
        .unwrap()
        .unwrap();
    assert!(!serde_json::to_string(&stored.doc)
        .unwrap()
        .contains("S3cret"));
}

#[tokio::test]
async fn read_only_attributes_in_the_body_are_ignored() {
    let app = TestApp::spawn().await;
    let r = app
        .post("/Users", json!({"userName": "ro", "id": "mine", "meta": {"version": "W/\"9\""}, "groups": [{"value": "g"}]}))
        .await;
    r.assert_status(201);
    assert_ne!(r.id(), "mine");
    assert_eq!(r.body["meta"]["version"], "W/\"1\"");
    assert!(r.body.get("groups").is_none());
}

#[tokio::test]
async fn put_replaces_attributes_and_bumps_the_version() {
    let app = TestApp::spawn().await;
    let id = app
        .create_user(json!({"userName": "put", "title": "Eng", "nickName": "P"}))
        .await;
    let r = app
        .put(
            &format!("/Users/{id}"),
            json!({"userName": "put", "title": "Lead"}),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.body["title"], "Lead");
    assert!(
        r.body.get("nickName").is_none(),
        "PUT replaces: omitted attributes are cleared"
    );
    assert_eq!(r.body["meta"]["version"], "W/\"2\"");
}

#[tokio::test]
async fn put_with_another_id_in_the_body_is_rejected() {
    let app = TestApp::spawn().await;
    let id = app.user("rekey").await;
    let r = app
        .put(
            &format!("/Users/{id}"),
            json!({"id": "other", "userName": "rekey"}),
        )
        .await;
    r.assert_scim_error(400, Some("invalidValue"));
    assert_eq!(app.get(&format!("/Users/{id}")).await.status, 200);
}

#[tokio::test]
async fn delete_answers_204_then_404() {
    let app = TestApp::spawn().await;
    let id = app.user("gone").await;
    app.delete(&format!("/Users/{id}")).await.assert_status(204);
    app.get(&format!("/Users/{id}"))
        .await
        .assert_scim_error(404, None);
    app.delete(&format!("/Users/{id}"))
        .await
        .assert_scim_error(404, None);
}

#[tokio::test]
async fn a_deleted_user_leaves_its_groups() {
    let app = TestApp::spawn().await;
    let u1 = app.user("u1").await;
    let u2 = app.user("u2").await;
    let g = app.group("G", &[&u1, &u2]).await;
    app.delete(&format!("/Users/{u1}")).await.assert_status(204);
    assert_eq!(app.member_ids(&g).await, vec![u2]);
}

#[tokio::test]
async fn a_user_shows_the_groups_it_belongs_to() {
    let app = TestApp::spawn().await;
    let u = app.user("member").await;
    let g = app.group("Readers", &[&u]).await;
    let r = app.get(&format!("/Users/{u}")).await;
    assert_eq!(r.body["groups"][0]["value"], json!(g));
    assert_eq!(r.body["groups"][0]["display"], "Readers");
}

#[tokio::test]
async fn an_operator_extension_schema_is_accepted_stored_and_advertised() {
    let dir = std::env::temp_dir().join(format!("usersync-schemas-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("linchpin.json"),
        r#"{"id": "urn:example:params:scim:schemas:extension:linchpin:2.0:User", "name": "Linchpin",
            "attributes": [{"name": "skills", "type": "string", "multiValued": true}]}"#,
    )
    .unwrap();
    let d = dir.clone();
    let app = TestApp::spawn_with(move |s| s.schemas_dir = d).await;
    let urn = "urn:example:params:scim:schemas:extension:linchpin:2.0:User";
    let id = app
        .create_user(json!({"userName": "skilled", urn: {"skills": ["Rust", "SCIM"]}}))
        .await;
    let r = app.get(&format!("/Users/{id}")).await;
    assert_eq!(r.body[urn]["skills"], json!(["Rust", "SCIM"]));
    assert!(r.body["schemas"].as_array().unwrap().contains(&json!(urn)));
    let s = app.get(&format!("/Schemas/{urn}")).await;
    s.assert_status(200);
    let rt = app.get("/ResourceTypes/User").await;
    assert!(rt.text.contains(urn));
    let f = app.get("/Users?filter=urn:example:params:scim:schemas:extension:linchpin:2.0:User:skills%20eq%20%22rust%22").await;
    assert_eq!(f.body["totalResults"], 1);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn an_unqualified_manager_with_onelogins_manager_id_is_the_enterprise_manager() {
    let app = TestApp::spawn().await;
    let r = app
        .post(
            "/Users",
            json!({"userName": "ol", "manager": {"managerId": "E-1001", "displayName": "Manny"}}),
        )
        .await;
    r.assert_status(201);
    assert_eq!(
        r.body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["manager"],
        json!({"value": "E-1001"})
    );
}
