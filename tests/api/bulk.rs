//! `/Bulk` (RFC 7644 §3.7).

use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn bulk_ids_link_a_group_to_users_created_in_the_same_request() {
    let app = TestApp::spawn().await;
    let r = app
        .post(
            "/Bulk",
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": [
                {"method": "POST", "path": "/Groups", "bulkId": "g", "data": {"displayName": "Team",
                    "members": [{"type": "User", "value": "bulkId:u1"}, {"type": "User", "value": "bulkId:u2"}]}},
                {"method": "POST", "path": "/Users", "bulkId": "u1", "data": {"userName": "bulk1"}},
                {"method": "POST", "path": "/Users", "bulkId": "u2", "data": {"userName": "bulk2"}}
            ]}),
        )
        .await;
    r.assert_status(200);
    let ops = r.body["Operations"].as_array().unwrap();
    assert_eq!(ops.len(), 3);
    assert!(ops.iter().all(|o| o["status"] == "201"), "{}", r.text);
    let group_location = ops[0]["location"].as_str().unwrap();
    let gid = group_location.rsplit('/').next().unwrap();
    assert_eq!(app.member_ids(gid).await.len(), 2);
}

#[tokio::test]
async fn fail_on_errors_stops_the_run() {
    let app = TestApp::spawn().await;
    app.user("taken").await;
    let r = app
        .post(
            "/Bulk",
            json!({"failOnErrors": 1, "Operations": [
                {"method": "POST", "path": "/Users", "bulkId": "a", "data": {"userName": "taken"}},
                {"method": "POST", "path": "/Users", "bulkId": "b", "data": {"userName": "never-created"}}
            ]}),
        )
        .await;
    r.assert_status(200);
    let ops = r.body["Operations"].as_array().unwrap();
    assert_eq!(ops.len(), 1);
    assert_eq!(ops[0]["status"], "409");
    assert_eq!(ops[0]["response"]["scimType"], "uniqueness");
    assert_eq!(
        app.get("/Users?filter=userName%20eq%20%22never-created%22")
            .await
            .body["totalResults"],
        0
    );
}

#[tokio::test]
async fn every_method_and_unresolvable_references() {
    let app = TestApp::spawn().await;
    let id = app.user("bulk-target").await;
    let r = app
        .post(
            "/Bulk",
            json!({"Operations": [
                {"method": "PATCH", "path": format!("/Users/{id}"), "data": {"Operations": [{"op": "add", "path": "title", "value": "T"}]}},
                {"method": "PUT", "path": format!("/Users/{id}"), "version": "W/\"2\"", "data": {"userName": "bulk-target", "title": "U"}},
                {"method": "POST", "path": "/Groups", "bulkId": "g", "data": {"displayName": "G", "members": [{"value": "bulkId:missing"}]}},
                {"method": "DELETE", "path": format!("/Users/{id}")}
            ]}),
        )
        .await;
    let statuses: Vec<&str> = r.body["Operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["200", "200", "409", "204"], "{}", r.text);
}

#[tokio::test]
async fn more_operations_than_advertised_is_413() {
    let app = TestApp::spawn_with(|s| s.limits.bulk_max_operations = 2).await;
    let ops: Vec<_> = (0..3)
        .map(|i| json!({"method": "DELETE", "path": format!("/Users/{i}")}))
        .collect();
    app.post("/Bulk", json!({"Operations": ops}))
        .await
        .assert_scim_error(413, None);
}
