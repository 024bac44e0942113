//! A stateful emulator of the OneLogin subset the OneLogin pull connector reads
//! (docs/emulator.md, "OneLogin"): `POST /auth/oauth2/v2/token` (client credentials in the
//! form body or HTTP Basic) and API v2's `GET /api/2/users` with `limit`, an opaque `cursor`
//! from the `After-Cursor` response header, `updated_since`, bearer checks and the
//! `X-RateLimit-*` headers (assumed names). Faults: 429, a quota that runs out, a failing
//! page, revoked tokens. Its clock can be moved forward so increments are tested without
//! sleeping. The control API ([`OneloginEmulator`]'s methods, and `/_control/…` over HTTP)
//! adds, changes, suspends and deletes users and sets managers.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::idp_faults::{IdpFaults, Quota};

/// `limit` default and ceiling (assumed).
const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 1000;

/// The quota the headers report when no fault is set.
const QUOTA_LIMIT: u64 = 5000;

/// One emulated OneLogin account. Cheap to clone.
#[derive(Clone)]
pub struct OneloginEmulator {
    inner: Arc<Mutex<Account>>,
}

struct Account {
    client_id: String,
    client_secret: String,
    users: Vec<Value>,
    index: HashMap<i64, usize>,
    /// Issued tokens, 429s, the quota, a failing page and their counts.
    faults: IdpFaults,
    /// `updated_since` of each listing's first page (None: every user).
    queries: Vec<Option<String>>,
    offset: i64,
}

impl Account {
    fn stamp(&self) -> String {
        let t = OffsetDateTime::now_utc() + time::Duration::seconds(self.offset);
        let t = t
            .replace_nanosecond(t.millisecond() as u32 * 1_000_000)
            .unwrap_or(t);
        t.format(&Rfc3339).unwrap_or_default()
    }
}

impl OneloginEmulator {
    /// An account with one API credential pair (scope "Read users").
    pub fn new(client_id: &str, client_secret: &str) -> OneloginEmulator {
        OneloginEmulator {
            inner: Arc::new(Mutex::new(Account {
                client_id: client_id.to_owned(),
                client_secret: client_secret.to_owned(),
                users: Vec::new(),
                index: HashMap::new(),
                faults: IdpFaults::default(),
                queries: Vec::new(),
                offset: 0,
            })),
        }
    }

    fn a(&self) -> std::sync::MutexGuard<'_, Account> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Serves on `listener` until `shutdown`.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let app = Router::new()
            .route("/auth/oauth2/v2/token", post(token))
            .route("/api/2/users", get(list))
            .route("/_control/users", post(control_upsert))
            .route("/_control/users/{id}", delete(control_delete))
            .route("/_control/faults", post(control_faults))
            .with_state(self);
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    }

    /// Adds or replaces a user (at least a numeric `id`; `status` defaults to 1, `state`
    /// to 1); `updated_at` is stamped with the emulated clock.
    pub fn upsert_user(&self, mut user: Value) {
        let mut a = self.a();
        let Some(id) = user["id"].as_i64() else {
            return;
        };
        let now = a.stamp();
        for (k, d) in [("status", 1), ("state", 1)] {
            if user[k].is_null() {
                user[k] = json!(d);
            }
        }
        user["updated_at"] = json!(now);
        match a.index.get(&id).copied() {
            Some(i) => {
                user["created_at"] = a.users[i]["created_at"].clone();
                a.users[i] = user;
            }
            None => {
                user["created_at"] = json!(now);
                let i = a.users.len();
                a.index.insert(id, i);
                a.users.push(user);
            }
        }
    }

    /// Changes some properties of a user (`status` 2 suspends, `manager_user_id` sets the
    /// manager).
    pub fn update_user(&self, id: i64, changes: Value) {
        let current = {
            let a = self.a();
            a.index.get(&id).map(|&i| a.users[i].clone())
        };
        if let (Some(mut u), Value::Object(ch)) = (current, changes) {
            for (k, v) in ch {
                u[k] = v;
            }
            self.upsert_user(u);
        }
    }

    /// Deletes a user: no listing has it any more.
    pub fn delete_user(&self, id: i64) {
        let mut a = self.a();
        if a.index.remove(&id).is_some() {
            a.users.retain(|u| u["id"].as_i64() != Some(id));
            let index = a
                .users
                .iter()
                .enumerate()
                .filter_map(|(i, u)| Some((u["id"].as_i64()?, i)))
                .collect();
            a.index = index;
        }
    }

    /// Moves the emulated clock forward (the `updated_at` of later changes).
    pub fn advance_clock(&self, seconds: i64) {
        self.a().offset += seconds;
    }

    /// The next `n` API calls answer 429 (`X-RateLimit-Reset: 1`).
    pub fn throttle(&self, n: u32) {
        self.a().faults.throttle = n;
    }

    /// Only `n` more calls fit in the quota window; the last answer says
    /// `X-RateLimit-Remaining: 0`, the window resets one second later, and a call before then
    /// answers 429.
    pub fn quota(&self, n: u64) {
        self.a().faults.quota = Some(n);
    }

    /// Page `page` (1-based) of every listing answers 500 until cleared.
    pub fn fail_page(&self, page: Option<usize>) {
        self.a().faults.fail_page = page;
    }

    /// Revokes every access token issued so far.
    pub fn expire_tokens(&self) {
        self.a().faults.tokens.clear();
    }

    /// Token requests answered with a token.
    pub fn token_requests(&self) -> u64 {
        self.a().faults.token_requests
    }

    /// Calls answered 429.
    pub fn throttled(&self) -> u64 {
        self.a().faults.throttled
    }

    /// Listing pages answered.
    pub fn pages(&self) -> u64 {
        self.a().faults.pages
    }

    /// The `updated_since` of every listing started so far (None: every user).
    pub fn queries(&self) -> Vec<Option<String>> {
        self.a().queries.clone()
    }
}

fn error(status: StatusCode, name: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"statusCode": status.as_u16(), "name": name, "message": message})),
    )
        .into_response()
}

/// The credentials of a token request: the form body's `client_id` / `client_secret`, or
/// HTTP Basic.
fn credentials(headers: &HeaderMap, body: &str) -> Option<(String, String)> {
    let form: HashMap<String, String> = serde_urlencoded::from_str(body).unwrap_or_default();
    if let (Some(id), Some(secret)) = (form.get("client_id"), form.get("client_secret")) {
        return Some((id.clone(), secret.clone()));
    }
    let basic = headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Basic ")?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(basic.trim())
        .ok()?;
    let (id, secret) = std::str::from_utf8(&raw).ok()?.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

async fn token(State(emu): State<OneloginEmulator>, headers: HeaderMap, body: String) -> Response {
    let mut a = emu.a();
    let grant = serde_urlencoded::from_str::<HashMap<String, String>>(&body)
        .ok()
        .and_then(|f| f.get("grant_type").cloned())
        .or_else(|| {
            serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v["grant_type"].as_str().map(str::to_owned))
        });
    if grant.as_deref() != Some("client_credentials") {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "unsupported_grant_type",
                "error_description": "grant_type is incorrect/absent"})),
        )
            .into_response();
    }
    match credentials(&headers, &body) {
        Some((id, secret)) if id == a.client_id && secret == a.client_secret => {}
        _ => {
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": "invalid_client",
                    "error_description": "Invalid client_id or client_secret"})),
            )
                .into_response()
        }
    }
    let token = uuid::Uuid::new_v4().simple().to_string();
    a.faults.issue(token.clone());
    let created = a.stamp();
    Json(
        json!({"access_token": token, "created_at": created, "expires_in": 36000,
        "refresh_token": uuid::Uuid::new_v4().simple().to_string(), "token_type": "bearer",
        "account_id": 555555}),
    )
    .into_response()
}

fn set_quota_headers(r: &mut Response, remaining: u64, reset_in: i64) {
    let h = r.headers_mut();
    h.insert("x-ratelimit-limit", HeaderValue::from(QUOTA_LIMIT));
    h.insert("x-ratelimit-remaining", HeaderValue::from(remaining));
    h.insert("x-ratelimit-reset", HeaderValue::from(reset_in.max(0)));
}

fn parse(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

async fn list(
    State(emu): State<OneloginEmulator>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut a = emu.a();
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .unwrap_or_default();
    if !a.faults.tokens.contains(token) {
        return error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Authentication Failure",
        );
    }
    let now = OffsetDateTime::now_utc().unix_timestamp();
    if a.faults.throttle_now() {
        let mut r = error(
            StatusCode::TOO_MANY_REQUESTS,
            "Too Many Requests",
            "Rate limit exceeded (emulated)",
        );
        set_quota_headers(&mut r, 0, 1);
        return r;
    }
    let remaining = match a.faults.spend(now, QUOTA_LIMIT) {
        Quota::Spent { reset } => {
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "Too Many Requests",
                "Rate limit exceeded (emulated)",
            );
            set_quota_headers(&mut r, 0, reset - now);
            return r;
        }
        Quota::Left(n) => n,
    };
    let size = q
        .get("limit")
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_PAGE)
        .clamp(1, MAX_PAGE);
    let from: usize = q
        .get("cursor")
        .and_then(|c| c.strip_prefix("c"))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let page = from / size + 1;
    if a.faults.fails(page) {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
            "emulated",
        );
    }
    let since = match q.get("updated_since") {
        Some(s) => match parse(s) {
            Some(t) => Some(t),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "Bad Request",
                    "updated_since is not an ISO8601 timestamp",
                )
            }
        },
        None => None,
    };
    let selected: Vec<&Value> = a
        .users
        .iter()
        .filter(|u| match since {
            Some(s) => u["updated_at"]
                .as_str()
                .and_then(parse)
                .is_some_and(|t| t > s),
            None => true,
        })
        .collect();
    let users: Vec<Value> = selected
        .iter()
        .skip(from)
        .take(size)
        .map(|u| (*u).clone())
        .collect();
    let total = selected.len();
    let more = total > from + size;
    a.faults.pages += 1;
    if from == 0 {
        let asked = q.get("updated_since").cloned();
        a.queries.push(asked);
    }
    let reset_in = if remaining == 0 {
        a.faults.quota_reset - now
    } else {
        3600
    };
    let mut r = Json(Value::Array(users)).into_response();
    let h = r.headers_mut();
    h.insert("total-count", HeaderValue::from(total as u64));
    h.insert("current-page", HeaderValue::from(page as u64));
    h.insert(
        "total-pages",
        HeaderValue::from(total.div_ceil(size).max(1) as u64),
    );
    if more {
        if let Ok(v) = HeaderValue::from_str(&format!("c{}", from + size)) {
            h.insert("after-cursor", v);
        }
    }
    if from > 0 {
        if let Ok(v) = HeaderValue::from_str(&format!("c{}", from.saturating_sub(size))) {
            h.insert("before-cursor", v);
        }
    }
    set_quota_headers(&mut r, remaining, reset_in);
    r
}

async fn control_upsert(
    State(emu): State<OneloginEmulator>,
    Json(user): Json<Value>,
) -> StatusCode {
    if user["id"].as_i64().is_none() {
        return StatusCode::BAD_REQUEST;
    }
    emu.upsert_user(user);
    StatusCode::NO_CONTENT
}

async fn control_delete(State(emu): State<OneloginEmulator>, Path(id): Path<i64>) -> StatusCode {
    emu.delete_user(id);
    StatusCode::NO_CONTENT
}

/// `{"throttle": n, "quota": n, "fail_page": n|null, "expire_tokens": true,
/// "advance_clock": seconds}`.
async fn control_faults(State(emu): State<OneloginEmulator>, Json(f): Json<Value>) -> StatusCode {
    emu.a().faults.control(&f);
    if let Some(s) = f["advance_clock"].as_i64() {
        emu.advance_clock(s);
    }
    StatusCode::NO_CONTENT
}
