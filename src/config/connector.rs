//! `[connectors.NAME]`: how one IdP connection authenticates, and the checks made at start.
//!
//! A connector may offer several modes at once (an Okta connector with a header token *and*
//! Basic, an Entra connector with a static token while moving to OAuth). Secrets are never
//! written in the file: each `*_env` key names an environment variable, read once into
//! [`Secrets`]. The keys and their defaults are documented in `deploy/usersync.toml`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ConfigError, Dur, OneOrMany, Secrets};

/// The audience of the tokens Entra signs for every non-gallery app when the Secret Token is
/// left blank (docs/reference/idp-behaviour.md §2.9 item 2, MS-SCIM).
pub const ENTRA_NON_GALLERY_AUDIENCE: &str = "8adf8e6e-67b2-4cf2-a259-e3dc5476c621";

/// Shortest HMAC key accepted for our access tokens: 256 bits, the size of the HS256 output
/// (RFC 7518 §3.2 requires a key at least as long as the hash).
pub const MIN_SIGNING_KEY_BYTES: usize = 32;

/// Longest clock skew accepted on `exp`/`nbf`: more hides a broken clock rather than skew.
const MAX_LEEWAY: Duration = Duration::from_secs(300);

/// Bounds on `oauth.token_ttl`. Entra's gallery rules want 60 minutes to 6 hours (MS-GAL);
/// anything from a minute to a day is allowed for other clients.
const MIN_TOKEN_TTL: Duration = Duration::from_secs(60);
const MAX_TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);

/// One IdP connection declared in the file.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ConnectorSettings {
    /// How the connector gets its users: pushed over SCIM (default) or pulled from an IdP's
    /// API (`graph`, `google`, `okta`, `onelogin`), whose SCIM endpoint is then read-only (docs/pull.md).
    #[serde(default)]
    pub kind: super::pull::ConnectorKind,
    /// When a pull connector runs and its deletion guard (`[connectors.NAME.pull]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull: Option<super::pull::PullSettings>,
    /// Microsoft Graph's credentials (`kind = "graph"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph: Option<super::pull::GraphSettings>,
    /// Google Workspace's service account (`kind = "google"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub google: Option<super::pull::GoogleSettings>,
    /// Okta's API token or OAuth service app (`kind = "okta"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub okta: Option<super::pull::OktaSettings>,
    /// OneLogin's API credential (`kind = "onelogin"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onelogin: Option<super::pull::OneloginSettings>,
    /// Environment variable(s) holding static bearer token(s); all listed are valid at once,
    /// so a token is rotated by listing the new variable next to the old one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_env: Option<OneOrMany>,
    /// HTTP Basic credentials (Okta's "Basic Auth", PingOne).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic: Option<BasicSettings>,
    /// Bearer JWTs signed by Entra ID itself (Entra's blank Secret Token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entra_jwt: Option<EntraJwtSettings>,
    /// An OAuth 2.0 client-credentials token endpoint at `/scim/v2/NAME/oauth/token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth: Option<OAuthSettings>,
    /// What delivery does with this connector's users and groups in Confluence.
    #[serde(default)]
    pub provisioning: crate::delivery::settings::Provisioning,
    /// Attribute mapping: identity rules, Linchpin profile fields, manager resolution
    /// (`[connectors.NAME.mapping]`, see docs/mapping.md).
    #[serde(default)]
    pub mapping: crate::mapping::MappingSettings,
    /// The Linchpin XML feed (`[connectors.NAME.linchpin]`).
    #[serde(default)]
    pub linchpin: crate::targets::linchpin::FeedSettings,
    /// The signed profile webhook (`[connectors.NAME.webhook]`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<crate::targets::webhook::WebhookSettings>,
}

/// `basic = { username = "…", password_env = "…" }`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BasicSettings {
    /// The user name the IdP sends. Not a secret (it is printed by `check-config`).
    pub username: String,
    /// Environment variable(s) holding the password; several are valid at once, to rotate.
    pub password_env: OneOrMany,
}

/// `[connectors.NAME.entra_jwt]`: accept bearer JWTs that Entra signs with its tenant keys.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EntraJwtSettings {
    /// The directory (tenant) ID, a GUID; `iss` must be `https://sts.windows.net/<it>/`.
    pub tenant_id: String,
    /// The `aud` the tokens must carry.
    #[serde(default = "default_entra_audience")]
    pub audience: String,
    /// Where the tenant's signing keys are published. Default:
    /// `https://login.microsoftonline.com/<tenant_id>/discovery/keys`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`.
    #[serde(default = "default_leeway")]
    pub leeway: Dur,
}

/// `[connectors.NAME.oauth]`: our token endpoint for the client-credentials grant.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthSettings {
    /// The client identifier the IdP is given (Entra's "Client Identifier", PingOne's
    /// "Client ID"). Not a secret.
    pub client_id: String,
    /// Environment variable(s) holding client secrets; several are valid at once (MS-GAL
    /// requires that more than one secret can be active).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_env: Option<OneOrMany>,
    /// Lifetime of the access tokens we issue.
    #[serde(default = "default_token_ttl")]
    pub token_ttl: Dur,
    /// Environment variable(s) holding HMAC keys (at least 32 bytes) that sign our access
    /// tokens: the first signs, all verify. Unset: a random key per process and connector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key_env: Option<OneOrMany>,
    /// Workload identity federation: accept an Entra-signed client assertion (RFC 7523)
    /// instead of a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wif: Option<WifSettings>,
}

/// `[connectors.NAME.oauth.wif]`: the Entra workload identity whose assertions we accept
/// (docs/reference/idp-behaviour.md §2.9 item 5, MSREF-WIF).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WifSettings {
    /// The customer's tenant ID; `iss` must be `https://login.microsoftonline.com/<it>/v2.0`
    /// and `tid` must equal it.
    pub tenant_id: String,
    /// The `aud` Entra shows for the workload identity: `api://<app id>/.default` as Entra's
    /// screen shows it, or `api://<app id>`; either form accepts both (and the bare app id).
    pub audience: String,
    /// The `sub` Entra shows (the provisioning service's workload identity object).
    pub subject: String,
    /// Default: `https://login.microsoftonline.com/<tenant_id>/discovery/v2.0/keys`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`.
    #[serde(default = "default_leeway")]
    pub leeway: Dur,
}

impl WifSettings {
    /// The resource the configured audience names ([`audience_resource`]).
    pub fn audience_resource(&self) -> &str {
        audience_resource(&self.audience)
    }
}

/// The resource an audience names: the text without surrounding spaces, a trailing
/// `/.default` (the OAuth scope suffix Entra's screen shows with it) or `/`. Two audiences
/// that differ only by that suffix name the same resource (docs/idp/entra.md).
pub fn audience_resource(configured: &str) -> &str {
    let c = configured.trim();
    c.strip_suffix("/.default")
        .unwrap_or(c)
        .trim_end_matches('/')
}

fn default_entra_audience() -> String {
    ENTRA_NON_GALLERY_AUDIENCE.to_owned()
}
fn default_leeway() -> Dur {
    Dur(Duration::from_secs(60))
}
fn default_token_ttl() -> Dur {
    Dur(Duration::from_secs(3600))
}

impl EntraJwtSettings {
    /// The exact `iss` of the tenant's v1 tokens.
    pub fn issuer(&self) -> String {
        format!(
            "https://sts.windows.net/{}/",
            self.tenant_id.to_ascii_lowercase()
        )
    }

    /// The JWKS URL in force.
    pub fn jwks_url(&self) -> String {
        self.jwks_url.clone().unwrap_or_else(|| {
            format!(
                "https://login.microsoftonline.com/{}/discovery/keys",
                self.tenant_id.to_ascii_lowercase()
            )
        })
    }
}

impl WifSettings {
    /// The exact `iss` of the tenant's v2 tokens.
    pub fn issuer(&self) -> String {
        format!(
            "https://login.microsoftonline.com/{}/v2.0",
            self.tenant_id.to_ascii_lowercase()
        )
    }

    /// The JWKS URL in force.
    pub fn jwks_url(&self) -> String {
        self.jwks_url.clone().unwrap_or_else(|| {
            format!(
                "https://login.microsoftonline.com/{}/discovery/v2.0/keys",
                self.tenant_id.to_ascii_lowercase()
            )
        })
    }
}

impl ConnectorSettings {
    /// The IdP tables of a pull connector.
    pub fn pull_tables(&self) -> super::pull::Tables<'_> {
        super::pull::Tables {
            graph: self.graph.as_ref(),
            google: self.google.as_ref(),
            okta: self.okta.as_ref(),
            onelogin: self.onelogin.as_ref(),
        }
    }

    /// The names of every environment variable this connector reads.
    pub fn env_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        names.extend(self.token_env.iter().flat_map(OneOrMany::values));
        names.extend(self.basic.iter().flat_map(|b| b.password_env.values()));
        if let Some(o) = &self.oauth {
            names.extend(o.client_secret_env.iter().flat_map(OneOrMany::values));
            names.extend(o.signing_key_env.iter().flat_map(OneOrMany::values));
        }
        names.extend(self.linchpin.feed_key_env.as_deref());
        names.extend(self.webhook.as_ref().map(|w| w.secret_env.as_str()));
        names.extend(super::pull::env_names(self.pull_tables()));
        names
    }

    /// Checks this connector's keys and that its variables are set. The message says what
    /// to fix; the caller prefixes `[connectors.NAME]`.
    pub fn validate(&self, secrets: &Secrets) -> Result<(), ConfigError> {
        super::pull::validate(self.kind, self.pull.as_ref(), self.pull_tables(), secrets)?;
        for var in self.token_env.iter().flat_map(OneOrMany::values) {
            secrets.require("token_env", var, "the connector's bearer token")?;
        }
        if let Some(b) = &self.basic {
            if b.username.is_empty() || b.username.contains(':') {
                return Err(ConfigError(
                    "basic.username must be non-empty and without ':' \
                     (HTTP Basic cannot carry a ':' in the user name, RFC 7617)"
                        .to_owned(),
                ));
            }
            for var in b.password_env.values() {
                secrets.require("basic.password_env", var, "the Basic password")?;
            }
        }
        if let Some(j) = &self.entra_jwt {
            check_tenant("entra_jwt.tenant_id", &j.tenant_id)?;
            non_empty("entra_jwt.audience", &j.audience)?;
            check_jwks_url("entra_jwt.jwks_url", &j.jwks_url())?;
            check_leeway("entra_jwt.leeway", j.leeway)?;
        }
        if let Some(o) = &self.oauth {
            o.validate(secrets)?;
        }
        let lookup = |var: &str| secrets.get(var).map(str::to_owned);
        // The targets' settings still report a String (their module is not converted yet).
        self.linchpin.validate(&lookup)?;
        if let Some(w) = &self.webhook {
            w.validate(&lookup)?;
        }
        Ok(())
    }
}

impl OAuthSettings {
    fn validate(&self, secrets: &Secrets) -> Result<(), ConfigError> {
        if self.client_id.is_empty()
            || !self
                .client_id
                .chars()
                .all(|c| c.is_ascii_graphic() && c != ':')
        {
            return Err(ConfigError(
                "oauth.client_id must be printable ASCII without spaces or ':' \
                 (it travels in HTTP Basic client authentication)"
                    .to_owned(),
            ));
        }
        if self.client_secret_env.is_none() && self.wif.is_none() {
            return Err(ConfigError(
                "oauth needs client_secret_env, or wif for workload identity federation".to_owned(),
            ));
        }
        for var in self.client_secret_env.iter().flat_map(OneOrMany::values) {
            secrets.require("oauth.client_secret_env", var, "a client secret")?;
        }
        for var in self.signing_key_env.iter().flat_map(OneOrMany::values) {
            let key = secrets.require("oauth.signing_key_env", var, "an HMAC key")?;
            if key.len() < MIN_SIGNING_KEY_BYTES {
                return Err(ConfigError(format!(
                    "oauth.signing_key_env: the key in {var} is {} bytes; it must be at least \
                     {MIN_SIGNING_KEY_BYTES} (e.g. `openssl rand -base64 48`)",
                    key.len()
                )));
            }
        }
        let ttl = self.token_ttl.0;
        if !(MIN_TOKEN_TTL..=MAX_TOKEN_TTL).contains(&ttl) {
            return Err(ConfigError(format!(
                "oauth.token_ttl = \"{}\" must be between 1m and 24h (Entra's gallery rules \
                 want 1h to 6h)",
                self.token_ttl
            )));
        }
        if let Some(w) = &self.wif {
            check_tenant("oauth.wif.tenant_id", &w.tenant_id)?;
            non_empty("oauth.wif.audience", &w.audience)?;
            non_empty("oauth.wif.subject", &w.subject)?;
            check_jwks_url("oauth.wif.jwks_url", &w.jwks_url())?;
            check_leeway("oauth.wif.leeway", w.leeway)?;
        }
        Ok(())
    }
}

/// Checks that no credential of one connector can authenticate another: a shared token,
/// Basic pair, client id or trusted Entra identity would make two connectors one.
pub fn check_distinct(
    connectors: &BTreeMap<String, ConnectorSettings>,
    secrets: &Secrets,
) -> Result<(), ConfigError> {
    // (what is accepted, how to name it without its value, which connector)
    let mut pairs: Vec<(String, String, String)> = Vec::new();
    for (name, c) in connectors {
        for var in c.token_env.iter().flat_map(OneOrMany::values) {
            if let Some(v) = secrets.get(var) {
                pairs.push((
                    format!("token\u{0}{v}"),
                    format!("the bearer token in {var}"),
                    name.clone(),
                ));
            }
        }
        if let Some(b) = &c.basic {
            for var in b.password_env.values() {
                if let Some(v) = secrets.get(var) {
                    pairs.push((
                        format!("basic\u{0}{}\u{0}{v}", b.username),
                        format!("the Basic user {} with the password in {var}", b.username),
                        name.clone(),
                    ));
                }
            }
        }
        if let Some(j) = &c.entra_jwt {
            pairs.push((
                format!("entra\u{0}{}\u{0}{}", j.issuer(), j.audience),
                format!(
                    "entra_jwt for tenant {} and audience {}",
                    j.tenant_id, j.audience
                ),
                name.clone(),
            ));
        }
        if let Some(o) = &c.oauth {
            pairs.push((
                format!("client\u{0}{}", o.client_id),
                format!("oauth.client_id {}", o.client_id),
                name.clone(),
            ));
            if let Some(w) = &o.wif {
                pairs.push((
                    format!(
                        "wif\u{0}{}\u{0}{}\u{0}{}",
                        w.issuer(),
                        w.audience_resource(),
                        w.subject
                    ),
                    format!(
                        "oauth.wif for tenant {} and subject {}",
                        w.tenant_id, w.subject
                    ),
                    name.clone(),
                ));
            }
        }
    }
    let mut owners: BTreeMap<&str, &str> = BTreeMap::new();
    for (key, description, owner) in &pairs {
        match owners.get(key.as_str()) {
            Some(first) if *first != owner.as_str() => {
                return Err(ConfigError(format!(
                    "[connectors.{first}] and [connectors.{owner}] both accept {description}; \
                     a credential must belong to one connector only"
                )));
            }
            Some(_) => {}
            None => {
                owners.insert(key.as_str(), owner.as_str());
            }
        }
    }
    Ok(())
}

fn non_empty(key: &str, value: &str) -> Result<(), ConfigError> {
    if value.trim().is_empty() {
        Err(ConfigError(format!("{key} must not be empty")))
    } else {
        Ok(())
    }
}

/// Entra tokens carry the tenant as a GUID in `iss` and `tid`, so a domain name such as
/// `contoso.onmicrosoft.com` cannot be matched.
fn check_tenant(key: &str, tenant: &str) -> Result<(), ConfigError> {
    if is_guid(tenant) {
        Ok(())
    } else {
        Err(ConfigError(format!(
            "{key} = {tenant:?} is not a tenant ID; use the directory (tenant) ID GUID shown \
             on the Entra admin center's overview page, e.g. \
             \"72f988bf-86f1-41af-91ab-2d7cd011db47\" (a domain name does not work: tokens \
             carry the GUID)"
        )))
    }
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` in hex digits.
pub fn is_guid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Signing keys decide who may provision: fetch them over HTTPS only. Plain HTTP is allowed
/// to a loopback address, for tests and a local key mirror.
fn check_jwks_url(key: &str, url: &str) -> Result<(), ConfigError> {
    if url.starts_with("https://") && url.len() > "https://".len() {
        return Ok(());
    }
    if let Some(rest) = url.strip_prefix("http://") {
        let authority = rest.split('/').next().unwrap_or_default();
        let host = if authority.starts_with('[') {
            authority.split(']').next().map(|h| format!("{h}]"))
        } else {
            authority.split(':').next().map(str::to_owned)
        }
        .unwrap_or_default();
        if host == "localhost" || host == "[::1]" || host.starts_with("127.") {
            return Ok(());
        }
    }
    Err(ConfigError(format!(
        "{key} = {:?} must be an https:// URL (plain http:// only to a loopback address)",
        crate::store::redact_url(url)
    )))
}

fn check_leeway(key: &str, leeway: Dur) -> Result<(), ConfigError> {
    if leeway.0 > MAX_LEEWAY {
        Err(ConfigError(format!(
            "{key} = \"{leeway}\" is too large; at most 5m (fix the clock instead)"
        )))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TENANT: &str = "11111111-2222-3333-4444-555555555555";

    fn secrets(pairs: &[(&str, &str)]) -> Secrets {
        let mut s = Secrets::default();
        for (k, v) in pairs {
            s.set(*k, *v);
        }
        s
    }

    fn parse(toml_text: &str) -> ConnectorSettings {
        toml::from_str(toml_text).expect("valid connector TOML")
    }

    #[test]
    fn guids_are_recognised() {
        assert!(is_guid(TENANT));
        assert!(is_guid("72F988BF-86F1-41AF-91AB-2D7CD011DB47"));
        assert!(!is_guid("contoso.onmicrosoft.com"));
        assert!(!is_guid("11111111-2222-3333-4444-55555555555g"));
    }

    #[test]
    fn issuers_and_default_jwks_urls_follow_the_tenant() {
        let c = parse(&format!(
            "[entra_jwt]\ntenant_id = \"{}\"",
            TENANT.to_uppercase()
        ));
        let j = c.entra_jwt.unwrap();
        assert_eq!(j.issuer(), format!("https://sts.windows.net/{TENANT}/"));
        assert_eq!(
            j.jwks_url(),
            format!("https://login.microsoftonline.com/{TENANT}/discovery/keys")
        );
        assert_eq!(j.audience, ENTRA_NON_GALLERY_AUDIENCE);
        let c = parse(&format!(
            "[oauth]\nclient_id = \"c\"\n[oauth.wif]\ntenant_id = \"{TENANT}\"\naudience = \"api://x\"\nsubject = \"s\""
        ));
        let w = c.oauth.unwrap().wif.unwrap();
        assert_eq!(
            w.issuer(),
            format!("https://login.microsoftonline.com/{TENANT}/v2.0")
        );
        assert!(w.jwks_url().ends_with("/discovery/v2.0/keys"));
    }

    #[test]
    fn mistakes_say_what_to_fix() {
        // A table without credentials is valid: it adds settings to a stored connector.
        assert!(ConnectorSettings::default()
            .validate(&Secrets::default())
            .is_ok());

        let c = parse("basic = { username = \"okta\", password_env = \"PW\" }");
        assert!(c
            .validate(&Secrets::default())
            .unwrap_err()
            .to_string()
            .contains("PW"));
        assert!(c.validate(&secrets(&[("PW", "pw")])).is_ok());

        let c = parse("[entra_jwt]\ntenant_id = \"contoso.onmicrosoft.com\"");
        assert!(c
            .validate(&Secrets::default())
            .unwrap_err()
            .to_string()
            .contains("GUID"));

        let c = parse(&format!(
            "[entra_jwt]\ntenant_id = \"{TENANT}\"\njwks_url = \"http://keys.example.com/k\""
        ));
        assert!(c
            .validate(&Secrets::default())
            .unwrap_err()
            .to_string()
            .contains("https"));
        let c = parse(&format!(
            "[entra_jwt]\ntenant_id = \"{TENANT}\"\njwks_url = \"http://127.0.0.1:9/k\""
        ));
        assert!(c.validate(&Secrets::default()).is_ok());

        let c = parse("[oauth]\nclient_id = \"c\"");
        assert!(c
            .validate(&Secrets::default())
            .unwrap_err()
            .to_string()
            .contains("client_secret_env"));

        let c =
            parse("[oauth]\nclient_id = \"c\"\nclient_secret_env = \"S\"\nsigning_key_env = \"K\"");
        let e = c
            .validate(&secrets(&[("S", "s"), ("K", "too-short")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least 32") && !e.contains("too-short"), "{e}");

        let c = parse("[oauth]\nclient_id = \"c\"\nclient_secret_env = \"S\"\ntoken_ttl = \"10s\"");
        assert!(c
            .validate(&secrets(&[("S", "s")]))
            .unwrap_err()
            .to_string()
            .contains("token_ttl"));
    }

    #[test]
    fn two_connectors_may_not_share_a_credential() {
        let mut all = BTreeMap::new();
        all.insert("a".to_owned(), parse("token_env = \"T1\""));
        all.insert("b".to_owned(), parse("token_env = [\"T2\", \"T3\"]"));
        let s = secrets(&[("T1", "same"), ("T2", "other"), ("T3", "same")]);
        let e = check_distinct(&all, &s).unwrap_err().to_string();
        assert!(
            e.contains("[connectors.a]") && e.contains("T3") && !e.contains("same"),
            "{e}"
        );

        let mut all = BTreeMap::new();
        let entra = format!("[entra_jwt]\ntenant_id = \"{TENANT}\"");
        all.insert("a".to_owned(), parse(&entra));
        all.insert("b".to_owned(), parse(&entra));
        assert!(check_distinct(&all, &Secrets::default())
            .unwrap_err()
            .to_string()
            .contains("entra_jwt"));

        let mut all = BTreeMap::new();
        all.insert("a".to_owned(), parse("token_env = \"T1\""));
        all.insert("b".to_owned(), parse("token_env = \"T2\""));
        assert!(check_distinct(&all, &secrets(&[("T1", "x"), ("T2", "y")])).is_ok());
    }
}
