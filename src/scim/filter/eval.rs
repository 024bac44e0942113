//! The reference evaluator: whether a resource document (or one element of a multi-valued
//! attribute) matches a filter. The store's SQL only narrows candidates; these rules decide.
//!
//! **Where values are read.** Core and common attributes (`id`, `externalId`, `meta`) sit at
//! the top level of the document; extension attributes sit in the object keyed by the
//! extension URN, also when the filter names them unqualified (`manager eq "id"`, RFC 7644
//! §3.10 lets an unambiguous name go unqualified). Keys are looked up by the canonical name
//! exactly first and case-insensitively as a fallback (RFC 7643 §2.1). A path that does not
//! resolve against the schema reads as absent. A wrong JSON shape (an array where an object
//! belongs, a number where a string belongs) reads as a value that matches nothing.
//!
//! **Which values a path denotes.** A multi-valued attribute denotes each of its elements, and
//! `emails.value` denotes the `value` of each element; a comparison holds when it holds for
//! *any* of them (RFC 7644 §3.4.2.2: "the filter matches if any of the values match"). A
//! comparison on a complex attribute without a sub-attribute (`emails co "x"`, §3.4.2.2's own
//! example, or Entra's `manager eq "id"`, docs/reference/idp-behaviour.md E13) compares its `value`
//! sub-attribute.
//!
//! **Rules per operator** (all in one place, `filter/compare.rs`):
//! * `pr`: some denoted value is present, i.e. not null, not `""`, not `[]` and not `{}`
//!   (RFC 7643 §2.5 treats unassigned, null and empty as one state).
//! * `eq null` is `not pr` and `ne null` is `pr`.
//! * `ne v` is `not (eq v)` on the same path: no denoted value equals `v`. So an absent
//!   attribute is `ne` anything, and `emails.value ne "a"` means "no email is a". The RFC does
//!   not settle `ne` on absent or multi-valued attributes; this choice keeps `ne` the exact
//!   negation of `eq`, which the SQL translation relies on.
//! * An absent attribute never satisfies `eq`, `co`, `sw`, `ew`, `gt`, `ge`, `lt`, `le`.
//! * Strings (also references and binary): compared after Unicode lowercasing of both sides
//!   unless the attribute is `caseExact` (RFC 7644 §3.4.2.2); ordering is lexicographic by
//!   code point on the compared forms. Binary has no ordering.
//! * dateTime: `eq`/`gt`/`ge`/`lt`/`le` parse both sides as RFC 3339 and compare instants, so
//!   `04:42:34Z` equals `06:42:34+02:00`; a stored value that does not parse never matches.
//!   `co`/`sw`/`ew` compare the stored text as a string.
//! * integer/decimal: numeric, exact for integers, as `f64` otherwise; no `co`/`sw`/`ew`.
//! * boolean: `eq` only (and `ne` through it); `"true"`/`"false"` strings count as booleans on
//!   both sides because Entra sends them.
//! * Operators that `filter::check` rejects for a type (e.g. `gt` on a boolean) never match.
//! * `not (f)` negates, `and`/`or` as usual; `attr[f]` holds when some element of `attr`
//!   satisfies `f` as judged by [`matches_element`].

use serde_json::Value;

use super::compare::{compare, is_present};
use super::Filter;
use crate::scim::path::AttrPath;
use crate::scim::schema::{Attribute, ResourceType};

/// See the module documentation.
pub(super) fn matches(filter: &Filter, rt: &ResourceType, doc: &Value) -> bool {
    match filter {
        Filter::And(l, r) => matches(l, rt, doc) && matches(r, rt, doc),
        Filter::Or(l, r) => matches(l, rt, doc) || matches(r, rt, doc),
        Filter::Not(inner) => !matches(inner, rt, doc),
        Filter::Present(path) => {
            let (_, values) = doc_values(rt, doc, path, false);
            values.into_iter().any(is_present)
        }
        Filter::Compare(path, op, lit) => {
            let (attr, values) = doc_values(rt, doc, path, true);
            compare(attr, &values, *op, lit)
        }
        Filter::ValuePath(path, inner) => {
            let Some((attr, value)) = doc_attr(rt, doc, path) else {
                return false;
            };
            path.sub.is_none()
                && elements(attr, value)
                    .into_iter()
                    .any(|e| matches_element(inner, attr, e))
        }
    }
}

/// See the module documentation. Paths inside the brackets are sub-attribute names of
/// `parent`; for a multi-valued simple `parent` the only path is `value`, the element itself.
/// Value filters do not nest (RFC 7644 §3.4.2.2), so an inner value path never matches.
pub(super) fn matches_element(filter: &Filter, parent: &Attribute, element: &Value) -> bool {
    match filter {
        Filter::And(l, r) => {
            matches_element(l, parent, element) && matches_element(r, parent, element)
        }
        Filter::Or(l, r) => {
            matches_element(l, parent, element) || matches_element(r, parent, element)
        }
        Filter::Not(inner) => !matches_element(inner, parent, element),
        Filter::Present(path) => {
            let (_, values) = element_values(parent, element, path, false);
            values.into_iter().any(is_present)
        }
        Filter::Compare(path, op, lit) => {
            let (attr, values) = element_values(parent, element, path, true);
            compare(attr, &values, *op, lit)
        }
        Filter::ValuePath(..) => false,
    }
}

/// The attribute a top-level path names (ignoring its sub-attribute) and its value, if any.
fn doc_attr<'r, 'd>(
    rt: &'r ResourceType,
    doc: &'d Value,
    path: &AttrPath,
) -> Option<(&'r Attribute, Option<&'d Value>)> {
    let resolved = rt.resolve(path.urn.as_deref(), &path.name)?;
    let container = match resolved.extension {
        Some(urn) => lookup(doc, urn),
        None => Some(doc),
    };
    let value = container.and_then(|c| lookup(c, &resolved.attr.name));
    Some((resolved.attr, value))
}

/// The values a top-level path denotes and the attribute that types them; `(None, [])` when
/// the path does not resolve. `comparing` maps a complex attribute without sub-attribute to
/// its `value` sub-attribute (a `pr` test keeps the complex attribute itself).
fn doc_values<'r, 'd>(
    rt: &'r ResourceType,
    doc: &'d Value,
    path: &AttrPath,
    comparing: bool,
) -> (Option<&'r Attribute>, Vec<&'d Value>) {
    let Some((attr, value)) = doc_attr(rt, doc, path) else {
        return (None, Vec::new());
    };
    let sub = match &path.sub {
        Some(sub) => sub.as_str(),
        None if comparing && attr.is_complex() => "value",
        None => return (Some(attr), elements(attr, value)),
    };
    let Some(sub_attr) = attr.sub(sub).filter(|_| attr.is_complex()) else {
        return (None, Vec::new());
    };
    let values = elements(attr, value)
        .into_iter()
        .flat_map(|e| elements(sub_attr, lookup(e, &sub_attr.name)))
        .collect();
    (Some(sub_attr), values)
}

/// The values a path inside `parent[...]` denotes in one element.
fn element_values<'r, 'd>(
    parent: &'r Attribute,
    element: &'d Value,
    path: &AttrPath,
    comparing: bool,
) -> (Option<&'r Attribute>, Vec<&'d Value>) {
    if path.urn.is_some() || path.sub.is_some() {
        return (None, Vec::new());
    }
    if !parent.is_complex() {
        return if path.name.eq_ignore_ascii_case("value") {
            (Some(parent), vec![element])
        } else {
            (None, Vec::new())
        };
    }
    match parent.sub(&path.name) {
        // RFC 7643 §2.3.8: no complex sub-attributes, so `comparing` has nothing to map.
        Some(attr) if !(comparing && attr.is_complex()) => {
            (Some(attr), elements(attr, lookup(element, &attr.name)))
        }
        _ => (None, Vec::new()),
    }
}

/// The values of an attribute: each element of a multi-valued attribute's array, otherwise
/// the value itself.
fn elements<'d>(attr: &Attribute, value: Option<&'d Value>) -> Vec<&'d Value> {
    match value {
        None => Vec::new(),
        Some(Value::Array(items)) if attr.multi_valued => items.iter().collect(),
        Some(v) => vec![v],
    }
}

/// A member of a JSON object by key: exactly, else case-insensitively. `None` for non-objects.
fn lookup<'d>(obj: &'d Value, key: &str) -> Option<&'d Value> {
    let map = obj.as_object()?;
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::{matches, matches_element, parse};
    use crate::scim::schema::{ResourceKind, SchemaRegistry, BUILTIN_SCHEMAS, ENTERPRISE_URN};

    /// The built-in schemas plus an extension with number and multi-valued string attributes.
    fn registry() -> SchemaRegistry {
        let ext = r#"{"id":"urn:example:n:2.0:User","attributes":[
            {"name":"level","type":"integer"},{"name":"score","type":"decimal"},
            {"name":"skills","type":"string","multiValued":true}]}"#;
        let docs = BUILTIN_SCHEMAS
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .chain([("n.json".to_string(), ext.to_string())]);
        SchemaRegistry::from_documents(docs).unwrap()
    }

    fn barbara() -> serde_json::Value {
        json!({
            "id": "2819c223-7f76-453a-919d-413861904646",
            "externalId": "BJensen",
            "userName": "Bjensen@Example.com",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "title": "Tour Guide",
            "active": true,
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ],
            "meta": {
                "resourceType": "User",
                "created": "2010-01-23T04:56:22Z",
                "lastModified": "2011-05-13T04:42:34Z",
                "version": "W/\"3694e05e9dff591\""
            },
            ENTERPRISE_URN: {
                "employeeNumber": "701984",
                "department": "Tour Operations",
                "manager": {"value": "26118915-6090", "displayName": "John Smith"}
            },
            "urn:example:n:2.0:User": {"level": 5, "score": -2.5, "skills": ["rust", "Go"]}
        })
    }

    #[track_caller]
    fn assert_table(doc: &serde_json::Value, table: &[(&str, bool)]) {
        let reg = registry();
        let user = reg.resource_type(ResourceKind::User);
        for (text, want) in table {
            let f = parse(text).unwrap();
            assert_eq!(matches(&f, user, doc), *want, "{text}");
        }
    }

    #[test]
    fn strings_compare_case_insensitively_unless_the_attribute_is_case_exact() {
        assert_table(
            &barbara(),
            &[
                (r#"userName eq "bjensen@example.com""#, true),
                (r#"USERNAME Eq "BJENSEN@EXAMPLE.COM""#, true),
                (r#"userName ne "bjensen@example.com""#, false),
                (r#"externalId eq "bjensen""#, false),
                (r#"externalId eq "BJensen""#, true),
                (r#"id eq "2819C223-7F76-453A-919D-413861904646""#, false),
                (r#"id sw "2819c223""#, true),
                (r#"meta.version eq "W/\"3694E05E9DFF591\"""#, false),
                (r#"meta.version eq "W/\"3694e05e9dff591\"""#, true),
            ],
        );
        assert_table(
            &json!({"userName": "ÉMILE"}),
            &[(r#"userName eq "émile""#, true)],
        );
    }

    #[test]
    fn substring_and_ordering_operators_work_on_the_compared_forms() {
        assert_table(
            &barbara(),
            &[
                (r#"title co "OUR g""#, true),
                (r#"title sw "tour""#, true),
                (r#"title ew "GUIDE""#, true),
                (r#"title co "x""#, false),
                (r#"title co """#, true),
                (r#"title gt "Tour""#, true),
                (r#"title ge "TOUR GUIDE""#, true),
                (r#"title le "tour guide""#, true),
                (r#"title lt "tour guide""#, false),
                (r#"title gt "z""#, false),
            ],
        );
    }

    #[test]
    fn absent_attributes_satisfy_only_ne_and_eq_null() {
        assert_table(
            &barbara(),
            &[
                (r#"displayName eq "x""#, false),
                (r#"displayName co """#, false),
                (r#"displayName lt "zzz""#, false),
                (r#"displayName ne "x""#, true),
                ("displayName eq null", true),
                ("displayName ne null", false),
                ("displayName pr", false),
                ("title pr", true),
                ("title eq null", false),
                ("title ne null", true),
                (r#"favouriteColour eq "x""#, false),
                (r#"favouriteColour ne "x""#, true),
            ],
        );
    }

    #[test]
    fn empty_and_null_values_are_not_present() {
        let doc = json!({"title": "", "emails": [], "name": {}, "displayName": null,
                         "ims": [null, {}], "nickName": "n"});
        assert_table(
            &doc,
            &[
                ("title pr", false),
                ("emails pr", false),
                ("name pr", false),
                ("displayName pr", false),
                ("ims pr", false),
                ("nickName pr", true),
                ("title eq null", true),
                ("emails eq null", true),
                (r#"title ne "x""#, true),
            ],
        );
    }

    #[test]
    fn multi_valued_attributes_match_when_any_value_matches() {
        assert_table(
            &barbara(),
            &[
                (r#"emails.value co "@jensen.org""#, true),
                (r#"emails co "example.com""#, true),
                (r#"emails.type eq "HOME""#, true),
                (r#"emails.value ew ".net""#, false),
                (r#"emails ne "babs@jensen.org""#, false),
                (r#"emails.value ne "nobody@x""#, true),
                ("emails.primary eq true", true),
                ("emails pr and emails.primary pr", true),
                (r#"skills eq "go" and skills[value sw "R"]"#, true),
                (r#"skills[value eq "java"]"#, false),
                (r#"skills[type eq "x"]"#, false),
            ],
        );
    }

    #[test]
    fn value_filters_need_one_element_to_satisfy_the_whole_inner_filter() {
        assert_table(
            &barbara(),
            &[
                (
                    r#"emails[type eq "work" and value co "@example.com"]"#,
                    true,
                ),
                (r#"emails[type eq "home" and primary eq true]"#, false),
                (r#"emails[type eq "work" and primary eq true]"#, true),
                ("emails[not (primary pr)]", true),
                (
                    r#"emails[type eq "home" or value eq "x"] and not (ims[value pr])"#,
                    true,
                ),
                (r#"name[givenName sw "barb"]"#, true),
                (r#"manager[displayName eq "john smith"]"#, true),
            ],
        );
    }

    #[test]
    fn date_times_compare_as_instants() {
        assert_table(
            &barbara(),
            &[
                (r#"meta.lastModified gt "2011-05-13T04:42:33Z""#, true),
                (r#"meta.lastModified eq "2011-05-13T06:42:34+02:00""#, true),
                (r#"meta.lastModified eq "2011-05-13T04:42:34.000Z""#, true),
                (r#"meta.lastModified lt "2011-05-13T04:42:34Z""#, false),
                (r#"meta.lastModified ge "2011-05-13T04:42:34Z""#, true),
                (r#"meta.lastModified le "2011-05-13T00:42:34-04:00""#, true),
                (r#"meta.lastModified sw "2011-05""#, true),
                (r#"meta.created lt "2011-01-01T00:00:00Z""#, true),
                (r#"meta.lastModified gt "not a date""#, false),
            ],
        );
        let doc = json!({"meta": {"lastModified": "yesterday"}});
        assert_table(
            &doc,
            &[
                (r#"meta.lastModified gt "2000-01-01T00:00:00Z""#, false),
                (r#"meta.lastModified lt "2100-01-01T00:00:00Z""#, false),
                (r#"meta.lastModified ne "2000-01-01T00:00:00Z""#, true),
            ],
        );
    }

    #[test]
    fn booleans_accept_json_and_string_spellings() {
        assert_table(
            &barbara(),
            &[
                ("active eq true", true),
                (r#"active eq "TRUE""#, true),
                ("active ne true", false),
                ("active eq false", false),
                ("active gt false", false),
            ],
        );
        assert_table(&json!({"active": "False"}), &[("active eq false", true)]);
    }

    #[test]
    fn numbers_compare_numerically() {
        assert_table(
            &barbara(),
            &[
                ("level gt 3", true),
                ("level eq 5.0", true),
                ("level le 4", false),
                ("score lt -2", true),
                ("score ge -2.5e0", true),
                (r#"level eq "5""#, false),
                ("level co 5", false),
            ],
        );
        assert_table(
            &json!({"urn:example:n:2.0:User": {"level": u64::MAX}}),
            &[
                ("level eq 18446744073709551615", true),
                ("level gt -1", true),
            ],
        );
    }

    #[test]
    fn extension_attributes_are_read_from_the_extension_object() {
        assert_table(
            &barbara(),
            &[
                (r#"manager eq "26118915-6090""#, true),
                (r#"manager ne "26118915-6090""#, false),
                (
                    r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "26118915-6090""#,
                    true,
                ),
                (
                    r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "tour operations""#,
                    true,
                ),
                (
                    r#"department sw "Tour" and employeeNumber eq "701984""#,
                    true,
                ),
                (
                    r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "bjensen""#,
                    true,
                ),
                (
                    r#"urn:ietf:params:scim:schemas:core:2.0:User:department pr"#,
                    false,
                ),
            ],
        );
    }

    #[test]
    fn keys_fall_back_to_case_insensitive_lookup() {
        let doc = json!({
            "USERNAME": "a",
            "Emails": [{"VALUE": "x@y"}],
            "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER": {"Department": "d"}
        });
        assert_table(
            &doc,
            &[
                (r#"userName eq "a""#, true),
                (r#"emails.value eq "x@y""#, true),
                (r#"emails[value ew "@Y"]"#, true),
                (r#"department eq "d""#, true),
            ],
        );
    }

    #[test]
    fn mismatched_shapes_do_not_match_and_do_not_panic() {
        let doc = json!({"userName": 5, "name": [1], "active": "yes", "meta": "x",
                         "title": {"value": "t"}, "emails": [3, "x", [], {"value": 7}],
                         ENTERPRISE_URN: []});
        assert_table(
            &doc,
            &[
                (r#"userName eq "5""#, false),
                ("name.givenName pr", false),
                ("active eq true", false),
                ("active ne true", true),
                ("meta.lastModified pr", false),
                (r#"title co "t""#, false),
                (r#"emails.value eq "x""#, false),
                (r#"emails[value eq "x"]"#, false),
                ("department pr", false),
            ],
        );
        assert_table(
            &json!([1, 2]),
            &[("userName pr", false), (r#"id ne "x""#, true)],
        );
    }

    #[test]
    fn not_and_or_combine_as_usual() {
        assert_table(
            &barbara(),
            &[
                (r#"not (userName eq "x")"#, true),
                (r#"not (title pr) or userName sw "b""#, true),
                (r#"title pr and not (active eq true)"#, false),
                (
                    r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
                    false,
                ),
                (
                    r#"title pr and (emails co "example.com" or emails.value co "example.org")"#,
                    true,
                ),
            ],
        );
    }

    #[test]
    fn an_element_is_matched_against_sub_attributes_of_its_parent() {
        let reg = registry();
        let user = reg.resource_type(ResourceKind::User);
        let emails = user.resolve(None, "emails").unwrap().attr;
        let work = json!({"value": "a@x", "type": "work"});
        let m =
            |f: &str, parent, e: &serde_json::Value| matches_element(&parse(f).unwrap(), parent, e);
        assert!(m(r#"type eq "WORK""#, emails, &work));
        assert!(m(
            r#"Value ew "@X" and not (primary eq true)"#,
            emails,
            &work
        ));
        assert!(!m(r#"value eq "x""#, emails, &json!(5)));
        assert!(m(r#"value ne "x""#, emails, &json!(5)));
        assert!(!m(r#"emails.value eq "a@x""#, emails, &work));
        let skills = user.resolve(None, "skills").unwrap().attr;
        assert!(m(r#"value eq "RUST""#, skills, &json!("rust")));
        assert!(!m(r#"display eq "rust""#, skills, &json!("rust")));
        let group = reg.resource_type(ResourceKind::Group);
        let members = group.resolve(None, "members").unwrap().attr;
        let member = json!({"value": "2819c223", "$ref": "https://x/Users/2819c223"});
        assert!(m(r#"value eq "2819c223" and $ref pr"#, members, &member));
        let doc = json!({"members": [member]});
        assert!(matches(
            &parse(r#"members eq "2819c223""#).unwrap(),
            group,
            &doc
        ));
    }
}
