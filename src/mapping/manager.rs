//! The manager reference (docs/reference/design.md "The manager is a reference"): what the manager
//! field says once the store has looked the manager up. Reading the reference from a user is
//! [`crate::scim::enterprise::manager_ref`].
//!
//! Each line is one hop: the `manager` field names the manager's Confluence username; a
//! `manager.manager` field takes the next lookup of the user's [chain](line()), which the
//! resolver follows from the manager's own `manager.value` no further than the deepest field
//! of the mapping asks (docs/mapping.md "Lines of managers"). A self-reference is treated as no
//! manager (an org chart whose root points at itself is not a hierarchy), and a chain that
//! comes back to someone already in it (A manages B manages A) ends there the same way, so
//! cycles cannot loop.
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

/// The lookup of the manager `level` lines up (1 = the manager) in a user's chain, where
/// `chain[0]` is the manager, `chain[1]` the manager's manager, and so on. The resolver fills
/// a chain as deep as the mapping reads; a level beyond it is [`ManagerLookup::Missing`], so
/// a field the resolver did not reach is left as the target has it rather than cleared.
pub fn line(chain: &[ManagerLookup], level: u8) -> ManagerLookup {
    usize::from(level)
        .checked_sub(1)
        .and_then(|i| chain.get(i))
        .cloned()
        .unwrap_or(ManagerLookup::Missing)
}

/// What the next line of a chain is when the line `previous` found nobody to follow: the
/// line has ended (no manager, the user themself, a cycle) or cannot be known (a manager not
/// found, ambiguous or deleted: their own manager is unknown, so the field stays pending).
pub fn after_end(previous: &ManagerLookup) -> ManagerLookup {
    match previous {
        ManagerLookup::Missing
        | ManagerLookup::Ambiguous { .. }
        | ManagerLookup::Deleted { .. } => ManagerLookup::Missing,
        _ => ManagerLookup::NoReference,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_beyond_the_chain_is_pending_and_an_ended_line_stays_empty() {
        let found = ManagerLookup::Found {
            username: "boss".into(),
            active: true,
            by: ManagerKey::Id,
        };
        let chain = [found.clone(), ManagerLookup::NoReference];
        assert_eq!(line(&chain, 1), found);
        assert_eq!(line(&chain, 2), ManagerLookup::NoReference);
        assert_eq!(line(&chain, 3), ManagerLookup::Missing);
        assert_eq!(line(&chain, 0), ManagerLookup::Missing);
        assert_eq!(
            after_end(&ManagerLookup::OwnSelf),
            ManagerLookup::NoReference
        );
        assert_eq!(after_end(&ManagerLookup::Missing), ManagerLookup::Missing);
        assert_eq!(
            after_end(&ManagerLookup::Deleted {
                username: "gone".into()
            }),
            ManagerLookup::Missing
        );
    }
}
