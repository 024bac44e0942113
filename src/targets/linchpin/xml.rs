//! The feed's XML, in the shape Linchpin's XML data source reads (docs/reference/confluence-api.md
//! §2.2): UTF-8 *with* the byte-order mark ("UTF-8 with preamble"), one user element per user, the
//! username element first, then one element per mapped field named after its XML node name.
//!
//! Rendering is plain string building with escaping: the feed is written in chunks of a few
//! hundred users, and an XML library would only add allocations.

use crate::mapping::{FieldValue, Profile};

use super::settings::FeedSettings;

/// The UTF-8 byte-order mark Linchpin's documentation asks for.
pub const BOM: &str = "\u{feff}";

/// The start of the document: BOM, declaration, root element.
pub fn head(settings: &FeedSettings) -> String {
    format!(
        "{BOM}<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{}>\n",
        settings.root_tag
    )
}

/// The end of the document.
pub fn tail(settings: &FeedSettings) -> String {
    format!("</{}>\n", settings.root_tag)
}

/// Appends one user element. Fields whose value is omitted (keep, pending, failed) get no
/// element, so Linchpin keeps what it has; cleared fields get an empty element. Multi-valued
/// fields are joined with the configured delimiter.
pub fn user(out: &mut String, settings: &FeedSettings, profile: &Profile) {
    out.push_str("  <");
    out.push_str(&settings.user_tag);
    out.push_str(">\n    ");
    element(out, &settings.username_tag, &profile.username);
    for f in &profile.fields {
        let text = match &f.value {
            FieldValue::Set(values) => values.join(&settings.multi_value_delimiter),
            FieldValue::Clear => String::new(),
            FieldValue::Keep | FieldValue::Pending | FieldValue::Failed(_) => continue,
        };
        out.push_str("    ");
        element(out, &f.xml, &text);
    }
    out.push_str("  </");
    out.push_str(&settings.user_tag);
    out.push_str(">\n");
}

fn element(out: &mut String, name: &str, text: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    escape_into(out, text);
    out.push_str("</");
    out.push_str(name);
    out.push_str(">\n");
}

/// Whether `text` survives [`escape_into`] unchanged in meaning: no character XML 1.0
/// forbids. A username that does not would be written as another username.
pub fn can_carry(text: &str) -> bool {
    !text.chars().any(forbidden)
}

/// Characters XML 1.0 does not allow in a document, not even as references.
fn forbidden(c: char) -> bool {
    ((c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{fffe}' || c == '\u{ffff}'
}

/// Escapes text content. Characters XML 1.0 forbids (most C0 controls, U+FFFE/U+FFFF) are
/// dropped rather than escaped: `&#1;` is not allowed either, and one stray control
/// character from an IdP must not make Linchpin reject the whole feed.
pub fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if forbidden(c) => {}
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::ProfileField;

    fn field(name: &str, value: FieldValue) -> ProfileField {
        ProfileField {
            name: name.into(),
            xml: name.into(),
            value,
            source: None,
        }
    }

    #[test]
    fn a_user_element_has_the_username_then_set_and_cleared_fields_escaped() {
        let settings = FeedSettings {
            user_tag: "person".into(),
            username_tag: "login".into(),
            ..FeedSettings::default()
        };
        let p = Profile {
            username: "ada".into(),
            active: true,
            fields: vec![
                field("department", FieldValue::Set(vec!["R&D <Lab>".into()])),
                field(
                    "skills",
                    FieldValue::Set(vec!["Rust".into(), "SCIM".into()]),
                ),
                field("division", FieldValue::Clear),
                field("manager", FieldValue::Pending),
                field("nick", FieldValue::Keep),
                field("x", FieldValue::Failed("script".into())),
                field("bell", FieldValue::Set(vec!["a\u{7}b\"'".into()])),
            ],
        };
        let mut out = String::new();
        user(&mut out, &settings, &p);
        assert_eq!(
            out,
            "  <person>\n    <login>ada</login>\n    <department>R&amp;D &lt;Lab&gt;</department>\n    \
             <skills>Rust;SCIM</skills>\n    <division></division>\n    \
             <bell>ab&quot;&apos;</bell>\n  </person>\n"
        );
    }

    #[test]
    fn only_text_without_forbidden_characters_is_carried() {
        assert!(can_carry("alice\u{200B}\tx"));
        assert!(!can_carry("alice\u{1}"));
        assert!(!can_carry("alice\u{FFFF}"));
    }

    #[test]
    fn the_document_starts_with_the_byte_order_mark() {
        let s = FeedSettings::default();
        let h = head(&s);
        assert!(h.as_bytes().starts_with(b"\xEF\xBB\xBF<?xml"));
        assert!(h.ends_with("<users>\n"));
        assert_eq!(tail(&s), "</users>\n");
    }
}
