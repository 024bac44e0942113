//! Discovery endpoints (RFC 7644 §4).

use reqwest::Method;
use serde_json::json;

use crate::helpers::{Opts, TestApp};

#[tokio::test]
async fn service_provider_config_advertises_what_is_enforced() {
    let app = TestApp::spawn_with(|s| {
        s.limits.bulk_max_operations = 7;
        s.limits.max_body_bytes = 4096;
    })
    .await;
    let r = app.get("/ServiceProviderConfig").await;
    r.assert_status(200);
    assert_eq!(
        r.body["bulk"],
        json!({"supported": true, "maxOperations": 7, "maxPayloadSize": 4096})
    );
    assert_eq!(r.body["patch"]["supported"], true);
    assert_eq!(r.body["etag"]["supported"], true);
    assert_eq!(
        r.body["authenticationSchemes"][0]["type"],
        "oauthbearertoken"
    );
}

#[tokio::test]
async fn schemas_list_user_enterprise_and_group_without_password() {
    let app = TestApp::spawn().await;
    let r = app.get("/Schemas").await;
    r.assert_status(200);
    let ids: Vec<&str> = r.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    for urn in [
        "urn:ietf:params:scim:schemas:core:2.0:User",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        "urn:ietf:params:scim:schemas:core:2.0:Group",
    ] {
        assert!(ids.contains(&urn), "{urn} missing");
    }
    assert!(
        !r.text.contains("\"password\""),
        "password must not be advertised (docs/reference/idp-behaviour.md c39)"
    );
}

#[tokio::test]
async fn one_schema_and_one_resource_type_by_id() {
    let app = TestApp::spawn().await;
    let r = app
        .get("/Schemas/urn:ietf:params:scim:schemas:core:2.0:Group")
        .await;
    r.assert_status(200);
    assert_eq!(r.body["id"], "urn:ietf:params:scim:schemas:core:2.0:Group");
    assert_eq!(r.body["meta"]["resourceType"], "Schema");
    app.get("/Schemas/urn:nope")
        .await
        .assert_scim_error(404, None);
    let rt = app.get("/ResourceTypes/User").await;
    assert_eq!(
        rt.body["schemaExtensions"][0]["schema"],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    );
    app.get("/ResourceTypes/Printer")
        .await
        .assert_scim_error(404, None);
}

#[tokio::test]
async fn discovery_endpoints_answer_other_methods_with_405() {
    let app = TestApp::spawn().await;
    for path in ["/ServiceProviderConfig", "/Schemas", "/ResourceTypes"] {
        for m in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            let r = app
                .send(m.clone(), path, Some(json!({})), Opts::default())
                .await;
            r.assert_scim_error(405, None);
        }
    }
}
