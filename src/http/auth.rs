//! Authentication of SCIM requests: the connector named in the URL and its credentials.
//!
//! [`ScimCtx`] is an extractor, so a handler that takes it cannot forget authentication, and
//! its signature documents it. It also carries the connector's SCIM base URL used in
//! `meta.location`. The verification itself is [`crate::auth::Authenticator`]; this adapter
//! only reads the header, records the outcome in the request span and builds the 401.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::error::AppError;
use super::state::AppState;
use crate::auth::{AuthFailure, AuthMethod, Authenticated};

/// An authenticated SCIM request: which connector, its base URL, and how it authenticated.
#[derive(Debug, Clone)]
pub struct ScimCtx {
    /// The connector, from `/scim/v2/{connector}/…`.
    pub connector: String,
    /// `https://host/scim/v2/{connector}`, for `meta.location` and `Location`.
    pub base: String,
    /// The mode that authenticated the request.
    pub method: AuthMethod,
    /// The credential that authenticated it, for the audit trail
    /// ([`Authenticated::credential`]).
    pub credential: String,
}

/// The prefix of every SCIM route.
pub const SCIM_PREFIX: &str = "/scim/v2/";

/// The connector segment of a path under [`SCIM_PREFIX`].
pub fn connector_of(path: &str) -> Option<&str> {
    path.strip_prefix(SCIM_PREFIX)
        .and_then(|rest| rest.split('/').next())
        .filter(|c| !c.is_empty())
}

/// `https://host/scim/v2/{connector}`: `public_url` when set, else the `Host` header.
pub fn base_url(parts: &Parts, state: &AppState, connector: &str) -> String {
    match &state.settings.public_url {
        Some(url) => format!("{}{SCIM_PREFIX}{connector}", url.trim_end_matches('/')),
        None => {
            let host = parts
                .headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .unwrap_or(&state.settings.listen);
            format!("http://{host}{SCIM_PREFIX}{connector}")
        }
    }
}

impl FromRequestParts<AppState> for ScimCtx {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let raw = parts.headers.get(header::AUTHORIZATION);
        let authorization = raw.and_then(|v| v.to_str().ok());
        let Some(connector) = connector_of(parts.uri.path()).map(str::to_owned) else {
            return Err(AppError::Unauthorized {
                challenge: state.auth().challenge(authorization),
            });
        };
        let span = tracing::Span::current();
        span.record("connector", connector.as_str());
        let result = if raw.is_some() && authorization.is_none() {
            // Not visible ASCII: it cannot hold any credential of ours.
            Err(AuthFailure::Malformed)
        } else {
            state.auth().authenticate(&connector, authorization).await
        };
        let Authenticated { method, credential } = match result {
            Ok(a) => a,
            Err(why) => {
                log_failure(why);
                return Err(AppError::Unauthorized {
                    challenge: state.auth().challenge(authorization),
                });
            }
        };
        span.record("auth.method", method.as_str());
        state.note_request(&connector);
        let base = base_url(parts, state, &connector);
        Ok(ScimCtx {
            connector,
            base,
            method,
            credential,
        })
    }
}

/// Logs why a request was refused: the reason, never the credential.
pub fn log_failure(why: AuthFailure) {
    tracing::info!(auth.failure = %why, "request not authenticated");
}
