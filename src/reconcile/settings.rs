//! `[reconcile]`: the schedule, the safety guard, the accounts never touched as orphans, how
//! long run records are kept, and how hard a run tries to read a page.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::errors::ConfigError;
use crate::mapping::glob;
use crate::values::Dur;

/// The most accounts a run may disable or delete before it stops and asks for `--force`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MaxChanges {
    /// At most this many accounts (`max_changes = 50`).
    Count(u64),
    /// At most this share of the accounts in Confluence, in percent (`max_changes = "5%"`).
    Percent(f64),
}

/// The default guard: the larger of 50 accounts and 5 % of the accounts in Confluence.
pub const DEFAULT_MAX_CHANGES: u64 = 50;
/// The default guard's share, in percent.
pub const DEFAULT_MAX_PERCENT: f64 = 5.0;

impl MaxChanges {
    /// The limit for a Confluence holding `accounts` accounts (a share is rounded up).
    pub fn limit(self, accounts: u64) -> u64 {
        match self {
            MaxChanges::Count(n) => n,
            MaxChanges::Percent(p) => share(p, accounts),
        }
    }
}

fn share(percent: f64, accounts: u64) -> u64 {
    ((accounts as f64) * percent / 100.0).ceil() as u64
}

impl fmt::Display for MaxChanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MaxChanges::Count(n) => write!(f, "{n}"),
            MaxChanges::Percent(p) => write!(f, "{p}%"),
        }
    }
}

impl<'de> Deserialize<'de> for MaxChanges {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Count(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Count(n) => Ok(MaxChanges::Count(n)),
            Raw::Text(t) => MaxChanges::parse(&t).map_err(|e| serde::de::Error::custom(e.0)),
        }
    }
}

impl Serialize for MaxChanges {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            MaxChanges::Count(n) => s.serialize_u64(*n),
            MaxChanges::Percent(_) => s.serialize_str(&self.to_string()),
        }
    }
}

impl MaxChanges {
    /// `"50"` or `"5%"`.
    pub fn parse(text: &str) -> Result<MaxChanges, ConfigError> {
        let t = text.trim();
        let bad = || {
            ConfigError(format!(
                "max_changes = {text:?}: use a number of accounts (50) or a share such as \"5%\""
            ))
        };
        match t.strip_suffix('%') {
            Some(p) => {
                let p: f64 = p.trim().parse().map_err(|_| bad())?;
                if !(p > 0.0 && p <= 100.0) {
                    return Err(ConfigError(format!(
                        "max_changes = {text:?}: a share must be above 0 % and at most 100 %"
                    )));
                }
                Ok(MaxChanges::Percent(p))
            }
            None => t.parse().map(MaxChanges::Count).map_err(|_| bad()),
        }
    }
}

/// `[reconcile]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReconcileSettings {
    /// `serve` runs every connector's reconcile this often (`"24h"`); unset: never.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub every: Option<Dur>,
    /// The most accounts a run may disable or delete (`50`, `"5%"`) before it stops, writing
    /// nothing, until run again with `--force`. Unset: the larger of 50 and 5 %.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_changes: Option<MaxChanges>,
    /// Usernames (`*` matches any run of characters, case-insensitive) never disabled or
    /// changed as orphans, besides the account usersync signs in with.
    pub protect: Vec<String>,
    /// Groups whose members are never disabled or changed as orphans.
    pub protect_groups: Vec<String>,
    /// How long run records are kept.
    pub retention: Dur,
    /// Tries per page (and per direct change) before a run gives up: rate limits and
    /// transient failures are retried, waiting `Retry-After` or `read_retry_delay` doubling.
    pub read_attempts: u32,
    /// First wait before trying a failed page again.
    pub read_retry_delay: Dur,
}

impl Default for ReconcileSettings {
    fn default() -> Self {
        Self {
            every: None,
            max_changes: None,
            protect: Vec::new(),
            protect_groups: vec!["confluence-administrators".to_owned()],
            retention: Dur(Duration::from_secs(90 * 86400)),
            read_attempts: 5,
            read_retry_delay: Dur(Duration::from_secs(1)),
        }
    }
}

impl ReconcileSettings {
    /// The guard's limit for a Confluence holding `accounts` accounts.
    pub fn limit(&self, accounts: u64) -> u64 {
        match self.max_changes {
            Some(m) => m.limit(accounts),
            None => DEFAULT_MAX_CHANGES.max(share(DEFAULT_MAX_PERCENT, accounts)),
        }
    }

    /// The guard as configured, for reports: `"50"`, `"5%"` or the default rule.
    pub fn describe_limit(&self) -> String {
        match self.max_changes {
            Some(m) => format!("max_changes = {m}"),
            None => format!(
                "the default: the larger of {DEFAULT_MAX_CHANGES} and {DEFAULT_MAX_PERCENT}% of the accounts"
            ),
        }
    }

    /// Whether `username` is on the `protect` list.
    pub fn protects(&self, username: &str) -> bool {
        self.protect.iter().any(|p| glob(p, username))
    }

    /// Checks the settings (at start, with the rest of the configuration).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.every.is_some_and(|d| d.0 < Duration::from_secs(1)) {
            return Err(ConfigError(
                "reconcile.every must be at least 1s (leave it out to turn the schedule off)"
                    .to_owned(),
            ));
        }
        if self.retention.0.is_zero() {
            return Err(ConfigError(
                "reconcile.retention must be above 0".to_owned(),
            ));
        }
        if self.read_attempts == 0 {
            return Err(ConfigError(
                "reconcile.read_attempts must be at least 1".to_owned(),
            ));
        }
        if let Some(MaxChanges::Percent(p)) = self.max_changes {
            if !(p > 0.0 && p <= 100.0) {
                return Err(ConfigError(
                    "reconcile.max_changes: a share must be above 0 % and at most 100 %".to_owned(),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_defaults_to_the_larger_of_50_and_5_percent_and_takes_a_count_or_a_share() {
        let s = ReconcileSettings::default();
        assert_eq!(s.limit(100), 50);
        assert_eq!(s.limit(1000), 50);
        assert_eq!(s.limit(1001), 51, "5 % rounded up");
        assert_eq!(s.limit(100_000), 5000);
        let parse = |t: &str| -> ReconcileSettings { toml::from_str(t).expect("parses") };
        assert_eq!(parse("max_changes = 10").limit(100_000), 10);
        assert_eq!(parse("max_changes = \"20%\"").limit(101), 21);
        assert_eq!(parse("max_changes = \"0\"").limit(10), 0);
        for bad in [
            "max_changes = \"0%\"",
            "max_changes = \"150%\"",
            "max_changes = \"lots\"",
        ] {
            assert!(toml::from_str::<ReconcileSettings>(bad).is_err(), "{bad}");
        }
        let round = toml::to_string(&parse("max_changes = \"7.5%\"\nevery = \"24h\"")).unwrap();
        assert!(
            round.contains("max_changes = \"7.5%\"") && round.contains("every = \"24h\""),
            "{round}"
        );
    }

    #[test]
    fn protected_names_match_globs_and_bad_settings_are_refused() {
        let s = ReconcileSettings {
            protect: vec!["admin".into(), "svc-*".into()],
            ..ReconcileSettings::default()
        };
        assert!(s.protects("admin") && s.protects("SVC-backup") && !s.protects("ada"));
        assert_eq!(s.validate(), Ok(()));
        for bad in [
            ReconcileSettings {
                read_attempts: 0,
                ..ReconcileSettings::default()
            },
            ReconcileSettings {
                every: Some(Dur(Duration::ZERO)),
                ..ReconcileSettings::default()
            },
            ReconcileSettings {
                retention: Dur(Duration::ZERO),
                ..ReconcileSettings::default()
            },
        ] {
            assert!(bad.validate().is_err());
        }
    }
}
