//! Turning what a client sent into the canonical, schema-checked value of one attribute.
//!
//! Canonical means: attribute and sub-attribute names spelled as in the schema, `null` and
//! empty values removed, booleans as JSON booleans, unknown sub-attributes dropped. Values are
//! otherwise kept exactly as received (docs/reference/idp-behaviour.md §1 rule 12: IdPs re-send
//! anything they do not get back verbatim).

use std::collections::HashSet;

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::error::{ScimError, ScimResult};
use super::schema::{AttrType, Attribute, Mutability};

/// Where a value is being written, which decides how `readOnly` sub-attributes are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A client request: `readOnly` sub-attributes are dropped (RFC 7643 §7).
    Client,
    /// A document we produced ourselves and are re-checking: keep everything.
    Stored,
}

/// Coerces the value of `attr` (single- or multi-valued). `Ok(None)` means "no value".
pub fn attribute_value(
    attr: &Attribute,
    value: &Value,
    origin: Origin,
) -> ScimResult<Option<Value>> {
    if value.is_null() {
        return Ok(None);
    }
    if attr.multi_valued {
        let items: Vec<&Value> = match value {
            Value::Array(items) => items.iter().collect(),
            // OneLogin's enterprise template sends `emails` as one object instead of an array
            // (docs/reference/idp-behaviour.md §4.2, OL-SCHEMA); any single value stands for a
            // one-element list.
            other => vec![other],
        };
        let mut out = Vec::with_capacity(items.len());
        // Duplicates are dropped by a set of canonical forms, not by comparing every pair:
        // a body of tens of thousands of values must cost linear time, not quadratic.
        let mut seen = HashSet::with_capacity(items.len());
        for item in items {
            if let Some(v) = single_value(attr, item, origin)? {
                if seen.insert(canonical(&v)) {
                    out.push(v);
                }
            }
        }
        return Ok((!out.is_empty()).then_some(Value::Array(out)));
    }
    match value {
        // Entra has sent the manager as a one-element array of objects
        // (docs/reference/idp-behaviour.md §2.6).
        Value::Array(items) if attr.is_complex() && items.len() <= 1 => match items.first() {
            Some(item) => single_value(attr, item, origin),
            None => Ok(None),
        },
        Value::Array(_) => Err(ScimError::invalid_value(format!(
            "attribute \"{}\" is single-valued but an array was given",
            attr.name
        ))),
        other => single_value(attr, other, origin),
    }
}

/// A text form of a value that is equal for equal values (`serde_json::Value`'s equality
/// ignores the order of object keys; this form sorts them), for sets of values.
pub fn canonical(v: &Value) -> String {
    fn write(v: &Value, out: &mut String) {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                out.push('{');
                for k in keys {
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    write(&m[k], out);
                    out.push(',');
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for i in items {
                    write(i, out);
                    out.push(',');
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(v, &mut out);
    out
}

/// Coerces one value (one element of a multi-valued attribute, or the value of a single one).
pub fn single_value(attr: &Attribute, value: &Value, origin: Origin) -> ScimResult<Option<Value>> {
    if value.is_null() {
        return Ok(None);
    }
    if attr.is_complex() {
        return complex_value(attr, value, origin);
    }
    simple_value(attr, value)
}

fn complex_value(attr: &Attribute, value: &Value, origin: Origin) -> ScimResult<Option<Value>> {
    let obj = match value {
        Value::Object(obj) => obj,
        // A bare id where an object with a `value` sub-attribute is expected: the manager as a
        // string from Entra and the Microsoft validator (docs/reference/idp-behaviour.md E5,
        // SCIMSDK #686) and a group member as a bare id (MSREF-PM, docs/reference/idp-behaviour.md
        // c71).
        Value::String(_) | Value::Number(_) if attr.sub("value").is_some() => {
            let mut obj = Map::new();
            obj.insert("value".to_owned(), value.clone());
            return complex_value(attr, &Value::Object(obj), origin);
        }
        _ => {
            return Err(ScimError::invalid_value(format!(
                "attribute \"{}\" is complex and needs a JSON object",
                attr.name
            )))
        }
    };
    let mut out = Map::new();
    for (key, v) in obj {
        let Some(sub) = attr.sub(key) else {
            continue; // Unknown sub-attributes are ignored, like unknown attributes.
        };
        if origin == Origin::Client && sub.mutability == Mutability::ReadOnly {
            continue;
        }
        if let Some(v) = simple_value(sub, v)? {
            out.insert(sub.name.clone(), v);
        }
    }
    // A complex value whose schema has a `value` sub-attribute is meaningless without it:
    // `{"value": ""}` clears the manager (docs/reference/idp-behaviour.md E6, MSREF-LA
    // "SCIM_Update_Manager"), and OneLogin's empty placeholders render
    // `{"value": "", "displayName": " "}` (§4.2).
    if attr.sub("value").is_some() && !out.contains_key("value") {
        return Ok(None);
    }
    Ok((!out.is_empty()).then_some(Value::Object(out)))
}

/// Coerces a value of a simple (non-complex) attribute.
pub fn simple_value(attr: &Attribute, value: &Value) -> ScimResult<Option<Value>> {
    let wrong = |expected: &str| {
        ScimError::invalid_value(format!(
            "attribute \"{}\" must be {expected}, found {}",
            attr.name,
            json_kind(value)
        ))
    };
    match (attr.attr_type, value) {
        (_, Value::Null) => Ok(None),
        // An optional attribute sent as "" means "no value" (docs/reference/idp-behaviour.md §1
        // rule 19): OneLogin placeholders, Entra's SCIM_Null_Update test, manager clears.
        (_, Value::String(s)) if s.is_empty() => Ok(None),
        (AttrType::String | AttrType::Reference, Value::String(_)) => Ok(Some(value.clone())),
        (AttrType::Binary, Value::String(s)) => {
            use base64::Engine;
            let engine = base64::engine::general_purpose::STANDARD;
            let trimmed: String = s.chars().filter(|c| !c.is_whitespace()).collect();
            engine
                .decode(trimmed.as_bytes())
                .map_err(|_| wrong("base64-encoded binary"))?;
            Ok(Some(value.clone()))
        }
        (AttrType::Boolean, Value::Bool(_)) => Ok(Some(value.clone())),
        // Entra's default PATCH dialect sends "True"/"False" (docs/reference/idp-behaviour.md E2,
        // MS-COMPAT), and the Microsoft Postman suite POSTs `"active": "True"` (MSREF-PM).
        (AttrType::Boolean, Value::String(s)) => match s.to_ascii_lowercase().as_str() {
            "true" => Ok(Some(Value::Bool(true))),
            "false" => Ok(Some(Value::Bool(false))),
            _ => Err(wrong("a boolean")),
        },
        (AttrType::Integer, Value::Number(n)) if n.is_i64() || n.is_u64() => {
            Ok(Some(value.clone()))
        }
        (AttrType::Integer, Value::Number(n)) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Some(Value::from(f as i64))),
            _ => Err(wrong("an integer")),
        },
        (AttrType::Decimal, Value::Number(_)) => Ok(Some(value.clone())),
        (AttrType::DateTime, Value::String(s)) => {
            OffsetDateTime::parse(s, &Rfc3339).map_err(|_| wrong("an RFC 3339 dateTime"))?;
            Ok(Some(value.clone()))
        }
        (AttrType::Complex, _) => Err(wrong("a JSON object")),
        (AttrType::String, _) => Err(wrong("a string")),
        (AttrType::Reference, _) => Err(wrong("a URI string")),
        (AttrType::Binary, _) => Err(wrong("a base64 string")),
        (AttrType::Boolean, _) => Err(wrong("a boolean")),
        (AttrType::Integer, _) => Err(wrong("an integer")),
        (AttrType::Decimal, _) => Err(wrong("a number")),
        (AttrType::DateTime, _) => Err(wrong("an RFC 3339 dateTime string")),
    }
}

/// A short name of a JSON value's kind for error messages (never the value: it may be personal).
pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::schema::{ResourceKind, SchemaRegistry, ENTERPRISE_URN};
    use serde_json::json;

    fn user_attr(urn: Option<&str>, name: &str) -> Attribute {
        let reg = SchemaRegistry::builtin();
        reg.resource_type(ResourceKind::User)
            .resolve(urn, name)
            .unwrap()
            .attr
            .clone()
    }

    #[test]
    fn string_booleans_become_booleans_in_any_case() {
        let active = user_attr(None, "active");
        for (input, expected) in [("True", true), ("false", false), ("TRUE", true)] {
            let got = attribute_value(&active, &json!(input), Origin::Client).unwrap();
            assert_eq!(got, Some(json!(expected)));
        }
        assert!(attribute_value(&active, &json!("yes"), Origin::Client).is_err());
    }

    #[test]
    fn empty_strings_and_nulls_mean_no_value() {
        let title = user_attr(None, "title");
        assert_eq!(
            attribute_value(&title, &json!(""), Origin::Client).unwrap(),
            None
        );
        assert_eq!(
            attribute_value(&title, &json!(null), Origin::Client).unwrap(),
            None
        );
    }

    #[test]
    fn a_single_object_for_a_multi_valued_attribute_is_a_one_element_list() {
        let emails = user_attr(None, "emails");
        let got = attribute_value(
            &emails,
            &json!({"Value": "a@example.com", "type": "work", "primary": "true"}),
            Origin::Client,
        )
        .unwrap();
        assert_eq!(
            got,
            Some(json!([{"value": "a@example.com", "type": "work", "primary": true}]))
        );
    }

    #[test]
    fn manager_in_every_shape_becomes_an_object_and_empty_clears_it() {
        let manager = user_attr(Some(ENTERPRISE_URN), "manager");
        let want = Some(json!({"value": "m1"}));
        for shape in [
            json!("m1"),
            json!({"value": "m1"}),
            json!({"Value": "m1", "displayName": "ignored, readOnly"}),
            json!([{"value": "m1"}]),
        ] {
            assert_eq!(
                attribute_value(&manager, &shape, Origin::Client).unwrap(),
                want,
                "{shape}"
            );
        }
        for clear in [json!(""), json!({"value": ""}), json!(null), json!([])] {
            assert_eq!(
                attribute_value(&manager, &clear, Origin::Client).unwrap(),
                None,
                "{clear}"
            );
        }
    }

    #[test]
    fn wrong_types_are_invalid_value_without_echoing_the_value() {
        let user_name = user_attr(None, "userName");
        let err = attribute_value(&user_name, &json!(42), Origin::Client).unwrap_err();
        assert_eq!(err.status, 400);
        assert_eq!(err.scim_type, Some(crate::scim::ScimType::InvalidValue));
        assert!(err.detail.contains("userName") && !err.detail.contains("42"));
        let active = user_attr(None, "active");
        assert!(attribute_value(&active, &json!([true, false]), Origin::Client).is_err());
    }
}
