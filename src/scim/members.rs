//! Group members as the protocol sees them: references to Users (or Groups) by SCIM id.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::coerce::{self, Origin};
use super::error::{ScimError, ScimResult};
use super::filter::Filter;
use super::schema::Attribute;

/// One member reference as sent by the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRef {
    /// The member's SCIM id.
    pub value: String,
    /// `User` or `Group`, when the client said.
    pub kind: Option<String>,
    /// The display name the client sent, echoed back verbatim.
    pub display: Option<String>,
}

/// A membership change produced by a PATCH or a PUT.
#[derive(Debug, Clone, PartialEq)]
pub enum MemberOp {
    /// Add these members (existing ones are kept).
    Add(Vec<MemberRef>),
    /// Remove the members with these ids.
    Remove(Vec<String>),
    /// Remove the members matching a filter relative to a member (`members[type eq "Group"]`).
    RemoveWhere(Filter),
    /// Remove every member.
    RemoveAll,
    /// Make the membership exactly this list.
    Replace(Vec<MemberRef>),
}

/// Parses a `members` value (array, single object, or bare id) into references.
pub fn member_refs(members_attr: &Attribute, value: &Value) -> ScimResult<Vec<MemberRef>> {
    let value = display_name_as_display(value);
    let Some(Value::Array(items)) =
        coerce::attribute_value(members_attr, value.as_ref(), Origin::Client)?
    else {
        return Ok(Vec::new());
    };
    let mut out: Vec<MemberRef> = Vec::with_capacity(items.len());
    let mut seen = std::collections::HashSet::with_capacity(items.len());
    for item in &items {
        let Some(obj) = item.as_object() else {
            continue;
        };
        let value = match obj.get("value") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => {
                return Err(ScimError::invalid_value(
                    "each member needs a \"value\" with the member's id",
                ))
            }
        };
        if !seen.insert(value.clone()) {
            continue;
        }
        out.push(MemberRef {
            value,
            kind: obj.get("type").and_then(Value::as_str).map(str::to_owned),
            display: obj
                .get("display")
                .and_then(Value::as_str)
                .map(str::to_owned),
        });
    }
    Ok(out)
}

/// `displayName` is not a sub-attribute of `members` (RFC 7643 §4.2), but Microsoft's SCIM
/// reference test collection names the members it adds with it and expects to read the name back
/// (docs/API.md "Deliberate deviations and choices"): in a member object without `display`, it is
/// read as `display` before the unknown sub-attribute would be dropped. Keys are matched ignoring
/// case (RFC 7643 §2.1).
fn display_name_as_display(value: &Value) -> Cow<'_, Value> {
    let key = |obj: &Map<String, Value>, name: &str| {
        obj.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
    };
    let needs = |v: &Value| {
        v.as_object()
            .is_some_and(|o| key(o, "display").is_none() && key(o, "displayName").is_some())
    };
    let fix = |v: &Value| -> Value {
        let Some(obj) = v.as_object().filter(|_| needs(v)) else {
            return v.clone();
        };
        let mut obj = obj.clone();
        if let Some(k) = key(&obj, "displayName") {
            if let Some(name) = obj.remove(&k) {
                obj.insert("display".to_owned(), name);
            }
        }
        Value::Object(obj)
    };
    match value {
        Value::Array(items) if items.iter().any(needs) => {
            Cow::Owned(Value::Array(items.iter().map(fix).collect()))
        }
        Value::Object(_) if needs(value) => Cow::Owned(fix(value)),
        _ => Cow::Borrowed(value),
    }
}

/// Renders a member for a Group response: `value`, `$ref`, `type`, and `display` if we have it.
pub fn render_member(value: &str, kind: &str, display: Option<&str>, base: &str) -> Value {
    let mut m = Map::new();
    m.insert("value".into(), value.into());
    let endpoint = if kind == "Group" { "Groups" } else { "Users" };
    m.insert("$ref".into(), format!("{base}/{endpoint}/{value}").into());
    m.insert("type".into(), kind.into());
    if let Some(d) = display {
        m.insert("display".into(), d.into());
    }
    Value::Object(m)
}
