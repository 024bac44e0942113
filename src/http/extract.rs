//! Extractors whose rejections speak SCIM: a JSON body read within the size limit, the query
//! string as pairs, and the conditional-request headers.

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde_json::Value;

use super::error::AppError;
use super::state::AppState;
use crate::scim::resource::{parse_etag, IfMatch};
use crate::scim::ScimError;

/// A request body parsed as JSON.
///
/// Accepts `application/scim+json` and `application/json`, with or without a charset, and
/// anything else that parses as JSON (docs/reference/idp-behaviour.md §1 rule 1: never 415 for
/// either JSON type; PingFederate and Okta's SPEC suite send `application/json`). A body over
/// `limits.max_body_bytes` is 413; a body that is not JSON is 400 `invalidSyntax`.
#[derive(Debug)]
pub struct ScimBody(pub Value);

impl FromRequest<AppState> for ScimBody {
    type Rejection = AppError;

    async fn from_request(req: Request<Body>, state: &AppState) -> Result<Self, Self::Rejection> {
        let limit = state.settings.limits.max_body_bytes;
        if let Some(len) = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
        {
            if len > limit {
                return Err(too_large(limit));
            }
        }
        let bytes = axum::body::to_bytes(req.into_body(), limit)
            .await
            .map_err(|_| too_large(limit))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ScimError::invalid_syntax(
                "the request body is empty; a JSON object is expected",
            )
            .into());
        }
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
            // serde_json's message names the line and column, never the content.
            ScimError::invalid_syntax(format!("the request body is not valid JSON: {e}"))
        })?;
        Ok(ScimBody(value))
    }
}

fn too_large(limit: usize) -> AppError {
    ScimError::payload_too_large(format!(
        "the request body is larger than the maximum of {limit} bytes"
    ))
    .into()
}

/// The decoded query string, as pairs in order.
///
/// `+` decodes to a space (OneLogin sends `filter=userName+eq+%22x%22&`,
/// docs/reference/idp-behaviour.md §1 rule 17), a trailing `&` and valueless flags such as Entra's
/// `aadOptscim062020` are fine.
#[derive(Debug, Default)]
pub struct QueryPairs(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or_default();
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(q)
            .map_err(|_| ScimError::bad_request("the query string is not valid URL encoding"))?;
        Ok(QueryPairs(pairs))
    }
}

impl QueryPairs {
    /// The pairs as string slices.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// `If-Match` and `If-None-Match` as versions (RFC 7644 §3.14).
#[derive(Debug, Default, Clone)]
pub struct Conditions {
    /// `If-Match`: the versions the client expects, or `*`.
    pub if_match: Option<IfMatch>,
    /// `If-None-Match`: the version the client has.
    pub if_none_match: Option<i64>,
}

impl<S: Send + Sync> FromRequestParts<S> for Conditions {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let get = |h: header::HeaderName| {
            parts
                .headers
                .get(h)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        let if_match = get(header::IF_MATCH).map(IfMatch::parse);
        let if_none_match = get(header::IF_NONE_MATCH).and_then(parse_etag);
        Ok(Conditions {
            if_match,
            if_none_match,
        })
    }
}
