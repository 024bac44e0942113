//! Shared state of the HTTP layer.

use std::ops::Deref;
use std::sync::Arc;

use crate::auth::Authenticator;
use crate::config::Settings;
use crate::connectors::Connectors;
use crate::scim::filter;
use crate::scim::schema::SchemaRegistry;
use crate::search::Paging;
use crate::store::Store;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<StateInner>);

/// The contents of [`AppState`].
pub struct StateInner {
    /// Settings, validated.
    pub settings: Arc<Settings>,
    /// Schemas and resource types.
    pub schemas: Arc<SchemaRegistry>,
    /// The store.
    pub store: Store,
    /// Connectors and their stored or configured bearer tokens.
    pub connectors: Connectors,
    /// Every authentication mode of every connector.
    pub auth: Authenticator,
}

impl AppState {
    /// Bundles the state.
    pub fn new(
        settings: Arc<Settings>,
        schemas: Arc<SchemaRegistry>,
        store: Store,
        connectors: Connectors,
        auth: Authenticator,
    ) -> Self {
        AppState(Arc::new(StateInner {
            settings,
            schemas,
            store,
            connectors,
            auth,
        }))
    }

    /// Filter limits from the settings.
    pub fn filter_limits(&self) -> filter::Limits {
        filter::Limits {
            max_len: self.settings.limits.filter_max_len,
            max_depth: self.settings.limits.filter_max_depth,
            ..filter::Limits::default()
        }
    }

    /// Page sizes from the settings.
    pub fn paging(&self) -> Paging {
        Paging {
            default: self.settings.limits.default_page_size,
            max: self.settings.limits.max_page_size,
        }
    }
}

impl Deref for AppState {
    type Target = StateInner;

    fn deref(&self) -> &StateInner {
        &self.0
    }
}
