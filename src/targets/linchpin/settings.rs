//! `[connectors.NAME.linchpin]` (the feed) and `[linchpin]` (reading Linchpin's field list).

use serde::{Deserialize, Serialize};

use super::fields::Credentials;
use crate::errors::ConfigError;
use crate::mapping::engine::is_xml_name;
use crate::values::Dur;

/// Whether deprovisioned (inactive) users stay in the feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Deprovisioned {
    /// Leave them out: their Linchpin values stay, editable again (docs/reference/confluence-api.md
    /// §2.2: "fields absent for a user stay editable").
    #[default]
    Omit,
    /// Keep them in the feed, so their profile keeps following the IdP.
    Keep,
}

/// Shortest feed key accepted: the key is the feed's only protection and sits in a URL.
pub const MIN_FEED_KEY_LEN: usize = 24;

/// The Linchpin XML feed of one connector.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeedSettings {
    /// Environment variable holding the feed key, passed by Linchpin as `?key=`. Without it
    /// the connector has no feed (404).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feed_key_env: Option<String>,
    /// The document element.
    pub root_tag: String,
    /// One element per user (Linchpin's "user tag").
    pub user_tag: String,
    /// The element holding the Confluence username (Linchpin's "username tag").
    pub username_tag: String,
    /// Separator of multi-valued fields inside one element. How Linchpin splits
    /// multi-select values is not documented **\[gap\]**; `;` is an assumption.
    pub multi_value_delimiter: String,
    /// Inactive users: `omit` (default) or `keep`.
    pub deprovisioned: Deprovisioned,
}

impl Default for FeedSettings {
    fn default() -> Self {
        Self {
            feed_key_env: None,
            root_tag: "users".to_owned(),
            user_tag: "user".to_owned(),
            username_tag: "username".to_owned(),
            multi_value_delimiter: ";".to_owned(),
            deprovisioned: Deprovisioned::Omit,
        }
    }
}

impl FeedSettings {
    /// Checks tags and the key variable; `env` reads an environment variable.
    pub fn validate(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        for (key, tag) in [
            ("root_tag", &self.root_tag),
            ("user_tag", &self.user_tag),
            ("username_tag", &self.username_tag),
        ] {
            if !is_xml_name(tag) {
                return Err(ConfigError(format!(
                    "linchpin.{key} = {tag:?} is not a usable XML element name"
                )));
            }
        }
        if self.multi_value_delimiter.is_empty() {
            return Err(ConfigError(
                "linchpin.multi_value_delimiter must not be empty".to_owned(),
            ));
        }
        if let Some(var) = &self.feed_key_env {
            match env(var) {
                Some(v) if v.trim().len() >= MIN_FEED_KEY_LEN => {}
                Some(_) => {
                    return Err(ConfigError(format!(
                        "linchpin.feed_key_env names {var}, whose value is shorter than \
                         {MIN_FEED_KEY_LEN} characters; use a long random key (e.g. \
                         `openssl rand -hex 32`)"
                    )))
                }
                None => {
                    return Err(ConfigError(format!(
                        "linchpin.feed_key_env names the environment variable {var}, which is \
                         not set; export it with the feed key"
                    )))
                }
            }
        }
        Ok(())
    }
}

/// `[linchpin]`: where `check-config` reads Linchpin's field list (`GET
/// /rest/cup/1.0/fields`) to compare it with the mappings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LinchpinSettings {
    /// Confluence base URL with context path, e.g. `https://wiki.example.com/confluence`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Environment variable holding a personal access token (Bearer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
    /// Basic-auth username (with `password_env`), for instances without PATs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Environment variable holding the Basic-auth password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// Timeout of the read.
    pub timeout: Dur,
}

impl Default for LinchpinSettings {
    fn default() -> Self {
        Self {
            base_url: None,
            token_env: None,
            username: None,
            password_env: None,
            timeout: Dur(std::time::Duration::from_secs(10)),
        }
    }
}

impl LinchpinSettings {
    /// The environment variables holding secrets, read once at load (`config/secrets.rs`).
    pub fn env_names(&self) -> Vec<&str> {
        self.token_env
            .iter()
            .chain(&self.password_env)
            .map(String::as_str)
            .collect()
    }

    /// The credentials of the field-list read: a token, a Basic pair, or none; `secret`
    /// gives a variable's value (read at load).
    pub fn credentials(
        &self,
        secret: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Credentials, ConfigError> {
        let var = |name: &str| {
            secret(name).filter(|v| !v.is_empty()).ok_or_else(|| {
                ConfigError(format!(
                    "[linchpin] names the environment variable {name}, which is not set"
                ))
            })
        };
        Ok(
            match (&self.token_env, &self.username, &self.password_env) {
                (Some(t), _, _) => Credentials::Bearer(var(t)?),
                (None, Some(u), Some(p)) => Credentials::Basic(u.clone(), var(p)?),
                _ => Credentials::Anonymous,
            },
        )
    }
}
