//! The target contract: one system a key is delivered to. A key's convergence runs over a
//! list of targets in order (Confluence first, so a receiver inside Confluence finds the
//! account; then the connector's profile targets), stopping at the first that is not done.
//! A new target (a Linchpin writer, another directory) is a new file implementing [`Target`].
//!
//! A target makes its calls through [`Session::call`](super::converge::Session::call), which
//! sends nothing while the target is paused, records every call as an attempt, and tells a
//! condition of the target (rate limiting, an outage, refused credentials) from a failure of
//! the key, asking the target's [`probe`](Target::probe) when the answer alone cannot say.

use futures_util::future::BoxFuture;

use super::converge::{Converged, Session};
use crate::store::StoreError;
use crate::targets::{Call, TargetResult};

/// A cheap call that says whether a target answers, and how it is recorded.
pub struct Probe<'a> {
    /// The call, for the attempt record.
    pub call: Call,
    /// The call itself: `Ok` when the target answered in a way that shows it works.
    pub run: BoxFuture<'a, TargetResult<()>>,
}

/// One system a key is delivered to.
pub trait Target: Send + Sync {
    /// The target's kind, in attempt records and `target_state` (`confluence`, `webhook`).
    fn name(&self) -> &'static str;

    /// The remote system, for target health and the queue's `waiting_on` (`confluence`,
    /// `webhook/CONNECTOR`: each connector's webhook is its own receiver).
    fn id(&self) -> &str;

    /// Brings this target up to date with the session's key. `Ok(Done)` lets the next target
    /// run; anything else ends the key's convergence with that result.
    fn converge<'s>(
        &'s self,
        session: &'s mut Session<'_>,
    ) -> BoxFuture<'s, Result<Converged, StoreError>>;

    /// The call that decides whether an unclear failure (a 5xx, a timeout, a refused
    /// connection or credentials) is the target's outage or the key's own problem. `None`
    /// when the target has none: such failures then pause the target.
    fn probe(&self) -> Option<Probe<'_>>;
}
