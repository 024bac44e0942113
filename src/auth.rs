//! Authentication of IdP requests, per connector.
//!
//! A connector offers one or more modes, configured in its `[connectors.NAME]` table:
//!
//! | mode | the IdP sends | who | source |
//! |---|---|---|---|
//! | static bearer tokens (`token_env`, or stored by the CLI) | `Bearer <token>` | Entra Secret Token, Okta HTTP Header, OneLogin, JumpCloud, PingOne | MS-SCIM, OKTA-PREP, OL-KB, JC, PING1 |
//! | HTTP Basic (`basic`) | `Basic base64(user:password)` | Okta Basic Auth, PingOne | OKTA-PREP, PING1 |
//! | Entra-signed JWT (`entra_jwt`) | `Bearer <JWT signed by the tenant>` | Entra with a blank Secret Token | MS-SCIM |
//! | OAuth client credentials (`oauth`) | `Bearer <our JWT>`, fetched from `/oauth/token` with a secret or a WIF assertion | Entra OAuth option and gallery, PingOne | MS-GAL, MSREF-WIF, PING1 |
//!
//! Rules for every mode: a credential of one connector never authenticates another (tokens
//! and hashes are held per connector, JWTs are bound by `iss`/`aud`, configuration refuses
//! shared credentials); an unknown connector and a wrong credential get the same answer; the
//! reason is logged as `auth.failure`, never sent; credentials are never logged.
//!
//! This module does not depend on axum: `http/auth.rs` (the `ScimCtx` extractor) and
//! `http/oauth.rs` (the token endpoint) are thin adapters over it.

pub mod basic;
pub mod jwks;
pub mod jwt;
pub mod oauth;
pub mod tokens;
pub mod wif;

use std::fmt;
use std::sync::Arc;

use jsonwebtoken::Algorithm;

use self::basic::BasicCredentials;
use self::jwks::{JwksCaches, JwksPolicy};
use self::jwt::EntraJwt;
use self::oauth::{OAuthClient, OAuthError};
use self::tokens::{AccessTokens, IssuedToken};
use self::wif::WifVerifier;
use crate::config::{AuthSettings, ConfigError, ConnectorSettings, OneOrMany, Secrets};
use crate::connectors::{BearerCheck, Connectors};

/// How a request was authenticated (logged as `auth.method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// A static bearer token.
    StaticToken,
    /// HTTP Basic.
    Basic,
    /// A JWT signed by the connector's Entra tenant.
    EntraJwt,
    /// An access token from the connector's token endpoint.
    OAuthToken,
}

impl AuthMethod {
    /// The log value.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::StaticToken => "static_token",
            AuthMethod::Basic => "basic",
            AuthMethod::EntraJwt => "entra_jwt",
            AuthMethod::OAuthToken => "oauth_token",
        }
    }
}

/// An authenticated request: how, and with which credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// The mode.
    pub method: AuthMethod,
    /// Which credential, named without revealing it (recorded in the audit trail,
    /// docs/audit.md): `token:` and the first 12 hex digits of the token's SHA-256 (the
    /// start of its stored hash), `basic:` and the user name, `oauth:` and the client id,
    /// or `entra_jwt`.
    pub credential: String,
}

/// Why a request was not authenticated. Logged as `auth.failure` for the operator; the client
/// always gets the same 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No credentials were sent.
    Missing,
    /// No connector has this name.
    UnknownConnector,
    /// A scheme the connector does not offer (e.g. Basic where none is configured).
    UnsupportedScheme,
    /// Credentials of the right form that match nothing of this connector.
    InvalidCredentials,
    /// Not decodable (bad base64, not a JWT, no `kid`, missing claims).
    Malformed,
    /// A JWT algorithm this path does not accept (`none`, HS* where RS256 is expected).
    UnsupportedAlgorithm,
    /// The JWT names a key the JWKS does not hold, even after a refresh.
    UnknownKey,
    /// The JWKS could not be fetched and no key is cached.
    KeysUnavailable,
    /// The JWT signature does not verify.
    BadSignature,
    /// `exp` has passed.
    Expired,
    /// `nbf` is in the future.
    NotYetValid,
    /// `iss` is not the configured tenant's (or ours).
    WrongIssuer,
    /// `aud` is not the configured audience (or this connector).
    WrongAudience,
    /// `sub` is not the configured subject (or client).
    WrongSubject,
    /// `tid` is not the configured tenant.
    WrongTenant,
}

impl fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuthFailure::Missing => "missing",
            AuthFailure::UnknownConnector => "unknown_connector",
            AuthFailure::UnsupportedScheme => "unsupported_scheme",
            AuthFailure::InvalidCredentials => "invalid_credentials",
            AuthFailure::Malformed => "malformed",
            AuthFailure::UnsupportedAlgorithm => "unsupported_algorithm",
            AuthFailure::UnknownKey => "unknown_key",
            AuthFailure::KeysUnavailable => "keys_unavailable",
            AuthFailure::BadSignature => "bad_signature",
            AuthFailure::Expired => "expired",
            AuthFailure::NotYetValid => "not_yet_valid",
            AuthFailure::WrongIssuer => "wrong_issuer",
            AuthFailure::WrongAudience => "wrong_audience",
            AuthFailure::WrongSubject => "wrong_subject",
            AuthFailure::WrongTenant => "wrong_tenant",
        })
    }
}

/// The `WWW-Authenticate` challenges of a 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    /// `Bearer realm="usersync"`.
    Bearer,
    /// `Bearer realm="usersync"` and `Basic realm="usersync"`.
    BearerAndBasic,
}

/// The authentication schemes a connector offers, for `/ServiceProviderConfig`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Schemes {
    /// Bearer tokens it holds or verifies itself (static or Entra-signed).
    pub bearer: bool,
    /// HTTP Basic.
    pub basic: bool,
    /// OAuth 2.0 client credentials at its token endpoint.
    pub oauth2: bool,
}

/// The modes a declared connector offers beyond static tokens: built once per connector by
/// the runtime (`crate::runtime`), which hands them to the [`Authenticator`] through
/// [`AuthLookup`].
pub struct ConnectorAuth {
    static_tokens: bool,
    basic: Option<BasicCredentials>,
    entra_jwt: Option<EntraJwt>,
    oauth: Option<OAuthClient>,
}

impl fmt::Debug for ConnectorAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectorAuth")
            .field("static_tokens", &self.static_tokens)
            .field("basic", &self.basic.is_some())
            .field("entra_jwt", &self.entra_jwt.is_some())
            .field("oauth", &self.oauth.is_some())
            .finish()
    }
}

fn secret_values<'a>(secrets: &'a Secrets, vars: Option<&'a OneOrMany>) -> Vec<&'a str> {
    vars.iter()
        .flat_map(|v| v.values())
        .filter_map(|var| secrets.get(var))
        .collect()
}

/// The signing-key caches of every JWKS URL the connectors name, shared by them (one fetch
/// per URL), with the refresh policy of `[auth]`.
pub fn jwks_caches(settings: &AuthSettings) -> Result<JwksCaches, ConfigError> {
    let client = jwks::http_client()
        .map_err(|e| ConfigError(format!("cannot build the HTTP client for JWKS: {e}")))?;
    Ok(JwksCaches::new(
        client,
        JwksPolicy {
            max_age: settings.jwks_max_age.0,
            min_refresh: settings.jwks_min_refresh.0,
        },
    ))
}

impl ConnectorAuth {
    /// The modes it accepts, by their documented names (docs/admin-api.md): `bearer`,
    /// `basic`, `entra_jwt`, `oauth2`.
    pub fn modes(&self) -> Vec<&'static str> {
        let mut modes = Vec::new();
        if self.static_tokens {
            modes.push("bearer");
        }
        if self.basic.is_some() {
            modes.push("basic");
        }
        if self.entra_jwt.is_some() {
            modes.push("entra_jwt");
        }
        if self.oauth.is_some() {
            modes.push("oauth2");
        }
        modes
    }

    /// The verifiers `c` (the connector `name`, already validated) declares, with the secrets
    /// read at load ([`Secrets`]) and signing keys from `caches`.
    pub fn new(
        name: &str,
        c: &ConnectorSettings,
        secrets: &Secrets,
        caches: &mut JwksCaches,
    ) -> ConnectorAuth {
        let basic = c.basic.as_ref().map(|b| {
            BasicCredentials::new(&b.username, secret_values(secrets, Some(&b.password_env)))
        });
        let entra_jwt = c
            .entra_jwt
            .as_ref()
            .map(|j| EntraJwt::new(j, caches.get(&j.jwks_url())));
        let oauth = c.oauth.as_ref().map(|o| {
            let keys = secret_values(secrets, o.signing_key_env.as_ref());
            if keys.is_empty() {
                tracing::warn!(
                    connector = %name,
                    "oauth.signing_key_env is unset: access tokens are signed with a random \
                     key, so they stop working on restart and on other instances"
                );
            }
            let keys: Vec<&[u8]> = keys.iter().map(|k| k.as_bytes()).collect();
            let tokens = AccessTokens::new(name, &o.client_id, o.token_ttl.0.as_secs(), &keys);
            let wif = o
                .wif
                .as_ref()
                .map(|w| WifVerifier::new(w, caches.get(&w.jwks_url())));
            OAuthClient::new(
                &o.client_id,
                secret_values(secrets, o.client_secret_env.as_ref()),
                wif,
                tokens,
            )
        });
        ConnectorAuth {
            static_tokens: c.token_env.is_some(),
            basic,
            entra_jwt,
            oauth,
        }
    }
}

/// Where the authenticator finds a connector's modes: the runtime's table of connectors
/// (`crate::runtime`), so the modes are built once, in one place. `None`: a connector the
/// configuration does not declare (bearer tokens only, if it exists at all).
pub trait AuthLookup: Send + Sync {
    /// The modes of the declared connector `connector`.
    fn auth(&self, connector: &str) -> Option<&ConnectorAuth>;
}

/// Authenticates requests for every connector. Cheap to clone.
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

struct Inner {
    connectors: Connectors,
    configured: Arc<dyn AuthLookup>,
}

impl Authenticator {
    /// An authenticator checking static tokens against `connectors` and the other modes of
    /// the declared connectors in `configured`.
    pub fn new(connectors: Connectors, configured: Arc<dyn AuthLookup>) -> Self {
        Authenticator {
            inner: Arc::new(Inner {
                connectors,
                configured,
            }),
        }
    }

    /// Authenticates a SCIM request to `connector` from its `Authorization` header.
    pub async fn authenticate(
        &self,
        connector: &str,
        authorization: Option<&str>,
    ) -> Result<Authenticated, AuthFailure> {
        let header = authorization
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .ok_or(AuthFailure::Missing)?;
        let (scheme, credentials) = header
            .split_once(' ')
            .map(|(s, c)| (s, c.trim()))
            .unwrap_or((header, ""));
        let configured = self.inner.configured.auth(connector);
        if scheme.eq_ignore_ascii_case("bearer") {
            if credentials.is_empty() {
                return Err(AuthFailure::Missing);
            }
            match self
                .inner
                .connectors
                .check_bearer(connector, credentials)
                .await
            {
                BearerCheck::Match => {
                    let fingerprint =
                        crate::connectors::hash_hex(&crate::connectors::hash_token(credentials));
                    return Ok(Authenticated {
                        method: AuthMethod::StaticToken,
                        credential: format!("token:{}", &fingerprint[..12]),
                    });
                }
                BearerCheck::UnknownConnector => return Err(AuthFailure::UnknownConnector),
                BearerCheck::NoMatch => {}
            }
            let Some(c) = configured.filter(|_| jwt::looks_like_jwt(credentials)) else {
                return Err(AuthFailure::InvalidCredentials);
            };
            let alg = jsonwebtoken::decode_header(credentials)
                .map_err(|_| AuthFailure::Malformed)?
                .alg;
            match (alg, &c.entra_jwt, &c.oauth) {
                (Algorithm::RS256, Some(entra), _) => {
                    entra.verify(credentials).await.map(|()| Authenticated {
                        method: AuthMethod::EntraJwt,
                        credential: "entra_jwt".to_owned(),
                    })
                }
                (Algorithm::HS256, _, Some(oauth)) => {
                    oauth.tokens().verify(credentials).map(|()| Authenticated {
                        method: AuthMethod::OAuthToken,
                        credential: format!("oauth:{}", oauth.client_id()),
                    })
                }
                (_, None, None) => Err(AuthFailure::InvalidCredentials),
                _ => Err(AuthFailure::UnsupportedAlgorithm),
            }
        } else if scheme.eq_ignore_ascii_case("basic") {
            match configured.and_then(|c| c.basic.as_ref()) {
                Some(b) => {
                    let (user, password) =
                        basic::decode(credentials).ok_or(AuthFailure::Malformed)?;
                    if b.verify(&user, &password) {
                        Ok(Authenticated {
                            method: AuthMethod::Basic,
                            credential: format!("basic:{user}"),
                        })
                    } else {
                        Err(AuthFailure::InvalidCredentials)
                    }
                }
                None if self.inner.connectors.exists(connector) => {
                    Err(AuthFailure::UnsupportedScheme)
                }
                None => Err(AuthFailure::UnknownConnector),
            }
        } else {
            Err(AuthFailure::UnsupportedScheme)
        }
    }

    /// The challenges of a 401: `Bearer`, plus `Basic` when the request tried Basic
    /// (RFC 7235 §4.1: a client that sent Basic learns that Basic is understood; Okta's
    /// Basic Auth option sends it unasked, OKTA-PREP). The answer depends on the request
    /// only, never on the connector: whether the connector exists, or offers Basic, cannot
    /// be read from a 401, which is byte-for-byte the same for every connector.
    pub fn challenge(&self, authorization: Option<&str>) -> Challenge {
        let tried_basic = authorization.is_some_and(|a| {
            a.trim()
                .get(..6)
                .is_some_and(|s| s.eq_ignore_ascii_case("basic "))
        });
        if tried_basic {
            Challenge::BearerAndBasic
        } else {
            Challenge::Bearer
        }
    }

    /// The schemes `connector` offers. Connectors created by the CLI have bearer tokens only.
    pub fn schemes(&self, connector: &str) -> Schemes {
        match self.inner.configured.auth(connector) {
            Some(c) => Schemes {
                bearer: c.static_tokens || c.entra_jwt.is_some(),
                basic: c.basic.is_some(),
                oauth2: c.oauth.is_some(),
            },
            None => Schemes {
                bearer: true,
                ..Schemes::default()
            },
        }
    }

    /// Answers a token request to `connector`'s token endpoint: `form` is the decoded body,
    /// `authorization` the header. An unknown connector, one without `oauth`, and a wrong
    /// secret all get `invalid_client`.
    pub async fn token(
        &self,
        connector: &str,
        form: &[(String, String)],
        authorization: Option<&str>,
    ) -> Result<IssuedToken, TokenError> {
        let request = oauth::parse_token_request(form, authorization)?;
        let client = match self.inner.configured.auth(connector) {
            Some(c) => c
                .oauth
                .as_ref()
                .ok_or(OAuthError::InvalidClient(AuthFailure::UnsupportedScheme))?,
            None => {
                let why = if self.inner.connectors.exists(connector) {
                    AuthFailure::UnsupportedScheme
                } else {
                    AuthFailure::UnknownConnector
                };
                return Err(OAuthError::InvalidClient(why).into());
            }
        };
        client
            .authenticate(&request)
            .await
            .map_err(OAuthError::InvalidClient)?;
        client.tokens().issue().map_err(TokenError::Signing)
    }
}

/// Why the token endpoint gave no token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Refused (RFC 6749 §5.2).
    #[error(transparent)]
    Refused(#[from] OAuthError),
    /// Our own signing failed (a bug): 500.
    #[error("cannot sign the access token: {0}")]
    Signing(jsonwebtoken::errors::Error),
}
