//! Who is calling the operations API: an admin token, and what its role allows.
//!
//! [`Caller`] and [`Acting`] are extractors, so a handler's signature says what it needs: a
//! read takes `Caller` (any live token), an action takes `Acting` (the admin role; a viewer
//! gets 403). A credential of another kind (a connector's SCIM token, Basic, a JWT) is
//! refused with 401 before any lookup: admin tokens carry their own prefix.
//!
//! Tokens are looked up fresh on every request, so a revoked token stops working at once on
//! every instance; the table is small (a handful of operators). The presented token's hash is
//! compared with every live token's hash in constant time, without stopping at a match.

use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::header;
use axum::http::request::Parts;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use super::problem::AdminError;
use crate::connectors::{hash_hex, hash_token, ADMIN_TOKEN_PREFIX};
use crate::http::state::AppState;
use crate::store::admin::AdminRole;
use crate::store::audit::AdminAction;

/// How stale `last_used_at` may get before a request refreshes it: reads should not each
/// cost a write.
const TOUCH_EVERY_SECS: i64 = 60;

/// An authenticated caller of the operations API.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's name: the actor in the audit trail.
    pub name: String,
    /// What it may do.
    pub role: AdminRole,
}

/// A caller allowed to act (the admin role).
#[derive(Debug, Clone)]
pub struct Acting(pub Caller);

impl FromRequestParts<AppState> for Caller {
    type Rejection = AdminError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, rest) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .filter(|t| t.starts_with(ADMIN_TOKEN_PREFIX))
            .ok_or_else(|| {
                tracing::info!(
                    auth.failure = "no admin bearer token",
                    "admin request not authenticated"
                );
                AdminError::Unauthorized
            })?;
        Caller::from_token(state, token).await
    }
}

impl Caller {
    /// The caller an admin token stands for, or 401 (unknown, revoked, or not an admin
    /// token). The console's sign-in checks the token it is given here.
    pub async fn from_token(state: &AppState, token: &str) -> Result<Caller, AdminError> {
        if !token.starts_with(ADMIN_TOKEN_PREFIX) {
            return Err(AdminError::Unauthorized);
        }
        let presented = hash_hex(&hash_token(token));
        let live = state.store.live_admin_tokens().await?;
        let mut found = None;
        for t in &live {
            if bool::from(t.hash.as_bytes().ct_eq(presented.as_bytes())) {
                found = Some(t);
            }
        }
        let Some(t) = found else {
            tracing::info!(
                auth.failure = "unknown or revoked admin token",
                "admin request not authenticated"
            );
            return Err(AdminError::Unauthorized);
        };
        let now = OffsetDateTime::now_utc();
        if t.last_used
            .is_none_or(|at| (now - at).whole_seconds() >= TOUCH_EVERY_SECS)
        {
            // Best effort: a failed note must not fail the request.
            if let Err(e) = state.store.touch_admin_token(&t.name, now).await {
                tracing::warn!(error.message = %e, "could not note the admin token's use");
            }
        }
        tracing::Span::current().record("admin.token", t.name.as_str());
        Ok(Caller {
            name: t.name.clone(),
            role: t.role,
        })
    }
}

impl FromRequestParts<AppState> for Acting {
    type Rejection = AdminError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let route = parts
            .extensions
            .get::<MatchedPath>()
            .map(MatchedPath::as_str)
            .unwrap_or("unmatched");
        // Inside the nested router the path has lost its prefix.
        let path = parts.uri.path();
        let connector = path
            .strip_prefix(super::API_PREFIX)
            .unwrap_or(path)
            .strip_prefix("/connectors/")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_default();
        Acting::check(
            state,
            caller,
            &format!("{} {route}", parts.method),
            connector,
        )
        .await
    }
}

impl Acting {
    /// `caller` allowed to act, or 403 when its role is viewer; a refusal is recorded in the
    /// audit trail (`what`: the method and route template, or the console's action) since
    /// an auditor wants to see refused attempts too. The console checks its actions here.
    pub async fn check(
        state: &AppState,
        caller: Caller,
        what: &str,
        connector: &str,
    ) -> Result<Acting, AdminError> {
        match caller.role {
            AdminRole::Admin => Ok(Acting(caller)),
            AdminRole::Viewer => {
                let refused = AdminAction {
                    connector: connector.to_owned(),
                    token: caller.name.clone(),
                    action: what.to_owned(),
                    target_kind: None,
                    target: None,
                    outcome: "refused: viewer role".to_owned(),
                };
                if let Err(e) = state
                    .store
                    .audit_admin_action(&refused, OffsetDateTime::now_utc())
                    .await
                {
                    tracing::warn!(error.message = %e, "could not record a refused admin action");
                }
                Err(AdminError::Forbidden)
            }
        }
    }
}
