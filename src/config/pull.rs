//! `kind` and the pull settings of `[connectors.NAME]` (docs/pull.md): a connector is pushed
//! to over SCIM (`kind = "scim"`, the default) or reads its users from an IdP's API on a
//! schedule (`graph`, `google`, `okta`, `onelogin`). Secrets are named by environment
//! variable, read once at load like the rest.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{ConfigError, Dur, Secrets};

/// How a connector gets its users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectorKind {
    /// The IdP pushes over SCIM.
    #[default]
    Scim,
    /// Microsoft Graph (Entra ID) `/users/delta`.
    Graph,
    /// Google Workspace Admin SDK Directory API.
    Google,
    /// Okta Users API (`/api/v1/users`).
    Okta,
    /// OneLogin API v2 (`/api/2/users`).
    Onelogin,
}

impl ConnectorKind {
    /// The name in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectorKind::Scim => "scim",
            ConnectorKind::Graph => "graph",
            ConnectorKind::Google => "google",
            ConnectorKind::Okta => "okta",
            ConnectorKind::Onelogin => "onelogin",
        }
    }

    /// Whether usersync reads this connector's users itself (its SCIM endpoint is then
    /// read-only).
    pub fn is_pull(self) -> bool {
        self != ConnectorKind::Scim
    }
}

/// `[connectors.NAME.pull]`: when a pull connector runs and how far it may go.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PullSettings {
    /// Incremental runs by `serve`'s scheduler (none: only `usersync pull`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<Dur>,
    /// A run is full (the whole directory read, deletions found by comparison) when the
    /// last full run is older than this; none: only the first run and `--full`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_every: Option<Dur>,
    /// The most users one run may delete without `--force`: a number or `"N%"` of the
    /// connector's users. Default `"10%"`.
    #[serde(default)]
    pub max_deletes: MaxDeletes,
    /// Users asked for per page.
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// The longest `Retry-After` waited out; a longer one fails the run.
    #[serde(default = "default_max_retry_wait")]
    pub max_retry_wait: Dur,
}

impl Default for PullSettings {
    fn default() -> Self {
        PullSettings {
            every: None,
            full_every: None,
            max_deletes: MaxDeletes::default(),
            page_size: default_page_size(),
            max_retry_wait: default_max_retry_wait(),
        }
    }
}

fn default_page_size() -> u32 {
    200
}

fn default_max_retry_wait() -> Dur {
    Dur(Duration::from_secs(120))
}

/// The deletion guard: a count, or a percentage of the connector's users.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MaxDeletes {
    /// At most this many.
    Count(u64),
    /// At most this share (0–100) of the users stored before the run.
    Percent(f64),
}

impl Default for MaxDeletes {
    fn default() -> Self {
        MaxDeletes::Percent(10.0)
    }
}

impl MaxDeletes {
    /// The most deletions allowed when `stored` users exist.
    pub fn limit(self, stored: u64) -> u64 {
        match self {
            MaxDeletes::Count(n) => n,
            MaxDeletes::Percent(p) => ((stored as f64) * p / 100.0).floor() as u64,
        }
    }
}

impl fmt::Display for MaxDeletes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MaxDeletes::Count(n) => write!(f, "{n}"),
            MaxDeletes::Percent(p) => write!(f, "{p}%"),
        }
    }
}

impl Serialize for MaxDeletes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            MaxDeletes::Count(n) => s.serialize_u64(*n),
            MaxDeletes::Percent(_) => s.serialize_str(&self.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for MaxDeletes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        let bad = || {
            serde::de::Error::custom(
                "max_deletes must be a number of users (e.g. 50) or a percentage (e.g. \"10%\")",
            )
        };
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(MaxDeletes::Count(n)),
            Raw::S(s) => {
                let s = s.trim();
                if let Some(p) = s.strip_suffix('%') {
                    let p: f64 = p.trim().parse().map_err(|_| bad())?;
                    if (0.0..=100.0).contains(&p) {
                        return Ok(MaxDeletes::Percent(p));
                    }
                    return Err(bad());
                }
                s.parse().map(MaxDeletes::Count).map_err(|_| bad())
            }
        }
    }
}

/// `[connectors.NAME.graph]`: Microsoft Graph with an app registration's client secret.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GraphSettings {
    /// Directory (tenant) ID.
    pub tenant_id: String,
    /// Application (client) ID.
    pub client_id: String,
    /// Environment variable holding the client secret.
    pub client_secret_env: String,
    /// Graph's base URL (an emulator's in tests).
    #[serde(default = "default_graph_url")]
    pub base_url: String,
    /// The token endpoint; default
    /// `https://login.microsoftonline.com/{tenant_id}/oauth2/v2.0/token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
}

fn default_graph_url() -> String {
    "https://graph.microsoft.com/v1.0".to_owned()
}

impl GraphSettings {
    /// The token endpoint in force.
    pub fn token_url(&self) -> String {
        self.token_url.clone().unwrap_or_else(|| {
            format!(
                "https://login.microsoftonline.com/{}/oauth2/v2.0/token",
                self.tenant_id
            )
        })
    }
}

/// `[connectors.NAME.google]`: the Admin SDK Directory API with a service account and
/// domain-wide delegation (docs/idp/google-workspace.md).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GoogleSettings {
    /// Environment variable holding the service account's JSON key (the whole file).
    pub key_env: String,
    /// The administrator the service account acts as (domain-wide delegation).
    pub admin_email: String,
    /// The customer whose users are read; `my_customer` is the admin's own.
    #[serde(default = "default_customer")]
    pub customer: String,
    /// The API's base URL (an emulator's in tests).
    #[serde(default = "default_google_url")]
    pub base_url: String,
    /// The token endpoint; default the key's `token_uri`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    /// Custom schemas to read (`customFieldMask`); none: `projection=basic`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custom_schemas: Vec<String>,
}

fn default_customer() -> String {
    "my_customer".to_owned()
}

fn default_google_url() -> String {
    "https://admin.googleapis.com".to_owned()
}

/// `[connectors.NAME.okta]`: the Okta Users API with an API token (`SSWS`) or an OAuth
/// service app (`private_key_jwt`, scope `okta.users.read`); docs/pull.md.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OktaSettings {
    /// The org's URL, e.g. `https://example.okta.com`.
    pub org_url: String,
    /// Environment variable holding an API token (sent as `Authorization: SSWS <token>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
    /// The OAuth service app's client id (with `private_key_env`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Environment variable holding the service app's private key (PEM, RSA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key_env: Option<String>,
    /// The `kid` of the key registered with the service app, if Okta needs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// The token endpoint; default `{org_url}/oauth2/v1/token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    /// How far before the checkpoint an incremental run starts asking (Okta's search index
    /// is updated a little after a change, assumed): changes seen twice are not written
    /// twice.
    #[serde(default = "default_overlap")]
    pub overlap: Dur,
}

impl OktaSettings {
    /// The token endpoint in force.
    pub fn token_url(&self) -> String {
        self.token_url
            .clone()
            .unwrap_or_else(|| format!("{}/oauth2/v1/token", self.org_url.trim_end_matches('/')))
    }
}

/// `[connectors.NAME.onelogin]`: OneLogin's API v2 with an API credential pair (scope
/// "Read users"); docs/pull.md.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OneloginSettings {
    /// The account's URL, e.g. `https://example.onelogin.com`.
    pub base_url: String,
    /// The API credential's client id.
    pub client_id: String,
    /// Environment variable holding the API credential's client secret.
    pub client_secret_env: String,
    /// How far before the checkpoint an incremental run starts asking (`updated_since`).
    #[serde(default = "default_overlap")]
    pub overlap: Dur,
}

fn default_overlap() -> Dur {
    Dur(Duration::from_secs(60))
}

/// The tables a connector may carry besides `[pull]`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tables<'a> {
    /// `[graph]`.
    pub graph: Option<&'a GraphSettings>,
    /// `[google]`.
    pub google: Option<&'a GoogleSettings>,
    /// `[okta]`.
    pub okta: Option<&'a OktaSettings>,
    /// `[onelogin]`.
    pub onelogin: Option<&'a OneloginSettings>,
}

/// The environment variables a connector's pull settings name.
pub fn env_names<'a>(t: Tables<'a>) -> Vec<&'a str> {
    let mut names = Vec::new();
    names.extend(t.graph.map(|g| g.client_secret_env.as_str()));
    names.extend(t.google.map(|g| g.key_env.as_str()));
    if let Some(o) = t.okta {
        names.extend(o.token_env.as_deref());
        names.extend(o.private_key_env.as_deref());
    }
    names.extend(t.onelogin.map(|o| o.client_secret_env.as_str()));
    names
}

/// Checks `kind` against the tables present; the caller prefixes `[connectors.NAME]`.
pub fn validate(
    kind: ConnectorKind,
    pull: Option<&PullSettings>,
    t: Tables<'_>,
    secrets: &Secrets,
) -> Result<(), ConfigError> {
    let k = kind.as_str();
    let present = [
        (ConnectorKind::Graph, "graph", t.graph.is_some()),
        (ConnectorKind::Google, "google", t.google.is_some()),
        (ConnectorKind::Okta, "okta", t.okta.is_some()),
        (ConnectorKind::Onelogin, "onelogin", t.onelogin.is_some()),
    ];
    if kind == ConnectorKind::Scim {
        if pull.is_some() || present.iter().any(|p| p.2) {
            return Err(ConfigError(
                "[pull], [graph], [google], [okta] and [onelogin] belong to pull connectors; \
                 set kind = \"graph\", \"google\", \"okta\" or \"onelogin\" (or remove them)"
                    .to_owned(),
            ));
        }
        return Ok(());
    }
    for (owner, table, there) in present {
        if there && owner != kind {
            return Err(ConfigError(format!(
                "[{table}] does not apply to kind = \"{k}\""
            )));
        }
    }
    let (graph, google) = (t.graph, t.google);
    if let Some(p) = pull {
        if p.page_size == 0 || p.page_size > 999 {
            return Err(ConfigError(
                "pull.page_size must be between 1 and 999".to_owned(),
            ));
        }
        if p.every.is_some_and(|d| d.0 < Duration::from_secs(1)) {
            return Err(ConfigError("pull.every must be at least 1s".to_owned()));
        }
    }
    match kind {
        ConnectorKind::Graph => {
            let g = graph.ok_or_else(|| {
                ConfigError(
                    "kind = \"graph\" needs [connectors.NAME.graph] with tenant_id, client_id \
                     and client_secret_env"
                        .to_owned(),
                )
            })?;
            if g.tenant_id.trim().is_empty() || g.client_id.trim().is_empty() {
                return Err(ConfigError(
                    "graph.tenant_id and graph.client_id must not be empty".to_owned(),
                ));
            }
            secrets.require(
                "graph.client_secret_env",
                &g.client_secret_env,
                "the app's client secret",
            )?;
            check_url("graph.base_url", &g.base_url)?;
            check_url("graph.token_url", &g.token_url())?;
        }
        ConnectorKind::Google => {
            let g = google.ok_or_else(|| {
                ConfigError(
                    "kind = \"google\" needs [connectors.NAME.google] with key_env and admin_email"
                        .to_owned(),
                )
            })?;
            if !g.admin_email.contains('@') {
                return Err(ConfigError(
                    "google.admin_email must be the e-mail address of a Workspace administrator"
                        .to_owned(),
                ));
            }
            secrets.require(
                "google.key_env",
                &g.key_env,
                "the service account's JSON key",
            )?;
            check_url("google.base_url", &g.base_url)?;
            if let Some(t) = &g.token_url {
                check_url("google.token_url", t)?;
            }
        }
        ConnectorKind::Okta => validate_okta(t.okta, secrets)?,
        ConnectorKind::Onelogin => {
            let o = t.onelogin.ok_or_else(|| {
                ConfigError(
                    "kind = \"onelogin\" needs [connectors.NAME.onelogin] with base_url, \
                     client_id and client_secret_env"
                        .to_owned(),
                )
            })?;
            if o.client_id.trim().is_empty() {
                return Err(ConfigError(
                    "onelogin.client_id must not be empty".to_owned(),
                ));
            }
            secrets.require(
                "onelogin.client_secret_env",
                &o.client_secret_env,
                "the API credential's client secret",
            )?;
            check_url("onelogin.base_url", &o.base_url)?;
        }
        ConnectorKind::Scim => {}
    }
    Ok(())
}

/// Okta takes exactly one credential: an API token, or a service app's client id and key.
fn validate_okta(okta: Option<&OktaSettings>, secrets: &Secrets) -> Result<(), ConfigError> {
    let o = okta.ok_or_else(|| {
        ConfigError(
            "kind = \"okta\" needs [connectors.NAME.okta] with org_url and either token_env or \
             client_id and private_key_env"
                .to_owned(),
        )
    })?;
    match (&o.token_env, &o.client_id, &o.private_key_env) {
        (Some(env), None, None) => {
            secrets.require("okta.token_env", env, "the Okta API token")?;
        }
        (None, Some(id), Some(env)) if !id.trim().is_empty() => {
            secrets.require(
                "okta.private_key_env",
                env,
                "the service app's private key (PEM)",
            )?;
        }
        _ => {
            return Err(ConfigError(
                "okta needs either token_env (an API token) or client_id and private_key_env \
                 (an OAuth service app), not both"
                    .to_owned(),
            ))
        }
    }
    check_url("okta.org_url", &o.org_url)?;
    check_url("okta.token_url", &o.token_url())
}

/// Credentials travel to these URLs: HTTPS, or plain HTTP to a loopback address (emulators).
fn check_url(key: &str, url: &str) -> Result<(), ConfigError> {
    let ok = url.starts_with("https://")
        || ["http://127.", "http://localhost", "http://[::1]"]
            .iter()
            .any(|p| url.starts_with(p));
    if ok {
        Ok(())
    } else {
        Err(ConfigError(format!(
            "{key} = {:?} must be an https:// URL (plain http:// only to a loopback address)",
            crate::store::redact_url(url)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_deletes_reads_counts_and_percentages() {
        #[derive(Deserialize)]
        struct T {
            m: MaxDeletes,
        }
        let m = |s: &str| toml::from_str::<T>(&format!("m = {s}")).map(|t| t.m);
        assert_eq!(m("25").unwrap(), MaxDeletes::Count(25));
        assert_eq!(m("\"5%\"").unwrap(), MaxDeletes::Percent(5.0));
        assert!(m("\"150%\"").is_err());
        assert!(m("\"many\"").is_err());
        assert_eq!(MaxDeletes::Percent(10.0).limit(95), 9);
        assert_eq!(MaxDeletes::Count(3).limit(1), 3);
    }

    #[test]
    fn kinds_need_their_tables() {
        let s = Secrets::default();
        let none = Tables::default();
        let e = validate(ConnectorKind::Graph, None, none, &s).unwrap_err();
        assert!(e.to_string().contains("[connectors.NAME.graph]"), "{e}");
        let e = validate(ConnectorKind::Okta, None, none, &s).unwrap_err();
        assert!(e.to_string().contains("[connectors.NAME.okta]"), "{e}");
        let e = validate(ConnectorKind::Onelogin, None, none, &s).unwrap_err();
        assert!(e.to_string().contains("[connectors.NAME.onelogin]"), "{e}");
        let p = PullSettings::default();
        let e = validate(ConnectorKind::Scim, Some(&p), none, &s).unwrap_err();
        assert!(e.to_string().contains("kind"), "{e}");
        let g = GraphSettings {
            tenant_id: "t".into(),
            client_id: "c".into(),
            client_secret_env: "GRAPH_SECRET".into(),
            base_url: "http://graph.example.com".into(),
            token_url: None,
        };
        let t = Tables {
            graph: Some(&g),
            ..Tables::default()
        };
        let e = validate(ConnectorKind::Graph, None, t, &s).unwrap_err();
        assert!(e.to_string().contains("GRAPH_SECRET"), "{e}");
        let mut s = Secrets::default();
        s.set("GRAPH_SECRET", "x");
        let e = validate(ConnectorKind::Graph, None, t, &s).unwrap_err();
        assert!(e.to_string().contains("https"), "{e}");
        let e = validate(ConnectorKind::Okta, None, t, &s).unwrap_err();
        assert!(e.to_string().contains("[graph] does not apply"), "{e}");
    }

    fn okta(
        token_env: Option<&str>,
        client_id: Option<&str>,
        key_env: Option<&str>,
    ) -> OktaSettings {
        OktaSettings {
            org_url: "https://example.okta.com".into(),
            token_env: token_env.map(Into::into),
            client_id: client_id.map(Into::into),
            private_key_env: key_env.map(Into::into),
            key_id: None,
            token_url: None,
            overlap: default_overlap(),
        }
    }

    #[test]
    fn okta_takes_a_token_or_a_service_app_but_not_both() {
        let mut s = Secrets::default();
        s.set("OKTA_TOKEN", "00abc");
        s.set("OKTA_KEY", "-----BEGIN PRIVATE KEY-----");
        let check = |o: &OktaSettings| {
            let t = Tables {
                okta: Some(o),
                ..Tables::default()
            };
            validate(ConnectorKind::Okta, None, t, &s)
        };
        check(&okta(Some("OKTA_TOKEN"), None, None)).unwrap();
        check(&okta(None, Some("0oa1"), Some("OKTA_KEY"))).unwrap();
        let e = check(&okta(Some("OKTA_TOKEN"), Some("0oa1"), Some("OKTA_KEY"))).unwrap_err();
        assert!(e.to_string().contains("not both"), "{e}");
        let e = check(&okta(None, Some("0oa1"), None)).unwrap_err();
        assert!(e.to_string().contains("private_key_env"), "{e}");
        let e = check(&okta(Some("MISSING"), None, None)).unwrap_err();
        assert!(e.to_string().contains("MISSING"), "{e}");
        let mut plain = okta(Some("OKTA_TOKEN"), None, None);
        plain.org_url = "http://example.okta.com".into();
        assert!(check(&plain).unwrap_err().to_string().contains("https"));
        assert_eq!(
            okta(None, None, None).token_url(),
            "https://example.okta.com/oauth2/v1/token"
        );
    }

    #[test]
    fn onelogin_needs_its_secret_and_an_https_url() {
        let o = OneloginSettings {
            base_url: "https://example.onelogin.com".into(),
            client_id: "abc".into(),
            client_secret_env: "OL_SECRET".into(),
            overlap: default_overlap(),
        };
        let t = Tables {
            onelogin: Some(&o),
            ..Tables::default()
        };
        let mut s = Secrets::default();
        let e = validate(ConnectorKind::Onelogin, None, t, &s).unwrap_err();
        assert!(e.to_string().contains("OL_SECRET"), "{e}");
        s.set("OL_SECRET", "x");
        validate(ConnectorKind::Onelogin, None, t, &s).unwrap();
        let e = validate(ConnectorKind::Google, None, t, &s).unwrap_err();
        assert!(e.to_string().contains("[onelogin] does not apply"), "{e}");
    }
}
