//! HTTP Basic credentials (RFC 7617), as Okta's "Basic Auth" option and PingOne send them
//! (OKTA-PREP, docs/reference/idp-behaviour.md §3.5 item 2; PING1, §7).
//!
//! Only SHA-256 hashes of the user name and passwords are held. A request's pair is hashed and
//! compared with every configured password in constant time, without stopping at the first
//! match, so timing tells neither which part was wrong nor which password matched.

use base64::Engine;
use subtle::{Choice, ConstantTimeEq};

use crate::connectors::{hash_token, TokenHash};

/// The accepted user name and password(s) of one connector.
pub struct BasicCredentials {
    user: TokenHash,
    passwords: Vec<TokenHash>,
}

impl BasicCredentials {
    /// Hashes the user name and every password (several are valid at once, to rotate).
    pub fn new<'a>(username: &str, passwords: impl IntoIterator<Item = &'a str>) -> Self {
        BasicCredentials {
            user: hash_token(username),
            passwords: passwords.into_iter().map(hash_token).collect(),
        }
    }

    /// Whether the pair matches.
    pub fn verify(&self, user: &str, password: &str) -> bool {
        let user_ok = self.user.ct_eq(&hash_token(user));
        let given = hash_token(password);
        let mut password_ok = Choice::from(0u8);
        for p in &self.passwords {
            password_ok |= p.ct_eq(&given);
        }
        bool::from(user_ok & password_ok)
    }
}

/// Decodes the credentials of `Authorization: Basic <base64(user:password)>`. The user name
/// ends at the first `:` (RFC 7617 §2); the password may contain more.
pub fn decode(credentials: &str) -> Option<(String, String)> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(credentials.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn the_pair_must_match_and_any_listed_password_works() {
        let c = BasicCredentials::new("okta", ["new-password", "old-password"]);
        assert!(c.verify("okta", "new-password"));
        assert!(c.verify("okta", "old-password"));
        assert!(!c.verify("okta", "other"));
        assert!(!c.verify("Okta", "new-password"));
        assert!(!c.verify("", ""));
    }

    #[test]
    fn headers_decode_at_the_first_colon() {
        assert_eq!(
            decode(&b64("okta:pa:ss")),
            Some(("okta".to_owned(), "pa:ss".to_owned()))
        );
        assert_eq!(decode(&b64("no-colon")), None);
        assert_eq!(decode("%%%"), None);
    }
}
