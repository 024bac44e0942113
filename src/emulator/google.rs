//! A stateful emulator of the Google Workspace subset the Google pull connector reads
//! (docs/emulator.md, "Google Workspace"): the OAuth token endpoint with the JWT-bearer
//! grant (RFC 7523; the assertion's RS256 signature checked with the service account's
//! public key, its `iss`, `sub`, `aud`, `scope` and lifetime checked as domain-wide
//! delegation needs), and the Directory API's `users.list` with paging, projections and
//! bearer checks; faults: 429, a failing page, revoked tokens. The control API
//! ([`GoogleEmulator`]'s methods, and `/_control/…` over HTTP) adds, changes and deletes
//! users.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};

use super::idp_faults::IdpFaults;

/// The scope the connector must ask for (read-only users).
const SCOPE: &str = "https://www.googleapis.com/auth/admin.directory.user.readonly";

/// `maxResults` default and ceiling of `users.list`.
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 500;

/// One emulated Workspace customer. Cheap to clone.
#[derive(Clone)]
pub struct GoogleEmulator {
    inner: Arc<Mutex<Customer>>,
}

struct Customer {
    client_email: String,
    key: DecodingKey,
    /// Administrators the service account may act for (domain-wide delegation granted).
    admins: HashSet<String>,
    token_url: String,
    users: Vec<Value>,
    /// Position of each user in `users`, by id.
    index: HashMap<String, usize>,
    /// Issued tokens, 429s, the quota, a failing page and their counts.
    faults: IdpFaults,
}

impl GoogleEmulator {
    /// A customer whose service account `client_email` signs with the private key of
    /// `public_pem`, delegated to act for `admin`.
    pub fn new(client_email: &str, public_pem: &str, admin: &str) -> GoogleEmulator {
        let key =
            DecodingKey::from_rsa_pem(public_pem.as_bytes()).expect("an RSA public key in PEM");
        GoogleEmulator {
            inner: Arc::new(Mutex::new(Customer {
                client_email: client_email.to_owned(),
                key,
                admins: HashSet::from([admin.to_owned()]),
                token_url: String::new(),
                users: Vec::new(),
                index: HashMap::new(),
                faults: IdpFaults::default(),
            })),
        }
    }

    fn c(&self) -> std::sync::MutexGuard<'_, Customer> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Serves on `listener` until `shutdown`: the token endpoint at `/token`, the
    /// Directory API at `/admin/directory/v1`.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let addr = listener.local_addr()?;
        self.c().token_url = format!("http://{addr}/token");
        let app = Router::new()
            .route("/token", post(token))
            .route("/admin/directory/v1/users", get(list))
            .route("/_control/users", post(control_upsert))
            .route(
                "/_control/users/{id}",
                axum::routing::delete(control_delete),
            )
            .route("/_control/faults", post(control_faults))
            .with_state(self);
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    }

    /// Adds or replaces a user (a Directory API user with at least `id` and
    /// `primaryEmail`).
    pub fn upsert_user(&self, user: Value) {
        let mut c = self.c();
        let id = user["id"].as_str().unwrap_or_default().to_owned();
        match c.index.get(&id).copied() {
            Some(i) => c.users[i] = user,
            None => {
                let i = c.users.len();
                c.index.insert(id, i);
                c.users.push(user);
            }
        }
    }

    /// Changes some top-level properties of a user.
    pub fn update_user(&self, id: &str, changes: Value) {
        let mut c = self.c();
        let at = c.index.get(id).copied();
        if let (Some(u), Value::Object(ch)) = (at.and_then(|i| c.users.get_mut(i)), changes) {
            for (k, v) in ch {
                u[k] = v;
            }
        }
    }

    /// Deletes a user: later listings no longer have it.
    pub fn delete_user(&self, id: &str) {
        let mut c = self.c();
        if c.index.remove(id).is_some() {
            c.users.retain(|u| u["id"] != id);
            let index = c
                .users
                .iter()
                .enumerate()
                .map(|(i, u)| (u["id"].as_str().unwrap_or_default().to_owned(), i))
                .collect();
            c.index = index;
        }
    }

    /// The next `n` API calls answer 429.
    pub fn throttle(&self, n: u32) {
        self.c().faults.throttle = n;
    }

    /// Page `page` (1-based) of every listing answers 500 until cleared.
    pub fn fail_page(&self, page: Option<usize>) {
        self.c().faults.fail_page = page;
    }

    /// Revokes every access token issued so far.
    pub fn expire_tokens(&self) {
        self.c().faults.tokens.clear();
    }

    /// Token requests answered with a token.
    pub fn token_requests(&self) -> u64 {
        self.c().faults.token_requests
    }

    /// Calls answered 429.
    pub fn throttled(&self) -> u64 {
        self.c().faults.throttled
    }

    /// Listing pages answered.
    pub fn pages(&self) -> u64 {
        self.c().faults.pages
    }
}

fn oauth_error(code: &str, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": code, "error_description": description})),
    )
        .into_response()
}

fn api_error(status: StatusCode, reason: &str, message: &str) -> Response {
    (
        status,
        Json(
            json!({"error": {"code": status.as_u16(), "message": message,
            "errors": [{"reason": reason, "message": message}],
            "status": reason}}),
        ),
    )
        .into_response()
}

async fn token(
    State(emu): State<GoogleEmulator>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut c = emu.c();
    if form.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        return oauth_error("unsupported_grant_type", "Invalid grant_type.");
    }
    let Some(assertion) = form.get("assertion") else {
        return oauth_error("invalid_request", "Missing required parameter: assertion");
    };
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&[c.token_url.clone()]);
    v.set_issuer(&[c.client_email.clone()]);
    v.set_required_spec_claims(&["exp", "iat", "iss", "aud"]);
    let claims = match jsonwebtoken::decode::<Value>(assertion, &c.key, &v) {
        Ok(d) => d.claims,
        Err(_) => return oauth_error("invalid_grant", "Invalid JWT Signature."),
    };
    let lifetime = claims["exp"].as_i64().unwrap_or(0) - claims["iat"].as_i64().unwrap_or(0);
    if !(1..=3600).contains(&lifetime) {
        return oauth_error("invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.");
    }
    let scopes: Vec<&str> = claims["scope"]
        .as_str()
        .unwrap_or_default()
        .split(' ')
        .collect();
    let sub = claims["sub"].as_str().unwrap_or_default();
    if !scopes.contains(&SCOPE) || !c.admins.contains(sub) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "unauthorized_client",
                "error_description": "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested."})),
        )
            .into_response();
    }
    let token = format!("ya29.{}", uuid::Uuid::new_v4().simple());
    c.faults.issue(token.clone());
    Json(json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer"})).into_response()
}

/// The user as the projection shows it: `basic` drops `customSchemas`; `custom` keeps
/// only the schemas of `customFieldMask`.
fn project(u: &Value, projection: &str, mask: &[&str]) -> Value {
    let mut u = u.clone();
    if let Some(o) = u.as_object_mut() {
        match projection {
            "full" => {}
            "custom" => {
                if let Some(Value::Object(cs)) = o.get_mut("customSchemas") {
                    cs.retain(|k, _| mask.contains(&k.as_str()));
                }
            }
            _ => {
                o.remove("customSchemas");
            }
        }
    }
    u
}

async fn list(
    State(emu): State<GoogleEmulator>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut c = emu.c();
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !c.faults.tokens.contains(token) {
        return api_error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials.",
        );
    }
    if c.faults.throttle_now() {
        return api_error(
            StatusCode::TOO_MANY_REQUESTS,
            "RESOURCE_EXHAUSTED",
            "Quota exceeded (emulated).",
        );
    }
    if !q.contains_key("customer") && !q.contains_key("domain") {
        return api_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "Bad Request: customer or domain required.",
        );
    }
    let size = q
        .get("maxResults")
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_PAGE)
        .clamp(1, MAX_PAGE);
    let from: usize = q.get("pageToken").and_then(|t| t.parse().ok()).unwrap_or(0);
    let page = from / size + 1;
    if c.faults.fails(page) {
        return api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "Internal error (emulated).",
        );
    }
    c.faults.pages += 1;
    let projection = q.get("projection").map(String::as_str).unwrap_or("basic");
    let mask: Vec<&str> = q
        .get("customFieldMask")
        .map(|m| m.split(',').collect())
        .unwrap_or_default();
    let mut sorted: Vec<&Value> = c.users.iter().collect();
    if q.get("orderBy").map(String::as_str) == Some("email") {
        sorted.sort_by(|a, b| a["primaryEmail"].as_str().cmp(&b["primaryEmail"].as_str()));
    }
    let users: Vec<Value> = sorted
        .iter()
        .skip(from)
        .take(size)
        .map(|u| project(u, projection, &mask))
        .collect();
    let mut body = json!({"kind": "admin#directory#users", "users": users});
    if sorted.len() > from + size {
        body["nextPageToken"] = json!((from + size).to_string());
    }
    Json(body).into_response()
}

async fn control_upsert(State(emu): State<GoogleEmulator>, Json(user): Json<Value>) -> StatusCode {
    if user["id"].as_str().is_none() || user["primaryEmail"].as_str().is_none() {
        return StatusCode::BAD_REQUEST;
    }
    emu.upsert_user(user);
    StatusCode::NO_CONTENT
}

async fn control_delete(State(emu): State<GoogleEmulator>, Path(id): Path<String>) -> StatusCode {
    emu.delete_user(&id);
    StatusCode::NO_CONTENT
}

/// `{"throttle": n, "fail_page": n|null, "expire_tokens": true}`.
async fn control_faults(State(emu): State<GoogleEmulator>, Json(f): Json<Value>) -> StatusCode {
    emu.c().faults.control(&f);
    StatusCode::NO_CONTENT
}
