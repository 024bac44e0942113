//! The manager reference (docs/reference/design.md "The manager is a reference"): what the manager
//! field says once the store has looked the manager up. Reading the reference from a user is
//! [`crate::scim::enterprise::manager_ref`].
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

use super::rules::{ManagerKey, ManagerSettings};

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

    /// What the lookup found, for an operator (`mapping preview`, the admin API's preview):
    /// the outcome and, when unresolved, what to do about it.
    pub fn describe(&self, connector: &str, settings: &ManagerSettings) -> String {
        let tried = settings
            .keys()
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        match self {
            ManagerLookup::NoReference => "no manager".to_owned(),
            ManagerLookup::OwnSelf => "names the user themself (treated as no manager)".to_owned(),
            ManagerLookup::Found {
                username,
                active,
                by,
            } => format!(
                "found by {}: {username}{}",
                by.as_str(),
                if *active { "" } else { " (deprovisioned)" }
            ),
            ManagerLookup::Deleted { username } => format!("deleted; its link kept {username}"),
            ManagerLookup::Missing => format!(
                "NOT RESOLVED: no user of connector {connector} has this value as {tried} (yet). \
                 The field is left as it is, and the user is delivered again as soon as such a \
                 user arrives. If the manager exists, the IdP sends a value usersync does not \
                 have: send the manager's employeeNumber, externalId or e-mail, or set refers_to"
            ),
            ManagerLookup::Ambiguous { users, keys } => format!(
                "NOT RESOLVED: {users} users of connector {connector} match this value (by {}), \
                 so none is used (never guessed). The field is left as it is. Make the value \
                 unique, or set refers_to to the one key the IdP means",
                keys.iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            ManagerLookup::Unmappable => "found, but has no valid Confluence username".to_owned(),
        }
    }
}
