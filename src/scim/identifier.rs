//! Identifiers a person and Confluence can tell apart: `userName` of Users and `displayName`
//! of Groups.
//!
//! These names are keys: unique per connector (case-insensitively), the source of the
//! Confluence username, the `<username>` of the Linchpin feed. Two rules keep look-alikes
//! from becoming different keys:
//!
//! - **Refused characters.** A name that is blank, or holds a control character (`Cc`: C0,
//!   DEL, C1, also tab and newline), a format character (`Cf`: zero-width space and joiners,
//!   soft hyphen, the bidirectional marks, embeddings, overrides and isolates such as U+202E,
//!   the BOM), another default-ignorable (invisible) code point (variation selectors, Hangul
//!   fillers, the combining grapheme joiner), or a line or paragraph separator, is refused
//!   with `400 invalidValue` (RFC 7644 §3.12: the value is not compatible with the
//!   attribute). Each of these either vanishes on screen (two names that look the same are
//!   different strings) or is dropped by XML and by Confluence (two different names become
//!   the same). Costs, on purpose: a group named with an emoji ZWJ sequence or a Persian
//!   name written with ZWNJ is refused too.
//! - **One form for comparison.** Uniqueness and lookups compare the NFC form (Unicode
//!   canonical composition), lower-cased: `é` sent precomposed (U+00E9) and decomposed
//!   (`e` + U+0301) is one name ([`fold`]). The name is stored as sent.
//!
//! The rule applies to names being set. A row stored before the rule keeps its name: it
//! stays readable, and writes that leave the name as it is (a PATCH of `active`, a PUT that
//! re-sends it, a DELETE) are accepted, so deprovisioning never depends on renaming.

use std::borrow::Cow;

use serde_json::Value;
use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

use super::error::{ScimError, ScimResult};
use super::resource::Document;
use super::schema::ResourceKind;

/// The attribute that names a resource of `kind`: `userName` or `displayName`.
pub fn name_attribute(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::User => "userName",
        ResourceKind::Group => "displayName",
    }
}

/// Checks the name of `doc` when it is being set: always for a new resource (`before` is
/// `None`), and for a change only when the name differs from the stored one, so a row stored
/// before this rule can still be written without renaming it. A missing name is left to
/// the required-attribute check.
pub fn check_name(kind: ResourceKind, doc: &Document, before: Option<&Document>) -> ScimResult<()> {
    let attr = name_attribute(kind);
    let Some(name) = doc.get(attr).and_then(Value::as_str) else {
        return Ok(());
    };
    if before.and_then(|b| b.get(attr)).and_then(Value::as_str) == Some(name) {
        return Ok(());
    }
    check(attr, name)
}

/// Why a character may not appear in an identifier, for the error detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// A control character (`Cc`).
    Control(char),
    /// A format character (`Cf`): zero-width, bidirectional controls, soft hyphen, BOM.
    Format(char),
    /// Another invisible (default-ignorable) code point.
    Invisible(char),
    /// A line or paragraph separator (U+2028, U+2029).
    Separator(char),
}

impl Refused {
    /// The character.
    pub fn char(self) -> char {
        match self {
            Refused::Control(c)
            | Refused::Format(c)
            | Refused::Invisible(c)
            | Refused::Separator(c) => c,
        }
    }

    fn what(self) -> &'static str {
        match self {
            Refused::Control(_) => "a control character",
            Refused::Format(_) => "a zero-width or bidirectional format character",
            Refused::Invisible(_) => "an invisible character",
            Refused::Separator(_) => "a line or paragraph separator",
        }
    }
}

/// Default-ignorable code points that are not `Cf` (Unicode `DerivedCoreProperties.txt`,
/// `Default_Ignorable_Code_Point`; the `Cf` ones are caught by category). Invisible, so a
/// name holding one looks like the name without it.
const INVISIBLE: &[(char, char)] = &[
    ('\u{034F}', '\u{034F}'),   // combining grapheme joiner
    ('\u{115F}', '\u{1160}'),   // Hangul choseong and jungseong fillers
    ('\u{17B4}', '\u{17B5}'),   // Khmer inherent vowels
    ('\u{180B}', '\u{180F}'),   // Mongolian free variation selectors and vowel separator
    ('\u{3164}', '\u{3164}'),   // Hangul filler
    ('\u{FE00}', '\u{FE0F}'),   // variation selectors
    ('\u{FFA0}', '\u{FFA0}'),   // halfwidth Hangul filler
    ('\u{FFF0}', '\u{FFF8}'),   // reserved default-ignorables
    ('\u{E0000}', '\u{E0FFF}'), // tags and variation selectors supplement
];

/// The first character `name` may not hold, if any.
pub fn refused_char(name: &str) -> Option<Refused> {
    name.chars().find_map(refused)
}

/// Whether `c` may not appear in an identifier, and why.
pub fn refused(c: char) -> Option<Refused> {
    if c.is_ascii() {
        // Fast path: in ASCII only the controls (C0 and DEL) are refused.
        return c.is_ascii_control().then_some(Refused::Control(c));
    }
    match c.general_category() {
        GeneralCategory::Control => Some(Refused::Control(c)),
        GeneralCategory::Format => Some(Refused::Format(c)),
        GeneralCategory::LineSeparator | GeneralCategory::ParagraphSeparator => {
            Some(Refused::Separator(c))
        }
        _ if INVISIBLE.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) => {
            Some(Refused::Invisible(c))
        }
        _ => None,
    }
}

/// Checks a name being set on `attribute` (`userName`, `displayName`). The detail names the
/// code point, never the value (which is personal data).
pub fn check(attribute: &str, name: &str) -> ScimResult<()> {
    if name.trim().is_empty() {
        return Err(ScimError::invalid_value(format!(
            "\"{attribute}\" must not be blank or only whitespace"
        )));
    }
    if let Some(r) = refused_char(name) {
        return Err(ScimError::invalid_value(format!(
            "\"{attribute}\" must not contain {} (found U+{:04X})",
            r.what(),
            r.char() as u32
        )));
    }
    Ok(())
}

/// The NFC form of `s` (borrowed when it already is, which is nearly always).
pub fn nfc(s: &str) -> Cow<'_, str> {
    if s.is_ascii() || is_nfc_quick(s.chars()) == IsNormalized::Yes {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(s.nfc().collect())
    }
}

/// The form in which names and case-insensitive values compare: NFC, then lower case (and
/// NFC again, as lower-casing can in rare cases leave a decomposed sequence).
pub fn fold(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    let lower = nfc(s).to_lowercase();
    nfc(&lower).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invisible_control_and_bidi_characters_are_refused_by_code_point() {
        for (name, code) in [
            ("alice\u{7}", "U+0007"),
            ("alice\t", "U+0009"),
            ("ali\u{85}ce", "U+0085"),
            ("ali\u{200B}ce", "U+200B"),
            ("ali\u{200D}ce", "U+200D"),
            ("\u{202E}ecila", "U+202E"),
            ("alice\u{2066}", "U+2066"),
            ("ali\u{AD}ce", "U+00AD"),
            ("\u{FEFF}alice", "U+FEFF"),
            ("alice\u{FE0F}", "U+FE0F"),
            ("alice\u{3164}", "U+3164"),
            ("ali\u{2028}ce", "U+2028"),
            ("alice\u{E0041}", "U+E0041"),
        ] {
            let e = check("userName", name).unwrap_err();
            assert_eq!(e.status, 400);
            assert_eq!(
                e.scim_type,
                Some(super::super::error::ScimType::InvalidValue)
            );
            assert!(e.detail.contains(code), "{name:?}: {}", e.detail);
            assert!(
                !e.detail.contains("ali"),
                "the value is not echoed: {}",
                e.detail
            );
        }
    }

    #[test]
    fn blank_names_are_refused_and_ordinary_ones_pass() {
        for blank in ["", " ", "\u{3000}\u{A0} "] {
            let e = check("displayName", blank).unwrap_err();
            assert!(e.detail.contains("blank"), "{}", e.detail);
        }
        for ok in [
            "alice@example.com",
            "Jane Doe",
            "müller",
            "José",
            "渡辺",
            "Ελένη",
            "O'Brien-Smith",
            "team 🚀",
        ] {
            assert_eq!(check("userName", ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn composed_and_decomposed_forms_fold_to_one_key() {
        assert_eq!(fold("Jos\u{E9}"), fold("Jose\u{301}"));
        assert_eq!(fold("JOSE\u{301}"), "jos\u{E9}");
        assert_eq!(fold("Alice@Example.COM"), "alice@example.com");
        assert_ne!(fold("alice"), fold("alice\u{200B}"));
        assert!(matches!(nfc("plain"), Cow::Borrowed(_)));
        assert_eq!(nfc("e\u{301}"), "\u{E9}");
    }
}
