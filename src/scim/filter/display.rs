//! The canonical text of a filter: `parse(&f.to_string()) == Ok(f)` for every filter the
//! parser can produce.
//!
//! Canonical means lowercase operators and keywords, single spaces, `not (...)`, strings
//! JSON-escaped in double quotes (RFC 7644 §3.4.2.2 `compValue`), and parentheses only where
//! precedence (`not` > `and` > `or`, both left-associative) needs them to keep the tree's
//! shape: an `or` inside an `and`, and a right operand of the same operator.

use std::fmt;

use super::{CompValue, CompareOp, Filter};

impl CompareOp {
    /// The operator as written in a filter (lowercase).
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for CompValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompValue::Null => f.write_str("null"),
            CompValue::Bool(b) => write!(f, "{b}"),
            CompValue::Number(n) => write!(f, "{n}"),
            CompValue::String(s) => write_json_string(f, s),
        }
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::Or(l, r) => {
                write!(f, "{l} or ")?;
                group(f, r, matches!(**r, Filter::Or(..)))
            }
            Filter::And(l, r) => {
                group(f, l, matches!(**l, Filter::Or(..)))?;
                f.write_str(" and ")?;
                group(f, r, matches!(**r, Filter::Or(..) | Filter::And(..)))
            }
            Filter::Not(inner) => write!(f, "not ({inner})"),
            Filter::Present(path) => write!(f, "{path} pr"),
            Filter::Compare(path, op, value) => write!(f, "{path} {op} {value}"),
            Filter::ValuePath(path, inner) => write!(f, "{path}[{inner}]"),
        }
    }
}

fn group(f: &mut fmt::Formatter<'_>, filter: &Filter, parens: bool) -> fmt::Result {
    if parens {
        write!(f, "({filter})")
    } else {
        write!(f, "{filter}")
    }
}

/// A JSON string literal (RFC 8259 §7): quote, backslash and control characters escaped,
/// everything else as is.
fn write_json_string(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            '\u{8}' => f.write_str("\\b")?,
            '\u{c}' => f.write_str("\\f")?,
            c if u32::from(c) < 0x20 || c == '\u{7f}' => write!(f, "\\u{:04x}", u32::from(c))?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;
    use crate::scim::path::AttrPath;

    fn attr(name: &str) -> AttrPath {
        AttrPath {
            urn: None,
            name: name.into(),
            sub: None,
        }
    }

    fn pr(name: &str) -> Filter {
        Filter::Present(attr(name))
    }

    fn and(l: Filter, r: Filter) -> Filter {
        Filter::And(Box::new(l), Box::new(r))
    }

    fn or(l: Filter, r: Filter) -> Filter {
        Filter::Or(Box::new(l), Box::new(r))
    }

    #[track_caller]
    fn round_trips(f: &Filter, text: &str) {
        assert_eq!(f.to_string(), text);
        assert_eq!(&parse(text).unwrap(), f, "{text}");
    }

    #[test]
    fn parentheses_appear_only_where_precedence_needs_them() {
        round_trips(&or(pr("a"), and(pr("b"), pr("c"))), "a pr or b pr and c pr");
        round_trips(
            &and(or(pr("a"), pr("b")), pr("c")),
            "(a pr or b pr) and c pr",
        );
        round_trips(
            &and(pr("a"), or(pr("b"), pr("c"))),
            "a pr and (b pr or c pr)",
        );
        round_trips(&or(or(pr("a"), pr("b")), pr("c")), "a pr or b pr or c pr");
        round_trips(&or(pr("a"), or(pr("b"), pr("c"))), "a pr or (b pr or c pr)");
        round_trips(
            &and(pr("a"), and(pr("b"), pr("c"))),
            "a pr and (b pr and c pr)",
        );
    }

    #[test]
    fn not_and_value_paths_print_in_canonical_form() {
        let vp = Filter::ValuePath(attr("emails"), Box::new(or(pr("type"), pr("value"))));
        round_trips(
            &Filter::Not(Box::new(and(vp, pr("x")))),
            "not (emails[type pr or value pr] and x pr)",
        );
    }

    #[test]
    fn strings_are_json_escaped_and_parse_back() {
        let f = Filter::Compare(
            attr("a"),
            CompareOp::Eq,
            CompValue::String("q\"b\\s\n\t\u{1}\u{7f}é]:.)".into()),
        );
        round_trips(&f, r#"a eq "q\"b\\s\n\t\u0001\u007fé]:.)""#);
    }

    #[test]
    fn literals_print_as_json() {
        let cmp = |v| Filter::Compare(attr("a"), CompareOp::Ge, v);
        round_trips(&cmp(CompValue::Null), "a ge null");
        round_trips(&cmp(CompValue::Bool(false)), "a ge false");
        round_trips(&cmp(CompValue::Number((-5).into())), "a ge -5");
        let f = serde_json::Number::from_f64(1.5e300).unwrap();
        round_trips(&cmp(CompValue::Number(f)), "a ge 1.5e+300");
        let f = serde_json::Number::from_f64(2.0).unwrap();
        round_trips(&cmp(CompValue::Number(f)), "a ge 2.0");
    }

    #[test]
    fn every_operator_prints_lowercase() {
        for (op, text) in [
            (CompareOp::Eq, "eq"),
            (CompareOp::Ne, "ne"),
            (CompareOp::Co, "co"),
            (CompareOp::Sw, "sw"),
            (CompareOp::Ew, "ew"),
            (CompareOp::Gt, "gt"),
            (CompareOp::Ge, "ge"),
            (CompareOp::Lt, "lt"),
            (CompareOp::Le, "le"),
        ] {
            assert_eq!(op.to_string(), text);
        }
    }
}
