//! The one error type of the emulated REST API and its three body styles:
//!
//! * JSON, Confluence's usual envelope (docs/reference/confluence-api.md §1.2):
//!   `{statusCode, data:{authorized, valid, allowedInReadOnlyMode, errors, successful}, message, reason}`;
//! * HTML, for a REST path this Confluence version does not know (404 page);
//! * plain text, for `XSRF check failed`.
//!
//! JSON 401/404 answers carry an [`ErrorText`] extension so the pipeline can swap a share of
//! them for `text/plain` bodies (`plain_text_errors_ratio`), as some real proxies do.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::state::DomainError;

/// Body style of an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    Json,
    Html,
    Plain,
}

/// An error answer of the emulated Confluence.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
    body: BodyKind,
    /// Validation messages listed under `data.errors`.
    errors: Vec<String>,
}

/// Message of a JSON error, kept on the response for the plain-text swap.
#[derive(Debug, Clone)]
pub(crate) struct ErrorText(pub String);

impl ApiError {
    /// A JSON error with `status`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            body: BodyKind::Json,
            errors: Vec::new(),
        }
    }

    /// 400 for a malformed request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 400 for a broken field rule; the message is also listed under `data.errors`.
    pub fn validation(message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            errors: vec![message.clone()],
            ..Self::bad_request(message)
        }
    }

    /// 401.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    /// 404 (JSON).
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 404 with Confluence's HTML "page not found": the path does not exist in this version.
    pub fn unknown_resource() -> Self {
        Self {
            body: BodyKind::Html,
            ..Self::not_found("Page Not Found")
        }
    }

    /// 403 `XSRF check failed` as plain text (docs/emulator.md "Global behaviour").
    pub fn xsrf() -> Self {
        Self {
            body: BodyKind::Plain,
            ..Self::forbidden("XSRF check failed")
        }
    }

    /// The Confluence JSON envelope for `status` and `message`.
    pub fn envelope(status: StatusCode, message: &str, errors: &[String]) -> Value {
        let errors: Vec<Value> = errors
            .iter()
            .map(|m| json!({"message": {"translation": m, "args": []}}))
            .collect();
        json!({
            "statusCode": status.as_u16(),
            "data": {
                // A captured real 404 says `authorized: false` too
                // (docs/reference/confluence-api.md §1.2).
                "authorized": false,
                "valid": status != StatusCode::BAD_REQUEST,
                "allowedInReadOnlyMode": true,
                "errors": errors,
                "successful": false,
            },
            "message": message,
            "reason": status.canonical_reason().unwrap_or(""),
        })
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        let message = e.to_string();
        match e {
            DomainError::UserNotFound(_) | DomainError::GroupNotFound(_) => {
                Self::not_found(message)
            }
            DomainError::UserExists(_) | DomainError::GroupExists(_) => {
                Self::new(StatusCode::CONFLICT, message)
            }
            DomainError::Refused(_) | DomainError::Invalid(_) => Self::validation(message),
            DomainError::ReadOnly(_) | DomainError::LastAdminGroup(_) => Self::bad_request(message),
            DomainError::NoSeat { .. } => Self::new(StatusCode::PAYMENT_REQUIRED, message),
        }
    }
}

const HTML_404: &str = "<!DOCTYPE html>\n<html><head><title>Page Not Found - Confluence</title></head>\
<body><h1>Page Not Found</h1><p>The page you were trying to reach could not be found.</p></body></html>\n";

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self.body {
            BodyKind::Json => {
                let body = Self::envelope(self.status, &self.message, &self.errors);
                let mut response = (self.status, Json(body)).into_response();
                response.extensions_mut().insert(ErrorText(self.message));
                response
            }
            BodyKind::Html => (
                self.status,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html;charset=UTF-8"),
                )],
                HTML_404,
            )
                .into_response(),
            BodyKind::Plain => (
                self.status,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain;charset=UTF-8"),
                )],
                self.message,
            )
                .into_response(),
        }
    }
}
