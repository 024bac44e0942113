//! Rule sources: a SCIM attribute path, parsed with the PATCH path grammar
//! ([`PatchPath::parse`]), resolved once against the schema registry at start, then read
//! from each document.
//!
//! Everything a PATCH path can say is a valid source: `title`, `name.givenName`,
//! `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department`,
//! `phoneNumbers[type eq "mobile"].value`, `addresses[type eq "work"].locality`, and
//! attributes of custom extension schemas dropped into `schemas_dir`. Value filters are
//! decided by the filter module's reference evaluator ([`filter::matches_element`]), so a
//! source selects exactly what the same filter selects in a SCIM query.

use serde_json::{Map, Value};

use super::InvalidRules;
use crate::scim::filter::{self, Filter};
use crate::scim::path::PatchPath;
use crate::scim::resource::Document;
use crate::scim::schema::{Attribute, ResourceKind, SchemaRegistry};

/// A compiled source path.
#[derive(Debug, Clone)]
pub struct Source {
    /// The path as written in the configuration (for `mapping preview` and errors).
    pub text: String,
    /// Canonical URN of the extension holding the attribute; `None` for core attributes.
    ext: Option<String>,
    /// The attribute (canonical spelling).
    attr: Attribute,
    /// Value filter applied to the elements of a multi-valued attribute.
    filter: Option<Filter>,
    /// Sub-attribute read from each selected element.
    sub: Option<Attribute>,
}

impl Source {
    /// Parses and resolves `text` against the User resource type. Errors name the path and
    /// say what is wrong; they are reported at start and by `check-config`.
    pub fn compile(text: &str, reg: &SchemaRegistry) -> Result<Source, InvalidRules> {
        let err = |problem: String| InvalidRules::new(problem).at(format!("source {text:?}"));
        let path = PatchPath::parse(text).map_err(|e| err(e.detail))?;
        let rt = reg.resource_type(ResourceKind::User);
        let urn = match &path.attr.urn {
            Some(u) => Some(
                reg.canonical_urn(u)
                    .ok_or_else(|| err(format!("no schema {u} is loaded (check schemas_dir)")))?,
            ),
            None => None,
        };
        let resolved = rt.resolve(urn, &path.attr.name).ok_or_else(|| {
            err(format!(
                "the User schema has no attribute {:?}",
                path.attr.name
            ))
        })?;
        let attr = resolved.attr.clone();
        let sub_name = path.sub.as_deref().or(path.attr.sub.as_deref());
        let sub = match sub_name {
            Some(s) => Some(
                attr.sub(s)
                    .cloned()
                    .ok_or_else(|| err(format!("{:?} has no sub-attribute {s:?}", attr.name)))?,
            ),
            None => None,
        };
        if path.filter.is_some() && !attr.multi_valued {
            return Err(err(format!(
                "a value filter needs a multi-valued attribute, and {:?} is not",
                attr.name
            )));
        }
        Ok(Source {
            text: text.to_owned(),
            ext: resolved.extension.map(str::to_owned),
            attr,
            filter: path.filter,
            sub,
        })
    }

    /// The values the path denotes in `doc`, as text, in document order. Strings are taken
    /// as they are (empty ones dropped: IdPs send `""` for "no value"), numbers and booleans
    /// as their JSON text. A complex attribute read without a sub-attribute yields its
    /// `value` sub-attribute (`manager` → `manager.value`), as filters compare it.
    pub fn read(&self, doc: &Document) -> Vec<String> {
        let container = match &self.ext {
            Some(urn) => lookup(doc, urn).and_then(Value::as_object),
            None => Some(doc),
        };
        let Some(value) = container.and_then(|c| lookup(c, &self.attr.name)) else {
            return Vec::new();
        };
        let elements: Vec<&Value> = match value {
            Value::Array(items) if self.attr.multi_valued => items.iter().collect(),
            v => vec![v],
        };
        let mut out = Vec::new();
        for element in elements {
            if let Some(f) = &self.filter {
                if !filter::matches_element(f, &self.attr, element) {
                    continue;
                }
            }
            let picked = match (&self.sub, self.attr.is_complex()) {
                (Some(sub), _) => element.as_object().and_then(|o| lookup(o, &sub.name)),
                (None, true) => element.as_object().and_then(|o| lookup(o, "value")),
                (None, false) => Some(element),
            };
            match picked {
                Some(Value::Array(items)) => out.extend(items.iter().filter_map(scalar)),
                Some(v) => out.extend(scalar(v)),
                None => {}
            }
        }
        out
    }
}

/// A scalar as text; `None` for null, empty strings and structures.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A member by key: exactly, else case-insensitively (stored documents use canonical names,
/// but an operator-supplied extension may differ in case).
fn lookup<'d>(obj: &'d Map<String, Value>, key: &str) -> Option<&'d Value> {
    obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Document {
        json!({
            "userName": "ada@example.com",
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "title": "Analyst",
            "active": true,
            "phoneNumbers": [
                {"value": "+44 1", "type": "work"},
                {"value": "+44 7", "type": "mobile"}
            ],
            "addresses": [{"type": "work", "locality": "London"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "department": "Engines", "manager": {"value": "m-1"}
            }
        })
        .as_object()
        .cloned()
        .unwrap_or_default()
    }

    fn read(path: &str) -> Vec<String> {
        let reg = SchemaRegistry::builtin();
        Source::compile(path, &reg)
            .unwrap_or_else(|e| panic!("{e}"))
            .read(&doc())
    }

    #[test]
    fn simple_sub_extension_and_filtered_paths_are_read() {
        assert_eq!(read("title"), ["Analyst"]);
        assert_eq!(read("name.givenName"), ["Ada"]);
        assert_eq!(read("active"), ["true"]);
        assert_eq!(
            read("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"),
            ["Engines"]
        );
        assert_eq!(
            read("department"),
            ["Engines"],
            "unqualified extension name"
        );
        assert_eq!(read("phoneNumbers[type eq \"mobile\"].value"), ["+44 7"]);
        assert_eq!(read("phoneNumbers.value"), ["+44 1", "+44 7"]);
        assert_eq!(read("addresses[type eq \"work\"].locality"), ["London"]);
        assert_eq!(
            read("manager"),
            ["m-1"],
            "a complex attribute reads its value"
        );
        assert!(read("nickName").is_empty());
    }

    #[test]
    fn legacy_urns_resolve_and_unknown_paths_are_refused_with_the_reason() {
        assert_eq!(
            read("urn:scim:schemas:extension:enterprise:1.0:department"),
            ["Engines"]
        );
        let reg = SchemaRegistry::builtin();
        for (bad, why) in [
            ("shoeSize", "no attribute"),
            ("name.nickname", "no sub-attribute"),
            ("title[value eq \"x\"]", "multi-valued"),
            ("emails[type eq", "path"),
            ("urn:example:nope:User:x", "no schema"),
        ] {
            let e = Source::compile(bad, &reg).expect_err(bad).to_string();
            assert!(e.contains(why) || e.contains(bad), "{bad}: {e}");
        }
    }
}
