//! Delivery settings: the worker's (`[delivery]`) and each connector's provisioning policy
//! (`[connectors.NAME.provisioning]`).

use serde::{Deserialize, Serialize};

use super::health::HealthSettings;
use super::policy::RetryPolicy;
use crate::errors::ConfigError;
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

/// What a reconcile run does with an *orphan*: an enabled Confluence account no user of the
/// IdP accounts for (docs/delivery.md, Reconcile).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Orphans {
    /// List it in the run's report and leave it alone (the default).
    #[default]
    Report,
    /// Disable it: an account usersync created whose user the IdP deleted goes through
    /// delivery (`on_delete`); an account usersync never managed is disabled, never deleted,
    /// and only when every connector says `disable` and the account is not protected.
    Disable,
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
    /// Reconcile's orphans (enabled accounts no IdP user accounts for): `report` or `disable`.
    pub orphans: Orphans,
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
            orphans: Orphans::Report,
        }
    }
}

/// The worker's settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliverySettings {
    /// Run the delivery worker in `serve` (turn off to run API and worker apart).
    pub enabled: bool,
    /// Delay before each retry of a key's own failure; after the last the key is parked as
    /// dead. Conditions of a target (rate limits, outages, refused credentials) never count.
    pub retry_schedule: Vec<Dur>,
    /// ± fraction of jitter on each delay.
    pub jitter: f64,
    /// Largest `Retry-After` honoured.
    pub max_retry_after: Dur,
    /// Wait before probing a target found down (no `Retry-After`); doubled after each failed
    /// probe, up to `probe_interval_max`. Also the shortest wait after a rate limit.
    pub probe_interval: Dur,
    /// Longest wait between probes of a target that is down: keys waiting for it go at most
    /// this long after it answers again.
    pub probe_interval_max: Dur,
    /// Wait between probes of a target that refuses usersync's credentials (an administrator
    /// must act; each probe is a failed login of the service account).
    pub credentials_probe_interval: Dur,
    /// Keys converged at the same time.
    pub concurrency: usize,
    /// How often to look for due keys when not woken by a write.
    pub poll_interval: Dur,
    /// How long a claimed key is reserved unless its holder renews it (every third of it,
    /// while the key converges); a killed instance's keys are taken over when it lapses.
    pub lease: Dur,
    /// How long attempt records are kept.
    pub attempt_retention: Dur,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        let p = RetryPolicy::default();
        let h = HealthSettings::default();
        Self {
            enabled: true,
            retry_schedule: p.schedule.iter().map(|d| Dur(*d)).collect(),
            jitter: p.jitter,
            max_retry_after: Dur(h.max_retry_after),
            probe_interval: Dur(h.probe_interval),
            probe_interval_max: Dur(h.probe_interval_max),
            credentials_probe_interval: Dur(h.credentials_probe_interval),
            concurrency: 4,
            poll_interval: Dur(std::time::Duration::from_secs(1)),
            lease: Dur(std::time::Duration::from_secs(10)),
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
        }
    }

    /// How long paused targets are left alone.
    pub fn health(&self) -> HealthSettings {
        HealthSettings {
            probe_interval: self.probe_interval.0,
            probe_interval_max: self.probe_interval_max.0,
            credentials_probe_interval: self.credentials_probe_interval.0,
            max_retry_after: self.max_retry_after.0,
        }
    }

    /// Checks the settings (called at start, with the rest of the configuration).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.retry_schedule.is_empty() {
            return Err(ConfigError(
                "delivery.retry_schedule must list at least one delay, such as [\"5s\", \"1m\"]"
                    .to_owned(),
            ));
        }
        if !(0.0..=1.0).contains(&self.jitter) || self.concurrency == 0 {
            return Err(ConfigError(
                "delivery.jitter must be between 0 and 1 and delivery.concurrency at least 1"
                    .to_owned(),
            ));
        }
        if self.probe_interval.0.is_zero() || self.probe_interval_max.0 < self.probe_interval.0 {
            return Err(ConfigError(
                "delivery.probe_interval must be above 0 and at most delivery.probe_interval_max"
                    .to_owned(),
            ));
        }
        if self.credentials_probe_interval.0.is_zero() {
            return Err(ConfigError(
                "delivery.credentials_probe_interval must be above 0".to_owned(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_defaults_are_valid_and_bad_probe_intervals_are_refused_at_start() {
        let ok = DeliverySettings::default();
        assert_eq!(ok.validate(), Ok(()));
        assert_eq!(ok.health(), HealthSettings::default());
        let bad = [
            DeliverySettings {
                probe_interval: Dur(Duration::ZERO),
                ..DeliverySettings::default()
            },
            DeliverySettings {
                probe_interval: Dur(Duration::from_secs(10)),
                ..DeliverySettings::default()
            },
            DeliverySettings {
                credentials_probe_interval: Dur(Duration::ZERO),
                ..DeliverySettings::default()
            },
        ];
        for s in bad {
            let e = s.validate().expect_err("refused");
            assert!(e.0.contains("probe_interval"), "{e}");
        }
    }
}
