//! Webhook signatures: HMAC-SHA256 over `"{timestamp}.{body}"`, sent as
//! `X-Usersync-Timestamp: <unix seconds>` and `X-Usersync-Signature: v1=<hex>`.
//!
//! Signing the timestamp with the body lets a receiver refuse replays: it recomputes the
//! signature, compares in constant time, and rejects timestamps outside its window (five
//! minutes is usual). `verify` is the reference a receiver can copy; the scheme is the one
//! Stripe and Slack use, so libraries exist in most languages. Several `v1=` entries,
//! comma-separated, may be sent during a secret rotation.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Header carrying the Unix time (seconds) the request was signed at.
pub const TIMESTAMP_HEADER: &str = "x-usersync-timestamp";
/// Header carrying the signature(s).
pub const SIGNATURE_HEADER: &str = "x-usersync-signature";
/// Replay window receivers should use, in seconds.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The signature header value for `body` signed at `timestamp`: `v1=<hex>`.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let tag = mac(secret, timestamp, body).finalize().into_bytes();
    let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    format!("v1={hex}")
}

/// Why a request failed verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A header is missing or not in the expected form.
    #[error("missing or malformed signature headers")]
    Malformed,
    /// The timestamp is outside the replay window.
    #[error("the timestamp is outside the replay window")]
    Stale,
    /// No signature matches.
    #[error("the signature does not match")]
    Mismatch,
}

/// Verifies a request as a receiver should: timestamp within `tolerance_secs` of `now`, and
/// one `v1=` signature equal (constant time) to the HMAC of `"{timestamp}.{body}"`.
pub fn verify(
    secret: &[u8],
    timestamp_header: Option<&str>,
    signature_header: Option<&str>,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    let ts: i64 = timestamp_header
        .and_then(|t| t.trim().parse().ok())
        .ok_or(VerifyError::Malformed)?;
    let header = signature_header.ok_or(VerifyError::Malformed)?;
    if (now - ts).abs() > tolerance_secs {
        return Err(VerifyError::Stale);
    }
    let mut any = false;
    for part in header.split(',') {
        let Some(hex) = part.trim().strip_prefix("v1=") else {
            continue;
        };
        let Some(bytes) = decode_hex(hex) else {
            continue;
        };
        any = true;
        if mac(secret, ts, body).verify_slice(&bytes).is_ok() {
            return Ok(());
        }
    }
    Err(if any {
        VerifyError::Mismatch
    } else {
        VerifyError::Malformed
    })
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn a_signed_body_verifies_and_any_change_does_not() {
        let body = br#"{"username":"ada"}"#;
        let sig = signature(SECRET, 1_700_000_000, body);
        assert!(sig.starts_with("v1=") && sig.len() == 3 + 64);
        let ok = |ts: &str, sig: &str, body: &[u8], now: i64| {
            verify(SECRET, Some(ts), Some(sig), body, now, 300)
        };
        assert_eq!(ok("1700000000", &sig, body, 1_700_000_100), Ok(()));
        assert_eq!(
            ok("1700000000", &sig, b"{\"username\":\"eve\"}", 1_700_000_000),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            ok("1700000001", &sig, body, 1_700_000_000),
            Err(VerifyError::Mismatch),
            "the timestamp is signed"
        );
        assert_eq!(
            ok("1700000000", &sig, body, 1_700_000_301),
            Err(VerifyError::Stale)
        );
        let rotated = format!("v1=00ff, {sig}");
        assert_eq!(ok("1700000000", &rotated, body, 1_700_000_000), Ok(()));
        assert_eq!(
            verify(SECRET, None, Some(&sig), body, 0, 300),
            Err(VerifyError::Malformed)
        );
    }
}
