//! What a write changed: the attribute paths whose values differ between two states of a
//! resource, with the old and the new value, for the audit trail (docs/audit.md).
//!
//! Pure: two documents in, a list out. Paths are written as SCIM attribute paths (RFC 7644
//! §3.10): `name.givenName`, and for extension attributes the schema URN, a colon and the
//! attribute (`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber`).
//! Complex single-valued attributes are compared sub-attribute by sub-attribute, so changing
//! a given name records `name.givenName` and not the whole `name`; multi-valued attributes
//! (`emails`, `phoneNumbers`) are recorded whole, as their values have no stable identity to
//! compare by (RFC 7643 §2.4).
//!
//! A password never leaves here: any value at a path whose attribute is `password` (RFC 7643
//! §4.1.1: `returned` "never") is replaced by [`REDACTED`], and so is any `password` inside
//! a recorded complex value. That the password changed is recorded; the value is not.

use serde_json::{Map, Value};

use super::members::MemberOp;
use super::resource::Document;

/// What a redacted value reads as.
pub const REDACTED: &str = "[redacted]";

/// One changed attribute path. An absent value is `null`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AttributeChange {
    /// The SCIM attribute path.
    pub path: String,
    /// The value before the write (`null`: absent).
    pub old: Value,
    /// The value after the write (`null`: absent).
    pub new: Value,
}

/// Attributes that are the server's own bookkeeping, not client data.
const SKIPPED: &[&str] = &["meta", "schemas", "id"];

/// The changes from `old` to `new` (an empty `old` for a create, an empty `new` for a
/// delete), in the order of `old`'s attributes followed by attributes only `new` has.
pub fn diff(old: &Document, new: &Document) -> Vec<AttributeChange> {
    let mut out = Vec::new();
    diff_objects("", false, old, new, &mut out);
    out
}

fn diff_objects(
    prefix: &str,
    is_schema: bool,
    old: &Map<String, Value>,
    new: &Map<String, Value>,
    out: &mut Vec<AttributeChange>,
) {
    let keys = old
        .keys()
        .chain(new.keys().filter(|k| !old.contains_key(*k)));
    for key in keys {
        if prefix.is_empty() && SKIPPED.iter().any(|s| s.eq_ignore_ascii_case(key)) {
            continue;
        }
        let (o, n) = (old.get(key), new.get(key));
        if o == n {
            continue;
        }
        let path = child_path(prefix, key, is_schema);
        // A top-level `urn:` key is an extension schema; its attributes follow a `:`.
        let schema =
            prefix.is_empty() && key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"));
        let empty = Map::new();
        match (o, n) {
            (Some(Value::Object(a)), Some(Value::Object(b))) => {
                diff_objects(&path, schema, a, b, out)
            }
            (Some(Value::Object(a)), None) => diff_objects(&path, schema, a, &empty, out),
            (None, Some(Value::Object(b))) => diff_objects(&path, schema, &empty, b, out),
            _ => out.push(change(path, o.cloned(), n.cloned())),
        }
    }
}

/// `name` + `givenName` is `name.givenName`; an extension's schema URN (a top-level key
/// starting with `urn:`) + `employeeNumber` is `URN:employeeNumber` (RFC 7644 §3.10), and
/// below that `.` again. `prefix` is empty at the top level.
fn child_path(prefix: &str, key: &str, parent_is_schema: bool) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else if parent_is_schema {
        format!("{prefix}:{key}")
    } else {
        format!("{prefix}.{key}")
    }
}

fn change(path: String, old: Option<Value>, new: Option<Value>) -> AttributeChange {
    let secret = path
        .rsplit(['.', ':'])
        .next()
        .is_some_and(|a| a.eq_ignore_ascii_case("password"));
    let seal = |v: Option<Value>| match v {
        None | Some(Value::Null) => Value::Null,
        Some(_) if secret => Value::String(REDACTED.to_owned()),
        Some(mut v) => {
            redact(&mut v);
            v
        }
    };
    AttributeChange {
        old: seal(old),
        new: seal(new),
        path,
    }
}

/// Replaces every `password` inside `v` by [`REDACTED`].
fn redact(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, item) in m.iter_mut() {
                if k.eq_ignore_ascii_case("password") {
                    if !item.is_null() {
                        *item = Value::String(REDACTED.to_owned());
                    }
                } else {
                    redact(item);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

/// What membership changes a write made, as changes of `members`: ids added are a `new`
/// value, ids removed an `old` one. Membership is kept as rows, not in the document, and a
/// group may have a hundred thousand members, so the changes are the operations' ids rather
/// than the whole list before and after.
pub fn member_changes(ops: &[MemberOp]) -> Vec<AttributeChange> {
    let ids = |refs: &[super::members::MemberRef]| {
        Value::Array(
            refs.iter()
                .map(|m| Value::String(m.value.clone()))
                .collect(),
        )
    };
    ops.iter()
        .map(|op| match op {
            MemberOp::Add(refs) => AttributeChange {
                path: "members".to_owned(),
                old: Value::Null,
                new: ids(refs),
            },
            MemberOp::Remove(removed) => AttributeChange {
                path: "members".to_owned(),
                old: Value::Array(removed.iter().cloned().map(Value::String).collect()),
                new: Value::Null,
            },
            MemberOp::RemoveWhere(filter) => AttributeChange {
                path: format!("members[{filter}]"),
                old: Value::String("removed".to_owned()),
                new: Value::Null,
            },
            MemberOp::RemoveAll => AttributeChange {
                path: "members".to_owned(),
                old: Value::String("all".to_owned()),
                new: Value::Null,
            },
            MemberOp::Replace(refs) => AttributeChange {
                path: "members".to_owned(),
                old: Value::String("all".to_owned()),
                new: ids(refs),
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::scim::members::MemberRef;

    const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    fn doc(v: Value) -> Document {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    fn paths(changes: &[AttributeChange]) -> Vec<&str> {
        changes.iter().map(|c| c.path.as_str()).collect()
    }

    #[test]
    fn a_changed_sub_attribute_is_recorded_by_its_path_with_old_and_new() {
        let old = doc(
            json!({"userName": "a", "name": {"givenName": "Ann", "familyName": "Lee"}, "active": true}),
        );
        let new = doc(
            json!({"userName": "a", "name": {"givenName": "Anne", "familyName": "Lee"}, "active": false}),
        );
        let c = diff(&old, &new);
        assert_eq!(
            c,
            vec![
                AttributeChange {
                    path: "name.givenName".into(),
                    old: json!("Ann"),
                    new: json!("Anne")
                },
                AttributeChange {
                    path: "active".into(),
                    old: json!(true),
                    new: json!(false)
                },
            ]
        );
    }

    #[test]
    fn equal_documents_have_no_changes_and_meta_is_not_client_data() {
        let a =
            doc(json!({"userName": "a", "meta": {"version": "1"}, "emails": [{"value": "a@x"}]}));
        let mut b = a.clone();
        b.insert("meta".into(), json!({"version": "2"}));
        assert!(diff(&a, &b).is_empty());
    }

    #[test]
    fn a_create_and_a_delete_record_every_attribute_against_absent() {
        let d = doc(
            json!({"userName": "a", "name": {"givenName": "Ann"}, "emails": [{"value": "a@x"}]}),
        );
        let created = diff(&Document::new(), &d);
        assert_eq!(paths(&created), ["userName", "name.givenName", "emails"]);
        assert!(created.iter().all(|c| c.old.is_null()));
        let deleted = diff(&d, &Document::new());
        assert!(deleted.iter().all(|c| c.new.is_null() && !c.old.is_null()));
    }

    #[test]
    fn extension_attributes_are_paths_under_their_schema_urn() {
        let old = doc(json!({ENT: {"employeeNumber": "1", "manager": {"value": "m1"}}}));
        let new = doc(json!({ENT: {"employeeNumber": "2", "manager": {"value": "m2"}}}));
        assert_eq!(
            paths(&diff(&old, &new)),
            [
                format!("{ENT}:employeeNumber"),
                format!("{ENT}:manager.value")
            ]
        );
    }

    #[test]
    fn multi_valued_attributes_are_recorded_whole() {
        let old = doc(json!({"emails": [{"value": "a@x", "primary": true}]}));
        let new = doc(json!({"emails": [{"value": "b@x", "primary": true}]}));
        let c = diff(&old, &new);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].new, json!([{"value": "b@x", "primary": true}]));
    }

    #[test]
    fn a_password_is_never_recorded_only_that_it_changed() {
        let old = doc(json!({"userName": "a", "password": "old-secret"}));
        let new = doc(json!({"userName": "a", "password": "new-secret", "x": {"Password": "p"}}));
        let c = diff(&old, &new);
        let text = serde_json::to_string(&c).unwrap();
        assert!(
            !text.contains("secret") && !text.contains("\"p\""),
            "{text}"
        );
        assert_eq!(
            c[0],
            AttributeChange {
                path: "password".into(),
                old: json!(REDACTED),
                new: json!(REDACTED)
            }
        );
        assert_eq!(c[1].path, "x.Password");
        // Set on create: redacted; a password inside a multi-valued value too.
        let created = diff(
            &Document::new(),
            &doc(json!({"password": "s3", "items": [{"password": "s4"}]})),
        );
        let text = serde_json::to_string(&created).unwrap();
        assert!(!text.contains("s3") && !text.contains("s4"), "{text}");
        // Removed: old redacted, new absent.
        let removed = diff(&doc(json!({"password": "s5"})), &Document::new());
        assert_eq!(removed[0].old, json!(REDACTED));
        assert_eq!(removed[0].new, Value::Null);
    }

    #[test]
    fn membership_changes_name_the_ids_added_and_removed() {
        let m = |id: &str| MemberRef {
            value: id.into(),
            kind: None,
            display: None,
        };
        let c = member_changes(&[
            MemberOp::Add(vec![m("u1"), m("u2")]),
            MemberOp::Remove(vec!["u3".into()]),
        ]);
        assert_eq!(c[0].new, json!(["u1", "u2"]));
        assert_eq!(c[1].old, json!(["u3"]));
    }
}
