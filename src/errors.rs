//! Helpers for errors of every module: an error with its causes, on one line, for logs and
//! failure records; and the configuration error every module's settings report.
//!
//! A leaf: the SCIM handlers, the delivery worker and the feed all report errors this way,
//! and none of them should have to import another's module to do it.

use std::fmt;

/// A configuration problem, worded for the operator: what is wrong and what to do about it,
/// naming keys and environment variables, never a secret's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

impl ConfigError {
    /// The same problem, prefixed with where it is (`[connectors.okta]`).
    pub fn at(self, place: impl fmt::Display) -> ConfigError {
        ConfigError(format!("{place} {}", self.0))
    }
}

/// The error and its sources, `: `-joined: `database error: pool timed out`.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn every_cause_is_joined_in_order() {
        let e = Outer(std::io::Error::other("inner"));
        assert_eq!(error_chain(&e), "outer: inner");
        assert_eq!(error_chain(&std::io::Error::other("alone")), "alone");
    }
}
