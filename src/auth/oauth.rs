//! The OAuth 2.0 client-credentials grant (RFC 6749 §4.4) of a connector's token endpoint,
//! `POST /scim/v2/{connector}/oauth/token`: request parsing, client authentication, errors.
//!
//! Who calls it: Entra's "OAuth2 client credentials grant" provisioning option and gallery
//! apps (MS-GAL: client secrets, several valid at once, tokens of 60 minutes to 6 hours),
//! Entra workload identity federation (MSREF-WIF), and PingOne's "OAuth 2 client credentials"
//! (PING1). Clients authenticate with `client_secret_post` (form fields) or
//! `client_secret_basic` (HTTP Basic), both required by docs/reference/idp-behaviour.md §2.9 item
//! 3, or with a JWT client assertion (RFC 7523). Okta's authorization-code flow is not offered.
//!
//! This module is pure protocol; the handler in `http/oauth.rs` reads the body and renders
//! the answer.

use subtle::{Choice, ConstantTimeEq};

use super::basic;
use super::tokens::AccessTokens;
use super::wif::{WifVerifier, JWT_BEARER_ASSERTION};
use super::AuthFailure;
use crate::connectors::{hash_token, TokenHash};

/// The only grant type offered.
pub const CLIENT_CREDENTIALS: &str = "client_credentials";

/// A refused token request (RFC 6749 §5.2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    /// 400 `invalid_request`: a parameter is missing, repeated or malformed, or several client
    /// authentication methods were used at once.
    #[error("invalid_request: {0}")]
    InvalidRequest(&'static str),
    /// 401 `invalid_client`: client authentication failed (or the connector has no token
    /// endpoint, or does not exist: all three look the same).
    #[error("invalid_client: {0}")]
    InvalidClient(AuthFailure),
    /// 400 `unsupported_grant_type`: anything but `client_credentials`.
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
}

impl OAuthError {
    /// The `error` code.
    pub fn code(&self) -> &'static str {
        match self {
            OAuthError::InvalidRequest(_) => "invalid_request",
            OAuthError::InvalidClient(_) => "invalid_client",
            OAuthError::UnsupportedGrantType => "unsupported_grant_type",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            OAuthError::InvalidClient(_) => 401,
            _ => 400,
        }
    }

    /// The `error_description`, safe to send: it never says why a client failed.
    pub fn description(&self) -> &'static str {
        match self {
            OAuthError::InvalidRequest(why) => why,
            OAuthError::InvalidClient(_) => "client authentication failed",
            OAuthError::UnsupportedGrantType => "only grant_type=client_credentials is supported",
        }
    }
}

/// How the client authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAuth {
    /// `client_secret_post` or `client_secret_basic`.
    Secret {
        /// The client id.
        client_id: String,
        /// The secret as sent.
        secret: String,
        /// The form-decoded pair, when Basic credentials contained `%` or `+` (RFC 6749
        /// §2.3.1 form-encodes them; many clients do not, so both readings are tried).
        decoded: Option<(String, String)>,
    },
    /// A JWT client assertion (RFC 7523 §2.2).
    Assertion {
        /// `client_id`, if sent.
        client_id: Option<String>,
        /// The assertion.
        assertion: String,
    },
}

/// Parses a token request: form pairs and the `Authorization` header.
pub fn parse_token_request(
    form: &[(String, String)],
    authorization: Option<&str>,
) -> Result<ClientAuth, OAuthError> {
    let mut seen: Vec<&str> = Vec::new();
    for (k, _) in form {
        if seen.contains(&k.as_str()) {
            // RFC 6749 §3.2: parameters must not be included more than once.
            return Err(OAuthError::InvalidRequest("a parameter is repeated"));
        }
        seen.push(k);
    }
    let get = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    match get("grant_type") {
        None => return Err(OAuthError::InvalidRequest("grant_type is missing")),
        Some(CLIENT_CREDENTIALS) => {}
        Some(_) => return Err(OAuthError::UnsupportedGrantType),
    }
    let basic = authorization.and_then(|a| {
        let (scheme, rest) = a.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("basic").then_some(rest)
    });
    let form_secret = get("client_secret");
    let assertion_type = get("client_assertion_type");
    let assertion = get("client_assertion");
    // Entra's "How credentials are sent: Both" puts the same client id and secret in the
    // Basic header and in the body. RFC 6749 §2.3 allows one method per request; the same
    // pair twice is still one client, so it is read as one method. Different pairs are a
    // real conflict and refused below.
    let both = basic.is_some() && form_secret.is_some();
    let methods = usize::from(basic.is_some() || form_secret.is_some())
        + usize::from(assertion_type.is_some() || assertion.is_some());
    if methods > 1 {
        // RFC 6749 §2.3: one client authentication method per request.
        return Err(OAuthError::InvalidRequest(
            "use exactly one client authentication method",
        ));
    }
    if let Some(b64) = basic {
        let (id, secret) =
            basic::decode(b64).ok_or(OAuthError::InvalidClient(AuthFailure::Malformed))?;
        // RFC 6749 §2.3.1 form-encodes the Basic pair; many clients do not, so both
        // readings are kept.
        let decoded = match (form_decode(&id), form_decode(&secret)) {
            (Some(i), Some(s)) if i != id || s != secret => Some((i, s)),
            _ => None,
        };
        let agrees =
            |form: &str, plain: &str, decoded: Option<&str>| form == plain || decoded == Some(form);
        if let Some(form_id) = get("client_id") {
            if !agrees(form_id, &id, decoded.as_ref().map(|(i, _)| i.as_str())) {
                return Err(OAuthError::InvalidRequest(
                    "client_id differs from the Basic credentials",
                ));
            }
        }
        if both {
            let form_secret = form_secret.unwrap_or_default();
            if !agrees(
                form_secret,
                &secret,
                decoded.as_ref().map(|(_, s)| s.as_str()),
            ) {
                return Err(OAuthError::InvalidRequest(
                    "the client credentials in the Authorization header and in the body differ",
                ));
            }
        }
        return Ok(ClientAuth::Secret {
            client_id: id,
            secret,
            decoded,
        });
    }
    if let Some(secret) = form_secret {
        let client_id =
            get("client_id").ok_or(OAuthError::InvalidRequest("client_id is missing"))?;
        return Ok(ClientAuth::Secret {
            client_id: client_id.to_owned(),
            secret: secret.to_owned(),
            decoded: None,
        });
    }
    if assertion_type.is_some() || assertion.is_some() {
        if assertion_type != Some(JWT_BEARER_ASSERTION) {
            return Err(OAuthError::InvalidClient(AuthFailure::UnsupportedScheme));
        }
        let assertion =
            assertion.ok_or(OAuthError::InvalidRequest("client_assertion is missing"))?;
        return Ok(ClientAuth::Assertion {
            client_id: get("client_id").map(str::to_owned),
            assertion: assertion.to_owned(),
        });
    }
    Err(OAuthError::InvalidClient(AuthFailure::Missing))
}

/// Decodes `application/x-www-form-urlencoded` text (`+` is a space, `%XX` a byte).
fn form_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                if !hex.bytes().all(|h| h.is_ascii_hexdigit()) {
                    return None;
                }
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The token endpoint of one connector.
pub struct OAuthClient {
    client_id: String,
    client_id_hash: TokenHash,
    secrets: Vec<TokenHash>,
    wif: Option<WifVerifier>,
    tokens: AccessTokens,
}

impl OAuthClient {
    /// A client `client_id` with these secrets and/or assertion verifier.
    pub fn new<'a>(
        client_id: &str,
        secrets: impl IntoIterator<Item = &'a str>,
        wif: Option<WifVerifier>,
        tokens: AccessTokens,
    ) -> Self {
        OAuthClient {
            client_id: client_id.to_owned(),
            client_id_hash: hash_token(client_id),
            secrets: secrets.into_iter().map(hash_token).collect(),
            wif,
            tokens,
        }
    }

    /// The client's id: names the credential in the audit trail (docs/audit.md).
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    fn secret_matches(&self, client_id: &str, secret: &str) -> Choice {
        let id_ok = self.client_id_hash.ct_eq(&hash_token(client_id));
        let given = hash_token(secret);
        let mut ok = Choice::from(0u8);
        for s in &self.secrets {
            ok |= s.ct_eq(&given);
        }
        id_ok & ok
    }

    /// Authenticates the client.
    pub async fn authenticate(&self, auth: &ClientAuth) -> Result<(), AuthFailure> {
        match auth {
            ClientAuth::Secret {
                client_id,
                secret,
                decoded,
            } => {
                let mut ok = self.secret_matches(client_id, secret);
                if let Some((id, s)) = decoded {
                    ok |= self.secret_matches(id, s);
                }
                if bool::from(ok) {
                    Ok(())
                } else {
                    Err(AuthFailure::InvalidCredentials)
                }
            }
            ClientAuth::Assertion {
                client_id,
                assertion,
            } => {
                let wif = self.wif.as_ref().ok_or(AuthFailure::UnsupportedScheme)?;
                if client_id.as_deref().is_some_and(|id| id != self.client_id) {
                    return Err(AuthFailure::InvalidCredentials);
                }
                wif.verify(assertion).await
            }
        }
    }

    /// The connector's access tokens.
    pub fn tokens(&self) -> &AccessTokens {
        &self.tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn basic(id: &str, secret: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
        )
    }

    #[test]
    fn secrets_come_from_the_form_or_basic_or_both_when_they_agree() {
        let f = form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "c"),
            ("client_secret", "s"),
        ]);
        assert_eq!(
            parse_token_request(&f, None).unwrap(),
            ClientAuth::Secret {
                client_id: "c".into(),
                secret: "s".into(),
                decoded: None
            }
        );
        assert_eq!(
            parse_token_request(&f, Some(&basic("c", "s"))).unwrap(),
            ClientAuth::Secret {
                client_id: "c".into(),
                secret: "s".into(),
                decoded: None
            },
            "the same pair in the header and the body (Entra's \"Both\") is one method"
        );
        for (id, secret) in [("c", "other"), ("d", "s")] {
            assert_eq!(
                parse_token_request(&f, Some(&basic(id, secret)))
                    .unwrap_err()
                    .code(),
                "invalid_request",
                "{id}:{secret} conflicts with the body"
            );
        }
        let assertion_and_secret = form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "c"),
            ("client_secret", "s"),
            ("client_assertion_type", JWT_BEARER_ASSERTION),
            ("client_assertion", "a.b.c"),
        ]);
        assert_eq!(
            parse_token_request(&assertion_and_secret, None).unwrap_err(),
            OAuthError::InvalidRequest("use exactly one client authentication method")
        );
        let encoded = form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "c:x"),
            ("client_secret", "a b"),
        ]);
        assert!(
            parse_token_request(&encoded, Some(&basic("c%3Ax", "a+b"))).is_ok(),
            "a form-encoded Basic pair agrees with its decoded body"
        );
        let f = form(&[("grant_type", "client_credentials"), ("scope", "scim")]);
        assert_eq!(
            parse_token_request(&f, Some(&basic("c%3Ax", "a+b"))).unwrap(),
            ClientAuth::Secret {
                client_id: "c%3Ax".into(),
                secret: "a+b".into(),
                decoded: Some(("c:x".into(), "a b".into()))
            }
        );
    }

    #[test]
    fn grant_type_and_repeats_are_checked_first() {
        let missing = form(&[("client_id", "c"), ("client_secret", "s")]);
        assert_eq!(
            parse_token_request(&missing, None).unwrap_err().code(),
            "invalid_request"
        );
        let password = form(&[("grant_type", "password")]);
        assert_eq!(
            parse_token_request(&password, None).unwrap_err(),
            OAuthError::UnsupportedGrantType
        );
        let twice = form(&[
            ("grant_type", "client_credentials"),
            ("client_secret", "a"),
            ("client_secret", "b"),
        ]);
        assert_eq!(
            parse_token_request(&twice, None).unwrap_err().code(),
            "invalid_request"
        );
        let none = form(&[("grant_type", "client_credentials"), ("client_id", "c")]);
        let e = parse_token_request(&none, None).unwrap_err();
        assert_eq!((e.code(), e.status()), ("invalid_client", 401));
    }

    #[test]
    fn assertions_need_the_jwt_bearer_type() {
        let f = form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "c"),
            ("client_assertion_type", JWT_BEARER_ASSERTION),
            ("client_assertion", "a.b.c"),
        ]);
        assert!(matches!(
            parse_token_request(&f, None).unwrap(),
            ClientAuth::Assertion { .. }
        ));
        let f = form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", "urn:example:saml"),
            ("client_assertion", "x"),
        ]);
        assert_eq!(
            parse_token_request(&f, None).unwrap_err().code(),
            "invalid_client"
        );
    }

    #[tokio::test]
    async fn any_listed_secret_authenticates_the_client() {
        let c = OAuthClient::new(
            "c",
            ["new", "old"],
            None,
            AccessTokens::new("x", "c", 60, &[]),
        );
        let secret = |id: &str, s: &str| ClientAuth::Secret {
            client_id: id.into(),
            secret: s.into(),
            decoded: None,
        };
        assert_eq!(c.authenticate(&secret("c", "new")).await, Ok(()));
        assert_eq!(c.authenticate(&secret("c", "old")).await, Ok(()));
        assert!(c.authenticate(&secret("c", "bad")).await.is_err());
        assert!(c.authenticate(&secret("d", "new")).await.is_err());
        let assertion = ClientAuth::Assertion {
            client_id: None,
            assertion: "a.b.c".into(),
        };
        assert_eq!(
            c.authenticate(&assertion).await,
            Err(AuthFailure::UnsupportedScheme)
        );
    }
}
