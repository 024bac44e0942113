//! The faults and counters the four IdP emulators (`graph.rs`, `google.rs`, `okta.rs`,
//! `onelogin.rs`) share: issued access tokens (revoked all at once), a number of calls to
//! answer 429, a quota that runs out and resets a second later, a listing page that
//! answers 500, and the counts the tests read (docs/emulator.md). Each emulator keeps its
//! own error bodies and rate-limit headers; only the bookkeeping is here, so that a fault
//! behaves the same whichever IdP a test pulls from.

use std::collections::HashSet;

use serde_json::Value;

/// The shared fault state of one emulated IdP.
#[derive(Debug, Default)]
pub(super) struct IdpFaults {
    /// Access tokens issued and not revoked.
    pub tokens: HashSet<String>,
    /// Token requests answered with a token.
    pub token_requests: u64,
    /// API calls still to answer 429.
    pub throttle: u32,
    /// Calls answered 429 (throttled or over the quota).
    pub throttled: u64,
    /// Calls left before the quota runs out (None: plenty).
    pub quota: Option<u64>,
    /// The spent quota window resets at this (real) epoch second.
    pub quota_reset: i64,
    /// A listing page (1-based) that answers 500.
    pub fail_page: Option<usize>,
    /// Listing pages answered.
    pub pages: u64,
}

/// What the quota says of one call.
pub(super) enum Quota {
    /// Spent: answer 429; the window resets at this epoch second.
    Spent {
        /// Epoch second.
        reset: i64,
    },
    /// Allowed; this many calls are left in the window.
    Left(u64),
}

impl IdpFaults {
    /// Records an access token the token endpoint hands out.
    pub fn issue(&mut self, token: String) {
        self.tokens.insert(token);
        self.token_requests += 1;
    }

    /// Whether this call is one of the throttled ones (then counted as answered 429).
    pub fn throttle_now(&mut self) -> bool {
        if self.throttle == 0 {
            return false;
        }
        self.throttle -= 1;
        self.throttled += 1;
        true
    }

    /// Counts one call against the quota at epoch second `now`: the calls left (`limit`
    /// when no quota is set, or once a spent window has reset), or spent until the reset.
    /// The call that spends the last one sets the reset one second ahead.
    pub fn spend(&mut self, now: i64, limit: u64) -> Quota {
        match self.quota {
            Some(0) if now < self.quota_reset => {
                self.throttled += 1;
                Quota::Spent {
                    reset: self.quota_reset,
                }
            }
            Some(0) => {
                self.quota = None;
                Quota::Left(limit)
            }
            Some(n) => {
                self.quota = Some(n - 1);
                if n == 1 {
                    self.quota_reset = now + 1;
                }
                Quota::Left(n - 1)
            }
            None => Quota::Left(limit),
        }
    }

    /// Whether listing page `page` (1-based) is to fail.
    pub fn fails(&self, page: usize) -> bool {
        self.fail_page == Some(page)
    }

    /// The shared keys of `POST /_control/faults`: `{"throttle": n, "quota": n,
    /// "fail_page": n|null, "expire_tokens": true}` (an emulator without a quota never
    /// reads it).
    pub fn control(&mut self, f: &Value) {
        if let Some(n) = f["throttle"].as_u64() {
            self.throttle = n as u32;
        }
        if let Some(n) = f["quota"].as_u64() {
            self.quota = Some(n);
        }
        if f.get("fail_page").is_some() {
            self.fail_page = f["fail_page"].as_u64().map(|n| n as usize);
        }
        if f["expire_tokens"].as_bool() == Some(true) {
            self.tokens.clear();
        }
    }
}
