//! docs/reference/idp-behaviour.md §10.4 OneLogin: items 107–115. OneLogin sends its admin-authored
//! JSON template with the placeholders filled in (docs/reference/idp-behaviour.md §4.2), so the
//! bodies below are such templates.

use reqwest::Method;
use serde_json::{json, Value};

use super::{alice, assert_list, filter, stored, Idp, CONTENT_TYPES, ENT, GROUP_URN, USER_URN};
use crate::helpers::{Opts, TestApp};
use usersync::scim::schema::ResourceKind;

/// The "SCIM Provisioner with SAML (Enterprise Schema)" template of OL-SCHEMA, filled in.
fn scim1_template(user_name: &str) -> Value {
    json!({
        "schemas": ["urn:scim:schemas:core:1.0", "urn:scim:schemas:extension:enterprise:1.0"],
        "userName": user_name,
        "name": {"givenName": "Olga", "familyName": "Login"},
        "emails": {"value": user_name, "type": "work", "primary": true},
        "title": "Analyst",
        "urn:scim:schemas:extension:enterprise:1.0": {
            "department": "Controlling",
            "manager": {"managerId": "E-1001", "displayName": "Manny Ger"}
        }
    })
}

#[tokio::test]
async fn c107_initial_connection_filter_is_an_empty_200() {
    let app = TestApp::spawn().await;
    alice(&app).await;
    let r = app
        .get("/Users?filter=userName+eq+%22onelogin-nonexistent%22&")
        .await;
    assert_list(&r, 0, &[]);
}

#[tokio::test]
async fn c108_scim1_template_with_single_email_object_and_manager_id_reads_back_rfc_shaped() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let r = idp.post("/Users", scim1_template("olga@example.com")).await;
        r.assert_status(201);
        let g = app.get(&format!("/Users/{}", r.id())).await;
        assert_eq!(g.body["schemas"], json!([USER_URN, ENT]));
        assert_eq!(
            g.body["emails"],
            json!([{"value": "olga@example.com", "type": "work", "primary": true}])
        );
        assert_eq!(
            g.body[ENT],
            json!({"department": "Controlling", "manager": {"value": "E-1001"}})
        );
        assert!(!g.text.contains("urn:scim:schemas") && !g.text.contains("managerId"));
    }
}

#[tokio::test]
async fn c109_nonstandard_scim2_urn_keys_store_the_extension() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let r = idp
            .post(
                "/Users",
                json!({
                    "schemas": ["urn:scim:schemas:core:2.0", "urn:scim:schemas:extension:enterprise:2.0"],
                    "userName": "onelogin-test-user01",
                    "externalId": "123456789",
                    "name": {"givenName": "One", "familyName": " Login"},
                    "emails": [{"value": "one@example.com", "primary": true}],
                    "urn:scim:schemas:extension:enterprise:2.0": {
                        "department": "Support",
                        "manager": {"value": "E-2002", "displayName": "Boss Person"}
                    }
                }),
            )
            .await;
        r.assert_status(201);
        let g = app.get(&format!("/Users/{}", r.id())).await;
        assert_eq!(
            g.body[ENT],
            json!({"department": "Support", "manager": {"value": "E-2002"}})
        );
        assert_eq!(g.body["name"]["familyName"], " Login", "stored as received");
        assert_eq!(g.body["externalId"], "123456789");
    }
}

#[tokio::test]
async fn c110_empty_placeholders_set_nothing_and_raise_no_error() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let r = idp
            .post(
                "/Users",
                json!({
                    "schemas": [USER_URN, ENT],
                    "userName": "placeholders@example.com",
                    "title": "",
                    "nickName": "",
                    "name": {"givenName": "Pla", "familyName": "", "middleName": ""},
                    "emails": [{"value": "placeholders@example.com", "type": "work", "primary": true}],
                    ENT: {"department": "", "manager": {"value": "", "displayName": " "}}
                }),
            )
            .await;
        r.assert_status(201);
        assert!(r.body.get(ENT).is_none(), "{}", r.text);
        let doc = stored(&app, ResourceKind::User, &r.id()).await;
        assert_eq!(
            doc,
            json!({"userName": "placeholders@example.com", "name": {"givenName": "Pla"},
                   "emails": [{"value": "placeholders@example.com", "type": "work", "primary": true}]})
        );
    }
}

#[tokio::test]
async fn c111_put_with_the_full_template_is_200_with_id_user_name_name_and_location() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let id = idp.create_user(scim1_template("olga@example.com")).await;
        let mut body = scim1_template("olga@example.com");
        body["title"] = json!("Senior Analyst");
        body["name"]["familyName"] = json!("Login-Smith");
        let r = idp.put(&format!("/Users/{id}"), body).await;
        r.assert_status(200);
        assert_eq!(r.body["id"], json!(id));
        assert_eq!(r.body["userName"], "olga@example.com");
        assert_eq!(
            r.body["name"],
            json!({"givenName": "Olga", "familyName": "Login-Smith"})
        );
        assert_eq!(r.body["title"], "Senior Analyst");
        assert!(r.body["meta"]["location"]
            .as_str()
            .is_some_and(|l| l.ends_with(&format!("/Users/{id}"))));
        assert_eq!(r.body[ENT]["manager"], json!({"value": "E-1001"}));
    }
}

#[tokio::test]
async fn c112_suspend_by_put_or_patch_active_false() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let by_put = idp.create_user(scim1_template("put@example.com")).await;
        let mut body = scim1_template("put@example.com");
        body["active"] = json!(false);
        idp.put(&format!("/Users/{by_put}"), body)
            .await
            .assert_status(200);
        let by_patch = idp.create_user(scim1_template("patch@example.com")).await;
        idp.patch_ops(
            &format!("/Users/{by_patch}"),
            json!([{"op": "replace", "path": "active", "value": false}]),
        )
        .await
        .assert_status(200);
        for id in [by_put, by_patch] {
            let g = app.get(&format!("/Users/{id}")).await;
            g.assert_status(200);
            assert_eq!(g.body["active"], json!(false));
        }
    }
}

#[tokio::test]
async fn c113_delete_then_the_user_name_filter_is_an_empty_200() {
    let app = TestApp::spawn().await;
    let u1 = alice(&app).await;
    app.delete(&format!("/Users/{u1}")).await.assert_status(204);
    let r = app
        .get("/Users?filter=userName+eq+%22alice%40example.com%22&")
        .await;
    assert_list(&r, 0, &[]);
}

#[tokio::test]
async fn c114_groups_are_listed_in_pages_and_members_patched() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let u1 = alice(&app).await;
        let u2 = app.user("bob@example.com").await;
        let mut groups = Vec::new();
        for i in 0..3 {
            groups.push(
                idp.create_group(
                    json!({"schemas": [GROUP_URN], "displayName": format!("Role {i}")}),
                )
                .await,
            );
        }
        let r = app.get("/Groups?startIndex=1&count=100").await;
        let want: Vec<&str> = groups.iter().map(String::as_str).collect();
        assert_list(&r, 3, &want);
        let second = app.get("/Groups?startIndex=2&count=1").await;
        assert_list(&second, 3, &[&groups[1]]);
        let g = &groups[0];
        idp.patch_ops(
            &format!("/Groups/{g}"),
            json!([{"op": "add", "path": "members", "value": [{"value": u1}, {"value": u2}]}]),
        )
        .await
        .assert_status(200);
        idp.patch_ops(
            &format!("/Groups/{g}"),
            json!([{"op": "remove", "path": "members", "value": [{"value": u1}]}]),
        )
        .await
        .assert_status(200);
        assert_eq!(app.member_ids(g).await, vec![u2]);
    }
}

#[tokio::test]
async fn c115_an_empty_user_agent_is_processed_normally() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let opts = Opts {
            content_type: Some(ct.into()),
            headers: vec![("User-Agent".into(), String::new())],
            ..Opts::default()
        };
        let r = app
            .send(
                Method::POST,
                "/Users",
                Some(scim1_template("agentless@example.com")),
                opts.clone(),
            )
            .await;
        r.assert_status(201);
        let id = r.id();
        let r = app
            .send(
                Method::GET,
                &format!(
                    "/Users?{}",
                    filter(r#"userName eq "agentless@example.com""#)
                ),
                None,
                opts.clone(),
            )
            .await;
        assert_list(&r, 1, &[&id]);
        app.send(Method::DELETE, &format!("/Users/{id}"), None, opts)
            .await
            .assert_status(204);
    }
}
