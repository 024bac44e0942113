//! [`ConfluenceClient`]: one method per Confluence operation, each one HTTP call unless its
//! doc says otherwise, every failure classified into a [`TargetError`] (see [`super::error`]).
//!
//! Every request sends `Accept: application/json` and the credentials; every `POST`, `PUT`
//! and `DELETE` also sends `X-Atlassian-Token: no-check` (Confluence's XSRF filter rejects
//! some mutating requests without it, docs/reference/confluence-api.md §1.5) and, with a body,
//! `Content-Type: application/json`. Path segments (usernames, group names) are
//! percent-encoded. Redirects are not followed: a redirect means a wrong `base_url` or an
//! SSO proxy, and following it could replay a write as a `GET`.
//!
//! Logs name the call by its template (`PUT /rest/api/admin/user/{username}/disable`),
//! never the concrete path, body or credentials.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::OnceCell;

use super::config::{check_base_url, ConfluenceAuth, ConfluenceConfig, InvalidConfig};
use super::error::{self, served_as_anonymous};
use super::model::{
    CreateGroupBody, CreateUserBody, CreatedUserJson, CurrentUser, DeleteSubmitted, GroupCreated,
    GroupJson, LongTaskJson, LongTaskStatus, LongTaskSubmissionJson, Page, RemoteUser,
    UpdateUserBody, UserJson, UserKey, UserUpdated,
};
use super::password;
use super::version::{self, Availability, DetectedVersion, Feature, Version};
use crate::mapping::username::check_username;
use crate::targets::pacing::Pacer;
use crate::targets::retry_after::parse_retry_after;
use crate::targets::{truncate_body, Call, Failure, TargetError, BODY_LIMIT};

/// The calls the client makes, by template.
pub mod calls {
    use crate::targets::Call;

    /// `GET /rest/api/user/current`.
    pub const CURRENT_USER: Call = Call::new("GET", "/rest/api/user/current");
    /// `GET /rest/applinks/1.0/manifest`.
    pub const MANIFEST: Call = Call::new("GET", "/rest/applinks/1.0/manifest");
    /// `GET /rest/api/admin/users/list/active` (version probe, 9.3+).
    pub const ACTIVE_USERS: Call = Call::new("GET", "/rest/api/admin/users/list/active");
    /// `GET /rest/api/user/list` (version probe, 8.4+).
    pub const USER_LIST: Call = Call::new("GET", "/rest/api/user/list");
    /// `GET /rest/api/user?username=`.
    pub const GET_USER: Call = Call::new("GET", "/rest/api/user");
    /// `POST /rest/api/admin/user`.
    pub const CREATE_USER: Call = Call::new("POST", "/rest/api/admin/user");
    /// `PUT /rest/api/admin/user/{username}`.
    pub const UPDATE_USER: Call = Call::new("PUT", "/rest/api/admin/user/{username}");
    /// `PUT /rest/api/admin/user/{username}/disable`.
    pub const DISABLE_USER: Call = Call::new("PUT", "/rest/api/admin/user/{username}/disable");
    /// `PUT /rest/api/admin/user/{username}/enable`.
    pub const ENABLE_USER: Call = Call::new("PUT", "/rest/api/admin/user/{username}/enable");
    /// `DELETE /rest/api/admin/user/{username}`.
    pub const DELETE_USER: Call = Call::new("DELETE", "/rest/api/admin/user/{username}");
    /// `GET /rest/api/longtask/{id}`.
    pub const LONG_TASK: Call = Call::new("GET", "/rest/api/longtask/{id}");
    /// `POST /rest/api/admin/group`.
    pub const CREATE_GROUP: Call = Call::new("POST", "/rest/api/admin/group");
    /// `DELETE /rest/api/admin/group/{group}`.
    pub const DELETE_GROUP: Call = Call::new("DELETE", "/rest/api/admin/group/{group}");
    /// `PUT /rest/api/user/{username}/group/{group}`.
    pub const ADD_MEMBER: Call = Call::new("PUT", "/rest/api/user/{username}/group/{group}");
    /// `DELETE /rest/api/user/{username}/group/{group}`.
    pub const REMOVE_MEMBER: Call = Call::new("DELETE", "/rest/api/user/{username}/group/{group}");
    /// `GET /rest/api/group/{group}/member`.
    pub const GROUP_MEMBERS: Call = Call::new("GET", "/rest/api/group/{group}/member");
    /// `GET /rest/api/user/memberof`.
    pub const USER_GROUPS: Call = Call::new("GET", "/rest/api/user/memberof");
    /// `POST /rpc/json-rpc/confluenceservice-v2/editUser` (legacy fallback).
    pub const RPC_EDIT_USER: Call =
        Call::new("POST", "/rpc/json-rpc/confluenceservice-v2/editUser");
}

use calls::*;

/// Page size of list calls. Always sent: the documented defaults disagree (100 vs 200,
/// docs/reference/confluence-api.md §1.2). Servers may cap it; the client pages by what it
/// receives.
const PAGE_LIMIT: usize = 200;
/// Guard against a server whose `next` link never ends (200 × 50,000 = 10 M entries).
const MAX_PAGES: usize = 50_000;
/// Longest a request waits for Confluence's rate limit before it fails as rate limited, unsent
/// (well below the delivery lease, so a paced key never outlives its claim).
const PACING_MAX_WAIT: Duration = Duration::from_secs(5);
/// First and longest pause between long-task polls.
const POLL_FIRST: Duration = Duration::from_millis(100);
const POLL_MAX: Duration = Duration::from_secs(2);

/// The Confluence Data Center REST client. Cheap to clone (shared connection pool and
/// cached version).
#[derive(Clone)]
pub struct ConfluenceClient {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub http: reqwest::Client,
    /// Base URL without trailing slash.
    pub base: String,
    pub auth: ConfluenceAuth,
    /// Prebuilt, marked sensitive (hidden from reqwest's debug output).
    pub authorization: HeaderValue,
    pub request_timeout: Duration,
    pub version: OnceCell<DetectedVersion>,
    /// Spends Confluence's rate limit evenly (see [`crate::targets::pacing`]).
    pub pacer: Pacer,
}

impl std::fmt::Debug for ConfluenceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfluenceClient")
            .field("base_url", &self.inner.base)
            .field("auth", &self.inner.auth.scheme())
            .field("version", &self.inner.version.get())
            .finish_non_exhaustive()
    }
}

/// A request to send.
pub(super) struct Outgoing {
    pub call: Call,
    /// Concrete path below the base URL, segments already encoded.
    pub path: String,
    pub query: Vec<(&'static str, String)>,
    pub body: Option<Vec<u8>>,
    pub accept: &'static str,
}

impl Outgoing {
    pub fn new(call: Call, path: String) -> Self {
        Self {
            call,
            path,
            query: Vec::new(),
            body: None,
            accept: "application/json",
        }
    }

    pub fn query(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.query.push((name, value.into()));
        self
    }

    pub fn json(mut self, body: &impl Serialize) -> Result<Self, TargetError> {
        let bytes = serde_json::to_vec(body).map_err(|e| {
            TargetError::Permanent(Failure {
                call: self.call,
                status: None,
                message: format!("could not encode the request body: {e}"),
                body: None,
            })
        })?;
        self.body = Some(bytes);
        Ok(self)
    }
}

/// An HTTP answer, whatever its status.
pub(super) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// Percent-encodes one path segment (everything but RFC 3986 unreserved characters).
pub(super) fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A failure the client found without (or before) an HTTP answer.
fn local(call: Call, message: impl Into<String>) -> Failure {
    Failure {
        call,
        status: None,
        message: message.into(),
        body: None,
    }
}

/// Parses a 2xx body; a body that is not the expected JSON is a permanent failure (the
/// server is not the Confluence we think, or an SSO page answered).
pub(super) fn decode<T: DeserializeOwned>(call: Call, reply: &Reply) -> Result<T, TargetError> {
    serde_json::from_slice(&reply.body).map_err(|e| {
        TargetError::Permanent(Failure {
            call,
            status: Some(reply.status.as_u16()),
            // Not `{e}`: serde quotes the offending value, which may be a username.
            message: format!(
                "unexpected answer: not the JSON Confluence sends ({:?} error at line {}, \
                 column {}); check base_url",
                e.classify(),
                e.line(),
                e.column()
            ),
            body: truncate_body(&reply.body, BODY_LIMIT),
        })
    })
}

impl ConfluenceClient {
    /// Builds a client (no network traffic). Fails on a bad base URL or credentials that
    /// cannot go into an HTTP header.
    pub fn new(config: ConfluenceConfig) -> Result<Self, InvalidConfig> {
        let base = check_base_url(&config.base_url)?;
        let raw = match &config.auth {
            ConfluenceAuth::Pat(token) => format!("Bearer {}", token.expose()),
            ConfluenceAuth::Basic { username, password } => format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{}", password.expose()))
            ),
        };
        let mut authorization = HeaderValue::from_str(&raw).map_err(|_| {
            InvalidConfig(
                "[confluence] the token, username or password contains characters that \
                 cannot be sent in an HTTP header"
                    .to_owned(),
            )
        })?;
        authorization.set_sensitive(true);
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .user_agent(config.user_agent.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| {
                InvalidConfig(format!("[confluence] cannot build the HTTP client: {e}"))
            })?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base,
                auth: config.auth,
                authorization,
                request_timeout: config.request_timeout,
                version: OnceCell::new(),
                pacer: Pacer::new(PACING_MAX_WAIT),
            }),
        })
    }

    /// The base URL (with context path, without trailing slash).
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    /// Sends a request and returns the answer whatever its status; only transport failures
    /// are errors.
    pub(super) async fn send_raw(&self, out: Outgoing) -> Result<Reply, TargetError> {
        let call = out.call;
        let method = Method::from_bytes(call.method.as_bytes())
            .map_err(|_| TargetError::Permanent(local(call, "invalid HTTP method")))?;
        let url = format!("{}{}", self.inner.base, out.path);
        let mut builder = self
            .inner
            .http
            .request(method.clone(), url)
            .header(ACCEPT, out.accept)
            .header(AUTHORIZATION, self.inner.authorization.clone());
        if !out.query.is_empty() {
            builder = builder.query(&out.query);
        }
        if method != Method::GET && method != Method::HEAD {
            builder = builder.header("X-Atlassian-Token", "no-check");
        }
        if let Some(body) = out.body {
            builder = builder.header(CONTENT_TYPE, "application/json").body(body);
        }
        if let Err(wait) = self.inner.pacer.acquire().await {
            return Err(TargetError::RateLimited {
                retry_after: Some(wait),
                failure: local(
                    call,
                    format!(
                        "not sent: Confluence's rate limit (X-RateLimit-* headers) allows the \
                         next request in {} ms",
                        wait.as_millis()
                    ),
                ),
            });
        }
        let started = Instant::now();
        let timeout = self.inner.request_timeout;
        let result = async {
            let response = builder.send().await?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await?.to_vec();
            Ok::<_, reqwest::Error>(Reply {
                status,
                headers,
                body,
            })
        }
        .await;
        let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match result {
            Ok(reply) => {
                let code = reply.status.as_u16();
                let retry_after = (code == 429 || code == 503)
                    .then(|| reply.headers.get(reqwest::header::RETRY_AFTER))
                    .flatten()
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, SystemTime::now()))
                    .map(|r| r.delay);
                self.inner
                    .pacer
                    .observe(&reply.headers, retry_after, Instant::now());
                tracing::debug!(
                    confluence.call = %call,
                    http.status = reply.status.as_u16(),
                    duration_ms = elapsed_ms,
                    "confluence call"
                );
                Ok(reply)
            }
            Err(e) => {
                let error = error::transport(call, &e, timeout);
                tracing::debug!(
                    confluence.call = %call,
                    duration_ms = elapsed_ms,
                    error.class = %error.class(),
                    "confluence call failed without an answer"
                );
                Err(error)
            }
        }
    }

    /// Sends a request; anything but a 2xx answer from an authenticated session is an
    /// error.
    pub(super) async fn send(&self, out: Outgoing) -> Result<Reply, TargetError> {
        let call = out.call;
        let reply = self.send_raw(out).await?;
        if reply.status.is_success() && !served_as_anonymous(&reply.headers) {
            Ok(reply)
        } else {
            Err(error::classify(
                call,
                reply.status,
                &reply.headers,
                &reply.body,
                SystemTime::now(),
            ))
        }
    }

    /// What the cached version says about `feature` (`Unknown` before detection).
    fn availability(&self, feature: Feature) -> Availability {
        self.inner
            .version
            .get()
            .map_or(Availability::Unknown, |v| v.supports(feature))
    }

    /// Refuses a call the detected release cannot serve, without sending it.
    pub(super) fn require(
        &self,
        feature: Feature,
        call: Call,
        since: &str,
    ) -> Result<(), TargetError> {
        if self.availability(feature) != Availability::Absent {
            return Ok(());
        }
        let version = self
            .inner
            .version
            .get()
            .map_or_else(String::new, ToString::to_string);
        Err(TargetError::Unsupported(local(
            call,
            format!("Confluence {version} does not offer {call} (it needs {since})"),
        )))
    }

    // ---- identity and version ----------------------------------------------------------

    /// `GET /rest/api/user/current`: who the credentials authenticate. Detects Confluence's
    /// anonymous fallback (an invalid PAT may be served as `anonymous` instead of 401,
    /// docs/reference/confluence-api.md §1.2 \[obs\]): `X-AUSERNAME: anonymous` or
    /// `"type": "anonymous"` is [`TargetError::Unauthorized`].
    pub async fn current_user(&self) -> Result<CurrentUser, TargetError> {
        let reply = self
            .send(Outgoing::new(
                CURRENT_USER,
                CURRENT_USER.template.to_owned(),
            ))
            .await?;
        let user: UserJson = decode(CURRENT_USER, &reply)?;
        if user.is_anonymous() {
            return Err(TargetError::Unauthorized(Failure {
                call: CURRENT_USER,
                status: Some(reply.status.as_u16()),
                message: error::ANONYMOUS_FALLBACK.to_owned(),
                body: None,
            }));
        }
        let remote = user.into_remote().ok_or_else(|| {
            TargetError::Permanent(Failure {
                call: CURRENT_USER,
                status: Some(reply.status.as_u16()),
                message: "unexpected answer: the current user has no username or userKey"
                    .to_owned(),
                body: truncate_body(&reply.body, BODY_LIMIT),
            })
        })?;
        Ok(CurrentUser {
            username: remote.username,
            user_key: remote.user_key,
            display_name: remote.display_name,
        })
    }

    /// Detects the Confluence release once and caches it (see [`super::version`] for the
    /// method and its uncertainty). One call (the manifest), or up to three when the
    /// manifest is missing. Failures are not cached: the next call tries again.
    pub async fn detect_version(&self) -> Result<DetectedVersion, TargetError> {
        self.inner
            .version
            .get_or_try_init(|| self.probe_version())
            .await
            .copied()
    }

    /// The version found by an earlier [`detect_version`](Self::detect_version).
    pub fn cached_version(&self) -> Option<DetectedVersion> {
        self.inner.version.get().copied()
    }

    /// Start-up check: [`current_user`](Self::current_user) then
    /// [`detect_version`](Self::detect_version).
    pub async fn verify(&self) -> Result<(CurrentUser, DetectedVersion), TargetError> {
        let user = self.current_user().await?;
        let version = self.detect_version().await?;
        tracing::info!(
            confluence.version = %version,
            confluence.auth = self.inner.auth.scheme(),
            "connected to Confluence"
        );
        Ok((user, version))
    }

    async fn probe_version(&self) -> Result<DetectedVersion, TargetError> {
        let mut manifest = Outgoing::new(MANIFEST, MANIFEST.template.to_owned());
        manifest.accept = "application/xml, application/json;q=0.5";
        match self.send(manifest).await {
            Ok(reply) => {
                if let Some(found) = version::parse_manifest(&String::from_utf8_lossy(&reply.body))
                {
                    return Ok(DetectedVersion::from_manifest(found));
                }
                tracing::debug!("applinks manifest without a readable version; probing");
            }
            Err(
                e @ (TargetError::Unauthorized(_)
                | TargetError::Transient(_)
                | TargetError::RateLimited { .. }),
            ) => return Err(e),
            Err(e) => {
                tracing::debug!(error.class = %e.class(), "no applinks manifest; probing");
            }
        }
        if self.endpoint_exists(ACTIVE_USERS).await? {
            return Ok(DetectedVersion::from_probes(version::V9_3, None));
        }
        if self.endpoint_exists(USER_LIST).await? {
            return Ok(DetectedVersion::from_probes(
                version::V8_4,
                Some(version::V9_3),
            ));
        }
        Ok(DetectedVersion::from_probes(
            Version::new(0, 0, 0),
            Some(version::V8_4),
        ))
    }

    /// Whether a read-only list endpoint exists: any answer but 404 or 405 says it does
    /// (401/403 too: the path is known, the caller just may not use it).
    async fn endpoint_exists(&self, call: Call) -> Result<bool, TargetError> {
        let reply = self
            .send_raw(Outgoing::new(call, call.template.to_owned()).query("limit", "1"))
            .await?;
        let status = reply.status.as_u16();
        let anonymous = served_as_anonymous(&reply.headers);
        if anonymous || status == 429 || status >= 500 {
            return Err(error::classify(
                call,
                reply.status,
                &reply.headers,
                &reply.body,
                SystemTime::now(),
            ));
        }
        Ok(status != 404 && status != 405)
    }

    // ---- users ---------------------------------------------------------------------------

    /// `GET /rest/api/user?username=…&expand=status`: the user, or `None` when Confluence
    /// answers 404 with an error body. An HTML 404 (wrong `base_url`) is
    /// [`TargetError::Unsupported`], never `None`, so a misconfiguration cannot make every
    /// user look absent.
    pub async fn get_user(&self, username: &str) -> Result<Option<RemoteUser>, TargetError> {
        let out = Outgoing::new(GET_USER, GET_USER.template.to_owned())
            .query("username", username)
            .query("expand", "status");
        let reply = match self.send(out).await {
            Ok(reply) => reply,
            Err(TargetError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let user: UserJson = decode(GET_USER, &reply)?;
        user.into_remote().map(Some).ok_or_else(|| {
            TargetError::Permanent(Failure {
                call: GET_USER,
                status: Some(reply.status.as_u16()),
                message: "unexpected answer: the user has no username or userKey".to_owned(),
                body: truncate_body(&reply.body, BODY_LIMIT),
            })
        })
    }

    /// `POST /rest/api/admin/user` (8.4+): creates an active user with a random strong
    /// password nobody knows and `notifyViaEmail: false` (generated from the OS CSPRNG, 32
    /// characters, never logged or returned), and
    /// returns its key. The user is in no group: add it to `confluence-users` (or another
    /// "can use" group) for it to be licensed and able to log in (docs/reference/confluence-api.md
    /// §1.7).
    ///
    /// The username is checked locally first ([`check_username`]): a username Confluence
    /// would refuse is [`TargetError::Permanent`] without a call. 409 (exists, maybe in
    /// another directory) is [`TargetError::Conflict`]; 402 (no seat) is `Permanent`;
    /// on releases before 8.4 it is [`TargetError::Unsupported`] (without a call once the
    /// version is detected). The JSON-RPC `addUser` fallback is not implemented.
    pub async fn create_user(
        &self,
        username: &str,
        full_name: &str,
        email: &str,
    ) -> Result<UserKey, TargetError> {
        check_username(username).map_err(|problem| {
            TargetError::Permanent(local(
                CREATE_USER,
                format!("refusing to create the user: {problem}"),
            ))
        })?;
        self.require(Feature::CreateUser, CREATE_USER, "Confluence 8.4 or later")?;
        let secret = password::generate();
        let out =
            Outgoing::new(CREATE_USER, CREATE_USER.template.to_owned()).json(&CreateUserBody {
                user_name: username,
                full_name,
                email,
                password: secret.expose(),
                notify_via_email: false,
            })?;
        drop(secret);
        let reply = self.send(out).await?;
        let created: CreatedUserJson = decode(CREATE_USER, &reply)?;
        Ok(UserKey::new(created.user_key))
    }

    /// Changes full name and e-mail.
    ///
    /// * `PUT /rest/api/admin/user/{username}` when the release may have it (9.4+; unknown
    ///   for 9.0–9.3 **\[gap\]**, so it is tried there).
    /// * If the release lacks it (known from detection, or the call answers "endpoint
    ///   absent": HTML 404 or 405), the legacy JSON-RPC `editUser` in light mode —
    ///   a second call. It needs Basic auth (PATs are not accepted by JSON-RPC) and the
    ///   Remote API switched on; with a PAT the result is [`TargetError::Unsupported`]
    ///   saying so.
    pub async fn update_user(
        &self,
        username: &str,
        full_name: &str,
        email: &str,
    ) -> Result<UserUpdated, TargetError> {
        let mut rest_failure = None;
        if self.availability(Feature::UpdateUser) != Availability::Absent {
            let out = Outgoing::new(
                UPDATE_USER,
                format!("/rest/api/admin/user/{}", segment(username)),
            )
            .json(&UpdateUserBody { full_name, email })?;
            match self.send(out).await {
                Ok(_) => return Ok(UserUpdated::ViaRest),
                Err(TargetError::Unsupported(failure)) => rest_failure = Some(failure),
                Err(e) => return Err(e),
            }
        }
        self.edit_user_json_rpc(username, full_name, email, rest_failure)
            .await
    }

    /// `PUT /rest/api/admin/user/{username}/disable` (8.2+): 204, idempotent. The user
    /// keeps content and memberships, stops consuming a licence seat and cannot log in.
    pub async fn disable_user(&self, username: &str) -> Result<(), TargetError> {
        self.require(
            Feature::AdminWrites,
            DISABLE_USER,
            "Confluence 8.2 or later",
        )?;
        let path = format!("/rest/api/admin/user/{}/disable", segment(username));
        self.send(Outgoing::new(DISABLE_USER, path)).await.map(drop)
    }

    /// `PUT /rest/api/admin/user/{username}/enable` (8.2+): 204, idempotent.
    pub async fn enable_user(&self, username: &str) -> Result<(), TargetError> {
        self.require(Feature::AdminWrites, ENABLE_USER, "Confluence 8.2 or later")?;
        let path = format!("/rest/api/admin/user/{}/enable", segment(username));
        self.send(Outgoing::new(ENABLE_USER, path)).await.map(drop)
    }

    /// `DELETE /rest/api/admin/user/{username}` (8.2+, system administrator): 202, the
    /// deletion runs as a long task whose id is returned (poll it with
    /// [`wait_for_long_task`](Self::wait_for_long_task)). Irreversible: content stays with
    /// an anonymised alias. A 202 whose body cannot be read still counts as accepted.
    pub async fn delete_user(&self, username: &str) -> Result<DeleteSubmitted, TargetError> {
        self.require(Feature::AdminWrites, DELETE_USER, "Confluence 8.2 or later")?;
        let path = format!("/rest/api/admin/user/{}", segment(username));
        let reply = self.send(Outgoing::new(DELETE_USER, path)).await?;
        let submission: LongTaskSubmissionJson =
            serde_json::from_slice(&reply.body).unwrap_or_default();
        Ok(DeleteSubmitted {
            task_id: submission.task_id(),
        })
    }

    /// `GET /rest/api/longtask/{id}`.
    pub async fn long_task(&self, id: &str) -> Result<LongTaskStatus, TargetError> {
        let path = format!("/rest/api/longtask/{}", segment(id));
        let reply = self.send(Outgoing::new(LONG_TASK, path)).await?;
        let task: LongTaskJson = decode(LONG_TASK, &reply)?;
        Ok(task.into_status(id))
    }

    /// Polls a long task until it finishes or `max_wait` passes (100 ms, then doubling up
    /// to 2 s between polls); returns the last status seen, finished or not. Several
    /// calls.
    pub async fn wait_for_long_task(
        &self,
        id: &str,
        max_wait: Duration,
    ) -> Result<LongTaskStatus, TargetError> {
        let deadline = Instant::now() + max_wait;
        let mut pause = POLL_FIRST;
        loop {
            let status = self.long_task(id).await?;
            let now = Instant::now();
            if status.finished || now >= deadline {
                return Ok(status);
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(POLL_MAX);
        }
    }

    // ---- groups and membership -------------------------------------------------------------

    /// `POST /rest/api/admin/group` (8.2+, system administrator). 409 is
    /// [`GroupCreated::AlreadyExists`], not an error. Confluence stores group names lower
    /// case; pass them lower case to avoid surprises (zabel-elements \[code\]).
    pub async fn create_group(&self, name: &str) -> Result<GroupCreated, TargetError> {
        self.require(
            Feature::AdminWrites,
            CREATE_GROUP,
            "Confluence 8.2 or later",
        )?;
        let out = Outgoing::new(CREATE_GROUP, CREATE_GROUP.template.to_owned()).json(
            &CreateGroupBody {
                name,
                kind: "group",
            },
        )?;
        match self.send(out).await {
            Ok(_) => Ok(GroupCreated::Created),
            Err(TargetError::Conflict(_)) => Ok(GroupCreated::AlreadyExists),
            Err(e) => Err(e),
        }
    }

    /// `DELETE /rest/api/admin/group/{group}` (8.2+, system administrator): 204; an
    /// unknown group is [`TargetError::NotFound`]; the last administrators' group is
    /// `Permanent` (400). Content restricted to the group becomes hidden.
    pub async fn delete_group(&self, name: &str) -> Result<(), TargetError> {
        self.require(
            Feature::AdminWrites,
            DELETE_GROUP,
            "Confluence 8.2 or later",
        )?;
        let path = format!("/rest/api/admin/group/{}", segment(name));
        self.send(Outgoing::new(DELETE_GROUP, path)).await.map(drop)
    }

    /// `PUT /rest/api/user/{username}/group/{group}` (8.2+): 204, idempotent. An unknown
    /// user or group is [`TargetError::NotFound`] **(assumed: undocumented \[gap\])**.
    pub async fn add_member(&self, username: &str, group: &str) -> Result<(), TargetError> {
        self.require(Feature::AdminWrites, ADD_MEMBER, "Confluence 8.2 or later")?;
        let path = format!(
            "/rest/api/user/{}/group/{}",
            segment(username),
            segment(group)
        );
        self.send(Outgoing::new(ADD_MEMBER, path)).await.map(drop)
    }

    /// `DELETE /rest/api/user/{username}/group/{group}` (8.2+): 204, idempotent.
    pub async fn remove_member(&self, username: &str, group: &str) -> Result<(), TargetError> {
        self.require(
            Feature::AdminWrites,
            REMOVE_MEMBER,
            "Confluence 8.2 or later",
        )?;
        let path = format!(
            "/rest/api/user/{}/group/{}",
            segment(username),
            segment(group)
        );
        self.send(Outgoing::new(REMOVE_MEMBER, path))
            .await
            .map(drop)
    }

    /// `GET /rest/api/group/{group}/member?expand=status`, every page (one call per 200
    /// members). Disabled members are included, with `active: Some(false)`.
    pub async fn group_members(&self, group: &str) -> Result<Vec<RemoteUser>, TargetError> {
        let path = format!("/rest/api/group/{}/member", segment(group));
        let users: Vec<UserJson> = self
            .all_pages(GROUP_MEMBERS, &path, &[("expand", "status".to_owned())])
            .await?;
        Ok(users
            .into_iter()
            .filter_map(UserJson::into_remote)
            .collect())
    }

    /// `GET /rest/api/user/memberof?username=…`, every page: the names of the user's groups.
    /// An unknown user is [`TargetError::NotFound`] **(assumed)**.
    pub async fn user_groups(&self, username: &str) -> Result<Vec<String>, TargetError> {
        let groups: Vec<GroupJson> = self
            .all_pages(
                USER_GROUPS,
                USER_GROUPS.template,
                &[("username", username.to_owned())],
            )
            .await?;
        Ok(groups.into_iter().map(|g| g.name).collect())
    }

    /// Follows `start`/`limit` pages while `_links.next` is present.
    async fn all_pages<T: DeserializeOwned>(
        &self,
        call: Call,
        path: &str,
        query: &[(&'static str, String)],
    ) -> Result<Vec<T>, TargetError> {
        let mut all = Vec::new();
        let mut start = 0usize;
        for _ in 0..MAX_PAGES {
            let mut out = Outgoing::new(call, path.to_owned());
            out.query.extend_from_slice(query);
            let out = out
                .query("start", start.to_string())
                .query("limit", PAGE_LIMIT.to_string());
            let reply = self.send(out).await?;
            let page: Page<T> = decode(call, &reply)?;
            let received = page.results.len();
            all.extend(page.results);
            let more = page.links.and_then(|l| l.next).is_some();
            if !more || received == 0 {
                return Ok(all);
            }
            start += received;
        }
        Err(TargetError::Permanent(local(
            call,
            format!("Confluence kept announcing more pages after {MAX_PAGES}; giving up"),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(segment("jdoe"), "jdoe");
        assert_eq!(segment("jane.doe@example.org"), "jane.doe%40example.org");
        assert_eq!(segment("a b/c?d#e%"), "a%20b%2Fc%3Fd%23e%25");
        assert_eq!(segment("müller"), "m%C3%BCller");
    }
}
