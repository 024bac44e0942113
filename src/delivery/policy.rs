//! What a failure means for delivery, in one place: whose failure it is ([`blame`]) and, for a
//! key's own failures, the retry policy as data (docs/reference/design.md (was style rec. 37): a
//! schedule of delays with jitter, and a dead letter after the last step.
//!
//! The classes are the targets' one taxonomy, [`ErrorClass`]. A condition of the *target*
//! (rate limiting, an outage, refused credentials) pauses delivery to that target and costs no
//! key anything (`super::health`); only a key's own failures walk the schedule below
//! (`docs/delivery.md`, Failures).

use std::time::Duration;

use crate::targets::ErrorClass;

/// Whose failure a failed call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    /// The target's: it asked us to slow down (429, or 503 with `Retry-After`). Delivery to it
    /// pauses; the key waits without spending a retry.
    Target,
    /// Could be either: a 5xx, a timeout, a refused or reset connection, refused credentials.
    /// The target's probe decides: if the probe fails too, the target is down; if it answers,
    /// the failure was this key's (Confluence answering 500 to one user's data, a 403 on an
    /// operation that needs more rights).
    Unclear,
    /// The key's: its data or its state in the target (400, 404, 409, a missing feature).
    Key,
}

/// Whose failure a call that failed with `class` is.
pub fn blame(class: ErrorClass) -> Blame {
    match class {
        ErrorClass::RateLimited => Blame::Target,
        ErrorClass::Transient | ErrorClass::Unauthorized => Blame::Unclear,
        ErrorClass::NotFound
        | ErrorClass::Conflict
        | ErrorClass::Permanent
        | ErrorClass::Unsupported => Blame::Key,
    }
}

/// What to do after a key's own failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Try again after this delay.
    RetryIn(Duration),
    /// Give up: park the key as dead (kept, visible, retryable).
    Bury,
}

/// The retry policy for a key's own failures.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Delay before retry n (1-based: the first retry waits `schedule[0]`).
    pub schedule: Vec<Duration>,
    /// ± fraction of each delay, so a burst of failures does not retry in lockstep.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            schedule: [1, 5, 30, 120, 600, 1800, 3600, 10800]
                .iter()
                .map(|s| Duration::from_secs(*s))
                .collect(),
            jitter: 0.2,
        }
    }
}

impl RetryPolicy {
    /// The decision after `attempts` failed attempts (1 after the first failure) of class
    /// `class`. `unit` is a number in [0, 1) used for jitter, passed in so the policy stays
    /// deterministic in tests.
    ///
    /// `Permanent` and `Unsupported` are buried at once: retrying cannot help until someone
    /// changes something (the data in the IdP, the Confluence release). Everything else walks
    /// the schedule. Conditions of the target never get here: they pause the target instead.
    pub fn next(&self, attempts: i64, class: ErrorClass, unit: f64) -> Next {
        if matches!(class, ErrorClass::Permanent | ErrorClass::Unsupported) {
            return Next::Bury;
        }
        let step = usize::try_from(attempts.max(1) - 1).unwrap_or(usize::MAX);
        let Some(base) = self.schedule.get(step) else {
            return Next::Bury;
        };
        let spread = 1.0 + self.jitter * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
        Next::RetryIn(base.mul_f64(spread.max(0.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn retries_follow_the_schedule_then_bury() {
        let p = RetryPolicy {
            schedule: vec![secs(1), secs(10)],
            jitter: 0.0,
        };
        assert_eq!(
            p.next(1, ErrorClass::Transient, 0.5),
            Next::RetryIn(secs(1))
        );
        assert_eq!(
            p.next(2, ErrorClass::Conflict, 0.5),
            Next::RetryIn(secs(10))
        );
        assert_eq!(p.next(3, ErrorClass::Transient, 0.5), Next::Bury);
    }

    #[test]
    fn jitter_spreads_delays_within_bounds() {
        let p = RetryPolicy {
            schedule: vec![secs(10)],
            jitter: 0.2,
        };
        assert_eq!(
            p.next(1, ErrorClass::Transient, 0.0),
            Next::RetryIn(secs(8))
        );
        assert_eq!(
            p.next(1, ErrorClass::Transient, 1.0),
            Next::RetryIn(secs(12))
        );
    }

    #[test]
    fn permanent_failures_are_buried_at_once() {
        for class in [ErrorClass::Permanent, ErrorClass::Unsupported] {
            assert_eq!(RetryPolicy::default().next(1, class, 0.5), Next::Bury);
        }
    }

    #[test]
    fn rate_limits_blame_the_target_outages_are_probed_and_data_errors_blame_the_key() {
        assert_eq!(blame(ErrorClass::RateLimited), Blame::Target);
        assert_eq!(blame(ErrorClass::Transient), Blame::Unclear);
        assert_eq!(blame(ErrorClass::Unauthorized), Blame::Unclear);
        for class in [
            ErrorClass::NotFound,
            ErrorClass::Conflict,
            ErrorClass::Permanent,
            ErrorClass::Unsupported,
        ] {
            assert_eq!(blame(class), Blame::Key, "{class}");
        }
    }
}
