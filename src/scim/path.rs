//! Attribute paths (RFC 7644 §3.10 and the PATCH `path` grammar of §3.5.2).
//!
//! `attrPath = [URI ":"] ATTRNAME *1subAttr`; a PATCH path may also carry a value filter and a
//! sub-attribute after it: `emails[type eq "work"].value`.
//!
//! Names keep the client's spelling (`emails[type eq "other"].Value` stays `Value`); they are
//! resolved case-insensitively against the schema later (RFC 7643 §2.1).

use std::fmt;

use super::error::{ScimError, ScimResult};
use super::filter::lexer::SyntaxError;
use super::filter::{parser, Filter, Limits};

/// `[urn:]name[.sub]`. Names keep the client's spelling; resolution against the schema is
/// case-insensitive and happens later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    /// The schema URN prefix, if the path was qualified (`urn:...:User:manager` → the part
    /// before the last `:` that precedes the attribute name).
    pub urn: Option<String>,
    /// The attribute name.
    pub name: String,
    /// The sub-attribute name, if any.
    pub sub: Option<String>,
}

/// A PATCH operation path: an attribute path, an optional value filter and an optional
/// sub-attribute after the filter.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    /// The attribute (with `sub` set only when there is no filter, as in `name.givenName`).
    pub attr: AttrPath,
    /// The value filter in brackets, evaluated against each element of a multi-valued attribute.
    pub filter: Option<Filter>,
    /// The sub-attribute after the brackets (`emails[type eq "work"].value` → `value`).
    pub sub: Option<String>,
}

impl AttrPath {
    /// Parses `[urn:]name[.sub]` (RFC 7644 §3.10), as used in `attributes`,
    /// `excludedAttributes` and `sortBy`. Surrounding whitespace is ignored. Errors are
    /// `invalidPath` and say at which character the path went wrong.
    pub fn parse(s: &str) -> ScimResult<AttrPath> {
        let err = |e: SyntaxError| ScimError::invalid_path(e.render(s, "path"));
        check_len(s)?;
        let t = s.trim_end();
        let lead = t.len() - t.trim_start().len();
        let word = &t[lead..];
        if word.is_empty() {
            return Err(ScimError::invalid_path("the path is empty"));
        }
        if let Some((i, c)) = word.char_indices().find(|&(_, c)| is_stray(c)) {
            let what = if c == '[' {
                "a value filter is not allowed here; expected [urn:]name[.subAttr]".to_owned()
            } else {
                format!("unexpected \"{}\" in an attribute path", c.escape_debug())
            };
            return Err(err(SyntaxError::at(lead + i, what)));
        }
        parse_attr_word(word, lead).map_err(err)
    }
}

impl PatchPath {
    /// Parses a PATCH `path` (RFC 7644 §3.5.2): `attrPath / valuePath [subAttr]`, e.g.
    /// `emails[type eq "work" and value co "@x"].value`. The value filter is read by the filter
    /// parser itself, so `]`, `:` and `.` inside its quoted strings are just text. Errors are
    /// `invalidPath` and say at which character the path went wrong.
    pub fn parse(s: &str) -> ScimResult<PatchPath> {
        let err = |e: SyntaxError| ScimError::invalid_path(e.render(s, "path"));
        check_len(s)?;
        // Only trailing whitespace is cut from the text itself, so byte offsets stay those of `s`.
        let t = s.trim_end();
        let Some(open) = t.find('[') else {
            let attr = AttrPath::parse(s)?;
            return Ok(PatchPath {
                attr,
                filter: None,
                sub: None,
            });
        };
        let lead = t.len() - t.trim_start().len();
        let head = t.get(lead..open).unwrap_or("");
        if let Some((i, c)) = head.char_indices().find(|&(_, c)| is_stray(c)) {
            return Err(err(SyntaxError::at(
                lead + i,
                format!("unexpected \"{}\" in an attribute path", c.escape_debug()),
            )));
        }
        let attr = parse_attr_word(head, lead).map_err(err)?;
        if attr.sub.is_some() {
            return Err(err(parser::sub_before_bracket(open, &attr)));
        }
        let (filter, end) = parser::parse_bracketed(t, open, &Limits::default()).map_err(err)?;
        let rest = &t[end..];
        let sub = if rest.is_empty() {
            None
        } else if let Some(name) = rest.strip_prefix('.') {
            check_attr_name(name, end + 1).map_err(err)?;
            Some(name.to_owned())
        } else {
            return Err(err(SyntaxError::at(
                end,
                "expected \".\" and a sub-attribute name, or the end of the path, after \"]\"",
            )));
        };
        Ok(PatchPath {
            attr,
            filter: Some(filter),
            sub,
        })
    }
}

/// Paths share the filter length limit: nothing legitimate comes close to it.
fn check_len(s: &str) -> ScimResult<()> {
    let max = Limits::default().max_len;
    if s.len() > max {
        return Err(ScimError::invalid_path(format!(
            "path is longer than {max} characters ({} bytes)",
            s.len()
        )));
    }
    Ok(())
}

/// Characters that never belong in `[urn:]name[.sub]`.
fn is_stray(c: char) -> bool {
    c.is_whitespace() || matches!(c, '[' | ']' | '(' | ')' | '"')
}

/// Parses one word `[URI ":"] ATTRNAME *1subAttr` of a filter or path (RFC 7644 §3.10); `at`
/// is the word's byte offset in the whole text, for error positions.
///
/// A word starting with `urn:` (in any case) is schema-qualified. The URN is everything before
/// the *last* colon: URNs contain dots (`...:enterprise:2.0:User`), so the split on `:` comes
/// first and only the remainder is split on `.` into name and sub-attribute.
pub(crate) fn parse_attr_word(word: &str, at: usize) -> Result<AttrPath, SyntaxError> {
    let qualified = word
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("urn:"));
    let (urn, rest, rest_at) = match word.rfind(':') {
        Some(colon) if qualified && colon > 3 => (
            Some(word[..colon].to_owned()),
            &word[colon + 1..],
            at + colon + 1,
        ),
        _ if qualified => {
            return Err(SyntaxError::at(
                at,
                "expected a schema URN, \":\" and an attribute name, as in \
                 urn:ietf:params:scim:schemas:core:2.0:User:userName",
            ))
        }
        _ => (None, word, at),
    };
    let (name, sub) = match rest.split_once('.') {
        Some((name, sub)) => (name, Some(sub)),
        None => (rest, None),
    };
    check_attr_name(name, rest_at)?;
    if let Some(sub) = sub {
        let sub_at = rest_at + name.len() + 1;
        if let Some(i) = sub.find('.') {
            return Err(SyntaxError::at(
                sub_at + i,
                "an attribute path has at most one sub-attribute (name.subAttr)",
            ));
        }
        check_attr_name(sub, sub_at)?;
    }
    Ok(AttrPath {
        urn,
        name: name.to_owned(),
        sub: sub.map(str::to_owned),
    })
}

/// `ATTRNAME = ALPHA *(nameChar)`, `nameChar = "-" / "_" / DIGIT / ALPHA` (RFC 7643 §2.1),
/// plus a leading `$` for the reserved names such as `$ref` (RFC 7643 §2.4).
pub(crate) fn check_attr_name(name: &str, at: usize) -> Result<(), SyntaxError> {
    let body = name.strip_prefix('$').unwrap_or(name);
    let body_at = at + (name.len() - body.len());
    let mut chars = body.char_indices();
    match chars.next() {
        None => return Err(SyntaxError::at(body_at, "expected an attribute name")),
        Some((_, c)) if c.is_ascii_alphabetic() => {}
        Some((_, c)) => {
            return Err(SyntaxError::at(
                body_at,
                format!(
                    "an attribute name starts with a letter, found \"{}\" (RFC 7643 §2.1)",
                    c.escape_debug()
                ),
            ))
        }
    }
    for (i, c) in chars {
        if c == ':' {
            return Err(SyntaxError::at(
                body_at + i,
                "\":\" in an attribute name; a schema-qualified path starts with \"urn:\"",
            ));
        }
        if !(c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(SyntaxError::at(
                body_at + i,
                format!(
                    "\"{}\" cannot appear in an attribute name (letters, digits, \"-\" and \"_\", \
                     RFC 7643 §2.1)",
                    c.escape_debug()
                ),
            ));
        }
    }
    Ok(())
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(urn) = &self.urn {
            write!(f, "{urn}:")?;
        }
        f.write_str(&self.name)?;
        if let Some(sub) = &self.sub {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

impl fmt::Display for PatchPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.attr)?;
        if let Some(filter) = &self.filter {
            write!(f, "[{filter}]")?;
        }
        if let Some(sub) = &self.sub {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::schema::ENTERPRISE_URN;

    fn err(path: &str) -> String {
        let e = PatchPath::parse(path).unwrap_err();
        assert_eq!(
            e.scim_type,
            Some(crate::scim::ScimType::InvalidPath),
            "{path}"
        );
        e.detail
    }

    #[test]
    fn patch_paths_split_into_attribute_filter_and_sub_attribute() {
        let urn = ENTERPRISE_URN;
        for (text, attr, filter, sub) in [
            ("userName", "userName", None, None),
            ("name.givenName", "name.givenName", None, None),
            ("members.$ref", "members.$ref", None, None),
            (
                r#"emails[type eq "work"].value"#,
                "emails",
                Some(r#"type eq "work""#),
                Some("value"),
            ),
            (
                r#"emails[type eq "work" and value co "@x"]"#,
                "emails",
                Some(r#"type eq "work" and value co "@x""#),
                None,
            ),
            (
                r#"members[value eq "2819c223"]"#,
                "members",
                Some(r#"value eq "2819c223""#),
                None,
            ),
            (
                r#"addresses[type eq "work"].locality"#,
                "addresses",
                Some(r#"type eq "work""#),
                Some("locality"),
            ),
            (
                r#"emails[type eq "other"].Value"#,
                "emails",
                Some(r#"type eq "other""#),
                Some("Value"),
            ),
            (
                r#"emails[value eq "a]b.c:d" or not (type pr)].display"#,
                "emails",
                Some(r#"value eq "a]b.c:d" or not (type pr)"#),
                Some("display"),
            ),
            (
                &format!("{urn}:manager"),
                &format!("{urn}:manager"),
                None,
                None,
            ),
            (
                &format!("{urn}:manager.value"),
                &format!("{urn}:manager.value"),
                None,
                None,
            ),
            (
                &format!("{urn}:employeeNumber"),
                &format!("{urn}:employeeNumber"),
                None,
                None,
            ),
            ("  userName \t", "userName", None, None),
        ] {
            let p = PatchPath::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(p.attr.to_string(), attr, "{text}");
            assert_eq!(p.filter.map(|f| f.to_string()).as_deref(), filter, "{text}");
            assert_eq!(p.sub.as_deref(), sub, "{text}");
        }
    }

    #[test]
    fn urns_are_cut_at_the_last_colon_so_their_dots_stay_in_the_urn() {
        let p = AttrPath::parse(&format!("{ENTERPRISE_URN}:manager.value")).unwrap();
        assert_eq!(p.urn.as_deref(), Some(ENTERPRISE_URN));
        assert_eq!(
            (p.name.as_str(), p.sub.as_deref()),
            ("manager", Some("value"))
        );
        let p = AttrPath::parse("URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER:userName").unwrap();
        assert_eq!(
            p.urn.as_deref(),
            Some("URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER")
        );
        let p = PatchPath::parse(&format!("{ENTERPRISE_URN}:manager")).unwrap();
        assert_eq!(
            (p.attr.urn.as_deref(), p.attr.name.as_str()),
            (Some(ENTERPRISE_URN), "manager")
        );
        let p = PatchPath::parse(
            r#"urn:ietf:params:scim:schemas:core:2.0:User:emails[type eq "work"]"#,
        )
        .unwrap();
        assert_eq!(p.attr.name, "emails");
        assert_eq!(
            p.attr.urn.as_deref(),
            Some("urn:ietf:params:scim:schemas:core:2.0:User")
        );
    }

    #[test]
    fn attribute_paths_display_as_parsed() {
        for text in [
            "userName",
            "name.givenName",
            "urn:a:b:2.0:X:manager.value",
            "$ref",
        ] {
            assert_eq!(AttrPath::parse(text).unwrap().to_string(), text);
        }
        let text = r#"emails[type eq "work" and value co "@x"].value"#;
        assert_eq!(PatchPath::parse(text).unwrap().to_string(), text);
    }

    #[test]
    fn malformed_paths_are_invalid_path_errors_that_say_where() {
        for (text, want) in [
            ("", "the path is empty"),
            ("name.", "invalid path at character 6: expected an attribute name"),
            ("a.b.c", "invalid path at character 4: an attribute path has at most one sub-attribute (name.subAttr)"),
            ("user\tname", "invalid path at character 5: unexpected \"\\t\" in an attribute path"),
            ("urn:", "invalid path at character 1: expected a schema URN"),
            (r#"emails[type eq "work""#, r#"invalid path at character 7: unbalanced bracket: this "[" is never closed"#),
            (r#"emails[type eq "work"]value"#, r#"invalid path at character 23: expected ".""#),
            (r#"emails[type eq "work"].value.x"#, r#"invalid path at character 29: "." cannot appear"#),
            (r#"emails[type eqq "work"]"#, r#"invalid path at character 13: expected a comparison operator"#),
            (r#"emails[type eq "work]"#, "invalid path: unterminated string starting at character 16"),
            (r#"emails[type[value pr]]"#, "invalid path at character 12: a value filter cannot contain another"),
            (r#"name.givenName[x pr]"#, "invalid path at character 15: a value filter must follow an attribute name"),
            (r#"[type eq "work"]"#, "invalid path at character 1: expected an attribute name"),
            (r#"emails[]"#, r#"invalid path at character 8: expected an attribute path, "not" or "(", found "]""#),
            (r#"emails[type eq "x"] ]"#, "invalid path at character 20: expected \".\""),
            ("emails]", "invalid path at character 7: unexpected \"]\""),
        ] {
            let e = err(text);
            assert!(e.starts_with(want), "{text}: {e}");
        }
        let e = AttrPath::parse(r#"emails[type eq "x"]"#)
            .unwrap_err()
            .detail;
        assert!(
            e.contains("character 7: a value filter is not allowed here"),
            "{e}"
        );
        let long = "a".repeat(5000);
        assert!(err(&long).starts_with("path is longer than 4096 characters"));
    }
}
