//! `TestApp`: a real usersync on a random port with a fresh database, and a client with one
//! method per call.
//!
//! The backend is SQLite unless `USERSYNC_TEST_BACKEND=postgres`; the README's test command
//! runs this binary once per backend. Logs are silent unless `TEST_LOG=1`.

use std::cell::RefCell;
use std::sync::{Arc, Mutex, Once};

use reqwest::Method;
use serde_json::{json, Value};
use time::OffsetDateTime;
use tokio::sync::oneshot;

use usersync::app::Application;
use usersync::config::{ConnectorSettings, OneOrMany, Settings};
use usersync::connectors::{generate_token, hash_hex, hash_token};
use usersync::delivery::Worker;
use usersync::emulator::{ConfluenceVersion, Emulator, EmulatorConfig};
use usersync::store::testdb::TestDb;
use usersync::store::{Backend, Store};
use usersync::targets::confluence::{ConfluenceAuth, ConfluenceClient, ConfluenceConfig, Secret};

/// The connector most tests talk to.
pub const CONNECTOR: &str = "idp";
/// A second connector, for isolation tests.
pub const OTHER: &str = "other";

/// Environment variable holding the token of [`CONNECTOR`] when a test declares it in the
/// configuration (to give it mapping rules) instead of storing it.
pub const IDP_TOKEN_ENV: &str = "USERSYNC_TEST_IDP_TOKEN";
/// Environment variable holding the Linchpin feed key of such a connector.
pub const FEED_KEY_ENV: &str = "USERSYNC_TEST_FEED_KEY";
/// The Linchpin feed key.
pub const FEED_KEY: &str = "test-feed-key-0123456789abcdef";
const IDP_TOKEN: &str = "usy_test-token-of-the-declared-idp-connector";

/// The backend chosen for this run.
pub fn backend() -> Backend {
    match std::env::var("USERSYNC_TEST_BACKEND").as_deref() {
        Ok("postgres") => Backend::Postgres,
        _ => Backend::Sqlite,
    }
}

/// Installs the process-wide subscriber, once, before any test emits an event: a stderr layer
/// when `TEST_LOG` is set (filtered by `RUST_LOG`, default `info`), and the [`LogCapture`]
/// layer. One global subscriber rather than a thread-local one per capture, because tracing
/// caches per call site whether anyone listens; a call site first hit by another test while no
/// capture was installed could otherwise stay silent for a capture installed later.
fn init_logs() {
    use tracing_subscriber::filter::{filter_fn, EnvFilter};
    use tracing_subscriber::prelude::*;
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let stderr = std::env::var("TEST_LOG").is_ok().then(|| {
            let filter =
                EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(filter)
        });
        let capture = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(|| CaptureWriter)
            .with_filter(filter_fn(|_| CAPTURE.with(|c| c.borrow().is_some())));
        // Fails only if something else installed a global subscriber first; then captures see
        // nothing and say so.
        let _ = tracing_subscriber::registry()
            .with(stderr)
            .with(capture)
            .try_init();
    });
}

thread_local! {
    static CAPTURE: RefCell<Option<Arc<Mutex<Vec<u8>>>>> = const { RefCell::new(None) };
}

/// Writes a formatted event into the current thread's capture buffer, if any.
struct CaptureWriter;

impl std::io::Write for CaptureWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        CAPTURE.with(|c| {
            if let Some(buf) = c.borrow().as_ref() {
                buf.lock().unwrap().extend_from_slice(data);
            }
        });
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Everything logged on this thread, at every level, while it lives. `#[tokio::test]` runs the
/// server spawned by [`TestApp::spawn`] on the test's own thread, so this sees the server's
/// logs (not those of database worker threads).
pub struct LogCapture {
    buf: Arc<Mutex<Vec<u8>>>,
}

impl LogCapture {
    /// Starts capturing on this thread.
    pub fn start() -> Self {
        init_logs();
        let buf = Arc::new(Mutex::new(Vec::new()));
        CAPTURE.with(|c| *c.borrow_mut() = Some(buf.clone()));
        LogCapture { buf }
    }

    /// What was logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().unwrap()).into_owned()
    }
}

impl Drop for LogCapture {
    fn drop(&mut self) {
        CAPTURE.with(|c| *c.borrow_mut() = None);
    }
}

/// A running server.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    /// The operations API's listener, `http://127.0.0.1:PORT`.
    pub admin_address: String,
    /// Token of [`CONNECTOR`].
    pub token: String,
    /// Token of [`OTHER`].
    pub other_token: String,
    /// The store, for assertions on what was written.
    pub store: Store,
    /// The server's state, for tests that drive background checks directly.
    pub state: usersync::http::state::AppState,
    /// HTTP client.
    pub client: reqwest::Client,
    /// The Confluence emulator, for tests that deliver.
    pub emulator: Option<Emulator>,
    /// A worker over the same store, driven by the test (`deliver_all`) so delivery is
    /// deterministic; the server's own worker is off unless a test turns it on.
    pub worker: Option<Worker<ConfluenceClient>>,
    /// The emulator's base URL, for tests that build their own Confluence clients.
    pub confluence_url: Option<String>,
    /// The database URL, for tests that open another store handle or read tables directly.
    pub db_url: String,
    shutdown: Option<oneshot::Sender<()>>,
    emulator_shutdown: Option<oneshot::Sender<()>>,
    _db: TestDb,
}

/// The emulator's admin token in tests.
pub const CONFLUENCE_TOKEN: &str = "emulator-admin-pat";

/// A response, read completely.
#[derive(Debug)]
pub struct TestResponse {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// Body as JSON (`Null` when empty or not JSON).
    pub body: Value,
    /// Body as text.
    pub text: String,
}

impl TestResponse {
    /// A header as a string.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the status, printing the body when it differs.
    #[track_caller]
    pub fn assert_status(&self, status: u16) -> &Self {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        self
    }

    /// Asserts a SCIM error body with this status and `scimType`.
    #[track_caller]
    pub fn assert_scim_error(&self, status: u16, scim_type: Option<&str>) {
        self.assert_status(status);
        assert_eq!(
            self.header("content-type"),
            Some("application/scim+json"),
            "{}",
            self.text
        );
        assert_eq!(
            self.body["schemas"],
            json!(["urn:ietf:params:scim:api:messages:2.0:Error"])
        );
        assert_eq!(
            self.body["status"],
            json!(status.to_string()),
            "status must be a string"
        );
        assert!(
            self.body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "detail missing"
        );
        assert_eq!(self.body["scimType"].as_str(), scim_type, "{}", self.text);
    }

    /// The `id` of the returned resource.
    pub fn id(&self) -> String {
        self.body["id"]
            .as_str()
            .expect("response has an id")
            .to_owned()
    }
}

/// Request options beyond method, path and body.
#[derive(Default, Clone)]
pub struct Opts {
    /// Replaces the default `Authorization` header; `Some("")` sends none.
    pub auth: Option<String>,
    /// `Content-Type` (default `application/scim+json`).
    pub content_type: Option<String>,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// A raw body instead of JSON.
    pub raw_body: Option<String>,
}

impl TestApp {
    /// Starts a server with default settings.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// Starts a server where [`CONNECTOR`] is declared in the configuration, with a Linchpin
    /// feed key and whatever `configure` adds (mapping rules, feed settings, a webhook).
    pub async fn spawn_with_connector(configure: impl FnOnce(&mut ConnectorSettings)) -> TestApp {
        Self::spawn_with_connector_and(configure, |_| {}).await
    }

    /// [`TestApp::spawn_with_connector`], with other settings adjusted by `settings`.
    pub async fn spawn_with_connector_and(
        configure: impl FnOnce(&mut ConnectorSettings),
        settings: impl FnOnce(&mut Settings),
    ) -> TestApp {
        let mut app = Self::spawn_with(|s| {
            // Secrets are read from the environment once at load; tests hand them over
            // directly instead of touching the process environment.
            s.secrets.set(IDP_TOKEN_ENV, IDP_TOKEN);
            s.secrets.set(FEED_KEY_ENV, FEED_KEY);
            let mut c = ConnectorSettings {
                token_env: Some(OneOrMany::One(IDP_TOKEN_ENV.to_owned())),
                ..ConnectorSettings::default()
            };
            c.linchpin.feed_key_env = Some(FEED_KEY_ENV.to_owned());
            configure(&mut c);
            s.connectors.insert(CONNECTOR.to_owned(), c);
            settings(s);
        })
        .await;
        // The declared connector wins over the stored one of the same name.
        app.token = IDP_TOKEN.to_owned();
        app
    }

    /// The connector's Linchpin feed URL, with the key.
    pub fn feed_url(&self) -> String {
        format!(
            "{}/linchpin/{CONNECTOR}/profiles.xml?key={FEED_KEY}",
            self.address
        )
    }

    /// Starts a server after `configure` adjusted the settings.
    pub async fn spawn_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
        Self::spawn_full(configure, None).await
    }

    /// [`TestApp::spawn_with_confluence`] where [`CONNECTOR`] is declared in the
    /// configuration (with a feed key) and adjusted by `configure`.
    pub async fn spawn_with_confluence_and_connector(
        version: ConfluenceVersion,
        configure: impl FnOnce(&mut ConnectorSettings),
    ) -> TestApp {
        let mut app = Self::spawn_with_confluence(version, |s| {
            s.secrets.set(IDP_TOKEN_ENV, IDP_TOKEN);
            s.secrets.set(FEED_KEY_ENV, FEED_KEY);
            let mut c = ConnectorSettings {
                token_env: Some(OneOrMany::One(IDP_TOKEN_ENV.to_owned())),
                ..ConnectorSettings::default()
            };
            c.linchpin.feed_key_env = Some(FEED_KEY_ENV.to_owned());
            configure(&mut c);
            s.connectors.insert(CONNECTOR.to_owned(), c);
        })
        .await;
        app.token = IDP_TOKEN.to_owned();
        app
    }

    /// Starts a Confluence emulator (at `version`) and a server delivering to it. The
    /// server's background worker is off; tests call [`TestApp::deliver_all`].
    pub async fn spawn_with_confluence(
        version: ConfluenceVersion,
        configure: impl FnOnce(&mut Settings),
    ) -> TestApp {
        let mut config = EmulatorConfig::new(CONFLUENCE_TOKEN);
        config.version = version;
        Self::spawn_full(
            |s| {
                s.delivery.enabled = false;
                s.delivery.retry_schedule =
                    vec![usersync::config::Dur(std::time::Duration::ZERO); 3];
                s.delivery.jitter = 0.0;
                configure(s);
            },
            Some(config),
        )
        .await
    }

    async fn spawn_full(
        configure: impl FnOnce(&mut Settings),
        emulator: Option<EmulatorConfig>,
    ) -> TestApp {
        init_logs();
        let db = TestDb::create(backend()).await;
        let mut settings = Settings::defaults();
        settings.listen = "127.0.0.1:0".into();
        settings.admin.listen = "127.0.0.1:0".into();
        settings.database = db.url.clone();
        // One server per test: the multi-instance check of `serve` (OAuth signing keys shared
        // by every instance) does not apply; tests of that check set it back.
        settings.store.single_instance = true;
        configure(&mut settings);
        // Stored connectors: their tokens are hashed in the database, as in production.
        let store = usersync::app::open_store(&settings)
            .await
            .expect("open store");
        let token = generate_token();
        let other_token = generate_token();
        let now = OffsetDateTime::now_utc();
        store
            .create_connector(CONNECTOR, &hash_hex(&hash_token(&token)), now)
            .await
            .unwrap();
        store
            .create_connector(OTHER, &hash_hex(&hash_token(&other_token)), now)
            .await
            .unwrap();
        let (emulator, emulator_shutdown, confluence) = match emulator {
            Some(config) => {
                let emu = Emulator::new(config);
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let url = format!("http://{}", listener.local_addr().unwrap());
                let (tx, rx) = oneshot::channel::<()>();
                tokio::spawn(emu.clone().serve(listener, async move {
                    let _ = rx.await;
                }));
                let cfg =
                    ConfluenceConfig::new(url, ConfluenceAuth::Pat(Secret::new(CONFLUENCE_TOKEN)));
                (Some(emu), Some(tx), Some(cfg))
            }
            None => (None, None, None),
        };
        let app = Application::build_with_confluence(settings, confluence.clone())
            .await
            .expect("build app");
        let confluence_url = confluence.as_ref().map(|c| c.base_url.clone());
        let worker = confluence.map(|c| {
            Worker::with_connectors(
                app.state().store.clone(),
                ConfluenceClient::new(c).expect("client"),
                app.state().settings.delivery.clone(),
                app.state().runtime.lookup(),
            )
            .with_metrics(app.state().metrics.clone())
        });
        let address = format!("http://{}", app.local_addr());
        let admin_address = app
            .admin_addr()
            .map(|a| format!("http://{a}"))
            .unwrap_or_default();
        let store = app.state().store.clone();
        let state = app.state().clone();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        }));
        TestApp {
            address,
            admin_address,
            token,
            other_token,
            store,
            state,
            client: reqwest::Client::new(),
            emulator,
            worker,
            confluence_url,
            db_url: db.url.clone(),
            shutdown: Some(tx),
            emulator_shutdown,
            _db: db,
        }
    }

    /// URL of a path under the connector's SCIM base.
    pub fn url(&self, path: &str) -> String {
        format!("{}/scim/v2/{CONNECTOR}{path}", self.address)
    }

    /// Sends a request to a path under the connector's base.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        opts: Opts,
    ) -> TestResponse {
        self.send_url(method, &self.url(path), body, opts).await
    }

    /// Sends a request to any URL.
    pub async fn send_url(
        &self,
        method: Method,
        url: &str,
        body: Option<Value>,
        opts: Opts,
    ) -> TestResponse {
        let mut req = self.client.request(method, url);
        match opts.auth.as_deref() {
            None => req = req.header("Authorization", format!("Bearer {}", self.token)),
            Some("") => {}
            Some(a) => req = req.header("Authorization", a),
        }
        for (k, v) in &opts.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let content_type = opts
            .content_type
            .clone()
            .unwrap_or_else(|| "application/scim+json".into());
        if let Some(raw) = opts.raw_body {
            req = req.header("Content-Type", content_type).body(raw);
        } else if let Some(b) = body {
            req = req.header("Content-Type", content_type).body(b.to_string());
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

    /// `GET`.
    pub async fn get(&self, path: &str) -> TestResponse {
        self.send(Method::GET, path, None, Opts::default()).await
    }

    /// `POST`.
    pub async fn post(&self, path: &str, body: Value) -> TestResponse {
        self.send(Method::POST, path, Some(body), Opts::default())
            .await
    }

    /// `PUT`.
    pub async fn put(&self, path: &str, body: Value) -> TestResponse {
        self.send(Method::PUT, path, Some(body), Opts::default())
            .await
    }

    /// `PATCH`.
    pub async fn patch(&self, path: &str, body: Value) -> TestResponse {
        self.send(Method::PATCH, path, Some(body), Opts::default())
            .await
    }

    /// `DELETE`.
    pub async fn delete(&self, path: &str) -> TestResponse {
        self.send(Method::DELETE, path, None, Opts::default()).await
    }

    /// Creates a user and returns its id.
    pub async fn create_user(&self, body: Value) -> String {
        let r = self.post("/Users", body).await;
        r.assert_status(201);
        r.id()
    }

    /// Creates a minimal user named `user_name` and returns its id.
    pub async fn user(&self, user_name: &str) -> String {
        self.create_user(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": user_name,
            "active": true,
        }))
        .await
    }

    /// Creates a group and returns its id.
    pub async fn group(&self, name: &str, members: &[&str]) -> String {
        let members: Vec<Value> = members.iter().map(|m| json!({"value": m})).collect();
        let r = self
            .post(
                "/Groups",
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name, "members": members}),
            )
            .await;
        r.assert_status(201);
        r.id()
    }

    /// A PATCH with these operations.
    pub async fn patch_ops(&self, path: &str, ops: Value) -> TestResponse {
        self.patch(
            path,
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops}),
        )
        .await
    }

    /// Ids of a group's members, sorted.
    pub async fn member_ids(&self, group_id: &str) -> Vec<String> {
        let r = self.get(&format!("/Groups/{group_id}")).await;
        r.assert_status(200);
        let mut ids: Vec<String> = r.body["members"]
            .as_array()
            .map(|m| {
                m.iter()
                    .filter_map(|x| x["value"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids
    }

    /// Re-reads the queue depth for back-pressure now, instead of waiting for the monitor.
    pub async fn state_refresh(&self) {
        self.state.refresh_saturation().await;
    }

    /// Keys currently in the sync queue.
    pub async fn queued(&self) -> Vec<String> {
        self.store
            .queue_rows(None)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.key.id)
            .collect()
    }
}

impl TestApp {
    /// Delivers every due key to the emulator, now.
    pub async fn deliver_all(&self) -> usize {
        self.worker
            .as_ref()
            .expect("spawned with a Confluence emulator")
            .drain()
            .await
            .expect("deliver")
    }

    /// The emulator.
    pub fn confluence(&self) -> &Emulator {
        self.emulator
            .as_ref()
            .expect("spawned with a Confluence emulator")
    }

    /// Rows of the sync queue.
    pub async fn queue(&self) -> Vec<usersync::store::queue::QueueRow> {
        self.store.queue_rows(None).await.unwrap()
    }
}

impl TestApp {
    /// Creates an admin API token with `role` (as `usersync admin token create` does) and
    /// returns it.
    pub async fn admin_token(&self, name: &str, role: usersync::store::admin::AdminRole) -> String {
        let token = usersync::connectors::generate_admin_token();
        let audit = usersync::store::audit::AdminAction {
            connector: String::new(),
            token: "(test)".into(),
            action: "admin_token.create".into(),
            target_kind: Some("admin_token".into()),
            target: Some(name.into()),
            outcome: "ok".into(),
        };
        self.store
            .create_admin_token(
                name,
                role,
                &hash_hex(&hash_token(&token)),
                OffsetDateTime::now_utc(),
                &audit,
            )
            .await
            .expect("create admin token");
        token
    }

    /// Sends a request to the operations API: `path` is under `/admin/api/v1`; `token` is
    /// sent as a Bearer token when given.
    pub async fn admin(&self, method: Method, path: &str, token: Option<&str>) -> TestResponse {
        let url = format!("{}/admin/api/v1{path}", self.admin_address);
        let auth = match token {
            Some(t) => format!("Bearer {t}"),
            None => String::new(),
        };
        self.send_url(
            method,
            &url,
            None,
            Opts {
                auth: Some(auth),
                ..Opts::default()
            },
        )
        .await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(tx) = self.emulator_shutdown.take() {
            let _ = tx.send(());
        }
    }
}
