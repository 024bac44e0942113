//! Typed settings: compiled defaults, then `usersync.toml` (or `--config PATH`), then
//! `USERSYNC__SECTION__KEY` environment variables; validated once at start with messages that
//! say what to fix.
//!
//! Secrets never sit in the file: tokens and passwords are read from environment variables
//! whose *names* the file gives (`token_env = "USERSYNC_ENTRA_TOKEN"`).

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::scim::schema::SchemaRegistry;
use crate::store::{redact_url, SqliteSync};

mod connector;
pub mod pull;
mod secrets;

/// The value types settings are written in, under the names the settings use.
pub use crate::values::{Dur, OneOrMany};
pub use connector::{
    audience_resource, is_guid, BasicSettings, ConnectorSettings, EntraJwtSettings, OAuthSettings,
    WifSettings, ENTRA_NON_GALLERY_AUDIENCE, MIN_SIGNING_KEY_BYTES,
};
pub use secrets::Secrets;

/// Prefix of environment overrides: `USERSYNC__LIMITS__MAX_BODY_BYTES=2000000`.
pub const ENV_PREFIX: &str = "USERSYNC__";
/// The configuration file read from the working directory when `--config` is not given.
pub const DEFAULT_FILE: &str = "usersync.toml";

/// A configuration problem, worded for the operator (defined in the leaf [`crate::errors`], so
/// the settings of every module can report it without importing `config`).
pub use crate::errors::ConfigError;

/// Everything usersync can be told.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address the SCIM server listens on.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// `sqlite://PATH` (embedded default) or `postgres://USER@HOST/DB`.
    #[serde(default = "default_database")]
    pub database: String,
    /// The public base URL (scheme and host, maybe a path prefix) used in `meta.location`
    /// and `Location`, e.g. `https://usersync.example.com`. When unset, the request's `Host`
    /// header is used with `http://`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// Folder of extra schema documents (custom extensions). Read at start.
    #[serde(default = "default_schemas_dir")]
    pub schemas_dir: PathBuf,
    /// Connection limits of the HTTP server.
    #[serde(default)]
    pub server: ServerSettings,
    /// Request and protocol limits.
    #[serde(default)]
    pub limits: Limits,
    /// Database pool settings.
    #[serde(default)]
    pub store: StoreSettings,
    /// Logging.
    #[serde(default)]
    pub log: LogSettings,
    /// Authentication settings shared by all connectors.
    #[serde(default)]
    pub auth: AuthSettings,
    /// When SCIM writes are refused with 429.
    #[serde(default)]
    pub backpressure: Backpressure,
    /// The delivery worker.
    #[serde(default)]
    pub delivery: crate::delivery::settings::DeliverySettings,
    /// Reconcile (full sync against Confluence): schedule, safety guard, protected accounts.
    #[serde(default)]
    pub reconcile: crate::reconcile::settings::ReconcileSettings,
    /// The audit trail (docs/audit.md).
    #[serde(default)]
    pub audit: AuditSettings,
    /// The operations API and metrics listener (docs/admin-api.md).
    #[serde(default)]
    pub admin: AdminSettings,
    /// The Confluence Data Center that users and groups are delivered to. Without it the SCIM
    /// server runs and the sync queue fills, but nothing is delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confluence: Option<crate::targets::confluence::ConfluenceSettings>,
    /// IdP connections declared in the file, by name.
    #[serde(default)]
    pub connectors: BTreeMap<String, ConnectorSettings>,
    /// Values of the environment variables the connectors name, read once at load. Never
    /// serialized, and `Debug` shows only the names.
    #[serde(skip)]
    pub secrets: Secrets,
    /// Where `check-config` reads Linchpin's field list.
    #[serde(default)]
    pub linchpin: crate::targets::linchpin::LinchpinSettings,
}

fn default_listen() -> String {
    "127.0.0.1:8080".to_owned()
}
fn default_database() -> String {
    "sqlite://usersync.db".to_owned()
}
fn default_schemas_dir() -> PathBuf {
    PathBuf::from("schemas")
}

/// Request and protocol limits (advertised in `/ServiceProviderConfig` where the RFC has a
/// field for them).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request body in bytes, also Bulk `maxPayloadSize`.
    pub max_body_bytes: usize,
    /// Time after which a request is answered 503 with `Retry-After`.
    pub request_timeout: Dur,
    /// Bulk `maxOperations`.
    pub bulk_max_operations: usize,
    /// Page size when the client gives no `count`.
    pub default_page_size: usize,
    /// Largest page returned (`filter.maxResults`).
    pub max_page_size: usize,
    /// Longest filter accepted, in bytes.
    pub filter_max_len: usize,
    /// Deepest filter nesting accepted.
    pub filter_max_depth: usize,
    /// Most values one multi-valued attribute of a resource may hold (`emails`, `roles`,
    /// `entitlements`...; group members are not counted). More is a `400 invalidValue`.
    pub max_values_per_attribute: usize,
    /// Most work one PATCH may ask for: each operation costs 1 plus the values it carries and
    /// the values of the attribute it touches. More is a `400 invalidValue`.
    pub max_patch_cost: u64,
    /// Largest list response body, in bytes: a page that would be larger ends early (fewer
    /// items, `itemsPerPage` says how many; the first item is always sent).
    pub max_response_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            request_timeout: Dur(Duration::from_secs(30)),
            bulk_max_operations: 1000,
            default_page_size: 100,
            max_page_size: 1000,
            filter_max_len: 4096,
            filter_max_depth: 32,
            max_values_per_attribute: 1000,
            max_patch_cost: 100_000,
            max_response_bytes: 8 * 1024 * 1024,
        }
    }
}

/// Connection limits of the HTTP server (`http/serve.rs`): what a slow, silent or absent
/// client may hold.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Connections open at once; more wait in the kernel's accept queue. Keep it well under
    /// the process's file-descriptor limit (`LimitNOFILE` in deploy/usersync.service).
    pub max_connections: usize,
    /// Time from the first byte of a request to the end of its head (slow-loris).
    pub header_read_timeout: Dur,
    /// A connection with no request being served and no bytes moving for this long is
    /// closed (silent, half-open and idle keep-alive connections); so is one whose response
    /// the client has not read for this long.
    pub idle_timeout: Dur,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            header_read_timeout: Dur(Duration::from_secs(10)),
            idle_timeout: Dur(Duration::from_secs(30)),
        }
    }
}

/// `[audit]`: how long the audit trail keeps its rows (docs/audit.md).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSettings {
    /// Rows older than this are pruned in the background, on one instance at a time;
    /// `"0s"` keeps them for ever.
    pub retention: Dur,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            retention: Dur(Duration::from_secs(90 * 86_400)),
        }
    }
}

/// `[admin]`: the operations API (`/admin/api/v1`) and `/metrics`, on a listener of their
/// own so the SCIM port can face the internet while this one stays inside
/// (docs/admin-api.md).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSettings {
    /// Serve it at all.
    pub enabled: bool,
    /// Where it listens: loopback by default. Give another address only behind a network
    /// boundary you trust (a Kubernetes pod network, a management VLAN), and with TLS in
    /// front of it: admin tokens travel in the `Authorization` header.
    pub listen: String,
    /// A web console session ends after this long without a request (docs/console.md).
    pub session_idle: Dur,
}

impl Default for AdminSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: "127.0.0.1:8081".to_owned(),
            session_idle: Dur(Duration::from_secs(30 * 60)),
        }
    }
}

impl AdminSettings {
    /// The address to bind, parsed.
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.listen.parse().map_err(|_| {
            ConfigError(format!(
                "admin.listen = {:?} is not an address such as \"127.0.0.1:8081\"",
                self.listen
            ))
        })
    }
}

/// Database pool settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// Connections (PostgreSQL) or readers (SQLite).
    pub max_connections: u32,
    /// How long a request waits for a connection before it gets 429.
    pub acquire_timeout: Dur,
    /// SQLite `synchronous`: `full` (every commit survives power loss) or `normal`.
    pub sqlite_synchronous: SqliteSync,
    /// PostgreSQL: exactly one instance uses the database. State that every instance must
    /// share (the OAuth signing keys) may then be left to the process, with a warning;
    /// otherwise `serve` refuses to start without it ([`Settings::check_shared_state`]).
    pub single_instance: bool,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            max_connections: 8,
            acquire_timeout: Dur(Duration::from_secs(2)),
            sqlite_synchronous: SqliteSync::Full,
            single_instance: false,
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable.
    #[default]
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Logging.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// `pretty` or `json`.
    pub format: LogFormat,
    /// A tracing filter such as `info` or `usersync=debug,info` (`RUST_LOG` wins if set).
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Pretty,
            level: "info".to_owned(),
        }
    }
}

/// Back-pressure: SCIM writes are answered 429 with `Retry-After`, never 5xx, when delivery
/// falls this far behind (docs/reference/design.md "Back-pressure is 429, never 5xx"; Entra and
/// Okta both honour `Retry-After`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Backpressure {
    /// Pending keys in the sync queue above which writes get 429. The queue holds one key per
    /// resource, so it only grows this large when Confluence is unreachable for long.
    pub max_queue_depth: i64,
    /// The `Retry-After` sent with those 429s.
    pub retry_after: Dur,
}

impl Default for Backpressure {
    fn default() -> Self {
        Self {
            max_queue_depth: 1_000_000,
            retry_after: Dur(Duration::from_secs(30)),
        }
    }
}

/// Authentication settings shared by all connectors.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// How long the old token of a stored connector keeps working after
    /// `usersync connector rotate`.
    pub token_rotation_grace: Dur,
    /// Signing keys fetched from a JWKS URL are fetched again on first use after this age.
    /// If that fetch fails, the keys already held stay in use (MSREF-WIF FAQ).
    pub jwks_max_age: Dur,
    /// A token naming a key id we do not hold triggers a new fetch of the JWKS, but at most
    /// this often per URL, so forged key ids cannot make us hammer the IdP.
    pub jwks_min_refresh: Dur,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            token_rotation_grace: Dur(Duration::from_secs(24 * 3600)),
            jwks_max_age: Dur(Duration::from_secs(3600)),
            jwks_min_refresh: Dur(Duration::from_secs(60)),
        }
    }
}

impl Settings {
    /// The compiled defaults: no file, no environment (the embedded setup).
    pub fn defaults() -> Settings {
        Settings::deserialize(toml::Value::Table(toml::Table::new()))
            .expect("the defaults deserialize")
    }

    /// Loads the settings: `path` if given (it must exist), else `usersync.toml` in the
    /// working directory if present, else defaults; then environment overrides.
    pub fn load(path: Option<&Path>) -> Result<Settings, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_with_env(path, &env)
    }

    /// [`Settings::load`] with an explicit environment (for tests).
    pub fn load_with_env(
        path: Option<&Path>,
        env: &[(String, String)],
    ) -> Result<Settings, ConfigError> {
        let text = match path {
            Some(p) => Some(
                std::fs::read_to_string(p)
                    .map_err(|e| ConfigError(format!("cannot read {}: {e}", p.display())))?,
            ),
            None => match std::fs::read_to_string(DEFAULT_FILE) {
                Ok(t) => Some(t),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(ConfigError(format!("cannot read {DEFAULT_FILE}: {e}"))),
            },
        };
        let file_name = path
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| DEFAULT_FILE.to_owned());
        let mut table: toml::Table = match text {
            Some(t) => t.parse().map_err(|e: toml::de::Error| {
                ConfigError(format!("{file_name} is not valid TOML: {e}"))
            })?,
            None => toml::Table::new(),
        };
        apply_env(&mut table, env)?;
        let mut settings = Settings::deserialize(toml::Value::Table(table)).map_err(|e| {
            ConfigError(format!(
                "{e} (check {file_name} and any {ENV_PREFIX}* environment variables)"
            ))
        })?;
        let names: Vec<String> = settings.secret_names().map(str::to_owned).collect();
        settings.secrets = Secrets::capture(names.iter().map(String::as_str), env);
        settings.validate()?;
        settings.confluence_config()?;
        Ok(settings)
    }

    /// The names of every environment variable the settings read a secret from: the
    /// connectors' credentials, feed keys and webhook secrets, Confluence's and Linchpin's
    /// credentials. Their values are read once, at load, into [`Settings::secrets`].
    pub fn secret_names(&self) -> impl Iterator<Item = &str> {
        self.connectors
            .values()
            .flat_map(|c| c.env_names())
            .chain(self.confluence.iter().flat_map(|c| c.env_names()))
            .chain(self.linchpin.env_names())
    }

    /// The value of the secret variable `name`, as read at load.
    fn secret(&self, name: &str) -> Option<String> {
        self.secrets.get(name).map(str::to_owned)
    }

    /// The Confluence client's configuration from `[confluence]`, with its secret; `None`
    /// without a `[confluence]` section.
    pub fn confluence_config(
        &self,
    ) -> Result<Option<crate::targets::confluence::ConfluenceConfig>, ConfigError> {
        self.confluence
            .as_ref()
            .map(|c| c.resolve(&|v| self.secret(v)).map_err(|e| ConfigError(e.0)))
            .transpose()
    }

    /// The credentials `[linchpin]` names for reading Linchpin's field list.
    pub fn linchpin_credentials(
        &self,
    ) -> Result<crate::targets::linchpin::fields::Credentials, ConfigError> {
        self.linchpin.credentials(&|v| self.secret(v))
    }

    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.listen_addr()?;
        if self.admin.enabled {
            let admin = self.admin.listen_addr()?;
            let scim = self.listen_addr()?;
            let overlaps = scim.ip() == admin.ip()
                || scim.ip().is_unspecified()
                || admin.ip().is_unspecified();
            if admin.port() != 0 && admin.port() == scim.port() && overlaps {
                return Err(ConfigError(format!(
                    "admin.listen = {:?} takes the SCIM listener's port ({:?}); give the \
                     operations API a port of its own",
                    self.admin.listen, self.listen
                )));
            }
        }
        if !(self.database.starts_with("sqlite:")
            || self.database.starts_with("postgres:")
            || self.database.starts_with("postgresql:"))
        {
            return Err(ConfigError(format!(
                "database = {:?}: use \"sqlite://PATH\" or \"postgres://USER@HOST/DB\"",
                redact_url(&self.database)
            )));
        }
        if let Some(url) = &self.public_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError(format!(
                    "public_url = {:?}: must start with http:// or https://",
                    redact_url(url)
                )));
            }
        }
        let srv = &self.server;
        if srv.max_connections == 0
            || srv.max_connections > u32::MAX as usize
            || srv.header_read_timeout.0.is_zero()
            || srv.idle_timeout.0.is_zero()
        {
            return Err(ConfigError(
                "server: max_connections must be at least 1, header_read_timeout and \
                 idle_timeout more than 0"
                    .to_owned(),
            ));
        }
        let l = &self.limits;
        if l.max_page_size == 0 || l.default_page_size == 0 || l.default_page_size > l.max_page_size
        {
            return Err(ConfigError(
                "limits: default_page_size must be between 1 and max_page_size".to_owned(),
            ));
        }
        self.delivery.validate()?;
        self.reconcile.validate()?;
        if self.backpressure.max_queue_depth < 1 {
            return Err(ConfigError(
                "backpressure.max_queue_depth must be at least 1".to_owned(),
            ));
        }
        if l.max_values_per_attribute == 0 || l.max_patch_cost < 10 {
            return Err(ConfigError(
                "limits.max_values_per_attribute must be at least 1 and limits.max_patch_cost \
                 at least 10"
                    .to_owned(),
            ));
        }
        if l.max_response_bytes < 64 * 1024 {
            return Err(ConfigError(
                "limits.max_response_bytes must be at least 65536".to_owned(),
            ));
        }
        if l.max_body_bytes < 1024 {
            return Err(ConfigError(
                "limits.max_body_bytes must be at least 1024".to_owned(),
            ));
        }
        self.validate_connectors()
    }

    /// What several instances behind one load balancer must share, checked when `serve`
    /// starts: an OAuth connector without `signing_key_env` signs its access tokens with a
    /// random key of the process, so a token issued by one instance fails on the others (and
    /// after a restart). On PostgreSQL, the multi-instance backend, that refuses the start
    /// unless `store.single_instance = true` says there is one instance; then, and on SQLite
    /// (one process owns the database), it is a warning, returned for the caller to log.
    pub fn check_shared_state(&self) -> Result<Vec<String>, ConfigError> {
        let unshared: Vec<&str> = self
            .connectors
            .iter()
            .filter(|(_, c)| {
                c.oauth
                    .as_ref()
                    .is_some_and(|o| o.signing_key_env.is_none())
            })
            .map(|(name, _)| name.as_str())
            .collect();
        if unshared.is_empty() {
            return Ok(Vec::new());
        }
        let sqlite = self.database.starts_with("sqlite:");
        if !sqlite && !self.store.single_instance {
            return Err(ConfigError(format!(
                "[connectors.{}.oauth] has no signing_key_env: its access tokens would be signed \
                 with a random key of each instance and fail on the others. Set signing_key_env \
                 to a variable holding the same key (32 bytes or more) on every instance, or set \
                 [store] single_instance = true when only one instance uses this database",
                unshared.join("/")
            )));
        }
        Ok(unshared
            .iter()
            .map(|name| {
                format!(
                    "[connectors.{name}.oauth] has no signing_key_env: access tokens stop \
                     working on restart"
                )
            })
            .collect())
    }

    /// Checks the connectors' names and credentials, and that no credential is shared.
    pub fn validate_connectors(&self) -> Result<(), ConfigError> {
        for (name, c) in &self.connectors {
            validate_connector_name(name)
                .and_then(|()| c.validate(&self.secrets))
                .map_err(|e| e.at(format!("[connectors.{name}]")))?;
        }
        connector::check_distinct(&self.connectors, &self.secrets)
    }

    /// The listen address.
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.listen.parse().map_err(|_| {
            ConfigError(format!(
                "listen = {:?} is not an address such as \"127.0.0.1:8080\"",
                self.listen
            ))
        })
    }

    /// The SCIM schemas: the built-in ones, then every `*.json` document of `schemas_dir`
    /// (custom extensions), in file-name order, when that folder exists. Reading the folder
    /// happens here so that `scim/` stays free of I/O.
    pub fn load_schemas(&self) -> Result<SchemaRegistry, ConfigError> {
        let dir = &self.schemas_dir;
        let mut docs = Vec::new();
        if dir.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
                .map_err(|e| {
                    ConfigError(format!(
                        "cannot read schema directory {}: {e}",
                        dir.display()
                    ))
                })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            files.sort();
            for path in files {
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    ConfigError(format!("cannot read schema file {}: {e}", path.display()))
                })?;
                docs.push((path.display().to_string(), text));
            }
        }
        SchemaRegistry::with_extensions(docs).map_err(|e| ConfigError(e.to_string()))
    }

    /// The effective configuration as TOML, with every URL's secrets redacted
    /// ([`redact_url`]: userinfo passwords, `?password=` and the like), whichever setting
    /// holds it (`database`, `public_url`, Confluence and Linchpin base URLs, webhook URLs).
    /// Secrets proper are never part of it: the connectors name their environment variables
    /// only.
    pub fn redacted_toml(&self) -> String {
        match toml::to_string_pretty(self) {
            Ok(text) => {
                text.lines()
                    .map(redact_strings)
                    .collect::<Vec<_>>()
                    .join("\n")
                    + "\n"
            }
            Err(e) => format!("# cannot render: {e}\n"),
        }
    }
}

/// Applies [`redact_url`] to every quoted string of one line of TOML that looks like a URL
/// (working on the text keeps the settings' order, which a TOML tree would sort).
fn redact_strings(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(open) = rest.find(['"', '\'']) {
        let quote = rest.as_bytes()[open] as char;
        out.push_str(&rest[..=open]);
        let body = &rest[open + 1..];
        // The closing quote: the next one not escaped (literal strings have no escapes).
        let mut close = None;
        let mut escaped = false;
        for (i, c) in body.char_indices() {
            match c {
                '\\' if quote == '"' && !escaped => escaped = true,
                c if c == quote && !escaped => {
                    close = Some(i);
                    break;
                }
                _ => escaped = false,
            }
        }
        let Some(close) = close else {
            out.push_str(body);
            return out;
        };
        let text = &body[..close];
        if text.contains("://") || text.contains('@') {
            out.push_str(&redact_url(text));
        } else {
            out.push_str(text);
        }
        out.push(quote);
        rest = &body[close + 1..];
    }
    out.push_str(rest);
    out
}

/// `Debug` shows what `check-config` shows (URLs redacted) plus the names of the secret
/// variables, never a secret: settings end up in panic messages and test output.
impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("effective", &self.redacted_toml())
            .field("secrets", &self.secrets)
            .finish()
    }
}

/// Connector names are URL path segments and log fields: lower-case letters, digits, `-`,
/// and `_` only for names that already exist (see [`validate_new_connector_name`]).
pub fn validate_connector_name(name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ConfigError(format!(
            "connector name {name:?} must be 1-64 characters of a-z, 0-9 and '-'"
        )))
    }
}

/// The rule for a connector created from now on: [`validate_connector_name`] without `_`.
/// The name is the last segment of the SCIM base URL, and Okta refuses a base URL containing
/// an underscore (docs/idp/okta.md). Names with `_` that already exist keep working; `usersync
/// check-config` warns about them ([`connector_name_warning`]).
pub fn validate_new_connector_name(name: &str) -> Result<(), ConfigError> {
    validate_connector_name(name)?;
    if name.contains('_') {
        return Err(ConfigError(format!(
            "connector name {name:?} contains '_', which Okta refuses in a SCIM base URL \
             (/scim/v2/{name}); use {:?} instead",
            suggest_connector_name(name)
        )));
    }
    Ok(())
}

/// Why an existing connector name should change, if it should: the warning `check-config`
/// prints for a name with `_`.
pub fn connector_name_warning(name: &str) -> Option<String> {
    name.contains('_').then(|| {
        format!(
            "connector name {name:?} contains '_': it keeps working, but Okta refuses a SCIM \
             base URL with '_', and new connectors may not use it; consider {:?}",
            suggest_connector_name(name)
        )
    })
}

/// `okta_prod` → `okta-prod`: `_` replaced by `-`, runs of `-` collapsed, none at either end.
pub fn suggest_connector_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        let c = if c == '_' { '-' } else { c };
        if c == '-' && (out.is_empty() || out.ends_with('-')) {
            continue;
        }
        out.push(c);
    }
    let trimmed = out.trim_end_matches('-');
    if trimmed.is_empty() {
        "idp".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// Applies `USERSYNC__A__B=value` overrides to the table. Values are read as TOML when they
/// parse as a TOML value (`42`, `true`, `["a", "b"]`), otherwise as plain strings.
fn apply_env(table: &mut toml::Table, env: &[(String, String)]) -> Result<(), ConfigError> {
    let mut vars: Vec<&(String, String)> = env
        .iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect();
    vars.sort();
    for (key, raw) in vars {
        let path: Vec<String> = key[ENV_PREFIX.len()..]
            .split("__")
            .map(str::to_ascii_lowercase)
            .collect();
        if path.iter().any(String::is_empty) {
            return Err(ConfigError(format!(
                "environment variable {key}: empty key segment"
            )));
        }
        let value = format!("v = {raw}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(raw.clone()));
        let mut cur = &mut *table;
        for (i, seg) in path.iter().enumerate() {
            if i + 1 == path.len() {
                cur.insert(seg.clone(), value.clone());
                break;
            }
            let next = cur
                .entry(seg.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            cur = match next {
                toml::Value::Table(t) => t,
                _ => {
                    return Err(ConfigError(format!(
                        "environment variable {key}: {seg} is not a section"
                    )))
                }
            };
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn load(file: &str, vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let dir = std::env::temp_dir().join(format!("usersync-cfg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("usersync.toml");
        std::fs::write(&path, file).unwrap();
        let r = Settings::load_with_env(Some(&path), &env(vars));
        let _ = std::fs::remove_dir_all(dir);
        r
    }

    #[test]
    fn defaults_are_the_embedded_setup() {
        let s = load("", &[]).unwrap();
        assert_eq!(s.listen, "127.0.0.1:8080");
        assert_eq!(s.database, "sqlite://usersync.db");
        assert!(s.connectors.is_empty());
    }

    #[test]
    fn audit_retention_is_a_duration_defaulting_to_ninety_days() {
        assert_eq!(
            load("", &[]).unwrap().audit.retention,
            Dur(Duration::from_secs(90 * 86_400))
        );
        let s = load("[audit]\nretention = \"30d\"\n", &[]).unwrap();
        assert_eq!(s.audit.retention, Dur(Duration::from_secs(30 * 86_400)));
        assert!(load("[audit]\nretension = \"30d\"\n", &[]).is_err());
        assert!(load("[audit]\nretention = \"a month\"\n", &[]).is_err());
    }

    #[test]
    fn env_overrides_any_key_with_typed_values() {
        let s = load(
            "listen = \"127.0.0.1:9000\"\n[limits]\nmax_page_size = 50\n",
            &[
                ("USERSYNC__LISTEN", "0.0.0.0:9081"),
                ("USERSYNC__LIMITS__MAX_PAGE_SIZE", "200"),
                ("USERSYNC__CONNECTORS__ENTRA__TOKEN_ENV", "ENTRA_T"),
                ("ENTRA_T", "secret"),
            ],
        )
        .unwrap();
        assert_eq!(s.listen, "0.0.0.0:9081");
        assert_eq!(s.limits.max_page_size, 200);
        assert_eq!(
            s.connectors["entra"].token_env,
            Some(OneOrMany::One("ENTRA_T".into()))
        );
    }

    #[test]
    fn mistakes_are_reported_with_what_to_fix() {
        let e = load("lisen = \"x\"", &[]).unwrap_err().to_string();
        assert!(e.contains("lisen"), "{e}");
        let e = load("", &[("USERSYNC__LIMITS__MAX_BODY", "1")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_body"), "{e}");
        let e = load("[connectors.entra]\ntoken_env = \"NOPE\"", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("NOPE") && e.contains("not set"), "{e}");
        let e = load("[connectors.Entra]\n", &[]).unwrap_err().to_string();
        assert!(e.contains("a-z"), "{e}");
        let e = load("listen = \"localhost\"", &[]).unwrap_err().to_string();
        assert!(e.contains("127.0.0.1:8080"), "{e}");
        let e = load("[limits]\nrequest_timeout = \"5 fortnights\"", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("duration"), "{e}");
    }

    #[test]
    fn an_unshared_oauth_signing_key_refuses_postgres_unless_single_instance() {
        let oauth = "[connectors.ping.oauth]\nclient_id = \"c\"\nclient_secret_env = \"S\"\n";
        let vars = [("S", "client-secret")];
        let pg = format!("database = \"postgres://db/usersync\"\n{oauth}");
        let e = load(&pg, &vars).unwrap().check_shared_state().unwrap_err();
        let e = e.to_string();
        assert!(
            e.contains("connectors.ping.oauth") && e.contains("signing_key_env"),
            "{e}"
        );
        let single = format!("{pg}[store]\nsingle_instance = true\n");
        let warnings = load(&single, &vars).unwrap().check_shared_state().unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        // SQLite: one process owns the database, a warning at most.
        let warnings = load(oauth, &vars).unwrap().check_shared_state().unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        let shared = format!("{pg}signing_key_env = \"K\"\n");
        let vars = [
            ("S", "client-secret"),
            ("K", "0123456789abcdef0123456789abcdef"),
        ];
        assert!(load(&shared, &vars)
            .unwrap()
            .check_shared_state()
            .unwrap()
            .is_empty());
    }

    #[test]
    fn redacted_output_hides_the_database_password() {
        let s = load("database = \"postgres://app:hunter2@db/usersync\"", &[]).unwrap();
        let out = s.redacted_toml();
        assert!(
            !out.contains("hunter2") && out.contains("[redacted]"),
            "{out}"
        );
    }

    #[test]
    fn every_form_of_url_secret_is_redacted_wherever_it_appears() {
        for (url, secret, kept) in [
            (
                "postgres://app:hunter2@db/usersync",
                "hunter2",
                "db/usersync",
            ),
            ("postgres://app:p@ss@db/usersync", "ss@db", "@db/usersync"),
            (
                "postgres://app@db/usersync?password=hunter2",
                "hunter2",
                "app@db",
            ),
            (
                "postgresql://db/usersync?sslmode=require&PassWord=hunter2&user=app",
                "hunter2",
                "sslmode=require",
            ),
            (
                "https://token-hunter2@hooks.example.com/p",
                "token-hunter2",
                "hooks.example.com/p",
            ),
            (
                "sqlite://data/usersync.db",
                "\u{0}",
                "sqlite://data/usersync.db",
            ),
            (
                "sqlite:///var/lib/a@b/usersync.db",
                "\u{0}",
                "/var/lib/a@b/usersync.db",
            ),
        ] {
            let out = redact_url(url);
            assert!(
                !out.contains(secret) && out.contains(kept),
                "{url} -> {out}"
            );
        }
        let file = "database = \"postgres://app@db/u?password=hunter2\"\n\
                    public_url = \"https://user:hunter3@scim.example.com\"\n";
        let s = load(file, &[]).unwrap();
        for shown in [s.redacted_toml(), format!("{s:?}")] {
            assert!(
                !shown.contains("hunter2") && !shown.contains("hunter3"),
                "{shown}"
            );
            assert!(shown.contains("scim.example.com"), "{shown}");
        }
        let e = load("database = \"mysql://app:hunter2@db/u\"", &[])
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn redacted_output_names_secret_variables_but_never_their_values() {
        let file = "[connectors.okta]\ntoken_env = [\"OKTA_T1\", \"OKTA_T2\"]\n\
                    basic = { username = \"okta\", password_env = \"OKTA_PW\" }\n\
                    [connectors.ping.oauth]\nclient_id = \"ping-client\"\n\
                    client_secret_env = \"PING_SECRET\"\nsigning_key_env = \"PING_KEY\"\n";
        let s = load(
            file,
            &[
                ("OKTA_T1", "tok-one-value"),
                ("OKTA_T2", "tok-two-value"),
                ("OKTA_PW", "basic-password-value"),
                ("PING_SECRET", "client-secret-value"),
                ("PING_KEY", "an-hmac-key-of-at-least-32-bytes-value"),
            ],
        )
        .unwrap();
        let out = s.redacted_toml();
        let debug = format!("{s:?}");
        for shown in [&out, &debug] {
            assert!(!shown.contains("-value"), "a secret leaked: {shown}");
            assert!(
                shown.contains("OKTA_PW") && shown.contains("PING_SECRET"),
                "{shown}"
            );
        }
        assert!(
            out.contains("ping-client") && out.contains("token_ttl"),
            "{out}"
        );
        assert_eq!(s.secrets.get("OKTA_T2"), Some("tok-two-value"));
    }

    /// `deploy/usersync.toml` documents every key; its commented-out connector examples,
    /// uncommented, must load (so the documentation cannot drift from the keys).
    #[test]
    fn the_documented_connector_examples_load() {
        let doc = include_str!("../deploy/usersync.toml");
        let start = doc.find("# [connectors.okta]").expect("example connectors");
        let mut text = doc[..start].to_owned();
        for line in doc[start..].lines() {
            if let Some(rest) = line.strip_prefix("# ") {
                if !rest.starts_with('#') {
                    text.push_str(rest);
                    text.push('\n');
                }
            }
        }
        let vars = [
            ("USERSYNC_OKTA_TOKEN", "okta-token"),
            ("USERSYNC_OKTA_BASIC_PASSWORD", "okta-password"),
            ("USERSYNC_ENTRA_TOKEN", "entra-token"),
            ("USERSYNC_ENTRA_CLIENT_SECRET", "entra-secret"),
            (
                "USERSYNC_ENTRA_SIGNING_KEY",
                "0123456789abcdef0123456789abcdef",
            ),
            (
                "USERSYNC_ENTRA_FEED_KEY",
                "a-feed-key-of-at-least-24-characters",
            ),
            (
                "USERSYNC_ENTRA_WEBHOOK_SECRET",
                "a-webhook-secret-of-at-least-32-bytes",
            ),
            ("USERSYNC_GOOGLE_KEY", "{\"type\": \"service_account\"}"),
            ("USERSYNC_GRAPH_SECRET", "graph-secret"),
        ];
        let s = load(&text, &vars).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert!(s.connectors["google"].kind.is_pull() && s.connectors["google"].pull.is_some());
        assert!(s.connectors["entra-pull"].graph.is_some());
        let entra = &s.connectors["entra"];
        assert!(entra.entra_jwt.is_some());
        assert!(entra.oauth.as_ref().is_some_and(|o| o.wif.is_some()));
        assert!(s.connectors["okta"].basic.is_some());
        assert!(entra.webhook.is_some() && entra.linchpin.feed_key_env.is_some());
        assert_eq!(entra.mapping.fields.len(), 1);
    }

    #[test]
    fn mapping_feed_and_webhook_tables_load_and_their_variables_are_checked() {
        let file = r#"
[connectors.okta]
[connectors.okta.mapping.manager]
refers_to = "employeeNumber"
[[connectors.okta.mapping.fields]]
name = "skills"
source = "title"
transforms = ["trim", { op = "join", sep = ";" }]
[connectors.okta.linchpin]
feed_key_env = "OKTA_FEED"
user_tag = "person"
[connectors.okta.webhook]
url = "https://hooks.example.com/profiles"
secret_env = "OKTA_HOOK"
timeout = "3s"
[linchpin]
base_url = "https://wiki.example.com"
"#;
        let key = ("OKTA_FEED", "a-feed-key-that-is-long-enough");
        let secret = ("OKTA_HOOK", "a-webhook-secret-of-at-least-32-bytes");
        let s = load(file, &[key, secret]).unwrap();
        let okta = &s.connectors["okta"];
        assert_eq!(
            okta.mapping.manager.refers_to,
            Some(crate::mapping::ManagerKey::EmployeeNumber)
        );
        assert_eq!(okta.linchpin.user_tag, "person");
        assert_eq!(
            okta.webhook.as_ref().unwrap().timeout.0,
            Duration::from_secs(3)
        );
        let out = s.redacted_toml();
        assert!(out.contains("OKTA_FEED") && !out.contains(key.1), "{out}");
        for (vars, why) in [
            (vec![secret], "OKTA_FEED"),
            (vec![("OKTA_FEED", "short"), secret], "shorter"),
            (vec![key], "OKTA_HOOK"),
            (vec![key, ("OKTA_HOOK", "short")], "shorter"),
        ] {
            let e = load(file, &vars).unwrap_err().to_string();
            assert!(e.contains(why) && e.contains("[connectors.okta]"), "{e}");
        }
        let e = load("[connectors.x.linchpin]\nuser_tag = \"a b\"", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("user_tag"), "{e}");
        let e = load("[connectors.x.mapping]\ndefault_feilds = false", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("default_feilds"), "{e}");
    }

    #[test]
    fn the_deploy_example_configuration_loads() {
        let text = include_str!("../deploy/usersync.toml");
        let s = load(text, &[]).unwrap();
        assert_eq!(s.linchpin.timeout.0, Duration::from_secs(10));
        assert_eq!(s.admin, AdminSettings::default());
        assert_eq!(s.audit, AuditSettings::default());
        let defaults = crate::reconcile::settings::ReconcileSettings::default();
        assert_eq!(s.reconcile.protect_groups, defaults.protect_groups);
        assert_eq!(s.reconcile.retention, defaults.retention);
        assert!(
            s.reconcile.every.is_none(),
            "the schedule is off by default"
        );
    }

    #[test]
    fn schemas_dir_adds_its_json_documents_and_names_a_bad_one() {
        let dir = std::env::temp_dir().join(format!("usersync-schemas-{}", uuid::Uuid::new_v4()));
        let mut s = Settings::defaults();
        s.schemas_dir = dir.join("absent");
        let builtin = s.load_schemas().unwrap().schemas().len();

        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("skills.json"),
            r#"{"id": "urn:example:skills:2.0:User", "attributes": [{"name": "skills", "type": "string"}]}"#,
        )
        .unwrap();
        std::fs::write(dir.join("notes.txt"), "not a schema").unwrap();
        s.schemas_dir = dir.clone();
        let reg = s.load_schemas().unwrap();
        assert_eq!(reg.schemas().len(), builtin + 1);
        assert!(reg.schema("urn:example:skills:2.0:User").is_some());

        std::fs::write(
            dir.join("zz-bad.json"),
            r#"{"id": "not-a-urn", "attributes": []}"#,
        )
        .unwrap();
        let err = s.load_schemas().unwrap_err().to_string();
        assert!(err.contains("zz-bad.json") && err.contains("URN"), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
