//! The delivery worker: claims dirty keys from the sync queue (one in flight per key), converges
//! each to the current state of its resource, and completes, reschedules or buries it.
//!
//! State-based (DESIGN.md): the queue holds keys, not events, so ten PATCHes before the worker
//! gets to a user become one convergence to the latest state, and an unchanged re-send makes
//! no Confluence call. Woken at once after every commit, polling as a fallback. Each key runs
//! in its own task, so a panic on one bad resource is a failed attempt, not a dead worker.

pub mod confluence;
pub mod converge;
pub mod directory;
pub mod dry_run;
pub mod policy;
pub mod settings;
mod webhook;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use rand::Rng;
use time::OffsetDateTime;
use tokio::sync::Semaphore;

use self::converge::{Converged, Session};
use self::directory::Directory;
use self::policy::{FailureKind, Next, RetryPolicy};
use self::settings::{DeliverySettings, Provisioning};
use crate::profiles::Profiles;
use crate::store::queue::{Claim, QueueKey};
use crate::store::{Backend, Store, StoreResult};

/// How a processed key ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOutcome {
    /// Converged and removed from the queue.
    Delivered,
    /// Failed; retried later.
    Retrying,
    /// Failed for good; parked as dead.
    Dead,
}

struct Inner<D> {
    store: Store,
    dir: D,
    settings: DeliverySettings,
    policy: RetryPolicy,
    provisioning: HashMap<String, Provisioning>,
    default_provisioning: Provisioning,
    profiles: Arc<Profiles>,
    slots: Semaphore,
}

/// The worker. Cheap to clone.
pub struct Worker<D> {
    inner: Arc<Inner<D>>,
}

impl<D> Clone for Worker<D> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<D: Directory + 'static> Worker<D> {
    /// A worker delivering to `dir`, with each connector's provisioning policy (connectors not
    /// listed get the defaults) and the built-in mapping.
    pub fn new(
        store: Store,
        dir: D,
        settings: DeliverySettings,
        provisioning: HashMap<String, Provisioning>,
    ) -> Self {
        Self::with_profiles(
            store,
            dir,
            settings,
            provisioning,
            Arc::new(Profiles::default()),
        )
    }

    /// [`Worker::new`] with each connector's mapping and profile targets (the webhook).
    pub fn with_profiles(
        store: Store,
        dir: D,
        settings: DeliverySettings,
        provisioning: HashMap<String, Provisioning>,
        profiles: Arc<Profiles>,
    ) -> Self {
        let slots = Semaphore::new(settings.concurrency.max(1));
        Self {
            inner: Arc::new(Inner {
                store,
                dir,
                policy: settings.policy(),
                settings,
                provisioning,
                default_provisioning: Provisioning::default(),
                profiles,
                slots,
            }),
        }
    }

    fn provisioning(&self, connector: &str) -> &Provisioning {
        self.inner
            .provisioning
            .get(connector)
            .unwrap_or(&self.inner.default_provisioning)
    }

    /// The directory (for `sync-user`).
    pub fn directory(&self) -> &D {
        &self.inner.dir
    }

    /// Converges one key now, outside the queue (`usersync sync-user`), and returns the
    /// outcome with the calls made. The queue row, if any, stays and converges to nothing.
    pub async fn sync_now(
        &self,
        key: &QueueKey,
        persist: bool,
    ) -> (Converged, Vec<crate::store::attempts::Attempt>) {
        let prov = self.provisioning(&key.connector).clone();
        let profiles = self.inner.profiles.get(&key.connector);
        let mut session = Session::new(&self.inner.dir, &self.inner.store, key, 0);
        if !persist {
            session = session.without_persisting();
        }
        let outcome = session.converge(&prov, &profiles).await;
        if persist {
            if let Err(e) = self.inner.store.record_attempts(&session.attempts).await {
                tracing::warn!(error.message = %e, "could not record delivery attempts");
            }
        }
        (outcome, session.attempts)
    }

    /// Claims the due keys and converges them (at most `delivery.concurrency` at once);
    /// returns how many keys were processed.
    pub async fn run_once(&self) -> StoreResult<usize> {
        let batch = (self.inner.settings.concurrency.max(1) * 4) as i64;
        let claims = self
            .inner
            .store
            .claim_due(
                OffsetDateTime::now_utc(),
                self.inner.settings.lease.0,
                batch,
            )
            .await?;
        let n = claims.len();
        let mut tasks = tokio::task::JoinSet::new();
        for claim in claims {
            let me = self.clone();
            tasks.spawn(async move {
                let _slot = me.inner.slots.acquire().await;
                me.process(claim).await
            });
        }
        while let Some(r) = tasks.join_next().await {
            if let Err(e) = r {
                // A panic inside process() itself (not inside convergence) loses nothing: the
                // claim's lease expires and the key is claimed again.
                tracing::error!(error.message = %e, "delivery task failed");
            }
        }
        Ok(n)
    }

    /// Processes keys until none is due (tests and `sync-user` use this instead of sleeping).
    pub async fn drain(&self) -> StoreResult<usize> {
        let mut total = 0;
        loop {
            let n = self.run_once().await?;
            if n == 0 {
                return Ok(total);
            }
            total += n;
        }
    }

    /// Converges one claimed key and records the outcome.
    pub async fn process(&self, claim: Claim) -> KeyOutcome {
        let key = claim.key.clone();
        let prov = self.provisioning(&key.connector).clone();
        let profiles = self.inner.profiles.get(&key.connector);
        // Convergence runs in its own task so a panic (a bug, a malformed document) becomes a
        // failed attempt of this key only.
        let me = self.clone();
        let c = claim.clone();
        let joined = tokio::spawn(async move {
            let mut session = Session::new(&me.inner.dir, &me.inner.store, &c.key, c.generation);
            let outcome = session.converge(&prov, &profiles).await;
            (outcome, session.attempts)
        })
        .await;
        let (outcome, attempts) = match joined {
            Ok(r) => r,
            Err(e) => (
                Converged::Failed {
                    kind: FailureKind::Retryable,
                    reason: format!("delivery crashed on this resource: {e}"),
                },
                Vec::new(),
            ),
        };
        let store = &self.inner.store;
        if let Err(e) = store.record_attempts(&attempts).await {
            tracing::warn!(error.message = %e, "could not record delivery attempts");
        }
        let result = match &outcome {
            Converged::Done => store
                .complete_claim(&claim)
                .await
                .map(|_| KeyOutcome::Delivered),
            Converged::Failed { kind, reason } => {
                let unit: f64 = rand::thread_rng().gen();
                match self.inner.policy.next(claim.attempts, *kind, unit) {
                    Next::RetryIn(d) => {
                        let at = OffsetDateTime::now_utc()
                            + time::Duration::try_from(d).unwrap_or(time::Duration::ZERO);
                        store
                            .retry_claim(&claim, at, reason)
                            .await
                            .map(|_| KeyOutcome::Retrying)
                    }
                    Next::Bury => store
                        .bury_claim(&claim, reason)
                        .await
                        .map(|_| KeyOutcome::Dead),
                }
            }
        };
        let result = match result {
            Ok(r) => r,
            Err(e) => {
                // The lease expires and the key is claimed again; nothing is lost.
                tracing::warn!(error.message = %e, "could not update the sync queue after delivery");
                KeyOutcome::Retrying
            }
        };
        match (&outcome, &result) {
            (Converged::Done, _) => tracing::debug!(
                connector = %key.connector, scim.kind = key.kind.as_str(), scim.id = %key.id,
                calls = attempts.len(), "delivered"
            ),
            // The reason can name a Confluence user, so it goes to the queue row (see
            // `usersync queue list`), not to the log.
            (Converged::Failed { kind, .. }, r) => tracing::warn!(
                connector = %key.connector, scim.kind = key.kind.as_str(), scim.id = %key.id,
                attempt = claim.attempts, outcome = ?r, failure = ?kind, "delivery failed"
            ),
        }
        result
    }

    /// Runs until `shutdown` completes: woken by every commit that marks a key, polling every
    /// `delivery.poll_interval` as a fallback (for retries coming due and for keys marked by
    /// other processes).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        let store = self.inner.store.clone();
        if store.backend() == Backend::Sqlite {
            // One process owns a SQLite database: leases left by a killed predecessor can be
            // released now instead of waiting for them to expire.
            if let Err(e) = store.release_all_leases().await {
                tracing::warn!(error.message = %e, "could not release stale leases");
            }
        }
        let mut last_cleanup = std::time::Instant::now();
        tokio::pin!(shutdown);
        loop {
            match self.run_once().await {
                Ok(0) => {}
                Ok(_) => continue,
                Err(e) => tracing::warn!(error.message = %e, "delivery could not claim keys"),
            }
            if last_cleanup.elapsed() > std::time::Duration::from_secs(3600) {
                last_cleanup = std::time::Instant::now();
                let before = OffsetDateTime::now_utc()
                    - time::Duration::try_from(self.inner.settings.attempt_retention.0)
                        .unwrap_or(time::Duration::ZERO);
                match store.expire_attempts(before).await {
                    Ok(n) if n > 0 => {
                        tracing::info!(attempts.expired = n, "expired old delivery attempts")
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error.message = %e, "could not expire delivery attempts")
                    }
                }
            }
            tokio::select! {
                _ = &mut shutdown => break,
                _ = store.queue_changed().notified() => {}
                _ = tokio::time::sleep(self.inner.settings.poll_interval.0) => {}
            }
        }
        tracing::info!("delivery worker stopped");
    }
}

#[cfg(test)]
mod tests;
