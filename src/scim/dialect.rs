//! IdP dialects: the one place where what Entra ID, Okta, OneLogin and others really send is
//! turned into RFC 7643/7644 shapes before validation.
//!
//! Each rule names the IdP and the source (keys of `shared/reference/idp-quirks.md` §0). Rules
//! that are plain type coercions driven by the schema (string booleans, `""` as no value, a
//! single object for a multi-valued attribute, a bare id for a complex attribute with `value`)
//! live in [`super::coerce`], next to the type they coerce, and are listed here for reference:
//!
//! | idp-quirks §1 rule | where |
//! |---|---|
//! | 2 case-insensitive names and ops | schema lookups; [`super::patch`] op parsing |
//! | 3 string booleans | [`super::coerce::simple_value`] |
//! | 4 path-less PATCH with dotted/URN keys | [`pathless_keys`] |
//! | 6 manager shapes | [`super::coerce`] (string, array, `{"value":""}`), [`manager_id_alias`] |
//! | 7 member forms | [`super::patch`] |
//! | 8 unknown and read-only input ignored | [`super::resource::from_body`] |
//! | 18 schema URN aliases | [`normalize_body`] |
//! | 19 empty strings | [`super::coerce::simple_value`] |

use serde_json::{Map, Value};

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
            merge_into(&mut out, key, value.clone());
            continue;
        }
        // OneLogin templates key the enterprise extension under SCIM 1.x or non-standard "2.0"
        // URNs (idp-quirks §4.2, OL-SCHEMA, AUTHENTIK-11249).
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

/// OneLogin's enterprise template sends `"manager": {"managerId": "…"}` (idp-quirks §4.2,
/// OL-SCHEMA); `managerId` is an alias of `manager.value`.
pub fn manager_id_alias(ext: &mut Value) {
    let Some(ext) = ext.as_object_mut() else {
        return;
    };
    let Some((_, manager)) = ext
        .iter_mut()
        .find(|(k, _)| k.eq_ignore_ascii_case("manager"))
    else {
        return;
    };
    let Some(manager) = manager.as_object_mut() else {
        return;
    };
    let has_value = manager.keys().any(|k| k.eq_ignore_ascii_case("value"));
    if let Some(key) = manager
        .keys()
        .find(|k| k.eq_ignore_ascii_case("managerId"))
        .cloned()
    {
        let id = manager.remove(&key).unwrap_or(Value::Null);
        if !has_value {
            manager.insert("value".into(), id);
        }
    }
}

/// Splits `urn:…:Type:attr[.sub]` into the URN and the attribute part, at the last `:`.
pub fn split_qualified(key: &str) -> Option<(&str, &str)> {
    let head = key.split('[').next().unwrap_or(key);
    let idx = head.rfind(':')?;
    Some((&key[..idx], &key[idx + 1..]))
}

/// Keys of a path-less PATCH value, each turned into a path (idp-quirks §1 rule 4, E3): Entra
/// with `aadOptscim062020` sends `{"name.givenName": …, "urn:…:User:department": …}` as one
/// path-less `replace` (MS-COMPAT, MSQA-1435791, SCIMSDK PR #294). Plain keys stay plain.
/// A key that is exactly an extension URN stays as it is (its value is the extension object).
pub fn pathless_keys(value: &Map<String, Value>) -> Vec<(String, Value)> {
    value.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
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
}
