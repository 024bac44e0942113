//! Console sessions: sign-in with an admin token, a server-side session behind an
//! `HttpOnly`, `SameSite=Strict` cookie, CSRF tokens on every form, sign-out, idle expiry
//! (docs/console.md).
//!
//! The cookie holds a random 256-bit id; the database keeps its SHA-256 (`console_sessions`),
//! so sessions survive a restart and work on every instance, and a database reader cannot
//! take one over. The role is read from the admin token on every request: revoking the
//! token ends its sessions at once. Every form carries the session's CSRF token and every
//! POST checks it, on top of `SameSite=Strict`. The sign-in form, before any session, is
//! protected the same way by a short-lived cookie and a hidden field that must match
//! (double submit).

use axum::extract::{FromRequestParts, State};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::html;
use serde::Deserialize;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use super::shell;
use crate::connectors::{hash_hex, hash_token};
use crate::http::admin::auth::Caller;
use crate::http::state::AppState;
use crate::store::admin::AdminRole;
use crate::store::audit::AdminAction;

/// The session cookie.
pub const SESSION_COOKIE: &str = "usersync_session";
/// The sign-in form's double-submit cookie.
const LOGIN_COOKIE: &str = "usersync_login";

/// A request of a signed-in operator.
#[derive(Debug, Clone)]
pub struct Console {
    /// Who, with the token's current role.
    pub caller: Caller,
    /// The session's CSRF token, for the forms of the page.
    pub csrf: String,
    id_hash: String,
}

impl Console {
    /// Whether the operator may act (admin role): viewers see no action buttons.
    pub fn can_act(&self) -> bool {
        self.caller.role == AdminRole::Admin
    }

    /// Checks a form's CSRF token against the session's, in constant time: `None` when it
    /// matches, else the 403 page to answer.
    pub fn csrf_refusal(&self, sent: &str) -> Option<Response> {
        if bool::from(sent.as_bytes().ct_eq(self.csrf.as_bytes())) && !sent.is_empty() {
            None
        } else {
            tracing::info!(admin.token = %self.caller.name, "console form refused: CSRF token missing or wrong");
            Some(forbidden("This form was not sent by this console session (its CSRF token is missing or wrong). Reload the page and try again."))
        }
    }
}

/// 403 as a console page.
pub fn forbidden(why: &str) -> Response {
    let body = shell::bare(
        "Refused",
        html! { p { (why) } p { a href="/" { "Back to the console" } } },
    );
    (StatusCode::FORBIDDEN, body).into_response()
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// `Secure` when the console is served over HTTPS (a TLS proxy says so in
/// `X-Forwarded-Proto`); plain HTTP on loopback needs the cookie without it.
fn secure(headers: &HeaderMap) -> &'static str {
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    if https {
        "; Secure"
    } else {
        ""
    }
}

fn random() -> String {
    // 256 bits, base64url: the same generator as tokens, without a prefix.
    let token = crate::connectors::generate_admin_token();
    token
        .trim_start_matches(crate::connectors::ADMIN_TOKEN_PREFIX)
        .to_owned()
}

impl FromRequestParts<AppState> for Console {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let to_login = || Redirect::to("/login").into_response();
        let Some(id) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(to_login());
        };
        let id_hash = hash_hex(&hash_token(id));
        let now = OffsetDateTime::now_utc();
        let idle = time::Duration::try_from(state.settings.admin.session_idle.0)
            .unwrap_or(time::Duration::minutes(30));
        let session = state
            .store
            .session(&id_hash, now - idle)
            .await
            .map_err(|e| crate::http::admin::problem::AdminError::Store(e).into_response())?;
        let Some(session) = session else {
            return Err(to_login());
        };
        if (now - session.last_seen).whole_seconds() >= 60 {
            if let Err(e) = state.store.touch_session(&id_hash, now).await {
                tracing::warn!(error.message = %e, "could not note the console session's use");
            }
        }
        tracing::Span::current().record("admin.token", session.token_name.as_str());
        Ok(Console {
            caller: Caller {
                name: session.token_name,
                role: session.role,
            },
            csrf: session.csrf,
            id_hash,
        })
    }
}

/// `GET /login`: the sign-in form.
pub async fn login_page(headers: HeaderMap) -> Response {
    login_form(&headers, None)
}

fn login_form(headers: &HeaderMap, error: Option<&str>) -> Response {
    let csrf = random();
    let body = shell::bare(
        "Sign in",
        html! {
            form.signin method="post" action="/login" {
                h1 { "usersync console" }
                p { "Sign in with an admin token (" code { "usersync admin token create NAME --role admin|viewer" } ")." }
                @if let Some(e) = error { p.error role="alert" { (e) } }
                input type="hidden" name="csrf" value=(csrf);
                label for="token" { "Admin token" }
                input #token type="password" name="token" autocomplete="current-password" required autofocus;
                button type="submit" { "Sign in" }
            }
        },
    );
    let cookie = format!(
        "{LOGIN_COOKIE}={csrf}; HttpOnly; SameSite=Strict; Path=/login; Max-Age=3600{}",
        secure(headers)
    );
    let mut res = body.into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().append(SET_COOKIE, v);
    }
    if error.is_some() {
        *res.status_mut() = StatusCode::UNAUTHORIZED;
    }
    res
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub struct SignIn {
    token: String,
    #[serde(default)]
    csrf: String,
}

/// `POST /login`: a session for a live admin token.
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SignIn>,
) -> Response {
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !bool::from(expected.as_bytes().ct_eq(form.csrf.as_bytes())) {
        return forbidden("This sign-in form was not sent by this console. Reload the sign-in page and try again.");
    }
    let caller = match Caller::from_token(&state, form.token.trim()).await {
        Ok(c) => c,
        Err(_) => return login_form(&headers, Some("That is not a live admin token.")),
    };
    let id = random();
    let csrf = random();
    let now = OffsetDateTime::now_utc();
    if let Err(e) = state
        .store
        .open_session(&hash_hex(&hash_token(&id)), &caller.name, &csrf, now)
        .await
    {
        return crate::http::admin::problem::AdminError::Store(e).into_response();
    }
    let audit = AdminAction {
        connector: String::new(),
        token: caller.name.clone(),
        action: "console.sign_in".to_owned(),
        target_kind: None,
        target: None,
        outcome: "ok".to_owned(),
    };
    if let Err(e) = state.store.audit_admin_action(&audit, now).await {
        tracing::warn!(error.message = %e, "could not record a console sign-in");
    }
    tracing::info!(admin.token = %caller.name, "console session opened");
    let mut res = Redirect::to("/").into_response();
    let session = format!(
        "{SESSION_COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/{}",
        secure(&headers)
    );
    let clear_login = format!("{LOGIN_COOKIE}=; HttpOnly; SameSite=Strict; Path=/login; Max-Age=0");
    for c in [session, clear_login] {
        if let Ok(v) = HeaderValue::from_str(&c) {
            res.headers_mut().append(SET_COOKIE, v);
        }
    }
    res
}

/// A form that carries only the CSRF token.
#[derive(Debug, Deserialize)]
pub struct CsrfOnly {
    /// The session's CSRF token.
    #[serde(default)]
    pub csrf: String,
}

/// `POST /logout`: ends the session (and any idle ones).
pub async fn logout(
    State(state): State<AppState>,
    console: Console,
    headers: HeaderMap,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if let Some(r) = console.csrf_refusal(&form.csrf) {
        return r;
    }
    let idle = time::Duration::try_from(state.settings.admin.session_idle.0)
        .unwrap_or(time::Duration::minutes(30));
    if let Err(e) = state
        .store
        .close_session(&console.id_hash, OffsetDateTime::now_utc() - idle)
        .await
    {
        return crate::http::admin::problem::AdminError::Store(e).into_response();
    }
    tracing::info!(admin.token = %console.caller.name, "console session closed");
    let mut res = Redirect::to("/login").into_response();
    let clear = format!(
        "{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{}",
        secure(&headers)
    );
    if let Ok(v) = HeaderValue::from_str(&clear) {
        res.headers_mut().append(SET_COOKIE, v);
    }
    res
}
