//! Request extractors of the emulated REST API: the request context ([`Ctx`]) and
//! query/JSON parsing whose failures speak Confluence's JSON error envelope.

use std::sync::{Arc, MutexGuard};

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use super::auth::{self, AuthScheme, Caller, Need};
use super::config::ConfluenceVersion;
use super::errors::ApiError;
use super::shared::{Shared, World};

/// Who is calling, as decided by the pipeline; inserted into request extensions.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub caller: Caller,
    pub scheme: AuthScheme,
}

/// `_links.base` (with the context path) and `_links.context` of JSON answers.
#[derive(Debug, Clone)]
pub(crate) struct Links {
    pub base: String,
    pub context: String,
}

/// Everything a Confluence handler needs besides its own parameters.
pub(crate) struct Ctx {
    pub sh: Arc<Shared>,
    pub caller: Caller,
    pub scheme: AuthScheme,
    pub links: Links,
}

impl Ctx {
    /// Locks the world (see [`Shared::world`]).
    pub fn world(&self) -> MutexGuard<'_, World> {
        self.sh.world()
    }

    /// Permission check for the caller.
    pub fn require(&self, world: &World, need: Need) -> Result<(), ApiError> {
        auth::check(&world.state, &world.knobs, &self.caller, self.scheme, need)
    }

    /// Version gate: endpoints newer than the emulated version do not exist (HTML 404).
    pub fn since(&self, world: &World, version: ConfluenceVersion) -> Result<(), ApiError> {
        if world.knobs.version < version {
            Err(ApiError::unknown_resource())
        } else {
            Ok(())
        }
    }
}

impl FromRequestParts<Arc<Shared>> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        sh: &Arc<Shared>,
    ) -> Result<Self, Self::Rejection> {
        let identity = parts
            .extensions
            .get::<Identity>()
            .cloned()
            .unwrap_or(Identity {
                caller: Caller::Anonymous,
                scheme: AuthScheme::None,
            });
        let configured = sh.world().knobs.base_url.clone();
        let root = configured.unwrap_or_else(|| {
            let host = parts
                .headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            format!("http://{host}")
        });
        let context = sh.context_path.clone();
        Ok(Self {
            sh: Arc::clone(sh),
            caller: identity.caller,
            scheme: identity.scheme,
            links: Links {
                base: format!("{}{context}", root.trim_end_matches('/')),
                context,
            },
        })
    }
}

/// `Query<T>` whose rejection is a Confluence 400.
pub(crate) struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|Query(q)| Self(q))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}

/// Parses a JSON request body inside a handler, after its version and permission checks
/// (an extractor would reject a bad body before Confluence would even look at the caller).
/// No JSON content type → 415; malformed → 400.
pub(crate) fn parse_json<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<T, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| {
            let media = media.trim().to_ascii_lowercase();
            media == "application/json" || media.ends_with("+json")
        });
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Expected request with `Content-Type: application/json`",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("Malformed JSON body: {e}")))
}
