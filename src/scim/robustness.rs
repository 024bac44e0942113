//! Hostile input never panics: a panic in a handler is a 500, and nothing malformed may ever
//! yield one. Random JSON goes through every entry point of the protocol layer.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::filter::strategies::arb_json;
use super::schema::{ResourceKind, SchemaRegistry};
use super::{bulk, patch, query, resource};

/// Random PATCH operations: real op names and paths mixed with junk.
fn arb_patch() -> impl Strategy<Value = Value> {
    let op = prop_oneof![
        Just(json!("add")),
        Just(json!("Replace")),
        Just(json!("remove")),
        Just(json!("jump")),
        Just(json!(7)),
    ];
    let path = prop_oneof![
        Just(Value::Null),
        Just(json!("emails[type eq \"work\"].value")),
        Just(json!("members[value eq \"x\"]")),
        Just(json!(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"
        )),
        Just(json!("name.givenName")),
        Just(json!("manager[value eq \"m\"]")),
        Just(json!("emails[")),
        any::<String>().prop_map(Value::String),
    ];
    prop::collection::vec((op, path, arb_json()), 0..4).prop_map(|ops| {
        let ops: Vec<Value> = ops
            .into_iter()
            .map(|(op, path, value)| json!({"op": op, "path": path, "value": value}))
            .collect();
        json!({"schemas": [patch::PATCH_URN], "Operations": ops})
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn bodies_of_any_shape_are_accepted_or_refused_never_a_panic(body in arb_json()) {
        let reg = SchemaRegistry::builtin();
        for kind in [ResourceKind::User, ResourceKind::Group] {
            let rt = reg.resource_type(kind);
            if let Ok(doc) = resource::from_body(&reg, rt, &body) {
                let _ = resource::check_required(rt, &doc);
                let _ = resource::check_immutable(rt, &doc, &doc);
            }
        }
        let _ = bulk::parse(&body, 10);
        let _ = query::RawQuery::from_search_body(&body);
        let _ = patch::parse(&body);
    }

    #[test]
    fn patches_of_any_shape_apply_or_fail_never_a_panic(start in arb_json(), req in arb_patch()) {
        let reg = SchemaRegistry::builtin();
        for kind in [ResourceKind::User, ResourceKind::Group] {
            let rt = reg.resource_type(kind);
            let doc = resource::from_body(&reg, rt, &start).unwrap_or_default();
            if let Ok(parsed) = patch::parse(&req) {
                if let Ok(done) = patch::apply(&reg, rt, &doc, &parsed, u64::MAX) {
                    // What a PATCH produces is itself a valid stored document.
                    prop_assert!(resource::recheck(rt, &done.doc).is_ok());
                }
            }
        }
    }
}
