//! The manager reference (DESIGN.md "The manager is a reference"): reading it from a user,
//! and what the manager field says once the store has looked the manager up.
//!
//! Resolution is one hop: the field names the manager's Confluence username and never follows
//! the manager's own manager, so cycles (A manages B manages A) and self-references cannot
//! loop. A self-reference is treated as no manager: an org chart whose root points at itself
//! is not a hierarchy.
//!
//! Which user a reference names is decided by the keys of
//! [`ManagerSettings::keys`](crate::mapping::rules::ManagerSettings::keys): one key when the
//! connector sets `refers_to`, all of them otherwise. Either way a reference that several
//! users match stays unresolved ([`ManagerLookup::Ambiguous`]): a wrong manager in the org
//! chart is worse than none, and nothing tells which of them the IdP meant.

use serde_json::Value;

use super::rules::ManagerKey;
use crate::scim::resource::Document;
use crate::scim::schema::ENTERPRISE_URN;

/// What the store found for a user's `manager.value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManagerLookup {
    /// The user has no manager reference.
    NoReference,
    /// The reference names the user themself.
    OwnSelf,
    /// Exactly one user of the connector matches.
    Found {
        /// The manager's Confluence username (identity link, else the username rule).
        username: String,
        /// Whether the manager is active.
        active: bool,
        /// The key that matched (the first in [`ManagerKey::ALL`] order when several keys
        /// of that one user match).
        by: ManagerKey,
    },
    /// The referenced user was deleted; its identity link still knows the username.
    Deleted {
        /// The username the link kept.
        username: String,
    },
    /// No user matches (yet): the field stays pending, and the user is delivered again when
    /// a matching user is written.
    Missing,
    /// Several users match: the field stays pending (never a guess), and the user is
    /// delivered again when one of them changes the matching key.
    Ambiguous {
        /// How many users match.
        users: usize,
        /// The keys that matched, in [`ManagerKey::ALL`] order.
        keys: Vec<ManagerKey>,
    },
    /// The manager exists but no valid Confluence username can be derived for them.
    Unmappable,
}

impl ManagerLookup {
    /// Whether the user names a manager that did not resolve to one user (not found yet, or
    /// ambiguous): what `check-config` counts and the log warns about.
    pub fn is_unresolved(&self) -> bool {
        matches!(
            self,
            ManagerLookup::Missing | ManagerLookup::Ambiguous { .. }
        )
    }

    /// A short reason for logs and counts: `found`, `not_found`, `ambiguous`, …
    pub fn reason(&self) -> &'static str {
        match self {
            ManagerLookup::NoReference => "no_reference",
            ManagerLookup::OwnSelf => "self",
            ManagerLookup::Found { .. } => "found",
            ManagerLookup::Deleted { .. } => "deleted",
            ManagerLookup::Missing => "not_found",
            ManagerLookup::Ambiguous { .. } => "ambiguous",
            ManagerLookup::Unmappable => "unmappable",
        }
    }
}

/// The raw `manager.value` of the enterprise extension, trimmed; `None` when absent or blank.
pub fn manager_ref(doc: &Document) -> Option<String> {
    let ext = doc.get(ENTERPRISE_URN)?.as_object()?;
    let manager = ext
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("manager"))
        .map(|(_, v)| v)?;
    let value = match manager {
        Value::Object(m) => m
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("value"))
            .map(|(_, v)| v)?,
        other => other,
    };
    value
        .as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_reference_is_read_trimmed_and_blank_means_none() {
        let doc = |v: Value| -> Document {
            json!({ ENTERPRISE_URN: { "manager": v } })
                .as_object()
                .cloned()
                .unwrap_or_default()
        };
        assert_eq!(
            manager_ref(&doc(json!({"value": " 9a8b "}))).as_deref(),
            Some("9a8b")
        );
        assert_eq!(manager_ref(&doc(json!("E7"))).as_deref(), Some("E7"));
        assert_eq!(manager_ref(&doc(json!({"value": ""}))), None);
        assert_eq!(manager_ref(&Document::new()), None);
    }
}
