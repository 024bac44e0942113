//! Pacing: spend a target's rate limit evenly instead of running into it, from the rate-limit
//! headers the target sends (`docs/delivery.md`, Pacing).
//!
//! Confluence Data Center limits REST traffic with a token bucket per user. Every answer to a
//! limited user carries the bucket's state (`docs/emulator.md`, Rate limiting):
//!
//! | header | meaning |
//! |---|---|
//! | `X-RateLimit-Limit` | bucket size |
//! | `X-RateLimit-Remaining` | tokens left (Confluence says: best effort) |
//! | `X-RateLimit-Interval-Seconds` | refill interval |
//! | `X-RateLimit-FillRate` | tokens added per interval |
//!
//! The [`Pacer`] keeps a copy of that bucket: it takes a token before each request, refills at
//! `FillRate / Interval` per second, and re-reads `Remaining` from every answer (keeping the
//! lower of its own count and the server's, so requests of another process with the same
//! account are counted too). When the bucket is empty a request waits for the next token, so
//! a burst of work is spread over time and `429` stays the exception. A `429` or `503` with
//! `Retry-After` holds every request until that time.
//!
//! **Assumed:** tokens are added continuously, as the emulator does. Whether Confluence adds
//! them continuously or in steps once per interval is not documented; with steps the pacer is
//! early now and then, and the `429` that follows carries the exact `Retry-After`, which then
//! holds the pacer. Without the headers (limiting off, or a target that does not send them)
//! nothing is paced. Under "block all requests" (`X-RateLimit-Limit: 0`) there is nothing to
//! pace: every request is refused until an administrator changes the mode.
//!
//! A wait is bounded ([`Pacer::acquire`]): a request that would wait longer fails at once as
//! rate limited, without being sent, so delivery pauses the target instead of holding a key's
//! lease while it sleeps.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;

/// The target's bucket, as last reported and counted since.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        self.at = now;
    }
}

#[derive(Debug, Default)]
struct State {
    bucket: Option<Bucket>,
    /// No request before this (a `Retry-After` the target sent).
    not_before: Option<Instant>,
}

/// The rate-limit headers of one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateHeaders {
    /// `X-RateLimit-Limit`.
    pub limit: u64,
    /// `X-RateLimit-Remaining`.
    pub remaining: u64,
    /// `X-RateLimit-Interval-Seconds`.
    pub interval_s: u64,
    /// `X-RateLimit-FillRate`.
    pub fill_rate: u64,
}

impl RateHeaders {
    /// Reads the headers; `None` unless all four are present and numeric.
    pub fn read(headers: &HeaderMap) -> Option<Self> {
        let number = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        Some(Self {
            limit: number("x-ratelimit-limit")?,
            remaining: number("x-ratelimit-remaining")?,
            interval_s: number("x-ratelimit-interval-seconds")?,
            fill_rate: number("x-ratelimit-fillrate")?,
        })
    }
}

/// Paces the requests to one target. Shared by every task that calls it.
#[derive(Debug)]
pub struct Pacer {
    state: Mutex<State>,
    /// Waiters take tokens in arrival order (tokio's mutex is fair): without it, every waiter
    /// wakes for each token and an unlucky one can lose many times in a row.
    line: tokio::sync::Mutex<()>,
    max_wait: Duration,
}

impl Pacer {
    /// A pacer that never makes a request wait longer than `max_wait` in total.
    pub fn new(max_wait: Duration) -> Self {
        Self {
            state: Mutex::new(State::default()),
            line: tokio::sync::Mutex::new(()),
            max_wait,
        }
    }

    /// Waits until a request may be sent and takes its token, first come first served.
    /// `Err(wait)` when the request would have to wait longer than the pacer's bound (it is
    /// then not to be sent; `wait` is the time to its token, or to the end of a
    /// `Retry-After`).
    pub async fn acquire(&self) -> Result<(), Duration> {
        let started = Instant::now();
        let deadline = started + self.max_wait;
        let _turn = match self.line.try_lock() {
            Ok(turn) => turn,
            Err(_) => match tokio::time::timeout(self.max_wait, self.line.lock()).await {
                Ok(turn) => turn,
                // Those ahead took the whole bound: this one's token is at least that far.
                Err(_) => return Err(self.max_wait),
            },
        };
        loop {
            let now = Instant::now();
            let Some(wait) = self.take(now) else {
                return Ok(());
            };
            if now + wait > deadline {
                return Err(wait + now.saturating_duration_since(started));
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// Takes a token at `now` if one is available; otherwise how long until one is.
    fn take(&self, now: Instant) -> Option<Duration> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(until) = s.not_before {
            if now < until {
                return Some(until - now);
            }
            s.not_before = None;
        }
        let bucket = s.bucket.as_mut()?;
        bucket.refill(now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return None;
        }
        let seconds = (1.0 - bucket.tokens) / bucket.per_second;
        Some(Duration::from_secs_f64(seconds.max(0.001)))
    }

    /// Learns from one answer: its rate-limit headers, and the `Retry-After` of a `429` (or
    /// of a `503` that carries one).
    pub fn observe(&self, headers: &HeaderMap, retry_after: Option<Duration>, now: Instant) {
        let reported = RateHeaders::read(headers);
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(h) = reported {
            if h.limit == 0 || h.fill_rate == 0 {
                // "Block all requests", or a bucket that never refills: nothing to pace.
                s.bucket = None;
            } else {
                let per_second = h.fill_rate as f64 / h.interval_s.max(1) as f64;
                let capacity = h.limit as f64;
                let remaining = (h.remaining as f64).min(capacity);
                let tokens = match s.bucket.as_mut() {
                    Some(b) => {
                        b.refill(now);
                        b.tokens.min(remaining)
                    }
                    None => remaining,
                };
                s.bucket = Some(Bucket {
                    capacity,
                    per_second,
                    tokens,
                    at: now,
                });
            }
        }
        if let Some(wait) = retry_after.filter(|w| !w.is_zero()) {
            let until = now + wait;
            s.not_before = Some(s.not_before.map_or(until, |t| t.max(until)));
            if let Some(b) = s.bucket.as_mut() {
                b.tokens = 0.0;
                b.at = until;
            }
        }
    }

    /// The rate the pacer holds requests to (requests per second), when it knows one.
    pub fn rate(&self) -> Option<f64> {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.bucket.map(|b| b.per_second)
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn headers(limit: u64, remaining: u64, interval: u64, fill: u64) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in [
            ("x-ratelimit-limit", limit),
            ("x-ratelimit-remaining", remaining),
            ("x-ratelimit-interval-seconds", interval),
            ("x-ratelimit-fillrate", fill),
        ] {
            h.insert(name, HeaderValue::from(value));
        }
        h
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn without_rate_limit_headers_nothing_is_paced() {
        let p = Pacer::new(ms(5000));
        let now = Instant::now();
        p.observe(&HeaderMap::new(), None, now);
        for _ in 0..1000 {
            assert_eq!(p.take(now), None);
        }
        assert_eq!(p.rate(), None);
    }

    #[test]
    fn the_remaining_tokens_are_spent_then_requests_wait_for_the_fill_rate() {
        let p = Pacer::new(ms(5000));
        let t0 = Instant::now();
        // Bucket of 20, 2 tokens per second (Confluence's example: 20 requests, 2 per second).
        p.observe(&headers(20, 3, 1, 2), None, t0);
        assert_eq!(p.rate(), Some(2.0));
        for _ in 0..3 {
            assert_eq!(p.take(t0), None);
        }
        assert_eq!(p.take(t0), Some(ms(500)), "the next token comes in 1/2 s");
        assert_eq!(p.take(t0 + ms(500)), None);
        assert_eq!(p.take(t0 + ms(500)), Some(ms(500)));
    }

    #[test]
    fn the_lower_of_our_count_and_the_servers_wins() {
        let p = Pacer::new(ms(5000));
        let t0 = Instant::now();
        p.observe(&headers(10, 10, 1, 10), None, t0);
        // Another process spent most of the bucket: the server says 1 left.
        p.observe(&headers(10, 1, 1, 10), None, t0);
        assert_eq!(p.take(t0), None);
        assert!(p.take(t0).is_some());
        // An answer claiming more than we counted does not hand out tokens we spent.
        p.observe(&headers(10, 10, 1, 10), None, t0);
        assert!(p.take(t0).is_some());
    }

    #[test]
    fn a_retry_after_holds_every_request_until_it_passes() {
        let p = Pacer::new(ms(5000));
        let t0 = Instant::now();
        p.observe(&headers(20, 0, 60, 20), Some(Duration::from_secs(3)), t0);
        assert_eq!(p.take(t0), Some(Duration::from_secs(3)));
        assert_eq!(p.take(t0 + ms(2000)), Some(ms(1000)));
        // Then the bucket refills from the end of the wait (20 per 60 s: one every 3 s).
        assert_eq!(
            p.take(t0 + Duration::from_secs(3)),
            Some(Duration::from_secs(3))
        );
        assert_eq!(p.take(t0 + Duration::from_secs(6)), None);
    }

    #[test]
    fn block_all_cannot_be_paced() {
        let p = Pacer::new(ms(5000));
        let t0 = Instant::now();
        p.observe(&headers(20, 5, 1, 20), None, t0);
        p.observe(&headers(0, 0, 60, 0), None, t0);
        assert_eq!(p.rate(), None);
        assert_eq!(p.take(t0), None);
    }

    #[tokio::test]
    async fn a_wait_longer_than_the_bound_is_refused_without_sleeping() {
        let p = Pacer::new(ms(50));
        p.observe(&headers(1, 0, 60, 1), None, Instant::now());
        let started = Instant::now();
        let wait = p.acquire().await.expect_err("a token only in 60 s");
        assert!(wait > Duration::from_secs(59), "{wait:?}");
        assert!(started.elapsed() < Duration::from_secs(1));
        // A short wait is slept through.
        let p = Pacer::new(ms(5000));
        p.observe(&headers(10, 0, 1, 10), None, Instant::now());
        p.acquire().await.expect("a token within 100 ms");
    }
}
