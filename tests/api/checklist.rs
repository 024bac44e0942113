//! The conformance checklist of `docs/reference/idp-behaviour.md` §10, one test per item, named
//! `c<number>_<what the IdP sees>`.
//!
//! Its §10 says every item runs once with `Content-Type: application/scim+json` and once with
//! `application/json`; a test that sends a body loops over [`CONTENT_TYPES`] and sends every
//! body through [`Idp`], which sets the content type. Each round gets a fresh server, so the
//! rounds cannot see each other's writes. Fixtures made with the plain [`TestApp`] helpers use
//! `application/scim+json`; only the request under test varies.
//!
//! Not here, because other work owns them: authentication (80–83, 103–105, 119),
//! back-pressure (37), delivery to Confluence (106 and the "no Confluence write" half of 93).

use std::ops::Deref;

use reqwest::Method;
use serde_json::{json, Value};

use crate::errors::urlencode;
use crate::helpers::{Opts, TestApp, TestResponse, CONNECTOR};
use usersync::scim::schema::ResourceKind;

mod common;
mod entra;
mod okta;
mod onelogin;
mod others;

/// The two media types every body is sent with.
pub const CONTENT_TYPES: [&str; 2] = ["application/scim+json", "application/json"];
/// The enterprise User extension.
pub const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// The core User schema.
pub const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The core Group schema.
pub const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// The PatchOp message.
pub const PATCH_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// The ListResponse message.
pub const LIST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// An IdP client: the test app, sending every body with one content type.
pub struct Idp<'a> {
    /// The server.
    pub app: &'a TestApp,
    /// The `Content-Type` of every body sent.
    pub ct: &'static str,
}

impl<'a> Idp<'a> {
    /// A client sending bodies as `ct`.
    pub fn new(app: &'a TestApp, ct: &'static str) -> Self {
        Idp { app, ct }
    }

    fn opts(&self) -> Opts {
        Opts {
            content_type: Some(self.ct.to_owned()),
            ..Opts::default()
        }
    }

    /// A request with a body, with extra options (content type set unless given).
    pub async fn send(&self, method: Method, path: &str, body: Value, opts: Opts) -> TestResponse {
        let opts = Opts {
            content_type: opts.content_type.or(Some(self.ct.to_owned())),
            ..opts
        };
        self.app.send(method, path, Some(body), opts).await
    }

    /// `POST`.
    pub async fn post(&self, path: &str, body: Value) -> TestResponse {
        self.app
            .send(Method::POST, path, Some(body), self.opts())
            .await
    }

    /// `PUT`.
    pub async fn put(&self, path: &str, body: Value) -> TestResponse {
        self.app
            .send(Method::PUT, path, Some(body), self.opts())
            .await
    }

    /// `PATCH` with a whole body.
    pub async fn patch(&self, path: &str, body: Value) -> TestResponse {
        self.app
            .send(Method::PATCH, path, Some(body), self.opts())
            .await
    }

    /// `PATCH` with these operations in a PatchOp message.
    pub async fn patch_ops(&self, path: &str, ops: Value) -> TestResponse {
        self.patch(path, json!({"schemas": [PATCH_URN], "Operations": ops}))
            .await
    }

    /// `POST /Users`, asserting 201; returns the id.
    pub async fn create_user(&self, body: Value) -> String {
        let r = self.post("/Users", body).await;
        r.assert_status(201);
        r.id()
    }

    /// `POST /Groups`, asserting 201; returns the id.
    pub async fn create_group(&self, body: Value) -> String {
        let r = self.post("/Groups", body).await;
        r.assert_status(201);
        r.id()
    }
}

impl Deref for Idp<'_> {
    type Target = TestApp;

    fn deref(&self) -> &TestApp {
        self.app
    }
}

/// U1 of docs/reference/idp-behaviour.md §10: `alice@example.com`, with names, a work e-mail and
/// `externalId` `ext-1`.
pub async fn alice(app: &TestApp) -> String {
    app.create_user(json!({
        "schemas": [USER_URN],
        "userName": "alice@example.com",
        "externalId": "ext-1",
        "name": {"givenName": "Alice", "familyName": "Smith"},
        "displayName": "Alice Smith",
        "emails": [{"value": "alice@example.com", "type": "work", "primary": true}],
        "active": true
    }))
    .await
}

/// `filter=<f>`, percent-encoded the way Okta and Entra send it.
pub fn filter(f: &str) -> String {
    format!("filter={}", urlencode(f))
}

/// The ids of a ListResponse's resources, in order.
pub fn ids(r: &TestResponse) -> Vec<String> {
    r.body["Resources"]
        .as_array()
        .unwrap_or_else(|| panic!("not a ListResponse: {}", r.text))
        .iter()
        .map(|x| x["id"].as_str().expect("resource id").to_owned())
        .collect()
}

/// Asserts a 200 ListResponse with `total` results and exactly these resources on the page.
#[track_caller]
pub fn assert_list(r: &TestResponse, total: usize, want: &[&str]) {
    r.assert_status(200);
    assert_eq!(r.header("content-type"), Some("application/scim+json"));
    assert_eq!(r.body["schemas"], json!([LIST_URN]), "{}", r.text);
    assert_eq!(r.body["totalResults"], json!(total), "{}", r.text);
    assert_eq!(r.body["itemsPerPage"], json!(want.len()), "{}", r.text);
    assert_eq!(ids(r), want, "{}", r.text);
}

/// The stored document of a resource (what the store keeps, not what is rendered).
pub async fn stored(app: &TestApp, kind: ResourceKind, id: &str) -> Value {
    let r = app
        .store
        .get_resource(&usersync::store::ResourceKey::new(CONNECTOR, kind, id))
        .await
        .unwrap()
        .expect("resource is stored");
    Value::Object(r.doc)
}

/// The sync-queue generation of one resource key.
pub async fn generation(app: &TestApp, id: &str) -> i64 {
    app.store
        .queue_rows(Some(CONNECTOR))
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.key.id == id)
        .expect("the resource is in the sync queue")
        .generation
}
