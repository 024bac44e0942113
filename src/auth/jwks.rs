//! Signing keys published as a JWKS (RFC 7517) by an IdP, fetched over HTTPS and cached.
//!
//! Entra signs the bearer tokens of a non-gallery app with a blank Secret Token (MS-SCIM) and
//! the client assertions of workload identity federation (MSREF-WIF) with its tenant keys.
//! Microsoft says keys may rotate at any time and tells verifiers to cache them by `kid`,
//! fetch again when a token names an unknown `kid`, and keep using cached keys while the
//! endpoint is down (MSREF-WIF FAQ). This cache does exactly that, with two guards:
//!
//! - a fetch happens at most once per [`JwksPolicy::min_refresh`] per URL, however many
//!   tokens with unknown (possibly forged) key ids arrive, and concurrent requests share one
//!   fetch;
//! - the HTTP client has explicit timeouts and the body a size cap, so a slow or hostile key
//!   endpoint cannot hold requests or memory.
//!
//! Only RSA keys for signing (`use` absent or `sig`, `alg` absent or `RS256`) are kept: the
//! verifiers accept RS256 alone.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use serde_json::Value;

use super::AuthFailure;

/// Largest JWKS document read. Entra's holds a handful of keys in a few KB.
const MAX_JWKS_BYTES: usize = 256 * 1024;
/// Time allowed to connect to the key endpoint.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed for the whole fetch. A request waiting on a refresh waits at most this long.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// When to fetch again.
#[derive(Debug, Clone, Copy)]
pub struct JwksPolicy {
    /// Keys older than this are fetched again on next use (kept if that fails).
    pub max_age: Duration,
    /// At most one fetch per this interval, whatever triggers it.
    pub min_refresh: Duration,
}

/// Why a fetch failed. Logged, never sent to a client.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    /// Transport error or timeout.
    #[error("cannot fetch the keys: {0}")]
    Http(#[from] reqwest::Error),
    /// The endpoint answered with an error status.
    #[error("the key endpoint answered HTTP {0}")]
    Status(u16),
    /// The document exceeds `MAX_JWKS_BYTES`.
    #[error("the key document is larger than {MAX_JWKS_BYTES} bytes")]
    TooLarge,
    /// Not a JWKS, or no usable RSA signing key in it.
    #[error("the key document is not usable: {0}")]
    Invalid(String),
}

/// The HTTP client for key endpoints: explicit timeouts, no redirects (the URL is
/// configured exactly), no cookies.
pub fn http_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(FETCH_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("usersync/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Parses a JWKS document into RSA verification keys by `kid`. Entries of other types or
/// uses, and entries without `kid`, are skipped; a document with no usable key is an error.
pub fn parse_jwks(body: &[u8]) -> Result<HashMap<String, DecodingKey>, JwksError> {
    let doc: Value =
        serde_json::from_slice(body).map_err(|e| JwksError::Invalid(format!("not JSON: {e}")))?;
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| JwksError::Invalid("no \"keys\" array".to_owned()))?;
    let mut out = HashMap::new();
    for k in keys {
        let field = |name: &str| k.get(name).and_then(Value::as_str);
        let usable = field("kty") == Some("RSA")
            && field("use").is_none_or(|u| u == "sig")
            && field("alg").is_none_or(|a| a == "RS256");
        let (Some(kid), Some(n), Some(e)) = (field("kid"), field("n"), field("e")) else {
            continue;
        };
        if !usable {
            continue;
        }
        if let Ok(key) = DecodingKey::from_rsa_components(n, e) {
            out.insert(kid.to_owned(), key);
        }
    }
    if out.is_empty() {
        return Err(JwksError::Invalid(
            "no RSA signing key with a kid".to_owned(),
        ));
    }
    Ok(out)
}

#[derive(Default)]
struct Held {
    keys: HashMap<String, DecodingKey>,
    fetched_at: Option<Instant>,
}

/// The keys of one JWKS URL.
pub struct JwksCache {
    url: String,
    client: reqwest::Client,
    policy: JwksPolicy,
    held: RwLock<Held>,
    /// Time of the last fetch attempt; also the single-flight lock for fetches.
    last_attempt: tokio::sync::Mutex<Option<Instant>>,
}

impl JwksCache {
    /// A cache that fetches lazily, on the first token that needs a key: a key endpoint
    /// that is down at start must not stop usersync from serving other connectors.
    pub fn new(url: String, client: reqwest::Client, policy: JwksPolicy) -> Self {
        JwksCache {
            url,
            client,
            policy,
            held: RwLock::new(Held::default()),
            last_attempt: tokio::sync::Mutex::new(None),
        }
    }

    /// The URL the keys come from.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn lookup(&self, kid: &str) -> (Option<DecodingKey>, bool) {
        let held = self.held.read().unwrap_or_else(|e| e.into_inner());
        let fresh = held
            .fetched_at
            .is_some_and(|t| t.elapsed() < self.policy.max_age);
        (held.keys.get(kid).cloned(), fresh)
    }

    /// The key named `kid`: from the cache when fresh; otherwise after one (rate-limited)
    /// fetch; a stale key is still used when the fetch fails.
    pub async fn key(&self, kid: &str) -> Result<DecodingKey, AuthFailure> {
        if let (Some(key), true) = self.lookup(kid) {
            return Ok(key);
        }
        self.refresh().await;
        match self.lookup(kid) {
            (Some(key), _) => Ok(key),
            (None, _) => {
                let empty = self
                    .held
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .keys
                    .is_empty();
                Err(if empty {
                    AuthFailure::KeysUnavailable
                } else {
                    AuthFailure::UnknownKey
                })
            }
        }
    }

    /// Fetches the keys unless a fetch was attempted less than `min_refresh` ago. Callers
    /// that arrive during a fetch wait for it and then find it recent, so they do not fetch.
    async fn refresh(&self) {
        let mut last = self.last_attempt.lock().await;
        if last.is_some_and(|t| t.elapsed() < self.policy.min_refresh) {
            return;
        }
        *last = Some(Instant::now());
        match self.fetch().await {
            Ok(keys) => {
                tracing::info!(jwks.url = %self.url, jwks.keys = keys.len(), "fetched signing keys");
                let mut held = self.held.write().unwrap_or_else(|e| e.into_inner());
                held.keys = keys;
                held.fetched_at = Some(Instant::now());
            }
            Err(e) => {
                tracing::warn!(
                    jwks.url = %self.url,
                    error.message = %e,
                    "could not fetch signing keys; the keys already held stay in use"
                );
            }
        }
    }

    async fn fetch(&self) -> Result<HashMap<String, DecodingKey>, JwksError> {
        let mut res = self
            .client
            .get(&self.url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await?;
        if !res.status().is_success() {
            return Err(JwksError::Status(res.status().as_u16()));
        }
        if res
            .content_length()
            .is_some_and(|n| n > MAX_JWKS_BYTES as u64)
        {
            return Err(JwksError::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(JwksError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        parse_jwks(&body)
    }
}

/// One cache per URL, shared by every connector and mode that trusts the same key set (two
/// connectors of one tenant fetch its keys once).
pub struct JwksCaches {
    client: reqwest::Client,
    policy: JwksPolicy,
    by_url: HashMap<String, Arc<JwksCache>>,
}

impl JwksCaches {
    /// An empty set of caches.
    pub fn new(client: reqwest::Client, policy: JwksPolicy) -> Self {
        JwksCaches {
            client,
            policy,
            by_url: HashMap::new(),
        }
    }

    /// The cache of `url`, created on first request.
    pub fn get(&mut self, url: &str) -> Arc<JwksCache> {
        self.by_url
            .entry(url.to_owned())
            .or_insert_with(|| {
                Arc::new(JwksCache::new(
                    url.to_owned(),
                    self.client.clone(),
                    self.policy,
                ))
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn modulus() -> String {
        let jwk: Value =
            serde_json::from_str(include_str!("../../tests/api/fixtures/auth/jwk-a.json")).unwrap();
        jwk["n"].as_str().unwrap().to_owned()
    }

    #[test]
    fn rsa_signing_keys_are_kept_by_kid_and_others_skipped() {
        let n = modulus();
        let n = n.as_str();
        let doc = serde_json::json!({"keys": [
            {"kty": "RSA", "use": "sig", "kid": "k1", "n": n, "e": "AQAB"},
            {"kty": "RSA", "kid": "k2", "n": n, "e": "AQAB", "alg": "RS256", "x5c": ["…"]},
            {"kty": "RSA", "use": "enc", "kid": "k3", "n": n, "e": "AQAB"},
            {"kty": "EC", "use": "sig", "kid": "k4", "crv": "P-256", "x": "x", "y": "y"},
            {"kty": "RSA", "use": "sig", "n": n, "e": "AQAB"},
            {"kty": "RSA", "use": "sig", "kid": "k6", "n": n, "e": "AQAB", "alg": "RS512"}
        ]});
        let keys = parse_jwks(doc.to_string().as_bytes()).unwrap();
        let mut kids: Vec<&str> = keys.keys().map(String::as_str).collect();
        kids.sort_unstable();
        assert_eq!(kids, ["k1", "k2"]);
    }

    #[test]
    fn documents_without_usable_keys_are_errors() {
        assert!(parse_jwks(b"<html>").is_err());
        assert!(parse_jwks(b"{}").is_err());
        assert!(parse_jwks(br#"{"keys": []}"#).is_err());
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_yields_keys_unavailable_and_is_not_retried_at_once() {
        let client = http_client().unwrap();
        // Port 9 on loopback: nothing listens, the connection is refused at once.
        let cache = JwksCache::new(
            "http://127.0.0.1:9/keys".to_owned(),
            client,
            JwksPolicy {
                max_age: Duration::from_secs(3600),
                min_refresh: Duration::from_secs(3600),
            },
        );
        assert_eq!(
            cache.key("k").await.err(),
            Some(AuthFailure::KeysUnavailable)
        );
        let before = *cache.last_attempt.lock().await;
        assert_eq!(
            cache.key("k").await.err(),
            Some(AuthFailure::KeysUnavailable)
        );
        assert_eq!(*cache.last_attempt.lock().await, before, "no second fetch");
    }
}
