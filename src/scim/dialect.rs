//! IdP dialects: the one place where what Entra ID, Okta, OneLogin and others really send is
//! turned into RFC 7643/7644 shapes before validation.
//!
//! Each rule names the IdP and the source (keys of `docs/reference/idp-behaviour.md` §0). Rules
//! that are plain type coercions driven by the schema (string booleans, `""` as no value, a
//! single object for a multi-valued attribute, a bare id for a complex attribute with `value`)
//! live in [`super::coerce`], next to the type they coerce, and are listed here for reference:
//!
//! | docs/reference/idp-behaviour.md §1 rule | where |
//! |---|---|
//! | 2 case-insensitive names and ops | schema lookups; [`super::patch`] op parsing |
//! | 3 string booleans | [`super::coerce::simple_value`] |
//! | 4 path-less PATCH with dotted/URN keys | [`pathless_target`] |
//! | 6 manager shapes | [`super::coerce`] (string, array, `{"value":""}`), [`manager_value`] |
//! | 7 member forms | [`super::patch`] |
//! | 8 unknown and read-only input ignored | [`super::resource::from_body`] |
//! | 18 schema URN aliases | [`normalize_body`] |
//! | 19 empty strings | [`super::coerce::simple_value`] |

use serde_json::{Map, Value};

use super::path::PatchPath;
use super::schema::{ResourceType, SchemaRegistry, ENTERPRISE_URN};

/// Normalises a POST/PUT body: extension objects under legacy URNs are moved to the RFC URN,
/// fully qualified attribute keys are filed under their extension, and OneLogin's `managerId`
/// becomes `value`.
pub fn normalize_body(
    reg: &SchemaRegistry,
    rt: &ResourceType,
    input: &Map<String, Value>,
) -> Map<String, Value> {
    let mut out: Map<String, Value> = Map::with_capacity(input.len());
    for (key, value) in input {
        if !key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:")) {
            let mut v = value.clone();
            // An unqualified `manager` is the enterprise one (RFC 7644 §3.10 lets clients omit
            // the URN); it gets the same OneLogin alias as under the extension URN.
            if is_enterprise_manager(rt, None, key) {
                manager_value(&mut v);
            }
            merge_into(&mut out, key, v);
            continue;
        }
        // OneLogin templates key the enterprise extension under SCIM 1.x or non-standard "2.0"
        // URNs (docs/reference/idp-behaviour.md §4.2, OL-SCHEMA, AUTHENTIK-11249).
        if let Some(urn) = reg.canonical_urn(key) {
            if rt.extension(urn).is_some() {
                let mut v = value.clone();
                if urn == ENTERPRISE_URN {
                    manager_id_alias(&mut v);
                }
                merge_into(&mut out, urn, v);
            }
            continue;
        }
        // `urn:...:User:department` as a key: an attribute qualified by its schema.
        if let Some((urn, attr)) = split_qualified(key) {
            if let Some(urn) = reg.canonical_urn(urn) {
                if rt.extension(urn).is_some() {
                    let mut obj = Map::new();
                    obj.insert(attr.to_owned(), value.clone());
                    let mut v = Value::Object(obj);
                    if urn == ENTERPRISE_URN {
                        manager_id_alias(&mut v);
                    }
                    merge_into(&mut out, urn, v);
                } else if urn.eq_ignore_ascii_case(&rt.core.id) {
                    merge_into(&mut out, attr, value.clone());
                }
            }
        }
    }
    out
}

/// OneLogin's enterprise template sends `"manager": {"managerId": "…"}`
/// (docs/reference/idp-behaviour.md §4.2, OL-SCHEMA); `managerId` is an alias of `manager.value`.
/// `ext` is the enterprise extension object; its `manager` (any case) is normalised by
/// [`manager_value`].
pub fn manager_id_alias(ext: &mut Value) {
    let Some(ext) = ext.as_object_mut() else {
        return;
    };
    if let Some((_, manager)) = ext
        .iter_mut()
        .find(|(k, _)| k.eq_ignore_ascii_case("manager"))
    {
        manager_value(manager);
    }
}

/// A value written to the enterprise `manager`, wherever it comes from (POST/PUT body, PATCH
/// path or path-less value): OneLogin's `managerId` becomes `value`
/// (docs/reference/idp-behaviour.md §4.2, OL-SCHEMA, OL-KB), in an object or in the one-element
/// array Entra sends (§2.6). A `managerId` next to a `value` is dropped: `value` wins. Without
/// this, a OneLogin-shaped manager would lose its id in coercion and a PATCH with it would clear
/// the manager.
pub fn manager_value(manager: &mut Value) {
    match manager {
        Value::Object(obj) => {
            let has_value = obj.keys().any(|k| k.eq_ignore_ascii_case("value"));
            if let Some(key) = obj
                .keys()
                .find(|k| k.eq_ignore_ascii_case("managerId"))
                .cloned()
            {
                let id = obj.remove(&key).unwrap_or(Value::Null);
                if !has_value {
                    obj.insert("value".into(), id);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(manager_value),
        _ => {}
    }
}

/// Whether `(extension, name)` names the enterprise `manager` of this resource type; an
/// unqualified name is resolved the way [`ResourceType::resolve`] does.
pub fn is_enterprise_manager(rt: &ResourceType, ext: Option<&str>, name: &str) -> bool {
    let ext = match ext {
        Some(urn) => Some(urn),
        None => rt.resolve(None, name).and_then(|r| r.extension),
    };
    ext == Some(ENTERPRISE_URN) && name.eq_ignore_ascii_case("manager")
}

/// Splits `urn:…:Type:attr[.sub]` into the URN and the attribute part, at the last `:`.
pub fn split_qualified(key: &str) -> Option<(&str, &str)> {
    let head = key.split('[').next().unwrap_or(key);
    let idx = head.rfind(':')?;
    Some((&key[..idx], &key[idx + 1..]))
}

/// What one key of a path-less PATCH `add`/`replace` value targets.
#[derive(Debug, Clone, PartialEq)]
pub enum PathlessTarget {
    /// The key is an extension schema URN (any alias): its value is that extension's object.
    Extension(String),
    /// The key is an attribute path.
    Path(PatchPath),
    /// `schemas`, or a key that is not an attribute path: it names no attribute and is ignored
    /// like any unknown attribute (docs/reference/idp-behaviour.md §1 rule 8).
    Ignore,
}

/// Classifies a key of a path-less PATCH value.
///
/// RFC 7644 §3.5.2.1/§3.5.2.3 say the keys are attribute names. Entra with
/// `aadOptscim062020` also sends dotted keys (`"name.givenName"`) and URN-qualified keys
/// (`"urn:…:enterprise:2.0:User:department"`, even `"urn:…:User:manager"`) in one path-less
/// `replace` (docs/reference/idp-behaviour.md §1 rule 4, E3; MS-COMPAT, MSQA-1435791, SCIMSDK PR
/// #294), so every key is read as a PATCH path. No key is ever stored under its literal text: a
/// dotted or qualified key becomes the attribute it names.
pub fn pathless_target(reg: &SchemaRegistry, rt: &ResourceType, key: &str) -> PathlessTarget {
    if key.eq_ignore_ascii_case("schemas") {
        return PathlessTarget::Ignore;
    }
    if let Some(urn) = reg.canonical_urn(key) {
        return match rt.extension(urn) {
            Some(ext) => PathlessTarget::Extension(ext.schema.id.clone()),
            None => PathlessTarget::Ignore,
        };
    }
    match PatchPath::parse(key) {
        Ok(path) => PathlessTarget::Path(path),
        Err(_) => PathlessTarget::Ignore,
    }
}

fn merge_into(out: &mut Map<String, Value>, key: &str, value: Value) {
    if let Some(existing) = out.get_mut(key) {
        if let (Value::Object(a), Value::Object(b)) = (existing, &value) {
            for (k, v) in b {
                a.entry(k.clone()).or_insert_with(|| v.clone());
            }
            return;
        }
    }
    out.insert(key.to_owned(), value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::schema::ResourceKind;
    use serde_json::json;

    #[test]
    fn onelogin_scim1_extension_and_manager_id_become_rfc_shapes() {
        let reg = SchemaRegistry::builtin();
        let rt = reg.resource_type(ResourceKind::User);
        let body = json!({
            "schemas": ["urn:scim:schemas:core:1.0", "urn:scim:schemas:extension:enterprise:1.0"],
            "userName": "x",
            "urn:scim:schemas:extension:enterprise:1.0": {
                "department": "Sales", "manager": {"managerId": "E7", "displayName": "Boss"}}
        });
        let out = normalize_body(&reg, rt, body.as_object().unwrap());
        assert_eq!(
            out[ENTERPRISE_URN],
            json!({"department": "Sales", "manager": {"displayName": "Boss", "value": "E7"}})
        );
    }

    #[test]
    fn qualified_attribute_keys_are_filed_under_their_extension() {
        let reg = SchemaRegistry::builtin();
        let rt = reg.resource_type(ResourceKind::User);
        let body = json!({
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "R&D",
            "urn:ietf:params:scim:schemas:core:2.0:User:title": "Eng"
        });
        let out = normalize_body(&reg, rt, body.as_object().unwrap());
        assert_eq!(
            Value::Object(out),
            json!({ENTERPRISE_URN: {"department": "R&D"}, "title": "Eng"})
        );
    }

    #[test]
    fn onelogin_manager_id_becomes_value_in_every_manager_shape() {
        for (mut input, want) in [
            (
                json!({"managerId": "E7", "displayName": "Boss"}),
                json!({"displayName": "Boss", "value": "E7"}),
            ),
            (json!({"ManagerID": "E7"}), json!({"value": "E7"})),
            (json!([{"managerId": "E7"}]), json!([{"value": "E7"}])),
            // `value` wins over a stale alias.
            (
                json!({"value": "V1", "managerId": "E7"}),
                json!({"value": "V1"}),
            ),
            // Other shapes are left to coercion.
            (json!("E7"), json!("E7")),
            (json!({"value": ""}), json!({"value": ""})),
        ] {
            manager_value(&mut input);
            assert_eq!(input, want);
        }
    }

    #[test]
    fn an_unqualified_top_level_manager_gets_the_onelogin_alias_too() {
        let reg = SchemaRegistry::builtin();
        let rt = reg.resource_type(ResourceKind::User);
        let body = json!({"userName": "x", "manager": {"managerId": "E7"}});
        let out = normalize_body(&reg, rt, body.as_object().unwrap());
        assert_eq!(out["manager"], json!({"value": "E7"}));
        // Only the enterprise `manager` of Users: a Group has none, nothing is touched.
        let groups = reg.resource_type(ResourceKind::Group);
        let body = json!({"displayName": "g", "manager": {"managerId": "E7"}});
        let out = normalize_body(&reg, groups, body.as_object().unwrap());
        assert_eq!(out["manager"], json!({"managerId": "E7"}));
    }

    #[test]
    fn enterprise_manager_is_recognised_qualified_or_not_in_any_case() {
        let reg = SchemaRegistry::builtin();
        let rt = reg.resource_type(ResourceKind::User);
        assert!(is_enterprise_manager(rt, None, "manager"));
        assert!(is_enterprise_manager(rt, None, "Manager"));
        assert!(is_enterprise_manager(rt, Some(ENTERPRISE_URN), "MANAGER"));
        assert!(!is_enterprise_manager(rt, None, "department"));
        assert!(!is_enterprise_manager(
            rt,
            Some("urn:example:other"),
            "manager"
        ));
    }

    #[test]
    fn pathless_keys_are_paths_extensions_or_ignored() {
        let reg = SchemaRegistry::builtin();
        let rt = reg.resource_type(ResourceKind::User);
        let path = |key: &str| match pathless_target(&reg, rt, key) {
            PathlessTarget::Path(p) => (p.attr.urn, p.attr.name, p.attr.sub),
            other => panic!("{key}: {other:?}"),
        };
        assert_eq!(path("displayName"), (None, "displayName".into(), None));
        assert_eq!(
            path("name.givenName"),
            (None, "name".into(), Some("givenName".into()))
        );
        assert_eq!(
            path("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber"),
            (Some(ENTERPRISE_URN.into()), "employeeNumber".into(), None)
        );
        for ext in [ENTERPRISE_URN, "urn:scim:schemas:extension:enterprise:1.0"] {
            assert_eq!(
                pathless_target(&reg, rt, ext),
                PathlessTarget::Extension(ENTERPRISE_URN.into())
            );
        }
        for ignored in [
            "schemas",
            "Schemas",
            "not a path",
            "urn:ietf:params:scim:schemas:core:2.0:Group",
        ] {
            assert_eq!(
                pathless_target(&reg, rt, ignored),
                PathlessTarget::Ignore,
                "{ignored}"
            );
        }
    }
}
