//! Tests of the emulator through its router (`tower::ServiceExt::oneshot`) and, for the
//! TCP-level faults, over a real listener. They follow the test scenarios of docs/emulator.md.

mod control_api;
mod faults_tcp;
mod jsonrpc;
mod lifecycle;
mod lup_import;
mod permissions;
mod rate_limits;
mod rules;
mod versions;

use std::net::SocketAddr;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use base64::Engine;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower::ServiceExt;

use super::{Emulator, EmulatorConfig, Seed};

/// PAT of the built-in admin.
pub(super) const ADMIN_PAT: &str = "admin-pat-0001";
/// Basic password of the built-in admin.
pub(super) const ADMIN_PASSWORD: &str = "admin-password";
/// PAT of `alice`, a licensed non-admin.
pub(super) const ALICE_PAT: &str = "alice-pat-0002";
/// Basic password of `alice`.
pub(super) const ALICE_PASSWORD: &str = "alice-password";
/// PAT of `carol`, an administrator who is not a system administrator.
pub(super) const CAROL_PAT: &str = "carol-pat-0003";

/// The seed most tests use: alice (licensed user) and carol (admin, not sysadmin).
pub(super) fn base_seed() -> Seed {
    serde_json::from_value(serde_json::json!({
        "users": [
            {"username": "alice", "fullName": "Alice Example", "email": "alice@example.org",
             "password": ALICE_PASSWORD, "pat": ALICE_PAT, "groups": ["confluence-users"]},
            {"username": "carol", "fullName": "Carol Admin", "email": "carol@example.org",
             "pat": CAROL_PAT, "admin": true, "groups": ["confluence-users"]}
        ]
    }))
    .expect("the base seed parses")
}

/// The base configuration: 10.2, root context, admin with PAT and password, base seed.
pub(super) fn base_config() -> EmulatorConfig {
    let mut config = EmulatorConfig::new(ADMIN_PAT);
    config.admin_password = Some(ADMIN_PASSWORD.to_owned());
    config.seed = Some(base_seed());
    config.knobs.delete_delay_ms = 50;
    config
}

/// An emulator and its router.
pub(super) struct TestApp {
    pub emu: Emulator,
    router: Router,
}

impl TestApp {
    /// The base configuration.
    pub fn new() -> Self {
        Self::with_config(base_config())
    }

    /// A custom configuration.
    pub fn with_config(config: EmulatorConfig) -> Self {
        let emu = Emulator::try_new(config).expect("the seed applies");
        let router = emu.router();
        Self { emu, router }
    }

    /// Sends one request through the router.
    pub async fn call(&self, req: Req) -> Resp {
        let mut builder = Request::builder()
            .method(req.method)
            .uri(req.path)
            .header("host", "emulator.test");
        for (name, value) in req.headers {
            builder = builder.header(name, value);
        }
        let request = builder
            .body(req.body.map_or_else(Body::empty, Body::from))
            .expect("a valid request");
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("a readable body");
        Resp {
            status,
            headers,
            body,
        }
    }
}

/// A request under construction.
pub(super) struct Req {
    method: Method,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
}

impl Req {
    fn new(method: Method, path: &str) -> Self {
        Self {
            method,
            path: path.to_owned(),
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn get(path: &str) -> Self {
        Self::new(Method::GET, path)
    }

    pub fn put(path: &str) -> Self {
        Self::new(Method::PUT, path).header("x-atlassian-token", "no-check")
    }

    pub fn post(path: &str) -> Self {
        Self::new(Method::POST, path).header("x-atlassian-token", "no-check")
    }

    pub fn delete(path: &str) -> Self {
        Self::new(Method::DELETE, path).header("x-atlassian-token", "no-check")
    }

    /// A request with no default headers at all.
    pub fn raw(method: Method, path: &str) -> Self {
        Self::new(method, path)
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    pub fn admin(self) -> Self {
        self.bearer(ADMIN_PAT)
    }

    pub fn basic(self, user: &str, password: &str) -> Self {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        self.header("authorization", &format!("Basic {encoded}"))
    }

    pub fn json(mut self, value: Value) -> Self {
        self.body = Some(value.to_string());
        self.header("content-type", "application/json")
    }

    pub fn text_body(mut self, content_type: &str, body: &str) -> Self {
        self.body = Some(body.to_owned());
        self.header("content-type", content_type)
    }
}

/// A received response.
pub(super) struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Creates an active user through the REST API and returns its key.
pub(super) async fn create_user(app: &TestApp, username: &str) -> String {
    let resp = app
        .call(
            Req::post("/rest/api/admin/user")
                .admin()
                .json(serde_json::json!({
                    "userName": username,
                    "fullName": "Test User",
                    "email": format!("{username}@example.org"),
                    "password": "Initial-Secret-42",
                    "notifyViaEmail": false,
                })),
        )
        .await;
    assert_eq!(resp.status, StatusCode::CREATED, "{}", resp.text());
    resp.json()["userKey"]
        .as_str()
        .expect("a userKey")
        .to_owned()
}

/// An emulator served over TCP on 127.0.0.1:0.
pub(super) struct Served {
    pub addr: SocketAddr,
    pub emu: Emulator,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Served {
    pub async fn start(emu: Emulator) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(emu.clone().serve(listener, async {
            // A dropped sender stops the server too.
            let _ = stopped.await;
        }));
        Self {
            addr,
            emu,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let result = tokio::time::timeout(std::time::Duration::from_secs(5), task).await;
            assert!(result.is_ok(), "the server shut down in time");
        }
    }
}
