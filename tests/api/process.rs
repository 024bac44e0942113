//! The real `usersync` binary as a child process, for what an in-process [`TestApp`] cannot
//! show: a `kill -9` in the middle of work, several instances on one database, the command
//! line. [`Serve`] is one `usersync serve` with a configuration file of its own; [`cli`] is a
//! one-shot command on a test's database.
//!
//! [`TestApp`]: crate::helpers::TestApp

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// The binary cargo built for this test run.
const BIN: &str = env!("CARGO_BIN_EXE_usersync");

/// A port nobody listens on now (the listener is closed again at once), so that a server
/// can be started again on the port it had.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fresh directory holding one `usersync.toml`; removed when dropped.
pub struct ConfigDir {
    dir: PathBuf,
}

impl ConfigDir {
    /// Writes `toml` as `usersync.toml` in a new directory under the system's temporary one.
    pub fn new(toml: &str) -> ConfigDir {
        let dir = std::env::temp_dir().join(format!("usersync-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(usersync::config::DEFAULT_FILE), toml).unwrap();
        ConfigDir { dir }
    }

    /// The directory, which a process started in it reads its `usersync.toml` from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The configuration file, for `--config`.
    pub fn file(&self) -> PathBuf {
        self.dir.join(usersync::config::DEFAULT_FILE)
    }
}

impl Drop for ConfigDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One `usersync serve` process on its own port, configured by a `usersync.toml` in its own
/// working directory; killed with SIGKILL (no graceful shutdown) when dropped, which is what
/// the tests that use it want to survive.
///
/// Built with [`Serve::new`] and [`Serve::set`], then [`Serve::start`] (or [`Serve::spawn`]
/// and [`Serve::ready`] when several instances start together).
pub struct Serve {
    port: u16,
    settings: toml::Table,
    env: Vec<(String, String)>,
    config: Option<ConfigDir>,
    child: Option<Child>,
}

impl Serve {
    /// A server on a free port with `database`, the admin listener on another free port, and
    /// warnings only in its log; not started yet.
    pub fn new(database: &str) -> Serve {
        let port = free_port();
        Serve {
            port,
            settings: toml::Table::new(),
            env: Vec::new(),
            config: None,
            child: None,
        }
        .set("listen", format!("127.0.0.1:{port}"))
        .set("admin.listen", "127.0.0.1:0")
        .set("database", database)
        .set("log.level", "warn")
    }

    /// Sets one key of the configuration, by its dotted path (`delivery.lease`).
    pub fn set(mut self, key: &str, value: impl Into<toml::Value>) -> Serve {
        let mut parts: Vec<&str> = key.split('.').collect();
        let last = parts.pop().expect("a key");
        let mut table = &mut self.settings;
        for part in parts {
            table = table
                .entry(part)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .expect("a table on the way to the key");
        }
        table.insert(last.to_owned(), value.into());
        self
    }

    /// A connector `name` whose bearer token is `token` (given the server in the environment
    /// variable `token_env`, as an operator would).
    pub fn connector(self, name: &str, token_env: &str, token: &str) -> Serve {
        self.set(&format!("connectors.{name}.token_env"), token_env)
            .env(token_env, token)
    }

    /// Delivery to the Confluence at `base_url`, with the personal access token `pat` (given
    /// in the environment variable `token_env`).
    pub fn confluence(self, base_url: &str, token_env: &str, pat: &str) -> Serve {
        self.set("confluence.base_url", base_url)
            .set("confluence.token_env", token_env)
            .env(token_env, pat)
    }

    /// An environment variable of the process (the secrets the configuration names).
    pub fn env(mut self, name: &str, value: &str) -> Serve {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Writes the configuration and starts the process, without waiting for it.
    pub fn spawn(mut self) -> Serve {
        self.launch();
        self
    }

    /// Starts the process and waits until it is ready.
    pub async fn start(self) -> Serve {
        let server = self.spawn();
        server.ready().await;
        server
    }

    fn launch(&mut self) {
        assert!(self.child.is_none(), "usersync is already running");
        let config = self
            .config
            .get_or_insert_with(|| ConfigDir::new(&self.settings.to_string()));
        let child = Command::new(BIN)
            .arg("serve")
            .current_dir(config.dir())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(if std::env::var_os("TEST_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .expect("start usersync");
        self.child = Some(child);
    }

    /// Waits until `/readyz` answers 200 (the server listens and reaches its database).
    pub async fn ready(&self) {
        let client = reqwest::Client::new();
        for _ in 0..400 {
            if let Ok(r) = client.get(self.url("/readyz")).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("usersync on port {} did not become ready", self.port);
    }

    /// The SCIM and health port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The SCIM base URL of connector `connector`.
    pub fn scim(&self, connector: &str) -> String {
        self.url(&format!("/scim/v2/{connector}"))
    }

    /// `kill -9`: the process ends at once, mid-request, mid-transaction.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill -9");
            let _ = child.wait();
        }
    }

    /// Kills the process if it runs, then starts it again with the same configuration on the
    /// same port and waits until it is ready.
    pub async fn restart(&mut self) {
        self.kill();
        self.launch();
        self.ready().await;
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `usersync` as a one-shot command on `database`, run in the system's temporary directory
/// (no `usersync.toml` there) and logging warnings only; add the arguments.
pub fn cli(database: &str) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env("USERSYNC__DATABASE", database)
        .env("USERSYNC__LOG__LEVEL", "warn")
        .current_dir(std::env::temp_dir());
    cmd
}

/// Runs `cmd` to its end and asserts that it succeeded, showing its stderr if not.
pub fn succeeds(cmd: &mut Command) {
    let out = cmd.output().expect("run usersync");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `cmd` to its end: the exit code (-1 if killed by a signal), stdout and stderr.
pub fn outcome(cmd: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("run usersync");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}
