//! Outbound targets: the systems usersync delivers users and groups to.
//!
//! Each target has its own client with explicit timeouts and its own model of the remote
//! JSON. Every failure is classified **at the client boundary** into one [`TargetError`](crate::targets::TargetError),
//! from the HTTP status and the transport error alone, so the delivery worker decides
//! "retry later", "retry after N seconds" or "park as dead" from that type without knowing
//! anything about the remote API (docs/reference/design.md "Failures are classified once, at the
//! client boundary").
//!
//! What delivery makes of each class (a condition of the target that pauses it, or a failure
//! of the one key) is decided in one place, `delivery::policy`, and described in
//! `docs/delivery.md` (Failures).
//!
//! An error carries what an attempt record needs: the call (method and path *template*,
//! never the concrete path, which holds a username), the HTTP status, an explanation that
//! says what to fix, and the response body truncated to [`BODY_LIMIT`](crate::targets::BODY_LIMIT) bytes. Request
//! bodies and credentials are never part of an error.

use std::fmt;
use std::time::Duration;

pub mod confluence;
pub mod linchpin;
pub mod pacing;
pub mod retry_after;
pub mod webhook;

/// Longest response body kept in an error (bytes of UTF-8, cut at a character boundary).
pub const BODY_LIMIT: usize = 2048;

/// One kind of remote call: HTTP method and path template, e.g.
/// `PUT /rest/api/admin/user/{username}/disable`. Safe to log: it holds no user data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Call {
    /// HTTP method.
    pub method: &'static str,
    /// Path template below the target's base URL.
    pub template: &'static str,
}

impl Call {
    /// A call of `method` on `template`.
    pub const fn new(method: &'static str, template: &'static str) -> Self {
        Self { method, template }
    }
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.template)
    }
}

/// What went wrong with one call, for logs (`Display`) and attempt records (the fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The call that failed.
    pub call: Call,
    /// HTTP status, when an answer arrived.
    pub status: Option<u16>,
    /// Our explanation, worded for the operator. Safe to log: no secret, no request body,
    /// no user data (Confluence's own message, which echoes usernames, is left in `body`).
    pub message: String,
    /// The response body, truncated to [`BODY_LIMIT`] bytes; `None` when there was no answer
    /// or it was empty. May name the user the call was about (Confluence echoes usernames),
    /// so it belongs in attempt records, not in info-level logs.
    pub body: Option<String>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}", self.message, self.call)?;
        if let Some(status) = self.status {
            write!(f, ", HTTP {status}")?;
        }
        f.write_str("]")
    }
}

/// A failed target call, classified so the caller can decide what to do from the variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// The credentials were refused or ignored (401/403, Confluence's anonymous fallback),
    /// or the account lacks a permission. Retrying will not help until an operator acts.
    #[error("unauthorized: {0}")]
    Unauthorized(Failure),
    /// The addressed user, group or task does not exist (404 with an error body).
    #[error("not found: {0}")]
    NotFound(Failure),
    /// The thing to create already exists (409).
    #[error("conflict: {0}")]
    Conflict(Failure),
    /// The target asked us to slow down (429, or 503 with `Retry-After`). Retry after
    /// `retry_after` (already clamped to a sane maximum), or with backoff when `None`.
    #[error("rate limited: {failure}")]
    RateLimited {
        /// How long the target asked us to wait.
        retry_after: Option<Duration>,
        /// The details.
        failure: Failure,
    },
    /// Worth retrying: 5xx, timeouts, refused or reset connections.
    #[error("transient failure: {0}")]
    Transient(Failure),
    /// The request itself is wrong and will fail again the same way: 400 (validation), 402
    /// (no licence seat), other 4xx, an unexpected answer.
    #[error("permanent failure: {0}")]
    Permanent(Failure),
    /// The target does not offer this operation (endpoint absent on this version, legacy
    /// API switched off, credentials of a kind the fallback cannot use).
    #[error("unsupported: {0}")]
    Unsupported(Failure),
}

/// The result of a target call.
pub type TargetResult<T> = Result<T, TargetError>;

/// The class of a [`TargetError`], as a short stable label for attempt records and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// [`TargetError::Unauthorized`].
    Unauthorized,
    /// [`TargetError::NotFound`].
    NotFound,
    /// [`TargetError::Conflict`].
    Conflict,
    /// [`TargetError::RateLimited`].
    RateLimited,
    /// [`TargetError::Transient`].
    Transient,
    /// [`TargetError::Permanent`].
    Permanent,
    /// [`TargetError::Unsupported`].
    Unsupported,
}

impl ErrorClass {
    /// `unauthorized`, `not_found`, `conflict`, `rate_limited`, `transient`, `permanent`,
    /// `unsupported`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::NotFound => "not_found",
            Self::Conflict => "conflict",
            Self::RateLimited => "rate_limited",
            Self::Transient => "transient",
            Self::Permanent => "permanent",
            Self::Unsupported => "unsupported",
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TargetError {
    /// An error of `class` (a rate limit without a known wait). For failures found without
    /// asking the target, such as a call not sent because delivery to the target is paused.
    pub fn new(class: ErrorClass, failure: Failure) -> Self {
        match class {
            ErrorClass::Unauthorized => Self::Unauthorized(failure),
            ErrorClass::NotFound => Self::NotFound(failure),
            ErrorClass::Conflict => Self::Conflict(failure),
            ErrorClass::RateLimited => Self::RateLimited {
                retry_after: None,
                failure,
            },
            ErrorClass::Transient => Self::Transient(failure),
            ErrorClass::Permanent => Self::Permanent(failure),
            ErrorClass::Unsupported => Self::Unsupported(failure),
        }
    }

    /// The details.
    pub fn failure(&self) -> &Failure {
        match self {
            Self::Unauthorized(f)
            | Self::NotFound(f)
            | Self::Conflict(f)
            | Self::Transient(f)
            | Self::Permanent(f)
            | Self::Unsupported(f)
            | Self::RateLimited { failure: f, .. } => f,
        }
    }

    /// The class.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Unauthorized(_) => ErrorClass::Unauthorized,
            Self::NotFound(_) => ErrorClass::NotFound,
            Self::Conflict(_) => ErrorClass::Conflict,
            Self::RateLimited { .. } => ErrorClass::RateLimited,
            Self::Transient(_) => ErrorClass::Transient,
            Self::Permanent(_) => ErrorClass::Permanent,
            Self::Unsupported(_) => ErrorClass::Unsupported,
        }
    }

    /// Whether the same call may succeed later without anyone changing anything
    /// (rate limiting and transient failures).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::RateLimited { .. } | Self::Transient(_))
    }

    /// The wait the target asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// HTTP status of the answer, if one arrived.
    pub fn status(&self) -> Option<u16> {
        self.failure().status
    }

    /// The call that failed.
    pub fn call(&self) -> Call {
        self.failure().call
    }
}

/// Cuts `body` to at most `limit` bytes at a character boundary (lossy UTF-8) and says how
/// much was dropped. Empty bodies give `None`.
pub fn truncate_body(body: &[u8], limit: usize) -> Option<String> {
    if body.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(body);
    if text.len() <= limit {
        return Some(text.into_owned());
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Some(format!(
        "{}…[truncated, {} bytes in total]",
        &text[..end],
        body.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALL: Call = Call::new("PUT", "/rest/api/admin/user/{username}");

    fn failure(status: Option<u16>) -> Failure {
        Failure {
            call: CALL,
            status,
            message: "Confluence refused it".to_owned(),
            body: None,
        }
    }

    #[test]
    fn only_rate_limits_and_transient_failures_are_retryable() {
        let retryable = [
            TargetError::Transient(failure(Some(503))),
            TargetError::RateLimited {
                retry_after: Some(Duration::from_secs(2)),
                failure: failure(Some(429)),
            },
        ];
        assert!(retryable.iter().all(TargetError::is_retryable));
        let final_ = [
            TargetError::Unauthorized(failure(Some(401))),
            TargetError::NotFound(failure(Some(404))),
            TargetError::Conflict(failure(Some(409))),
            TargetError::Permanent(failure(Some(400))),
            TargetError::Unsupported(failure(Some(404))),
        ];
        assert!(final_.iter().all(|e| !e.is_retryable()));
        assert_eq!(retryable[1].retry_after(), Some(Duration::from_secs(2)));
        assert_eq!(final_[0].retry_after(), None);
    }

    #[test]
    fn an_error_displays_its_class_message_call_and_status() {
        let e = TargetError::Permanent(failure(Some(400)));
        assert_eq!(
            e.to_string(),
            "permanent failure: Confluence refused it \
             [PUT /rest/api/admin/user/{username}, HTTP 400]"
        );
        assert_eq!(e.class().as_str(), "permanent");
        let no_answer = TargetError::Transient(failure(None));
        assert!(no_answer.to_string().ends_with("{username}]"));
    }

    #[test]
    fn bodies_are_cut_at_a_character_boundary_and_say_so() {
        assert_eq!(truncate_body(b"", 10), None);
        assert_eq!(truncate_body(b"short", 10).as_deref(), Some("short"));
        let long = "é".repeat(10); // 20 bytes
        let cut = truncate_body(long.as_bytes(), 5).expect("a body");
        assert!(cut.starts_with("éé…"), "{cut}");
        assert!(cut.ends_with("[truncated, 20 bytes in total]"), "{cut}");
    }
}
