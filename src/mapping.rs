//! Mapping: from a SCIM resource to the state it should have in Confluence and to its
//! Linchpin profile.
//!
//! Pure functions over SCIM documents (no I/O, no axum/sqlx/reqwest). The delivery worker asks
//! for the desired state and compares it with the state last applied; the Linchpin feed and
//! the webhook ask for the profile. The functions in this file are the built-in rules, used
//! whenever a connector writes none; [`ConnectorMapping`](crate::mapping::ConnectorMapping) compiles a connector's own rules
//! (`rules` → `source`, `transform`, `script` → `engine`).

pub mod defaults;
pub mod engine;
pub mod manager;
pub mod profile;
pub mod rules;
pub mod script;
pub mod source;
pub mod transform;
pub mod username;

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::scim::resource::Document;
use username::{check_username, derive_username};

pub use engine::{ConnectorMapping, RuleTrace};
pub use manager::ManagerLookup;
pub use profile::{FieldValue, Profile, ProfileField, Skipped};
pub use rules::{ManagerKey, MappingSettings, OnManagerGone, OnMissing};
pub use transform::TransformError;

/// What a user should look like in Confluence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredUser {
    /// Confluence username (derived once, then taken from the identity link).
    pub username: String,
    /// Full name.
    pub full_name: String,
    /// E-mail address.
    pub email: String,
    /// Whether the account is enabled.
    pub active: bool,
    /// Confluence groups the user belongs to (names).
    pub groups: BTreeSet<String>,
}

/// A connector's mapping rules cannot be compiled. The message names the rule or field and
/// says what to fix; it is shown at start and by `check-config`, and nothing branches on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidRules(String);

impl InvalidRules {
    /// A problem, worded for the operator.
    pub fn new(message: impl Into<String>) -> Self {
        InvalidRules(message.into())
    }

    /// The same problem, prefixed with where it is (`mapping field "x"`).
    pub fn at(self, place: impl std::fmt::Display) -> Self {
        InvalidRules(format!("{place}: {}", self.0))
    }
}

/// Why a resource cannot be mapped. Retrying does not help until the data or rules change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    /// The username rule produced a name Confluence refuses.
    #[error("the Confluence username derived from userName is not valid: {0}")]
    InvalidUsername(String),
    /// Confluence needs an e-mail address and the user has none.
    #[error("the user has no e-mail address (emails) and userName is not one; Confluence requires an e-mail")]
    NoEmail,
    /// A connector rule yielded no value and its `on_missing` says to skip the user.
    #[error("the connector's {rule} rule yields no value for this user (on_missing = \"skip\")")]
    NoValue {
        /// `username`, `full_name` or `email`.
        rule: &'static str,
    },
    /// A connector rule failed (a script hit a bound, a date did not parse).
    #[error("the connector's {rule} rule failed: {reason}")]
    Rule {
        /// `username`, `full_name` or `email`.
        rule: &'static str,
        /// Why, without the value.
        reason: TransformError,
    },
}

/// The Confluence username for a SCIM user: the default connector rule (lower-cased
/// `userName`, forbidden characters replaced), checked against Confluence's rules.
pub fn username(doc: &Document) -> Result<String, MappingError> {
    let user_name = doc
        .get("userName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let name = derive_username(user_name);
    check_username(&name).map_err(|why| MappingError::InvalidUsername(why.to_string()))?;
    Ok(name)
}

/// The full name: `displayName`, else `name.formatted`, else given and family name, else
/// `userName`. Confluence refuses blank names and `<`/`>`, so those are dropped.
pub fn full_name(doc: &Document) -> String {
    let text = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let name = doc.get("name");
    let parts = || {
        let given = text(name.and_then(|n| n.get("givenName")));
        let family = text(name.and_then(|n| n.get("familyName")));
        match (given, family) {
            (None, None) => None,
            (g, f) => Some([g, f].into_iter().flatten().collect::<Vec<_>>().join(" ")),
        }
    };
    let chosen = text(doc.get("displayName"))
        .or_else(|| text(name.and_then(|n| n.get("formatted"))))
        .or_else(parts)
        .or_else(|| text(doc.get("userName")))
        .unwrap_or_default();
    chosen.replace(['<', '>'], "")
}

/// The e-mail: the primary of `emails`, else a `work` one, else the first, else `userName`
/// when it looks like an address (Entra and Okta usually send a UPN or an e-mail there).
pub fn email(doc: &Document) -> Result<String, MappingError> {
    let emails: Vec<&Value> = doc
        .get("emails")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    fn value<'v>(e: &&'v Value) -> Option<&'v str> {
        e.get("value")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }
    let pick = emails
        .iter()
        .find(|e| e.get("primary") == Some(&Value::Bool(true)))
        .and_then(value)
        .or_else(|| {
            emails
                .iter()
                .find(|e| e.get("type").and_then(Value::as_str) == Some("work"))
                .and_then(value)
        })
        .or_else(|| emails.iter().find_map(value));
    match pick {
        Some(e) => Ok(e.to_owned()),
        None => match doc.get("userName").and_then(Value::as_str) {
            Some(u) if u.contains('@') => Ok(u.trim().to_owned()),
            _ => Err(MappingError::NoEmail),
        },
    }
}

/// Whether the user should be enabled. An absent `active` means enabled: IdPs that never send
/// it would otherwise create only disabled accounts.
pub fn active(doc: &Document) -> bool {
    doc.get("active").and_then(Value::as_bool).unwrap_or(true)
}

/// How SCIM group names become Confluence group names, per connector.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GroupRules {
    /// Prefix put before every group name (e.g. `"entra-"`).
    pub prefix: String,
    /// Only SCIM groups whose displayName matches one of these glob patterns (`*` matches any
    /// run of characters, case-insensitive) reach Confluence. Empty: all.
    pub allow: Vec<String>,
    /// SCIM groups matching one of these patterns never reach Confluence.
    pub deny: Vec<String>,
}

impl GroupRules {
    /// The Confluence group for a SCIM group display name, or `None` when the rules keep it
    /// out of Confluence. Confluence group names are lower case (docs/reference/confluence-api.md
    /// §1.2).
    pub fn confluence_name(&self, display_name: &str) -> Option<String> {
        let allowed = self.allow.is_empty() || self.allow.iter().any(|p| glob(p, display_name));
        if !allowed || self.deny.iter().any(|p| glob(p, display_name)) {
            return None;
        }
        // Lower case, and in NFC like user names: one spelling, one Confluence group.
        let name =
            crate::scim::identifier::fold(&format!("{}{}", self.prefix, display_name.trim()));
        (!name.trim().is_empty()).then_some(name)
    }
}

/// Case-insensitive glob with `*` as the only wildcard.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (
        crate::scim::identifier::fold(pattern),
        crate::scim::identifier::fold(text),
    );
    let parts: Vec<&str> = p.split('*').collect();
    if parts.len() == 1 {
        return p == t;
    }
    let mut rest = t.as_str();
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else if let Some(pos) = rest.find(part) {
            rest = &rest[pos + part.len()..];
        } else {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(v: Value) -> Document {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn full_name_falls_back_in_order() {
        assert_eq!(
            full_name(&doc(
                json!({"displayName": "Ada L", "name": {"formatted": "x"}})
            )),
            "Ada L"
        );
        assert_eq!(
            full_name(&doc(
                json!({"name": {"givenName": "Ada", "familyName": "Lovelace"}})
            )),
            "Ada Lovelace"
        );
        assert_eq!(
            full_name(&doc(json!({"userName": "ada@x.org"}))),
            "ada@x.org"
        );
        assert_eq!(
            full_name(&doc(json!({"displayName": "<b>Ada</b>"}))),
            "bAda/b"
        );
    }

    #[test]
    fn email_prefers_primary_then_work_then_first_then_user_name() {
        let both = json!({"emails": [{"value": "home@x", "type": "home"}, {"value": "work@x", "type": "work"}]});
        assert_eq!(email(&doc(both)).unwrap(), "work@x");
        let primary = json!({"emails": [{"value": "a@x"}, {"value": "p@x", "primary": true}]});
        assert_eq!(email(&doc(primary)).unwrap(), "p@x");
        assert_eq!(email(&doc(json!({"userName": "u@x"}))).unwrap(), "u@x");
        assert_eq!(
            email(&doc(json!({"userName": "u"}))),
            Err(MappingError::NoEmail)
        );
    }

    #[test]
    fn absent_active_means_enabled() {
        assert!(active(&doc(json!({}))));
        assert!(!active(&doc(json!({"active": false}))));
    }

    #[test]
    fn group_rules_prefix_lowercase_allow_and_deny() {
        let rules = GroupRules {
            prefix: "Entra-".into(),
            allow: vec!["Linchpin*".into(), "*editors".into()],
            deny: vec!["*secret*".into()],
        };
        assert_eq!(
            rules.confluence_name("Linchpin Readers"),
            Some("entra-linchpin readers".into())
        );
        assert_eq!(
            rules.confluence_name("Space EDITORS"),
            Some("entra-space editors".into())
        );
        assert_eq!(rules.confluence_name("Sales"), None);
        assert_eq!(rules.confluence_name("Linchpin secret club"), None);
        assert!(glob("a*b*c", "axxbyyc") && !glob("a*b*c", "axxbyy") && glob("*", ""));
    }
}
