//! The manager reference (DESIGN.md "The manager is a reference"): what the manager field
//! says once the store has looked the manager up. Reading the reference from a user is
//! [`crate::scim::enterprise::manager_ref`].
//!
//! Resolution is one hop: the field names the manager's Confluence username and never follows
//! the manager's own manager, so cycles (A manages B manages A) and self-references cannot
//! loop. A self-reference is treated as no manager: an org chart whose root points at itself
//! is not a hierarchy.

/// What the store found for a user's `manager.value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManagerLookup {
    /// The user has no manager reference.
    NoReference,
    /// The reference names the user themself.
    OwnSelf,
    /// A user of the connector matches.
    Found {
        /// The manager's Confluence username (identity link, else the username rule).
        username: String,
        /// Whether the manager is active.
        active: bool,
    },
    /// The referenced user was deleted; its identity link still knows the username.
    Deleted {
        /// The username the link kept.
        username: String,
    },
    /// No user matches (yet): the field stays pending, and the user is delivered again when
    /// a matching user is written.
    Missing,
    /// The manager exists but no valid Confluence username can be derived for them.
    Unmappable,
}
