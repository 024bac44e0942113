//! The state a user should have in Confluence, computed in one place for the delivery worker
//! (which converges it) and for reconcile (which compares it with what Confluence really
//! holds), so the two can never disagree about what "right" is.

use std::collections::BTreeSet;

use super::settings::Provisioning;
use crate::mapping::{self, ConnectorMapping, DesiredUser, MappingError};
use crate::scim::resource::Document;

/// The Confluence username of a user: the one kept on its identity link (derived once, then
/// persisted: docs/reference/design.md "Identity links are explicit"), else the connector's rule. Pass the
/// link's name only when the link is not a refused conflict (a conflict's name is what the
/// rule gave last time, not a name usersync holds).
pub fn username(
    mapping: &ConnectorMapping,
    doc: &Document,
    linked_name: Option<&str>,
) -> Result<String, MappingError> {
    match linked_name {
        Some(name) => Ok(name.to_owned()),
        None => mapping.username(doc),
    }
}

/// Whether a user with this `active` state is in groups at all: an active user is, a
/// deprovisioned one only when the connector keeps memberships on deprovisioning.
pub fn keeps_groups(prov: &Provisioning, active: bool) -> bool {
    active || !prov.remove_groups_on_deprovision
}

/// The Confluence groups of a user in the SCIM groups `scim_groups` (`(id, displayName)`, as
/// [`Store::groups_of`](crate::store::Store::groups_of) lists them): the connector's default
/// groups and the Confluence name of each SCIM group its rules let through, lower case.
pub fn groups(prov: &Provisioning, scim_groups: &[(String, String)]) -> BTreeSet<String> {
    let mut g: BTreeSet<String> = prov
        .default_groups
        .iter()
        .map(|g| g.to_lowercase())
        .collect();
    for (_, name) in scim_groups {
        g.extend(prov.groups.confluence_name(name));
    }
    g
}

/// The desired state of a user from its current document. `scim_groups` is only read when
/// [`keeps_groups`] says the user has groups. Errors name the rule, never the value.
pub fn user(
    prov: &Provisioning,
    mapping: &ConnectorMapping,
    doc: &Document,
    linked_name: Option<&str>,
    scim_groups: &[(String, String)],
) -> Result<DesiredUser, MappingError> {
    let username = username(mapping, doc, linked_name)?;
    let email = mapping.email(doc)?;
    let full_name = mapping.full_name(doc)?;
    let active = mapping::active(doc);
    let groups = if keeps_groups(prov, active) {
        groups(prov, scim_groups)
    } else {
        BTreeSet::new()
    };
    Ok(DesiredUser {
        username,
        full_name,
        email,
        active,
        groups,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::mapping::GroupRules;

    fn doc(v: serde_json::Value) -> Document {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn the_linked_name_wins_and_groups_follow_the_rules_and_the_deprovisioning_policy() {
        let mapping = ConnectorMapping::builtin();
        let prov = Provisioning {
            remove_groups_on_deprovision: true,
            groups: GroupRules {
                prefix: "idp-".into(),
                deny: vec!["secret*".into()],
                ..GroupRules::default()
            },
            ..Provisioning::default()
        };
        let ada = doc(json!({"userName": "Ada@Example.com", "displayName": "Ada"}));
        let scim = [
            ("g1".to_owned(), "Editors".to_owned()),
            ("g2".to_owned(), "Secret Club".to_owned()),
        ];
        let d = user(&prov, &mapping, &ada, Some("ada-kept"), &scim).expect("maps");
        assert_eq!(d.username, "ada-kept");
        assert_eq!(d.email, "Ada@Example.com");
        assert!(d.active);
        assert_eq!(
            d.groups.into_iter().collect::<Vec<_>>(),
            ["confluence-users", "idp-editors"]
        );
        let fresh = user(&prov, &mapping, &ada, None, &scim).expect("maps");
        assert_eq!(fresh.username, "ada@example.com");
        let mut leaver = ada.clone();
        leaver.insert("active".into(), json!(false));
        let gone = user(&prov, &mapping, &leaver, None, &scim).expect("maps");
        assert!(!gone.active && gone.groups.is_empty());
        assert!(user(&prov, &mapping, &doc(json!({"userName": "x"})), None, &[]).is_err());
    }
}
