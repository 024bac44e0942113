//! What delivery and reconcile need to know about a connector, asked of whoever built the
//! connectors' state: the runtime (`crate::runtime`) in the service and every command, a
//! [`Fixed`] table in tests. Neither the worker nor reconcile builds connector state of its
//! own, and neither depends on the configuration.

use std::collections::HashMap;
use std::sync::Arc;

use super::settings::Provisioning;
use crate::profiles::ProfileTargets;

/// A connector's provisioning policy and profile targets, by name.
pub trait ConnectorLookup: Send + Sync {
    /// How `connector`'s users and groups are provisioned into Confluence (the defaults for a
    /// connector the configuration does not declare).
    fn provisioning(&self, connector: &str) -> Arc<Provisioning>;
    /// `connector`'s mapping, feed and webhook (the built-in mapping and neither feed nor
    /// webhook for a connector the configuration does not declare).
    fn profile_targets(&self, connector: &str) -> Arc<ProfileTargets>;
    /// The connectors the configuration declares, by name.
    fn declared(&self) -> Vec<String>;
}

/// A fixed table (tests and tools): the connectors listed, and the defaults for the others.
#[derive(Debug)]
pub struct Fixed {
    provisioning: HashMap<String, Arc<Provisioning>>,
    targets: HashMap<String, Arc<ProfileTargets>>,
    default_provisioning: Arc<Provisioning>,
    default_targets: Arc<ProfileTargets>,
}

impl Default for Fixed {
    fn default() -> Self {
        Self {
            provisioning: HashMap::new(),
            targets: HashMap::new(),
            default_provisioning: Arc::default(),
            default_targets: Arc::new(ProfileTargets::builtin()),
        }
    }
}

impl Fixed {
    /// Each listed connector's provisioning policy; the built-in mapping for all.
    pub fn new(provisioning: HashMap<String, Provisioning>) -> Self {
        Self {
            provisioning: provisioning
                .into_iter()
                .map(|(n, p)| (n, Arc::new(p)))
                .collect(),
            ..Self::default()
        }
    }

    /// Adds or replaces one connector's profile targets.
    pub fn with_targets(mut self, connector: &str, targets: ProfileTargets) -> Self {
        self.targets.insert(connector.to_owned(), Arc::new(targets));
        self
    }
}

impl ConnectorLookup for Fixed {
    fn provisioning(&self, connector: &str) -> Arc<Provisioning> {
        self.provisioning
            .get(connector)
            .unwrap_or(&self.default_provisioning)
            .clone()
    }

    fn profile_targets(&self, connector: &str) -> Arc<ProfileTargets> {
        self.targets
            .get(connector)
            .unwrap_or(&self.default_targets)
            .clone()
    }

    fn declared(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .provisioning
            .keys()
            .chain(self.targets.keys())
            .cloned()
            .collect();
        names.sort();
        names.dedup();
        names
    }
}
