//! Verification of RS256 JWTs signed by an IdP, and the Entra-signed bearer tokens built on it.
//!
//! When the admin leaves Entra's Secret Token blank, Entra sends a JWT it signed with its
//! tenant keys: `iss` is `https://sts.windows.net/<tenant id>/`, `aud` the fixed id
//! `8adf8e6e-67b2-4cf2-a259-e3dc5476c621` of every non-gallery app (MS-SCIM,
//! docs/reference/idp-behaviour.md §2.9 item 2; Microsoft recommends it for testing only). We check
//! the signature against the tenant's JWKS, `iss` exactly, `aud`, `exp` and `nbf` with a small
//! leeway.
//!
//! Only RS256 is accepted on this path. `alg: none` does not even parse as a header, and an
//! HS256 token is refused before any key is looked up: an RSA public key is public, so
//! accepting HMAC with it as the secret would let anyone sign (the classic algorithm
//! confusion). The token itself is never logged.

use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

use super::jwks::JwksCache;
use super::AuthFailure;
use crate::config::EntraJwtSettings;

/// What a verified token must say.
#[derive(Debug, Clone)]
pub struct Expected {
    /// Exact `iss`.
    pub issuer: String,
    /// Accepted `aud` values (any one of them).
    pub audiences: Vec<String>,
    /// Exact `sub`, when one is required.
    pub subject: Option<String>,
    /// Seconds of clock skew allowed on `exp` and `nbf`.
    pub leeway_secs: u64,
}

/// Whether `token` has the shape of a compact JWS (three base64url parts). Static tokens
/// never do, so this decides which verifier a bearer token goes to.
pub fn looks_like_jwt(token: &str) -> bool {
    let mut parts = token.split('.');
    let ok = |p: Option<&str>| {
        p.is_some_and(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
    };
    ok(parts.next()) && ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
}

/// Maps a `jsonwebtoken` error to the reason we log.
pub fn failure_of(e: &jsonwebtoken::errors::Error) -> AuthFailure {
    match e.kind() {
        ErrorKind::ExpiredSignature => AuthFailure::Expired,
        ErrorKind::ImmatureSignature => AuthFailure::NotYetValid,
        ErrorKind::InvalidIssuer => AuthFailure::WrongIssuer,
        ErrorKind::InvalidAudience => AuthFailure::WrongAudience,
        ErrorKind::InvalidSubject => AuthFailure::WrongSubject,
        ErrorKind::InvalidSignature => AuthFailure::BadSignature,
        ErrorKind::InvalidAlgorithm => AuthFailure::UnsupportedAlgorithm,
        _ => AuthFailure::Malformed,
    }
}

/// Verifies an RS256 token against the keys of `jwks` and the expectations; returns its
/// claims.
pub async fn verify_rs256(
    token: &str,
    jwks: &JwksCache,
    expected: &Expected,
) -> Result<Map<String, Value>, AuthFailure> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| AuthFailure::Malformed)?;
    if header.alg != Algorithm::RS256 {
        return Err(AuthFailure::UnsupportedAlgorithm);
    }
    let kid = header.kid.ok_or(AuthFailure::Malformed)?;
    let key = jwks.key(&kid).await?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[&expected.issuer]);
    validation.set_audience(&expected.audiences);
    validation.sub.clone_from(&expected.subject);
    validation.leeway = expected.leeway_secs;
    validation.validate_nbf = true;
    let mut required = vec!["exp", "iss", "aud"];
    if expected.subject.is_some() {
        required.push("sub");
    }
    validation.set_required_spec_claims(&required);
    jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
        .map(|data| data.claims)
        .map_err(|e| failure_of(&e))
}

/// Verifier of Entra-signed bearer tokens for one connector.
pub struct EntraJwt {
    expected: Expected,
    jwks: Arc<JwksCache>,
}

impl EntraJwt {
    /// From `[connectors.NAME.entra_jwt]`, with the cache of its JWKS URL.
    pub fn new(settings: &EntraJwtSettings, jwks: Arc<JwksCache>) -> Self {
        EntraJwt {
            expected: Expected {
                issuer: settings.issuer(),
                audiences: vec![settings.audience.clone()],
                subject: None,
                leeway_secs: settings.leeway.0.as_secs(),
            },
            jwks,
        }
    }

    /// Verifies a bearer token.
    pub async fn verify(&self, token: &str) -> Result<(), AuthFailure> {
        verify_rs256(token, &self.jwks, &self.expected)
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_three_part_base64url_tokens_look_like_jwts() {
        assert!(looks_like_jwt("eyJh.eyJz.c2ln"));
        assert!(!looks_like_jwt("usy_abc"));
        assert!(!looks_like_jwt("a.b"));
        assert!(!looks_like_jwt("a..c"));
        assert!(!looks_like_jwt("a.b.c.d"));
        assert!(!looks_like_jwt("a.b.c="));
    }

    #[tokio::test]
    async fn alg_none_and_hmac_tokens_are_refused_before_any_key_lookup() {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        // Nothing listens there: a lookup would fail with KeysUnavailable.
        let jwks = JwksCache::new(
            "http://127.0.0.1:9/keys".to_owned(),
            super::super::jwks::http_client().unwrap(),
            super::super::jwks::JwksPolicy {
                max_age: std::time::Duration::from_secs(60),
                min_refresh: std::time::Duration::from_secs(60),
            },
        );
        let expected = Expected {
            issuer: "x".to_owned(),
            audiences: vec!["y".to_owned()],
            subject: None,
            leeway_secs: 0,
        };
        let none = format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64(r#"{"iss":"x"}"#));
        assert_eq!(
            verify_rs256(&none, &jwks, &expected).await.unwrap_err(),
            AuthFailure::Malformed
        );
        let hs = format!(
            "{}.{}.c2ln",
            b64(r#"{"alg":"HS256","kid":"k"}"#),
            b64(r#"{"iss":"x"}"#)
        );
        assert_eq!(
            verify_rs256(&hs, &jwks, &expected).await.unwrap_err(),
            AuthFailure::UnsupportedAlgorithm
        );
    }
}
