//! Connectors and their credentials.
//!
//! A connector is one IdP connection with its own SCIM base URL (`/scim/v2/{connector}`) and
//! credentials. Connectors come from the configuration file (token read from an environment
//! variable and hashed in memory) or from the store (`usersync connector create`, which keeps
//! only a hash). The registry keeps a snapshot in memory so authenticating a request costs one
//! SHA-256 and a constant-time comparison, and reloads it from the store when a credential is
//! not found (at most five times a second), so a connector created or rotated by the CLI works
//! without a restart. The other modes a configured connector may offer (Basic, Entra JWTs,
//! OAuth) live in [`crate::auth`], which asks this registry about static tokens.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::store::{Store, StoreResult};

/// Prefix of tokens we issue, so a leaked token is recognisable in secret scanners.
pub const TOKEN_PREFIX: &str = "usy_";

/// A SHA-256 digest of a token.
pub type TokenHash = [u8; 32];

/// Hashes a token.
pub fn hash_token(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// Hex form of a token hash, as stored.
pub fn hash_hex(h: &TokenHash) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_hex(s: &str) -> Option<TokenHash> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
        out[i] = u8::from_str_radix(std::str::from_utf8(chunk).ok()?, 16).ok()?;
    }
    Some(out)
}

/// Prefix of admin API tokens (docs/admin-api.md): distinct from [`TOKEN_PREFIX`], so each
/// door refuses the other's tokens before any lookup, and a leaked one says what it opens.
pub const ADMIN_TOKEN_PREFIX: &str = "usa_";

/// A new random bearer token: 256 bits, base64url, with [`TOKEN_PREFIX`].
pub fn generate_token() -> String {
    random_token(TOKEN_PREFIX)
}

/// A new random admin API token: 256 bits, base64url, with [`ADMIN_TOKEN_PREFIX`].
pub fn generate_admin_token() -> String {
    random_token(ADMIN_TOKEN_PREFIX)
}

fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// Where a connector was declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `[connectors.NAME]` in the configuration.
    Config,
    /// `usersync connector create`.
    Stored,
}

#[derive(Debug, Clone)]
struct Token {
    hash: TokenHash,
    expires_ms: Option<i64>,
}

#[derive(Debug, Clone)]
struct Entry {
    source: Source,
    tokens: Vec<Token>,
}

/// A connector as listed by `usersync connector list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorInfo {
    /// Name.
    pub name: String,
    /// Where it was declared.
    pub source: Source,
    /// Tokens that currently work.
    pub active_tokens: usize,
}

/// The outcome of checking a static bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerCheck {
    /// One of the connector's live tokens.
    Match,
    /// The connector exists; the token is none of its tokens.
    NoMatch,
    /// No connector of this name (also after a reload).
    UnknownConnector,
}

/// The in-memory registry of connectors and their token hashes.
#[derive(Clone)]
pub struct Connectors {
    inner: Arc<Inner>,
}

struct Inner {
    config: HashMap<String, Entry>,
    snapshot: RwLock<HashMap<String, Entry>>,
    store: Store,
    last_reload: Mutex<Option<Instant>>,
}

/// Minimum time between two reloads triggered by failed lookups.
const RELOAD_INTERVAL: Duration = Duration::from_millis(200);

impl Connectors {
    /// Builds the registry from the token hashes of the connectors the configuration
    /// declares (computed once by the runtime, `crate::runtime`, from the secrets read at
    /// load) and the connectors stored in `store`.
    pub async fn load(
        declared: impl IntoIterator<Item = (String, Vec<TokenHash>)>,
        store: Store,
    ) -> StoreResult<Connectors> {
        let config = declared
            .into_iter()
            .map(|(name, hashes)| {
                let tokens = hashes
                    .into_iter()
                    .map(|hash| Token {
                        hash,
                        expires_ms: None,
                    })
                    .collect();
                (
                    name,
                    Entry {
                        source: Source::Config,
                        tokens,
                    },
                )
            })
            .collect();
        let registry = Connectors {
            inner: Arc::new(Inner {
                config,
                snapshot: RwLock::new(HashMap::new()),
                store,
                last_reload: Mutex::new(None),
            }),
        };
        registry.reload().await?;
        for warning in registry
            .list()
            .iter()
            .filter_map(|c| crate::config::connector_name_warning(&c.name))
        {
            tracing::warn!("{warning}");
        }
        Ok(registry)
    }

    /// Re-reads stored connectors. Configuration connectors with tokens win over stored ones
    /// of the same name.
    pub async fn reload(&self) -> StoreResult<()> {
        let stored = self.inner.store.connectors().await?;
        let mut map: HashMap<String, Entry> = HashMap::new();
        for c in stored {
            let tokens = c
                .tokens
                .iter()
                .filter_map(|t| {
                    Some(Token {
                        hash: parse_hex(&t.hash)?,
                        expires_ms: t.expires.map(crate::store::to_ms),
                    })
                })
                .collect();
            map.insert(
                c.name,
                Entry {
                    source: Source::Stored,
                    tokens,
                },
            );
        }
        for (name, e) in &self.inner.config {
            // A configuration table without tokens for a stored connector only adds settings
            // (provisioning, mapping) to it; its stored tokens keep working.
            if e.tokens.is_empty() && map.contains_key(name) {
                continue;
            }
            map.insert(name.clone(), e.clone());
        }
        *self
            .inner
            .snapshot
            .write()
            .unwrap_or_else(|e| e.into_inner()) = map;
        *self
            .inner
            .last_reload
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        Ok(())
    }

    fn check(&self, connector: &str, hash: &TokenHash, now_ms: i64) -> Option<bool> {
        let snap = self
            .inner
            .snapshot
            .read()
            .unwrap_or_else(|e| e.into_inner());
        let entry = snap.get(connector)?;
        // Compare against every token in constant time; do not stop at the first match, so
        // timing does not tell which of several tokens matched.
        let mut ok = subtle::Choice::from(0u8);
        for t in &entry.tokens {
            let live = subtle::Choice::from(u8::from(t.expires_ms.is_none_or(|e| e > now_ms)));
            ok |= t.hash.ct_eq(hash) & live;
        }
        Some(bool::from(ok))
    }

    /// Checks a static bearer token for a connector. A token of one connector never
    /// authenticates another.
    pub async fn check_bearer(&self, connector: &str, token: &str) -> BearerCheck {
        let hash = hash_token(token);
        let now_ms = crate::store::to_ms(OffsetDateTime::now_utc());
        match self.check(connector, &hash, now_ms) {
            Some(true) => return BearerCheck::Match,
            // A connector from the configuration cannot change while we run: no reload.
            Some(false) if self.inner.config.contains_key(connector) => {
                return BearerCheck::NoMatch
            }
            _ => {}
        }
        // Maybe the CLI created or rotated the connector since the last load.
        if self.reload_if_due().await {
            if let Some(ok) = self.check(connector, &hash, now_ms) {
                return if ok {
                    BearerCheck::Match
                } else {
                    BearerCheck::NoMatch
                };
            }
        }
        if self.exists(connector) {
            BearerCheck::NoMatch
        } else {
            BearerCheck::UnknownConnector
        }
    }

    async fn reload_if_due(&self) -> bool {
        {
            let mut last = self
                .inner
                .last_reload
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|t| t.elapsed() < RELOAD_INTERVAL) {
                return false;
            }
            *last = Some(Instant::now());
        }
        match self.reload().await {
            Ok(()) => true,
            Err(e) => {
                let e = self.inner.store.explain(e);
                tracing::warn!(error.message = %e, "could not reload connectors from the store");
                false
            }
        }
    }

    /// Whether a connector of this name exists.
    pub fn exists(&self, connector: &str) -> bool {
        self.inner
            .snapshot
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(connector)
    }

    /// All connectors, by name.
    pub fn list(&self) -> Vec<ConnectorInfo> {
        let now_ms = crate::store::to_ms(OffsetDateTime::now_utc());
        let snap = self
            .inner
            .snapshot
            .read()
            .unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<ConnectorInfo> = snap
            .iter()
            .map(|(name, e)| ConnectorInfo {
                name: name.clone(),
                source: e.source,
                active_tokens: e
                    .tokens
                    .iter()
                    .filter(|t| t.expires_ms.is_none_or(|x| x > now_ms))
                    .count(),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_long_random_and_prefixed() {
        let a = generate_token();
        let b = generate_token();
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() > 40);
        assert_ne!(a, b);
        assert_eq!(parse_hex(&hash_hex(&hash_token(&a))), Some(hash_token(&a)));
    }
}
