//! The one error type of the HTTP layer and its one rendering.
//!
//! Which type to use where: protocol problems are [`ScimError`]s (from `scim/`), storage
//! problems are [`StoreError`]s (from `store/`); handlers return `Result<_, AppError>` and
//! convert with `?`. [`AppError::into_response`] maps every variant to a SCIM error body
//! (RFC 7644 §3.12, `status` as a string) with `Content-Type: application/scim+json`. It does
//! not log: it attaches an [`ErrorReport`] to the response, and the `log_errors` middleware
//! logs it once inside the request span.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::auth::Challenge;
use crate::errors::error_chain;
use crate::scim::ScimError;
use crate::store::StoreError;

/// The SCIM error message URN.
pub const ERROR_URN: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
/// The SCIM media type, used for every response body.
pub const SCIM_JSON: &str = "application/scim+json";
/// The Bearer challenge (RFC 6750 §3).
pub const BEARER: &str = "Bearer realm=\"usersync\"";
/// The Basic challenge (RFC 7617 §2).
pub const BASIC: &str = "Basic realm=\"usersync\"";

/// Errors a SCIM handler can return.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A protocol error: its own status and `scimType`.
    #[error(transparent)]
    Scim(#[from] ScimError),
    /// A storage error: 409 `uniqueness` for conflicts, 429 when saturated, else 500.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// 401: no or wrong credentials. The detail never says which.
    #[error("authentication required")]
    Unauthorized {
        /// `WWW-Authenticate` challenges to send.
        challenge: Challenge,
    },
    /// 429 with `Retry-After`: usersync is saturated and asks the IdP to come back later
    /// (both Entra and Okta honour it; docs/reference/idp-behaviour.md §2.7, §3.6).
    #[error("too many requests: {reason}")]
    TooBusy {
        /// Seconds to wait.
        retry_after: u64,
        /// Why, for the log.
        reason: &'static str,
    },
    /// 503 with `Retry-After`: the request took longer than `limits.request_timeout` and
    /// none of its writes had started, so nothing of it is committed (`store/gate.rs`).
    #[error("request timed out")]
    Timeout,
    /// 500 for bugs and invariants; details go to the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Marks a response built from [`StoreError::Busy`], for the middleware that asks the
/// store whether the database was saturated or unreachable.
#[derive(Debug, Clone, Copy)]
pub struct StoreBusy {
    /// The pool timed out (rather than SQLite reporting its file locked).
    pub pool_timeout: bool,
}

/// What the logging middleware needs to know about an error response.
#[derive(Debug, Clone)]
pub struct ErrorReport {
    /// The error and its causes, for the log (never sent to the client for 5xx).
    pub message: String,
    /// Whether it is a server fault.
    pub server_fault: bool,
}

impl AppError {
    fn parts(&self) -> (StatusCode, Option<&'static str>, String) {
        match self {
            AppError::Scim(e) => (
                StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
                e.scim_type.map(|t| t.as_str()),
                e.detail.clone(),
            ),
            AppError::Store(StoreError::Conflict(what)) => (
                StatusCode::CONFLICT,
                Some("uniqueness"),
                format!("{what} is already used by another resource of this connector"),
            ),
            AppError::Store(StoreError::Busy(_)) | AppError::TooBusy { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                None,
                "usersync is busy; retry after the number of seconds in Retry-After".to_owned(),
            ),
            AppError::Store(StoreError::Unavailable(_)) => (
                StatusCode::SERVICE_UNAVAILABLE,
                None,
                "the database cannot be reached; retry later".to_owned(),
            ),
            AppError::Timeout | AppError::Store(StoreError::Cancelled) => (
                StatusCode::SERVICE_UNAVAILABLE,
                None,
                "the request took too long and was abandoned before anything was written; retry \
                 later"
                    .to_owned(),
            ),
            AppError::Store(_) | AppError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
                "internal error; the request id in the response headers finds it in the log"
                    .to_owned(),
            ),
            AppError::Unauthorized { .. } => (
                StatusCode::UNAUTHORIZED,
                None,
                "authentication failed: send the connector's credentials in the Authorization header"
                    .to_owned(),
            ),

        }
    }
}

impl AppError {
    /// The status and SCIM error body, for embedding in a Bulk response.
    pub fn to_scim_body(&self) -> (StatusCode, serde_json::Value) {
        let (status, scim_type, detail) = self.parts();
        (status, error_body(status, scim_type, &detail))
    }
}

fn error_body(status: StatusCode, scim_type: Option<&str>, detail: &str) -> serde_json::Value {
    let mut body = json!({
        "schemas": [ERROR_URN],
        "status": status.as_u16().to_string(),
        "detail": detail,
    });
    if let (Some(t), Some(obj)) = (scim_type, body.as_object_mut()) {
        obj.insert("scimType".into(), t.into());
    }
    body
}

/// Builds a SCIM error response.
pub fn scim_error_response(status: StatusCode, scim_type: Option<&str>, detail: &str) -> Response {
    let body = error_body(status, scim_type, detail);
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let mut res = (status, bytes).into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    res
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, scim_type, detail) = self.parts();
        let mut res = scim_error_response(status, scim_type, &detail);
        let headers = res.headers_mut();
        match &self {
            AppError::Unauthorized { challenge } => {
                // One challenge per header: simple clients read only the first scheme of a
                // comma-joined list.
                headers.append(header::WWW_AUTHENTICATE, HeaderValue::from_static(BEARER));
                if *challenge == Challenge::BearerAndBasic {
                    headers.append(header::WWW_AUTHENTICATE, HeaderValue::from_static(BASIC));
                }
            }
            AppError::TooBusy { retry_after, .. } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            AppError::Store(StoreError::Busy(_)) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(2u64));
            }
            AppError::Timeout
            | AppError::Store(StoreError::Cancelled | StoreError::Unavailable(_)) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(5u64));
            }
            _ => {}
        }
        if let AppError::Store(StoreError::Busy(source)) = &self {
            // The HTTP layer may find it was no saturation (`Store::explain`).
            res.extensions_mut().insert(StoreBusy {
                pool_timeout: matches!(source, sqlx::Error::PoolTimedOut),
            });
        }
        res.extensions_mut().insert(ErrorReport {
            message: error_chain(&self),
            server_fault: status.is_server_error(),
        });
        res
    }
}
