//! docs/reference/idp-behaviour.md §10.2 Microsoft Entra ID: items 40–79. Items 80–83
//! (authentication) belong to the authentication work.
//!
//! Group PATCH answers 200 with the resource in this server (item 27 lets a server pick one
//! status per resource type; Entra accepts 200 as well as 204).

use serde_json::{json, Value};

use super::{alice, assert_list, filter, stored, Idp, CONTENT_TYPES, ENT, GROUP_URN, USER_URN};
use crate::helpers::TestApp;
use usersync::scim::schema::ResourceKind;

const ADSCIM_GROUP: &str =
    "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group";

fn manager_path() -> String {
    format!("{ENT}:manager")
}

/// The enterprise extension of a user as returned by GET.
async fn enterprise(app: &TestApp, id: &str) -> Value {
    let r = app.get(&format!("/Users/{id}")).await;
    r.assert_status(200);
    r.body.get(ENT).cloned().unwrap_or(Value::Null)
}

/// Two users: the employee and a manager; returns (user, manager).
async fn employee_and_manager(app: &TestApp) -> (String, String) {
    let m = app.user("boss@example.com").await;
    let u = alice(app).await;
    (u, m)
}

#[tokio::test]
async fn c40_test_connection_filter_on_a_random_guid_is_an_empty_200() {
    let app = TestApp::spawn().await;
    alice(&app).await;
    let r = app
        .get("/Users?filter=userName%20eq%20%225f0c6a2e-1b7d-4f8e-9a3c-2d1e0f9b8a7c%22")
        .await;
    assert_list(&r, 0, &[]);
    assert_eq!(r.body["startIndex"], json!(1));
}

#[tokio::test]
async fn c41_entra_create_with_both_schemas_meta_and_empty_roles_is_201() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let r = idp
            .post(
                "/Users",
                json!({
                    "schemas": [USER_URN, ENT],
                    "externalId": "bsmith",
                    "userName": "bob.smith@example.org",
                    "active": true,
                    "displayName": "Bob Smith",
                    "title": "Engineer",
                    "emails": [{"primary": true, "type": "work", "value": "bob.smith@example.org"}],
                    "name": {"givenName": "Bob", "familyName": "Smith", "formatted": "Bob Smith"},
                    "phoneNumbers": [{"type": "mobile", "value": "+49 170 0000000"}],
                    ENT: {"employeeNumber": "E1042", "department": "R&D"},
                    "meta": {"resourceType": "User"},
                    "roles": []
                }),
            )
            .await;
        r.assert_status(201);
        let id = r.id();
        let g = app.get(&format!("/Users/{id}")).await;
        assert_eq!(g.body["externalId"], "bsmith");
        assert_eq!(g.body["emails"][0]["value"], "bob.smith@example.org");
        assert_eq!(g.body["emails"][0]["primary"], json!(true));
        assert_eq!(g.body["name"]["formatted"], "Bob Smith");
        assert_eq!(g.body["phoneNumbers"][0]["value"], "+49 170 0000000");
        assert_eq!(
            g.body[ENT],
            json!({"employeeNumber": "E1042", "department": "R&D"})
        );
        assert_eq!(g.body["schemas"], json!([USER_URN, ENT]));
        assert!(g.body.get("roles").is_none());
    }
}

#[tokio::test]
async fn c42_entra_create_with_nulls_and_the_misspelled_enterprise_urn_is_201() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let misspelled = "urn:ietf:params:scim:schemas:extension:enterprise:2.0User";
        let r = idp
            .post(
                "/Users",
                json!({
                    "schemas": [USER_URN, misspelled],
                    "userName": "nulls@example.org",
                    "externalId": null,
                    "nickName": null,
                    "title": null,
                    "name": {"givenName": "Null", "familyName": null},
                    "emails": null,
                    "phoneNumbers": [{"type": "work", "value": "+1 555", "primary": null}],
                    "active": true,
                    ENT: {"department": "Ops", "employeeNumber": null, "manager": null},
                    misspelled: {"costCenter": "ignored"}
                }),
            )
            .await;
        r.assert_status(201);
        let doc = stored(&app, ResourceKind::User, &r.id()).await;
        assert_eq!(
            doc,
            json!({
                "userName": "nulls@example.org",
                "name": {"givenName": "Null"},
                "phoneNumbers": [{"type": "work", "value": "+1 555"}],
                "active": true,
                ENT: {"department": "Ops"}
            })
        );
        assert!(!r.text.contains("2.0User"), "{}", r.text);
    }
}

#[tokio::test]
async fn c43_entra_replace_active_false_string_deactivates() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let u1 = alice(&app).await;
        let r = idp
            .patch_ops(
                &format!("/Users/{u1}"),
                json!([{"op": "Replace", "path": "active", "value": "False"}]),
            )
            .await;
        r.assert_status(200);
        assert_eq!(r.body["active"], json!(false));
        assert_eq!(
            app.get(&format!("/Users/{u1}")).await.body["active"],
            json!(false)
        );
    }
}

#[tokio::test]
async fn c44_compliant_replace_active_false_boolean_deactivates() {
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
        assert_eq!(
            app.get(&format!("/Users/{u1}")).await.body["active"],
            json!(false)
        );
    }
}

#[tokio::test]
async fn c45_entra_replace_active_true_string_reenables_an_inactive_user() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let id = app
            .create_user(json!({"userName": "restored@example.com", "active": false}))
            .await;
        let r = idp
            .patch_ops(
                &format!("/Users/{id}"),
                json!([{"op": "Replace", "path": "active", "value": "True"}]),
            )
            .await;
        r.assert_status(200);
        assert_eq!(
            app.get(&format!("/Users/{id}")).await.body["active"],
            json!(true)
        );
    }
}

#[tokio::test]
async fn c46_entra_add_nick_name_sets_it() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let u1 = alice(&app).await;
        idp.patch_ops(
            &format!("/Users/{u1}"),
            json!([{"op": "Add", "path": "nickName", "value": "Bobby"}]),
        )
        .await
        .assert_status(200);
        assert_eq!(
            app.get(&format!("/Users/{u1}")).await.body["nickName"],
            "Bobby"
        );
    }
}

#[tokio::test]
async fn c47_entra_default_dialect_multi_op_patch_applies_every_operation() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let u1 = alice(&app).await;
        idp.patch_ops(
            &format!("/Users/{u1}"),
            json!([
                {"op": "Replace", "path": "displayName", "value": "Alice Smith-Jones"},
                {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "a.smith-jones@example.com"},
                {"op": "Replace", "path": "name.givenName", "value": "Alicia"},
                {"op": "Replace", "path": "name.familyName", "value": "Smith-Jones"},
                {"op": "Replace", "path": "externalId", "value": "asmithjones"},
                {"op": "Replace", "path": format!("{ENT}:employeeNumber"), "value": "E2001"}
            ]),
        )
        .await
        .assert_status(200);
        let r = app.get(&format!("/Users/{u1}")).await;
        assert_eq!(r.body["displayName"], "Alice Smith-Jones");
        assert_eq!(
            r.body["emails"],
            json!([{"value": "a.smith-jones@example.com", "type": "work", "primary": true}])
        );
        assert_eq!(
            r.body["name"],
            json!({"givenName": "Alicia", "familyName": "Smith-Jones"})
        );
        assert_eq!(r.body["externalId"], "asmithjones");
        assert_eq!(r.body[ENT]["employeeNumber"], "E2001");
    }
}

#[tokio::test]
async fn c48_flag_dialect_pathless_replace_with_dotted_and_urn_keys_applies_them_as_paths() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let u1 = alice(&app).await;
        idp.patch_ops(
            &format!("/Users/{u1}"),
            json!([
                {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "b.smith@example.org"},
                {"op": "replace", "value": {
                    "displayName": "Alice Jones",
                    "name.givenName": "Alicia",
                    "name.familyName": "Jones",
                    format!("{ENT}:employeeNumber"): "E7",
                    format!("{ENT}:department"): "Platform"
                }}
            ]),
        )
        .await
        .assert_status(200);
        let r = app.get(&format!("/Users/{u1}")).await;
        assert_eq!(r.body["displayName"], "Alice Jones");
        assert_eq!(
            r.body["name"],
            json!({"givenName": "Alicia", "familyName": "Jones"})
        );
        assert_eq!(
            r.body[ENT],
            json!({"employeeNumber": "E7", "department": "Platform"})
        );
        assert_eq!(r.body["emails"][0]["value"], "b.smith@example.org");
        let doc = stored(&app, ResourceKind::User, &u1).await;
        let mut keys: Vec<&str> = doc
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "active",
                "displayName",
                "emails",
                "externalId",
                "name",
                ENT,
                "userName"
            ],
            "no dotted or qualified keys may be stored"
        );
    }
}

#[tokio::test]
async fn c49_pathless_replace_of_user_name_renames_and_the_old_name_no_longer_matches() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let u1 = alice(&app).await;
        idp.patch_ops(
            &format!("/Users/{u1}"),
            json!([{"op": "replace", "value": {"userName": "new@example.com"}}]),
        )
        .await
        .assert_status(200);
        let old = app
            .get(&format!(
                "/Users?{}",
                filter(r#"userName eq "alice@example.com""#)
            ))
            .await;
        assert_list(&old, 0, &[]);
        let new = app
            .get(&format!(
                "/Users?{}",
                filter(r#"userName eq "new@example.com""#)
            ))
            .await;
        assert_list(&new, 1, &[&u1]);
        // The old name is free again.
        app.user("alice@example.com").await;
    }
}

#[tokio::test]
async fn c50_add_on_a_filtered_email_path_creates_the_element() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let id = app.user("noemail@example.com").await;
        idp.patch_ops(
            &format!("/Users/{id}"),
            json!([{"op": "Add", "path": "emails[type eq \"work\"].value", "value": "w@example.com"}]),
        )
        .await
        .assert_status(200);
        assert_eq!(
            app.get(&format!("/Users/{id}")).await.body["emails"],
            json!([{"type": "work", "value": "w@example.com"}])
        );
    }
}

#[tokio::test]
async fn c51_replace_on_a_missing_mobile_phone_adds_it_and_keeps_work() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let id = app
            .create_user(json!({"userName": "phone@example.com",
                                "phoneNumbers": [{"type": "work", "value": "+49 30 1"}]}))
            .await;
        idp.patch_ops(
            &format!("/Users/{id}"),
            json!([{"op": "Replace", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+49 1"}]),
        )
        .await
        .assert_status(200);
        assert_eq!(
            app.get(&format!("/Users/{id}")).await.body["phoneNumbers"],
            json!([{"type": "work", "value": "+49 30 1"}, {"type": "mobile", "value": "+49 1"}])
        );
    }
}

#[tokio::test]
async fn c52_replace_on_a_work_address_locality_creates_then_updates_it() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let u1 = alice(&app).await;
        let path = format!("/Users/{u1}");
        idp.patch_ops(
            &path,
            json!([{"op": "Replace", "path": "addresses[type eq \"work\"].locality", "value": "Berlin"}]),
        )
        .await
        .assert_status(200);
        assert_eq!(
            app.get(&path).await.body["addresses"],
            json!([{"type": "work", "locality": "Berlin"}])
        );
        idp.patch_ops(
            &path,
            json!([
                {"op": "Replace", "path": "addresses[type eq \"work\"].locality", "value": "Hamburg"},
                {"op": "Replace", "path": "addresses[type eq \"work\"].postalCode", "value": "20095"}
            ]),
        )
        .await
        .assert_status(200);
        assert_eq!(
            app.get(&path).await.body["addresses"],
            json!([{"type": "work", "locality": "Hamburg", "postalCode": "20095"}])
        );
    }
}

#[tokio::test]
async fn c53_a_capitalised_sub_attribute_in_a_filtered_path_is_applied() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let u1 = alice(&app).await;
        idp.patch_ops(
            &format!("/Users/{u1}"),
            json!([{"op": "Replace", "path": "emails[type eq \"other\"].Value", "value": "o@example.com"}]),
        )
        .await
        .assert_status(200);
        let emails = app.get(&format!("/Users/{u1}")).await.body["emails"].clone();
        assert_eq!(
            emails,
            json!([
                {"value": "alice@example.com", "type": "work", "primary": true},
                {"type": "other", "value": "o@example.com"}
            ])
        );
    }
}

#[tokio::test]
async fn c54_manager_added_as_a_bare_string_is_returned_as_an_object() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let (u, m) = employee_and_manager(&app).await;
        let r = idp
            .patch_ops(
                &format!("/Users/{u}"),
                json!([{"op": "Add", "path": manager_path(), "value": m}]),
            )
            .await;
        r.assert_status(200);
        assert_eq!(r.body[ENT]["manager"]["value"], json!(m));
        let ext = enterprise(&app, &u).await;
        assert!(ext["manager"].is_object(), "{ext}");
        assert_eq!(ext["manager"]["value"], json!(m));
    }
}

#[tokio::test]
async fn c55_manager_replaced_with_an_object_value() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let (u, m) = employee_and_manager(&app).await;
        let m2 = app.user("boss2@example.com").await;
        let path = format!("/Users/{u}");
        idp.patch_ops(
            &path,
            json!([{"op": "Add", "path": manager_path(), "value": {"value": m}}]),
        )
        .await
        .assert_status(200);
        idp.patch_ops(
            &path,
            json!([{"op": "replace", "path": manager_path(), "value": {"value": m2}}]),
        )
        .await
        .assert_status(200);
        assert_eq!(enterprise(&app, &u).await["manager"], json!({"value": m2}));
    }
}

#[tokio::test]
async fn c56_manager_added_as_a_one_element_array_with_ref() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let (u, m) = employee_and_manager(&app).await;
        let reference = format!("../Users/{m}");
        idp.patch_ops(
            &format!("/Users/{u}"),
            json!([{"op": "Add", "path": "manager", "value": [{"$ref": reference, "value": m}]}]),
        )
        .await
        .assert_status(200);
        let manager = enterprise(&app, &u).await["manager"].clone();
        assert!(manager.is_object(), "{manager}");
        assert_eq!(manager["value"], json!(m));
    }
}

#[tokio::test]
async fn c57_manager_set_by_a_pathless_replace_with_its_qualified_key() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let (u, m) = employee_and_manager(&app).await;
        idp.patch_ops(
            &format!("/Users/{u}"),
            json!([{"op": "replace", "value": {manager_path(): m}}]),
        )
        .await
        .assert_status(200);
        assert_eq!(enterprise(&app, &u).await["manager"], json!({"value": m}));
        let doc = stored(&app, ResourceKind::User, &u).await;
        assert!(doc.get(manager_path()).is_none(), "{doc}");
    }
}

#[tokio::test]
async fn c58_manager_cleared_by_replace_with_an_empty_value_object() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let (u, m) = employee_and_manager(&app).await;
        let path = format!("/Users/{u}");
        for clear in [json!({"value": ""}), json!(""), json!(null)] {
            idp.patch_ops(
                &path,
                json!([{"op": "Add", "path": manager_path(), "value": {"value": m}}]),
            )
            .await
            .assert_status(200);
            assert_eq!(enterprise(&app, &u).await["manager"]["value"], json!(m));
            let r = idp
                .patch_ops(
                    &path,
                    json!([{"op": "Replace", "path": manager_path(), "value": clear}]),
                )
                .await;
            r.assert_status(200);
            let ext = enterprise(&app, &u).await;
            assert!(
                ext.get("manager").is_none(),
                "{clear} must clear the manager: {ext}"
            );
        }
    }
}

#[tokio::test]
async fn c59_manager_cleared_by_remove() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let (u, m) = employee_and_manager(&app).await;
        let path = format!("/Users/{u}");
        idp.patch_ops(
            &path,
            json!([{"op": "Add", "path": manager_path(), "value": m},
                   {"op": "Add", "path": format!("{ENT}:department"), "value": "Sales"}]),
        )
        .await
        .assert_status(200);
        idp.patch_ops(&path, json!([{"op": "Remove", "path": manager_path()}]))
            .await
            .assert_status(200);
        assert_eq!(enterprise(&app, &u).await, json!({"department": "Sales"}));
    }
}

#[tokio::test]
async fn c60_manager_cleared_by_remove_with_a_value_filter() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let (u, m) = employee_and_manager(&app).await;
        let path = format!("/Users/{u}");
        idp.patch_ops(
            &path,
            json!([{"op": "Add", "path": manager_path(), "value": m}]),
        )
        .await
        .assert_status(200);
        // A filter naming another manager leaves it alone.
        idp.patch_ops(
            &path,
            json!([{"op": "remove", "path": "manager[value eq \"someone-else\"]"}]),
        )
        .await
        .assert_status(200);
        assert_eq!(enterprise(&app, &u).await["manager"]["value"], json!(m));
        idp.patch_ops(
            &path,
            json!([{"op": "remove", "path": format!("manager[value eq \"{m}\"]")}]),
        )
        .await
        .assert_status(200);
        assert!(enterprise(&app, &u).await.get("manager").is_none());
    }
}

#[tokio::test]
async fn c61_a_manager_id_naming_no_user_is_stored_not_rejected() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let u1 = alice(&app).await;
        let r = idp
            .patch_ops(
                &format!("/Users/{u1}"),
                json!([{"op": "Add", "path": manager_path(), "value": "not-yet-provisioned"}]),
            )
            .await;
        r.assert_status(200);
        assert_eq!(
            enterprise(&app, &u1).await["manager"],
            json!({"value": "not-yet-provisioned"})
        );
    }
}

#[tokio::test]
async fn c62_id_and_manager_filter_finds_the_user_only_when_the_manager_is_set() {
    let app = TestApp::spawn().await;
    let (u, m) = employee_and_manager(&app).await;
    let q = format!(
        "/Users?{}&attributes=id",
        filter(&format!(r#"id eq "{u}" and manager eq "{m}""#))
    );
    assert_list(&app.get(&q).await, 0, &[]);
    app.patch_ops(
        &format!("/Users/{u}"),
        json!([{"op": "Add", "path": manager_path(), "value": m}]),
    )
    .await
    .assert_status(200);
    let r = app.get(&q).await;
    assert_list(&r, 1, &[&u]);
    let keys: Vec<&String> = r.body["Resources"][0].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["schemas", "id"]);
}

#[tokio::test]
async fn c63_post_with_manager_as_a_bare_string_or_capitalised_object_stores_it() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let m = app.user("boss@example.com").await;
        let bare = idp
            .create_user(
                json!({"schemas": [USER_URN, ENT], "userName": "bare@example.com",
                                ENT: {"manager": m}}),
            )
            .await;
        let capitalised = idp
            .create_user(
                json!({"schemas": [USER_URN, ENT], "userName": "caps@example.com",
                                ENT: {"Department": "Finance", "Manager": {"Value": m}}}),
            )
            .await;
        assert_eq!(
            enterprise(&app, &bare).await,
            json!({"manager": {"value": m}})
        );
        assert_eq!(
            enterprise(&app, &capitalised).await,
            json!({"department": "Finance", "manager": {"value": m}})
        );
    }
}

#[tokio::test]
async fn c64_roles_with_stringified_json_values_are_accepted_never_500() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let u1 = alice(&app).await;
        let role = r#"{"id":"5a3e0c2b-0000-4c4c-8d8d-111122223333","value":"Admin","displayName":"Admin"}"#;
        let r = idp
            .patch_ops(
                &format!("/Users/{u1}"),
                json!([{"op": "Add", "path": "roles", "value": [{"value": role}]}]),
            )
            .await;
        r.assert_status(200);
        assert_eq!(r.body["roles"], json!([{"value": role}]));
        // The whole array as one string, and a primary as a string boolean.
        let r = idp
            .patch_ops(
                &format!("/Users/{u1}"),
                json!([{"op": "Add", "path": "roles",
                        "value": format!("[{role}]")},
                       {"op": "Add", "path": "roles",
                        "value": [{"value": "User", "primary": "True"}]}]),
            )
            .await;
        r.assert_status(200);
        let roles = app.get(&format!("/Users/{u1}")).await.body["roles"].clone();
        assert_eq!(
            roles,
            json!([{"value": role}, {"value": format!("[{role}]")}, {"value": "User", "primary": true}])
        );
    }
}

#[tokio::test]
async fn c65_group_create_with_the_legacy_adscim_urn_and_no_members_is_201() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let r = idp
            .post(
                "/Groups",
                json!({"schemas": [GROUP_URN, ADSCIM_GROUP],
                       "externalId": "3f1c7e55-0000-4a4a-9d9d-1234567890ab",
                       "displayName": "Linchpin Editors", "meta": {"resourceType": "Group"}}),
            )
            .await;
        r.assert_status(201);
        assert!(!r.id().is_empty());
        assert_eq!(r.body["schemas"], json!([GROUP_URN]));
        assert_eq!(r.body["displayName"], "Linchpin Editors");
        assert_eq!(r.body["externalId"], "3f1c7e55-0000-4a4a-9d9d-1234567890ab");
        assert_eq!(r.body["meta"]["resourceType"], "Group");
        assert_eq!(r.header("location"), r.body["meta"]["location"].as_str());
    }
}

#[tokio::test]
async fn c66_a_duplicate_group_display_name_is_409() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let body = json!({"schemas": [GROUP_URN], "displayName": "Linchpin Editors"});
        idp.post("/Groups", body.clone()).await.assert_status(201);
        idp.post("/Groups", body)
            .await
            .assert_scim_error(409, Some("uniqueness"));
        assert_eq!(app.get("/Groups").await.body["totalResults"], 1);
    }
}

#[tokio::test]
async fn c67_group_filter_with_excluded_members_returns_it_without_members() {
    let app = TestApp::spawn().await;
    let u1 = alice(&app).await;
    let g = app.group("Linchpin Editors", &[&u1]).await;
    app.group("Other", &[&u1]).await;
    let r = app
        .get(&format!(
            "/Groups?excludedAttributes=members&{}",
            filter(r#"displayName eq "Linchpin Editors""#)
        ))
        .await;
    assert_list(&r, 1, &[&g]);
    let group = &r.body["Resources"][0];
    assert!(group.get("members").is_none(), "{}", r.text);
    assert_eq!(group["displayName"], "Linchpin Editors");
}

#[tokio::test]
async fn c68_group_get_with_excluded_members_omits_them() {
    let app = TestApp::spawn().await;
    let u1 = alice(&app).await;
    let g = app.group("Linchpin Editors", &[&u1]).await;
    let r = app
        .get(&format!("/Groups/{g}?excludedAttributes=members"))
        .await;
    r.assert_status(200);
    assert!(r.body.get("members").is_none(), "{}", r.text);
    assert_eq!(r.body["id"], json!(g));
    assert_eq!(app.member_ids(&g).await, vec![u1]);
}

#[tokio::test]
async fn c69_group_filter_by_display_name_ignores_case() {
    let app = TestApp::spawn().await;
    let g = app.group("Linchpin Editors", &[]).await;
    let r = app
        .get(&format!(
            "/Groups?{}",
            filter(r#"displayName eq "linchpin editors""#)
        ))
        .await;
    assert_list(&r, 1, &[&g]);
}

#[tokio::test]
async fn c70_add_members_with_null_ref_and_entras_extra_name_property() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let u1 = alice(&app).await;
        let u2 = app.user("bob@example.com").await;
        let g = app.group("Linchpin Editors", &[]).await;
        let r = idp
            .patch_ops(
                &format!("/Groups/{g}"),
                json!([{"op": "Add", "path": "members", "name": "addMember",
                        "value": [{"$ref": null, "value": u1}, {"$ref": null, "value": u2}]}]),
            )
            .await;
        r.assert_status(200);
        let mut want = vec![u1.clone(), u2.clone()];
        want.sort();
        assert_eq!(app.member_ids(&g).await, want);
    }
}

#[tokio::test]
async fn c71_add_members_with_a_bare_string_value() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let u1 = alice(&app).await;
        let g = app.group("Linchpin Editors", &[]).await;
        idp.patch_ops(
            &format!("/Groups/{g}"),
            json!([{"op": "Add", "path": "members", "value": u1}]),
        )
        .await
        .assert_status(200);
        assert_eq!(app.member_ids(&g).await, vec![u1]);
    }
}

#[tokio::test]
async fn c72_legacy_remove_members_with_a_value_list_removes_only_those() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let u1 = alice(&app).await;
        let u2 = app.user("bob@example.com").await;
        let g = app.group("Linchpin Editors", &[&u1, &u2]).await;
        idp.patch_ops(
            &format!("/Groups/{g}"),
            json!([{"op": "Remove", "path": "members", "value": [{"value": u1}]}]),
        )
        .await
        .assert_status(200);
        assert_eq!(app.member_ids(&g).await, vec![u2]);
    }
}

#[tokio::test]
async fn c73_compliant_remove_members_with_a_value_filter() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let u1 = alice(&app).await;
        let u2 = app.user("bob@example.com").await;
        let g = app.group("Linchpin Editors", &[&u1, &u2]).await;
        idp.patch_ops(
            &format!("/Groups/{g}"),
            json!([{"op": "remove", "path": format!("members[value eq \"{u1}\"]")}]),
        )
        .await
        .assert_status(200);
        assert_eq!(app.member_ids(&g).await, vec![u2]);
    }
}

#[tokio::test]
async fn c74_remove_members_without_value_empties_the_group() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let u1 = alice(&app).await;
        let u2 = app.user("bob@example.com").await;
        let g = app.group("Linchpin Editors", &[&u1, &u2]).await;
        idp.patch_ops(
            &format!("/Groups/{g}"),
            json!([{"op": "remove", "path": "members"}]),
        )
        .await
        .assert_status(200);
        assert!(app.member_ids(&g).await.is_empty());
        app.get(&format!("/Users/{u1}")).await.assert_status(200);
    }
}

#[tokio::test]
async fn c75_replace_members_leaves_exactly_the_given_set() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let u1 = alice(&app).await;
        let u2 = app.user("bob@example.com").await;
        let u3 = app.user("carol@example.com").await;
        let g = app.group("Linchpin Editors", &[&u1, &u2]).await;
        idp.patch_ops(
            &format!("/Groups/{g}"),
            json!([{"op": "replace", "path": "members", "value": [{"value": u3}]}]),
        )
        .await
        .assert_status(200);
        assert_eq!(app.member_ids(&g).await, vec![u3]);
    }
}

#[tokio::test]
async fn c76_pathless_group_replace_of_display_name_and_external_id() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let u1 = alice(&app).await;
        let g = app.group("Old", &[&u1]).await;
        let path = format!("/Groups/{g}");
        idp.patch_ops(
            &path,
            json!([{"op": "Replace", "value": {"displayName": "New"}}]),
        )
        .await
        .assert_status(200);
        idp.patch_ops(
            &path,
            json!([{"op": "Replace", "value": {"externalId": "x"}}]),
        )
        .await
        .assert_status(200);
        let r = app.get(&path).await;
        assert_eq!(r.body["displayName"], "New");
        assert_eq!(r.body["externalId"], "x");
        assert_eq!(app.member_ids(&g).await, vec![u1]);
        let f = app
            .get(&format!("/Groups?{}", filter(r#"displayName eq "New""#)))
            .await;
        assert_list(&f, 1, &[&g]);
    }
}

#[tokio::test]
async fn c77_adding_an_unknown_member_id_skips_it_with_200() {
    for ct in CONTENT_TYPES {
        let app = TestApp::spawn().await;
        let idp = Idp::new(&app, ct);
        let u1 = alice(&app).await;
        let g = app.group("Linchpin Editors", &[]).await;
        let r = idp
            .patch_ops(
                &format!("/Groups/{g}"),
                json!([{"op": "Add", "path": "members",
                        "value": [{"value": "no-such-user"}, {"value": u1}]}]),
            )
            .await;
        r.assert_status(200);
        assert_eq!(app.member_ids(&g).await, vec![u1]);
        assert!(!r.text.contains("no-such-user"), "{}", r.text);
    }
}

#[tokio::test]
async fn c78_null_update_with_empty_strings_then_nulls_clears_the_attributes() {
    for ct in CONTENT_TYPES {
        for cleared in [json!(""), json!(null)] {
            let app = TestApp::spawn().await;
            let idp = Idp::new(&app, ct);
            let id = app
                .create_user(
                    json!({"userName": "null@example.com", "displayName": "Shown",
                                    "title": "Titled", "nickName": "Nick"}),
                )
                .await;
            let path = format!("/Users/{id}");
            idp.patch_ops(
                &path,
                json!([{"op": "Replace", "path": "displayName", "value": cleared},
                       {"op": "Replace", "path": "title", "value": cleared}]),
            )
            .await
            .assert_status(200);
            let r = app.get(&path).await;
            assert!(
                r.body.get("displayName").is_none() && r.body.get("title").is_none(),
                "{cleared}: {}",
                r.text
            );
            // The same as a path-less replace.
            idp.patch_ops(
                &path,
                json!([{"op": "replace", "value": {"nickName": cleared}}]),
            )
            .await
            .assert_status(200);
            assert!(app.get(&path).await.body.get("nickName").is_none());
        }
    }
}

#[tokio::test]
async fn c79_gallery_pagination_echoes_start_index_and_items_per_page() {
    let app = TestApp::spawn().await;
    for i in 0..11 {
        app.user(&format!("gallery{i:02}@example.com")).await;
    }
    let all = super::ids(&app.get("/Users").await);
    let r = app.get("/Users?startIndex=6&count=5").await;
    r.assert_status(200);
    assert_eq!(r.body["startIndex"], json!(6));
    assert_eq!(r.body["itemsPerPage"], json!(5));
    assert_eq!(r.body["totalResults"], json!(11));
    assert_eq!(super::ids(&r), all[5..10]);
    let last = app.get("/Users?startIndex=11&count=5").await;
    assert_eq!(last.body["startIndex"], json!(11));
    assert_eq!(last.body["itemsPerPage"], json!(1));
}
