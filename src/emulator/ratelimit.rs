//! Confluence DC's REST rate limiting (docs/reference/confluence-api.md §1.6): a token bucket per
//! user, refilled by `fill_rate` tokens every `interval_s` seconds up to `capacity`, and the "block
//! all" mode.
//!
//! Only authenticated calls are limited **(assumed: Confluence limits "external" traffic per
//! user; whether PAT traffic counts is a \[gap\], here it does)**.

use std::collections::HashMap;
use std::time::Instant;

use axum::http::{HeaderMap, HeaderName, HeaderValue};

use super::config::{RateLimitKnobs, RateLimitMode};

/// `Retry-After` under "Block all requests": Java's `Long.MAX_VALUE`, as reported
/// (docs/reference/confluence-api.md §1.6).
pub(crate) const BLOCK_ALL_RETRY_AFTER: u64 = 9_223_372_036_854_775_807;

/// Values of the rate-limit headers of one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RateHeaders {
    pub limit: u64,
    pub remaining: u64,
    pub interval_s: u64,
    pub fill_rate: u64,
    pub retry_after: u64,
}

impl RateHeaders {
    /// Writes `X-RateLimit-*` and `Retry-After`.
    pub fn apply(&self, headers: &mut HeaderMap) {
        let pairs = [
            ("x-ratelimit-limit", self.limit),
            ("x-ratelimit-remaining", self.remaining),
            ("x-ratelimit-interval-seconds", self.interval_s),
            ("x-ratelimit-fillrate", self.fill_rate),
            ("retry-after", self.retry_after),
        ];
        for (name, value) in pairs {
            headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
        }
    }
}

/// Outcome for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RateDecision {
    /// Limiting off, anonymous or exempt: no headers.
    Unlimited,
    /// A token was taken.
    Allowed(RateHeaders),
    /// 429.
    Limited(RateHeaders),
}

#[derive(Debug, Clone)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Buckets of all users.
#[derive(Debug, Default)]
pub(crate) struct RateLimiter {
    buckets: HashMap<String, Bucket>,
}

impl RateLimiter {
    /// Takes a token for `username` if one is available.
    pub fn check(&mut self, username: &str, knobs: &RateLimitKnobs, now: Instant) -> RateDecision {
        if knobs.mode == RateLimitMode::Off || knobs.exempt.iter().any(|e| e == username) {
            return RateDecision::Unlimited;
        }
        if knobs.mode == RateLimitMode::BlockAll {
            return RateDecision::Limited(RateHeaders {
                limit: 0,
                remaining: 0,
                interval_s: u64::from(knobs.interval_s),
                fill_rate: 0,
                retry_after: BLOCK_ALL_RETRY_AFTER,
            });
        }
        let capacity = f64::from(knobs.capacity);
        let interval = f64::from(knobs.interval_s.max(1));
        let per_second = f64::from(knobs.fill_rate) / interval;
        let bucket = self.buckets.entry(username.to_owned()).or_insert(Bucket {
            tokens: capacity,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(capacity);
        bucket.last = now;
        let mut headers = RateHeaders {
            limit: u64::from(knobs.capacity),
            remaining: 0,
            interval_s: u64::from(knobs.interval_s),
            fill_rate: u64::from(knobs.fill_rate),
            retry_after: 0,
        };
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            headers.remaining = bucket.tokens.floor() as u64;
            RateDecision::Allowed(headers)
        } else {
            headers.retry_after = if per_second > 0.0 {
                ((1.0 - bucket.tokens) / per_second).ceil().max(1.0) as u64
            } else {
                BLOCK_ALL_RETRY_AFTER
            };
            RateDecision::Limited(headers)
        }
    }

    /// Forgets every bucket (reset, or after the limits changed).
    pub fn clear(&mut self) {
        self.buckets.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limit(capacity: u32, fill_rate: u32, interval_s: u32) -> RateLimitKnobs {
        RateLimitKnobs {
            mode: RateLimitMode::Limit,
            capacity,
            fill_rate,
            interval_s,
            exempt: vec!["svc".to_owned()],
        }
    }

    #[test]
    fn an_empty_bucket_answers_limited_with_the_time_to_the_next_token() {
        let mut limiter = RateLimiter::default();
        let knobs = limit(2, 1, 10);
        let now = Instant::now();
        assert!(matches!(
            limiter.check("jdoe", &knobs, now),
            RateDecision::Allowed(RateHeaders { remaining: 1, .. })
        ));
        assert!(matches!(
            limiter.check("jdoe", &knobs, now),
            RateDecision::Allowed(_)
        ));
        let RateDecision::Limited(h) = limiter.check("jdoe", &knobs, now) else {
            panic!("expected 429");
        };
        assert_eq!((h.limit, h.remaining, h.retry_after), (2, 0, 10));
        let later = now + Duration::from_secs(10);
        assert!(matches!(
            limiter.check("jdoe", &knobs, later),
            RateDecision::Allowed(_)
        ));
    }

    #[test]
    fn exempt_users_and_other_users_have_their_own_fate() {
        let mut limiter = RateLimiter::default();
        let knobs = limit(1, 1, 60);
        let now = Instant::now();
        for _ in 0..5 {
            assert_eq!(limiter.check("svc", &knobs, now), RateDecision::Unlimited);
        }
        assert!(matches!(
            limiter.check("a", &knobs, now),
            RateDecision::Allowed(_)
        ));
        assert!(matches!(
            limiter.check("b", &knobs, now),
            RateDecision::Allowed(_)
        ));
    }

    #[test]
    fn block_all_reports_long_max_value() {
        let mut limiter = RateLimiter::default();
        let knobs = RateLimitKnobs {
            mode: RateLimitMode::BlockAll,
            ..limit(5, 5, 60)
        };
        let RateDecision::Limited(h) = limiter.check("jdoe", &knobs, Instant::now()) else {
            panic!("expected 429");
        };
        assert_eq!((h.limit, h.fill_rate), (0, 0));
        assert_eq!(h.retry_after, 9_223_372_036_854_775_807);
    }
}
