//! Resource documents: from a client body to the canonical stored document, and from the stored
//! document back to the wire (RFC 7643 §3).
//!
//! The stored document holds only client-writable attributes, keyed by their canonical names;
//! extension attributes sit in an object under the extension URN. `schemas`, `id` and `meta`
//! are not stored in it: they are derived when rendering.

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::coerce::{self, Origin};
use super::dialect;
use super::error::{ScimError, ScimResult};
use super::schema::{Mutability, ResourceType, SchemaRegistry};

/// A canonical resource document (attributes only).
pub type Document = Map<String, Value>;

/// Turns a POST or PUT body into a canonical document.
///
/// Read-only attributes (`id`, `meta`, `groups`…) and unknown attributes or schema URNs are
/// ignored (docs/reference/idp-behaviour.md §1 rule 8: Okta PUTs our own GET output back, with
/// `id`, `meta` and `groups`; the Microsoft suite expects misspelled attributes to be ignored).
/// Required attributes are checked by [`check_required`], not here, so PATCH can reuse this.
pub fn from_body(reg: &SchemaRegistry, rt: &ResourceType, body: &Value) -> ScimResult<Document> {
    let Value::Object(input) = body else {
        return Err(ScimError::invalid_syntax(
            "the request body must be a JSON object representing the resource",
        ));
    };
    let input = dialect::normalize_body(reg, rt, input);
    let mut doc = Document::new();
    for (key, value) in &input {
        if key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        if let Some(ext) = rt.extension(key) {
            let Value::Object(ext_in) = value else {
                if value.is_null() {
                    continue;
                }
                return Err(ScimError::invalid_value(format!(
                    "extension \"{}\" must be a JSON object",
                    ext.schema.id
                )));
            };
            let mut ext_out = Map::new();
            for (name, v) in ext_in {
                let Some(attr) = ext.schema.attribute(name) else {
                    continue;
                };
                if attr.mutability == Mutability::ReadOnly {
                    continue;
                }
                if let Some(v) = coerce::attribute_value(attr, v, Origin::Client)? {
                    ext_out.insert(attr.name.clone(), v);
                }
            }
            if !ext_out.is_empty() {
                doc.insert(ext.schema.id.clone(), Value::Object(ext_out));
            }
            continue;
        }
        let Some(resolved) = rt.resolve(None, key) else {
            continue;
        };
        if resolved.attr.mutability == Mutability::ReadOnly {
            continue;
        }
        let Some(v) = coerce::attribute_value(resolved.attr, value, Origin::Client)? else {
            continue;
        };
        match resolved.extension {
            None => {
                doc.insert(resolved.attr.name.clone(), v);
            }
            // An extension attribute given unqualified at the top level: accepted and filed
            // under its schema (RFC 7644 §3.10 lets clients omit the URN when unambiguous).
            Some(urn) => {
                let ext = doc
                    .entry(urn.to_owned())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(ext) = ext {
                    ext.entry(resolved.attr.name.clone()).or_insert(v);
                }
            }
        }
    }
    Ok(doc)
}

/// Re-checks a document we built ourselves (after a PATCH): every value is coerced again, so
/// emptied arrays and objects disappear and a complex value that lost its `value` is dropped.
pub fn recheck(rt: &ResourceType, doc: &Document) -> ScimResult<Document> {
    let mut out = Document::new();
    for (key, value) in doc {
        if let Some(ext) = rt.extension(key) {
            let mut ext_out = Map::new();
            if let Value::Object(ext_in) = value {
                for (name, v) in ext_in {
                    if let Some(attr) = ext.schema.attribute(name) {
                        if let Some(v) = coerce::attribute_value(attr, v, Origin::Stored)? {
                            ext_out.insert(attr.name.clone(), v);
                        }
                    }
                }
            }
            if !ext_out.is_empty() {
                out.insert(ext.schema.id.clone(), Value::Object(ext_out));
            }
        } else if let Some(resolved) = rt.resolve(None, key) {
            if let Some(v) = coerce::attribute_value(resolved.attr, value, Origin::Stored)? {
                out.insert(resolved.attr.name.clone(), v);
            }
        }
    }
    Ok(out)
}

/// Checks that every required attribute has a value (RFC 7643 §2.2, `required`).
pub fn check_required(rt: &ResourceType, doc: &Document) -> ScimResult<()> {
    for attr in rt.core.attributes.iter().filter(|a| a.required) {
        if !doc.contains_key(&attr.name) {
            return Err(ScimError::invalid_value(format!(
                "required attribute \"{}\" is missing or empty",
                attr.name
            )));
        }
    }
    for ext in &rt.extensions {
        let Some(Value::Object(ext_doc)) = doc.get(&ext.schema.id) else {
            if ext.required {
                return Err(ScimError::invalid_value(format!(
                    "required extension \"{}\" is missing",
                    ext.schema.id
                )));
            }
            continue;
        };
        for attr in ext.schema.attributes.iter().filter(|a| a.required) {
            if !ext_doc.contains_key(&attr.name) {
                return Err(ScimError::invalid_value(format!(
                    "required attribute \"{}:{}\" is missing or empty",
                    ext.schema.id, attr.name
                )));
            }
        }
    }
    Ok(())
}

/// Rejects a document in which one multi-valued attribute holds more than `max` values
/// (`limits.max_values_per_attribute`): every filter, PATCH and rendering of the resource
/// pays for each value. Group `members` are rows, not document values, and are not counted.
/// `400 invalidValue` (RFC 7644 §3.12: a value not compatible with the attribute, here its
/// size; the limit is documented in docs/API.md).
pub fn check_value_counts(rt: &ResourceType, doc: &Document, max: usize) -> ScimResult<()> {
    let too_many = |name: &str, n: usize| {
        ScimError::invalid_value(format!(
            "attribute \"{name}\" has {n} values; at most {max} are accepted \
             (limits.max_values_per_attribute)"
        ))
    };
    for (key, value) in doc {
        match value {
            Value::Array(items) if items.len() > max => return Err(too_many(key, items.len())),
            Value::Object(ext) if rt.extension(key).is_some() => {
                for (name, v) in ext {
                    if let Value::Array(items) = v {
                        if items.len() > max {
                            return Err(too_many(name, items.len()));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Rejects a change to an `immutable` attribute that already has a value (RFC 7643 §7).
pub fn check_immutable(rt: &ResourceType, old: &Document, new: &Document) -> ScimResult<()> {
    let scopes = std::iter::once((None, rt.core.attributes.as_slice())).chain(
        rt.extensions
            .iter()
            .map(|e| (Some(e.schema.id.as_str()), e.schema.attributes.as_slice())),
    );
    for (urn, attrs) in scopes {
        let (old_scope, new_scope) = match urn {
            None => (Some(old), Some(new)),
            Some(urn) => (
                old.get(urn).and_then(Value::as_object),
                new.get(urn).and_then(Value::as_object),
            ),
        };
        let Some(old_scope) = old_scope else { continue };
        for attr in attrs
            .iter()
            .filter(|a| a.mutability == Mutability::Immutable)
        {
            if let Some(before) = old_scope.get(&attr.name) {
                if new_scope.and_then(|n| n.get(&attr.name)) != Some(before) {
                    return Err(ScimError::mutability(format!(
                        "attribute \"{}\" is immutable and already has a value",
                        attr.name
                    )));
                }
            }
        }
    }
    Ok(())
}

/// The server-maintained part of a resource (RFC 7643 §3.1 `meta`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// When the resource was created.
    pub created: OffsetDateTime,
    /// When it last changed.
    pub last_modified: OffsetDateTime,
    /// Version counter; rendered as the weak ETag `W/"<n>"`.
    pub version: i64,
    /// The resource's URI.
    pub location: String,
}

/// The weak entity tag of a version (RFC 7644 §3.14).
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// Parses an entity tag sent in `If-Match`/`If-None-Match` (weak or strong) into a version.
pub fn parse_etag(tag: &str) -> Option<i64> {
    let tag = tag.trim();
    let tag = tag.strip_prefix("W/").unwrap_or(tag);
    tag.strip_prefix('"')?.strip_suffix('"')?.parse().ok()
}

/// An `If-Match` precondition on a write (RFC 7232 §3.1), or a Bulk operation's `version`
/// (RFC 7644 §3.7), which means the same.
///
/// RFC 7232 compares `If-Match` tags strongly, but SCIM versions are weak entity tags and
/// RFC 7644 §3.14 has clients send them back in `If-Match`, so `W/"3"` and `"3"` both name
/// version 3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    /// `*`: any current version (the resource must exist).
    Any,
    /// The versions named by a list of entity tags. A tag that is not of our form
    /// (`W/"definitely-stale"`, or not an entity tag at all) names no version, so it matches
    /// nothing: the precondition fails with 412, not 400 (RFC 7232 §3.1: "the condition is
    /// false if none of the listed tags match").
    Versions(Vec<i64>),
}

impl IfMatch {
    /// Reads a header value: `*`, or a comma-separated list of entity tags (RFC 7232 §3.1).
    pub fn parse(value: &str) -> IfMatch {
        if value.trim() == "*" {
            return IfMatch::Any;
        }
        let mut versions = Vec::new();
        let mut rest = value;
        loop {
            rest = rest.trim_start_matches(|c: char| c == ',' || c.is_ascii_whitespace());
            if rest.is_empty() {
                break;
            }
            let tag = rest.strip_prefix("W/").unwrap_or(rest);
            // An opaque tag is quoted and holds no quote (RFC 7232 §2.3), so commas inside
            // it do not separate tags; anything else runs to the next comma.
            let (item, after) = match tag.strip_prefix('"').and_then(|t| t.split_once('"')) {
                Some((opaque, after)) => (Some(opaque), after),
                None => (None, rest.split_once(',').map_or("", |(_, a)| a)),
            };
            if let Some(v) = item.and_then(|o| o.parse().ok()) {
                versions.push(v);
            }
            rest = after;
        }
        IfMatch::Versions(versions)
    }

    /// Whether a resource at `version` meets the precondition.
    pub fn admits(&self, version: i64) -> bool {
        match self {
            IfMatch::Any => true,
            IfMatch::Versions(v) => v.contains(&version),
        }
    }
}

/// Formats a timestamp as RFC 3339 with millisecond precision in UTC.
pub fn format_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let t = t
        .replace_nanosecond(t.millisecond() as u32 * 1_000_000)
        .unwrap_or(t);
    t.format(&Rfc3339).unwrap_or_default()
}

/// Renders a stored document as the full wire resource: `schemas`, `id`, attributes, `meta`.
///
/// `members` is the group's member list when it should be included (Groups only).
pub fn render(
    rt: &ResourceType,
    id: &str,
    doc: &Document,
    meta: &Meta,
    members: Option<Vec<Value>>,
) -> Document {
    let mut out = Map::new();
    let schemas: Vec<Value> = rt
        .schema_urns()
        .filter(|urn| *urn == rt.core.id || doc.contains_key(*urn))
        .map(|urn| Value::String(urn.to_owned()))
        .collect();
    out.insert("schemas".into(), Value::Array(schemas));
    out.insert("id".into(), Value::String(id.to_owned()));
    if let Some(ext_id) = doc.get("externalId") {
        out.insert("externalId".into(), ext_id.clone());
    }
    for (k, v) in doc {
        if k != "externalId" {
            out.insert(k.clone(), v.clone());
        }
    }
    if let Some(members) = members {
        if !members.is_empty() {
            out.insert("members".into(), Value::Array(members));
        }
    }
    let mut m = Map::new();
    m.insert("resourceType".into(), rt.kind.as_str().into());
    m.insert("created".into(), format_time(meta.created).into());
    m.insert(
        "lastModified".into(),
        format_time(meta.last_modified).into(),
    );
    m.insert("location".into(), meta.location.clone().into());
    m.insert("version".into(), etag(meta.version).into());
    out.insert("meta".into(), Value::Object(m));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::schema::{ResourceKind, ENTERPRISE_URN};
    use serde_json::json;

    fn user_doc(body: Value) -> ScimResult<Document> {
        let reg = SchemaRegistry::builtin();
        from_body(&reg, reg.resource_type(ResourceKind::User), &body)
    }

    #[test]
    fn read_only_unknown_and_password_attributes_are_dropped() {
        let doc = user_doc(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:example:unknown"],
            "id": "client-chosen", "meta": {"resourceType": "User"},
            "userName": "bjensen", "password": "kX93mqzA", "groups": [], "favouriteColour": "teal"
        }))
        .unwrap();
        assert_eq!(Value::Object(doc), json!({"userName": "bjensen"}));
    }

    #[test]
    fn attribute_names_are_canonicalised_and_values_kept_verbatim() {
        let doc = user_doc(json!({
            "USERNAME": "Alice@Example.com",
            "phoneNumbers": [{"Value": "+1 (555) 010-9999", "TYPE": "work"}],
            ENTERPRISE_URN: {"Department": "R&D", "Manager": {"Value": "m-1"}}
        }))
        .unwrap();
        assert_eq!(
            Value::Object(doc),
            json!({
                "userName": "Alice@Example.com",
                "phoneNumbers": [{"value": "+1 (555) 010-9999", "type": "work"}],
                ENTERPRISE_URN: {"department": "R&D", "manager": {"value": "m-1"}}
            })
        );
    }

    #[test]
    fn missing_user_name_is_reported_as_invalid_value() {
        let reg = SchemaRegistry::builtin();
        let rt = reg.resource_type(ResourceKind::User);
        let doc = user_doc(json!({"displayName": "No Name"})).unwrap();
        let err = check_required(rt, &doc).unwrap_err();
        assert_eq!(err.status, 400);
        assert!(err.detail.contains("userName"));
    }

    #[test]
    fn etags_round_trip_weak_and_strong() {
        assert_eq!(parse_etag(&etag(7)), Some(7));
        assert_eq!(parse_etag("\"7\""), Some(7));
        assert_eq!(parse_etag("*"), None);
    }

    #[test]
    fn if_match_takes_a_list_and_a_foreign_tag_matches_nothing() {
        assert_eq!(IfMatch::parse(" * "), IfMatch::Any);
        assert!(IfMatch::Any.admits(9));
        assert_eq!(IfMatch::parse(&etag(3)), IfMatch::Versions(vec![3]));
        assert_eq!(
            IfMatch::parse(r#"W/"1", "2" ,W/"x,y", "4""#),
            IfMatch::Versions(vec![1, 2, 4])
        );
        for foreign in [
            r#"W/"definitely-stale""#,
            r#""abc""#,
            "3",
            "W/",
            "",
            r#"W/"5"#,
        ] {
            let m = IfMatch::parse(foreign);
            assert_eq!(m, IfMatch::Versions(vec![]), "{foreign:?}");
            assert!(!m.admits(3) && !m.admits(5), "{foreign:?}");
        }
        assert!(IfMatch::parse(r#"W/"2", W/"3""#).admits(3));
        assert!(!IfMatch::parse(r#"W/"2", W/"3""#).admits(4));
    }

    #[test]
    fn render_lists_only_present_extensions_and_puts_meta_last() {
        let reg = SchemaRegistry::builtin();
        let rt = reg.resource_type(ResourceKind::User);
        let doc = user_doc(json!({"userName": "a", "externalId": "x"})).unwrap();
        let t = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let meta = Meta {
            created: t,
            last_modified: t,
            version: 1,
            location: "https://h/scim/v2/c/Users/1".into(),
        };
        let out = render(rt, "1", &doc, &meta, None);
        let keys: Vec<_> = out.keys().cloned().collect();
        assert_eq!(keys, ["schemas", "id", "externalId", "userName", "meta"]);
        assert_eq!(
            out["schemas"],
            json!(["urn:ietf:params:scim:schemas:core:2.0:User"])
        );
        assert_eq!(out["meta"]["created"], json!("2023-11-14T22:13:20Z"));
    }
}
