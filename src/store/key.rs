//! The identity of one resource across the service: which connector it belongs to, its type
//! and its SCIM id. The store's resource operations, the sync queue, the attempt records and
//! delivery all name a resource by it, instead of three loose arguments that are easy to
//! pass in the wrong order.

use crate::scim::schema::ResourceKind;

/// A resource key: connector, kind, SCIM id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceKey {
    /// Connector name.
    pub connector: String,
    /// User or Group.
    pub kind: ResourceKind,
    /// SCIM id.
    pub id: String,
}

impl ResourceKey {
    /// A key from its parts.
    pub fn new(connector: impl Into<String>, kind: ResourceKind, id: impl Into<String>) -> Self {
        Self {
            connector: connector.into(),
            kind,
            id: id.into(),
        }
    }

    /// A user's key.
    pub fn user(connector: impl Into<String>, id: impl Into<String>) -> Self {
        Self::new(connector, ResourceKind::User, id)
    }

    /// A group's key.
    pub fn group(connector: impl Into<String>, id: impl Into<String>) -> Self {
        Self::new(connector, ResourceKind::Group, id)
    }
}
