//! Authentication per connector: docs/reference/idp-behaviour.md §10 items 80–83, 103, 104 and 119
//! (c80–c83, c103, c104, c119), one test per item, plus the refusal of every mode's credentials on
//! another connector.
//!
//! Connectors are declared in the settings, as an operator would in `usersync.toml`, with
//! their secrets put straight into `Settings::secrets` (no process-global environment).
//! Entra is played by RSA test keys (`fixtures/auth/`) and a local JWKS server that counts
//! its fetches; nothing leaves 127.0.0.1.

mod basic;
mod entra_jwt;
mod isolation;
mod oauth;
mod schemes;
mod static_tokens;
mod uniform;
mod wif;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{Opts, TestApp, TestResponse};
use usersync::config::{ConnectorSettings, Settings};

/// The tenant the Entra connectors trust.
pub const TENANT: &str = "3f8e1c2a-5b6d-4e7f-8a9b-0c1d2e3f4a5b";
/// Another tenant, whose tokens must be refused.
pub const OTHER_TENANT: &str = "9a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d";
/// Entra's audience for non-gallery apps.
pub const ENTRA_AUDIENCE: &str = "8adf8e6e-67b2-4cf2-a259-e3dc5476c621";

/// A test signing key and its public JWK.
pub struct Key {
    /// The `kid` its tokens carry.
    pub kid: String,
    /// The private key.
    pub encoding: EncodingKey,
    /// The public half, as a JWKS lists it.
    pub jwk: Value,
    /// The public key as PEM (for the algorithm-confusion test).
    pub public_pem: &'static str,
}

/// Key `a` or `b` (published by the tenant) or `c` (published by nobody).
pub fn key(name: &str) -> Key {
    let (pem, jwk, public_pem) = match name {
        "a" => (
            include_str!("fixtures/auth/key-a.pem"),
            include_str!("fixtures/auth/jwk-a.json"),
            include_str!("fixtures/auth/key-a.pub.pem"),
        ),
        "b" => (
            include_str!("fixtures/auth/key-b.pem"),
            include_str!("fixtures/auth/jwk-b.json"),
            include_str!("fixtures/auth/key-b.pub.pem"),
        ),
        _ => (
            include_str!("fixtures/auth/key-c.pem"),
            include_str!("fixtures/auth/jwk-c.json"),
            include_str!("fixtures/auth/key-c.pub.pem"),
        ),
    };
    let jwk: Value = serde_json::from_str(jwk).expect("fixture JWK");
    Key {
        kid: jwk["kid"].as_str().expect("kid").to_owned(),
        encoding: EncodingKey::from_rsa_pem(pem.as_bytes()).expect("fixture PEM"),
        jwk,
        public_pem,
    }
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Signs `claims` with RS256 and `key`, naming `kid` in the header.
pub fn sign(key: &Key, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &key.encoding).expect("sign")
}

/// The claims of a valid Entra provisioning token for `tenant` (MS-SCIM).
pub fn entra_claims(tenant: &str) -> Value {
    json!({
        "iss": format!("https://sts.windows.net/{tenant}/"),
        "aud": ENTRA_AUDIENCE,
        "iat": now() - 60,
        "nbf": now() - 60,
        "exp": now() + 3600,
        "tid": tenant,
        "appid": "1b730954-1685-4b74-9bfd-dac224a7b894",
    })
}

/// `claims` with `changes` merged in (a `null` removes the claim).
pub fn with(mut claims: Value, changes: Value) -> Value {
    if let (Some(c), Some(ch)) = (claims.as_object_mut(), changes.as_object()) {
        for (k, v) in ch {
            if v.is_null() {
                c.remove(k);
            } else {
                c.insert(k.clone(), v.clone());
            }
        }
    }
    claims
}

struct JwksState {
    doc: Mutex<Value>,
    fetches: AtomicUsize,
    failing: AtomicBool,
}

/// A tenant's key endpoint on 127.0.0.1 that counts its fetches.
pub struct JwksServer {
    /// Its URL, for `jwks_url`.
    pub url: String,
    state: Arc<JwksState>,
}

async fn serve_keys(State(s): State<Arc<JwksState>>) -> Response {
    s.fetches.fetch_add(1, Ordering::SeqCst);
    if s.failing.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
    }
    let doc = s.doc.lock().expect("lock").clone();
    axum::Json(doc).into_response()
}

impl JwksServer {
    /// Starts a server publishing `keys`.
    pub async fn start(keys: &[&Key]) -> JwksServer {
        let state = Arc::new(JwksState {
            doc: Mutex::new(Value::Null),
            fetches: AtomicUsize::new(0),
            failing: AtomicBool::new(false),
        });
        let router = axum::Router::new()
            .route("/tenant/discovery/keys", axum::routing::get(serve_keys))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!(
            "http://{}/tenant/discovery/keys",
            listener.local_addr().expect("addr")
        );
        tokio::spawn(async move { axum::serve(listener, router).await });
        let server = JwksServer { url, state };
        server.publish(keys);
        server
    }

    /// Replaces the published keys.
    pub fn publish(&self, keys: &[&Key]) {
        let jwks: Vec<Value> = keys.iter().map(|k| k.jwk.clone()).collect();
        *self.state.doc.lock().expect("lock") = json!({ "keys": jwks });
    }

    /// Makes every fetch answer 503 (or work again).
    pub fn set_failing(&self, failing: bool) {
        self.state.failing.store(failing, Ordering::SeqCst);
    }

    /// How many times the keys were fetched.
    pub fn fetches(&self) -> usize {
        self.state.fetches.load(Ordering::SeqCst)
    }
}

/// Declares `[connectors.NAME]` from TOML text, with its secrets.
pub fn declare(s: &mut Settings, name: &str, toml_text: &str, secrets: &[(&str, &str)]) {
    let c: ConnectorSettings = toml::from_str(toml_text).expect("connector TOML");
    s.connectors.insert(name.to_owned(), c);
    for (var, value) in secrets {
        s.secrets.set(*var, *value);
    }
}

/// `Authorization: Bearer …`.
pub fn bearer(token: &str) -> Opts {
    auth(&format!("Bearer {token}"))
}

/// `Authorization: Basic base64(user:password)`.
pub fn basic_auth(user: &str, password: &str) -> Opts {
    use base64::Engine;
    let pair = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    auth(&format!("Basic {pair}"))
}

/// This `Authorization` header.
pub fn auth(header: &str) -> Opts {
    Opts {
        auth: Some(header.to_owned()),
        ..Opts::default()
    }
}

/// A request to `path` under `connector`'s SCIM base.
pub async fn call(
    app: &TestApp,
    method: Method,
    connector: &str,
    path: &str,
    body: Option<Value>,
    opts: Opts,
) -> TestResponse {
    let url = format!("{}/scim/v2/{connector}{path}", app.address);
    app.send_url(method, &url, body, opts).await
}

/// Entra's Test Connection probe (MS-SCIM): a filter for a user that cannot exist.
pub async fn probe(app: &TestApp, connector: &str, opts: Opts) -> TestResponse {
    call(
        app,
        Method::GET,
        connector,
        "/Users?filter=userName%20eq%20%22a3c9f0d2-5b7e-4d7a-9c1e-0f1b2c3d4e5f%22",
        None,
        opts,
    )
    .await
}

/// Asserts a 401 SCIM error whose `WWW-Authenticate` headers are exactly `challenges`.
#[track_caller]
pub fn assert_401(r: &TestResponse, challenges: &[&str]) {
    r.assert_scim_error(401, None);
    let got: Vec<&str> = r
        .headers
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert_eq!(got, challenges, "WWW-Authenticate");
}

/// The Bearer challenge.
pub const BEARER: &str = "Bearer realm=\"usersync\"";
/// The Basic challenge.
pub const BASIC: &str = "Basic realm=\"usersync\"";

/// `POST /scim/v2/{connector}/oauth/token` with a form body and optional Basic client
/// authentication.
pub async fn token_request(
    app: &TestApp,
    connector: &str,
    form: &[(&str, &str)],
    client_basic: Option<(&str, &str)>,
) -> TestResponse {
    let url = format!("{}/scim/v2/{connector}/oauth/token", app.address);
    let mut req = app
        .client
        .post(url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(form).expect("form"));
    if let Some((user, password)) = client_basic {
        req = req.basic_auth(user, Some(password));
    }
    let res = req.send().await.expect("request sent");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let text = res.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    TestResponse {
        status,
        headers,
        body,
        text,
    }
}

/// Asserts an RFC 6749 §5.2 error.
#[track_caller]
pub fn assert_oauth_error(r: &TestResponse, status: u16, error: &str) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.body["error"], error, "{}", r.text);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert!(r
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/json")));
    if status == 401 {
        assert_eq!(r.header("www-authenticate"), Some(BASIC));
    }
}

/// Asserts a successful token response and returns the access token.
#[track_caller]
pub fn assert_token(r: &TestResponse) -> String {
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["token_type"], "Bearer");
    let expires_in = r.body["expires_in"].as_u64().expect("expires_in");
    // Entra's gallery check (MSREF-LA Validate_Credentials): 60 to 360 minutes.
    assert!(
        (3600..=21600).contains(&expires_in),
        "expires_in {expires_in}"
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    r.body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}
