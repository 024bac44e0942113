//! How the values a path denotes compare with a literal: the per-operator, per-type rules of
//! RFC 7644 §3.4.2.2 as the evaluator applies them. The rules are listed in the documentation
//! of `filter/eval.rs`; each function here says which one it implements.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::{Number, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{CompValue, CompareOp};
use crate::scim::identifier::fold;
use crate::scim::schema::{AttrType, Attribute};

/// `pr` of one value: not null, not `""`, not `[]`, not `{}`.
pub(super) fn is_present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

/// A comparison over the values a path denotes (see the module documentation for `null` and
/// `ne`).
pub(super) fn compare(
    attr: Option<&Attribute>,
    values: &[&Value],
    op: CompareOp,
    lit: &CompValue,
) -> bool {
    match (op, lit) {
        (CompareOp::Eq, CompValue::Null) => !values.iter().any(|v| is_present(v)),
        (CompareOp::Ne, CompValue::Null) => values.iter().any(|v| is_present(v)),
        (_, CompValue::Null) => false,
        (CompareOp::Ne, _) => !compare(attr, values, CompareOp::Eq, lit),
        _ => attr.is_some_and(|a| values.iter().any(|v| holds(a, v, op, lit))),
    }
}

/// Whether one stored value satisfies `op lit` (never called with `ne` or `null`).
fn holds(attr: &Attribute, v: &Value, op: CompareOp, lit: &CompValue) -> bool {
    match attr.attr_type {
        AttrType::String | AttrType::Reference => string_holds(attr.case_exact, v, op, lit),
        AttrType::Binary => !is_ordering(op) && string_holds(attr.case_exact, v, op, lit),
        AttrType::Boolean => {
            op == CompareOp::Eq && value_bool(v).is_some_and(|b| literal_bool(lit) == Some(b))
        }
        AttrType::Integer | AttrType::Decimal => match (v, lit) {
            (Value::Number(a), CompValue::Number(b)) => ordering_holds(op, cmp_numbers(a, b)),
            _ => false,
        },
        AttrType::DateTime if matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew) => {
            string_holds(attr.case_exact, v, op, lit)
        }
        AttrType::DateTime => {
            let stored = v.as_str().and_then(parse_datetime);
            let wanted = match lit {
                CompValue::String(s) => parse_datetime(s),
                _ => None,
            };
            match (stored, wanted) {
                (Some(a), Some(b)) => ordering_holds(op, Some(a.cmp(&b))),
                _ => false,
            }
        }
        AttrType::Complex => false,
    }
}

fn is_ordering(op: CompareOp) -> bool {
    matches!(
        op,
        CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le
    )
}

/// `eq`, `gt`, `ge`, `lt`, `le` from an ordering; false for the substring operators.
fn ordering_holds(op: CompareOp, ord: Option<Ordering>) -> bool {
    let Some(ord) = ord else { return false };
    match op {
        CompareOp::Eq => ord == Ordering::Equal,
        CompareOp::Gt => ord == Ordering::Greater,
        CompareOp::Ge => ord != Ordering::Less,
        CompareOp::Lt => ord == Ordering::Less,
        CompareOp::Le => ord != Ordering::Greater,
        CompareOp::Ne | CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

fn string_holds(case_exact: bool, v: &Value, op: CompareOp, lit: &CompValue) -> bool {
    let (Value::String(stored), CompValue::String(wanted)) = (v, lit) else {
        return false;
    };
    let (a, b): (Cow<'_, str>, Cow<'_, str>) = if case_exact {
        (Cow::Borrowed(stored), Cow::Borrowed(wanted))
    } else {
        // Case-insensitive also means normalisation-insensitive: NFC and NFD spellings of
        // one name are one name, as for uniqueness (`scim/identifier.rs`).
        (Cow::Owned(fold(stored)), Cow::Owned(fold(wanted)))
    };
    match op {
        CompareOp::Co => a.contains(&*b),
        CompareOp::Sw => a.starts_with(&*b),
        CompareOp::Ew => a.ends_with(&*b),
        op => ordering_holds(op, Some(a.cmp(&b))),
    }
}

/// Integers exactly, anything else as `f64`.
fn cmp_numbers(a: &Number, b: &Number) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return Some(x.cmp(&y));
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return Some(x.cmp(&y));
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

/// A stored boolean: JSON `true`/`false`, or the strings `"true"`/`"false"` in any case.
fn value_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => string_bool(s),
        _ => None,
    }
}

/// A boolean literal: `true`/`false`, or the strings `"true"`/`"false"` in any case, which
/// Entra sends (`active eq "True"`).
pub(super) fn literal_bool(lit: &CompValue) -> Option<bool> {
    match lit {
        CompValue::Bool(b) => Some(*b),
        CompValue::String(s) => string_bool(s),
        _ => None,
    }
}

fn string_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// An RFC 3339 date-time (the profile of `xsd:dateTime` SCIM uses, RFC 7643 §2.3.5).
pub(super) fn parse_datetime(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordering_operators_map_orderings_and_substring_operators_never_hold() {
        use CompareOp::*;
        let table = [
            (Eq, Ordering::Equal, true),
            (Eq, Ordering::Less, false),
            (Gt, Ordering::Greater, true),
            (Gt, Ordering::Equal, false),
            (Ge, Ordering::Equal, true),
            (Ge, Ordering::Less, false),
            (Lt, Ordering::Less, true),
            (Lt, Ordering::Equal, false),
            (Le, Ordering::Equal, true),
            (Le, Ordering::Greater, false),
            (Co, Ordering::Equal, false),
            (Ne, Ordering::Less, false),
        ];
        for (op, ord, want) in table {
            assert_eq!(ordering_holds(op, Some(ord)), want, "{op} {ord:?}");
        }
        assert!(!ordering_holds(Eq, None));
    }

    #[test]
    fn numbers_compare_exactly_as_integers_and_otherwise_as_floats() {
        let n = |v: serde_json::Value| match v {
            Value::Number(n) => n,
            _ => unreachable!(),
        };
        let big = n(serde_json::json!(u64::MAX));
        let big_minus_one = n(serde_json::json!(u64::MAX - 1));
        assert_eq!(cmp_numbers(&big, &big_minus_one), Some(Ordering::Greater));
        assert_eq!(
            cmp_numbers(&n(serde_json::json!(-1)), &big),
            Some(Ordering::Less)
        );
        assert_eq!(
            cmp_numbers(&n(serde_json::json!(2)), &n(serde_json::json!(2.0))),
            Some(Ordering::Equal)
        );
        let i = i64::MAX;
        assert_eq!(
            cmp_numbers(&n(serde_json::json!(i)), &n(serde_json::json!(i - 1))),
            Some(Ordering::Greater)
        );
    }

    #[test]
    fn presence_excludes_null_and_empty_values() {
        for (v, want) in [
            (serde_json::json!(null), false),
            (serde_json::json!(""), false),
            (serde_json::json!([]), false),
            (serde_json::json!({}), false),
            (serde_json::json!(false), true),
            (serde_json::json!(0), true),
            (serde_json::json!(" "), true),
            (serde_json::json!([null]), true),
        ] {
            assert_eq!(is_present(&v), want, "{v}");
        }
    }

    #[test]
    fn boolean_literals_include_the_strings_entra_sends() {
        assert_eq!(literal_bool(&CompValue::String("TRUE".into())), Some(true));
        assert_eq!(
            literal_bool(&CompValue::String("False".into())),
            Some(false)
        );
        assert_eq!(literal_bool(&CompValue::String("yes".into())), None);
        assert_eq!(literal_bool(&CompValue::Null), None);
    }

    #[test]
    fn rfc_3339_date_times_parse_and_others_do_not() {
        assert!(parse_datetime("2011-05-13T04:42:34Z").is_some());
        assert!(parse_datetime("2011-05-13T04:42:34.123+02:00").is_some());
        assert!(parse_datetime("2011-05-13").is_none());
        assert!(parse_datetime("2011-05-13T04:42:34").is_none());
    }
}
