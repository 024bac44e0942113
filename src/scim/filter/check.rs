//! Validation of a parsed filter against a resource type's schema.
//!
//! RFC 7644 §3.4.2.2 makes a filter that names an unknown attribute or applies an operator
//! to a type it does not suit an `invalidFilter` (400), rather than a silently empty result.
//! The rules:
//!
//! * every path resolves through [`ResourceType::resolve`], sub-attributes through
//!   [`Attribute::sub`]; inside `attr[...]` names are sub-attributes of `attr` (or `value`,
//!   the element itself, for a multi-valued simple `attr`); value filters need a multi-valued
//!   or complex attribute and do not nest;
//! * a comparison naming a complex attribute without a sub-attribute (`emails co "x"`, or
//!   Entra's `manager eq "id"`, docs/reference/idp-behaviour.md E13) applies to its `value`
//!   sub-attribute; without one it is an error;
//! * `gt`/`ge`/`lt`/`le` on boolean or binary, and `co`/`sw`/`ew` on boolean or numbers, are
//!   errors (§3.4.2.2);
//! * the literal must suit the type: booleans take `true`/`false` (or the strings "true" and
//!   "false", which Entra sends), numbers a number, strings, references and binary a string,
//!   dateTime an RFC 3339 string (any string for `co`/`sw`/`ew`, which compare text);
//! * `null` goes with `eq` and `ne` only, on any type.

use super::compare::{literal_bool, parse_datetime};
use super::{CompValue, CompareOp, Filter};
use crate::scim::error::{ScimError, ScimResult};
use crate::scim::path::AttrPath;
use crate::scim::schema::{AttrType, Attribute, ResourceType};

/// See the module documentation.
pub(super) fn check(filter: &Filter, rt: &ResourceType) -> ScimResult<()> {
    match filter {
        Filter::And(l, r) | Filter::Or(l, r) => {
            check(l, rt)?;
            check(r, rt)
        }
        Filter::Not(inner) => check(inner, rt),
        Filter::Present(path) => resolve(rt, path).map(|_| ()),
        Filter::Compare(path, op, value) => {
            let attr = comparable(resolve(rt, path)?, path)?;
            check_comparison(attr, path, *op, value)
        }
        Filter::ValuePath(path, inner) => {
            let attr = resolve(rt, path)?;
            if path.sub.is_some() || !(attr.multi_valued || attr.is_complex()) {
                return Err(ScimError::invalid_filter(format!(
                    "\"{path}\" cannot take a value filter: only a multi-valued or complex \
                     attribute can (RFC 7644 §3.4.2.2)"
                )));
            }
            check_inner(inner, attr, path)
        }
    }
}

/// A filter inside `parent[...]`.
fn check_inner(filter: &Filter, parent: &Attribute, parent_path: &AttrPath) -> ScimResult<()> {
    match filter {
        Filter::And(l, r) | Filter::Or(l, r) => {
            check_inner(l, parent, parent_path)?;
            check_inner(r, parent, parent_path)
        }
        Filter::Not(inner) => check_inner(inner, parent, parent_path),
        Filter::Present(path) => resolve_sub(parent, parent_path, path).map(|_| ()),
        Filter::Compare(path, op, value) => {
            let attr = comparable(resolve_sub(parent, parent_path, path)?, path)?;
            check_comparison(attr, path, *op, value)
        }
        Filter::ValuePath(..) => Err(ScimError::invalid_filter(format!(
            "the value filter of \"{parent_path}\" contains another value filter \
             (RFC 7644 §3.4.2.2 does not allow nesting)"
        ))),
    }
}

/// The attribute a top-level path names (the sub-attribute, if the path has one).
fn resolve<'r>(rt: &'r ResourceType, path: &AttrPath) -> ScimResult<&'r Attribute> {
    let unknown = || ScimError::invalid_filter(format!("unknown attribute \"{path}\" in filter"));
    let attr = rt
        .resolve(path.urn.as_deref(), &path.name)
        .ok_or_else(unknown)?
        .attr;
    match &path.sub {
        None => Ok(attr),
        Some(sub) if attr.is_complex() => attr.sub(sub).ok_or_else(unknown),
        Some(_) => Err(unknown()),
    }
}

/// The attribute a path inside `parent[...]` names.
fn resolve_sub<'r>(
    parent: &'r Attribute,
    parent_path: &AttrPath,
    path: &AttrPath,
) -> ScimResult<&'r Attribute> {
    let unknown = || {
        ScimError::invalid_filter(format!(
            "unknown attribute \"{path}\" in filter: inside \"{parent_path}[...]\" names are \
             sub-attributes of \"{parent_path}\""
        ))
    };
    if path.urn.is_some() || path.sub.is_some() {
        return Err(unknown());
    }
    if parent.is_complex() {
        parent.sub(&path.name).ok_or_else(unknown)
    } else if path.name.eq_ignore_ascii_case("value") {
        Ok(parent)
    } else {
        Err(unknown())
    }
}

/// The attribute a comparison applies to: a complex attribute stands for its `value`.
fn comparable<'a>(attr: &'a Attribute, path: &AttrPath) -> ScimResult<&'a Attribute> {
    if !attr.is_complex() {
        return Ok(attr);
    }
    // RFC 7644 §3.4.2.2's example `emails co "example.com"`; Entra's `manager eq "id"`
    // (docs/reference/idp-behaviour.md E13).
    attr.sub("value").ok_or_else(|| {
        let example = attr
            .sub_attributes
            .first()
            .map_or_else(String::new, |s| format!(", e.g. \"{path}.{}\"", s.name));
        ScimError::invalid_filter(format!(
            "\"{path}\" is a complex attribute without a \"value\" sub-attribute; compare one \
             of its sub-attributes{example}"
        ))
    })
}

/// Operator and literal against the attribute's type.
fn check_comparison(
    attr: &Attribute,
    path: &AttrPath,
    op: CompareOp,
    value: &CompValue,
) -> ScimResult<()> {
    let fail = |msg: String| Err(ScimError::invalid_filter(msg));
    let type_name = type_name(attr.attr_type);
    if let CompValue::Null = value {
        return if matches!(op, CompareOp::Eq | CompareOp::Ne) {
            Ok(())
        } else {
            fail(format!(
                "\"{path} {op} null\": null can only be compared with eq or ne"
            ))
        };
    }
    let ordering = matches!(
        op,
        CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le
    );
    let substring = matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew);
    let bad_op = match attr.attr_type {
        AttrType::Boolean => ordering || substring,
        AttrType::Binary => ordering,
        AttrType::Integer | AttrType::Decimal => substring,
        _ => false,
    };
    if bad_op {
        return fail(format!(
            "operator \"{op}\" cannot be used with the {type_name} attribute \"{path}\" \
             (RFC 7644 §3.4.2.2)"
        ));
    }
    let literal_ok = match attr.attr_type {
        AttrType::Boolean => literal_bool(value).is_some(),
        AttrType::Integer | AttrType::Decimal => matches!(value, CompValue::Number(_)),
        AttrType::String | AttrType::Reference | AttrType::Binary => {
            matches!(value, CompValue::String(_))
        }
        AttrType::DateTime => match value {
            CompValue::String(_) if substring => true,
            CompValue::String(s) => {
                if parse_datetime(s).is_none() {
                    return fail(format!(
                        "the value compared with the dateTime attribute \"{path}\" is not an \
                         RFC 3339 date-time such as \"2011-05-13T04:42:34Z\""
                    ));
                }
                true
            }
            _ => false,
        },
        AttrType::Complex => false,
    };
    if !literal_ok {
        let want = match attr.attr_type {
            AttrType::Boolean => "true or false",
            AttrType::Integer | AttrType::Decimal => "a number",
            AttrType::DateTime => "a quoted RFC 3339 date-time",
            _ => "a quoted string",
        };
        return fail(format!(
            "\"{path}\" is a {type_name} attribute; compare it with {want}"
        ));
    }
    Ok(())
}

fn type_name(t: AttrType) -> &'static str {
    match t {
        AttrType::String => "string",
        AttrType::Boolean => "boolean",
        AttrType::Decimal => "decimal",
        AttrType::Integer => "integer",
        AttrType::DateTime => "dateTime",
        AttrType::Binary => "binary",
        AttrType::Reference => "reference",
        AttrType::Complex => "complex",
    }
}

#[cfg(test)]
mod tests {
    use super::super::{check, parse};
    use crate::scim::schema::{ResourceKind, SchemaRegistry};

    fn check_user(filter: &str) -> Result<(), String> {
        let reg = SchemaRegistry::builtin();
        let f = parse(filter).map_err(|e| format!("parse: {e}"))?;
        check(&f, reg.resource_type(ResourceKind::User)).map_err(|e| e.detail)
    }

    fn check_group(filter: &str) -> Result<(), String> {
        let reg = SchemaRegistry::builtin();
        let f = parse(filter).map_err(|e| format!("parse: {e}"))?;
        check(&f, reg.resource_type(ResourceKind::Group)).map_err(|e| e.detail)
    }

    #[test]
    fn valid_filters_over_core_common_and_extension_attributes_pass() {
        for f in [
            r#"userName Eq "john""#,
            r#"USERNAME eq "john" and id eq "x" and externalId sw "e""#,
            r#"title pr and userType eq "Employee""#,
            r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
            r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
            r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
            r#"meta.lastModified sw "2011-05""#,
            r#"meta.version eq "W/\"1\"""#,
            "active eq true and active ne FALSE",
            r#"active eq "True""#,
            r#"manager eq "id""#,
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "id""#,
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "u""#,
            r#"department eq "Sales" and name.givenName ew "n""#,
            "emails.primary eq true and name pr and emails pr and x509Certificates.value pr",
            "x509Certificates.value eq \"AAA=\"",
            r#"profileUrl sw "https://""#,
            "title eq null and emails ne null and manager eq null",
            r#"name[givenName eq "x"] and manager[value pr]"#,
            r#"groups.$ref pr and emails[not (primary eq true)]"#,
        ] {
            assert_eq!(check_user(f), Ok(()), "{f}");
        }
        assert_eq!(
            check_group(r#"members[value eq "2819c223"] and members eq "x""#),
            Ok(())
        );
        assert_eq!(check_group(r#"displayName eq "g""#), Ok(()));
    }

    #[test]
    fn unknown_attributes_are_named_in_the_error() {
        for (f, name) in [
            (r#"favouriteColour eq "x""#, "favouriteColour"),
            (r#"name.nickName eq "x""#, "name.nickName"),
            (r#"userName.value eq "x""#, "userName.value"),
            (
                r#"urn:example:other:User:userName eq "x""#,
                "urn:example:other:User:userName",
            ),
            (r#"emails[kind eq "x"]"#, "kind"),
            (r#"emails[value.x eq "x"]"#, "value.x"),
            ("members pr", "members"),
        ] {
            let err = check_user(f).unwrap_err();
            assert!(
                err.starts_with(&format!("unknown attribute \"{name}\" in filter")),
                "{f}: {err}"
            );
        }
        assert!(check_group("userName pr").is_err());
    }

    #[test]
    fn operators_that_do_not_suit_the_type_are_rejected() {
        for (f, needle) in [
            (
                "active gt true",
                "operator \"gt\" cannot be used with the boolean",
            ),
            ("active co true", "operator \"co\""),
            ("emails.primary le false", "boolean"),
            (r#"x509Certificates.value lt "AA==""#, "binary"),
            ("title gt null", "null can only be compared with eq or ne"),
            ("active pr and meta.created co null", "null can only"),
        ] {
            let err = check_user(f).unwrap_err();
            assert!(err.contains(needle), "{f}: {err}");
        }
    }

    #[test]
    fn literals_that_do_not_suit_the_type_are_rejected() {
        for (f, needle) in [
            ("active eq 1", "compare it with true or false"),
            (r#"active eq "yes""#, "true or false"),
            (
                "userName eq 5",
                "a string attribute; compare it with a quoted string",
            ),
            ("userName eq true", "quoted string"),
            ("meta.lastModified gt 2011", "quoted RFC 3339"),
            (
                r#"meta.lastModified gt "2011-05-13""#,
                "not an RFC 3339 date-time",
            ),
            (r#"meta.created eq "yesterday""#, "not an RFC 3339"),
            ("profileUrl eq false", "reference attribute"),
        ] {
            let err = check_user(f).unwrap_err();
            assert!(err.contains(needle), "{f}: {err}");
        }
    }

    #[test]
    fn numbers_take_numbers_and_no_substring_operators() {
        let ext = r#"{"id":"urn:example:n:2.0:User","attributes":[
            {"name":"level","type":"integer"},{"name":"score","type":"decimal"},
            {"name":"skills","type":"string","multiValued":true}]}"#;
        let docs = crate::scim::schema::BUILTIN_SCHEMAS
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .chain([("n.json".to_string(), ext.to_string())]);
        let reg = SchemaRegistry::from_documents(docs).unwrap();
        let user = reg.resource_type(ResourceKind::User);
        let run = |f: &str| check(&parse(f).unwrap(), user).map_err(|e| e.detail);
        assert_eq!(
            run("level gt 3 and score le -1.5e2 and level eq null"),
            Ok(())
        );
        assert_eq!(run(r#"skills[value eq "rust"] and skills co "go""#), Ok(()));
        assert!(run(r#"level eq "3""#)
            .unwrap_err()
            .contains("compare it with a number"));
        assert!(run("score sw 1").unwrap_err().contains("decimal"));
        assert!(run(r#"skills[type eq "x"]"#)
            .unwrap_err()
            .contains("unknown attribute"));
    }

    #[test]
    fn complex_attributes_without_a_value_sub_attribute_cannot_be_compared() {
        let err = check_user(r#"name eq "x""#).unwrap_err();
        assert!(err.contains("without a \"value\" sub-attribute"), "{err}");
        assert!(err.contains("e.g. \"name.formatted\""), "{err}");
        assert!(check_user(r#"meta eq "x""#).is_err());
        assert!(check_user("name eq null").is_err());
    }

    #[test]
    fn value_filters_need_a_multi_valued_or_complex_attribute() {
        let err = check_user(r#"userName[value eq "x"]"#).unwrap_err();
        assert!(err.contains("cannot take a value filter"), "{err}");
    }
}
