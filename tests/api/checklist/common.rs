//! docs/reference/idp-behaviour.md §10.1 Common (all IdPs): items 1–39. Item 37 (back-pressure)
//! belongs to the delivery work.

use std::sync::Arc;

use reqwest::Method;
use serde_json::{json, Value};

use super::{
    alice, assert_list, filter, ids, stored, Idp, CONTENT_TYPES, ENT, GROUP_URN, LIST_URN, USER_URN,
};
use crate::helpers::{LogCapture, Opts, TestApp};
use usersync::scim::schema::ResourceKind;

#[tokio::test]
async fn c1_filter_for_a_missing_user_is_an_empty_200_list_with_integer_counts() {
    let app = TestApp::spawn().await;
    alice(&app).await;
    let r = app
        .get(&format!(
            "/Users?{}",
            filter(r#"userName eq "nobody@example.com""#)
        ))
        .await;
    r.assert_status(200);
    assert_eq!(r.header("content-type"), Some("application/scim+json"));
    assert_eq!(
        r.body,
        json!({"schemas": [LIST_URN], "totalResults": 0, "startIndex": 1, "itemsPerPage": 0,
               "Resources": []})
    );
}

#[tokio::test]
async fn c2_filter_for_a_missing_group_is_an_empty_200_list() {
    let app = TestApp::spawn().await;
    app.group("Some Group", &[]).await;
    let r = app
        .get(&format!(
            "/Groups?{}",
            filter(r#"displayName eq "No Such Group""#)
        ))
        .await;
    r.assert_status(200);
    assert_eq!(
        r.body,
        json!({"schemas": [LIST_URN], "totalResults": 0, "startIndex": 1, "itemsPerPage": 0,
               "Resources": []})
    );
}

#[tokio::test]
async fn c3_get_of_an_unknown_user_is_a_404_scim_error_with_string_status() {
    let app = TestApp::spawn().await;
    alice(&app).await;
    let r = app.get("/Users/does-not-exist").await;
    r.assert_scim_error(404, None);
    assert_eq!(r.body["status"], "404");
}

#[tokio::test]
async fn c4_every_endpoint_without_or_with_a_bad_authorization_is_401_without_data() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let u = alice(&app).await;
        let g = app.group("Secret Group", &[&u]).await;
        let calls: Vec<(Method, String, Option<Value>)> = vec![
            (Method::GET, "/Users".into(), None),
            (Method::GET, format!("/Users/{u}"), None),
            (Method::GET, "/Groups".into(), None),
            (Method::GET, format!("/Groups/{g}"), None),
            (Method::GET, "/ServiceProviderConfig".into(), None),
            (Method::GET, "/ResourceTypes".into(), None),
            (Method::GET, "/Schemas".into(), None),
            (
                Method::POST,
                "/Users".into(),
                Some(json!({"userName": "intruder"})),
            ),
            (
                Method::PUT,
                format!("/Users/{u}"),
                Some(json!({"userName": "hijacked"})),
            ),
            (
                Method::PATCH,
                format!("/Groups/{g}"),
                Some(json!({"Operations": [{"op": "remove", "path": "members"}]})),
            ),
            (Method::DELETE, format!("/Users/{u}"), None),
            (
                Method::POST,
                "/Users/.search".into(),
                Some(json!({"filter": "userName pr"})),
            ),
            (
                Method::POST,
                "/Bulk".into(),
                Some(json!({"Operations": [{"method": "DELETE", "path": format!("/Users/{u}")}]})),
            ),
        ];
        for auth in ["", "non-token"] {
            for (method, path, body) in &calls {
                let opts = Opts {
                    auth: Some(auth.into()),
                    ..Opts::default()
                };
                let r = match body {
                    Some(b) => idp.send(method.clone(), path, b.clone(), opts).await,
                    None => app.send(method.clone(), path, None, opts).await,
                };
                r.assert_scim_error(401, None);
                assert_eq!(r.body["status"], "401");
                assert!(
                    !r.text.contains("alice") && !r.text.contains("Secret Group"),
                    "{method} {path} leaked data: {}",
                    r.text
                );
            }
        }
        // Nothing was written by the refused requests.
        let r = app.get(&format!("/Users/{u}")).await;
        assert_eq!(r.body["userName"], "alice@example.com");
        assert_eq!(app.member_ids(&g).await, vec![u.clone()]);
        assert_eq!(app.get("/Users").await.body["totalResults"], 1);
    }
}

#[tokio::test]
async fn c5_create_answers_201_with_location_equal_to_meta_location_and_full_meta() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let r = idp
            .post(
                "/Users",
                json!({"schemas": [USER_URN], "userName": "bjensen@example.com", "active": true,
                       "name": {"givenName": "Barbara", "familyName": "Jensen"}}),
            )
            .await;
        r.assert_status(201);
        assert_eq!(r.header("content-type"), Some("application/scim+json"));
        let id = r.id();
        assert!(!id.is_empty());
        let location = r.body["meta"]["location"].as_str().unwrap();
        assert_eq!(r.header("location"), Some(location));
        assert!(location.ends_with(&format!("/Users/{id}")), "{location}");
        assert!(r.body["schemas"]
            .as_array()
            .unwrap()
            .contains(&json!(USER_URN)));
        assert_eq!(r.body["userName"], "bjensen@example.com");
        assert_eq!(r.body["active"], true);
        assert_eq!(r.body["meta"]["resourceType"], "User");
        for key in ["created", "lastModified"] {
            let t = r.body["meta"][key].as_str().unwrap_or_default();
            assert!(
                time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                    .is_ok(),
                "meta.{key} is not RFC 3339: {t}"
            );
        }
        // The location really names the resource.
        let again = app
            .send_url(Method::GET, location, None, Opts::default())
            .await;
        again.assert_status(200);
        assert_eq!(again.body["id"], json!(id));
    }
}

#[tokio::test]
async fn c6_the_same_post_repeated_is_409_uniqueness() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let body = json!({"schemas": [USER_URN], "userName": "dup@example.com", "active": true});
        idp.post("/Users", body.clone()).await.assert_status(201);
        let r = idp.post("/Users", body).await;
        r.assert_scim_error(409, Some("uniqueness"));
        assert_eq!(app.get("/Users").await.body["totalResults"], 1);
    }
}

#[tokio::test]
async fn c7_user_name_uniqueness_ignores_case() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        alice(&app).await;
        let r = idp
            .post(
                "/Users",
                json!({"schemas": [USER_URN], "userName": "ALICE@EXAMPLE.COM"}),
            )
            .await;
        r.assert_scim_error(409, Some("uniqueness"));
        assert_eq!(app.get("/Users").await.body["totalResults"], 1);
    }
}

#[tokio::test]
async fn c8_user_name_filter_ignores_case() {
    let app = TestApp::spawn().await;
    let u1 = alice(&app).await;
    app.user("bob@example.com").await;
    let r = app
        .get(&format!(
            "/Users?{}",
            filter(r#"userName eq "ALICE@example.COM""#)
        ))
        .await;
    assert_list(&r, 1, &[&u1]);
    assert_eq!(r.body["Resources"][0]["userName"], "alice@example.com");
}

#[tokio::test]
async fn c9_post_without_user_name_is_400_invalid_value() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let r = idp
            .post(
                "/Users",
                json!({"schemas": [USER_URN], "displayName": "No Name", "active": true}),
            )
            .await;
        r.assert_scim_error(400, Some("invalidValue"));
        assert_eq!(app.get("/Users").await.body["totalResults"], 0);
    }
}

#[tokio::test]
async fn c10_post_with_malformed_json_is_400_invalid_syntax_not_500() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        for junk in ["{\"userName\": \"x\",", "garbage", "{\"userName\": \"x\"}}"] {
            let opts = Opts {
                content_type: Some(ct.into()),
                raw_body: Some(junk.into()),
                ..Opts::default()
            };
            let r = app.send(Method::POST, "/Users", None, opts).await;
            r.assert_scim_error(400, Some("invalidSyntax"));
        }
        assert_eq!(app.get("/Users").await.body["totalResults"], 0);
    }
}

#[tokio::test]
async fn c11_unknown_attributes_and_schema_urns_are_ignored_on_create() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let r = idp
            .post(
                "/Users",
                json!({"schemas": [USER_URN, "urn:example:params:scim:schemas:unknown:1.0"],
                       "userName": "colour@example.com", "favouriteColour": "teal",
                       "urn:example:params:scim:schemas:unknown:1.0": {"shoeSize": 44}}),
            )
            .await;
        r.assert_status(201);
        assert!(!r.text.contains("favouriteColour") && !r.text.contains("shoeSize"));
        assert_eq!(r.body["schemas"], json!([USER_URN]));
        let doc = stored(&app, ResourceKind::User, &r.id()).await;
        assert_eq!(doc, json!({"userName": "colour@example.com"}));
    }
}

#[tokio::test]
async fn c12_active_as_string_true_is_stored_and_returned_as_a_boolean() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let r = idp
            .post(
                "/Users",
                json!({"schemas": [USER_URN], "userName": "garbage@example.com", "active": "True"}),
            )
            .await;
        r.assert_status(201);
        assert_eq!(r.body["active"], json!(true));
        let g = app.get(&format!("/Users/{}", r.id())).await;
        assert_eq!(g.body["active"], json!(true));
        let f = app
            .get(&format!(
                "/Users?{}",
                filter(r#"userName eq "garbage@example.com" and active eq true"#)
            ))
            .await;
        assert_eq!(f.body["totalResults"], 1);
    }
}

#[tokio::test]
async fn c13_password_and_groups_in_a_post_are_neither_returned_stored_nor_logged() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let g = app.group("Existing", &[]).await;
        let logs = LogCapture::start();
        let r = idp
            .post(
                "/Users",
                json!({"schemas": [USER_URN], "userName": "pw@example.com",
                       "password": "kX93mqzA-Secret", "groups": [{"value": g}], "active": true}),
            )
            .await;
        r.assert_status(201);
        let id = r.id();
        assert!(r.body.get("password").is_none());
        assert!(
            r.body.get("groups").is_none(),
            "groups from the body were stored: {}",
            r.text
        );
        assert!(!r.text.contains("kX93mqzA"));
        assert!(app.member_ids(&g).await.is_empty());
        let doc = stored(&app, ResourceKind::User, &id).await;
        assert!(!doc.to_string().contains("kX93mqzA"), "{doc}");
        assert!(doc.get("groups").is_none());
        let logged = logs.text();
        assert!(
            logged.contains("resource created"),
            "the log capture saw nothing: {logged}"
        );
        assert!(!logged.contains("kX93mqzA"), "the password was logged");
    }
}

#[tokio::test]
async fn c14_pages_are_one_based_with_integer_counts_in_a_stable_order() {
    let app = TestApp::spawn().await;
    let mut all = Vec::new();
    for i in 0..5 {
        all.push(app.user(&format!("page{i}@example.com")).await);
    }
    let page = |start: usize| {
        let app = &app;
        async move { app.get(&format!("/Users?startIndex={start}&count=2")).await }
    };
    let first = page(1).await;
    first.assert_status(200);
    assert_eq!(first.body["totalResults"], json!(5));
    assert_eq!(first.body["itemsPerPage"], json!(2));
    assert_eq!(first.body["startIndex"], json!(1));
    let second = page(3).await;
    assert_eq!(second.body["startIndex"], json!(3));
    assert_eq!(second.body["itemsPerPage"], json!(2));
    let third = page(5).await;
    assert_eq!(third.body["itemsPerPage"], json!(1));
    assert_eq!(third.body["totalResults"], json!(5));
    let mut seen = ids(&first);
    seen.extend(ids(&second));
    seen.extend(ids(&third));
    let unpaged = ids(&app.get("/Users").await);
    assert_eq!(seen, unpaged, "pages follow the one stable order");
    let mut sorted_seen = seen.clone();
    sorted_seen.sort();
    all.sort();
    assert_eq!(sorted_seen, all, "no duplicates, no gaps");
    assert_eq!(ids(&page(3).await), ids(&second), "the order is stable");
}

#[tokio::test]
async fn c15_start_index_zero_and_negative_count_are_clamped() {
    let app = TestApp::spawn().await;
    alice(&app).await;
    app.user("bob@example.com").await;
    let r = app.get("/Users?startIndex=0&count=-1").await;
    r.assert_status(200);
    assert_eq!(
        r.body,
        json!({"schemas": [LIST_URN], "totalResults": 2, "itemsPerPage": 0, "startIndex": 1,
               "Resources": []})
    );
}

#[tokio::test]
async fn c16_filter_and_paging_work_together() {
    let app = TestApp::spawn().await;
    let u1 = alice(&app).await;
    app.user("bob@example.com").await;
    let r = app
        .get(&format!(
            "/Users?{}&startIndex=1&count=100",
            filter(r#"userName eq "alice@example.com""#)
        ))
        .await;
    assert_list(&r, 1, &[&u1]);
    assert_eq!(r.body["startIndex"], json!(1));
}

#[tokio::test]
async fn c17_plus_encoded_filter_with_a_trailing_ampersand_finds_the_user() {
    let app = TestApp::spawn().await;
    let u1 = alice(&app).await;
    app.user("bob@example.com").await;
    let r = app
        .get("/Users?filter=userName+eq+%22alice%40example.com%22&")
        .await;
    assert_list(&r, 1, &[&u1]);
}

#[tokio::test]
async fn c18_external_id_filter_finds_the_user_quoted_or_not() {
    let app = TestApp::spawn().await;
    let u1 = alice(&app).await;
    app.create_user(json!({"userName": "bob@example.com", "externalId": "ext-2"}))
        .await;
    let r = app
        .get(&format!("/Users?{}", filter(r#"externalId eq "ext-1""#)))
        .await;
    assert_list(&r, 1, &[&u1]);
    // docs/reference/idp-behaviour.md E12: an older Entra sent the value unquoted.
    let r = app
        .get(&format!("/Users?{}", filter("externalId eq ext-1")))
        .await;
    assert_list(&r, 1, &[&u1]);
}

#[tokio::test]
async fn c19_id_filter_finds_the_user() {
    let app = TestApp::spawn().await;
    let u1 = alice(&app).await;
    app.user("bob@example.com").await;
    let r = app
        .get(&format!("/Users?{}", filter(&format!(r#"id eq "{u1}""#))))
        .await;
    assert_list(&r, 1, &[&u1]);
}

#[tokio::test]
async fn c20_and_combines_user_name_and_active() {
    let app = TestApp::spawn().await;
    let u1 = alice(&app).await;
    let f = filter(r#"userName eq "alice@example.com" and active eq true"#);
    assert_list(&app.get(&format!("/Users?{f}")).await, 1, &[&u1]);
    app.patch_ops(
        &format!("/Users/{u1}"),
        json!([{"op": "replace", "path": "active", "value": false}]),
    )
    .await
    .assert_status(200);
    assert_list(&app.get(&format!("/Users?{f}")).await, 0, &[]);
}

#[tokio::test]
async fn c21_unsupported_filter_operators_are_400_invalid_filter_never_500() {
    let app = TestApp::spawn().await;
    let u1 = app
        .create_user(json!({"userName": "t@example.com", "title": "Expert"}))
        .await;
    // `co` is implemented, so it answers.
    assert_list(
        &app.get(&format!("/Users?{}", filter(r#"title co "x""#)))
            .await,
        1,
        &[&u1],
    );
    for bad in [
        r#"title xx "x""#,
        r#"title like "x""#,
        r#"title co"#,
        r#"title regex "^E""#,
    ] {
        let r = app.get(&format!("/Users?{}", filter(bad))).await;
        r.assert_scim_error(400, Some("invalidFilter"));
    }
}

#[tokio::test]
async fn c22_attributes_returns_only_those_plus_always_returned_ones() {
    let app = TestApp::spawn().await;
    let u1 = alice(&app).await;
    let r = app
        .get(&format!("/Users/{u1}?attributes=userName,emails"))
        .await;
    r.assert_status(200);
    let mut keys: Vec<&str> = r
        .body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["emails", "id", "schemas", "userName"], "{}", r.text);
    assert_eq!(r.body["emails"][0]["value"], "alice@example.com");
}

#[tokio::test]
async fn c23_put_with_our_own_id_meta_and_groups_is_200_and_ignores_them() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let u1 = alice(&app).await;
        let g = app.group("Readers", &[&u1]).await;
        let mut body = app.get(&format!("/Users/{u1}")).await.body;
        assert!(body.get("groups").is_some(), "fixture: alice is in a group");
        body["title"] = json!("Engineer");
        body["meta"]["version"] = json!("W/\"99\"");
        body["meta"]["created"] = json!("2001-01-01T00:00:00Z");
        body["groups"] = json!([{"value": "some-other-group"}]);
        let r = idp.put(&format!("/Users/{u1}"), body).await;
        r.assert_status(200);
        assert_eq!(r.body["id"], json!(u1));
        assert_eq!(r.body["title"], "Engineer");
        assert_eq!(r.body["meta"]["version"], "W/\"2\"");
        assert_ne!(r.body["meta"]["created"], "2001-01-01T00:00:00Z");
        assert_eq!(r.body["groups"][0]["value"], json!(g));
        assert_eq!(app.member_ids(&g).await, vec![u1.clone()]);
    }
}

#[tokio::test]
async fn c24_put_with_another_id_in_the_body_is_400_and_never_rekeys() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let u1 = alice(&app).await;
        let r = idp
            .put(
                &format!("/Users/{u1}"),
                json!({"schemas": [USER_URN], "id": "another-id", "userName": "alice@example.com",
                       "title": "changed"}),
            )
            .await;
        r.assert_scim_error(400, Some("invalidValue"));
        let g = app.get(&format!("/Users/{u1}")).await;
        g.assert_status(200);
        assert!(g.body.get("title").is_none(), "nothing was written");
        app.get("/Users/another-id")
            .await
            .assert_scim_error(404, None);
    }
}

#[tokio::test]
async fn c25_put_without_user_name_is_400() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let u1 = alice(&app).await;
        let r = idp
            .put(
                &format!("/Users/{u1}"),
                json!({"schemas": [USER_URN], "displayName": "No Name"}),
            )
            .await;
        r.assert_scim_error(400, Some("invalidValue"));
        assert_eq!(
            app.get(&format!("/Users/{u1}")).await.body["userName"],
            "alice@example.com"
        );
    }
}

#[tokio::test]
async fn c26_put_with_a_misspelled_attribute_is_200_and_ignores_it() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let u1 = alice(&app).await;
        let r = idp
            .put(
                &format!("/Users/{u1}"),
                json!({"schemas": [USER_URN], "userName": "alice@example.com", "titel": "Boss"}),
            )
            .await;
        r.assert_status(200);
        assert!(r.body.get("titel").is_none() && r.body.get("title").is_none());
        let doc = stored(&app, ResourceKind::User, &u1).await;
        assert!(!doc.to_string().contains("Boss"), "{doc}");
    }
}

#[tokio::test]
async fn c27_user_patch_answers_200_with_the_full_resource_and_404_for_an_unknown_id() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let u1 = alice(&app).await;
        let r = idp
            .patch_ops(
                &format!("/Users/{u1}"),
                json!([{"op": "replace", "path": "title", "value": "Lead"}]),
            )
            .await;
        r.assert_status(200);
        assert_eq!(r.header("content-type"), Some("application/scim+json"));
        assert_eq!(r.body["id"], json!(u1));
        assert_eq!(r.body["title"], "Lead");
        assert_eq!(r.body["userName"], "alice@example.com");
        assert_eq!(r.body["emails"][0]["value"], "alice@example.com");
        assert_eq!(r.body["meta"]["resourceType"], "User");
        let r = idp
            .patch_ops(
                "/Users/no-such-user",
                json!([{"op": "replace", "path": "title", "value": "Lead"}]),
            )
            .await;
        r.assert_scim_error(404, None);
    }
}

#[tokio::test]
async fn c28_delete_is_204_then_get_and_a_second_delete_are_404() {
    let app = TestApp::spawn().await;
    let u1 = alice(&app).await;
    let path = format!("/Users/{u1}");
    let r = app.delete(&path).await;
    r.assert_status(204);
    assert!(r.text.is_empty());
    app.get(&path).await.assert_scim_error(404, None);
    app.delete(&path).await.assert_scim_error(404, None);
}

#[tokio::test]
async fn c29_group_delete_is_204_then_404() {
    let app = TestApp::spawn().await;
    let u1 = alice(&app).await;
    let g = app.group("Doomed", &[&u1]).await;
    let path = format!("/Groups/{g}");
    app.delete(&path).await.assert_status(204);
    app.get(&path).await.assert_scim_error(404, None);
    app.delete(&path).await.assert_scim_error(404, None);
    assert!(app
        .get(&format!("/Users/{u1}"))
        .await
        .body
        .get("groups")
        .is_none());
}

#[tokio::test]
async fn c30_an_inactive_user_stays_readable_by_id_and_by_filter() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let u1 = alice(&app).await;
        idp.patch_ops(
            &format!("/Users/{u1}"),
            json!([{"op": "replace", "path": "active", "value": false}]),
        )
        .await
        .assert_status(200);
        let r = app.get(&format!("/Users/{u1}")).await;
        r.assert_status(200);
        assert_eq!(r.body["active"], json!(false));
        let f = app
            .get(&format!(
                "/Users?{}",
                filter(r#"userName eq "alice@example.com""#)
            ))
            .await;
        assert_list(&f, 1, &[&u1]);
        assert_eq!(f.body["Resources"][0]["active"], json!(false));
    }
}

#[tokio::test]
async fn c31_values_round_trip_exactly_as_sent() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let id = idp
            .create_user(json!({
                "schemas": [USER_URN], "userName": "Mixed.Case@Example.COM",
                "phoneNumbers": [{"value": "+1 (555) 010-9999", "type": "work"}],
                "emails": [{"value": "Mixed.Case@Example.COM", "type": "work", "primary": true}]
            }))
            .await;
        let r = app.get(&format!("/Users/{id}")).await;
        assert_eq!(r.body["userName"], "Mixed.Case@Example.COM");
        assert_eq!(r.body["phoneNumbers"][0]["value"], "+1 (555) 010-9999");
        assert_eq!(r.body["emails"][0]["value"], "Mixed.Case@Example.COM");
    }
}

#[tokio::test]
async fn c32_discovery_endpoints_answer_and_schemas_list_user_enterprise_and_group() {
    let app = TestApp::spawn().await;
    for path in ["/ServiceProviderConfig", "/ResourceTypes", "/Schemas"] {
        let r = app.get(path).await;
        r.assert_status(200);
        assert_eq!(r.header("content-type"), Some("application/scim+json"));
    }
    let r = app.get("/Schemas").await;
    let listed: Vec<&str> = r.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    for urn in [USER_URN, ENT, GROUP_URN] {
        assert!(listed.contains(&urn), "{urn} missing from {listed:?}");
    }
    let rt = app.get("/ResourceTypes").await;
    let names: Vec<&str> = rt.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert!(
        names.contains(&"User") && names.contains(&"Group"),
        "{names:?}"
    );
    let spc = app.get("/ServiceProviderConfig").await;
    assert_eq!(spc.body["patch"]["supported"], json!(true));
    assert_eq!(spc.body["filter"]["supported"], json!(true));
}

#[tokio::test]
async fn c33_both_json_media_types_with_charset_are_accepted() {
    let app = TestApp::spawn().await;
    let u1 = alice(&app).await;
    for (i, ct) in [
        "application/scim+json; charset=utf-8",
        "application/json; charset=utf-8",
        "application/scim+json",
        "application/json",
    ]
    .into_iter()
    .enumerate()
    {
        let opts = Opts {
            content_type: Some(ct.into()),
            ..Opts::default()
        };
        let r = app
            .send(
                Method::POST,
                "/Users",
                Some(json!({"userName": format!("ct{i}@example.com")})),
                opts.clone(),
            )
            .await;
        assert_eq!(r.status, 201, "{ct}: {}", r.text);
        let r = app
            .send(
                Method::PATCH,
                &format!("/Users/{u1}"),
                Some(json!({"Operations": [{"op": "replace", "path": "title", "value": ct}]})),
                opts.clone(),
            )
            .await;
        assert_eq!(r.status, 200, "{ct}: {}", r.text);
        assert_eq!(r.body["title"], ct);
        let r = app
            .send(
                Method::PUT,
                &format!("/Users/{u1}"),
                Some(json!({"userName": "alice@example.com", "title": ct})),
                opts,
            )
            .await;
        assert_eq!(r.status, 200, "{ct}: {}", r.text);
    }
}

#[tokio::test]
async fn c34_responses_are_scim_json_whatever_the_accept_header() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let u1 = alice(&app).await;
        for accept in [
            Some("application/json"),
            Some("*/*"),
            Some("text/json"),
            None,
        ] {
            let headers: Vec<(String, String)> = accept
                .map(|a| vec![("Accept".to_owned(), a.to_owned())])
                .unwrap_or_default();
            let opts = Opts {
                headers,
                ..Opts::default()
            };
            let get = app
                .send(Method::GET, &format!("/Users/{u1}"), None, opts.clone())
                .await;
            let list = app.send(Method::GET, "/Users", None, opts.clone()).await;
            let missing = app
                .send(Method::GET, "/Users/missing", None, opts.clone())
                .await;
            let patch = idp
                .send(
                    Method::PATCH,
                    &format!("/Users/{u1}"),
                    json!({"Operations": [{"op": "add", "path": "nickName", "value": "Al"}]}),
                    opts,
                )
                .await;
            for r in [&get, &list, &missing, &patch] {
                assert_eq!(
                    r.header("content-type"),
                    Some("application/scim+json"),
                    "Accept {accept:?}: {}",
                    r.text
                );
            }
            assert_eq!(
                (get.status, list.status, missing.status, patch.status),
                (200, 200, 404, 200)
            );
        }
    }
}

#[tokio::test]
async fn c35_an_unknown_query_parameter_is_ignored_on_every_route() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let flag = "aadOptscim062020";
        let u1 = alice(&app).await;
        let g = app.group("Flagged", &[]).await;
        for path in [
            format!("/Users?{flag}"),
            format!("/Users/{u1}?{flag}"),
            format!("/Groups?{flag}&excludedAttributes=members"),
            format!("/Groups/{g}?{flag}"),
            format!("/ServiceProviderConfig?{flag}"),
            format!("/ResourceTypes?{flag}"),
            format!("/ResourceTypes/User?{flag}"),
            format!("/Schemas?{flag}"),
            format!("/Schemas/{USER_URN}?{flag}"),
            format!(
                "/Users?{flag}&{}",
                filter(r#"userName eq "alice@example.com""#)
            ),
        ] {
            let r = app.get(&path).await;
            assert_eq!(r.status, 200, "GET {path}: {}", r.text);
        }
        let f = app
            .get(&format!(
                "/Users?{}&{flag}&unknownParam=1",
                filter(r#"userName eq "alice@example.com""#)
            ))
            .await;
        assert_list(&f, 1, &[&u1]);
        let created = idp
            .post(
                &format!("/Users?{flag}"),
                json!({"userName": "flag@example.com"}),
            )
            .await;
        created.assert_status(201);
        let v = created.id();
        idp.put(
            &format!("/Users/{v}?{flag}"),
            json!({"userName": "flag@example.com", "title": "T"}),
        )
        .await
        .assert_status(200);
        let r = idp
            .patch_ops(
                &format!("/Users/{v}?{flag}"),
                json!([{"op": "Replace", "path": "nickName", "value": "F"}]),
            )
            .await;
        r.assert_status(200);
        assert_eq!(r.body["nickName"], "F");
        idp.patch_ops(
            &format!("/Groups/{g}?{flag}"),
            json!([{"op": "Add", "path": "members", "value": [{"value": v}]}]),
        )
        .await
        .assert_status(200);
        idp.post(
            &format!("/Users/.search?{flag}"),
            json!({"filter": "userName eq \"flag@example.com\""}),
        )
        .await
        .assert_status(200);
        idp.post(
            &format!("/.search?{flag}"),
            json!({"filter": "displayName eq \"Flagged\""}),
        )
        .await
        .assert_status(200);
        let b = idp
            .post(
                &format!("/Bulk?{flag}"),
                json!({"Operations": [{"method": "POST", "path": "/Users", "bulkId": "b",
                                       "data": {"userName": "bulk-flag@example.com"}}]}),
            )
            .await;
        b.assert_status(200);
        assert_eq!(b.body["Operations"][0]["status"], "201", "{}", b.text);
        app.delete(&format!("/Groups/{g}?{flag}"))
            .await
            .assert_status(204);
        app.delete(&format!("/Users/{v}?{flag}"))
            .await
            .assert_status(204);
        app.get(&format!("/Users/{v}")).await.assert_status(404);
    }
}

#[tokio::test]
async fn c36_thirty_concurrent_posts_distinct_all_201_identical_exactly_one_201() {
    for ct in CONTENT_TYPES {
        let app = Arc::new(TestApp::spawn().await);
        let post_all = |names: Vec<String>| {
            let app = app.clone();
            async move {
                let tasks: Vec<_> = names
                    .into_iter()
                    .map(|name| {
                        let app = app.clone();
                        tokio::spawn(async move {
                            Idp::new(&app, ct)
                                .post("/Users", json!({"userName": name}))
                                .await
                                .status
                        })
                    })
                    .collect();
                futures::future::join_all(tasks)
                    .await
                    .into_iter()
                    .map(Result::unwrap)
                    .collect::<Vec<u16>>()
            }
        };
        let distinct = post_all((0..30).map(|i| format!("c{i}@example.com")).collect()).await;
        assert!(distinct.iter().all(|s| *s == 201), "{distinct:?}");
        let same = post_all(vec!["same@example.com".to_owned(); 30]).await;
        assert_eq!(same.iter().filter(|s| **s == 201).count(), 1, "{same:?}");
        assert_eq!(same.iter().filter(|s| **s == 409).count(), 29, "{same:?}");
        assert_eq!(app.get("/Users").await.body["totalResults"], 31);
    }
}

#[tokio::test]
async fn c38_an_empty_operations_array_is_a_200_no_op() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let u1 = alice(&app).await;
        let before = app.get(&format!("/Users/{u1}")).await.body;
        let r = idp.patch_ops(&format!("/Users/{u1}"), json!([])).await;
        r.assert_status(200);
        assert_eq!(r.body, before, "nothing changed, not even the version");
        let g = app.group("G", &[&u1]).await;
        idp.patch_ops(&format!("/Groups/{g}"), json!([]))
            .await
            .assert_status(200);
        assert_eq!(app.member_ids(&g).await, vec![u1.clone()]);
    }
}

#[tokio::test]
async fn c39_schemas_do_not_advertise_password() {
    let app = TestApp::spawn().await;
    let r = app.get("/Schemas").await;
    r.assert_status(200);
    assert!(
        !r.text.to_ascii_lowercase().contains("password"),
        "{}",
        r.text
    );
    let user = app.get(&format!("/Schemas/{USER_URN}")).await;
    user.assert_status(200);
    let names: Vec<&str> = user.body["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert!(names.contains(&"userName") && !names.contains(&"password"));
}
