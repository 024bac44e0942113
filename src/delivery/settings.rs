//! Delivery settings: the worker's (`[delivery]`) and each connector's provisioning policy
//! (`[connectors.NAME.provisioning]`).

use serde::{Deserialize, Serialize};

use super::policy::RetryPolicy;
use crate::mapping::GroupRules;
use crate::values::Dur;

/// What SCIM DELETE of a user does in Confluence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnDelete {
    /// Disable the account: it keeps its content and can be re-enabled (the default).
    #[default]
    Disable,
    /// Delete the account: Confluence anonymises its content. Cannot be undone.
    Delete,
}

/// What happens when the Confluence username of a new SCIM user already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnConflict {
    /// Link the SCIM user to the existing account and manage it from now on (for migrations
    /// from LDAP or manual accounts with the same usernames).
    Adopt,
    /// Leave the existing account alone and report the conflict (the default: an unrelated
    /// local account is never taken over by accident).
    #[default]
    Refuse,
}

/// What SCIM DELETE of a group does in Confluence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnGroupDelete {
    /// Keep the Confluence group; usersync removes the memberships it manages (the default:
    /// deleting a group hides the content restricted to it).
    #[default]
    Keep,
    /// Delete the Confluence group.
    Delete,
}

/// A connector's provisioning policy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Provisioning {
    /// SCIM DELETE of a user: `disable` or `delete`.
    pub on_delete: OnDelete,
    /// Also remove a deprovisioned user (inactive or deleted) from its groups; re-activation
    /// adds them back.
    pub remove_groups_on_deprovision: bool,
    /// A new user's username already exists in Confluence: `adopt` or `refuse`.
    pub on_conflict: OnConflict,
    /// Groups every provisioned user joins; `confluence-users` carries the "can use"
    /// permission and the licence, so without it a user cannot log in.
    pub default_groups: Vec<String>,
    /// How SCIM groups become Confluence groups.
    pub groups: GroupRules,
    /// SCIM DELETE of a group: `keep` or `delete` the Confluence group.
    pub on_group_delete: OnGroupDelete,
}

impl Default for Provisioning {
    fn default() -> Self {
        Self {
            on_delete: OnDelete::Disable,
            remove_groups_on_deprovision: false,
            on_conflict: OnConflict::Refuse,
            default_groups: vec!["confluence-users".to_owned()],
            groups: GroupRules::default(),
            on_group_delete: OnGroupDelete::Keep,
        }
    }
}

/// The worker's settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliverySettings {
    /// Run the delivery worker in `serve` (turn off to run API and worker apart).
    pub enabled: bool,
    /// Delay before each retry; after the last the key is parked as dead.
    pub retry_schedule: Vec<Dur>,
    /// ± fraction of jitter on each delay.
    pub jitter: f64,
    /// Largest `Retry-After` honoured.
    pub max_retry_after: Dur,
    /// Keys converged at the same time.
    pub concurrency: usize,
    /// How often to look for due keys when not woken by a write.
    pub poll_interval: Dur,
    /// How long a claimed key is reserved; a worker that dies leaves it to expire.
    pub lease: Dur,
    /// How long attempt records are kept.
    pub attempt_retention: Dur,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        let p = RetryPolicy::default();
        Self {
            enabled: true,
            retry_schedule: p.schedule.iter().map(|d| Dur(*d)).collect(),
            jitter: p.jitter,
            max_retry_after: Dur(p.max_retry_after),
            concurrency: 4,
            poll_interval: Dur(std::time::Duration::from_secs(1)),
            lease: Dur(std::time::Duration::from_secs(60)),
            attempt_retention: Dur(std::time::Duration::from_secs(30 * 86400)),
        }
    }
}

impl DeliverySettings {
    /// The retry policy these settings describe.
    pub fn policy(&self) -> RetryPolicy {
        RetryPolicy {
            schedule: self.retry_schedule.iter().map(|d| d.0).collect(),
            jitter: self.jitter.clamp(0.0, 1.0),
            max_retry_after: self.max_retry_after.0,
            ..RetryPolicy::default()
        }
    }
}
