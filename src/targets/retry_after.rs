//! `Retry-After` (RFC 9110 §10.2.3), read the same way for every target: delta-seconds or an
//! HTTP date, clamped to a sane maximum.

use std::time::{Duration, SystemTime};

use time::format_description::well_known::Rfc2822;
use time::OffsetDateTime;

/// Largest wait accepted from `Retry-After`. Confluence's "block all requests" mode sends
/// Java's `Long.MAX_VALUE` (9223372036854775807 s, observed on a real instance; see
/// `docs/emulator.md`, Rate limiting), which must not turn into a wait of 292 billion years or
/// an overflow.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(300);

/// A parsed `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter {
    /// The wait, at most [`RETRY_AFTER_CAP`].
    pub delay: Duration,
    /// Whether the header asked for more than the cap.
    pub clamped: bool,
}

/// Parses `Retry-After`: delta-seconds (any number of digits; huge values are clamped) or
/// an HTTP date (RFC 7231 IMF-fixdate, relative to `now`; a date in the past means 0).
/// Anything else is ignored (`None`).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<RetryAfter> {
    let value = value.trim();
    let clamp = |secs: u64| RetryAfter {
        delay: Duration::from_secs(secs).min(RETRY_AFTER_CAP),
        clamped: secs > RETRY_AFTER_CAP.as_secs(),
    };
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // More digits than a u64 holds is still "a very long time".
        return Some(clamp(value.parse::<u64>().unwrap_or(u64::MAX)));
    }
    let date = OffsetDateTime::parse(value, &Rfc2822).ok()?;
    let now = OffsetDateTime::from(now);
    let secs = (date - now).whole_seconds().max(0);
    Some(clamp(u64::try_from(secs).unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_are_parsed_and_absurd_values_clamped() {
        let now = SystemTime::now();
        assert_eq!(
            parse_retry_after("7", now),
            Some(RetryAfter {
                delay: Duration::from_secs(7),
                clamped: false
            })
        );
        assert_eq!(
            parse_retry_after("0", now).map(|r| r.delay),
            Some(Duration::ZERO)
        );
        for huge in ["9223372036854775807", "99999999999999999999999999", "301"] {
            let r = parse_retry_after(huge, now).expect("parsed");
            assert_eq!(r.delay, RETRY_AFTER_CAP, "{huge}");
            assert!(r.clamped);
        }
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("", now), None);
    }

    #[test]
    fn retry_after_http_dates_count_from_now() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_450);
        // 2015-10-21 07:28:00 UTC is 30 s after `now`.
        let r = parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now).expect("a date");
        assert_eq!(r.delay, Duration::from_secs(30));
        let past = parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now).expect("a date");
        assert_eq!(past.delay, Duration::ZERO);
    }
}
