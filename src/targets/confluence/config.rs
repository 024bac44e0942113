//! How to reach Confluence: the `[confluence]` settings as written in `usersync.toml`
//! ([`ConfluenceSettings`]) and the resolved, ready-to-use [`ConfluenceConfig`] with its
//! secrets read from the environment.
//!
//! ```toml
//! [confluence]
//! base_url = "https://wiki.example.com/confluence"  # context path allowed
//! token_env = "USERSYNC_CONFLUENCE_TOKEN"           # a personal access token, or:
//! # username = "svc-usersync"; password_env = "USERSYNC_CONFLUENCE_PASSWORD"
//! # connect_timeout = "5s"; request_timeout = "30s"; user_agent = "usersync/0.1.0"
//! ```
//!
//! Secrets never sit in the file, and [`Secret`] keeps them out of `Debug` output.

use std::fmt;
use std::time::Duration;

use reqwest::Url;
use serde::{Deserialize, Serialize};

use crate::values::Dur;

/// A `[confluence]` configuration that cannot be used: the message says what to fix and
/// names environment variables, never their values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidConfig(pub String);

/// A credential. `Debug` prints `[redacted]`; there is no `Display` and no `Serialize`, so
/// the only way to the value is the explicit [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The credential, for building the `Authorization` header and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// How usersync authenticates to Confluence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfluenceAuth {
    /// A personal access token (`Authorization: Bearer`, Confluence 7.9+). Recommended: it
    /// survives password policies and SSO. The legacy JSON-RPC API does not accept it
    /// (zabel-elements \[code\]), so the pre-9.4 update fallback is unavailable with a PAT.
    Pat(Secret),
    /// Username and password (`Authorization: Basic`). May be blocked by "SSO for Atlassian
    /// Data Center" or similar apps (docs/reference/confluence-api.md §1.5).
    Basic {
        /// The service account's username.
        username: String,
        /// Its password.
        password: Secret,
    },
}

impl ConfluenceAuth {
    /// `pat` or `basic`, for logs.
    pub fn scheme(&self) -> &'static str {
        match self {
            Self::Pat(_) => "pat",
            Self::Basic { .. } => "basic",
        }
    }
}

/// Default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default timeout of a whole request (connect, send, wait, read the body).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Everything the client needs, secrets included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfluenceConfig {
    /// Base URL with any context path, e.g. `https://wiki.example.com/confluence`. Treated
    /// as opaque: `/rest/...` is appended to it.
    pub base_url: String,
    /// Credentials.
    pub auth: ConfluenceAuth,
    /// Time to establish a TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Time for a whole request.
    pub request_timeout: Duration,
    /// `User-Agent` header, so Confluence admins can tell usersync's traffic apart.
    pub user_agent: String,
}

impl ConfluenceConfig {
    /// A configuration with the default timeouts and user agent.
    pub fn new(base_url: impl Into<String>, auth: ConfluenceAuth) -> Self {
        Self {
            base_url: base_url.into(),
            auth,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            user_agent: default_user_agent(),
        }
    }
}

/// `usersync/<crate version>`.
pub fn default_user_agent() -> String {
    format!("usersync/{}", env!("CARGO_PKG_VERSION"))
}

fn default_connect_timeout() -> Dur {
    Dur(DEFAULT_CONNECT_TIMEOUT)
}

fn default_request_timeout() -> Dur {
    Dur(DEFAULT_REQUEST_TIMEOUT)
}

/// The `[confluence]` section of `usersync.toml`. Holds the *names* of the environment
/// variables with the secrets, never the secrets; [`ConfluenceSettings::resolve`] reads
/// them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConfluenceSettings {
    /// Base URL, context path allowed (`https://wiki.example.com/confluence`).
    pub base_url: String,
    /// Environment variable holding a personal access token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
    /// Username for Basic auth (with `password_env`), instead of a token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Environment variable holding the Basic-auth password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// Connect timeout (default `5s`).
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: Dur,
    /// Whole-request timeout (default `30s`).
    #[serde(default = "default_request_timeout")]
    pub request_timeout: Dur,
    /// `User-Agent` (default `usersync/<version>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

impl ConfluenceSettings {
    /// The environment variables holding secrets, read once at load (`config/secrets.rs`).
    pub fn env_names(&self) -> Vec<&str> {
        self.token_env
            .iter()
            .chain(&self.password_env)
            .map(String::as_str)
            .collect()
    }

    /// Checks the settings and takes the secret from `secret` (a variable's value, as read
    /// at load). The error says what to fix and names variables, never their values.
    pub fn resolve(
        &self,
        secret: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ConfluenceConfig, InvalidConfig> {
        let base_url = check_base_url(&self.base_url)?;
        let invalid = |text: &str| Err(InvalidConfig(text.to_owned()));
        let lookup = |var: &str, what: &str| -> Result<Secret, InvalidConfig> {
            match secret(var) {
                Some(v) if !v.trim().is_empty() => Ok(Secret::new(v.trim())),
                _ => Err(InvalidConfig(format!(
                    "[confluence] names the environment variable {var}, which is not set or \
                     empty; export it with {what}"
                ))),
            }
        };
        let auth = match (&self.token_env, &self.username, &self.password_env) {
            (Some(token_env), None, None) => ConfluenceAuth::Pat(lookup(
                token_env,
                "the personal access token of a Confluence administrator",
            )?),
            (None, Some(username), Some(password_env)) => {
                if username.trim().is_empty() {
                    return invalid("[confluence] username is empty");
                }
                ConfluenceAuth::Basic {
                    username: username.trim().to_owned(),
                    password: lookup(password_env, "the password of that Confluence user")?,
                }
            }
            (Some(_), _, _) => {
                return invalid(
                    "[confluence] set either token_env (a personal access token) or \
                     username + password_env (Basic auth), not both",
                )
            }
            (None, Some(_), None) => {
                return invalid(
                    "[confluence] username is set but password_env is missing; add \
                     password_env = \"USERSYNC_CONFLUENCE_PASSWORD\" (or use token_env)",
                )
            }
            (None, None, Some(_)) => {
                return invalid(
                    "[confluence] password_env is set but username is missing; add the \
                     service account's username",
                )
            }
            (None, None, None) => {
                return invalid(
                    "[confluence] has no credentials; add token_env = \
                     \"USERSYNC_CONFLUENCE_TOKEN\" (a personal access token of a Confluence \
                     administrator) or username + password_env",
                )
            }
        };
        let connect_timeout = self.connect_timeout.0;
        let request_timeout = self.request_timeout.0;
        if connect_timeout.is_zero() || request_timeout.is_zero() {
            return invalid(
                "[confluence] connect_timeout and request_timeout must be longer than 0s",
            );
        }
        let user_agent = match &self.user_agent {
            Some(ua) if ua.trim().is_empty() => {
                return invalid("[confluence] user_agent is empty; remove it or set one")
            }
            Some(ua) => ua.trim().to_owned(),
            None => default_user_agent(),
        };
        Ok(ConfluenceConfig {
            base_url,
            auth,
            connect_timeout,
            request_timeout,
            user_agent,
        })
    }
}

/// Checks a base URL and returns it without a trailing slash: `http(s)`, a host, no
/// credentials, no query or fragment. The path (context path) is kept as is.
pub(crate) fn check_base_url(raw: &str) -> Result<String, InvalidConfig> {
    let trimmed = raw.trim().trim_end_matches('/');
    let url = Url::parse(trimmed).map_err(|e| {
        InvalidConfig(format!(
            "[confluence] base_url = {:?} is not a URL ({e}); use e.g. \
             \"https://wiki.example.com\" or \"https://host/confluence\"",
            crate::store::redact_url(raw)
        ))
    })?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(InvalidConfig(format!(
            "[confluence] base_url = {:?} must start with https:// (or http://)",
            crate::store::redact_url(raw)
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(InvalidConfig(format!(
            "[confluence] base_url = {:?} has no host",
            crate::store::redact_url(raw)
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        // Do not echo the URL: it holds a credential.
        return Err(InvalidConfig(
            "[confluence] base_url must not contain credentials; use token_env or \
             username + password_env"
                .to_owned(),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(InvalidConfig(format!(
            "[confluence] base_url = {:?} must not have a query or fragment; give the \
             address up to the context path",
            crate::store::redact_url(raw)
        )));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<ConfluenceSettings, String> {
        #[derive(Deserialize)]
        struct File {
            confluence: ConfluenceSettings,
        }
        toml::from_str::<File>(toml_text)
            .map(|f| f.confluence)
            .map_err(|e| e.to_string())
    }

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |var| pairs.iter().find(|(k, _)| k == var).map(|(_, v)| v.clone())
    }

    #[test]
    fn the_documented_toml_with_a_token_resolves_to_a_pat_config() {
        let settings = parse(
            r#"
            [confluence]
            base_url = "https://wiki.example.com/confluence/"
            token_env = "USERSYNC_CONFLUENCE_TOKEN"
            connect_timeout = "2s"
            request_timeout = "45s"
            "#,
        )
        .expect("parses");
        let config = settings
            .resolve(&env(&[("USERSYNC_CONFLUENCE_TOKEN", "pat-123")]))
            .expect("resolves");
        assert_eq!(config.base_url, "https://wiki.example.com/confluence");
        assert_eq!(config.auth, ConfluenceAuth::Pat(Secret::new("pat-123")));
        assert_eq!(config.connect_timeout, Duration::from_secs(2));
        assert_eq!(config.request_timeout, Duration::from_secs(45));
        assert!(config.user_agent.starts_with("usersync/"));
    }

    #[test]
    fn basic_auth_takes_a_username_and_a_password_variable_and_default_timeouts() {
        let settings = parse(
            r#"
            [confluence]
            base_url = "http://localhost:8090"
            username = "svc-usersync"
            password_env = "USERSYNC_CONFLUENCE_PASSWORD"
            "#,
        )
        .expect("parses");
        let config = settings
            .resolve(&env(&[("USERSYNC_CONFLUENCE_PASSWORD", "pw")]))
            .expect("resolves");
        assert_eq!(
            config.auth,
            ConfluenceAuth::Basic {
                username: "svc-usersync".to_owned(),
                password: Secret::new("pw"),
            }
        );
        assert_eq!(config.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        assert_eq!(config.request_timeout, DEFAULT_REQUEST_TIMEOUT);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = parse("[confluence]\nbase_url = \"https://w\"\ntoken = \"inline\"")
            .expect_err("unknown key");
        assert!(e.contains("unknown field"), "{e}");
    }

    #[test]
    fn resolve_errors_say_what_to_fix_without_secret_values() {
        let with = |extra: &str| {
            parse(&format!(
                "[confluence]\nbase_url = \"https://wiki.example.com\"\n{extra}"
            ))
            .expect("parses")
        };
        let e = with("token_env = \"T\"")
            .resolve(&|_| None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("T, which is not set"), "{e}");
        let e = with("token_env = \"T\"")
            .resolve(&env(&[("T", "  ")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not set or empty"), "{e}");
        let e = with("").resolve(&|_| None).unwrap_err().to_string();
        assert!(e.contains("token_env"), "{e}");
        let e = with("token_env = \"T\"\nusername = \"u\"\npassword_env = \"P\"")
            .resolve(&env(&[("T", "x"), ("P", "y")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not both"), "{e}");
        let e = with("username = \"u\"")
            .resolve(&|_| None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("password_env is missing"), "{e}");
        let e = with("token_env = \"T\"\nrequest_timeout = \"0s\"")
            .resolve(&env(&[("T", "x")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("longer than 0s"), "{e}");
    }

    #[test]
    fn bad_base_urls_are_refused_and_credentials_in_them_are_not_echoed() {
        assert!(check_base_url("wiki.example.com").is_err());
        assert!(check_base_url("ftp://wiki.example.com").is_err());
        assert!(check_base_url("https://wiki.example.com/?a=b").is_err());
        let e = check_base_url("https://svc:hunter2@wiki.example.com")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
        assert_eq!(
            check_base_url(" https://host:8443/confluence// ").as_deref(),
            Ok("https://host:8443/confluence")
        );
    }

    #[test]
    fn debug_output_redacts_secrets() {
        let config = ConfluenceConfig::new(
            "https://wiki.example.com",
            ConfluenceAuth::Basic {
                username: "svc".to_owned(),
                password: Secret::new("hunter2"),
            },
        );
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("[redacted]"), "{debug}");
        let pat = format!("{:?}", ConfluenceAuth::Pat(Secret::new("pat-secret")));
        assert!(!pat.contains("pat-secret"), "{pat}");
    }
}
