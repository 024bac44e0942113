//! The one error type of the operations API and its one rendering: RFC 9457 problem
//! details (`application/problem+json`), where the SCIM endpoints answer SCIM errors.
//!
//! Like [`AppError`](crate::http::error::AppError) it does not log: it attaches an
//! [`ErrorReport`] that the listener's logging middleware logs once.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::errors::error_chain;
use crate::http::error::ErrorReport;
use crate::store::StoreError;

/// The media type of every error body (RFC 9457 §3).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem details object, as the API sends it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem: `about:blank` (the status says it all) or a
    /// `urn:usersync:problem:*` name documented in docs/admin-api.md.
    #[serde(rename = "type")]
    pub kind: String,
    /// The status's reason phrase.
    pub title: String,
    /// The HTTP status, repeated.
    pub status: u16,
    /// What went wrong, for a person to read.
    pub detail: String,
}

/// Errors an operations API handler can return.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// 401: no admin token, an unknown or revoked one, or a credential of another kind (a
    /// SCIM connector token). The detail never says which.
    #[error("an admin token is required (Authorization: Bearer …)")]
    Unauthorized,
    /// 403: a viewer token asked for an action.
    #[error("this token has the viewer role; the action needs an admin token")]
    Forbidden,
    /// 404: the named thing does not exist.
    #[error("{0}")]
    NotFound(String),
    /// 400: a parameter or body is not acceptable.
    #[error("{0}")]
    BadRequest(String),
    /// 409: the action cannot apply to this target (a declared connector's token, no
    /// Confluence configured).
    #[error("{0}")]
    Conflict(String),
    /// 502: a system usersync called for the answer failed (Linchpin's field list).
    #[error("{0}")]
    Upstream(String),
    /// A storage error: 503 when the database is unreachable or saturated, else 500.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// 500 for bugs and invariants; details go to the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AdminError {
    fn parts(&self) -> (StatusCode, &'static str, String) {
        match self {
            AdminError::Unauthorized => (StatusCode::UNAUTHORIZED, "about:blank", self.to_string()),
            AdminError::Forbidden => (
                StatusCode::FORBIDDEN,
                "urn:usersync:problem:viewer-role",
                self.to_string(),
            ),
            AdminError::NotFound(_) => (StatusCode::NOT_FOUND, "about:blank", self.to_string()),
            AdminError::BadRequest(_) => (StatusCode::BAD_REQUEST, "about:blank", self.to_string()),
            AdminError::Conflict(_) => (StatusCode::CONFLICT, "about:blank", self.to_string()),
            AdminError::Upstream(_) => (
                StatusCode::BAD_GATEWAY,
                "urn:usersync:problem:upstream",
                self.to_string(),
            ),
            AdminError::Store(
                StoreError::Busy(_) | StoreError::Unavailable(_) | StoreError::Cancelled,
            ) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "urn:usersync:problem:database-unavailable",
                "the database is unavailable or saturated; try again".to_owned(),
            ),
            AdminError::Store(StoreError::Conflict(what)) => (
                StatusCode::CONFLICT,
                "about:blank",
                format!("{what} is already in use"),
            ),
            AdminError::Store(_) | AdminError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "about:blank",
                "internal error; the server log has the details".to_owned(),
            ),
        }
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let (status, kind, detail) = self.parts();
        let report = ErrorReport {
            message: error_chain(&self),
            server_fault: status.is_server_error(),
        };
        let mut res = problem(status, kind, detail);
        if status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"usersync-admin\""),
            );
        }
        res.extensions_mut().insert(report);
        res
    }
}

/// A problem response with this status, type and detail.
pub fn problem(status: StatusCode, kind: &str, detail: String) -> Response {
    let body = Problem {
        kind: kind.to_owned(),
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        status: status.as_u16(),
        detail,
    };
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let mut res = (status, bytes).into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    res
}

/// The result of an operations API handler.
pub type AdminResult<T> = Result<T, AdminError>;
