//! SCIM filters (RFC 7644 §3.4.2.2): parser, AST and the reference evaluator.
//!
//! One role per file: `filter/lexer.rs` cuts the text into tokens, `filter/parser.rs` builds
//! the [`Filter`] tree within [`Limits`], `filter/display.rs` prints the canonical text that
//! parses back to the same tree, `filter/check.rs` validates a filter against a resource
//! type's schema (unknown attributes, operator/type rules), `filter/eval.rs` walks the tree
//! and reads values from documents and `filter/compare.rs` compares one value with a literal.
//!
//! [`matches()`] is the *reference* semantics of filtering. The store may translate a filter to
//! SQL to narrow the candidates, but every candidate is then decided by [`matches()`], so the
//! rules written down in `filter/eval.rs` are the rules clients observe.

use serde_json::Value;

use super::error::{ScimError, ScimResult};
use super::path::AttrPath;
use super::schema::{Attribute, ResourceType};

mod check;
mod compare;
mod display;
mod eval;
pub(crate) mod lexer;
pub(crate) mod parser;
#[cfg(test)]
pub(crate) mod strategies;

/// Default longest filter accepted, in bytes of UTF-8.
pub const MAX_FILTER_LEN: usize = 4096;
/// Default deepest nesting of parentheses, `not(...)` and value filters.
pub const MAX_FILTER_DEPTH: usize = 32;
/// Default largest number of comparison terms (`attr op value` and `attr pr`).
pub const MAX_FILTER_TERMS: usize = 256;

/// Resource limits of the filter parser, so a hostile filter costs little to refuse.
///
/// The parser recurses once per nesting level and checks `max_depth` before recursing, so
/// parsing never overflows the stack. The parsed tree may still be as deep as `max_terms`
/// (an `and` chain is left-deep) and evaluating or dropping it recurses that deep: keep
/// `max_terms` in the thousands at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest filter, in bytes.
    pub max_len: usize,
    /// Deepest nesting of `(`, `not(` and `[`.
    pub max_depth: usize,
    /// Most comparison terms.
    pub max_terms: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_len: MAX_FILTER_LEN,
            max_depth: MAX_FILTER_DEPTH,
            max_terms: MAX_FILTER_TERMS,
        }
    }
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// equal
    Eq,
    /// not equal
    Ne,
    /// contains
    Co,
    /// starts with
    Sw,
    /// ends with
    Ew,
    /// greater than
    Gt,
    /// greater than or equal
    Ge,
    /// less than
    Lt,
    /// less than or equal
    Le,
}

/// A literal in a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum CompValue {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A JSON number.
    Number(serde_json::Number),
    /// A JSON string (also used for dateTime literals).
    String(String),
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `a and b`
    And(Box<Filter>, Box<Filter>),
    /// `a or b`
    Or(Box<Filter>, Box<Filter>),
    /// `not (a)`
    Not(Box<Filter>),
    /// `attr pr`
    Present(AttrPath),
    /// `attr op value`
    Compare(AttrPath, CompareOp, CompValue),
    /// `attr[filter]`: some element of the multi-valued `attr` matches `filter`, whose paths are
    /// relative to the element.
    ValuePath(AttrPath, Box<Filter>),
}

/// Parses a filter (RFC 7644 §3.4.2.2) with the default [`Limits`].
///
/// Keywords and operators are case-insensitive; attribute names keep the client's spelling.
/// Every error is `invalidFilter` with a detail that says where the filter went wrong, e.g.
/// `invalid filter at character 10: expected a comparison operator (eq, ne, co, sw, ew, gt,
/// ge, lt, le, pr) after "userName", found "eqq"`.
pub fn parse(s: &str) -> ScimResult<Filter> {
    parse_with_limits(s, &Limits::default())
}

/// Parses a filter within explicit limits.
pub fn parse_with_limits(s: &str, limits: &Limits) -> ScimResult<Filter> {
    if s.len() > limits.max_len {
        return Err(ScimError::invalid_filter(format!(
            "filter is longer than {} characters ({} bytes)",
            limits.max_len,
            s.len()
        )));
    }
    parser::parse_filter(s, limits).map_err(|e| ScimError::invalid_filter(e.render(s, "filter")))
}

/// Checks a filter against a resource type: every attribute must exist and every comparison
/// must suit the attribute's type (RFC 7644 §3.4.2.2). Errors are `invalidFilter`.
pub fn check(filter: &Filter, rt: &ResourceType) -> ScimResult<()> {
    check::check(filter, rt)
}

/// Rewrites schema URNs in attribute paths to the ones we use, so legacy spellings such as
/// `urn:scim:schemas:extension:enterprise:1.0:department` resolve (docs/reference/idp-behaviour.md
/// §1 rule 18).
pub fn canonical_urns(filter: Filter, reg: &super::schema::SchemaRegistry) -> Filter {
    let fix = |p: AttrPath| AttrPath {
        urn: p
            .urn
            .map(|u| reg.canonical_urn(&u).map(str::to_owned).unwrap_or(u)),
        ..p
    };
    match filter {
        Filter::And(a, b) => Filter::And(
            Box::new(canonical_urns(*a, reg)),
            Box::new(canonical_urns(*b, reg)),
        ),
        Filter::Or(a, b) => Filter::Or(
            Box::new(canonical_urns(*a, reg)),
            Box::new(canonical_urns(*b, reg)),
        ),
        Filter::Not(a) => Filter::Not(Box::new(canonical_urns(*a, reg))),
        Filter::Present(p) => Filter::Present(fix(p)),
        Filter::Compare(p, op, v) => Filter::Compare(fix(p), op, v),
        Filter::ValuePath(p, inner) => Filter::ValuePath(fix(p), inner),
    }
}

/// Whether a resource document matches: the reference semantics of filtering, documented
/// rule by rule in `filter/eval.rs`. Never panics, whatever the shape of `doc`.
pub fn matches(filter: &Filter, rt: &ResourceType, doc: &Value) -> bool {
    eval::matches(filter, rt, doc)
}

/// Whether one element of a multi-valued (or complex) attribute `parent` matches a value
/// filter, whose paths name sub-attributes of `parent` (for a multi-valued simple attribute,
/// `value` names the element itself). Used for `attr[filter]` here and for PATCH paths.
pub fn matches_element(filter: &Filter, parent: &Attribute, element: &Value) -> bool {
    eval::matches_element(filter, parent, element)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::schema::{ENTERPRISE_URN, USER_URN};

    fn path(s: &str) -> AttrPath {
        AttrPath::parse(s).unwrap()
    }

    fn cmp(p: &str, op: CompareOp, v: CompValue) -> Filter {
        Filter::Compare(path(p), op, v)
    }

    fn s(v: &str) -> CompValue {
        CompValue::String(v.into())
    }

    fn num(v: &str) -> CompValue {
        CompValue::Number(v.parse().unwrap())
    }

    fn and(l: Filter, r: Filter) -> Filter {
        Filter::And(Box::new(l), Box::new(r))
    }

    fn or(l: Filter, r: Filter) -> Filter {
        Filter::Or(Box::new(l), Box::new(r))
    }

    fn not(f: Filter) -> Filter {
        Filter::Not(Box::new(f))
    }

    fn err(filter: &str) -> String {
        parse(filter).unwrap_err().detail
    }

    #[test]
    fn the_rfc_7644_example_filters_parse_to_their_canonical_form() {
        for (text, canonical) in [
            (r#"userName Eq "john""#, r#"userName eq "john""#),
            (
                r#"name.familyName co "O'Malley""#,
                r#"name.familyName co "O'Malley""#,
            ),
            (r#"userName sw "J""#, r#"userName sw "J""#),
            (
                r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
                r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
            ),
            ("title pr", "title pr"),
            (
                r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
                r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
            ),
            (
                r#"meta.lastModified GE "2011-05-13T04:42:34Z""#,
                r#"meta.lastModified ge "2011-05-13T04:42:34Z""#,
            ),
            (
                r#"meta.lastModified lt "2011-05-13T04:42:34Z""#,
                r#"meta.lastModified lt "2011-05-13T04:42:34Z""#,
            ),
            (
                r#"meta.lastModified le "2011-05-13T04:42:34Z""#,
                r#"meta.lastModified le "2011-05-13T04:42:34Z""#,
            ),
            (
                r#"title pr and userType eq "Employee""#,
                r#"title pr and userType eq "Employee""#,
            ),
            (
                r#"title pr or userType eq "Intern""#,
                r#"title pr or userType eq "Intern""#,
            ),
            (
                r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
                r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
            ),
            (
                r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
                r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
            ),
            (
                r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
                r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
            ),
            (
                r#"userType eq "Employee" and (emails.type eq "work")"#,
                r#"userType eq "Employee" and emails.type eq "work""#,
            ),
            (
                r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
                r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
            ),
            (
                r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
                r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
            ),
            (r#"not (userName eq "x")"#, r#"not (userName eq "x")"#),
            (r#"NOT(userName eq "x")"#, r#"not (userName eq "x")"#),
            (
                r#"members[value eq "2819c223"]"#,
                r#"members[value eq "2819c223"]"#,
            ),
            ("groups.$ref pr", "groups.$ref pr"),
        ] {
            let f = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(f.to_string(), canonical, "{text}");
            assert_eq!(parse(canonical).unwrap(), f, "{canonical}");
        }
    }

    #[test]
    fn not_binds_tighter_than_and_which_binds_tighter_than_or() {
        let (a, b, c) = (
            || cmp("a", CompareOp::Eq, num("1")),
            || cmp("b", CompareOp::Eq, num("2")),
            || cmp("c", CompareOp::Eq, num("3")),
        );
        let table = [
            ("a eq 1 or b eq 2 and c eq 3", or(a(), and(b(), c()))),
            ("a eq 1 and b eq 2 or c eq 3", or(and(a(), b()), c())),
            ("a eq 1 or b eq 2 or c eq 3", or(or(a(), b()), c())),
            ("a eq 1 and b eq 2 and c eq 3", and(and(a(), b()), c())),
            ("(a eq 1 or b eq 2) and c eq 3", and(or(a(), b()), c())),
            ("not (a eq 1) and b eq 2", and(not(a()), b())),
            ("not (a eq 1 or b eq 2)", not(or(a(), b()))),
            ("a eq 1 AND b eq 2 Or c eq 3", or(and(a(), b()), c())),
            ("((a eq 1))", a()),
        ];
        for (text, want) in table {
            assert_eq!(parse(text).unwrap(), want, "{text}");
        }
    }

    #[test]
    fn literals_follow_json_with_case_insensitive_keywords() {
        for (text, want) in [
            ("a eq true", CompValue::Bool(true)),
            ("a eq TRUE", CompValue::Bool(true)),
            ("a eq False", CompValue::Bool(false)),
            ("a eq NULL", CompValue::Null),
            ("a eq -1", num("-1")),
            ("a eq 1.5", num("1.5")),
            ("a eq -0.5E-2", num("-0.005")),
            ("a eq 1e3", num("1000.0")),
            (r#"a eq "caf\u00e9 \"x\" \\""#, s("café \"x\" \\")),
            (r#"a eq "2011-05-13T04:42:34Z""#, s("2011-05-13T04:42:34Z")),
            // docs/reference/idp-behaviour.md E12: Entra's unquoted values are strings.
            ("externalId eq bsmith", s("bsmith")),
            ("a eq b.smith@x-y_z", s("b.smith@x-y_z")),
            ("a eq 01", s("01")),
        ] {
            let Filter::Compare(_, _, got) = parse(text).unwrap() else {
                panic!("{text}")
            };
            assert_eq!(got, want, "{text}");
        }
    }

    #[test]
    fn extra_whitespace_between_tokens_is_tolerated() {
        let want = parse(r#"not (userName eq "x") and emails[type eq "work"]"#).unwrap();
        for text in [
            "  not(userName  eq\t\"x\")   and\temails[ type eq \"work\" ]  ",
            "not\t(\tuserName eq \"x\" )\nand emails [type eq \"work\"]",
        ] {
            assert_eq!(parse(text).unwrap(), want, "{text:?}");
        }
    }

    #[test]
    fn qualified_paths_split_the_urn_at_the_last_colon() {
        let f = parse(&format!("{ENTERPRISE_URN}:manager.value eq \"x\"")).unwrap();
        let Filter::Compare(p, _, _) = f else {
            panic!()
        };
        assert_eq!(p.urn.as_deref(), Some(ENTERPRISE_URN));
        assert_eq!(
            (p.name.as_str(), p.sub.as_deref()),
            ("manager", Some("value"))
        );
        let f = parse(&format!("{USER_URN}:emails[type eq \"work\"]")).unwrap();
        let Filter::ValuePath(p, _) = f else { panic!() };
        assert_eq!(
            (p.urn.as_deref(), p.name.as_str()),
            (Some(USER_URN), "emails")
        );
    }

    #[test]
    fn errors_say_where_and_what_was_expected() {
        for (text, want) in [
            (
                r#"userName eqq "x""#,
                r#"invalid filter at character 10: expected a comparison operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr) after "userName", found "eqq""#,
            ),
            (
                r#"userName eq "john"#,
                "invalid filter: unterminated string starting at character 13",
            ),
            (
                r#"(userName eq "x""#,
                r#"invalid filter at character 1: unbalanced parenthesis: this "(" is never closed"#,
            ),
            (
                r#"userName eq "x")"#,
                r#"invalid filter at character 16: unbalanced parenthesis: this ")" has no matching "(""#,
            ),
            (
                r#"emails[type eq "work""#,
                r#"invalid filter at character 7: unbalanced bracket: this "[" is never closed"#,
            ),
            (
                "userName eq",
                "invalid filter at character 12: expected a value (a quoted string, a number, true, false or null) after \"eq\", found the end of the filter",
            ),
            (
                r#"userName eq "a" "b""#,
                r#"invalid filter at character 17: expected "and", "or" or the end of the filter, found a quoted string"#,
            ),
            (
                r#"userName eq "x" and"#,
                r#"invalid filter at character 20: expected an attribute path, "not" or "(", found the end of the filter"#,
            ),
            ("", "invalid filter: the filter is empty"),
            ("  \t", "invalid filter: the filter is empty"),
        ] {
            assert_eq!(err(text), want, "{text}");
        }
    }

    #[test]
    fn malformed_constructs_are_rejected_with_a_reason() {
        for (text, needle) in [
            ("userName eq 'john'", "strings are written in double quotes"),
            ("userName eq and", "found \"and\""),
            ("userName eq 1e999", "out of range"),
            (
                r#"emails[type[value pr]]"#,
                "character 12: a value filter cannot contain another",
            ),
            (
                r#"name.givenName[x pr]"#,
                "not the sub-attribute \"name.givenName\"",
            ),
            (
                "not userName pr",
                "character 5: expected \"(\" after \"not\"",
            ),
            (
                "a.b.c pr",
                "character 4: an attribute path has at most one sub-attribute",
            ),
            ("urn:foo pr", "character 1: expected a schema URN"),
            (
                "user#name pr",
                "character 5: \"#\" cannot appear in an attribute name",
            ),
            ("1abc pr", "an attribute name starts with a letter"),
            ("foo:bar pr", "a schema-qualified path starts with \"urn:\""),
            (r#"userName eq "x" ]"#, "unbalanced bracket"),
            (r#"userName eq "\x""#, "invalid escape"),
            (
                r#"(userName eq "x"]"#,
                "expected \"and\", \"or\" or \")\", found \"]\"",
            ),
            (
                r#"emails[value pr)"#,
                "expected \"and\", \"or\" or \"]\", found \")\"",
            ),
            (r#"userName eq "x" && title pr"#, "found \"&&\""),
            (r#""userName" eq "x""#, "expected an attribute path"),
        ] {
            let e = err(text);
            assert!(e.contains(needle), "{text}: {e}");
            assert_eq!(
                parse(text).unwrap_err().scim_type,
                Some(super::super::ScimType::InvalidFilter)
            );
        }
    }

    #[test]
    fn attributes_named_like_keywords_still_parse() {
        assert_eq!(parse("not pr").unwrap(), Filter::Present(path("not")));
        assert_eq!(
            parse(r#"not eq "x""#).unwrap(),
            cmp("not", CompareOp::Eq, s("x"))
        );
        assert_eq!(
            parse("and pr and or pr").unwrap(),
            and(Filter::Present(path("and")), Filter::Present(path("or")))
        );
    }

    #[test]
    fn filters_longer_than_the_limit_are_refused_before_parsing() {
        let ok = format!("userName eq \"{}\"", "a".repeat(MAX_FILTER_LEN - 14));
        assert_eq!(ok.len(), MAX_FILTER_LEN);
        assert!(parse(&ok).is_ok());
        let long = format!("userName eq \"{}\"", "a".repeat(MAX_FILTER_LEN));
        assert_eq!(
            err(&long),
            format!(
                "filter is longer than 4096 characters ({} bytes)",
                long.len()
            )
        );
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_refused() {
        let nested = |n: usize| format!("{}a pr{}", "(".repeat(n), ")".repeat(n));
        assert!(parse(&nested(MAX_FILTER_DEPTH)).is_ok());
        assert_eq!(
            err(&nested(MAX_FILTER_DEPTH + 1)),
            "invalid filter at character 33: filter nests deeper than 32 levels of \
             parentheses, not(...) and value filters"
        );
        let tight = Limits {
            max_depth: 2,
            ..Limits::default()
        };
        assert!(parse_with_limits(r#"not (emails[type eq "x"])"#, &tight).is_ok());
        let e = parse_with_limits(r#"not ((emails[type eq "x"]))"#, &tight).unwrap_err();
        assert!(
            e.detail
                .contains("character 13: filter nests deeper than 2 levels"),
            "{e}"
        );
    }

    #[test]
    fn hostile_nesting_fails_fast_without_exhausting_a_small_stack() {
        // A 256 KiB stack holds the 32 allowed levels of a debug build (a few KiB each); had
        // the depth been checked after recursing, 10,000 levels would need tens of MiB.
        let handle = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(|| {
                let hostile = format!("{}a pr{}", "not(".repeat(10_000), ")".repeat(10_000));
                let default = parse(&hostile).unwrap_err();
                let unbounded_len = Limits {
                    max_len: usize::MAX,
                    ..Limits::default()
                };
                let deep = parse_with_limits(&hostile, &unbounded_len).unwrap_err();
                let parens = parse_with_limits(&"(".repeat(100_000), &unbounded_len).unwrap_err();
                (default, deep, parens)
            })
            .unwrap();
        let (default, deep, parens) = handle.join().unwrap();
        assert!(
            default.detail.starts_with("filter is longer than 4096"),
            "{default}"
        );
        assert!(
            deep.detail
                .contains("at character 132: filter nests deeper than 32"),
            "{deep}"
        );
        assert!(
            parens.detail.contains("filter nests deeper than 32"),
            "{parens}"
        );
        assert_eq!(deep.scim_type, Some(super::super::ScimType::InvalidFilter));
    }

    #[test]
    fn more_comparison_terms_than_the_limit_are_refused() {
        let terms = |n: usize| vec!["a pr"; n].join(" or ");
        assert!(parse(&terms(MAX_FILTER_TERMS)).is_ok());
        let e = err(&terms(MAX_FILTER_TERMS + 1));
        assert!(
            e.ends_with("filter has more than 256 comparison terms"),
            "{e}"
        );
    }
}
