//! docs/reference/idp-behaviour.md §10.5 JumpCloud, Ping and others: items 116–120. Item 119
//! (PingOne client credentials) belongs to the authentication work; the "no residue in Confluence"
//! half of 116 to the delivery work.

use serde_json::json;

use super::{alice, assert_list, filter, Idp, CONTENT_TYPES, GROUP_URN, USER_URN};
use crate::helpers::TestApp;

#[tokio::test]
async fn c116_jumpcloud_test_connection_creates_and_deletes_a_user_and_a_group() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let u = idp
            .create_user(
                json!({"schemas": [USER_URN], "userName": "jctest-7f3a@example.com",
                                "name": {"givenName": "JumpCloud", "familyName": "Test"},
                                "emails": [{"value": "jctest-7f3a@example.com", "primary": true}]}),
            )
            .await;
        let g = idp
            .create_group(
                json!({"schemas": [GROUP_URN], "displayName": "jctest-group-7f3a",
                                 "members": [{"value": u}]}),
            )
            .await;
        app.delete(&format!("/Users/{u}")).await.assert_status(204);
        app.delete(&format!("/Groups/{g}")).await.assert_status(204);
        app.get(&format!("/Users/{u}")).await.assert_status(404);
        app.get(&format!("/Groups/{g}")).await.assert_status(404);
        assert_list(&app.get("/Users").await, 0, &[]);
        assert_list(&app.get("/Groups").await, 0, &[]);
        // The same test may run again later: nothing of the first run is in the way.
        idp.create_user(json!({"userName": "jctest-7f3a@example.com"}))
            .await;
        idp.create_group(json!({"displayName": "jctest-group-7f3a"}))
            .await;
    }
}

#[tokio::test]
async fn c117_jumpcloud_takes_over_an_existing_group_found_by_display_name() {
    let app = TestApp::spawn().await;
    let u1 = alice(&app).await;
    let g = app.group("Existing", &[&u1]).await;
    let r = app
        .get(&format!(
            "/Groups?{}",
            filter(r#"displayName eq "Existing""#)
        ))
        .await;
    assert_list(&r, 1, &[&g]);
    assert_eq!(r.body["Resources"][0]["displayName"], "Existing");
    assert_eq!(r.body["Resources"][0]["members"][0]["value"], json!(u1));
}

#[tokio::test]
async fn c118_pingfederate_updates_users_by_put_and_groups_by_patch_in_application_json() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let id = idp
            .create_user(json!({"schemas": [USER_URN], "userName": "ping@example.com",
                                "name": {"givenName": "Ping", "familyName": "Fed"}, "active": true}))
            .await;
        let r = idp
            .put(
                &format!("/Users/{id}"),
                json!({"schemas": [USER_URN], "userName": "ping@example.com",
                       "name": {"givenName": "Ping", "familyName": "Federate"}, "active": true}),
            )
            .await;
        r.assert_status(200);
        assert_eq!(r.body["name"]["familyName"], "Federate");
        let g = idp
            .create_group(json!({"schemas": [GROUP_URN], "displayName": "Ping Group"}))
            .await;
        idp.patch_ops(
            &format!("/Groups/{g}"),
            json!([{"op": "add", "path": "members", "value": [{"value": id}]}]),
        )
        .await
        .assert_status(200);
        assert_eq!(app.member_ids(&g).await, vec![id.clone()]);
        // Disable as PingFederate does it: a PUT with active false.
        idp.put(
            &format!("/Users/{id}"),
            json!({"schemas": [USER_URN], "userName": "ping@example.com", "active": false}),
        )
        .await
        .assert_status(200);
        assert_eq!(
            app.get(&format!("/Users/{id}")).await.body["active"],
            json!(false)
        );
    }
}

#[tokio::test]
async fn c120_scim1_style_client_with_mixed_schemas_creates_a_user() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let r = idp
            .post(
                "/Users",
                json!({"schemas": ["urn:scim:schemas:core:1.0", USER_URN],
                       "userName": "keeper@example.com",
                       "name": {"givenName": "Kee", "familyName": "Per"},
                       "emails": [{"value": "keeper@example.com", "primary": true}],
                       "active": true}),
            )
            .await;
        r.assert_status(201);
        assert_eq!(r.body["schemas"], json!([USER_URN]));
        assert_eq!(r.body["userName"], "keeper@example.com");
        assert_eq!(r.body["name"]["familyName"], "Per");
    }
}
