//! Field rules of Confluence's admin user endpoints (docs/reference/confluence-api.md §1.2, from
//! the v940/v1000 admin-user pages). Pure functions; each refusal displays as the message a 400
//! carries.

/// Characters Confluence forbids in a username.
const FORBIDDEN_USERNAME_CHARS: [char; 7] = ['\\', ',', '+', '<', '>', '\'', '"'];

/// A field Confluence refuses, displayed as the message of its 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refused {
    #[error("Username should not be blank")]
    UsernameBlank,
    #[error("Username should not contain the characters \\ , + < > ' \" or whitespace")]
    UsernameCharacter,
    #[error("Username should not contain whitespace")]
    UsernameWhitespace,
    #[error("Username should not be 'anonymous'")]
    UsernameAnonymous,
    #[error("Username should not contain upper case letters")]
    UsernameUpperCase,
    #[error("Full name should not be blank")]
    FullNameBlank,
    #[error("Full name should not contain < or >")]
    FullNameAngleBracket,
    #[error("Full name should not be 'anonymous'")]
    FullNameAnonymous,
    #[error("Email should not be blank")]
    EmailBlank,
    #[error("Email should be a valid email address")]
    EmailInvalid,
    #[error("Group name should not be blank")]
    GroupNameBlank,
}

/// Username on create: not blank, none of `\ , + < > ' "`, no whitespace, not `anonymous`,
/// no upper-case letters.
pub(crate) fn username(name: &str) -> Result<(), Refused> {
    if name.trim().is_empty() {
        return Err(Refused::UsernameBlank);
    }
    if name.chars().any(|c| FORBIDDEN_USERNAME_CHARS.contains(&c)) {
        return Err(Refused::UsernameCharacter);
    }
    if name.chars().any(char::is_whitespace) {
        return Err(Refused::UsernameWhitespace);
    }
    if name.eq_ignore_ascii_case("anonymous") {
        return Err(Refused::UsernameAnonymous);
    }
    if name.chars().any(char::is_uppercase) {
        return Err(Refused::UsernameUpperCase);
    }
    Ok(())
}

/// Full name: not blank, no `<` or `>`, not `anonymous`.
pub(crate) fn full_name(name: &str) -> Result<(), Refused> {
    if name.trim().is_empty() {
        return Err(Refused::FullNameBlank);
    }
    if name.contains('<') || name.contains('>') {
        return Err(Refused::FullNameAngleBracket);
    }
    if name.trim().eq_ignore_ascii_case("anonymous") {
        return Err(Refused::FullNameAnonymous);
    }
    Ok(())
}

/// E-mail: not blank and shaped like `local@domain` with no whitespace. Confluence's exact
/// validator is unknown; this is deliberately lenient **(assumed)**.
pub(crate) fn email(address: &str) -> Result<(), Refused> {
    if address.trim().is_empty() {
        return Err(Refused::EmailBlank);
    }
    let valid = match address.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !address.chars().any(char::is_whitespace)
        }
        None => false,
    };
    if valid {
        Ok(())
    } else {
        Err(Refused::EmailInvalid)
    }
}

/// Group name on create: not blank **(assumed: Confluence's rules are not documented)**.
pub(crate) fn group_name(name: &str) -> Result<(), Refused> {
    if name.trim().is_empty() {
        return Err(Refused::GroupNameBlank);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_that_break_a_rule_are_refused() {
        for bad in [
            "",
            " ",
            "j doe",
            "jdoe\t",
            "JDoe",
            "anonymous",
            "a+b",
            "a,b",
            "a<b",
            "a>b",
            "a'b",
            "a\"b",
            "a\\b",
        ] {
            assert!(username(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn ordinary_usernames_are_accepted() {
        for good in ["jdoe", "j.doe", "j_doe-2", "jdoe@example.org", "müller"] {
            assert!(username(good).is_ok(), "{good:?} should be accepted");
        }
    }

    #[test]
    fn full_names_with_angle_brackets_or_blank_are_refused() {
        assert!(full_name("Jane <b>").is_err());
        assert!(full_name("  ").is_err());
        assert!(full_name("Anonymous").is_err());
        assert!(full_name("Jane Doe").is_ok());
    }

    #[test]
    fn emails_must_look_like_an_address() {
        assert!(email("jane@example.org").is_ok());
        for bad in [
            "",
            "jane",
            "@example.org",
            "jane@",
            "jane@@x",
            "ja ne@x.org",
        ] {
            assert!(email(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
