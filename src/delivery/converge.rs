//! Convergence of one key: each target in turn reads the *current* resource, computes its
//! desired state, compares it with the state it last applied, and makes only the calls
//! needed. Replays are harmless: an unchanged resource makes no call at all.
//!
//! The [`Session`] is what targets share: the key, the store, the calls made (attempt
//! records), and the one gate every call goes through ([`Session::call`]), which keeps
//! target health (`super::health`) and decides whose failure a failed call is
//! (`super::policy::blame`).

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use time::OffsetDateTime;

use super::health::{Admit, Health};
use super::policy::{blame, Blame};
use super::target::Target;
use crate::metrics::Metrics;
use crate::store::attempts::Attempt;
use crate::store::links::Link;
use crate::store::ResourceKey;
use crate::store::{Store, StoreError};
use crate::targets::{Call, ErrorClass, Failure, TargetError, TargetResult};

/// The result of converging a key.
#[derive(Debug, Clone, PartialEq)]
pub enum Converged {
    /// Every target matches the resource.
    Done,
    /// A target the key needs is paused (rate limited, down, refusing credentials): the key
    /// waits for it without spending a retry.
    Waiting {
        /// The paused target's id (`confluence`, `webhook/CONNECTOR`).
        target: String,
        /// Why, for the queue row (no personal data).
        reason: String,
    },
    /// The key itself failed: retried on the schedule, or dead when `class` says retrying
    /// cannot help.
    Failed {
        /// The failure's class, from the one taxonomy.
        class: ErrorClass,
        /// For the queue row and the admin (no personal data beyond the Confluence name).
        reason: String,
    },
}

impl From<StoreError> for Converged {
    fn from(e: StoreError) -> Self {
        Converged::Failed {
            class: ErrorClass::Transient,
            reason: format!("store: {}", crate::errors::error_chain(&e)),
        }
    }
}

/// A failure that retrying cannot fix (a mapping problem, a refused conflict).
pub(super) fn permanent(reason: impl Into<String>) -> Converged {
    Converged::Failed {
        class: ErrorClass::Permanent,
        reason: reason.into(),
    }
}

/// One convergence: the key, the store, target health, and the calls made.
pub struct Session<'a> {
    pub(super) store: &'a Store,
    pub(super) key: &'a ResourceKey,
    pub(super) generation: i64,
    /// When false (`sync-user --dry-run`), nothing is written to the store.
    pub(super) persist: bool,
    health: Arc<Health>,
    /// Calls made, in order.
    pub attempts: Vec<Attempt>,
    /// The paused target this key must wait for, and why; set by [`Session::call`].
    waiting: Option<(String, String)>,
    /// Targets that answered again during this session (their waiting keys can go).
    pub(super) recovered: Vec<String>,
    /// Where call latencies go, when the worker has metrics.
    metrics: Option<Arc<Metrics>>,
}

impl<'a> Session<'a> {
    /// A session for one key.
    pub fn new(
        store: &'a Store,
        key: &'a ResourceKey,
        generation: i64,
        health: Arc<Health>,
    ) -> Self {
        Self {
            store,
            key,
            generation,
            persist: true,
            health,
            attempts: Vec::new(),
            waiting: None,
            recovered: Vec::new(),
            metrics: None,
        }
    }

    /// A session that times every call it makes in `metrics` (docs/metrics.md).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// A session that changes nothing in the store (links, marks, digests): for dry runs,
    /// whose directory only records the calls it would make.
    pub fn without_persisting(mut self) -> Self {
        self.persist = false;
        self
    }

    /// Converges the key over `targets`, in order, stopping at the first that is not done.
    pub async fn converge(&mut self, targets: &[&dyn Target]) -> Converged {
        for target in targets {
            match target.converge(self).await {
                Ok(Converged::Done) => {}
                Ok(other) => return other,
                Err(e) => return Converged::from(e),
            }
        }
        Converged::Done
    }

    /// Makes one call to `target`, unless the target is paused (then the call is not sent and
    /// fails as the target last did). Records the attempt. A failure that is a condition of
    /// the target pauses it and makes this key wait; an unclear one is decided with the
    /// target's probe; a key's own failure leaves the target alone.
    pub async fn call<T>(
        &mut self,
        target: &dyn Target,
        call: Call,
        fut: impl Future<Output = TargetResult<T>> + Send,
    ) -> TargetResult<T> {
        let id = target.id();
        let probe = match self.health.admit(id, Instant::now()) {
            Admit::Go(probe) => probe,
            Admit::Wait(down) => {
                self.wait_for(id, &down.reason);
                return Err(TargetError::new(
                    down.class,
                    Failure {
                        call,
                        status: None,
                        message: format!("not sent: delivery to {id} is paused"),
                        body: None,
                    },
                ));
            }
        };
        let started = Instant::now();
        let result = self.timed(target.name(), call, fut).await;
        let is_probe = probe.is_some();
        match &result {
            Ok(_) => self.answered(id),
            Err(e) => match blame(e.class()) {
                // The target answered (a refusal made locally, before sending, says nothing).
                Blame::Key if e.status().is_some() => self.answered(id),
                Blame::Key => {}
                Blame::Target => {
                    self.health.unavailable(id, e, is_probe, Instant::now());
                    self.wait_for(id, &e.to_string());
                }
                Blame::Unclear => {
                    if self.target_is_down(target, e, started, is_probe).await {
                        let reason = self
                            .health
                            .down(id)
                            .map_or_else(|| e.to_string(), |d| d.reason);
                        self.wait_for(id, &reason);
                    }
                }
            },
        }
        drop(probe);
        result
    }

    /// Decides an unclear failure of `target`: is the target down, or did only this key's call
    /// fail? One session at a time asks the probe; the others see its verdict.
    async fn target_is_down(
        &mut self,
        target: &dyn Target,
        error: &TargetError,
        started: Instant,
        is_probe: bool,
    ) -> bool {
        let id = target.id();
        let Some(probe) = target.probe() else {
            // Nothing else to ask: take it as the target's condition.
            self.health.unavailable(id, error, is_probe, Instant::now());
            return true;
        };
        let lock = self.health.confirm_lock(id);
        let _one_at_a_time = lock.lock().await;
        if !is_probe && self.health.down(id).is_some() {
            return true;
        }
        if self.health.answered_since(id, started) {
            // It answered another call since this one began: this failure is the key's.
            return false;
        }
        match self.timed(target.name(), probe.call, probe.run).await {
            Ok(()) => {
                self.answered(id);
                false
            }
            Err(e) if blame(e.class()) == Blame::Key => {
                self.answered(id);
                false
            }
            Err(e) => {
                self.health.unavailable(id, &e, is_probe, Instant::now());
                true
            }
        }
    }

    fn answered(&mut self, id: &str) {
        if self.health.answered(id, Instant::now()).is_some() {
            self.recovered.push(id.to_owned());
        }
    }

    fn wait_for(&mut self, id: &str, reason: &str) {
        self.waiting = Some((id.to_owned(), format!("waiting for {id}: {reason}")));
    }

    /// Runs one call and records it as an attempt: status and error class, and for failures
    /// the start of the answer (or our explanation when there was none).
    async fn timed<T>(
        &mut self,
        target: &'static str,
        call: Call,
        fut: impl Future<Output = TargetResult<T>>,
    ) -> TargetResult<T> {
        let started = OffsetDateTime::now_utc();
        let t = Instant::now();
        let r = fut.await;
        let elapsed = t.elapsed();
        let call = call.to_string();
        if let Some(m) = &self.metrics {
            // The call's template, never its concrete path: no username reaches a label.
            let outcome = r.as_ref().map_or_else(|e| e.class().as_str(), |_| "ok");
            m.target_call(target, &call, outcome, elapsed);
        }
        let (status, error_class, response) = match &r {
            Ok(_) => (None, None, None),
            Err(e) => {
                let f = e.failure();
                (
                    f.status.map(i64::from),
                    Some(e.class().as_str().to_owned()),
                    Some(f.body.clone().unwrap_or_else(|| f.message.clone())),
                )
            }
        };
        self.attempts.push(Attempt {
            key: self.key.clone(),
            generation: self.generation,
            target: target.to_owned(),
            started,
            duration_ms: elapsed.as_millis() as i64,
            call,
            status,
            error_class,
            response,
        });
        r
    }

    /// What a failed call means for the key: waiting for a paused target, or its own failure.
    pub(super) fn failed(&self, e: &TargetError) -> Converged {
        match &self.waiting {
            Some((target, reason)) => Converged::Waiting {
                target: target.clone(),
                reason: reason.clone(),
            },
            None => Converged::Failed {
                class: e.class(),
                reason: e.to_string(),
            },
        }
    }

    /// Saves a link, unless this is a dry run.
    pub(super) async fn save(&self, link: &Link) -> Result<(), StoreError> {
        if !self.persist {
            return Ok(());
        }
        self.store.save_link(link, OffsetDateTime::now_utc()).await
    }
}
