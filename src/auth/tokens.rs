//! The access tokens our token endpoint issues: short-lived HS256 JWTs (RFC 9068 profile,
//! `typ: at+jwt`) that authenticate one connector only.
//!
//! Claims: `iss` = `usersync`, `aud` = the connector's name, `sub` = its client id, `iat`,
//! `exp`, `jti`. Verification requires all of them, so a token issued for one connector is
//! refused by every other even when two connectors share a signing key, and a token from
//! before a client id change stops working. The `typ` check keeps any other HS256 JWT signed
//! with the same key from passing as an access token.
//!
//! Keys: the first configured key signs, all verify (rotate by listing the new key first and
//! keeping the old one for one token lifetime). With no key configured, a random key is made
//! per process and connector: tokens then die on restart and differ between instances, which
//! IdPs survive by asking for a new token on 401, at the price of failed requests.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::jwt::failure_of;
use super::AuthFailure;

/// `iss` of every token we issue.
pub const ISSUER: &str = "usersync";
/// The JWT `typ` of OAuth access tokens (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";
/// Clock skew allowed between usersync instances on `exp`.
const LEEWAY_SECS: u64 = 30;

/// A token issued by the token endpoint.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The JWT.
    pub access_token: String,
    /// Seconds until it expires.
    pub expires_in: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    aud: String,
    sub: String,
    iat: i64,
    exp: i64,
    jti: String,
}

/// Issues and verifies the access tokens of one connector.
pub struct AccessTokens {
    audience: String,
    client_id: String,
    ttl_secs: u64,
    signing: EncodingKey,
    verifying: Vec<DecodingKey>,
}

impl AccessTokens {
    /// Tokens for `connector`'s client `client_id`, signed with the first of `keys` (or a
    /// random key when there is none).
    pub fn new(connector: &str, client_id: &str, ttl_secs: u64, keys: &[&[u8]]) -> Self {
        let mut random = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut random);
        let keys: Vec<&[u8]> = if keys.is_empty() {
            vec![&random[..]]
        } else {
            keys.to_vec()
        };
        AccessTokens {
            audience: connector.to_owned(),
            client_id: client_id.to_owned(),
            ttl_secs,
            signing: EncodingKey::from_secret(keys.first().copied().unwrap_or(&random)),
            verifying: keys.iter().map(|k| DecodingKey::from_secret(k)).collect(),
        }
    }

    /// A new token, valid from now for the configured lifetime.
    pub fn issue(&self) -> Result<IssuedToken, jsonwebtoken::errors::Error> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let claims = Claims {
            iss: ISSUER.to_owned(),
            aud: self.audience.clone(),
            sub: self.client_id.clone(),
            iat: now,
            exp: now.saturating_add(i64::try_from(self.ttl_secs).unwrap_or(i64::MAX)),
            jti: uuid::Uuid::new_v4().to_string(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some(ACCESS_TOKEN_TYP.to_owned());
        Ok(IssuedToken {
            access_token: jsonwebtoken::encode(&header, &claims, &self.signing)?,
            expires_in: self.ttl_secs,
        })
    }

    /// Verifies a bearer token as one of ours for this connector.
    pub fn verify(&self, token: &str) -> Result<(), AuthFailure> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthFailure::Malformed)?;
        if header.alg != Algorithm::HS256 {
            return Err(AuthFailure::UnsupportedAlgorithm);
        }
        if header.typ.as_deref() != Some(ACCESS_TOKEN_TYP) {
            return Err(AuthFailure::Malformed);
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[&self.audience]);
        validation.sub = Some(self.client_id.clone());
        validation.leeway = LEEWAY_SECS;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        for key in &self.verifying {
            match jsonwebtoken::decode::<Claims>(token, key, &validation) {
                Ok(_) => return Ok(()),
                // The signature is checked before the claims: any other failure means this
                // key signed it, so it is the answer.
                Err(e) => match failure_of(&e) {
                    AuthFailure::BadSignature => {}
                    other => return Err(other),
                },
            }
        }
        Err(AuthFailure::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
    const OLD: &[u8] = b"fedcba9876543210fedcba9876543210";

    #[test]
    fn a_token_verifies_for_its_connector_only() {
        let a = AccessTokens::new("a", "client", 3600, &[KEY]);
        let b = AccessTokens::new("b", "client", 3600, &[KEY]);
        let t = a.issue().unwrap();
        assert_eq!(t.expires_in, 3600);
        assert_eq!(a.verify(&t.access_token), Ok(()));
        assert_eq!(b.verify(&t.access_token), Err(AuthFailure::WrongAudience));
        let other_client = AccessTokens::new("a", "other", 3600, &[KEY]);
        assert_eq!(
            other_client.verify(&t.access_token),
            Err(AuthFailure::WrongSubject)
        );
    }

    #[test]
    fn the_first_key_signs_and_all_verify() {
        let old = AccessTokens::new("a", "c", 60, &[OLD]);
        let rotated = AccessTokens::new("a", "c", 60, &[KEY, OLD]);
        let t = old.issue().unwrap();
        assert_eq!(rotated.verify(&t.access_token), Ok(()));
        let t = rotated.issue().unwrap();
        assert_eq!(old.verify(&t.access_token), Err(AuthFailure::BadSignature));
    }

    #[test]
    fn random_keys_differ_per_instance() {
        let one = AccessTokens::new("a", "c", 60, &[]);
        let two = AccessTokens::new("a", "c", 60, &[]);
        let t = one.issue().unwrap();
        assert_eq!(one.verify(&t.access_token), Ok(()));
        assert_eq!(two.verify(&t.access_token), Err(AuthFailure::BadSignature));
    }
}
