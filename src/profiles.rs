//! Mapped profiles (a [`Profile`](crate::mapping::Profile): one user's fields as a
//! connector's mapping computes them) and where they go. Per connector,
//! [`ProfileTargets`](crate::profiles::ProfileTargets):
//! the compiled mapping, the Linchpin feed's settings and key, the webhook client, built once
//! by the runtime (`crate::runtime`); the resolver that turns stored users into profiles with
//! their manager looked up ([`resolve`](crate::profiles::resolve)); and the streamed Linchpin
//! feed ([`feed`](crate::profiles::feed)).
//!
//! "Profile" means one thing: a mapped user. What used to be called a connector's
//! "profiles" is its profile *targets*, and the registry of all connectors' targets is the
//! runtime's table of connectors.
//!
//! Used by the feed route, the delivery worker's webhook step and `mapping preview`, so all
//! three show the same thing.

pub mod feed;
pub mod pool;
pub mod resolve;

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;

use subtle::ConstantTimeEq;

use crate::mapping::{ConnectorMapping, ManagerLookup};
use crate::targets::linchpin::FeedSettings;
use crate::targets::webhook::WebhookClient;

/// Where one connector's profiles go, and the mapping that computes them.
#[derive(Debug)]
pub struct ProfileTargets {
    /// The compiled mapping.
    pub mapping: ConnectorMapping,
    /// Feed settings.
    pub feed: FeedSettings,
    /// The feed key; `None`: the connector has no feed.
    feed_key: Option<Vec<u8>>,
    /// The webhook, if configured.
    pub webhook: Option<WebhookClient>,
    /// Digests of the (user, reference, outcome) already warned about as unresolved, so a
    /// feed pulled every few minutes warns once per change, not once per pull.
    warned: Mutex<HashSet<u64>>,
}

/// Unresolved references remembered as warned; beyond this the memory starts afresh (and
/// each one is warned about once more).
const WARNED_MAX: usize = 100_000;

impl ProfileTargets {
    /// Targets from parts (the runtime builds them from a connector's settings).
    pub fn new(
        mapping: ConnectorMapping,
        feed: FeedSettings,
        feed_key: Option<&str>,
        webhook: Option<WebhookClient>,
    ) -> Self {
        Self {
            mapping,
            feed,
            feed_key: feed_key.map(|k| k.as_bytes().to_vec()),
            webhook,
            warned: Mutex::default(),
        }
    }

    /// Built-in mapping, no feed, no webhook: connectors created with the CLI.
    pub fn builtin() -> Self {
        Self {
            mapping: ConnectorMapping::builtin(),
            feed: FeedSettings::default(),
            feed_key: None,
            webhook: None,
            warned: Mutex::default(),
        }
    }

    /// Whether the connector serves a feed.
    pub fn has_feed(&self) -> bool {
        self.feed_key.is_some()
    }

    /// Whether `given` is the feed key, compared in constant time.
    pub fn feed_key_matches(&self, given: &str) -> bool {
        match &self.feed_key {
            Some(key) => bool::from(key.as_slice().ct_eq(given.as_bytes())),
            None => false,
        }
    }

    /// Warns, once per user, reference and outcome for the life of the process, that a
    /// user's manager reference resolves to no single user: the feed and the webhook leave
    /// the field as it is, which nobody would notice otherwise. The line names the
    /// connector, the user's SCIM id (which `usersync mapping preview` accepts), the reason
    /// and the reference when it is an identifier (see
    /// [`loggable_reference`](resolve::loggable_reference)); never the user's attributes.
    pub fn note_unresolved(
        &self,
        connector: &str,
        scim_id: &str,
        reference: &str,
        lookup: &ManagerLookup,
    ) {
        let mut h = DefaultHasher::new();
        (connector, scim_id, reference, lookup.reason()).hash(&mut h);
        let digest = h.finish();
        {
            let mut warned = self.warned.lock().unwrap_or_else(|p| p.into_inner());
            if warned.len() >= WARNED_MAX {
                warned.clear();
            }
            if !warned.insert(digest) {
                return;
            }
        }
        let candidates = match lookup {
            ManagerLookup::Ambiguous { users, .. } => *users,
            _ => 0,
        };
        let keys = match lookup {
            ManagerLookup::Ambiguous { keys, .. } => keys
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(","),
            _ => String::new(),
        };
        tracing::warn!(
            connector,
            scim.id = scim_id,
            manager.reference = %resolve::loggable_reference(reference),
            manager.reason = lookup.reason(),
            manager.refers_to = %self.mapping.manager().describe(),
            manager.candidates = candidates,
            manager.matched_keys = keys,
            "the manager reference names no single user of the connector; the manager field \
             is left as it is (see usersync mapping preview)"
        );
    }

    /// A digest of everything that shapes the feed's bytes besides the data: the rules and
    /// the feed settings (for the `ETag`).
    pub fn feed_fingerprint(&self) -> String {
        format!(
            "{}:{}",
            self.mapping.fingerprint(),
            serde_json::to_string(&self.feed).unwrap_or_default()
        )
    }
}
