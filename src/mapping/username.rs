//! Confluence username rules, as pure functions (no I/O): the mapping derives and checks
//! usernames with them, and the Confluence client checks each one again before sending it.
//!
//! Confluence refuses to create a user whose username is blank, contains one of
//! `\ , + < > ' "` or whitespace, is `anonymous`, or has upper-case letters (v940/v1000
//! admin-user pages, docs/reference/confluence-api.md §1.2 \[doc\]). SCIM `userName`s are
//! often e-mail addresses or UPNs that break these rules (`Jane.Doe+test@Example.com`), so
//! the mapping derives a Confluence username **once** with [`derive_username`], checks it with
//! [`check_username`], and persists it next to the SCIM id; it is never recomputed on the
//! fly (docs/reference/confluence-api.md §1.7, docs/reference/design.md "Identity links are
//! explicit").

use std::fmt;

use crate::scim::identifier;

/// Characters Confluence forbids in a username \[doc\].
pub const FORBIDDEN_CHARS: [char; 7] = ['\\', ',', '+', '<', '>', '\'', '"'];

/// Why a username cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsernameProblem {
    /// Empty or only whitespace.
    Blank,
    /// Contains one of `\ , + < > ' "`.
    ForbiddenCharacter(char),
    /// Contains whitespace.
    Whitespace,
    /// Is `anonymous`, the name of the anonymous user.
    Anonymous,
    /// Contains an upper-case letter.
    UpperCase(char),
    /// Contains `/`. Confluence itself allows it, but the admin endpoints put the username
    /// in a URL path, and Tomcat refuses an encoded slash (`%2F`) in paths by default, so
    /// such a user could be created but never disabled **(assumed: default Tomcat
    /// settings; not verified on a real instance)**.
    Slash,
    /// Contains a control, zero-width, bidirectional-format or other invisible character
    /// (`scim/identifier.rs`): a username that looks like another one is not a username a
    /// person can tell apart. Confluence itself may accept some of them.
    Invisible(char),
    /// Not in Unicode NFC: the precomposed and decomposed spellings of one name would be
    /// two Confluence accounts.
    NotNfc,
}

impl fmt::Display for UsernameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Blank => f.write_str("a Confluence username must not be blank"),
            Self::ForbiddenCharacter(c) => write!(
                f,
                "a Confluence username must not contain {c:?} (none of \\ , + < > ' \")"
            ),
            Self::Whitespace => f.write_str("a Confluence username must not contain whitespace"),
            Self::Anonymous => f.write_str("a Confluence username must not be \"anonymous\""),
            Self::UpperCase(c) => write!(
                f,
                "a Confluence username must not contain upper-case letters (found {c:?})"
            ),
            Self::Slash => f.write_str(
                "a Confluence username must not contain '/' (it cannot be addressed in \
                 REST paths)",
            ),
            Self::Invisible(c) => write!(
                f,
                "a Confluence username must not contain control, zero-width or bidirectional \
                 characters (found U+{:04X})",
                *c as u32
            ),
            Self::NotNfc => {
                f.write_str("a Confluence username must be in Unicode NFC (composed) form")
            }
        }
    }
}

impl std::error::Error for UsernameProblem {}

/// Checks `name` against Confluence's username rules, plus the `/` rule of
/// [`UsernameProblem::Slash`]. Returns the first problem found.
pub fn check_username(name: &str) -> Result<(), UsernameProblem> {
    if name.trim().is_empty() {
        return Err(UsernameProblem::Blank);
    }
    for c in name.chars() {
        if FORBIDDEN_CHARS.contains(&c) {
            return Err(UsernameProblem::ForbiddenCharacter(c));
        }
        if c.is_whitespace() {
            return Err(UsernameProblem::Whitespace);
        }
        if c.is_uppercase() {
            return Err(UsernameProblem::UpperCase(c));
        }
        if c == '/' {
            return Err(UsernameProblem::Slash);
        }
        if let Some(r) = identifier::refused(c) {
            return Err(UsernameProblem::Invisible(r.char()));
        }
    }
    if name == "anonymous" {
        return Err(UsernameProblem::Anonymous);
    }
    if identifier::nfc(name) != name {
        return Err(UsernameProblem::NotNfc);
    }
    Ok(())
}

/// The default rule from a SCIM `userName` to a Confluence username:
///
/// 1. trim leading and trailing whitespace;
/// 2. compose to Unicode NFC and lower-case (Unicode), so the composed and decomposed
///    spellings of one name give one username;
/// 3. replace each forbidden character (`\ , + < > ' "`), each whitespace character, `/`,
///    each control, zero-width, bidirectional-format or other invisible character
///    (`scim/identifier.rs`; new `userName`s cannot hold them, rows stored before can), and
///    any character that is still upper case after lower-casing (a few symbols such as
///    mathematical capitals have no lower-case form) with `_`;
/// 4. if the result is `anonymous`, append `_`.
///
/// Everything else is kept, including `@` and `.`: `Jane.Doe+test@Example.com` becomes
/// `jane.doe_test@example.com`. The result passes [`check_username`] unless the input was
/// blank (then it is empty). The rule is not injective (`a+b` and `a,b` both give `a_b`):
/// collisions are the mapping layer's to detect, against the persisted links.
pub fn derive_username(user_name: &str) -> String {
    let folded = identifier::fold(user_name.trim());
    let mut out = String::with_capacity(folded.len());
    for c in folded.chars() {
        let replace = FORBIDDEN_CHARS.contains(&c)
            || c.is_whitespace()
            || c == '/'
            || c.is_uppercase()
            || identifier::refused(c).is_some();
        out.push(if replace { '_' } else { c });
    }
    // Replacing a combining mark's base cannot happen (bases are kept), but a replaced
    // invisible character between a base and its mark can leave a new composition.
    let mut out = identifier::nfc(&out).into_owned();
    if out == "anonymous" {
        out.push('_');
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn usernames_that_break_a_confluence_rule_are_refused_with_the_reason() {
        assert_eq!(check_username(""), Err(UsernameProblem::Blank));
        assert_eq!(check_username(" \t"), Err(UsernameProblem::Blank));
        assert_eq!(check_username("j doe"), Err(UsernameProblem::Whitespace));
        assert_eq!(
            check_username("jdoe\u{a0}"),
            Err(UsernameProblem::Whitespace)
        );
        assert_eq!(check_username("JDoe"), Err(UsernameProblem::UpperCase('J')));
        assert_eq!(check_username("anonymous"), Err(UsernameProblem::Anonymous));
        assert_eq!(check_username("a/b"), Err(UsernameProblem::Slash));
        for c in FORBIDDEN_CHARS {
            assert_eq!(
                check_username(&format!("a{c}b")),
                Err(UsernameProblem::ForbiddenCharacter(c))
            );
        }
        let message = check_username("JDoe").unwrap_err().to_string();
        assert!(message.contains("upper-case"), "{message}");
    }

    #[test]
    fn ordinary_usernames_pass() {
        for ok in [
            "jdoe",
            "jane.doe@example.org",
            "svc-usersync",
            "anonymous2",
            "müller",
            "j_doe",
        ] {
            assert_eq!(check_username(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn the_default_rule_lower_cases_and_replaces_what_confluence_forbids() {
        assert_eq!(
            derive_username("Jane.Doe+test@Example.com"),
            "jane.doe_test@example.com"
        );
        assert_eq!(derive_username("  Jane Doe  "), "jane_doe");
        assert_eq!(derive_username("O'Brien, \"Pat\""), "o_brien___pat_");
        assert_eq!(derive_username("DOMAIN\\jdoe"), "domain_jdoe");
        assert_eq!(derive_username("a/b<c>"), "a_b_c_");
        assert_eq!(derive_username("ÄNNE"), "änne");
        assert_eq!(derive_username("Anonymous"), "anonymous_");
        assert_eq!(derive_username("   "), "");
    }

    #[test]
    fn look_alike_spellings_give_one_username_or_visibly_different_ones() {
        assert_eq!(derive_username("Jose\u{301}"), derive_username("Jos\u{E9}"));
        assert_eq!(derive_username("Jos\u{E9}"), "jos\u{E9}");
        assert_eq!(derive_username("ali\u{200B}ce"), "ali_ce");
        assert_eq!(derive_username("\u{202E}alice"), "_alice");
        assert_eq!(derive_username("alice\u{1}"), "alice_");
        assert_eq!(
            check_username("ali\u{200B}ce"),
            Err(UsernameProblem::Invisible('\u{200B}'))
        );
        assert_eq!(check_username("jose\u{301}"), Err(UsernameProblem::NotNfc));
    }

    proptest! {
        #[test]
        fn a_derived_username_always_passes_the_check(input in "(?s:.){0,24}") {
            let derived = derive_username(&input);
            if input.trim().is_empty() {
                prop_assert_eq!(derived, "");
            } else {
                prop_assert_eq!(check_username(&derived), Ok(()), "{:?} -> {:?}", input, derived);
            }
        }

        #[test]
        fn deriving_twice_changes_nothing(input in "(?s:.){0,24}") {
            let once = derive_username(&input);
            prop_assert_eq!(derive_username(&once), once.clone());
        }
    }
}
