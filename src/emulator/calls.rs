//! The log of Confluence/Linchpin calls the emulator received (`GET /__emulator/calls`).
//!
//! It records what a test needs to assert on a client's behaviour — method, path, query,
//! who was authenticated, the answer and its duration — and never the `Authorization`
//! header, passwords or bodies. Query parameters that look secret are redacted.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::auth::AuthScheme;

/// Oldest records are dropped beyond this, so a long-running emulator stays bounded.
const MAX_CALLS: usize = 10_000;

/// One received call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    /// 1, 2, 3… in arrival order (not reset by `DELETE /__emulator/calls`).
    pub seq: u64,
    /// Arrival time, RFC 3339 UTC.
    pub time: String,
    /// HTTP method.
    pub method: String,
    /// Path as received (with the context path).
    pub path: String,
    /// Query string, secret-looking parameters redacted.
    pub query: Option<String>,
    /// Authenticated username; `None` for anonymous.
    pub user: Option<String>,
    /// Credential scheme used (never the credential).
    pub auth: AuthScheme,
    /// Response status; `None` when the connection was reset.
    pub status: Option<u16>,
    /// Time to answer, in milliseconds.
    pub duration_ms: u64,
    /// Injected fault, if any (`status 503`, `connection reset`, `outage 503`…).
    pub fault: Option<String>,
    /// Whether the request carried `X-Atlassian-Token: no-check`, so tests can check that
    /// a client sends it on every write even where the XSRF check would let it pass.
    #[serde(default)]
    pub xsrf_no_check: bool,
}

/// Bounded call log.
#[derive(Debug, Default)]
pub(crate) struct CallLog {
    records: VecDeque<CallRecord>,
    next_seq: u64,
}

impl CallLog {
    /// Reserves the next sequence number (taken when the call arrives).
    pub fn next_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// Appends a finished call.
    pub fn push(&mut self, record: CallRecord) {
        if self.records.len() >= MAX_CALLS {
            self.records.pop_front();
        }
        self.records.push_back(record);
    }

    /// Records in `seq` order.
    pub fn all(&self) -> Vec<CallRecord> {
        let mut all: Vec<CallRecord> = self.records.iter().cloned().collect();
        all.sort_by_key(|r| r.seq);
        all
    }

    /// Forgets every record.
    pub fn clear(&mut self) {
        self.records.clear();
    }
}

/// Redacts the value of any query parameter whose name mentions a password or token
/// (Confluence accepts `os_password` in the query).
pub(crate) fn redact_query(query: Option<&str>) -> Option<String> {
    let query = query?;
    let parts: Vec<String> = query
        .split('&')
        .map(|pair| {
            let (name, _) = pair.split_once('=').unwrap_or((pair, ""));
            let lower = name.to_ascii_lowercase();
            if ["password", "token", "secret"]
                .iter()
                .any(|s| lower.contains(s))
            {
                format!("{name}=[redacted]")
            } else {
                pair.to_owned()
            }
        })
        .collect();
    Some(parts.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_looking_query_parameters_are_redacted() {
        assert_eq!(
            redact_query(Some("os_username=a&os_password=hunter2&limit=5")).as_deref(),
            Some("os_username=a&os_password=[redacted]&limit=5")
        );
        assert_eq!(redact_query(None), None);
    }
}
