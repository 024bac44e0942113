//! Tests of the client against the in-crate emulator served over real TCP (127.0.0.1:0),
//! so connection resets, refused connections and timeouts are real socket events
//! (docs/reference/design.md "Targets are tested against a real HTTP server"). Each test starts its
//! own emulator.

mod auth;
mod failures;
mod lifecycle;
mod versions;

use std::time::Duration;

use serde_json::json;
use tokio::sync::oneshot;

use super::{ConfluenceAuth, ConfluenceClient, ConfluenceConfig, Secret};
use crate::emulator::{CallRecord, ConfluenceVersion, Emulator, EmulatorConfig, Knobs, Seed};
use crate::targets::{ErrorClass, TargetError};

/// PAT of the emulator's built-in system administrator `admin`.
const ADMIN_PAT: &str = "admin-pat-0001";
/// Basic-auth password of `admin`.
const ADMIN_PASSWORD: &str = "admin-password";
/// PAT of `alice`, a licensed user who is not an administrator.
const ALICE_PAT: &str = "alice-pat-0002";

/// alice (licensed non-admin) and an `engineering` group.
fn seed() -> Seed {
    serde_json::from_value(json!({
        "users": [
            {"username": "alice", "fullName": "Alice Example", "email": "alice@example.org",
             "pat": ALICE_PAT, "groups": ["confluence-users"]}
        ],
        "groups": ["engineering"]
    }))
    .expect("the seed parses")
}

/// An emulator at `version` below `context_path`, admin with PAT and password.
fn emulator_config(version: ConfluenceVersion, context_path: &str) -> EmulatorConfig {
    let mut config = EmulatorConfig::new(ADMIN_PAT);
    config.admin_password = Some(ADMIN_PASSWORD.to_owned());
    config.version = version;
    config.context_path = context_path.to_owned();
    config.seed = Some(seed());
    config.knobs.delete_delay_ms = 30;
    config
}

/// A served emulator; dropping it stops the server.
struct Harness {
    emu: Emulator,
    /// `http://127.0.0.1:<port><context path>`.
    base_url: String,
    _stop: oneshot::Sender<()>,
}

impl Harness {
    /// A 10.2 emulator at the root.
    async fn start() -> Self {
        Self::on(ConfluenceVersion::V10_2).await
    }

    /// An emulator at `version`, at the root.
    async fn on(version: ConfluenceVersion) -> Self {
        Self::serve(emulator_config(version, "")).await
    }

    async fn serve(config: EmulatorConfig) -> Self {
        let context = config.context_path.trim_end_matches('/').to_owned();
        let emu = Emulator::try_new(config).expect("the seed applies");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("a local address");
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(emu.clone().serve(listener, async {
            // A dropped sender stops the server too.
            let _ = stopped.await;
        }));
        Self {
            emu,
            base_url: format!("http://{addr}{context}"),
            _stop: stop,
        }
    }

    /// Client configuration with short timeouts.
    fn config(&self, auth: ConfluenceAuth) -> ConfluenceConfig {
        ConfluenceConfig {
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            ..ConfluenceConfig::new(self.base_url.clone(), auth)
        }
    }

    fn client(&self, auth: ConfluenceAuth) -> ConfluenceClient {
        ConfluenceClient::new(self.config(auth)).expect("a valid client config")
    }

    /// The system administrator with its PAT.
    fn admin(&self) -> ConfluenceClient {
        self.client(ConfluenceAuth::Pat(Secret::new(ADMIN_PAT)))
    }

    /// The system administrator with Basic auth.
    fn admin_basic(&self) -> ConfluenceClient {
        self.client(ConfluenceAuth::Basic {
            username: "admin".to_owned(),
            password: Secret::new(ADMIN_PASSWORD),
        })
    }

    /// Changes knobs.
    fn knobs(&self, change: impl FnOnce(&mut Knobs)) {
        let mut knobs = self.emu.knobs();
        change(&mut knobs);
        self.emu.set_knobs(knobs);
    }

    /// The emulator's call log.
    fn calls(&self) -> Vec<CallRecord> {
        self.emu.calls()
    }

    /// Number of calls whose path (without query) ends with `suffix`.
    fn count(&self, method: &str, suffix: &str) -> usize {
        self.calls()
            .iter()
            .filter(|c| c.method == method && c.path.ends_with(suffix))
            .count()
    }
}

/// The error's class, failing the test on success.
fn class_of<T: std::fmt::Debug>(result: Result<T, TargetError>) -> (ErrorClass, TargetError) {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(e) => (e.class(), e),
    }
}
