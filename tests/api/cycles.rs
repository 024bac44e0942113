//! Whole provisioning cycles replayed as an IdP runs them, with the headers and bodies of
//! `docs/reference/idp-behaviour.md` §2.3–§2.4 (Entra ID) and §3.2–§3.3 (Okta). Each step
//! asserts what the IdP itself looks at before it takes the next one.

use reqwest::Method;
use serde_json::{json, Value};

use crate::errors::urlencode;
use crate::helpers::{Opts, TestApp, TestResponse};

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const ADSCIM_GROUP: &str =
    "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group";

/// One IdP's HTTP client: its `User-Agent`, `Accept` and body `Content-Type`.
struct Session<'a> {
    app: &'a TestApp,
    user_agent: &'static str,
    accept: Option<&'static str>,
    content_type: &'static str,
}

impl Session<'_> {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> TestResponse {
        let mut headers = vec![("User-Agent".to_owned(), self.user_agent.to_owned())];
        if let Some(a) = self.accept {
            headers.push(("Accept".to_owned(), a.to_owned()));
        }
        let opts = Opts {
            content_type: Some(self.content_type.to_owned()),
            headers,
            ..Opts::default()
        };
        let r = self.app.send(method, path, body, opts).await;
        if !r.text.is_empty() {
            assert_eq!(
                r.header("content-type"),
                Some("application/scim+json"),
                "{}",
                r.text
            );
        }
        r
    }

    async fn get(&self, path: &str) -> TestResponse {
        self.call(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> TestResponse {
        self.call(Method::POST, path, Some(body)).await
    }

    async fn put(&self, path: &str, body: Value) -> TestResponse {
        self.call(Method::PUT, path, Some(body)).await
    }

    async fn patch(&self, path: &str, ops: Value) -> TestResponse {
        self.call(
            Method::PATCH,
            path,
            Some(json!({"schemas": [PATCH], "Operations": ops})),
        )
        .await
    }

    async fn delete(&self, path: &str) -> TestResponse {
        self.call(Method::DELETE, path, None).await
    }

    /// A filter query as the IdP encodes it.
    async fn filter(&self, endpoint: &str, filter: &str, extra: &str) -> TestResponse {
        let r = self
            .get(&format!("/{endpoint}?{extra}filter={}", urlencode(filter)))
            .await;
        r.assert_status(200);
        r
    }
}

fn total(r: &TestResponse) -> u64 {
    r.body["totalResults"].as_u64().expect("totalResults")
}

fn only_id(r: &TestResponse) -> String {
    assert_eq!(total(r), 1, "{}", r.text);
    r.body["Resources"][0]["id"].as_str().unwrap().to_owned()
}

fn member_ids(r: &TestResponse) -> Vec<String> {
    let mut ids: Vec<String> = r.body["members"]
        .as_array()
        .map(|m| {
            m.iter()
                .map(|x| x["value"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

fn sorted(ids: &[&String]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// Entra's create body (docs/reference/idp-behaviour.md §2.4): both schemas, `meta`, empty `roles`,
/// no manager.
fn entra_user(upn: &str, nickname: &str, given: &str, family: &str, employee: &str) -> Value {
    json!({
        "schemas": [USER, ENT],
        "externalId": nickname,
        "userName": upn,
        "active": true,
        "displayName": format!("{given} {family}"),
        "title": "Engineer",
        "emails": [{"primary": true, "type": "work", "value": upn}],
        "name": {"givenName": given, "familyName": family, "formatted": format!("{given} {family}")},
        "phoneNumbers": [{"type": "mobile", "value": "+49 170 0000000"}],
        ENT: {"employeeNumber": employee, "department": "R&D"},
        "meta": {"resourceType": "User"},
        "roles": []
    })
}

#[tokio::test]
async fn entra_initial_and_incremental_cycle() {
    let app = TestApp::spawn().await;
    let entra = Session {
        app: &app,
        user_agent: "Microsoft Azure AD SCIM provisioning",
        accept: None,
        content_type: "application/scim+json; charset=utf-8",
    };

    // Test Connection: a user that cannot exist, on the matching attribute.
    let r = entra
        .filter(
            "Users",
            r#"userName eq "a3c9f0d2-5b7e-4d7a-9c1e-0f1b2c3d4e5f""#,
            "",
        )
        .await;
    assert_eq!(total(&r), 0);
    assert_eq!(r.body["Resources"], json!([]));

    // Initial cycle: filter on the matching attribute, then create what is not there.
    let mut ids = Vec::new();
    for (upn, nick, given, family, emp) in [
        ("bob.smith@example.org", "bsmith", "Bob", "Smith", "E1042"),
        ("carla.mgr@example.org", "cmgr", "Carla", "Manager", "E0001"),
    ] {
        let r = entra
            .filter("Users", &format!(r#"userName eq "{upn}""#), "")
            .await;
        assert_eq!(total(&r), 0);
        let r = entra
            .post("/Users", entra_user(upn, nick, given, family, emp))
            .await;
        r.assert_status(201);
        assert_eq!(r.body["userName"], upn);
        assert!(r.body[ENT].get("manager").is_none());
        ids.push(r.id());
    }
    let (bob, carla) = (ids[0].clone(), ids[1].clone());

    // The next cycle matches the user it created and patches only what changed, default
    // dialect: capitalised ops, one op per attribute.
    let r = entra
        .filter("Users", r#"userName eq "bob.smith@example.org""#, "")
        .await;
    assert_eq!(only_id(&r), bob);
    let r = entra
        .patch(
            &format!("/Users/{bob}"),
            json!([
                {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "b.smith@example.org"},
                {"op": "Replace", "path": "name.familyName", "value": "Smith-Jones"},
                {"op": "Add", "path": "nickName", "value": "Bobby"},
                {"op": "Replace", "path": format!("{ENT}:department"), "value": "Platform"}
            ]),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.body["emails"][0]["value"], "b.smith@example.org");
    assert_eq!(r.body["name"]["familyName"], "Smith-Jones");
    assert_eq!(r.body["nickName"], "Bobby");
    assert_eq!(
        r.body[ENT],
        json!({"employeeNumber": "E1042", "department": "Platform"})
    );
    // Disabled and re-enabled in Entra: string booleans.
    for (value, want) in [("False", false), ("True", true)] {
        let r = entra
            .patch(
                &format!("/Users/{bob}"),
                json!([{"op": "Replace", "path": "active", "value": value}]),
            )
            .await;
        r.assert_status(200);
        assert_eq!(r.body["active"], json!(want));
    }

    // The manager reference, in a separate update once both users exist, as a bare id.
    let r = entra
        .patch(
            &format!("/Users/{bob}"),
            json!([{"op": "Add", "path": format!("{ENT}:manager"), "value": carla}]),
        )
        .await;
    r.assert_status(200);
    let r = entra.get(&format!("/Users/{bob}")).await;
    assert_eq!(r.body[ENT]["manager"]["value"], json!(carla));
    assert!(r.body[ENT]["manager"].is_object());
    // Entra may check the reference before patching it again.
    let r = entra
        .filter(
            "Users",
            &format!(r#"id eq "{bob}" and manager eq "{carla}""#),
            "attributes=id&",
        )
        .await;
    assert_eq!(only_id(&r), bob);

    // Groups: look up without members, create without members, then add them.
    let r = entra
        .filter(
            "Groups",
            r#"displayName eq "Linchpin Editors""#,
            "excludedAttributes=members&",
        )
        .await;
    assert_eq!(total(&r), 0);
    let r = entra
        .post(
            "/Groups",
            json!({"schemas": [GROUP, ADSCIM_GROUP],
                   "externalId": "3f1c7e55-0000-4a4a-9d9d-1234567890ab",
                   "displayName": "Linchpin Editors", "meta": {"resourceType": "Group"}}),
        )
        .await;
    r.assert_status(201);
    let group = r.id();
    let r = entra
        .patch(
            &format!("/Groups/{group}"),
            json!([{"op": "Add", "path": "members",
                    "value": [{"$ref": null, "value": bob}, {"$ref": null, "value": carla}]}]),
        )
        .await;
    r.assert_status(200);
    assert_eq!(member_ids(&r), sorted(&[&bob, &carla]));
    let r = entra
        .filter(
            "Groups",
            r#"displayName eq "Linchpin Editors""#,
            "excludedAttributes=members&",
        )
        .await;
    assert_eq!(only_id(&r), group);
    assert!(r.body["Resources"][0].get("members").is_none());

    // Bob leaves the group: the legacy removal with a value list removes only him.
    let r = entra
        .patch(
            &format!("/Groups/{group}"),
            json!([{"op": "Remove", "path": "members", "value": [{"value": bob}]}]),
        )
        .await;
    r.assert_status(200);
    assert_eq!(member_ids(&r), vec![carla.clone()]);

    // Bob is unassigned: deactivated, still readable by id and by filter.
    entra
        .patch(
            &format!("/Users/{bob}"),
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
        )
        .await
        .assert_status(200);
    let r = entra.get(&format!("/Users/{bob}")).await;
    r.assert_status(200);
    assert_eq!(r.body["active"], json!(false));
    let r = entra
        .filter("Users", r#"userName eq "bob.smith@example.org""#, "")
        .await;
    assert_eq!(only_id(&r), bob);

    // 30 days later Bob is hard-deleted.
    let r = entra.delete(&format!("/Users/{bob}")).await;
    r.assert_status(204);
    entra
        .get(&format!("/Users/{bob}"))
        .await
        .assert_scim_error(404, None);
    let r = entra
        .filter("Users", r#"userName eq "bob.smith@example.org""#, "")
        .await;
    assert_eq!(total(&r), 0);
    // Carla is untouched.
    let r = entra.get(&format!("/Groups/{group}")).await;
    assert_eq!(member_ids(&r), vec![carla.clone()]);
    assert_eq!(
        entra.get(&format!("/Users/{carla}")).await.body["active"],
        json!(true)
    );
}

/// Okta's AIW create body (docs/reference/idp-behaviour.md §3.3).
fn okta_user(user_name: &str, given: &str, family: &str, okta_id: &str) -> Value {
    json!({
        "schemas": [USER, ENT],
        "userName": user_name,
        "name": {"givenName": given, "familyName": family},
        "emails": [{"primary": true, "value": user_name, "type": "work"}],
        "displayName": format!("{given} {family}"),
        "locale": "en-US",
        "externalId": okta_id,
        "groups": [],
        "password": "kX93mqzA",
        "active": true,
        ENT: {"employeeNumber": "4711", "department": "Finance",
              "manager": {"value": "1234", "displayName": "Max Boss"}}
    })
}

#[tokio::test]
async fn okta_aiw_oin_and_group_push_cycle() {
    let app = TestApp::spawn().await;
    let okta = Session {
        app: &app,
        user_agent: "Okta SCIM Client 1.0.0",
        accept: Some("application/scim+json"),
        content_type: "application/scim+json; charset=utf-8",
    };

    // "Test Connector Configuration".
    let r = okta.get("/Users?startIndex=1&count=2").await;
    r.assert_status(200);
    assert_eq!(total(&r), 0);
    okta.get("/Groups?startIndex=1&count=100")
        .await
        .assert_status(200);

    // AIW assignment: existence check with paging, then create.
    let mut ids = Vec::new();
    for (name, given, family, okta_id) in [
        (
            "jane.doe@example.com",
            "Jane",
            "Doe",
            "00u8xk2p4qLmN0abc1d7",
        ),
        (
            "john.roe@example.com",
            "John",
            "Roe",
            "00u8xk2p4qLmN0abc1d8",
        ),
    ] {
        let r = okta
            .filter(
                "Users",
                &format!(r#"userName eq "{name}""#),
                "startIndex=1&count=100&",
            )
            .await;
        assert_eq!(total(&r), 0);
        let r = okta
            .post("/Users", okta_user(name, given, family, okta_id))
            .await;
        r.assert_status(201);
        assert!(r.body["id"].is_string(), "Okta needs a non-empty body");
        assert_eq!(r.body["externalId"], okta_id);
        assert!(r.body.get("password").is_none());
        ids.push(r.id());
    }
    let (jane, john) = (ids[0].clone(), ids[1].clone());
    let jane_path = format!("/Users/{jane}");

    // AIW profile update: GET, overlay the change onto our own output, PUT it back.
    let mut body = okta.get(&jane_path).await.body;
    body["name"]["familyName"] = json!("Doe-Smith");
    body["name"]["middleName"] = json!("");
    let r = okta.put(&jane_path, body).await;
    r.assert_status(200);
    assert_eq!(r.body["name"]["familyName"], "Doe-Smith");
    assert_eq!(r.body["externalId"], "00u8xk2p4qLmN0abc1d7");
    assert_eq!(r.body[ENT]["manager"], json!({"value": "1234"}));

    // AIW deactivation and reactivation are PUTs of the GET output too.
    for active in [false, true] {
        let mut body = okta.get(&jane_path).await.body;
        body["active"] = json!(active);
        let r = okta.put(&jane_path, body).await;
        r.assert_status(200);
        assert_eq!(r.body["active"], json!(active));
        let r = okta.get(&jane_path).await;
        r.assert_status(200);
        assert_eq!(r.body["active"], json!(active));
        assert_eq!(r.body["name"]["familyName"], "Doe-Smith");
    }

    // OIN: activation is a path-less PATCH.
    for active in [false, true] {
        let r = okta
            .patch(
                &format!("/Users/{john}"),
                json!([{"op": "replace", "value": {"active": active}}]),
            )
            .await;
        r.assert_status(200);
        assert_eq!(r.body["active"], json!(active));
    }

    // Group push: existence check, create with no members.
    let r = okta
        .filter(
            "Groups",
            r#"displayName eq "Engineering""#,
            "startIndex=1&count=100&",
        )
        .await;
    assert_eq!(total(&r), 0);
    let r = okta
        .post(
            "/Groups",
            json!({"schemas": [GROUP], "displayName": "Engineering", "members": []}),
        )
        .await;
    r.assert_status(201);
    let group = r.id();
    let group_path = format!("/Groups/{group}");

    // Membership push: Jane joins; every membership update comes with a rename PATCH
    // carrying the group's own id in a path-less value.
    okta.patch(
        &group_path,
        json!([{"op": "add", "path": "members",
                "value": [{"value": jane, "display": "jane.doe@example.com"}]}]),
    )
    .await
    .assert_status(200);
    let r = okta
        .patch(
            &group_path,
            json!([{"op": "replace", "value": {"id": group, "displayName": "Engineering EU"}}]),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.body["id"], json!(group));
    assert_eq!(r.body["displayName"], "Engineering EU");

    // John replaces Jane in one mixed PATCH.
    let r = okta
        .patch(
            &group_path,
            json!([
                {"op": "remove", "path": format!("members[value eq \"{jane}\"]")},
                {"op": "add", "path": "members", "value": [{"value": john, "display": "john.roe@example.com"}]}
            ]),
        )
        .await;
    r.assert_status(200);
    assert_eq!(member_ids(&r), vec![john.clone()]);
    let r = okta
        .patch(
            &group_path,
            json!([{"op": "replace", "value": {"id": group, "displayName": "Engineering EU"}}]),
        )
        .await;
    r.assert_status(200);
    let r = okta.get(&group_path).await;
    assert_eq!(r.body["displayName"], "Engineering EU");
    assert_eq!(member_ids(&r), vec![john.clone()]);
    // The users show their group.
    let r = okta.get(&format!("/Users/{john}")).await;
    assert_eq!(r.body["groups"][0]["value"], json!(group));
    assert!(okta.get(&jane_path).await.body.get("groups").is_none());

    // Unlink with "delete the group in the target app".
    okta.delete(&group_path).await.assert_status(204);
    okta.get(&group_path).await.assert_scim_error(404, None);
    // Okta never deletes users: both are still there.
    let r = okta.get("/Users?startIndex=1&count=100").await;
    assert_eq!(total(&r), 2);
}
