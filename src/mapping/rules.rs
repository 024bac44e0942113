//! The mapping rules of a connector as written in the configuration
//! (`[connectors.NAME.mapping]`), before compilation. See `docs/mapping.md` for the reference
//! with examples.

use serde::{Deserialize, Serialize};

use super::script::ScriptLimits;
use super::transform::TransformSpec;

/// What a rule does when it yields no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnMissing {
    /// Leave the target's value alone: the feed omits the element (Linchpin keeps the value
    /// and makes the field editable again), the webhook omits the key. For the username,
    /// e-mail and full name rules: fall back to the built-in rule.
    Keep,
    /// Empty the field: the feed sends an empty element, the webhook `null`.
    Clear,
    /// Leave the whole user out (of the feed, of the webhook; for identity rules: the user
    /// is not delivered and the reason is recorded) until the rule yields a value.
    Skip,
}

/// One source or several tried in order (the first that yields a value wins: coalesce).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Sources {
    /// One path.
    One(String),
    /// Paths tried in order.
    Many(Vec<String>),
}

impl Sources {
    /// The paths, in order.
    pub fn paths(&self) -> Vec<&str> {
        match self {
            Sources::One(s) => vec![s.as_str()],
            Sources::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// A rule for one of the Confluence identity values (username, full name, e-mail).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// SCIM attribute path(s); several are tried in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Sources>,
    /// Steps applied in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transforms: Vec<TransformSpec>,
    /// Value used when the source and transforms yield nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// What happens when there is still no value (identity rules: `skip`, the default, or
    /// `keep`; `clear` is refused because Confluence needs all three values).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_missing: Option<OnMissing>,
}

/// How many lines of managers a field may reach (`manager.manager.manager.manager.manager`).
/// The product usersync replaces offers three; five leaves room without letting a typo turn
/// into a walk of the whole org chart per user (docs/mapping.md "Lines of managers").
pub const MAX_MANAGER_LEVEL: u8 = 5;

/// A value that is not read from a SCIM path but computed by usersync. Written as a string:
/// `username`, `full_name`, `email`, `manager`, `manager.manager`, … (one `manager` per line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub enum Computed {
    /// The user's Confluence username (identity link, else the username rule).
    Username,
    /// The result of the full name rule.
    FullName,
    /// The result of the e-mail rule.
    Email,
    /// The Confluence username of the manager `level` lines up: 1 is the user's manager
    /// (resolved from `manager.value`, see [`ManagerSettings`]), 2 the manager's manager, and
    /// so on up to [`MAX_MANAGER_LEVEL`].
    Manager(u8),
}

impl Computed {
    /// The manager line a field reads (`None` for the other computed values).
    pub fn manager_level(self) -> Option<u8> {
        match self {
            Computed::Manager(level) => Some(level),
            _ => None,
        }
    }
}

impl TryFrom<String> for Computed {
    type Error = String;

    fn try_from(s: String) -> Result<Computed, String> {
        match s.as_str() {
            "username" => return Ok(Computed::Username),
            "full_name" => return Ok(Computed::FullName),
            "email" => return Ok(Computed::Email),
            _ => {}
        }
        let parts: Vec<&str> = s.split('.').collect();
        if parts.iter().all(|p| *p == "manager") {
            return match u8::try_from(parts.len()) {
                Ok(n) if n <= MAX_MANAGER_LEVEL => Ok(Computed::Manager(n)),
                _ => Err(format!(
                    "`from = \"{s}\"` climbs {} lines of managers; at most {MAX_MANAGER_LEVEL} \
                     are followed",
                    parts.len()
                )),
            };
        }
        Err(format!(
            "unknown computed value {s:?}: expected username, full_name, email, manager, \
             manager.manager, … (one `manager` per line, at most {MAX_MANAGER_LEVEL})"
        ))
    }
}

impl From<Computed> for String {
    fn from(c: Computed) -> String {
        match c {
            Computed::Username => "username".to_owned(),
            Computed::FullName => "full_name".to_owned(),
            Computed::Email => "email".to_owned(),
            Computed::Manager(level) => vec!["manager"; usize::from(level.max(1))].join("."),
        }
    }
}

/// One Linchpin profile field (`[[connectors.NAME.mapping.fields]]`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    /// The field's name: the key in the webhook JSON and in `mapping preview`. A field named
    /// like a built-in default field replaces it.
    pub name: String,
    /// Element name in the XML feed (the field's "XML node name" in Linchpin's Profile
    /// Editor); default: `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xml: Option<String>,
    /// The Linchpin field this fills, by label or business key (`cup.department-1`), for the
    /// `check-config` comparison with Linchpin's field list; default: matched by `xml`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linchpin_field: Option<String>,
    /// Take a computed value instead of (or before) a SCIM path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Computed>,
    /// SCIM attribute path(s); several are tried in order. For `from = "manager"`: where the
    /// reference is read (default `manager.value` of the enterprise extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Sources>,
    /// Steps applied in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transforms: Vec<TransformSpec>,
    /// Value used when nothing else yields one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// What happens when there is no value; default `clear` (the IdP is the source of truth).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_missing: Option<OnMissing>,
}

/// Which attribute of the other users `manager.value` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ManagerKey {
    /// Our SCIM `id` (Entra resolves the manager to the id we issued;
    /// docs/reference/idp-behaviour.md §2.6).
    Id,
    /// The manager's `externalId` (OneLogin templates often send `{$user.id}` there and
    /// OneLogin's own id as the manager; Okta sends its `00u…` id).
    ExternalId,
    /// The manager's enterprise `employeeNumber` (Okta and OneLogin send an HR key;
    /// docs/reference/idp-behaviour.md O10, §4.2).
    EmployeeNumber,
    /// The manager's `userName` (compared case-insensitively).
    UserName,
    /// One of the manager's `emails` values (compared case-insensitively).
    Email,
}

impl ManagerKey {
    /// Every key, in the order resolution without `refers_to` tries them (docs/mapping.md
    /// "Manager resolution"): our own `id` first, since an id we issued names exactly one
    /// user, then the upstream keys.
    pub const ALL: [ManagerKey; 5] = [
        ManagerKey::Id,
        ManagerKey::ExternalId,
        ManagerKey::EmployeeNumber,
        ManagerKey::UserName,
        ManagerKey::Email,
    ];

    /// The spelling used in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            ManagerKey::Id => "id",
            ManagerKey::ExternalId => "externalId",
            ManagerKey::EmployeeNumber => "employeeNumber",
            ManagerKey::UserName => "userName",
            ManagerKey::Email => "email",
        }
    }

    /// Whether values are compared ignoring case (`userName` and e-mail addresses, RFC 7643
    /// §4.1.1/§4.1.2 `caseExact: false`); `id`, `externalId` and `employeeNumber` are exact.
    pub fn ignores_case(self) -> bool {
        matches!(self, ManagerKey::UserName | ManagerKey::Email)
    }

    /// A reference as this key compares it: trimmed, and folded (NFC, lower case) when case
    /// is ignored, the form the store keeps `userName` and e-mail addresses in.
    pub fn normalise(self, value: &str) -> String {
        let v = value.trim();
        if self.ignores_case() {
            crate::scim::identifier::fold(v)
        } else {
            v.to_owned()
        }
    }
}

/// What the manager field says when the manager is deprovisioned (inactive or deleted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnManagerGone {
    /// Keep naming the deprovisioned manager (the org chart stays as it was until the IdP
    /// sends a new manager).
    #[default]
    Keep,
    /// Empty the field.
    Clear,
}

/// Manager resolution (`[connectors.NAME.mapping.manager]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ManagerSettings {
    /// What `manager.value` refers to: `id` (Entra), `externalId`, `employeeNumber`,
    /// `userName` or `email`. When set, **only** that key is matched: the admin said what
    /// the value means, so no other key may answer for it. When unset (the default), the
    /// keys are tried in [`ManagerKey::ALL`] order and a match is used only when exactly one
    /// user matches (docs/mapping.md "Manager resolution").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refers_to: Option<ManagerKey>,
    /// A deprovisioned manager: `keep` naming them or `clear` the field.
    pub on_deprovisioned: OnManagerGone,
}

impl ManagerSettings {
    /// The keys a reference is matched against, in order.
    pub fn keys(&self) -> &'static [ManagerKey] {
        match self.refers_to {
            None => &ManagerKey::ALL,
            Some(ManagerKey::Id) => &[ManagerKey::Id],
            Some(ManagerKey::ExternalId) => &[ManagerKey::ExternalId],
            Some(ManagerKey::EmployeeNumber) => &[ManagerKey::EmployeeNumber],
            Some(ManagerKey::UserName) => &[ManagerKey::UserName],
            Some(ManagerKey::Email) => &[ManagerKey::Email],
        }
    }

    /// How the configuration reads, for `check-config` and `mapping preview`.
    pub fn describe(&self) -> String {
        match self.refers_to {
            Some(k) => format!("{} (refers_to)", k.as_str()),
            None => "any of id, externalId, employeeNumber, userName, email \
                     (no refers_to: used when exactly one user matches)"
                .to_owned(),
        }
    }
}

/// A connector's mapping (`[connectors.NAME.mapping]`). Empty means the built-in rules.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MappingSettings {
    /// The Confluence username (derived once, then kept on the identity link). Default:
    /// `userName`, lower-cased, with the characters Confluence forbids replaced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<RuleSpec>,
    /// The Confluence full name. Default: `displayName`, `name.formatted`, given and family
    /// name, `userName`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_name: Option<RuleSpec>,
    /// The Confluence e-mail. Default: primary, work, first of `emails`, else `userName` if
    /// it is an address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<RuleSpec>,
    /// Start from the built-in profile fields (full name, e-mail, title, department,
    /// organization, division, cost center, employee number, phone, mobile, location,
    /// manager); `fields` add to or replace them by name.
    pub default_fields: bool,
    /// Profile fields.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldSpec>,
    /// Manager resolution.
    pub manager: ManagerSettings,
    /// Bounds of script transforms.
    pub script: ScriptLimits,
}

impl MappingSettings {
    /// Parses the TOML text of a mapping table: what `[connectors.NAME.mapping]` holds in the
    /// configuration file, without the header. The console and the operations API save rules
    /// in this form, and they are read exactly as the file's are.
    pub fn from_toml(text: &str) -> Result<MappingSettings, super::InvalidRules> {
        toml::from_str(text).map_err(|e| {
            super::InvalidRules::new(format!(
                "the mapping is not valid: {}",
                e.to_string().trim_end()
            ))
        })
    }

    /// The rules as the TOML text [`MappingSettings::from_toml`] reads.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }
}

impl Default for MappingSettings {
    fn default() -> Self {
        Self {
            username: None,
            full_name: None,
            email: None,
            default_fields: true,
            fields: Vec::new(),
            manager: ManagerSettings::default(),
            script: ScriptLimits::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn computed_values_read_and_write_as_the_configuration_spells_them() {
        for (text, c) in [
            ("username", Computed::Username),
            ("full_name", Computed::FullName),
            ("email", Computed::Email),
            ("manager", Computed::Manager(1)),
            ("manager.manager.manager", Computed::Manager(3)),
        ] {
            assert_eq!(Computed::try_from(text.to_owned()), Ok(c));
            assert_eq!(String::from(c), text);
        }
        assert_eq!(Computed::Manager(2).manager_level(), Some(2));
        assert_eq!(Computed::Email.manager_level(), None);
        for bad in [
            "",
            "manager.",
            "manager.title",
            "Manager",
            "manager.manager.manager.manager.manager.manager",
        ] {
            assert!(Computed::try_from(bad.to_owned()).is_err(), "{bad}");
        }
    }
}
