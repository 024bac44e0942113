//! Scheduled runs from `serve` (`[reconcile] every = "24h"`, off by default): each connector
//! is reconciled when its last real run started `every` ago or more (15 minutes, when it
//! failed). The time is read from
//! the run records, so a restart does not start the clock again, and with several instances
//! one instance at a time looks at the schedule (a named lease, `store/leases.rs`), and each
//! run's connector lease keeps a run started by hand elsewhere from being doubled.

use std::future::Future;
use std::time::Duration;

use time::OffsetDateTime;

use super::progress::Silent;
use super::{ReconcileError, Reconciler, RunRequest, StartedBy};

/// The named lease (`store/leases.rs`) that one instance holds while it looks at the
/// schedule and runs what is due.
const SCHEDULE_LEASE: &str = "reconcile-schedule";
/// Longest pause between two looks at the schedule.
const MAX_TICK: Duration = Duration::from_secs(60);
/// A failed run (Confluence down, a read error) is tried again this soon, or at the next
/// turn when `every` is shorter.
const RETRY_FAILED: Duration = Duration::from_secs(15 * 60);

/// Runs the schedule until `shutdown` completes (a run in progress is cut off there: it
/// holds no transaction across awaits, and a real run's writes are each committed with
/// their marks).
pub async fn run(reconciler: Reconciler, every: Duration, shutdown: impl Future<Output = ()>) {
    let tick = every.min(MAX_TICK);
    tracing::info!(
        reconcile.every_s = every.as_secs(),
        "scheduled reconcile is on"
    );
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(tick) => {}
        }
        // One instance looks at the schedule at a time (each run also takes its connector's
        // lease, so a run started by hand elsewhere is not doubled either).
        let store = reconciler.inner.store.clone();
        let alone = store.run_alone(
            SCHEDULE_LEASE,
            Duration::from_secs(60),
            due_runs(&reconciler, every),
        );
        tokio::select! {
            _ = &mut shutdown => return,
            _ = alone => {}
        }
    }
}

/// Runs every connector whose turn has come.
async fn due_runs(reconciler: &Reconciler, every: Duration) {
    let connectors = match reconciler.connectors().await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error.message = %e, "scheduled reconcile: cannot list connectors");
            return;
        }
    };
    let after_failure =
        time::Duration::try_from(every.min(RETRY_FAILED)).unwrap_or(time::Duration::MAX);
    let every = time::Duration::try_from(every).unwrap_or(time::Duration::MAX);
    for connector in connectors {
        let last = match reconciler.inner.store.last_reconcile(&connector).await {
            Ok(last) => last,
            Err(e) => {
                tracing::warn!(connector, error.message = %e, "scheduled reconcile: cannot read the last run");
                continue;
            }
        };
        if let Some((started, status)) = last {
            let wait = if status == "failed" {
                after_failure
            } else {
                every
            };
            if OffsetDateTime::now_utc() - started < wait {
                continue;
            }
        }
        let req = RunRequest {
            connector: connector.clone(),
            dry_run: false,
            force: false,
            started_by: StartedBy::Schedule,
        };
        match reconciler.run(&req, &Silent).await {
            // The run logged its counts (and a tripped guard) itself.
            Ok(_) => {}
            Err(ReconcileError::Busy { .. }) => tracing::debug!(
                connector,
                "scheduled reconcile skipped: a run of this connector is going on elsewhere"
            ),
            // Failures are logged and recorded by the run; it is tried again in 15 minutes.
            Err(_) => {}
        }
    }
}
