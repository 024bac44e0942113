//! An IdP user as the SCIM resource a push connector would have sent: core User with the
//! enterprise extension, validated by the same schema code as a SCIM POST
//! (`scim/resource.rs`), so what is stored cannot differ in shape from a pushed user.

use serde_json::{json, Map, Value};

use crate::scim::identifier;
use crate::scim::resource::{self, Document};
use crate::scim::schema::{ResourceKind, SchemaRegistry, ENTERPRISE_URN, USER_URN};
use crate::scim::ScimError;

use super::types::PullUser;

/// The SCIM body of `u`: `id` and `externalId` are the IdP's id, `manager.value` the
/// manager's id or e-mail as the IdP gives it (docs/mapping.md resolves both).
pub fn body(u: &PullUser) -> Value {
    let mut doc = Map::new();
    doc.insert("schemas".into(), json!([USER_URN, ENTERPRISE_URN]));
    doc.insert("externalId".into(), json!(u.id));
    doc.insert("userName".into(), json!(u.user_name));
    let mut name = Map::new();
    if let Some(g) = &u.given_name {
        name.insert("givenName".into(), json!(g));
    }
    if let Some(f) = &u.family_name {
        name.insert("familyName".into(), json!(f));
    }
    if let Some(d) = &u.display_name {
        name.insert("formatted".into(), json!(d));
        doc.insert("displayName".into(), json!(d));
    }
    if !name.is_empty() {
        doc.insert("name".into(), Value::Object(name));
    }
    if let Some(e) = &u.email {
        doc.insert(
            "emails".into(),
            json!([{"value": e, "type": "work", "primary": true}]),
        );
    }
    if !u.phones.is_empty() {
        let phones: Vec<Value> = u
            .phones
            .iter()
            .map(|(t, v)| json!({"value": v, "type": t}))
            .collect();
        doc.insert("phoneNumbers".into(), Value::Array(phones));
    }
    doc.insert("active".into(), json!(u.active));
    if let Some(t) = &u.title {
        doc.insert("title".into(), json!(t));
    }
    let mut ent = Map::new();
    if let Some(n) = &u.employee_number {
        ent.insert("employeeNumber".into(), json!(n));
    }
    if let Some(d) = &u.department {
        ent.insert("department".into(), json!(d));
    }
    if let Some(m) = &u.manager {
        ent.insert("manager".into(), json!({"value": m}));
    }
    if !ent.is_empty() {
        doc.insert(ENTERPRISE_URN.into(), Value::Object(ent));
    }
    Value::Object(doc)
}

/// The stored document of `u`, checked as a SCIM POST or PUT would be (`before`: the
/// stored document it replaces).
pub fn document(
    schemas: &SchemaRegistry,
    u: &PullUser,
    before: Option<&Document>,
) -> Result<Document, ScimError> {
    if u.id.is_empty() {
        return Err(ScimError::invalid_value(
            "the IdP sent a user without an id",
        ));
    }
    let rt = schemas.resource_type(ResourceKind::User);
    let doc = resource::from_body(schemas, rt, &body(u))?;
    resource::check_required(rt, &doc)?;
    identifier::check_name(ResourceKind::User, &doc, before)?;
    Ok(doc)
}
