//! Compiled mappings: the built-in rules, each no-value policy, identity rules, manager
//! resolution outcomes, and configuration errors.

use serde_json::json;

use super::*;
use crate::mapping::rules::MappingSettings;
use crate::mapping::ManagerKey;

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn doc(v: serde_json::Value) -> Document {
    v.as_object().cloned().unwrap_or_default()
}

fn mapping(toml_text: &str) -> Result<ConnectorMapping, String> {
    let settings: MappingSettings = toml::from_str(toml_text).map_err(|e| e.to_string())?;
    ConnectorMapping::compile(&settings, &SchemaRegistry::builtin()).map_err(|e| e.to_string())
}

fn compiled(toml_text: &str) -> ConnectorMapping {
    mapping(toml_text).unwrap_or_else(|e| panic!("{e}"))
}

fn ada() -> Document {
    doc(json!({
        "userName": "Ada@Example.com",
        "displayName": "Ada Lovelace",
        "title": "Analyst",
        "emails": [{"value": "ada@example.com", "primary": true}],
        "phoneNumbers": [{"value": "+44 1", "type": "work"}, {"value": "+44 7", "type": "mobile"}],
        "addresses": [{"type": "work", "locality": "London"}],
        ENT: {"department": "Engines", "employeeNumber": "E1", "costCenter": "CC-9",
              "manager": {"value": "m-1"}}
    }))
}

fn value_of<'p>(p: &'p Profile, name: &str) -> &'p FieldValue {
    &p.fields
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no field {name}"))
        .value
}

fn set(v: &str) -> FieldValue {
    FieldValue::Set(vec![v.to_owned()])
}

#[test]
fn without_rules_the_identity_values_are_the_built_in_ones() {
    let m = ConnectorMapping::builtin();
    let d = ada();
    assert_eq!(m.username(&d), crate::mapping::username(&d));
    assert_eq!(m.full_name(&d).ok(), Some(crate::mapping::full_name(&d)));
    assert_eq!(m.email(&d), crate::mapping::email(&d));
}

#[test]
fn without_rules_the_profile_carries_the_built_in_fields() {
    let m = ConnectorMapping::builtin();
    let found = ManagerLookup::Found {
        username: "mroe".into(),
        active: true,
        by: ManagerKey::Id,
    };
    let p = m
        .profile(
            &ada(),
            "ada@example.com",
            std::slice::from_ref(&found),
            false,
        )
        .unwrap();
    let names: Vec<&str> = p.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "fullName",
            "email",
            "title",
            "department",
            "organization",
            "division",
            "costCenter",
            "employeeNumber",
            "phone",
            "mobile",
            "location",
            "manager"
        ]
    );
    assert_eq!(value_of(&p, "fullName"), &set("Ada Lovelace"));
    assert_eq!(value_of(&p, "email"), &set("ada@example.com"));
    assert_eq!(value_of(&p, "department"), &set("Engines"));
    assert_eq!(value_of(&p, "costCenter"), &set("CC-9"));
    assert_eq!(value_of(&p, "phone"), &set("+44 1"));
    assert_eq!(value_of(&p, "mobile"), &set("+44 7"));
    assert_eq!(value_of(&p, "location"), &set("London"));
    assert_eq!(value_of(&p, "manager"), &set("mroe"));
    assert_eq!(
        value_of(&p, "organization"),
        &FieldValue::Clear,
        "fields default to on_missing = clear"
    );
}

#[test]
fn on_missing_keep_leaves_the_field_to_the_target() {
    let m = compiled(
        "default_fields = false\n[[fields]]\nname = \"nick\"\nsource = \"nickName\"\non_missing = \"keep\"",
    );
    let p = m
        .profile(&ada(), "ada", &[ManagerLookup::NoReference], false)
        .unwrap();
    assert_eq!(value_of(&p, "nick"), &FieldValue::Keep);
    assert!(value_of(&p, "nick").is_omitted());
}

#[test]
fn on_missing_clear_empties_the_field() {
    let m = compiled(
        "default_fields = false\n[[fields]]\nname = \"nick\"\nsource = \"nickName\"\non_missing = \"clear\"",
    );
    let p = m
        .profile(&ada(), "ada", &[ManagerLookup::NoReference], false)
        .unwrap();
    assert_eq!(value_of(&p, "nick"), &FieldValue::Clear);
    assert!(!value_of(&p, "nick").is_omitted());
}

#[test]
fn on_missing_skip_leaves_the_user_out() {
    let m = compiled(
        "default_fields = false\n[[fields]]\nname = \"nick\"\nsource = \"nickName\"\non_missing = \"skip\"",
    );
    let skipped = m
        .profile(&ada(), "ada", &[ManagerLookup::NoReference], false)
        .unwrap_err();
    assert_eq!(skipped.field, "nick");
}

#[test]
fn a_default_value_fills_in_before_the_no_value_policy() {
    let m = compiled(
        "default_fields = false\n[[fields]]\nname = \"nick\"\nsource = \"nickName\"\ndefault = \"-\"\non_missing = \"skip\"",
    );
    let p = m
        .profile(&ada(), "ada", &[ManagerLookup::NoReference], false)
        .unwrap();
    assert_eq!(value_of(&p, "nick"), &set("-"));
}

#[test]
fn sources_coalesce_in_order_and_transforms_chain() {
    let m = compiled(
        r#"default_fields = false
[[fields]]
name = "handle"
source = ["nickName", "userName"]
transforms = ["lower", { op = "before", sep = "@" }]
"#,
    );
    let p = m
        .profile(&ada(), "ada", &[ManagerLookup::NoReference], true)
        .unwrap();
    assert_eq!(value_of(&p, "handle"), &set("ada"));
    assert_eq!(
        p.fields[0].source.as_deref(),
        Some(&["Ada@Example.com".to_owned()][..]),
        "tracing keeps the source value"
    );
}

#[test]
fn identity_rules_replace_the_built_in_ones_and_their_results_are_checked() {
    let m = compiled(
        r#"[username]
source = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber"
transforms = ["lower"]
[full_name]
source = "title"
"#,
    );
    assert_eq!(m.username(&ada()).unwrap(), "e1");
    assert_eq!(m.full_name(&ada()).unwrap(), "Analyst");
    let upper = compiled("[username]\nsource = \"displayName\"");
    assert!(matches!(
        upper.username(&ada()),
        Err(MappingError::InvalidUsername(_))
    ));
}

#[test]
fn identity_rules_with_no_value_skip_the_user_or_keep_the_built_in_rule() {
    let skip = compiled("[username]\nsource = \"nickName\"");
    assert_eq!(
        skip.username(&ada()),
        Err(MappingError::NoValue { rule: "username" })
    );
    let keep = compiled("[username]\nsource = \"nickName\"\non_missing = \"keep\"");
    assert_eq!(keep.username(&ada()).unwrap(), "ada@example.com");
    let e = mapping("[email]\nsource = \"nickName\"\non_missing = \"clear\"").unwrap_err();
    assert!(e.contains("clear"), "{e}");
}

#[test]
fn the_manager_field_follows_the_lookup_and_the_deprovisioning_policy() {
    let keep = ConnectorMapping::builtin();
    let clear = compiled("[manager]\non_deprovisioned = \"clear\"");
    let at = |m: &ConnectorMapping, lookup: ManagerLookup| {
        let p = m
            .profile(&ada(), "ada", std::slice::from_ref(&lookup), false)
            .unwrap();
        value_of(&p, "manager").clone()
    };
    let inactive = || ManagerLookup::Found {
        username: "mroe".into(),
        active: false,
        by: ManagerKey::EmployeeNumber,
    };
    let deleted = || ManagerLookup::Deleted {
        username: "mroe".into(),
    };
    assert_eq!(at(&keep, ManagerLookup::Missing), FieldValue::Pending);
    let ambiguous = ManagerLookup::Ambiguous {
        users: 2,
        keys: vec![ManagerKey::EmployeeNumber],
    };
    assert_eq!(
        at(&keep, ambiguous),
        FieldValue::Pending,
        "an ambiguous manager is never guessed: the target keeps what it has"
    );
    assert_eq!(at(&keep, ManagerLookup::NoReference), FieldValue::Clear);
    assert_eq!(
        at(&keep, ManagerLookup::OwnSelf),
        FieldValue::Clear,
        "self-reference is no manager"
    );
    assert_eq!(at(&keep, inactive()), set("mroe"));
    assert_eq!(at(&keep, deleted()), set("mroe"));
    assert_eq!(at(&clear, inactive()), FieldValue::Clear);
    assert_eq!(at(&clear, deleted()), FieldValue::Clear);
    assert!(matches!(
        at(&keep, ManagerLookup::Unmappable),
        FieldValue::Failed(_)
    ));
}

#[test]
fn a_failing_script_fails_its_field_only() {
    let m = compiled(
        r#"[script]
max_operations = 1000
[[fields]]
name = "spin"
transforms = [{ op = "script", code = "loop {}" }]
"#,
    );
    let p = m
        .profile(&ada(), "ada", &[ManagerLookup::NoReference], false)
        .unwrap();
    match value_of(&p, "spin") {
        FieldValue::Failed(why) => assert!(why.contains("operations"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(value_of(&p, "department"), &set("Engines"));
}

#[test]
fn fields_replace_defaults_by_name_and_mistakes_are_refused() {
    let m = compiled("[[fields]]\nname = \"title\"\nxml = \"position\"\nsource = \"title\"");
    let title = m.fields().iter().find(|f| f.name == "title").unwrap();
    assert_eq!(title.xml, "position");
    assert_eq!(m.fields().len(), 12);
    for (bad, why) in [
        ("[[fields]]\nname = \"a\"\nsource = \"shoeSize\"", "shoeSize"),
        ("[[fields]]\nname = \"a b\"\nsource = \"title\"", "XML element"),
        (
            "[[fields]]\nname = \"a\"\nxml = \"phone\"\nsource = \"title\"",
            "two fields",
        ),
        (
            "[[fields]]\nname = \"a\"\nsource = \"title\"\n[[fields]]\nname = \"a\"\nsource = \"title\"",
            "twice",
        ),
        ("[[fields]]\nname = \"a\"", "give a"),
        (
            "[[fields]]\nname = \"a\"\nfrom = \"manager\"\nsource = \"title\"",
            "not both",
        ),
        ("[manager]\nrefers_to = \"mail\"", "mail"),
    ] {
        let e = mapping(bad).unwrap_err();
        assert!(e.contains(why), "{bad}: {e}");
    }
}

#[test]
fn the_fingerprint_changes_with_the_rules() {
    let a = ConnectorMapping::builtin();
    let b = compiled("[manager]\nrefers_to = \"employeeNumber\"");
    assert_ne!(a.fingerprint(), b.fingerprint());
    assert_eq!(a.fingerprint(), ConnectorMapping::builtin().fingerprint());
}

#[test]
fn a_manager_field_with_on_missing_keep_leaves_a_user_without_manager_out() {
    // docs/idp/jumpcloud.md: an IdP that never sends the manager must not clear a value
    // another source set in Linchpin.
    let m = compiled("[[fields]]\nname = \"manager\"\nfrom = \"manager\"\non_missing = \"keep\"");
    let p = m
        .profile(&ada(), "ada", &[ManagerLookup::NoReference], false)
        .unwrap();
    assert_eq!(value_of(&p, "manager"), &FieldValue::Keep);
    let found = ManagerLookup::Found {
        username: "mroe".into(),
        active: true,
        by: ManagerKey::Id,
    };
    let p = m
        .profile(&ada(), "ada", std::slice::from_ref(&found), false)
        .unwrap();
    assert_eq!(value_of(&p, "manager"), &set("mroe"));
}
