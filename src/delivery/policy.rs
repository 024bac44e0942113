//! The retry policy, as data (rust-service-style rec. 37): a schedule of delays with jitter,
//! `Retry-After` honoured but clamped, and a dead letter after the last step.

use std::time::Duration;

/// What to do after a failed delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Try again after this delay.
    RetryIn(Duration),
    /// Give up: park the key as dead (kept, visible, retryable).
    Bury,
}

/// Why the last attempt failed, as far as the policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Worth retrying on schedule (5xx, timeouts, connection errors, 401/403 that an admin may fix).
    Retryable,
    /// The target asked us to slow down (429, 503 with Retry-After).
    RateLimited(Option<Duration>),
    /// Retrying cannot help until someone changes something (a 400 on our data, a refused
    /// username conflict): bury at once, with the reason.
    Permanent,
}

/// The retry policy.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Delay before retry n (1-based: the first retry waits `schedule[0]`).
    pub schedule: Vec<Duration>,
    /// ± fraction of each delay, so a burst of failures does not retry in lockstep.
    pub jitter: f64,
    /// Largest `Retry-After` honoured. Confluence's "block all" mode sends
    /// `Retry-After: 9223372036854775807` (confluence-linchpin §1.6); that must not park a key
    /// for 292 billion years.
    pub max_retry_after: Duration,
    /// Smallest wait after a 429, even if `Retry-After` says 0.
    pub rate_limit_floor: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            schedule: [1, 5, 30, 120, 600, 1800, 3600, 10800]
                .iter()
                .map(|s| Duration::from_secs(*s))
                .collect(),
            jitter: 0.2,
            max_retry_after: Duration::from_secs(300),
            rate_limit_floor: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// The decision after `attempts` failed attempts (1 after the first failure). `unit` is a
    /// number in [0, 1) used for jitter, passed in so the policy stays deterministic in tests.
    pub fn next(&self, attempts: i64, failure: FailureKind, unit: f64) -> Next {
        if failure == FailureKind::Permanent {
            return Next::Bury;
        }
        let step = usize::try_from(attempts.max(1) - 1).unwrap_or(usize::MAX);
        let Some(base) = self.schedule.get(step) else {
            return Next::Bury;
        };
        let spread = 1.0 + self.jitter * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
        let scheduled = base.mul_f64(spread.max(0.0));
        match failure {
            FailureKind::RateLimited(after) => {
                let asked = after.unwrap_or(scheduled).min(self.max_retry_after);
                Next::RetryIn(asked.max(self.rate_limit_floor))
            }
            _ => Next::RetryIn(scheduled),
        }
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
            ..RetryPolicy::default()
        };
        assert_eq!(
            p.next(1, FailureKind::Retryable, 0.5),
            Next::RetryIn(secs(1))
        );
        assert_eq!(
            p.next(2, FailureKind::Retryable, 0.5),
            Next::RetryIn(secs(10))
        );
        assert_eq!(p.next(3, FailureKind::Retryable, 0.5), Next::Bury);
    }

    #[test]
    fn jitter_spreads_delays_within_bounds() {
        let p = RetryPolicy {
            schedule: vec![secs(10)],
            jitter: 0.2,
            ..RetryPolicy::default()
        };
        assert_eq!(
            p.next(1, FailureKind::Retryable, 0.0),
            Next::RetryIn(secs(8))
        );
        assert_eq!(
            p.next(1, FailureKind::Retryable, 1.0),
            Next::RetryIn(secs(12))
        );
    }

    #[test]
    fn retry_after_is_honoured_clamped_and_floored() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.next(1, FailureKind::RateLimited(Some(secs(7))), 0.5),
            Next::RetryIn(secs(7))
        );
        let huge = Some(secs(9_223_372_036_854_775_807 / 1_000_000_000));
        assert_eq!(
            p.next(1, FailureKind::RateLimited(huge), 0.5),
            Next::RetryIn(secs(300))
        );
        assert_eq!(
            p.next(1, FailureKind::RateLimited(Some(secs(0))), 0.5),
            Next::RetryIn(secs(1))
        );
    }

    #[test]
    fn permanent_failures_are_buried_at_once() {
        assert_eq!(
            RetryPolicy::default().next(1, FailureKind::Permanent, 0.5),
            Next::Bury
        );
    }
}
