//! Who is calling, and may they (docs/reference/confluence-api.md §1.5, docs/emulator.md "Global
//! behaviour").
//!
//! `Authorization: Basic` checks the password table, `Authorization: Bearer` the PAT table;
//! both compare SHA-256 digests. No credentials means `anonymous`. Bad credentials either
//! fall back to `anonymous` or answer 401, per the `invalid_bearer` / `invalid_basic` knobs.
//! Disabled users cannot log in. Credentials are never logged or stored.

use axum::http::{header, HeaderMap};
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::config::{InvalidCredentials, Knobs};
use super::errors::ApiError;
use super::state::State;

/// The authenticated principal of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Caller {
    /// No (valid) credentials.
    Anonymous,
    /// A known, active user (lower-case username).
    User(String),
}

impl Caller {
    /// Value of `X-AUSERNAME`.
    pub fn header_name(&self) -> &str {
        match self {
            Self::Anonymous => "anonymous",
            Self::User(name) => name,
        }
    }

    /// The username, if any.
    pub fn username(&self) -> Option<&str> {
        match self {
            Self::Anonymous => None,
            Self::User(name) => Some(name),
        }
    }
}

/// Which credential scheme a request used (recorded in the call log instead of the value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AuthScheme {
    /// No `Authorization` header.
    #[default]
    None,
    /// Basic.
    Basic,
    /// Bearer (PAT).
    Bearer,
    /// Another scheme, ignored like Confluence does.
    Other,
}

/// Outcome reported in `X-Seraph-LoginReason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoginReason {
    Ok,
    AuthenticatedFailed,
}

impl LoginReason {
    /// Header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::AuthenticatedFailed => "AUTHENTICATED_FAILED",
        }
    }
}

/// Result of checking a request's credentials.
#[derive(Debug, Clone)]
pub(crate) struct Authentication {
    pub caller: Caller,
    pub scheme: AuthScheme,
    /// `None` when no credentials were sent (no `X-Seraph-LoginReason` header).
    pub login_reason: Option<LoginReason>,
    /// Bad credentials and the knob says 401.
    pub reject: bool,
}

impl Authentication {
    fn anonymous(scheme: AuthScheme) -> Self {
        Self {
            caller: Caller::Anonymous,
            scheme,
            login_reason: None,
            reject: false,
        }
    }

    fn failed(scheme: AuthScheme, policy: InvalidCredentials) -> Self {
        Self {
            caller: Caller::Anonymous,
            scheme,
            login_reason: Some(LoginReason::AuthenticatedFailed),
            reject: policy == InvalidCredentials::Unauthorized,
        }
    }

    fn ok(scheme: AuthScheme, username: &str) -> Self {
        Self {
            caller: Caller::User(username.to_owned()),
            scheme,
            login_reason: Some(LoginReason::Ok),
            reject: false,
        }
    }
}

/// Resolves the caller from the `Authorization` header.
pub(crate) fn authenticate(headers: &HeaderMap, state: &State, knobs: &Knobs) -> Authentication {
    let Some(raw) = headers.get(header::AUTHORIZATION) else {
        return Authentication::anonymous(AuthScheme::None);
    };
    let Ok(raw) = raw.to_str() else {
        return Authentication::failed(AuthScheme::Other, knobs.invalid_basic);
    };
    let (scheme, credentials) = raw.trim().split_once(' ').unwrap_or((raw, ""));
    let credentials = credentials.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return match state.user_for_pat(credentials) {
            Some(user) if user.active => Authentication::ok(AuthScheme::Bearer, &user.username),
            _ => Authentication::failed(AuthScheme::Bearer, knobs.invalid_bearer),
        };
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(credentials)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok());
        let user = decoded.as_deref().and_then(|pair| {
            let (name, password) = pair.split_once(':')?;
            state
                .user(name)
                .filter(|u| u.active && u.password_matches(password))
        });
        return match user {
            Some(user) => Authentication::ok(AuthScheme::Basic, &user.username),
            None => Authentication::failed(AuthScheme::Basic, knobs.invalid_basic),
        };
    }
    // Unknown schemes are not Seraph's business: the request stays anonymous.
    Authentication::anonymous(AuthScheme::Other)
}

/// The permission an endpoint needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    /// Reading users/groups/profiles: anonymous only with `anonymous_access`, else 401
    /// **(assumed status)**.
    Read,
    /// `GET /rest/api/user/list`: anonymous and unlicensed callers get 403 \[doc\].
    ListUsers,
    /// Any logged-in user (long tasks); anonymous → 401 **(assumed)**.
    Authenticated,
    /// Confluence administrator.
    Admin,
    /// System administrator (delete user, group create/delete, password change).
    Sysadmin,
}

/// Checks `need` for `caller`; the error is what Confluence answers.
pub(crate) fn check(
    state: &State,
    knobs: &Knobs,
    caller: &Caller,
    scheme: AuthScheme,
    need: Need,
) -> Result<(), ApiError> {
    let user = match caller {
        Caller::User(name) => state.user(name),
        Caller::Anonymous => None,
    };
    match need {
        Need::Read => {
            if user.is_none() && !knobs.anonymous_access {
                return Err(ApiError::unauthorized(
                    "This resource requires authentication and anonymous access is disabled",
                ));
            }
            Ok(())
        }
        Need::ListUsers => match user {
            Some(u) if u.is_admin() || state.is_licensed(&u.username, knobs) => Ok(()),
            _ => Err(ApiError::forbidden("User is not permitted to list users")),
        },
        Need::Authenticated => match user {
            Some(_) => Ok(()),
            None => Err(ApiError::unauthorized("User is not authenticated")),
        },
        Need::Admin | Need::Sysadmin => {
            let Some(u) = user else {
                return Err(ApiError::unauthorized("User is not authenticated"));
            };
            if knobs.websudo && scheme == AuthScheme::Basic {
                // (assumed) websudo demands a secure administrator session that REST Basic
                // calls cannot open.
                return Err(ApiError::unauthorized(
                    "A secure administrator session (websudo) is required",
                ));
            }
            let allowed = match need {
                Need::Sysadmin => u.sysadmin,
                _ => u.is_admin(),
            };
            if allowed {
                Ok(())
            } else if u.is_admin() || state.is_licensed(&u.username, knobs) {
                Err(ApiError::forbidden(match need {
                    Need::Sysadmin => "User should be a System admin",
                    _ => "User should be a Confluence admin",
                }))
            } else {
                // The generated client documents 401 for "not licensed" callers.
                Err(ApiError::unauthorized("User is not licensed"))
            }
        }
    }
}
