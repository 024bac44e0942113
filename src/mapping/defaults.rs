//! The built-in profile fields: what the Linchpin feed and the webhook carry when a connector
//! writes no mapping at all.
//!
//! Element names are chosen to match Linchpin's Confluence-mirrored fields where one exists
//! (`phone`, `department`, `location`) and are otherwise the SCIM names; the Linchpin admin
//! sets each field's XML node name to match (`docs/mapping.md` lists them).

use super::rules::{Computed, FieldSpec, Sources};
use super::transform::TransformSpec;

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn field(name: &str, sources: &[String]) -> FieldSpec {
    FieldSpec {
        name: name.to_owned(),
        xml: None,
        linchpin_field: None,
        from: None,
        source: Some(Sources::Many(sources.to_vec())),
        // Multi-valued sources (two work numbers) must not become two values in one field.
        transforms: vec![TransformSpec::First],
        default: None,
        on_missing: None,
    }
}

fn computed(name: &str, from: Computed) -> FieldSpec {
    FieldSpec {
        name: name.to_owned(),
        xml: None,
        linchpin_field: None,
        from: Some(from),
        source: None,
        transforms: Vec::new(),
        default: None,
        on_missing: None,
    }
}

fn enterprise(attr: &str) -> Vec<String> {
    vec![format!("{ENTERPRISE}:{attr}")]
}

/// The built-in fields, in feed order.
pub fn default_fields() -> Vec<FieldSpec> {
    vec![
        computed("fullName", Computed::FullName),
        computed("email", Computed::Email),
        field("title", &["title".to_owned()]),
        field("department", &enterprise("department")),
        field("organization", &enterprise("organization")),
        field("division", &enterprise("division")),
        field("costCenter", &enterprise("costCenter")),
        field("employeeNumber", &enterprise("employeeNumber")),
        field(
            "phone",
            &[
                "phoneNumbers[type eq \"work\"].value".to_owned(),
                "phoneNumbers[primary eq true].value".to_owned(),
            ],
        ),
        field(
            "mobile",
            &["phoneNumbers[type eq \"mobile\"].value".to_owned()],
        ),
        field(
            "location",
            &[
                "addresses[type eq \"work\"].locality".to_owned(),
                "addresses[primary eq true].locality".to_owned(),
            ],
        ),
        computed("manager", Computed::Manager(1)),
    ]
}
