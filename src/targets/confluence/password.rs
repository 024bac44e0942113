//! The initial password of a created user.
//!
//! Confluence's create endpoint needs either a password or `notifyViaEmail: true`
//! (docs/reference/confluence-api.md §1.2). usersync does not manage passwords (IdP users log in
//! through SSO), and an e-mail invitation would let the user pick a local password behind the IdP's
//! back, so the client sends `notifyViaEmail: false` with a random password nobody knows. It is
//! generated from the operating system's CSPRNG, never logged, never returned, never stored; it
//! exists only in the request body.

use rand::rngs::OsRng;
use rand::Rng;

use super::config::Secret;

/// Length of a generated password.
pub const LENGTH: usize = 32;

const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
const DIGITS: &[u8] = b"23456789";
/// Symbols without quoting trouble in JSON, shells or XML (no `"`, `\`, `<`, `>`, `&`, `'`).
const SYMBOLS: &[u8] = b"-_.!@#%^*()=+[]{}:?~";

/// A random password of [`LENGTH`] characters with at least one lower-case letter,
/// upper-case letter, digit and symbol, so any password policy Confluence applies accepts
/// it **(assumed: no policy demands more)**. About 190 bits of entropy.
pub fn generate() -> Secret {
    let alphabet: Vec<u8> = [LOWER, UPPER, DIGITS, SYMBOLS].concat();
    let mut rng = OsRng;
    loop {
        let candidate: String = (0..LENGTH)
            .map(|_| char::from(alphabet[rng.gen_range(0..alphabet.len())]))
            .collect();
        let has = |set: &[u8]| candidate.bytes().any(|b| set.contains(&b));
        if has(LOWER) && has(UPPER) && has(DIGITS) && has(SYMBOLS) {
            return Secret::new(candidate);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_long_mixed_and_different_each_time() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        for p in [&a, &b] {
            let p = p.expose();
            assert_eq!(p.len(), LENGTH);
            assert!(p.bytes().any(|c| c.is_ascii_lowercase()));
            assert!(p.bytes().any(|c| c.is_ascii_uppercase()));
            assert!(p.bytes().any(|c| c.is_ascii_digit()));
            assert!(p.bytes().any(|c| SYMBOLS.contains(&c)));
            assert!(!p.contains(['"', '\\', '<', '>', '&', '\'']));
        }
        assert_eq!(format!("{a:?}"), "Secret([redacted])");
    }
}
