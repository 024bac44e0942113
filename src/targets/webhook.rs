//! The signed profile webhook: on every change of a user's mapped profile, POST it as JSON
//! to the connector's URL, signed (see [`sign`]). Delivered and retried by the delivery worker
//! like Confluence calls; the worker remembers a digest of the last profile the receiver
//! acknowledged, so an unchanged profile sends nothing.
//!
//! The body (`payload`) is the profile as JSON: `{"connector", "id", "username", "active",
//! "fields": {name: value}}` where a value is a string, an array of strings (multi-valued)
//! or `null` (cleared); fields the mapping leaves to the target (keep, pending manager,
//! failed rule) are absent. A deleted user is sent once as `{"connector", "id", "username",
//! "deleted": true}`.

pub mod settings;
pub mod sign;

use std::time::Duration;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::mapping::{FieldValue, Profile};

pub use settings::WebhookSettings;

/// How a POST failed, classified like the Confluence client's errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendClass {
    /// 429, or 503 with `Retry-After`.
    RateLimited(Option<Duration>),
    /// 401/403: the receiver refused the signature; an admin must fix the secret. Retried.
    Unauthorized,
    /// 5xx, timeout, connection refused or reset: retried.
    Transient,
    /// Any other 4xx: the receiver refuses this profile; not retried until it changes.
    Permanent,
}

/// A failed POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    /// Classification.
    pub class: SendClass,
    /// HTTP status, when an answer came.
    pub status: Option<u16>,
    /// What happened, with the start of the answer; never the request body.
    pub message: String,
}

impl SendError {
    /// The error class recorded with delivery attempts.
    pub fn class_name(&self) -> &'static str {
        match self.class {
            SendClass::RateLimited(_) => "rate_limited",
            SendClass::Unauthorized => "unauthorized",
            SendClass::Transient => "transient",
            SendClass::Permanent => "permanent",
        }
    }
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(s) => write!(
                f,
                "webhook {} (HTTP {s}): {}",
                self.class_name(),
                self.message
            ),
            None => write!(f, "webhook {}: {}", self.class_name(), self.message),
        }
    }
}

/// Longest part of an answer kept in the attempt record.
const RESPONSE_KEEP: usize = 512;

/// A configured webhook.
#[derive(Clone)]
pub struct WebhookClient {
    url: String,
    secret: Vec<u8>,
    http: reqwest::Client,
}

impl std::fmt::Debug for WebhookClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookClient")
            .field("url", &self.url)
            .field("secret", &"[redacted]")
            .finish()
    }
}

impl WebhookClient {
    /// A client for `settings` signing with `secret`.
    pub fn new(settings: &WebhookSettings, secret: Vec<u8>) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout.0)
            .build()
            .map_err(|e| format!("cannot build the webhook HTTP client: {e}"))?;
        Ok(Self {
            url: settings.url.clone(),
            secret,
            http,
        })
    }

    /// POSTs `body`, signed now.
    pub async fn post(&self, body: &str) -> Result<u16, SendError> {
        let ts = OffsetDateTime::now_utc().unix_timestamp();
        let res = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header(sign::TIMESTAMP_HEADER, ts.to_string())
            .header(
                sign::SIGNATURE_HEADER,
                sign::signature(&self.secret, ts, body.as_bytes()),
            )
            .body(body.to_owned())
            .send()
            .await
            .map_err(|e| SendError {
                class: SendClass::Transient,
                status: None,
                message: if e.is_timeout() {
                    "timed out".to_owned()
                } else {
                    format!("cannot reach the receiver: {}", without_url(&e))
                },
            })?;
        let status = res.status().as_u16();
        if res.status().is_success() {
            return Ok(status);
        }
        let retry_after = res
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let text = res.text().await.unwrap_or_default();
        let class = match status {
            429 => SendClass::RateLimited(retry_after),
            503 if retry_after.is_some() => SendClass::RateLimited(retry_after),
            401 | 403 => SendClass::Unauthorized,
            408 | 500..=599 => SendClass::Transient,
            _ => SendClass::Permanent,
        };
        Err(SendError {
            class,
            status: Some(status),
            message: text.chars().take(RESPONSE_KEEP).collect(),
        })
    }
}

/// A transport error without the URL (which may carry a token in its query).
fn without_url(e: &reqwest::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut last = None;
    while let Some(s) = source {
        last = Some(s.to_string());
        source = s.source();
    }
    last.unwrap_or_else(|| "connection failed".to_owned())
}

/// `Retry-After` as seconds or an HTTP date.
fn parse_retry_after(v: &str) -> Option<Duration> {
    if let Ok(secs) = v.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let at = time::PrimitiveDateTime::parse(v.trim(), format)
        .ok()?
        .assume_utc();
    let wait = at - OffsetDateTime::now_utc();
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

/// The JSON body for a profile.
pub fn payload(connector: &str, id: &str, profile: &Profile) -> String {
    let mut fields = Map::new();
    for f in &profile.fields {
        let value = match &f.value {
            FieldValue::Set(v) if v.len() == 1 => Value::String(v[0].clone()),
            FieldValue::Set(v) => Value::Array(v.iter().cloned().map(Value::String).collect()),
            FieldValue::Clear => Value::Null,
            FieldValue::Keep | FieldValue::Pending | FieldValue::Failed(_) => continue,
        };
        fields.insert(f.name.clone(), value);
    }
    json!({
        "connector": connector,
        "id": id,
        "username": profile.username,
        "active": profile.active,
        "fields": fields,
    })
    .to_string()
}

/// The JSON body telling the receiver a user is gone.
pub fn deleted_payload(connector: &str, id: &str, username: Option<&str>) -> String {
    json!({"connector": connector, "id": id, "username": username, "deleted": true}).to_string()
}

/// The digest remembered per user: hex SHA-256 of the body.
pub fn digest(body: &str) -> String {
    Sha256::digest(body.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::ProfileField;

    #[test]
    fn the_payload_has_strings_arrays_and_nulls_and_omits_what_the_target_keeps() {
        let f = |name: &str, value| ProfileField {
            name: name.into(),
            xml: name.into(),
            value,
            source: None,
        };
        let p = Profile {
            username: "ada".into(),
            active: false,
            fields: vec![
                f("title", FieldValue::Set(vec!["Analyst".into()])),
                f(
                    "skills",
                    FieldValue::Set(vec!["Rust".into(), "SCIM".into()]),
                ),
                f("division", FieldValue::Clear),
                f("manager", FieldValue::Pending),
            ],
        };
        let body: Value = serde_json::from_str(&payload("entra", "u1", &p)).unwrap();
        assert_eq!(
            body,
            json!({"connector": "entra", "id": "u1", "username": "ada", "active": false,
                   "fields": {"title": "Analyst", "skills": ["Rust", "SCIM"], "division": null}})
        );
        assert_eq!(digest("x"), digest("x"));
        assert_ne!(digest("x"), digest("y"));
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
