//! Mapped profiles with their references resolved against the store: one per connector
//! ([`ConnectorProfiles`](crate::profiles::ConnectorProfiles): compiled mapping, feed settings and key, webhook client), the
//! resolver that turns stored users into [`Profile`](crate::mapping::Profile)s with their
//! manager looked up ([`resolve`](crate::profiles::resolve)), and the streamed Linchpin feed ([`feed`](crate::profiles::feed)).
//!
//! Used by the feed route, the delivery worker's webhook step and `mapping preview`, so all
//! three show the same thing.

pub mod feed;
pub mod pool;
pub mod resolve;

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};

use subtle::ConstantTimeEq;

use crate::config::Settings;
use crate::mapping::{ConnectorMapping, ManagerLookup, MappingSettings};
use crate::scim::schema::SchemaRegistry;
use crate::targets::linchpin::FeedSettings;
use crate::targets::webhook::WebhookClient;

/// One connector's profile targets.
#[derive(Debug)]
pub struct ConnectorProfiles {
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

impl ConnectorProfiles {
    /// Targets from parts (tests and tools).
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

/// Every connector's profile targets.
#[derive(Debug)]
pub struct Profiles {
    by_connector: HashMap<String, Arc<ConnectorProfiles>>,
    fallback: Arc<ConnectorProfiles>,
}

impl Default for Profiles {
    fn default() -> Self {
        Self {
            by_connector: HashMap::new(),
            fallback: Arc::new(ConnectorProfiles::builtin()),
        }
    }
}

impl Profiles {
    /// Compiles the mapping of every connector in `settings` against `reg`, reads feed keys
    /// and webhook secrets through `env`. Errors name the connector and what to fix.
    pub fn build(
        settings: &Settings,
        reg: &SchemaRegistry,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Profiles, String> {
        let mut by_connector = HashMap::new();
        for (name, c) in &settings.connectors {
            let at = |e: String| format!("[connectors.{name}] {e}");
            let mapping =
                ConnectorMapping::compile(&c.mapping, reg).map_err(|e| at(e.to_string()))?;
            let feed_key = match &c.linchpin.feed_key_env {
                Some(var) => Some(
                    env(var)
                        .map(|v| v.trim().as_bytes().to_vec())
                        .ok_or_else(|| at(format!("linchpin.feed_key_env: {var} is not set")))?,
                ),
                None => None,
            };
            let webhook = match &c.webhook {
                Some(w) => {
                    let secret = env(&w.secret_env).ok_or_else(|| {
                        at(format!("webhook.secret_env: {} is not set", w.secret_env))
                    })?;
                    Some(WebhookClient::new(w, secret.into_bytes()).map_err(at)?)
                }
                None => None,
            };
            by_connector.insert(
                name.clone(),
                Arc::new(ConnectorProfiles {
                    mapping,
                    feed: c.linchpin.clone(),
                    feed_key,
                    webhook,
                    warned: Mutex::default(),
                }),
            );
        }
        let fallback = Arc::new(ConnectorProfiles {
            mapping: ConnectorMapping::compile(&MappingSettings::default(), reg)
                .map_err(|e| e.to_string())?,
            ..ConnectorProfiles::builtin()
        });
        Ok(Profiles {
            by_connector,
            fallback,
        })
    }

    /// From the process environment.
    pub fn from_settings(settings: &Settings, reg: &SchemaRegistry) -> Result<Profiles, String> {
        Self::build(settings, reg, &|var| {
            settings
                .secrets
                .get(var)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        })
    }

    /// A connector's targets (the built-in ones for connectors the file does not declare).
    pub fn get(&self, connector: &str) -> Arc<ConnectorProfiles> {
        self.by_connector
            .get(connector)
            .cloned()
            .unwrap_or_else(|| self.fallback.clone())
    }

    /// Adds or replaces one connector's targets (tests and tools).
    pub fn insert(&mut self, connector: &str, profiles: ConnectorProfiles) {
        self.by_connector
            .insert(connector.to_owned(), Arc::new(profiles));
    }
}
