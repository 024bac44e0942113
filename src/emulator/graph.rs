//! A stateful emulator of the Microsoft Graph subset the Graph pull connector reads
//! (docs/emulator.md, "Microsoft Graph"): the client-credentials token endpoint,
//! `/users/delta` with paging (`@odata.nextLink`), delta links (`@odata.deltaLink`),
//! `@removed` entries and expired links (410), `/users/{id}` and `/users/{id}/manager`,
//! bearer checks, and faults: 429 with `Retry-After`, a failing page, revoked tokens. The
//! control API ([`GraphEmulator`]'s methods, and `/_control/…` over HTTP) adds, changes and
//! deletes users.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Form, Json, Router};
use serde_json::{json, Value};

use super::idp_faults::IdpFaults;

/// Graph's default delta page size when the client sets no `Prefer: odata.maxpagesize`
/// **(assumed)**.
const DEFAULT_PAGE: usize = 100;

/// One emulated tenant. Cheap to clone (shared state).
#[derive(Clone)]
pub struct GraphEmulator {
    inner: Arc<Mutex<Tenant>>,
}

struct Tenant {
    client_id: String,
    client_secret: String,
    base: String,
    /// Users by id, in creation order through `order`.
    users: HashMap<String, Value>,
    order: Vec<String>,
    managers: HashMap<String, String>,
    /// Change log: (sequence, id); the sequence a delta link carries.
    log: Vec<(u64, String)>,
    seq: u64,
    /// Delta links older than this are expired (410).
    expired_before: u64,
    /// Rounds being paged: token → (entries, final sequence).
    rounds: HashMap<String, (Vec<Value>, u64)>,
    next_round: u64,
    /// Issued tokens, 429s, the quota, a failing page and their counts.
    faults: IdpFaults,
    api_calls: u64,
}

impl GraphEmulator {
    /// A tenant accepting `client_id` with `client_secret`.
    pub fn new(client_id: &str, client_secret: &str) -> GraphEmulator {
        GraphEmulator {
            inner: Arc::new(Mutex::new(Tenant {
                client_id: client_id.to_owned(),
                client_secret: client_secret.to_owned(),
                base: String::new(),
                users: HashMap::new(),
                order: Vec::new(),
                managers: HashMap::new(),
                log: Vec::new(),
                seq: 0,
                expired_before: 0,
                rounds: HashMap::new(),
                next_round: 0,
                faults: IdpFaults::default(),
                api_calls: 0,
            })),
        }
    }

    fn t(&self) -> std::sync::MutexGuard<'_, Tenant> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Serves on `listener` until `shutdown`: Graph at `/v1.0`, the token endpoint at
    /// `/{tenant}/oauth2/v2.0/token`.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let addr = listener.local_addr()?;
        self.t().base = format!("http://{addr}/v1.0");
        let app = Router::new()
            .route("/{tenant}/oauth2/v2.0/token", post(token))
            .route("/v1.0/users/delta", get(delta))
            .route("/v1.0/users/{id}", get(user))
            .route("/v1.0/users/{id}/manager", get(manager))
            .route("/_control/users", post(control_upsert))
            .route("/_control/users/{id}", delete(control_delete))
            .route("/_control/faults", post(control_faults))
            .with_state(self);
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    }

    /// Adds or replaces a user (a Graph user object with at least `id`); the change shows
    /// in the next delta round. `manager` (an id) is taken out and kept as the relation.
    pub fn upsert_user(&self, mut user: Value) {
        let mut t = self.t();
        let id = user["id"].as_str().unwrap_or_default().to_owned();
        if let Some(m) = user.as_object_mut().and_then(|o| o.remove("manager")) {
            match m.as_str() {
                Some(m) => t.managers.insert(id.clone(), m.to_owned()),
                None => t.managers.remove(&id),
            };
        }
        if !t.users.contains_key(&id) {
            t.order.push(id.clone());
        }
        t.users.insert(id.clone(), user);
        t.record(id);
    }

    /// Changes some properties of a user.
    pub fn update_user(&self, id: &str, changes: Value) {
        let current = self.t().users.get(id).cloned();
        if let (Some(mut u), Value::Object(ch)) = (current, changes) {
            for (k, v) in ch {
                u[k] = v;
            }
            self.upsert_user(u);
        }
    }

    /// Sets (or clears) a user's manager. Recorded as a change of the user **(assumed**:
    /// real delta rounds are known to miss some manager changes, docs/emulator.md).
    pub fn set_manager(&self, id: &str, manager: Option<&str>) {
        let mut t = self.t();
        match manager {
            Some(m) => t.managers.insert(id.to_owned(), m.to_owned()),
            None => t.managers.remove(id),
        };
        t.record(id.to_owned());
    }

    /// Deletes a user: the next delta round reports it `@removed`.
    pub fn delete_user(&self, id: &str) {
        let mut t = self.t();
        if t.users.remove(id).is_some() {
            t.order.retain(|o| o != id);
            t.managers.remove(id);
            t.record(id.to_owned());
        }
    }

    /// The next `n` API calls answer 429 with `Retry-After: 1`.
    pub fn throttle(&self, n: u32) {
        self.t().faults.throttle = n;
    }

    /// Page `page` (1-based) of every delta round answers 500 until cleared with `None`.
    pub fn fail_page(&self, page: Option<usize>) {
        self.t().faults.fail_page = page;
    }

    /// Revokes every access token issued so far (the next call answers 401).
    pub fn expire_tokens(&self) {
        self.t().faults.tokens.clear();
    }

    /// Expires every delta link issued so far (410 Gone).
    pub fn expire_delta_links(&self) {
        let mut t = self.t();
        // Links issued from now on carry a later sequence and stay valid.
        t.seq += 1;
        t.expired_before = t.seq;
    }

    /// Token requests answered with a token.
    pub fn token_requests(&self) -> u64 {
        self.t().faults.token_requests
    }

    /// Calls answered 429.
    pub fn throttled(&self) -> u64 {
        self.t().faults.throttled
    }

    /// API calls answered (any status).
    pub fn api_calls(&self) -> u64 {
        self.t().api_calls
    }
}

impl Tenant {
    fn record(&mut self, id: String) {
        self.seq += 1;
        let s = self.seq;
        self.log.push((s, id));
    }

    /// Checks the bearer token and the faults, counting the call.
    #[allow(clippy::result_large_err)] // Answered at once by the handler; never propagated far.
    fn admit(&mut self, headers: &HeaderMap) -> Result<(), Response> {
        self.api_calls += 1;
        let token = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !self.faults.tokens.contains(token) {
            return Err(graph_error(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                "Access token has expired or is not yet valid.",
            ));
        }
        if self.faults.throttle_now() {
            let mut r = graph_error(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "Too many requests.",
            );
            r.headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from_static("1"));
            return Err(r);
        }
        Ok(())
    }

    fn view(&self, id: &str) -> Option<Value> {
        self.users.get(id).cloned()
    }

    fn page(&mut self, round: String, page: usize, size: usize) -> Response {
        if self.faults.fails(page) {
            return graph_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "generalException",
                "An internal error occurred (emulated).",
            );
        }
        let Some((entries, last)) = self.rounds.get(&round) else {
            return graph_error(StatusCode::GONE, "resyncRequired", "Unknown skip token.");
        };
        let from = (page - 1) * size;
        let items: Vec<Value> = entries.iter().skip(from).take(size).cloned().collect();
        let more = entries.len() > from + size;
        let last = *last;
        let mut body = json!({
            "@odata.context": format!("{}/$metadata#users", self.base),
            "value": items,
        });
        if more {
            body["@odata.nextLink"] = json!(format!(
                "{}/users/delta?$skiptoken={round}.{}.{size}",
                self.base,
                page + 1
            ));
        } else {
            self.rounds.remove(&round);
            body["@odata.deltaLink"] =
                json!(format!("{}/users/delta?$deltatoken={last}", self.base));
        }
        Json(body).into_response()
    }

    fn start_round(&mut self, entries: Vec<Value>) -> String {
        self.next_round += 1;
        let round = format!("r{}", self.next_round);
        self.rounds.insert(round.clone(), (entries, self.seq));
        round
    }
}

fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

async fn token(
    State(emu): State<GraphEmulator>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut t = emu.t();
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    if get("grant_type") != "client_credentials" {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "unsupported_grant_type"})),
        )
            .into_response();
    }
    if get("client_id") != t.client_id || get("client_secret") != t.client_secret {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."})),
        )
            .into_response();
    }
    if get("scope") != "https://graph.microsoft.com/.default" {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_scope"})),
        )
            .into_response();
    }
    let token = uuid::Uuid::new_v4().simple().to_string();
    t.faults.issue(token.clone());
    Json(json!({"token_type": "Bearer", "expires_in": 3599, "access_token": token})).into_response()
}

fn page_size(headers: &HeaderMap) -> usize {
    headers
        .get("prefer")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',')
                .find_map(|p| p.trim().strip_prefix("odata.maxpagesize="))
        })
        .and_then(|n| n.trim().parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_PAGE)
}

async fn delta(
    State(emu): State<GraphEmulator>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut t = emu.t();
    if let Err(r) = t.admit(&headers) {
        return r;
    }
    if let Some(skip) = q.get("$skiptoken") {
        let mut parts = skip.split('.');
        let round = parts.next().unwrap_or_default().to_owned();
        let page = parts.next().and_then(|p| p.parse().ok()).unwrap_or(1);
        let size = parts
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(DEFAULT_PAGE);
        return t.page(round, page, size);
    }
    let size = page_size(&headers);
    let entries: Vec<Value> = match q.get("$deltatoken") {
        None => t.order.iter().filter_map(|id| t.view(id)).collect(),
        Some(tok) => {
            let Ok(since) = tok.parse::<u64>() else {
                return graph_error(
                    StatusCode::BAD_REQUEST,
                    "badRequest",
                    "Invalid delta token.",
                );
            };
            if since < t.expired_before {
                // What Microsoft documents for identity resources after seven days
                // (docs/emulator.md, "Microsoft Graph").
                return graph_error(
                    StatusCode::BAD_REQUEST,
                    "syncStateNotFound",
                    "The sync state generation is not found. The delta token is expired and data must be synchronized again.",
                );
            }
            // The latest state of each user changed since the token, in order of change.
            let mut changed: BTreeMap<u64, String> = BTreeMap::new();
            let mut last: HashMap<&str, u64> = HashMap::new();
            for (s, id) in t.log.iter().filter(|(s, _)| *s > since) {
                last.insert(id.as_str(), *s);
            }
            for (id, s) in last {
                changed.insert(s, id.to_owned());
            }
            changed
                .into_values()
                .map(|id| {
                    t.view(&id)
                        .unwrap_or_else(|| json!({"id": id, "@removed": {"reason": "changed"}}))
                })
                .collect()
        }
    };
    let round = t.start_round(entries);
    t.page(round, 1, size)
}

async fn user(
    State(emu): State<GraphEmulator>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let mut t = emu.t();
    if let Err(r) = t.admit(&headers) {
        return r;
    }
    match t.view(&id) {
        Some(u) => Json(u).into_response(),
        None => graph_error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            "Resource does not exist.",
        ),
    }
}

async fn manager(
    State(emu): State<GraphEmulator>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let mut t = emu.t();
    if let Err(r) = t.admit(&headers) {
        return r;
    }
    match t.managers.get(&id).and_then(|m| t.view(m)) {
        Some(m) => Json(json!({"@odata.type": "#microsoft.graph.user", "id": m["id"]})).into_response(),
        None => graph_error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            "Resource 'manager' does not exist or one of its queried reference-property objects are not present.",
        ),
    }
}

async fn control_upsert(State(emu): State<GraphEmulator>, Json(user): Json<Value>) -> StatusCode {
    if user["id"].as_str().is_none() {
        return StatusCode::BAD_REQUEST;
    }
    emu.upsert_user(user);
    StatusCode::NO_CONTENT
}

async fn control_delete(State(emu): State<GraphEmulator>, Path(id): Path<String>) -> StatusCode {
    emu.delete_user(&id);
    StatusCode::NO_CONTENT
}

/// `{"throttle": n, "fail_page": n|null, "expire_tokens": true, "expire_delta_links": true}`.
async fn control_faults(State(emu): State<GraphEmulator>, Json(f): Json<Value>) -> StatusCode {
    emu.t().faults.control(&f);
    if f["expire_delta_links"].as_bool() == Some(true) {
        emu.expire_delta_links();
    }
    StatusCode::NO_CONTENT
}
