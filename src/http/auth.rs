//! Authentication of SCIM requests: the connector named in the URL and its credentials.
//!
//! [`ScimCtx`] is an extractor, so a handler that takes it cannot forget authentication, and
//! its signature documents it. It also carries the connector's SCIM base URL used in
//! `meta.location`.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::error::AppError;
use super::state::AppState;
use crate::connectors::AuthFailure;

/// An authenticated SCIM request: which connector, and its base URL.
#[derive(Debug, Clone)]
pub struct ScimCtx {
    /// The connector, from `/scim/v2/{connector}/…`.
    pub connector: String,
    /// `https://host/scim/v2/{connector}`, for `meta.location` and `Location`.
    pub base: String,
}

/// The prefix of every SCIM route.
pub const SCIM_PREFIX: &str = "/scim/v2/";

const CHALLENGE: &str = "Bearer realm=\"usersync\"";

impl FromRequestParts<AppState> for ScimCtx {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let connector = parts
            .uri
            .path()
            .strip_prefix(SCIM_PREFIX)
            .and_then(|rest| rest.split('/').next())
            .filter(|c| !c.is_empty())
            .ok_or(AppError::Unauthorized {
                challenge: CHALLENGE,
            })?
            .to_owned();
        tracing::Span::current().record("connector", connector.as_str());
        let auth = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .trim();
        let (scheme, credentials) = auth.split_once(' ').unwrap_or((auth, ""));
        let result = if scheme.eq_ignore_ascii_case("bearer") {
            state
                .connectors
                .authenticate_bearer(&connector, credentials.trim())
                .await
        } else if auth.is_empty() {
            Err(AuthFailure::Missing)
        } else {
            Err(AuthFailure::Invalid)
        };
        if let Err(why) = result {
            tracing::info!(auth.failure = ?why, "SCIM request not authenticated");
            return Err(AppError::Unauthorized {
                challenge: CHALLENGE,
            });
        }
        let base = match &state.settings.public_url {
            Some(url) => format!("{}{SCIM_PREFIX}{connector}", url.trim_end_matches('/')),
            None => {
                let host = parts
                    .headers
                    .get(header::HOST)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or(&state.settings.listen);
                format!("http://{host}{SCIM_PREFIX}{connector}")
            }
        };
        Ok(ScimCtx { connector, base })
    }
}
