//! `[connectors.NAME.webhook]`.

use serde::{Deserialize, Serialize};

use crate::errors::ConfigError;
use crate::values::Dur;

/// Shortest signing secret accepted (HMAC-SHA256 keys shorter than the hash add no safety
/// margin; shorter ones are guessable).
pub const MIN_SECRET_LEN: usize = 32;

/// The signed profile webhook of one connector.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// Where each changed profile is POSTed (`https://` recommended; the body is personal
    /// data).
    pub url: String,
    /// Environment variable holding the HMAC-SHA256 signing secret, shared with the
    /// receiver.
    pub secret_env: String,
    /// Time allowed for one POST; a timeout is retried.
    #[serde(default = "default_timeout")]
    pub timeout: Dur,
}

fn default_timeout() -> Dur {
    Dur(std::time::Duration::from_secs(10))
}

impl WebhookSettings {
    /// Checks the URL and the secret variable; `env` reads an environment variable.
    pub fn validate(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if !(self.url.starts_with("https://") || self.url.starts_with("http://")) {
            return Err(ConfigError(format!(
                "webhook.url = {:?} must start with https:// or http://",
                self.url
            )));
        }
        match env(&self.secret_env) {
            Some(v) if v.len() >= MIN_SECRET_LEN => Ok(()),
            Some(_) => Err(ConfigError(format!(
                "webhook.secret_env names {}, whose value is shorter than {MIN_SECRET_LEN} \
                 bytes; use a long random secret (e.g. `openssl rand -hex 32`)",
                self.secret_env
            ))),
            None => Err(ConfigError(format!(
                "webhook.secret_env names the environment variable {}, which is not set; \
                 export it with the signing secret",
                self.secret_env
            ))),
        }
    }
}
