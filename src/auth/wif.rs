//! Workload identity federation: Entra authenticates to our token endpoint with a client
//! assertion it signed (RFC 7523 §2.2) instead of a client secret (MSREF-WIF, idp-quirks §2.9
//! item 5).
//!
//! The admin copies four values from Entra into `[connectors.NAME.oauth.wif]`: the tenant
//! (giving the issuer `https://login.microsoftonline.com/<tid>/v2.0` and the JWKS URL), the
//! audience and the subject. An assertion is accepted when it is RS256-signed by a key of that
//! JWKS and `iss`, `aud`, `sub` and `tid` match, within `exp`/`nbf` and the leeway. MSREF-WIF
//! insists on `tid`: it is what keeps one customer's tenant from provisioning into another's.
//!
//! Replay of an assertion within its lifetime is not detected (RFC 7523 §3 makes a `jti`
//! cache optional); a replayed assertion yields only another token for the same connector.

use std::sync::Arc;

use serde_json::Value;

use super::jwks::JwksCache;
use super::jwt::{verify_rs256, Expected};
use super::AuthFailure;
use crate::config::WifSettings;

/// `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Verifier of Entra client assertions for one connector.
pub struct WifVerifier {
    expected: Expected,
    tenant_id: String,
    jwks: Arc<JwksCache>,
}

impl WifVerifier {
    /// From `[connectors.NAME.oauth.wif]`, with the cache of its JWKS URL.
    pub fn new(settings: &WifSettings, jwks: Arc<JwksCache>) -> Self {
        WifVerifier {
            expected: Expected {
                issuer: settings.issuer(),
                audience: settings.audience.clone(),
                subject: Some(settings.subject.clone()),
                leeway_secs: settings.leeway.0.as_secs(),
            },
            tenant_id: settings.tenant_id.to_ascii_lowercase(),
            jwks,
        }
    }

    /// Verifies a client assertion.
    pub async fn verify(&self, assertion: &str) -> Result<(), AuthFailure> {
        let claims = verify_rs256(assertion, &self.jwks, &self.expected).await?;
        match claims.get("tid").and_then(Value::as_str) {
            Some(tid) if tid.eq_ignore_ascii_case(&self.tenant_id) => Ok(()),
            _ => Err(AuthFailure::WrongTenant),
        }
    }
}
