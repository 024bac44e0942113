//! `POST /scim/v2/{connector}/oauth/token`: the connector's OAuth 2.0 token endpoint for the
//! client-credentials grant (RFC 6749 §4.4). Thin: it reads the form body, asks
//! [`crate::auth::Authenticator::token`], and renders RFC 6749 §5.1/§5.2 JSON, never a SCIM
//! error body (OAuth clients do not understand those).

use axum::body::to_bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::auth::{connector_of, log_failure};
use super::error::{ErrorReport, BASIC};
use super::state::AppState;
use crate::auth::oauth::OAuthError;
use crate::auth::tokens::IssuedToken;
use crate::auth::TokenError;

/// Largest token request read. A WIF client assertion is a JWT of one or two KB.
const MAX_FORM_BYTES: usize = 16 * 1024;

/// `POST /scim/v2/{connector}/oauth/token`.
pub async fn token(State(state): State<AppState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let connector = connector_of(parts.uri.path())
        .unwrap_or_default()
        .to_owned();
    tracing::Span::current().record("connector", connector.as_str());
    if !is_form(&parts.headers) {
        return refusal(&OAuthError::InvalidRequest(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let Ok(bytes) = to_bytes(body, MAX_FORM_BYTES).await else {
        return refusal(&OAuthError::InvalidRequest("the body is too large"));
    };
    let Ok(form) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes) else {
        return refusal(&OAuthError::InvalidRequest(
            "the body is not valid form encoding",
        ));
    };
    let authorization = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match state.auth().token(&connector, &form, authorization).await {
        Ok(issued) => {
            tracing::Span::current().record("auth.method", "oauth_client");
            success(&issued)
        }
        Err(TokenError::Refused(e)) => {
            if let OAuthError::InvalidClient(why) = &e {
                log_failure(*why);
            }
            refusal(&e)
        }
        Err(e @ TokenError::Signing(_)) => {
            let mut res = json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &json!({"error": "server_error"}),
            );
            res.extensions_mut().insert(ErrorReport {
                message: e.to_string(),
                server_fault: true,
            });
            res
        }
    }
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| {
            t.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// RFC 6749 §5.1: the token, `Cache-Control: no-store`.
fn success(issued: &IssuedToken) -> Response {
    json_response(
        StatusCode::OK,
        &json!({
            "access_token": issued.access_token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
        }),
    )
}

/// RFC 6749 §5.2: `{"error", "error_description"}`; `invalid_client` is 401 with a Basic
/// challenge, the scheme clients use for `client_secret_basic`.
fn refusal(e: &OAuthError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut res = json_response(
        status,
        &json!({"error": e.code(), "error_description": e.description()}),
    );
    if status == StatusCode::UNAUTHORIZED {
        res.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(BASIC));
    }
    res.extensions_mut().insert(ErrorReport {
        message: e.to_string(),
        server_fault: false,
    });
    res
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    let mut res = (status, body.to_string()).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=UTF-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}
