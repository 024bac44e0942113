//! Target health: rate limiting, an outage or refused credentials are conditions of a
//! *target*, not failures of the key that happened to meet them (`docs/delivery.md`, Target
//! health).
//!
//! When a target is found unavailable, delivery to it pauses: calls to it are not sent, and
//! the keys that needed it wait in the queue without spending a retry. At the time the target
//! named (`Retry-After`, clamped to `delivery.max_retry_after`) or after a backoff
//! (`delivery.probe_interval`, doubling up to `delivery.probe_interval_max`; for refused
//! credentials `delivery.credentials_probe_interval`), one waiting key is let through as the
//! probe. The first answer that says the target works ends the pause, and every key waiting
//! for it is due at once.
//!
//! Health is kept per process. With several instances on one PostgreSQL database each finds
//! an outage and its end by itself; a key one instance set aside is due again for every
//! instance at the time that instance expected the target back, so no key waits for an
//! instance that is gone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::targets::{ErrorClass, TargetError};

/// How long to leave an unavailable target alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthSettings {
    /// Wait before the first probe of a target that failed without saying how long to wait;
    /// doubled after each failed probe. Also the shortest wait after a rate limit.
    pub probe_interval: Duration,
    /// Longest wait between probes of a target that is down (rate limits excepted: they are
    /// waited out as asked).
    pub probe_interval_max: Duration,
    /// Wait between probes of a target that refuses our credentials: an administrator must act,
    /// and every probe is one more failed login on the service account.
    pub credentials_probe_interval: Duration,
    /// Longest `Retry-After` honoured.
    pub max_retry_after: Duration,
}

impl Default for HealthSettings {
    fn default() -> Self {
        Self {
            probe_interval: Duration::from_secs(1),
            probe_interval_max: Duration::from_secs(5),
            credentials_probe_interval: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(300),
        }
    }
}

/// Why and until when a target is paused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Down {
    /// When the pause began.
    pub since: Instant,
    /// When the next probe may go.
    pub until: Instant,
    /// What the target answered last.
    pub class: ErrorClass,
    /// Failed answers in a row (the first one included).
    pub failures: u32,
    /// The last failure, worded for the operator (no personal data: calls are templates).
    pub reason: String,
}

#[derive(Debug, Default)]
struct Entry {
    down: Option<Down>,
    /// A call is probing the target now.
    probing: bool,
    /// A key was claimed to probe the target and has not finished yet.
    probe_claimed: bool,
    last_answer: Option<Instant>,
    confirm: Arc<tokio::sync::Mutex<()>>,
}

/// Whether a call may go to a target now.
#[derive(Debug)]
pub enum Admit {
    /// Send it; with a guard when this call is the probe of a paused target.
    Go(Option<ProbeGuard>),
    /// Do not send it: the target is paused.
    Wait(Down),
}

/// Held by the one call that probes a paused target; dropping it lets the next probe go.
#[derive(Debug)]
pub struct ProbeGuard {
    health: Arc<Health>,
    target: String,
}

impl Drop for ProbeGuard {
    fn drop(&mut self) {
        self.health.with(&self.target, |e| e.probing = false);
    }
}

/// The health of every target this process delivers to, by target id (`confluence`,
/// `webhook/CONNECTOR`).
#[derive(Debug)]
pub struct Health {
    settings: HealthSettings,
    targets: Mutex<HashMap<String, Entry>>,
}

impl Health {
    /// Every target healthy.
    pub fn new(settings: HealthSettings) -> Arc<Self> {
        Arc::new(Self {
            settings,
            targets: Mutex::new(HashMap::new()),
        })
    }

    fn with<T>(&self, target: &str, f: impl FnOnce(&mut Entry) -> T) -> T {
        let mut map = self.targets.lock().unwrap_or_else(|e| e.into_inner());
        if !map.contains_key(target) {
            map.insert(target.to_owned(), Entry::default());
        }
        f(map.get_mut(target).expect("inserted above"))
    }

    /// Whether a call to `target` may be sent at `now`: always when it is healthy; when it is
    /// paused, only as the probe once its wait is over (one at a time).
    pub fn admit(self: &Arc<Self>, target: &str, now: Instant) -> Admit {
        self.with(target, |e| match &e.down {
            None => Admit::Go(None),
            Some(d) if now >= d.until && !e.probing => {
                e.probing = true;
                Admit::Go(Some(ProbeGuard {
                    health: self.clone(),
                    target: target.to_owned(),
                }))
            }
            Some(d) => Admit::Wait(d.clone()),
        })
    }

    /// `target` answered in a way that shows it works (a success, or a failure that is the
    /// key's own). Returns how long it had been paused when this ends a pause.
    pub fn answered(&self, target: &str, now: Instant) -> Option<Duration> {
        let down = self.with(target, |e| {
            e.last_answer = Some(e.last_answer.map_or(now, |t| t.max(now)));
            e.down.take()
        })?;
        let paused = now.saturating_duration_since(down.since);
        tracing::info!(
            delivery.target = target,
            paused_ms = u64::try_from(paused.as_millis()).unwrap_or(u64::MAX),
            "the target answers again; delivery to it resumes"
        );
        Some(paused)
    }

    /// Whether `target` answered a call that ended after `instant`.
    pub fn answered_since(&self, target: &str, instant: Instant) -> bool {
        self.with(target, |e| e.last_answer.is_some_and(|t| t > instant))
    }

    /// `target` is unavailable (`error` is a condition of the target): pause it, or keep it
    /// paused after a failed `probe`. A call that was already under way when the pause began
    /// only lengthens it if its answer asks for more. Returns when the next probe may go.
    pub fn unavailable(
        &self,
        target: &str,
        error: &TargetError,
        probe: bool,
        now: Instant,
    ) -> Instant {
        let (down, new) = self.with(target, |e| {
            let failures = match &e.down {
                None => 1,
                Some(d) if probe => d.failures.saturating_add(1),
                Some(d) => d.failures,
            };
            let since = e.down.as_ref().map_or(now, |d| d.since);
            let until = now + self.wait(error, failures);
            let down = Down {
                since,
                until: e.down.as_ref().map_or(until, |d| d.until.max(until)),
                class: error.class(),
                failures,
                reason: error.to_string(),
            };
            let new = e.down.is_none();
            e.down = Some(down.clone());
            (down, new)
        });
        let retry_in_ms =
            u64::try_from(down.until.saturating_duration_since(now).as_millis()).unwrap_or(0);
        if !new {
            tracing::debug!(
                delivery.target = target,
                error.class = %down.class,
                failures = down.failures,
                retry_in_ms,
                "the target is still unavailable"
            );
        } else if down.class == ErrorClass::Unauthorized {
            tracing::error!(
                delivery.target = target,
                error.class = %down.class,
                retry_in_ms,
                error.message = %down.reason,
                "the target refuses usersync's credentials; delivery to it is paused until an \
                 administrator fixes them"
            );
        } else {
            tracing::warn!(
                delivery.target = target,
                error.class = %down.class,
                retry_in_ms,
                error.message = %down.reason,
                "the target is unavailable; delivery to it is paused, keys wait without \
                 spending retries"
            );
        }
        down.until
    }

    /// How long to leave the target alone after the `failures`-th failure in a row.
    fn wait(&self, error: &TargetError, failures: u32) -> Duration {
        let s = &self.settings;
        let backoff = || {
            let doubled = s
                .probe_interval
                .saturating_mul(1u32 << failures.saturating_sub(1).min(16));
            doubled.min(s.probe_interval_max.max(s.probe_interval))
        };
        match error.class() {
            ErrorClass::RateLimited => error
                .retry_after()
                .unwrap_or_else(backoff)
                .min(s.max_retry_after)
                .max(s.probe_interval),
            ErrorClass::Unauthorized => s.credentials_probe_interval,
            _ => backoff(),
        }
    }

    /// The lock under which one unclear failure of `target` at a time is checked with a probe
    /// (the others then see its verdict instead of probing again).
    pub fn confirm_lock(&self, target: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.with(target, |e| e.confirm.clone())
    }

    /// Why `target` is paused, if it is.
    pub fn down(&self, target: &str) -> Option<Down> {
        self.with(target, |e| e.down.clone())
    }

    /// The targets paused now: keys waiting for them are not claimed (but by a probe).
    pub fn paused(&self) -> Vec<String> {
        let map = self.targets.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<String> = map
            .iter()
            .filter(|(_, e)| e.down.is_some())
            .map(|(k, _)| k.clone())
            .collect();
        v.sort();
        v
    }

    /// The paused targets whose wait is over and that no call or claimed key is probing yet:
    /// each needs one waiting key to be claimed as its probe.
    pub fn due_probes(&self, now: Instant) -> Vec<String> {
        let map = self.targets.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<String> = map
            .iter()
            .filter(|(_, e)| {
                !e.probing && !e.probe_claimed && e.down.as_ref().is_some_and(|d| now >= d.until)
            })
            .map(|(k, _)| k.clone())
            .collect();
        v.sort();
        v
    }

    /// A key was claimed to probe `target` (`done`: its processing finished). While one is
    /// in flight no other is claimed for the same target.
    pub fn probe_claimed(&self, target: &str, claimed: bool) {
        self.with(target, |e| e.probe_claimed = claimed);
    }

    /// When the next probe is due, if a target is paused and not being probed.
    pub fn next_probe(&self) -> Option<Instant> {
        let map = self.targets.lock().unwrap_or_else(|e| e.into_inner());
        map.values()
            .filter(|e| !e.probing && !e.probe_claimed)
            .filter_map(|e| e.down.as_ref().map(|d| d.until))
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::{Call, Failure};

    const CALL: Call = Call::new("GET", "/rest/api/user");

    fn failure(status: Option<u16>) -> Failure {
        Failure {
            call: CALL,
            status,
            message: "no".to_owned(),
            body: None,
        }
    }

    fn rate_limited(after: Option<u64>) -> TargetError {
        TargetError::RateLimited {
            retry_after: after.map(Duration::from_secs),
            failure: failure(Some(429)),
        }
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn health() -> Arc<Health> {
        Health::new(HealthSettings::default())
    }

    fn wait_of(h: &Health, e: &TargetError) -> Duration {
        let now = Instant::now();
        h.unavailable("t", e, true, now) - now
    }

    #[test]
    fn retry_after_is_honoured_clamped_and_floored() {
        assert_eq!(wait_of(&health(), &rate_limited(Some(7))), secs(7));
        // Confluence's "block all" asks for 292 billion years: clamped to max_retry_after.
        let huge = rate_limited(Some(9_223_372_036_854_775_807 / 1_000_000_000));
        assert_eq!(wait_of(&health(), &huge), secs(300));
        // Retry-After: 0 still waits the probe interval.
        assert_eq!(wait_of(&health(), &rate_limited(Some(0))), secs(1));
    }

    #[test]
    fn outages_are_probed_with_a_doubling_capped_backoff_and_refused_credentials_slowly() {
        let h = health();
        let down = TargetError::Transient(failure(None));
        let now = Instant::now();
        let mut waits = Vec::new();
        for _ in 0..5 {
            waits.push(h.unavailable("t", &down, true, now) - now);
        }
        assert_eq!(waits, [secs(1), secs(2), secs(4), secs(5), secs(5)]);
        assert_eq!(h.down("t").map(|d| d.failures), Some(5));
        let refused = TargetError::Unauthorized(failure(Some(401)));
        assert_eq!(wait_of(&health(), &refused), secs(60));
    }

    #[test]
    fn a_paused_target_admits_one_probe_after_its_wait_and_an_answer_ends_the_pause() {
        let h = health();
        let t0 = Instant::now();
        assert!(matches!(h.admit("t", t0), Admit::Go(None)));
        let until = h.unavailable("t", &rate_limited(Some(2)), false, t0);
        assert_eq!(h.paused(), ["t"]);
        assert!(matches!(h.admit("t", t0), Admit::Wait(_)));
        assert!(h.due_probes(t0).is_empty());
        assert_eq!(h.next_probe(), Some(until));
        assert_eq!(h.due_probes(until), ["t"]);
        let Admit::Go(Some(probe)) = h.admit("t", until) else {
            panic!("the probe goes");
        };
        assert!(
            matches!(h.admit("t", until), Admit::Wait(_)),
            "one probe at a time"
        );
        assert!(h.due_probes(until).is_empty());
        drop(probe);
        assert_eq!(
            h.due_probes(until),
            ["t"],
            "a probe that did not call frees the slot"
        );
        h.probe_claimed("t", true);
        assert!(h.due_probes(until).is_empty(), "a probe key is on its way");
        assert_eq!(h.next_probe(), None);
        h.probe_claimed("t", false);
        assert_eq!(h.answered("t", until), Some(secs(2)));
        assert!(h.paused().is_empty());
        assert!(matches!(h.admit("t", until), Admit::Go(None)));
        assert_eq!(h.answered("t", until), None, "already healthy");
        assert!(h.answered_since("t", t0));
        assert!(!h.answered_since("t", until));
    }

    #[test]
    fn targets_are_paused_independently() {
        let h = health();
        let now = Instant::now();
        h.unavailable("webhook/a", &rate_limited(Some(5)), false, now);
        assert!(matches!(h.admit("confluence", now), Admit::Go(None)));
        assert!(matches!(h.admit("webhook/b", now), Admit::Go(None)));
        assert!(matches!(h.admit("webhook/a", now), Admit::Wait(_)));
    }
}
