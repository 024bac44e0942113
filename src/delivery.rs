//! The delivery worker: claims dirty keys from the sync queue (one in flight per key, the most
//! urgent first), converges each over its targets, and completes, reschedules, sets aside or
//! buries it.
//!
//! State-based (`docs/ARCHITECTURE.md`): the queue holds keys, not events, so ten PATCHes
//! before the worker gets to a user become one convergence to the latest state, and an
//! unchanged re-send makes no Confluence call. Woken at once after every commit, polling as a
//! fallback. Each key runs in its own task, so a panic on one bad resource is a failed attempt,
//! not a dead worker.
//!
//! A target that is rate limited, down or refusing credentials is paused (`health`): its keys
//! wait without spending retries, one of them probes it when its wait is over, and all of them
//! go as soon as it answers. Only a key's own failures walk the retry schedule to the dead
//! state (`policy`). See `docs/delivery.md`.

pub mod confluence;
pub mod converge;
pub mod desired;
pub mod directory;
pub mod dry_run;
pub mod health;
pub mod lookup;
pub mod policy;
pub mod settings;
pub mod target;
pub mod webhook;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rand::Rng;
use time::OffsetDateTime;
use tokio::task::JoinSet;
use tracing::Instrument;

use self::confluence::{ConfluenceTarget, CONFLUENCE};
use self::converge::{Converged, Session};
use self::directory::Directory;
use self::health::Health;
use self::lookup::{ConnectorLookup, Fixed};
use self::policy::{Next, RetryPolicy};
use self::settings::{DeliverySettings, Provisioning};
use self::target::Target;
use self::webhook::WebhookTarget;
use crate::metrics::Metrics;
use crate::profiles::ProfileTargets;
use crate::store::attempts::Attempt;
use crate::store::queue::{Claim, ClaimFilter, Priority};
use crate::store::ResourceKey;
use crate::store::{Backend, Store, StoreResult};
use crate::targets::ErrorClass;

/// How a processed key ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOutcome {
    /// Converged and removed from the queue.
    Delivered,
    /// A target it needs is paused: set aside without spending a retry, claimed again when
    /// the target answers.
    Waiting,
    /// Failed; retried later.
    Retrying,
    /// Failed for good; parked as dead.
    Dead,
}

impl KeyOutcome {
    /// `delivered`, `waiting`, `retrying`, `dead`: the `outcome` label of the delivery
    /// metrics (docs/metrics.md).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Waiting => "waiting",
            Self::Retrying => "retrying",
            Self::Dead => "dead",
        }
    }
}

struct Inner<D> {
    store: Store,
    dir: D,
    settings: DeliverySettings,
    policy: RetryPolicy,
    connectors: Arc<dyn ConnectorLookup>,
    health: Arc<Health>,
    /// The server's metrics, when it has them ([`Worker::with_metrics`]).
    metrics: OnceLock<Arc<Metrics>>,
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

/// A claimed key, and the paused target it was claimed to probe.
struct Claimed {
    claim: Claim,
    probe: Option<String>,
}

/// What converging one key produced.
struct Run {
    outcome: Converged,
    attempts: Vec<Attempt>,
    recovered: Vec<String>,
}

impl<D: Directory + 'static> Worker<D> {
    /// A worker delivering to `dir`, with each listed connector's provisioning policy (the
    /// others get the defaults) and the built-in mapping (tests and tools).
    pub fn new(
        store: Store,
        dir: D,
        settings: DeliverySettings,
        provisioning: HashMap<String, Provisioning>,
    ) -> Self {
        Self::with_connectors(store, dir, settings, Arc::new(Fixed::new(provisioning)))
    }

    /// A worker delivering to `dir`, asking `connectors` for each key's provisioning policy
    /// and profile targets (the runtime, `crate::runtime`, in the service).
    pub fn with_connectors(
        store: Store,
        dir: D,
        settings: DeliverySettings,
        connectors: Arc<dyn ConnectorLookup>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                dir,
                policy: settings.policy(),
                health: Health::new(settings.health()),
                settings,
                connectors,
                metrics: OnceLock::new(),
            }),
        }
    }

    /// This worker, recording outcomes, call latencies and commit-to-delivery times in
    /// `metrics` (the server's, docs/metrics.md). Call it once, before the worker runs: a
    /// second call, or one on a clone already handed out, keeps the first metrics.
    pub fn with_metrics(self, metrics: Arc<Metrics>) -> Self {
        if self.inner.metrics.set(metrics).is_err() {
            tracing::debug!("the delivery worker already records into other metrics");
        }
        self
    }

    fn metrics(&self) -> Option<&Arc<Metrics>> {
        self.inner.metrics.get()
    }

    /// The directory (for `sync-user`).
    pub fn directory(&self) -> &D {
        &self.inner.dir
    }

    /// The health of the targets, as this worker sees them.
    pub fn health(&self) -> &Arc<Health> {
        &self.inner.health
    }

    /// Converges `key` over its targets: Confluence, then (unless this is a dry run) the
    /// connector's profile targets.
    async fn converge(&self, key: &ResourceKey, generation: i64, persist: bool) -> Run {
        let prov = self.inner.connectors.provisioning(&key.connector);
        let profile_targets: Arc<ProfileTargets> =
            self.inner.connectors.profile_targets(&key.connector);
        let confluence = ConfluenceTarget::new(&self.inner.dir, &prov, &profile_targets);
        let webhook = profile_targets
            .webhook
            .as_ref()
            .filter(|_| persist)
            .map(|client| WebhookTarget::new(&key.connector, client, &profile_targets));
        let mut targets: Vec<&dyn Target> = vec![&confluence];
        if let Some(w) = &webhook {
            targets.push(w);
        }
        let mut session = Session::new(
            &self.inner.store,
            key,
            generation,
            self.inner.health.clone(),
        );
        if !persist {
            session = session.without_persisting();
        } else if let Some(m) = self.metrics() {
            // Dry runs make no call worth timing.
            session = session.with_metrics(m.clone());
        }
        let outcome = session.converge(&targets).await;
        Run {
            outcome,
            attempts: session.attempts,
            recovered: session.recovered,
        }
    }

    /// Converges one key now, outside the queue (`usersync sync-user`), and returns the
    /// outcome with the calls made. The queue row, if any, stays and converges to nothing.
    pub async fn sync_now(&self, key: &ResourceKey, persist: bool) -> (Converged, Vec<Attempt>) {
        let run = self.converge(key, 0, persist).await;
        if persist {
            if let Err(e) = self.inner.store.record_attempts(&run.attempts).await {
                tracing::warn!(error.message = %e, "could not record delivery attempts");
            }
        }
        (run.outcome, run.attempts)
    }

    /// Claims up to `limit` due keys, most urgent first, leaving alone the keys that wait for
    /// a paused target; plus, for each paused target whose wait is over, one waiting key to
    /// probe it.
    async fn claim(&self, limit: usize) -> StoreResult<Vec<Claimed>> {
        let (store, health) = (&self.inner.store, &self.inner.health);
        let lease = self.inner.settings.lease.0;
        let now = OffsetDateTime::now_utc();
        let paused = health.paused();
        let filter = ClaimFilter {
            first_target: CONFLUENCE,
            paused: &paused,
        };
        let mut claims: Vec<Claimed> = if limit == 0 {
            Vec::new()
        } else {
            store
                .claim_for_delivery(now, lease, limit as i64, filter)
                .await?
                .into_iter()
                .map(|claim| Claimed { claim, probe: None })
                .collect()
        };
        for target in health.due_probes(Instant::now()) {
            if let Some(claim) = store.claim_waiting(now, lease, &target, CONFLUENCE).await? {
                health.probe_claimed(&target, true);
                claims.push(Claimed {
                    claim,
                    probe: Some(target),
                });
            }
        }
        Ok(claims)
    }

    /// Claims due keys (at most `delivery.concurrency`, and a probe per paused target whose
    /// wait is over) and converges them; returns how many keys were processed.
    pub async fn run_once(&self) -> StoreResult<usize> {
        let claims = self.claim(self.inner.settings.concurrency.max(1)).await?;
        let n = claims.len();
        let mut tasks = JoinSet::new();
        for claimed in claims {
            let me = self.clone();
            tasks.spawn(async move { me.process_claimed(claimed).await });
        }
        while let Some(r) = tasks.join_next().await {
            log_join_error(r);
        }
        Ok(n)
    }

    /// Processes keys until none is due (tests and `sync-user` use this instead of sleeping).
    /// Keys waiting for a paused target are not due until its wait is over.
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

    async fn process_claimed(&self, claimed: Claimed) -> KeyOutcome {
        let outcome = self.process(claimed.claim).await;
        if let Some(target) = claimed.probe {
            self.inner.health.probe_claimed(&target, false);
        }
        outcome
    }

    /// Converges one claimed key and records the outcome, inside the key's span.
    pub async fn process(&self, claim: Claim) -> KeyOutcome {
        let span = tracing::info_span!(
            "deliver",
            connector = %claim.key.connector,
            kind = claim.key.kind.as_str(),
            id = %claim.key.id,
            attempt = claim.attempts,
        );
        self.process_in_span(claim).instrument(span).await
    }

    async fn process_in_span(&self, claim: Claim) -> KeyOutcome {
        // Convergence runs in its own task so a panic (a bug, a malformed document) becomes a
        // failed attempt of this key only.
        let me = self.clone();
        let c = claim.clone();
        let converging = tokio::spawn(
            async move { me.converge(&c.key, c.generation, true).await }
                .instrument(tracing::Span::current()),
        );
        // The heartbeat: while the key converges, its lease is renewed every third of it, so
        // a short lease (a killed instance's keys are taken over within seconds) never lapses
        // under a slow Confluence.
        let joined = tokio::select! {
            joined = converging => joined,
            never = self.keep_leased(&claim) => match never {},
        };
        let run = joined.unwrap_or_else(|e| Run {
            outcome: Converged::Failed {
                class: ErrorClass::Transient,
                reason: format!("delivery crashed on this resource: {e}"),
            },
            attempts: Vec::new(),
            recovered: Vec::new(),
        });
        let store = &self.inner.store;
        if let Err(e) = store.record_attempts(&run.attempts).await {
            tracing::warn!(error.message = %e, "could not record delivery attempts");
        }
        for target in &run.recovered {
            match store
                .release_waiting(target, OffsetDateTime::now_utc())
                .await
            {
                Ok(n) => tracing::info!(
                    delivery.target = %target,
                    keys.released = n,
                    "keys waiting for the target are due again"
                ),
                Err(e) => tracing::warn!(
                    error.message = %e,
                    "could not release the keys waiting for a target; they go at their due time"
                ),
            }
        }
        let result = match &run.outcome {
            Converged::Done => store
                .complete_claim(&claim)
                .await
                .map(|held| (KeyOutcome::Delivered, held)),
            Converged::Waiting { target, reason } => {
                let until = self
                    .inner
                    .health
                    .down(target)
                    .map(|d| d.until.saturating_duration_since(Instant::now()))
                    .unwrap_or(Duration::ZERO);
                let at = OffsetDateTime::now_utc()
                    + time::Duration::try_from(until).unwrap_or(time::Duration::ZERO);
                store
                    .defer_claim(&claim, at, target, reason)
                    .await
                    .map(|held| (KeyOutcome::Waiting, held))
            }
            Converged::Failed { class, reason } => {
                let unit: f64 = rand::thread_rng().gen();
                match self.inner.policy.next(claim.attempts, *class, unit) {
                    Next::RetryIn(d) => {
                        let at = OffsetDateTime::now_utc()
                            + time::Duration::try_from(d).unwrap_or(time::Duration::ZERO);
                        store
                            .retry_claim(&claim, at, reason)
                            .await
                            .map(|held| (KeyOutcome::Retrying, held))
                    }
                    Next::Bury => store
                        .bury_claim(&claim, reason)
                        .await
                        .map(|held| (KeyOutcome::Dead, held)),
                }
            }
        };
        let result = match result {
            Ok((r, true)) => {
                self.record(&claim, &run.outcome, &r);
                r
            }
            Ok((r, false)) => {
                // This instance stalled past the lease and another claimed the key: the other
                // instance's claim decides, and nothing of this one was recorded.
                tracing::warn!(
                    outcome = ?r,
                    "the key's lease was lost to another instance; its outcome here is dropped"
                );
                self.record_lost(&claim, "lease_lost");
                KeyOutcome::Retrying
            }
            Err(e) => {
                // The lease expires and the key is claimed again; nothing is lost.
                tracing::warn!(error.message = %e, "could not update the sync queue after delivery");
                self.record_lost(&claim, "store_error");
                KeyOutcome::Retrying
            }
        };
        // Reasons can name a Confluence user, so they go to the queue row (see `usersync
        // queue list`), not to the log; a paused target is logged once, by its health.
        match &run.outcome {
            Converged::Done => {
                tracing::debug!(calls = run.attempts.len(), "delivered")
            }
            Converged::Waiting { target, .. } => tracing::debug!(
                delivery.target = %target,
                "waiting for a paused target; no retry spent"
            ),
            Converged::Failed { class, .. } => tracing::warn!(
                outcome = ?result,
                error.class = %class,
                "delivery failed"
            ),
        }
        result
    }

    /// Records a key's outcome in the metrics, and for a delivered key the time since the
    /// write that made it dirty (deprovisioning is the `active="false"` slice).
    fn record(&self, claim: &Claim, converged: &Converged, outcome: &KeyOutcome) {
        let Some(m) = self.metrics() else {
            return;
        };
        let class = match converged {
            Converged::Failed { class, .. } => class.as_str(),
            Converged::Done | Converged::Waiting { .. } => "none",
        };
        m.delivery_outcome(&claim.key.connector, outcome.as_str(), class);
        if *outcome == KeyOutcome::Delivered {
            let since = OffsetDateTime::now_utc() - claim.enqueued_at;
            m.delivered(
                &claim.key.connector,
                claim.key.kind.as_str(),
                claim.priority != Priority::Deprovision as i64,
                since.try_into().unwrap_or(Duration::ZERO),
            );
        }
    }

    /// Records a key whose outcome could not be saved (it is retried), with why as its class.
    fn record_lost(&self, claim: &Claim, why: &'static str) {
        if let Some(m) = self.metrics() {
            m.delivery_outcome(&claim.key.connector, KeyOutcome::Retrying.as_str(), why);
        }
    }

    /// Runs until `shutdown` completes: claims keys whenever a slot is free (at most
    /// `delivery.concurrency` in flight, so a deactivation marked now waits for one slot,
    /// not for a whole batch), woken by every commit that marks a key, by a finished key and
    /// when a paused target's wait is over, polling every `delivery.poll_interval` as a
    /// fallback (for retries coming due and keys marked by other processes).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        let store = self.inner.store.clone();
        if store.backend() == Backend::Sqlite {
            // One process owns a SQLite database: leases left by a killed predecessor can be
            // released now instead of waiting for them to expire.
            if let Err(e) = store.release_all_leases().await {
                tracing::warn!(error.message = %e, "could not release stale leases");
            }
        }
        // PostgreSQL: a change accepted by another instance wakes this worker at once.
        let _listening = store.listen_to_peers();
        let concurrency = self.inner.settings.concurrency.max(1);
        let poll = self.inner.settings.poll_interval.0;
        let mut tasks: JoinSet<KeyOutcome> = JoinSet::new();
        let mut last_cleanup = Instant::now();
        tokio::pin!(shutdown);
        loop {
            let free = concurrency.saturating_sub(tasks.len());
            match self.claim(free).await {
                Ok(claims) => {
                    for claimed in claims {
                        let me = self.clone();
                        tasks.spawn(async move { me.process_claimed(claimed).await });
                    }
                }
                Err(e) => tracing::warn!(error.message = %e, "delivery could not claim keys"),
            }
            if last_cleanup.elapsed() > Duration::from_secs(3600) {
                last_cleanup = Instant::now();
                self.expire_attempts().await;
            }
            // A probe coming due wakes the loop; one already due was tried above (a paused
            // target with no key waiting for it needs no probe until a key comes).
            let now = Instant::now();
            let wake = match self.inner.health.next_probe() {
                Some(t) if t > now => (t - now).min(poll),
                _ => poll,
            };
            tokio::select! {
                _ = &mut shutdown => break,
                Some(r) = tasks.join_next(), if !tasks.is_empty() => log_join_error(r),
                _ = store.queue_changed().notified() => {}
                _ = tokio::time::sleep(wake) => {}
            }
        }
        // Let the keys in flight finish: their outcome is recorded, their leases released.
        while let Some(r) = tasks.join_next().await {
            log_join_error(r);
        }
        tracing::info!("delivery worker stopped");
    }

    /// Renews `claim`'s lease every third of `delivery.lease`, forever (the caller stops it
    /// when the key is done). A lost claim is logged once; renewing stops then.
    async fn keep_leased(&self, claim: &Claim) -> std::convert::Infallible {
        let lease = self.inner.settings.lease.0;
        let every = (lease / 3).max(Duration::from_millis(10));
        loop {
            tokio::time::sleep(every).await;
            let until = OffsetDateTime::now_utc()
                + time::Duration::try_from(lease).unwrap_or(time::Duration::ZERO);
            match self.inner.store.renew_claim(claim, until).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(
                        "the key's lease lapsed and another instance claimed it; \
                         this instance's outcome will be dropped"
                    );
                    return std::future::pending().await;
                }
                // The lease runs on; the next beat tries again.
                Err(e) => tracing::warn!(error.message = %e, "could not renew a key's lease"),
            }
        }
    }

    async fn expire_attempts(&self) {
        let before = OffsetDateTime::now_utc()
            - time::Duration::try_from(self.inner.settings.attempt_retention.0)
                .unwrap_or(time::Duration::ZERO);
        // One instance at a time: the others would only repeat the same DELETE.
        let store = &self.inner.store;
        let expired = store
            .run_alone(
                "expire-attempts",
                Duration::from_secs(60),
                store.expire_attempts(before),
            )
            .await;
        match expired {
            Some(Ok(n)) if n > 0 => {
                tracing::info!(attempts.expired = n, "expired old delivery attempts")
            }
            Some(Ok(_)) | None => {}
            Some(Err(e)) => {
                tracing::warn!(error.message = %e, "could not expire delivery attempts")
            }
        }
    }
}

fn log_join_error<T>(r: Result<T, tokio::task::JoinError>) {
    if let Err(e) = r {
        // A panic inside process() itself (not inside convergence) loses nothing: the claim's
        // lease expires and the key is claimed again.
        tracing::error!(error.message = %e, "delivery task failed");
    }
}

#[cfg(test)]
mod tests;
