//! Workload identity federation: Entra authenticates to our token endpoint with a client
//! assertion it signed (RFC 7523 §2.2) instead of a client secret (MSREF-WIF,
//! docs/reference/idp-behaviour.md §2.9 item 5).
//!
//! The admin copies four values from Entra into `[connectors.NAME.oauth.wif]`: the tenant
//! (giving the issuer `https://login.microsoftonline.com/<tid>/v2.0` and the JWKS URL), the
//! audience and the subject. An assertion is accepted when it is RS256-signed by a key of that
//! JWKS and `iss`, `aud`, `sub` and `tid` match, within `exp`/`nbf` and the leeway. MSREF-WIF
//! insists on `tid`: it is what keeps one customer's tenant from provisioning into another's.
//!
//! The audience is accepted in each form it is shown or carried in ([`accepted_audiences`]):
//! Entra's screen shows it with the scope suffix, `api://{appId}/.default`, while the
//! assertion carries the resource without it.
//!
//! Replay of an assertion within its lifetime is not detected (RFC 7523 §3 makes a `jti`
//! cache optional); a replayed assertion yields only another token for the same connector.

use std::sync::Arc;

use serde_json::Value;

use super::jwks::JwksCache;
use super::jwt::{verify_rs256, Expected};
use super::AuthFailure;
use crate::config::{is_guid, WifSettings};

/// `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The `aud` values an assertion may carry for the configured audience's resource
/// ([`WifSettings::audience_resource`]): the resource with and without `/.default` (an admin copies whichever Entra shows; the assertion carries
/// `api://{appId}`); and, when the resource is the default App ID URI `api://{appId}`, the
/// bare app id, which v2.0 access tokens carry instead (seen in a third-party capture of a
/// real assertion; not stated in Microsoft's documentation, so both are accepted). All of
/// them name the same app registration; `iss`, `tid` and `sub` still pin tenant and caller.
pub fn accepted_audiences(base: &str) -> Vec<String> {
    let app_id = base
        .strip_prefix("api://")
        .filter(|id| is_guid(id))
        .or_else(|| is_guid(base).then_some(base));
    let mut out = vec![base.to_owned(), format!("{base}/.default")];
    if let Some(id) = app_id {
        for form in [
            format!("api://{id}"),
            format!("api://{id}/.default"),
            id.to_owned(),
        ] {
            if !out.contains(&form) {
                out.push(form);
            }
        }
    }
    out
}

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
                audiences: accepted_audiences(settings.audience_resource()),
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

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = "c8242cf6-29d0-4fc4-90cc-bad7449545ad";

    #[test]
    fn the_audience_is_accepted_with_or_without_the_default_scope_suffix() {
        for configured in [
            format!("api://{APP}/.default"),
            format!("api://{APP}"),
            format!(" api://{APP}/ "),
            APP.to_owned(),
        ] {
            let accepted = accepted_audiences(resource(&configured));
            for carried in [
                format!("api://{APP}"),
                format!("api://{APP}/.default"),
                APP.into(),
            ] {
                assert!(accepted.contains(&carried), "{configured}: {carried}");
            }
            assert_eq!(resource(&configured).trim_start_matches("api://"), APP);
        }
        let custom = accepted_audiences(resource("https://scim.example.com/.default"));
        assert_eq!(
            custom,
            [
                "https://scim.example.com",
                "https://scim.example.com/.default"
            ]
        );
        assert!(!accepted_audiences(&format!("api://{APP}")).contains(&"api://other".to_owned()));
    }

    fn resource(configured: &str) -> &str {
        crate::config::audience_resource(configured)
    }
}
