//! Start-up settings ([`EmulatorConfig`]) and runtime knobs ([`Knobs`]).
//!
//! The config is fixed for the life of an [`Emulator`](super::Emulator) (credentials of the
//! admin, the context path, the seed). Knobs are the behaviour a test flips at run time
//! through `GET/PUT /__emulator/knobs` or [`Emulator::set_knobs`](super::Emulator::set_knobs);
//! `POST /__emulator/reset` puts them back to the values the emulator started with.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::faults::RouteScope;
use super::seed::Seed;

/// Confluence feature level the emulator pretends to be (docs/reference/confluence-api.md §1.1).
///
/// Endpoints introduced after the chosen level answer `404` with an HTML body, the way an
/// older Confluence answers a REST path it does not know, so clients can test fallbacks.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
pub enum ConfluenceVersion {
    /// 8.2: disable/enable/delete user, group create/delete, membership via REST.
    #[serde(rename = "8.2")]
    V8_2,
    /// 8.4: adds create user, admin password change, `GET /rest/api/user/list`.
    #[serde(rename = "8.4")]
    V8_4,
    /// 9.4: adds `PUT /rest/api/admin/user/{username}` and the active-users list (9.3+).
    #[serde(rename = "9.4")]
    V9_4,
    /// 10.2: every endpoint of docs/emulator.md (default).
    #[default]
    #[serde(rename = "10.2")]
    V10_2,
}

impl ConfluenceVersion {
    /// The version as written in knobs and on the command line (`"9.4"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V8_2 => "8.2",
            Self::V8_4 => "8.4",
            Self::V9_4 => "9.4",
            Self::V10_2 => "10.2",
        }
    }
}

impl fmt::Display for ConfluenceVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A version string that is not one of the four feature levels.
#[derive(Debug, thiserror::Error)]
#[error("unknown Confluence version {0:?}: expected 8.2, 8.4, 9.4 or 10.2")]
pub struct UnknownVersion(String);

impl FromStr for ConfluenceVersion {
    type Err = UnknownVersion;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "8.2" => Ok(Self::V8_2),
            "8.4" => Ok(Self::V8_4),
            "9.4" => Ok(Self::V9_4),
            "10.2" => Ok(Self::V10_2),
            other => Err(UnknownVersion(other.to_owned())),
        }
    }
}

/// What to do with credentials that do not match any user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InvalidCredentials {
    /// Serve the request as `anonymous` (what a field report saw for a bad PAT,
    /// docs/reference/confluence-api.md §1.2).
    #[serde(rename = "anonymous")]
    Anonymous,
    /// Reject with `401` and `X-Seraph-LoginReason: AUTHENTICATED_FAILED`.
    #[serde(rename = "401")]
    Unauthorized,
}

/// Literal used for `status` under `expand=status`. The real literal is a **\[gap\]**
/// (docs/reference/confluence-api.md §1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum StatusStyle {
    /// `"current"` / `"deactivated"` (assumed default, seen in an operator script).
    #[default]
    Current,
    /// `"Active"` / `"Deactivated"` (the atlassian-python-api docstring).
    Active,
}

/// Confluence rate-limiting mode (docs/reference/confluence-api.md §1.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitMode {
    /// "Allow unlimited requests" (Confluence's default): no headers, no 429.
    #[default]
    Off,
    /// "Limit requests": a token bucket per user.
    Limit,
    /// "Block all requests": every limited call gets 429 with `Retry-After: Long.MAX_VALUE`.
    BlockAll,
}

/// Rate-limit settings; `capacity` is Confluence's "Max requests", `fill_rate` tokens are
/// added every `interval_s` seconds ("Requests allowed").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RateLimitKnobs {
    /// Off, limit or block all.
    pub mode: RateLimitMode,
    /// Bucket size (`X-RateLimit-Limit`).
    pub capacity: u32,
    /// Tokens added per interval (`X-RateLimit-FillRate`).
    pub fill_rate: u32,
    /// Refill interval in seconds (`X-RateLimit-Interval-Seconds`).
    pub interval_s: u32,
    /// Usernames never limited (Confluence's per-user exemptions).
    pub exempt: Vec<String>,
}

impl Default for RateLimitKnobs {
    fn default() -> Self {
        Self {
            mode: RateLimitMode::Off,
            capacity: 20,
            fill_rate: 20,
            interval_s: 60,
            exempt: Vec::new(),
        }
    }
}

/// A fixed delay added to calls that match a scope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteLatency {
    /// Which calls are delayed.
    #[serde(flatten)]
    pub scope: RouteScope,
    /// Delay in milliseconds.
    pub ms: u64,
}

/// Latency injection: `global_ms` for every Confluence/Linchpin call, plus the first
/// matching per-route entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct LatencyKnobs {
    /// Delay for every call, in milliseconds.
    pub global_ms: u64,
    /// Extra delay for matching calls (the first match wins).
    pub routes: Vec<RouteLatency>,
}

/// A steady share of calls that fail with `status` (typically 500 or 503).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ErrorRatioKnobs {
    /// Share of matching calls that fail, 0.0–1.0.
    pub ratio: f64,
    /// Status of the injected failure.
    pub status: u16,
    /// Optional `Retry-After` (seconds) on the injected failure.
    pub retry_after_s: Option<u64>,
    /// Which calls may fail (all when empty).
    #[serde(flatten)]
    pub scope: RouteScope,
}

impl Default for ErrorRatioKnobs {
    fn default() -> Self {
        Self {
            ratio: 0.0,
            status: 503,
            retry_after_s: None,
            scope: RouteScope::default(),
        }
    }
}

/// Linchpin XML data source settings (docs/reference/confluence-api.md §2.2, docs/emulator.md L3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LupKnobs {
    /// URL of the feed the import job pulls (usersync's feed endpoint).
    pub xml_url: Option<String>,
    /// Element holding one user ("user tag").
    pub user_tag: String,
    /// Child element naming the Confluence username ("username tag").
    pub username_tag: String,
    /// Separator of multi-select values inside one element. **(assumed)**: the real
    /// encoding is a \[gap\] (docs/reference/confluence-api.md §2.2).
    pub multi_value_delimiter: String,
    /// Timeout of the feed download, in milliseconds.
    pub fetch_timeout_ms: u64,
}

impl Default for LupKnobs {
    fn default() -> Self {
        Self {
            xml_url: None,
            user_tag: "user".to_owned(),
            username_tag: "username".to_owned(),
            multi_value_delimiter: ";".to_owned(),
            fetch_timeout_ms: 10_000,
        }
    }
}

/// Every runtime behaviour switch of the emulator, as one JSON document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Knobs {
    /// Feature level; later endpoints answer 404 (HTML).
    pub version: ConfluenceVersion,
    /// Unknown PAT: serve as anonymous (default, field report) or 401.
    pub invalid_bearer: InvalidCredentials,
    /// Wrong Basic password: 401 (default, Seraph's usual answer) or anonymous. **(assumed)**
    pub invalid_basic: InvalidCredentials,
    /// Whether anonymous callers may read users and groups; when off they get 401
    /// **(assumed status; 401 or 403 were both plausible)**.
    pub anonymous_access: bool,
    /// Literal style of `status` under `expand=status` **(assumed)**.
    pub status_style: StatusStyle,
    /// Share (0.0–1.0) of 401/404 answers sent with a `text/plain` body instead of JSON.
    pub plain_text_errors_ratio: f64,
    /// Websudo on: admin endpoints answer 401 to Basic-auth callers **(assumed)**.
    pub websudo: bool,
    /// "Remote API (XML-RPC & SOAP)" switched on: JSON-RPC answers; off → 403 **(assumed)**.
    /// On by default so fallbacks work out of the box (a real instance defaults to off).
    pub remote_api_enabled: bool,
    /// How long a user delete long task runs before the user is gone.
    pub delete_delay_ms: u64,
    /// Licence seats; `None` is unlimited.
    pub licence_seats: Option<u32>,
    /// Groups carrying the "can use" permission (membership consumes a seat when active).
    pub can_use_groups: Vec<String>,
    /// Groups carrying administrator permission; the last one cannot be deleted.
    pub admin_groups: Vec<String>,
    /// Largest page a list endpoint returns, whatever `limit` asks **(assumed)**.
    pub max_page_limit: u32,
    /// Value of `_links.base` without the context path; default `http://<Host header>`.
    pub base_url: Option<String>,
    /// Version string of the applinks manifest (e.g. `"8.5.16"`); default: the feature
    /// level with `.0` (`"9.4.0"`). Lets tests show a patch release or a version between
    /// the four levels.
    pub manifest_version: Option<String>,
    /// Rate limiting (docs/reference/confluence-api.md §1.6).
    pub rate_limit: RateLimitKnobs,
    /// Latency injection.
    pub latency: LatencyKnobs,
    /// Steady failure ratio.
    pub error_ratio: ErrorRatioKnobs,
    /// Linchpin XML import settings.
    pub lup: LupKnobs,
}

impl Default for Knobs {
    fn default() -> Self {
        Self {
            version: ConfluenceVersion::default(),
            invalid_bearer: InvalidCredentials::Anonymous,
            invalid_basic: InvalidCredentials::Unauthorized,
            anonymous_access: false,
            status_style: StatusStyle::default(),
            plain_text_errors_ratio: 0.0,
            websudo: false,
            remote_api_enabled: true,
            delete_delay_ms: 200,
            licence_seats: None,
            can_use_groups: vec![
                "confluence-users".to_owned(),
                "confluence-administrators".to_owned(),
            ],
            admin_groups: vec!["confluence-administrators".to_owned()],
            max_page_limit: 200,
            base_url: None,
            manifest_version: None,
            rate_limit: RateLimitKnobs::default(),
            latency: LatencyKnobs::default(),
            error_ratio: ErrorRatioKnobs::default(),
            lup: LupKnobs::default(),
        }
    }
}

/// Start-up settings of one emulator instance.
#[derive(Clone)]
pub struct EmulatorConfig {
    /// Personal access token of the admin user (Bearer).
    pub admin_token: String,
    /// Username of the built-in system administrator (default `admin`).
    pub admin_username: String,
    /// Optional Basic-auth password of the admin.
    pub admin_password: Option<String>,
    /// Context path such as `/confluence`; `""` serves at the root.
    pub context_path: String,
    /// Feature level; overrides `knobs.version` at start and on every reset.
    pub version: ConfluenceVersion,
    /// Users, groups, seats and Linchpin fields loaded at start and on reset.
    pub seed: Option<Seed>,
    /// Initial knobs (restored by `POST /__emulator/reset`).
    pub knobs: Knobs,
    /// Seed of the random generator (user keys, failure ratios): runs are reproducible.
    pub rng_seed: u64,
}

impl EmulatorConfig {
    /// A 10.2 emulator at the root context whose admin `admin` uses `admin_token`.
    pub fn new(admin_token: impl Into<String>) -> Self {
        Self {
            admin_token: admin_token.into(),
            admin_username: "admin".to_owned(),
            admin_password: None,
            context_path: String::new(),
            version: ConfluenceVersion::default(),
            seed: None,
            knobs: Knobs::default(),
            rng_seed: 0x5eed,
        }
    }

    /// The context path normalised to `""` or `/segment[/segment]` (no trailing slash).
    pub(crate) fn normalised_context_path(&self) -> String {
        let trimmed = self.context_path.trim().trim_matches('/');
        if trimmed.is_empty() {
            String::new()
        } else {
            format!("/{trimmed}")
        }
    }

    /// The knobs the emulator starts (and resets) with: `knobs` with `version` applied.
    pub(crate) fn initial_knobs(&self) -> Knobs {
        Knobs {
            version: self.version,
            ..self.knobs.clone()
        }
    }
}

/// Secrets stay out of `Debug` output (logs, panics).
impl fmt::Debug for EmulatorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmulatorConfig")
            .field("admin_token", &"[redacted]")
            .field("admin_username", &self.admin_username)
            .field(
                "admin_password",
                &self.admin_password.as_ref().map(|_| "[redacted]"),
            )
            .field("context_path", &self.context_path)
            .field("version", &self.version)
            .field("seed", &self.seed.as_ref().map(|s| s.users.len()))
            .field("knobs", &self.knobs)
            .field("rng_seed", &self.rng_seed)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_knobs_round_trip_through_json_with_the_documented_literals() {
        let json = serde_json::to_value(Knobs::default()).expect("serialises");
        assert_eq!(json["version"], "10.2");
        assert_eq!(json["invalid_bearer"], "anonymous");
        assert_eq!(json["invalid_basic"], "401");
        assert_eq!(json["rate_limit"]["mode"], "off");
        assert_eq!(json["lup"]["multi_value_delimiter"], ";");
        let back: Knobs = serde_json::from_value(json).expect("deserialises");
        assert_eq!(back, Knobs::default());
        let partial: Knobs =
            serde_json::from_str(r#"{"version":"8.2","rate_limit":{"mode":"block_all"}}"#)
                .expect("partial knobs parse");
        assert_eq!(partial.version, ConfluenceVersion::V8_2);
        assert_eq!(partial.rate_limit.capacity, 20);
    }

    #[test]
    fn versions_parse_and_order_by_feature_level() {
        assert_eq!(
            "9.4".parse::<ConfluenceVersion>().ok(),
            Some(ConfluenceVersion::V9_4)
        );
        assert!("7.0".parse::<ConfluenceVersion>().is_err());
        assert!(ConfluenceVersion::V8_2 < ConfluenceVersion::V8_4);
        assert!(ConfluenceVersion::V9_4 < ConfluenceVersion::V10_2);
    }

    #[test]
    fn the_config_debug_output_hides_secrets() {
        let mut config = EmulatorConfig::new("very-secret-token");
        config.admin_password = Some("hunter2".to_owned());
        let debug = format!("{config:?}");
        assert!(!debug.contains("very-secret-token"));
        assert!(!debug.contains("hunter2"));
    }
}
