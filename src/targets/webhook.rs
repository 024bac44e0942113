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

use std::time::{Duration, SystemTime};

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::errors::ConfigError;
use crate::mapping::{FieldValue, Profile};
use crate::targets::retry_after::parse_retry_after;
use crate::targets::{truncate_body, Call, Failure, TargetError, TargetResult, BODY_LIMIT};

pub use settings::WebhookSettings;

/// The POST of a profile, in attempt records.
pub const POST: Call = Call::new("POST", "webhook");
/// The probe: a `GET` of the URL, in attempt records.
pub const PROBE: Call = Call::new("GET", "webhook");

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
    pub fn new(settings: &WebhookSettings, secret: Vec<u8>) -> Result<Self, ConfigError> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout.0)
            .build()
            .map_err(|e| ConfigError(format!("cannot build the webhook HTTP client: {e}")))?;
        Ok(Self {
            url: settings.url.clone(),
            secret,
            http,
        })
    }

    /// POSTs `body`, signed now; the status of a 2xx answer.
    pub async fn post(&self, body: &str) -> TargetResult<u16> {
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
            .map_err(|e| transport(POST, &e))?;
        let status = res.status().as_u16();
        if res.status().is_success() {
            return Ok(status);
        }
        let retry_after = retry_after(res.headers());
        let text = res.bytes().await.unwrap_or_default();
        Err(classify(POST, status, retry_after, &text))
    }

    /// Whether the receiver answers at all: a `GET` of the URL, unsigned and without a body.
    /// Any answer but `429` or `5xx` counts (a receiver that only takes signed POSTs answers
    /// 401, 404 or 405, and is up); so does nothing else. Delivery asks this when a POST fails
    /// in a way that may be the receiver's outage rather than this profile's problem.
    pub async fn probe(&self) -> TargetResult<()> {
        let res = self
            .http
            .get(&self.url)
            .send()
            .await
            .map_err(|e| transport(PROBE, &e))?;
        let status = res.status().as_u16();
        if status != 429 && status < 500 {
            return Ok(());
        }
        let retry_after = retry_after(res.headers());
        let text = res.bytes().await.unwrap_or_default();
        Err(classify(PROBE, status, retry_after, &text))
    }
}

/// `Retry-After` of an answer, clamped like Confluence's.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()))
        .map(|r| r.delay)
}

/// The class of a receiver's non-2xx answer: `429` (and `503` with `Retry-After`) rate
/// limited, `401`/`403` unauthorized (the receiver refused the signature: the shared secret
/// differs), `408` and other `5xx` transient, any other status permanent (the receiver refuses
/// this profile). The answer's start goes to the attempt record, not to the message.
fn classify(call: Call, status: u16, retry_after: Option<Duration>, body: &[u8]) -> TargetError {
    let failure = |message: String| Failure {
        call,
        status: Some(status),
        message,
        body: truncate_body(body, BODY_LIMIT),
    };
    match status {
        429 => TargetError::RateLimited {
            retry_after,
            failure: failure("the receiver asked to slow down (HTTP 429)".to_owned()),
        },
        503 if retry_after.is_some() => TargetError::RateLimited {
            retry_after,
            failure: failure("the receiver is unavailable (HTTP 503 with Retry-After)".to_owned()),
        },
        401 | 403 => TargetError::Unauthorized(failure(format!(
            "the receiver refused the signature (HTTP {status}): check that it uses the \
             connector's webhook secret"
        ))),
        408 | 500..=599 => {
            TargetError::Transient(failure(format!("the receiver failed (HTTP {status})")))
        }
        _ => TargetError::Permanent(failure(format!(
            "the receiver refused the profile (HTTP {status}); its answer is in the attempt record"
        ))),
    }
}

/// A call that got no answer. The URL is left out (it may carry a token in its query).
fn transport(call: Call, e: &reqwest::Error) -> TargetError {
    TargetError::Transient(Failure {
        call,
        status: None,
        message: if e.is_timeout() {
            "the receiver did not answer within the timeout".to_owned()
        } else {
            format!("cannot reach the receiver: {}", without_url(e))
        },
        body: None,
    })
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
    use crate::targets::ErrorClass;

    #[test]
    fn receiver_answers_map_to_the_one_taxonomy() {
        let class = |status: u16, retry_after: Option<u64>| {
            classify(POST, status, retry_after.map(Duration::from_secs), b"").class()
        };
        assert_eq!(class(429, None), ErrorClass::RateLimited);
        assert_eq!(class(503, Some(2)), ErrorClass::RateLimited);
        assert_eq!(class(503, None), ErrorClass::Transient);
        assert_eq!(class(500, None), ErrorClass::Transient);
        assert_eq!(class(408, None), ErrorClass::Transient);
        assert_eq!(class(401, None), ErrorClass::Unauthorized);
        assert_eq!(class(403, None), ErrorClass::Unauthorized);
        assert_eq!(class(422, None), ErrorClass::Permanent);
        assert_eq!(class(404, None), ErrorClass::Permanent);
        let e = classify(POST, 429, Some(Duration::from_secs(7)), b"busy, try later");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(e.failure().body.as_deref(), Some("busy, try later"));
        assert!(
            !e.to_string().contains("busy"),
            "the answer stays out of the text: {e}"
        );
        assert!(e.to_string().contains("[POST webhook, HTTP 429]"), "{e}");
    }

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
}
