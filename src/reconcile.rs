//! Reconcile: a full sync against Confluence. Delivery trusts the state it applied last (kept
//! on each identity link); Confluence does not stay put (an admin re-enables a leaver, adds
//! someone to a managed group, creates an account by hand, restores a backup). A run reads
//! what Confluence really holds, compares it with the desired state of every user of the
//! connector, reports each difference by class, and (unless it is a dry run) corrects the
//! stored applied state and marks the keys, so delivery converges them through the normal
//! path: attempts recorded, retries, dead keys, target health. Orphans follow the connector's
//! policy; an account usersync never managed is never deleted. See docs/delivery.md,
//! "Reconcile".
//!
//! A run, in order, writing nothing until the last step:
//!
//! 1. take the connector's lease (one run at a time, across instances too);
//! 2. read Confluence (`observe`): every account, the members of the managed groups; a page
//!    that cannot be read ends the run;
//! 3. compare (`stored` feeds `classify`, pure): items and a plan;
//! 4. the safety guard: more accounts to disable or delete than `max_changes` stops the run
//!    before any write, unless forced;
//! 5. apply (`apply`), unless dry; record the run and its items; give the lease back.
//!
//! Started by `usersync reconcile`, by `serve` on the `[reconcile] every` schedule
//! (`schedule`), and later by the admin API: [`RunRequest`](crate::reconcile::RunRequest) is
//! what each hands over.

pub mod apply;
pub mod classify;
pub mod observe;
pub mod progress;
pub mod report;
pub mod schedule;
pub mod settings;
pub mod stored;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use self::classify::{Classifier, Plan, Policy, ProtectList};
use self::observe::Retry;
use self::progress::{Phase, Progress};
use self::report::{DriftClass, GuardReport, Outcome, RunReport, RunStatus};
use self::settings::ReconcileSettings;
use crate::delivery::lookup::ConnectorLookup;
use crate::delivery::settings::{Orphans, Provisioning};
use crate::store::reconcile::{ItemRecord, LeaseHolder, RunRecord};
use crate::store::{Store, StoreError};
use crate::targets::confluence::ConfluenceClient;
use crate::targets::TargetError;

/// How long a run's lease lasts unless renewed; renewed every third of it.
const LEASE_TTL: Duration = Duration::from_secs(60);
/// Users of other connectors read at a time (for the names they will take).
const OTHERS_CHUNK: i64 = 1000;

/// Who or what started a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartedBy {
    /// `usersync reconcile`.
    Cli,
    /// `serve`, on the `[reconcile] every` schedule.
    Schedule,
    /// The admin API, with the name of the admin token (when it exists).
    Admin(String),
}

impl std::fmt::Display for StartedBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartedBy::Cli => f.write_str("cli"),
            StartedBy::Schedule => f.write_str("schedule"),
            StartedBy::Admin(name) => write!(f, "admin:{name}"),
        }
    }
}

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRequest {
    /// The connector.
    pub connector: String,
    /// Compare and report only: no Confluence write, no store change but the run record.
    pub dry_run: bool,
    /// Let the run through the safety guard (`--force`; the admin API's one-shot approval).
    pub force: bool,
    /// Who asked.
    pub started_by: StartedBy,
}

/// Why a run could not be done. Every run that started is recorded, failed ones included.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// Another run of the connector is going on (here or on another instance).
    #[error("a reconcile of connector {connector} is already running ({})", describe_holder(.holder))]
    Busy {
        /// The connector.
        connector: String,
        /// Who holds it.
        holder: LeaseHolder,
    },
    /// No connector of that name is declared or stored.
    #[error("no connector is named {0:?} (see `usersync connector list`)")]
    UnknownConnector(String),
    /// Reading Confluence failed after its retries; nothing was written.
    #[error("reading Confluence failed, nothing was changed: {0}")]
    Read(#[source] TargetError),
    /// The lease was lost (this process stalled past it); nothing more was written.
    #[error("the run lost its lease (another instance took it over); nothing was changed")]
    LeaseLost,
    /// The connector's mapping could not run (the script threads are gone).
    #[error("{0}")]
    Mapping(#[source] crate::profiles::pool::PoolError),
    /// The database failed.
    #[error("database: {}", crate::errors::error_chain(.0))]
    Store(#[from] StoreError),
}

fn describe_holder(h: &LeaseHolder) -> String {
    if h.holder.is_empty() {
        return "it just ended; try again".to_owned();
    }
    let until = h
        .expires_at
        .format(&Rfc3339)
        .unwrap_or_else(|_| "?".to_owned());
    format!("run {} by {}, lease until {until}", h.run_id, h.holder)
}

/// Runs reconciles. Cheap to clone.
#[derive(Clone)]
pub struct Reconciler {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    client: ConfluenceClient,
    settings: ReconcileSettings,
    connectors: Arc<dyn ConnectorLookup>,
    retry: Retry,
    instance: String,
}

/// What a reconciler needs from the configuration (built from the settings by
/// `app::reconciler`, so this module does not depend on `config`).
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `[reconcile]`.
    pub settings: ReconcileSettings,
    /// `delivery.max_retry_after`: the longest `Retry-After` honoured.
    pub max_retry_after: Duration,
}

impl Reconciler {
    /// A reconciler over `store` and Confluence (`client`) with `options`, asking
    /// `connectors` for each connector's provisioning policy and mapping.
    pub fn new(
        store: Store,
        client: ConfluenceClient,
        options: Options,
        connectors: Arc<dyn ConnectorLookup>,
    ) -> Self {
        let r = options.settings;
        Self {
            inner: Arc::new(Inner {
                store,
                client,
                retry: Retry {
                    attempts: r.read_attempts.max(1),
                    delay: r.read_retry_delay.0,
                    max_retry_after: options.max_retry_after,
                },
                settings: r,
                connectors,
                instance: format!(
                    "pid {} ({})",
                    std::process::id(),
                    &uuid::Uuid::new_v4().simple().to_string()[..8]
                ),
            }),
        }
    }

    /// Every connector: declared in the file or stored in the database.
    pub async fn connectors(&self) -> Result<Vec<String>, StoreError> {
        let mut all: BTreeSet<String> = self.inner.connectors.declared().into_iter().collect();
        all.extend(
            self.inner
                .store
                .connectors()
                .await?
                .into_iter()
                .map(|c| c.name),
        );
        Ok(all.into_iter().collect())
    }

    fn provisioning(&self, connector: &str) -> Provisioning {
        Provisioning::clone(&self.inner.connectors.provisioning(connector))
    }

    /// Runs one reconcile of one connector and returns its report. A guard that stops the run
    /// is a report (status `stopped_by_guard`), not an error.
    pub async fn run(
        &self,
        req: &RunRequest,
        progress: &dyn Progress,
    ) -> Result<RunReport, ReconcileError> {
        let store = &self.inner.store;
        let id = uuid::Uuid::new_v4().to_string();
        let instance = &self.inner.instance;
        let c = req.connector.as_str();
        if !self.connectors().await?.iter().any(|n| n == c) {
            return Err(ReconcileError::UnknownConnector(c.to_owned()));
        }
        if let Some(holder) = store
            .acquire_reconcile_lease(c, instance, &id, LEASE_TTL, OffsetDateTime::now_utc())
            .await?
        {
            return Err(ReconcileError::Busy {
                connector: c.to_owned(),
                holder,
            });
        }
        let lost = Arc::new(AtomicBool::new(false));
        let renewer = tokio::spawn(renew(
            store.clone(),
            c.to_owned(),
            instance.clone(),
            id.clone(),
            lost.clone(),
        ));
        let result = self.leased_run(req, &id, &lost, progress).await;
        renewer.abort();
        if let Err(e) = store.release_reconcile_lease(c, instance, &id).await {
            tracing::warn!(connector = c, error.message = %e, "could not release the reconcile lease; it lapses by itself");
        }
        result
    }

    async fn leased_run(
        &self,
        req: &RunRequest,
        id: &str,
        lost: &AtomicBool,
        progress: &dyn Progress,
    ) -> Result<RunReport, ReconcileError> {
        let store = &self.inner.store;
        let started = OffsetDateTime::now_utc();
        let mut record = RunRecord {
            id: id.to_owned(),
            connector: req.connector.clone(),
            started_at: started,
            ended_at: None,
            started_by: req.started_by.to_string(),
            dry_run: req.dry_run,
            forced: req.force,
            status: RunStatus::Running.as_str().to_owned(),
            summary: None,
            error: None,
        };
        store.insert_reconcile_run(&record).await?;
        tracing::info!(
            connector = %req.connector,
            reconcile.run = id,
            reconcile.dry_run = req.dry_run,
            reconcile.started_by = %req.started_by,
            "reconcile started"
        );
        if !req.dry_run {
            self.prune().await;
        }
        let outcome = self
            .compare_and_apply(req, id, started, lost, progress)
            .await;
        // Before anything is logged, so a terminal's progress bar is gone.
        progress.finish();
        record.ended_at = Some(OffsetDateTime::now_utc());
        match outcome {
            Ok(report) => {
                record.status = report.status.as_str().to_owned();
                record.summary = Some(report.summary_json());
                record.error = report.error.clone();
                let items: Vec<ItemRecord> = report
                    .items
                    .iter()
                    .enumerate()
                    .map(|(seq, i)| ItemRecord {
                        seq: seq as i64,
                        class: i.class.as_str().to_owned(),
                        username: i.username.clone(),
                        scim_id: i.scim_id.clone(),
                        action: i.action.as_str().to_owned(),
                        outcome: i.outcome.as_str().to_owned(),
                        detail: i.detail.clone(),
                    })
                    .collect();
                store.finish_reconcile_run(&record, &items).await?;
                log_report(&report);
                Ok(report)
            }
            Err(e) => {
                record.status = RunStatus::Failed.as_str().to_owned();
                record.error = Some(e.to_string());
                if let Err(se) = store.finish_reconcile_run(&record, &[]).await {
                    tracing::warn!(error.message = %se, "could not record the failed reconcile run");
                }
                match &e {
                    ReconcileError::Read(te) => tracing::warn!(
                        connector = %req.connector,
                        reconcile.run = id,
                        error.class = %te.class(),
                        confluence.call = %te.call(),
                        "reconcile stopped: reading Confluence failed; nothing was changed"
                    ),
                    other => tracing::warn!(
                        connector = %req.connector,
                        reconcile.run = id,
                        error.message = %other,
                        "reconcile failed"
                    ),
                }
                Err(e)
            }
        }
    }

    /// Deletes run records older than `reconcile.retention` (real runs only: a dry run
    /// changes nothing).
    async fn prune(&self) {
        let keep = time::Duration::try_from(self.inner.settings.retention.0)
            .unwrap_or(time::Duration::MAX);
        let before = OffsetDateTime::now_utc() - keep;
        match self.inner.store.prune_reconcile_runs(before).await {
            Ok(n) if n > 0 => tracing::info!(reconcile.pruned = n, "pruned old reconcile runs"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error.message = %e, "could not prune old reconcile runs"),
        }
    }

    async fn compare_and_apply(
        &self,
        req: &RunRequest,
        id: &str,
        started: OffsetDateTime,
        lost: &AtomicBool,
        progress: &dyn Progress,
    ) -> Result<RunReport, ReconcileError> {
        let inner = &self.inner;
        let (store, c) = (&inner.store, req.connector.as_str());
        let prov = self.provisioning(c);
        let connectors = self.connectors().await?;

        // What the connector manages, from the store.
        let owned: BTreeSet<String> = store
            .linked_group_names(c)
            .await?
            .into_iter()
            .map(|g| g.to_lowercase())
            .collect();
        let mut managed: BTreeSet<String> = prov
            .default_groups
            .iter()
            .map(|g| g.to_lowercase())
            .collect();
        managed.extend(owned.iter().cloned());
        managed.extend(stored::rule_groups(store, c, &prov).await?);
        let protect_groups: Vec<String> = inner
            .settings
            .protect_groups
            .iter()
            .map(|g| g.to_lowercase())
            .collect();
        let mut to_read: Vec<String> = managed.iter().cloned().collect();
        to_read.extend(
            protect_groups
                .iter()
                .filter(|g| !managed.contains(*g))
                .cloned(),
        );

        // What Confluence holds. Nothing has been written yet, and nothing is on failure.
        let (observed, read) = observe::observe(&inner.client, &to_read, &inner.retry, progress)
            .await
            .map_err(ReconcileError::Read)?;

        // The comparison.
        let claims = store.user_names_claimed_by_others(c).await?;
        let held_by_others: HashMap<String, String> = claims
            .iter()
            .filter(|cl| cl.status == "active")
            .map(|cl| (cl.name.to_lowercase(), cl.connector.clone()))
            .collect();
        let disable_unmanaged = connectors
            .iter()
            .all(|n| self.provisioning(n).orphans == Orphans::Disable);
        let policy = Policy {
            connector: c.to_owned(),
            prov: prov.clone(),
            disable_unmanaged,
            managed_groups: managed,
            owned_groups: owned,
            held_by_others,
            protect: ProtectList {
                names: inner.settings.protect.clone(),
                groups: protect_groups,
            },
        };
        let mut classifier = Classifier::new(&observed, policy);
        for cl in &claims {
            classifier.claim(&cl.name);
        }
        self.claim_unlinked_of_others(c, &mut classifier).await?;
        for link in store.orphaned_user_links(c).await? {
            classifier.orphaned_link(link);
        }
        let total = store
            .count_resources(c, crate::scim::schema::ResourceKind::User)
            .await?;
        progress.phase(Phase::Compare, Some(total.max(0) as u64));
        let targets = inner.connectors.profile_targets(c);
        let scan = stored::scan_users(
            store,
            c,
            &prov,
            &targets,
            |u| classifier.user(u),
            |n| progress.advance(n),
        )
        .await
        .map_err(|e| match e {
            stored::ScanError::Store(e) => ReconcileError::Store(e),
            stored::ScanError::Mapping(e) => ReconcileError::Mapping(e),
        })?;
        let mut plan = classifier.finish();

        // The safety guard.
        let accounts = observed.accounts.len() as u64;
        let disables = plan.disables();
        let limit = inner.settings.limit(accounts);
        let tripped = disables > limit;
        let guard = GuardReport {
            disables,
            limit,
            rule: inner.settings.describe_limit(),
            tripped,
            forced: tripped && req.force,
        };
        let status = if req.dry_run {
            RunStatus::DryRun
        } else if tripped && !req.force {
            set_outcomes(&mut plan, Outcome::NotApplied);
            tracing::warn!(
                connector = c,
                reconcile.run = id,
                reconcile.disables = disables,
                reconcile.limit = limit,
                "reconcile stopped by its safety guard before any write; run it with --force if this is right"
            );
            RunStatus::StoppedByGuard
        } else {
            if lost.load(Ordering::SeqCst) {
                return Err(ReconcileError::LeaseLost);
            }
            apply::apply(store, &inner.client, c, &mut plan, &inner.retry, progress).await?;
            RunStatus::Completed
        };
        let mut counts: BTreeMap<DriftClass, u64> = BTreeMap::new();
        for i in &plan.items {
            *counts.entry(i.class).or_default() += 1;
        }
        Ok(RunReport {
            id: id.to_owned(),
            connector: c.to_owned(),
            started_at: started.format(&Rfc3339).unwrap_or_default(),
            ended_at: OffsetDateTime::now_utc()
                .format(&Rfc3339)
                .unwrap_or_default(),
            started_by: req.started_by.to_string(),
            dry_run: req.dry_run,
            status,
            accounts,
            pages: read.pages,
            groups: read.groups,
            users: plan.users,
            unmappable: scan.unmappable,
            protected: plan.protected,
            counts,
            guard,
            items: plan.items,
            error: (status == RunStatus::StoppedByGuard).then(|| {
                format!(
                    "the run would disable or delete {disables} accounts, more than the limit of \
                     {limit}; nothing was changed (run it again with --force if this is right)"
                )
            }),
        })
    }

    /// Names the users of other connectors will take once delivered (no link yet): not
    /// orphans. Scripted username rules run on the script threads, as in delivery.
    async fn claim_unlinked_of_others(
        &self,
        connector: &str,
        classifier: &mut Classifier<'_>,
    ) -> Result<(), ReconcileError> {
        let store = &self.inner.store;
        let mut after = 0;
        loop {
            let chunk = store
                .unlinked_users_of_others(connector, after, OTHERS_CHUNK)
                .await?;
            let Some((last, _, _)) = chunk.last() else {
                return Ok(());
            };
            after = *last;
            let connectors = self.inner.connectors.clone();
            let scripted = chunk
                .iter()
                .any(|(_, other, _)| connectors.profile_targets(other).mapping.uses_scripts());
            let names = crate::profiles::pool::map(scripted, move || {
                chunk
                    .iter()
                    .filter_map(|(_, other, doc)| {
                        connectors.profile_targets(other).mapping.username(doc).ok()
                    })
                    .collect::<Vec<String>>()
            })
            .await
            .map_err(ReconcileError::Mapping)?;
            for name in names {
                classifier.claim(&name);
            }
        }
    }
}

/// Sets the outcome of every item a run would act on.
fn set_outcomes(plan: &mut Plan, outcome: Outcome) {
    for i in &mut plan.items {
        if i.outcome == Outcome::Planned {
            i.outcome = outcome;
        }
    }
}

/// Renews the lease every third of its life until aborted; sets `lost` when it cannot.
async fn renew(
    store: Store,
    connector: String,
    holder: String,
    run: String,
    lost: Arc<AtomicBool>,
) {
    let mut tick = tokio::time::interval(LEASE_TTL / 3);
    tick.tick().await;
    loop {
        tick.tick().await;
        match store
            .renew_reconcile_lease(
                &connector,
                &holder,
                &run,
                LEASE_TTL,
                OffsetDateTime::now_utc(),
            )
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                lost.store(true, Ordering::SeqCst);
                tracing::error!(
                    connector,
                    reconcile.run = run,
                    "the reconcile lease was lost"
                );
                return;
            }
            Err(e) => {
                // Not lost yet: it is good until it expires; the next tick tries again.
                tracing::warn!(connector, error.message = %e, "could not renew the reconcile lease");
            }
        }
    }
}

fn log_report(r: &RunReport) {
    let n = |c: DriftClass| r.counts.get(&c).copied().unwrap_or(0);
    tracing::info!(
        connector = %r.connector,
        reconcile.run = %r.id,
        reconcile.status = r.status.as_str(),
        reconcile.dry_run = r.dry_run,
        reconcile.accounts = r.accounts,
        reconcile.users = r.users,
        reconcile.missing = n(DriftClass::Missing),
        reconcile.active = n(DriftClass::Active),
        reconcile.profile = n(DriftClass::Profile),
        reconcile.membership = n(DriftClass::Membership),
        reconcile.orphan_deleted = n(DriftClass::OrphanDeleted),
        reconcile.orphan_unmanaged = n(DriftClass::OrphanUnmanaged),
        reconcile.conflict = n(DriftClass::Conflict),
        reconcile.disables = r.guard.disables,
        reconcile.limit = r.guard.limit,
        "reconcile finished"
    );
}
