//! A stateful emulator of the Okta subset the Okta pull connector reads (docs/emulator.md,
//! "Okta"): `GET /api/v1/users` with `limit`, an opaque `after` cursor in `Link: <…>;
//! rel="next"`, the `search` expressions `status eq "…"` and `lastUpdated gt "…"` (the plain
//! list leaves DEPROVISIONED users out), API tokens (`SSWS`), the OAuth token endpoint with
//! the `private_key_jwt` client-credentials grant, and the `X-Rate-Limit-*` headers. Faults:
//! 429 (with the reset time, no `Retry-After`), a quota that runs out, a failing page, revoked
//! tokens. Its clock can be moved forward so increments are tested without sleeping. The
//! control API ([`OktaEmulator`]'s methods, and `/_control/…` over HTTP) adds, changes,
//! suspends, deprovisions and deletes users and sets managers.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Form, Json, Router};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::idp_faults::{IdpFaults, Quota};

/// The scope a service app must ask for.
const SCOPE: &str = "okta.users.read";

/// `limit` default and ceiling of the Users API.
const DEFAULT_PAGE: usize = 200;
const MAX_PAGE: usize = 200;

/// The quota the headers report when no fault is set.
const QUOTA_LIMIT: u64 = 600;

/// One emulated Okta org. Cheap to clone.
#[derive(Clone)]
pub struct OktaEmulator {
    inner: Arc<Mutex<Org>>,
}

struct Org {
    /// API tokens accepted as `SSWS`.
    api_tokens: HashSet<String>,
    /// The service app: its client id and the public key of its private key.
    app: Option<(String, DecodingKey)>,
    base: String,
    users: Vec<Value>,
    index: HashMap<String, usize>,
    /// Issued tokens, 429s, the quota, a failing page and their counts.
    faults: IdpFaults,
    /// The `search` of each listing's first page (None: the plain list).
    searches: Vec<Option<String>>,
    /// Seconds the emulated clock is ahead of the real one.
    offset: i64,
}

impl Org {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + time::Duration::seconds(self.offset)
    }

    fn stamp(&self) -> String {
        let t = self.now();
        let t = t
            .replace_nanosecond(t.millisecond() as u32 * 1_000_000)
            .unwrap_or(t);
        t.format(&Rfc3339).unwrap_or_default()
    }
}

impl OktaEmulator {
    /// An org that accepts the API token `api_token` (if any) and the service app
    /// `client_id` signing with the private key of `public_pem` (if any).
    pub fn new(api_token: Option<&str>, app: Option<(&str, &str)>) -> OktaEmulator {
        let app = app.map(|(id, pem)| {
            let key = DecodingKey::from_rsa_pem(pem.as_bytes()).expect("an RSA public key in PEM");
            (id.to_owned(), key)
        });
        OktaEmulator {
            inner: Arc::new(Mutex::new(Org {
                api_tokens: api_token.iter().map(|t| (*t).to_owned()).collect(),
                app,
                base: String::new(),
                users: Vec::new(),
                index: HashMap::new(),
                faults: IdpFaults::default(),
                searches: Vec::new(),
                offset: 0,
            })),
        }
    }

    fn o(&self) -> std::sync::MutexGuard<'_, Org> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Serves on `listener` until `shutdown`: the Users API at `/api/v1/users`, the token
    /// endpoint at `/oauth2/v1/token`.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let addr = listener.local_addr()?;
        self.o().base = format!("http://{addr}");
        let app = Router::new()
            .route("/oauth2/v1/token", post(token))
            .route("/api/v1/users", get(list))
            .route("/_control/users", post(control_upsert))
            .route("/_control/users/{id}", delete(control_delete))
            .route("/_control/users/{id}/status", post(control_status))
            .route("/_control/faults", post(control_faults))
            .with_state(self);
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    }

    /// Adds or replaces a user (an Okta user with at least `id` and `profile.login`;
    /// `status` defaults to ACTIVE); `lastUpdated` is stamped with the emulated clock.
    pub fn upsert_user(&self, mut user: Value) {
        let mut o = self.o();
        let id = user["id"].as_str().unwrap_or_default().to_owned();
        let now = o.stamp();
        if user["status"].is_null() {
            user["status"] = json!("ACTIVE");
        }
        user["lastUpdated"] = json!(now);
        match o.index.get(&id).copied() {
            Some(i) => {
                user["created"] = o.users[i]["created"].clone();
                o.users[i] = user;
            }
            None => {
                user["created"] = json!(now);
                let i = o.users.len();
                o.index.insert(id, i);
                o.users.push(user);
            }
        }
    }

    fn change(&self, id: &str, f: impl FnOnce(&mut Value)) {
        let current = {
            let o = self.o();
            o.index.get(id).map(|&i| o.users[i].clone())
        };
        if let Some(mut u) = current {
            f(&mut u);
            self.upsert_user(u);
        }
    }

    /// Changes some profile attributes of a user.
    pub fn update_profile(&self, id: &str, changes: Value) {
        self.change(id, |u| {
            if let Value::Object(ch) = changes {
                for (k, v) in ch {
                    u["profile"][k] = v;
                }
            }
        });
    }

    /// Sets a user's status: `SUSPENDED`, `DEPROVISIONED`, `ACTIVE`, `LOCKED_OUT`, …
    pub fn set_status(&self, id: &str, status: &str) {
        self.change(id, |u| u["status"] = json!(status));
    }

    /// Sets (or clears) a user's `profile.managerId`.
    pub fn set_manager(&self, id: &str, manager: Option<&str>) {
        self.change(id, |u| u["profile"]["managerId"] = json!(manager));
    }

    /// Deletes a user (Okta deletes only deprovisioned users; the emulator does not insist):
    /// no listing has it any more.
    pub fn delete_user(&self, id: &str) {
        let mut o = self.o();
        if o.index.remove(id).is_some() {
            o.users.retain(|u| u["id"] != id);
            let index = o
                .users
                .iter()
                .enumerate()
                .map(|(i, u)| (u["id"].as_str().unwrap_or_default().to_owned(), i))
                .collect();
            o.index = index;
        }
    }

    /// Moves the emulated clock forward (stamps of later changes, token lifetimes).
    pub fn advance_clock(&self, seconds: i64) {
        self.o().offset += seconds;
    }

    /// The next `n` API calls answer 429 (with `X-Rate-Limit-Reset` one second ahead).
    pub fn throttle(&self, n: u32) {
        self.o().faults.throttle = n;
    }

    /// Only `n` more calls fit in the quota window; the answer to the last says
    /// `X-Rate-Limit-Remaining: 0`, the window resets one second later, and a call before
    /// then answers 429.
    pub fn quota(&self, n: u64) {
        self.o().faults.quota = Some(n);
    }

    /// Page `page` (1-based) of every listing answers 500 until cleared.
    pub fn fail_page(&self, page: Option<usize>) {
        self.o().faults.fail_page = page;
    }

    /// Revokes every access token issued so far.
    pub fn expire_tokens(&self) {
        self.o().faults.tokens.clear();
    }

    /// Token requests answered with a token.
    pub fn token_requests(&self) -> u64 {
        self.o().faults.token_requests
    }

    /// Calls answered 429.
    pub fn throttled(&self) -> u64 {
        self.o().faults.throttled
    }

    /// Listing pages answered.
    pub fn pages(&self) -> u64 {
        self.o().faults.pages
    }

    /// The `search` of every listing started so far (None: the plain list).
    pub fn searches(&self) -> Vec<Option<String>> {
        self.o().searches.clone()
    }
}

fn oauth_error(status: StatusCode, code: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": code, "error_description": description})),
    )
        .into_response()
}

fn api_error(status: StatusCode, code: &str, summary: &str) -> Response {
    (
        status,
        Json(
            json!({"errorCode": code, "errorSummary": summary, "errorLink": code,
            "errorId": uuid::Uuid::new_v4().simple().to_string(), "errorCauses": []}),
        ),
    )
        .into_response()
}

async fn token(
    State(emu): State<OktaEmulator>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut o = emu.o();
    let token_url = format!("{}/oauth2/v1/token", o.base);
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "The authorization grant type is not supported by the authorization server.",
        );
    }
    if form.get("client_assertion_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed: a private_key_jwt client assertion is required.",
        );
    }
    let Some((client_id, key)) = o.app.as_ref() else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "No service app.",
        );
    };
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&[token_url]);
    v.set_issuer(std::slice::from_ref(client_id));
    v.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    let assertion = form
        .get("client_assertion")
        .map(String::as_str)
        .unwrap_or("");
    let claims = match jsonwebtoken::decode::<Value>(assertion, key, &v) {
        Ok(d) => d.claims,
        Err(_) => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "The client_assertion signature is invalid.",
            )
        }
    };
    let lifetime = claims["exp"].as_i64().unwrap_or(0) - claims["iat"].as_i64().unwrap_or(0);
    if claims["sub"] != claims["iss"] || claims["jti"].as_str().is_none() || lifetime > 3600 {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "The client_assertion token is invalid (sub, jti or lifetime).",
        );
    }
    let scopes: Vec<&str> = form
        .get("scope")
        .map(|s| s.split(' ').collect())
        .unwrap_or_default();
    if !scopes.contains(&SCOPE) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "The requested scope is invalid, unknown, or malformed.",
        );
    }
    let token = format!("eyJ.emulated.{}", uuid::Uuid::new_v4().simple());
    o.faults.issue(token.clone());
    Json(json!({"token_type": "Bearer", "expires_in": 3600, "access_token": token, "scope": SCOPE}))
        .into_response()
}

/// Whether `u` matches a search expression; None: an expression the emulator does not know.
fn matches(u: &Value, search: &str) -> Option<bool> {
    let (attr, rest) = search.trim().split_once(' ')?;
    let (op, value) = rest.trim().split_once(' ')?;
    let value = value.trim().strip_prefix('"')?.strip_suffix('"')?;
    match (attr, op) {
        ("status", "eq") => Some(u["status"].as_str() == Some(value)),
        ("lastUpdated", "gt") => {
            let since = OffsetDateTime::parse(value, &Rfc3339).ok()?;
            let at = u["lastUpdated"]
                .as_str()
                .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())?;
            Some(at > since)
        }
        _ => None,
    }
}

fn set_quota_headers(r: &mut Response, remaining: u64, reset: i64) {
    let h = r.headers_mut();
    h.insert("x-rate-limit-limit", HeaderValue::from(QUOTA_LIMIT));
    h.insert("x-rate-limit-remaining", HeaderValue::from(remaining));
    h.insert("x-rate-limit-reset", HeaderValue::from(reset));
}

async fn list(
    State(emu): State<OktaEmulator>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut o = emu.o();
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let ok = match auth.split_once(' ') {
        Some(("SSWS", t)) => o.api_tokens.contains(t),
        Some(("Bearer", t)) => o.faults.tokens.contains(t),
        _ => false,
    };
    if !ok {
        return api_error(
            StatusCode::UNAUTHORIZED,
            "E0000011",
            "Invalid token provided",
        );
    }
    // Quota times are real epoch seconds (the client waits by its own clock); only
    // `lastUpdated` follows the emulated clock.
    let now = OffsetDateTime::now_utc().unix_timestamp();
    // Okta's 429 carries the reset time, not Retry-After (assumed from its rate-limit docs).
    if o.faults.throttle_now() {
        let mut r = api_error(
            StatusCode::TOO_MANY_REQUESTS,
            "E0000047",
            "API call exceeded rate limit due to too many requests.",
        );
        set_quota_headers(&mut r, 0, now + 1);
        return r;
    }
    let remaining = match o.faults.spend(now, QUOTA_LIMIT) {
        Quota::Spent { reset } => {
            let mut r = api_error(
                StatusCode::TOO_MANY_REQUESTS,
                "E0000047",
                "API call exceeded rate limit due to too many requests.",
            );
            set_quota_headers(&mut r, 0, reset);
            return r;
        }
        Quota::Left(n) => n,
    };
    let size = q
        .get("limit")
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_PAGE)
        .clamp(1, MAX_PAGE);
    let from: usize = q.get("after").and_then(|t| t.parse().ok()).unwrap_or(0);
    let page = from / size + 1;
    if o.faults.fails(page) {
        return api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "E0000009",
            "Internal Server Error (emulated)",
        );
    }
    let search = q.get("search").cloned();
    let mut selected = Vec::new();
    for u in &o.users {
        let keep = match &search {
            Some(s) => match matches(u, s) {
                Some(k) => k,
                None => return api_error(StatusCode::BAD_REQUEST, "E0000031", "Invalid search."),
            },
            None => u["status"] != "DEPROVISIONED",
        };
        if keep {
            selected.push(u);
        }
    }
    let users: Vec<Value> = selected
        .iter()
        .skip(from)
        .take(size)
        .map(|u| (*u).clone())
        .collect();
    let more = selected.len() > from + size;
    let reset = if remaining == 0 {
        o.faults.quota_reset
    } else {
        now + 60
    };
    let self_query = |after: Option<usize>| {
        let mut p = vec![("limit", size.to_string())];
        if let Some(s) = &search {
            p.push(("search", s.clone()));
        }
        if let Some(a) = after {
            p.push(("after", a.to_string()));
        }
        format!(
            "{}/api/v1/users?{}",
            o.base,
            serde_urlencoded::to_string(&p).unwrap_or_default()
        )
    };
    let mut links = vec![format!(
        "<{}>; rel=\"self\"",
        self_query((from > 0).then_some(from))
    )];
    if more {
        links.push(format!("<{}>; rel=\"next\"", self_query(Some(from + size))));
    }
    o.faults.pages += 1;
    if from == 0 {
        o.searches.push(search);
    }
    let mut r = Json(Value::Array(users)).into_response();
    for l in links {
        if let Ok(v) = HeaderValue::from_str(&l) {
            r.headers_mut().append("link", v);
        }
    }
    set_quota_headers(&mut r, remaining, reset);
    r
}

async fn control_upsert(State(emu): State<OktaEmulator>, Json(user): Json<Value>) -> StatusCode {
    if user["id"].as_str().is_none() || user["profile"]["login"].as_str().is_none() {
        return StatusCode::BAD_REQUEST;
    }
    emu.upsert_user(user);
    StatusCode::NO_CONTENT
}

async fn control_delete(State(emu): State<OktaEmulator>, Path(id): Path<String>) -> StatusCode {
    emu.delete_user(&id);
    StatusCode::NO_CONTENT
}

/// `{"status": "SUSPENDED"}`, and/or `{"managerId": "00u…"|null}`.
async fn control_status(
    State(emu): State<OktaEmulator>,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> StatusCode {
    if let Some(s) = body["status"].as_str() {
        emu.set_status(&id, s);
    }
    if body.get("managerId").is_some() {
        emu.set_manager(&id, body["managerId"].as_str());
    }
    StatusCode::NO_CONTENT
}

/// `{"throttle": n, "quota": n, "fail_page": n|null, "expire_tokens": true,
/// "advance_clock": seconds}`.
async fn control_faults(State(emu): State<OktaEmulator>, Json(f): Json<Value>) -> StatusCode {
    emu.o().faults.control(&f);
    if let Some(s) = f["advance_clock"].as_i64() {
        emu.advance_clock(s);
    }
    StatusCode::NO_CONTENT
}
