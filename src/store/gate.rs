//! A request's write gate: the answer to a write never lies.
//!
//! A SCIM request has a time limit (`limits.request_timeout`). Abandoning a request at its
//! deadline is only honest while none of its writes has been handed to a transaction: a
//! write still waiting (for the SQLite group-commit batcher, a connection, or the write lock)
//! can be cancelled, and the IdP told `503` with nothing committed; a write that has started
//! will commit or fail on its own, and its outcome is the answer.
//!
//! The gate decides, atomically, which of the two happens. The HTTP layer's time limit runs
//! each request inside [`WriteGate::scope`] and calls [`WriteGate::expire`] at the deadline;
//! [`Store::write`](super::Store) calls `try_start` right before a write runs inside its
//! transaction. Whichever comes first wins:
//!
//! - `try_start` first: the write runs; `expire` then reports that a write started, and the
//!   time limit waits for the request to finish instead of answering 503.
//! - `expire` first: `try_start` refuses, the write is skipped (the batcher never runs it,
//!   PostgreSQL rolls back the empty transaction), and the 503 is true.
//!
//! A request may write several times (`/Bulk`): once one write started the request runs to
//! its end, and the writes that would start after the deadline are refused one by one
//! ([`StoreError::Cancelled`](super::StoreError::Cancelled)), each reported in its own
//! operation's answer.
//!
//! The gate travels as a Tokio task-local rather than as a parameter of every store call,
//! so no write path can forget it: every write through `Store::write` made while serving a
//! request is gated, and writes made elsewhere (the delivery worker, the CLI) run ungated.

use std::future::Future;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

const STARTED: u8 = 1;
const EXPIRED: u8 = 2;

tokio::task_local! {
    static GATE: Arc<WriteGate>;
}

/// The write gate of one request. See the module documentation.
#[derive(Debug, Default)]
pub struct WriteGate {
    state: AtomicU8,
}

impl WriteGate {
    /// A gate with no write started and no deadline passed.
    pub fn new() -> Arc<WriteGate> {
        Arc::new(WriteGate::default())
    }

    /// Runs `f` (a request) with this gate governing the writes it makes.
    pub async fn scope<F: Future>(self: &Arc<Self>, f: F) -> F::Output {
        GATE.scope(self.clone(), f).await
    }

    /// The deadline passed: no write of the request may start from now on. Returns whether
    /// one had already started, in which case the request must be allowed to finish.
    pub fn expire(&self) -> bool {
        self.state.fetch_or(EXPIRED, Ordering::AcqRel) & STARTED != 0
    }

    /// Claims the right to run a write now. `false` once the deadline has passed.
    pub(crate) fn try_start(&self) -> bool {
        let mut current = self.state.load(Ordering::Acquire);
        loop {
            if current & EXPIRED != 0 {
                return false;
            }
            match self.state.compare_exchange_weak(
                current,
                current | STARTED,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(now) => current = now,
            }
        }
    }
}

/// The gate of the request being served on this task, if any.
pub(crate) fn current() -> Option<Arc<WriteGate>> {
    GATE.try_with(Arc::clone).ok()
}

/// Whether a write may start now: always outside a request, else as the gate says.
pub(crate) fn try_start(gate: Option<&WriteGate>) -> bool {
    gate.is_none_or(WriteGate::try_start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whichever_comes_first_wins() {
        let g = WriteGate::new();
        assert!(g.try_start());
        assert!(g.expire(), "a started write makes the request finish");
        assert!(!g.try_start(), "no further write starts after the deadline");

        let g = WriteGate::new();
        assert!(!g.expire(), "nothing started: the request can be abandoned");
        assert!(!g.try_start());
    }

    #[tokio::test]
    async fn the_gate_is_visible_to_writes_made_inside_its_scope_only() {
        assert!(current().is_none());
        let g = WriteGate::new();
        let seen = g.scope(async { current().is_some() }).await;
        assert!(seen);
        assert!(current().is_none());
    }
}
