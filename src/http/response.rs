//! SCIM JSON responses: always `application/scim+json` (Entra and the Microsoft validator
//! reject other media types, docs/reference/idp-behaviour.md §1 rule 1), with `ETag` and `Location`
//! when known.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::error::SCIM_JSON;
use crate::scim::resource::etag;

/// A SCIM response.
#[derive(Debug)]
pub struct ScimJson {
    status: StatusCode,
    body: Option<Body>,
    etag: Option<i64>,
    location: Option<String>,
}

impl ScimJson {
    /// A response with a body.
    pub fn new(status: StatusCode, body: Value) -> Self {
        Self {
            status,
            body: Some(Body::Json(body)),
            etag: None,
            location: None,
        }
    }

    /// A response with a body already serialized (a ListResponse written item by item).
    pub fn raw(status: StatusCode, body: Vec<u8>) -> Self {
        Self {
            status,
            body: Some(Body::Bytes(body)),
            etag: None,
            location: None,
        }
    }

    /// 304 for a matching `If-None-Match`.
    pub fn not_modified(version: i64) -> Self {
        Self {
            status: StatusCode::NOT_MODIFIED,
            body: None,
            etag: Some(version),
            location: None,
        }
    }

    /// Sets `ETag` to the weak tag of `version`.
    pub fn etag(mut self, version: i64) -> Self {
        self.etag = Some(version);
        self
    }

    /// Sets `Location`.
    pub fn location(mut self, url: String) -> Self {
        self.location = Some(url);
        self
    }
}

/// A body as a value to serialize, or as bytes.
#[derive(Debug)]
enum Body {
    Json(Value),
    Bytes(Vec<u8>),
}

impl IntoResponse for ScimJson {
    fn into_response(self) -> Response {
        let has_body = self.body.is_some();
        let mut res = match self.body {
            Some(Body::Json(ref b)) => {
                (self.status, serde_json::to_vec(b).unwrap_or_default()).into_response()
            }
            Some(Body::Bytes(bytes)) => (self.status, bytes).into_response(),
            None => self.status.into_response(),
        };
        let h = res.headers_mut();
        if has_body {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
        }
        if let Some(v) = self.etag.and_then(|v| HeaderValue::from_str(&etag(v)).ok()) {
            h.insert(header::ETAG, v);
        }
        if let Some(v) = self.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            h.insert(header::LOCATION, v);
        }
        res
    }
}
