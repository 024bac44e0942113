//! `serve`'s timer for pull connectors with `pull.every`: each runs at that interval (full
//! when `full_every` is due). Every instance keeps the timer; the run's lease lets one of
//! them run at a time, and the others skip that turn.

use std::sync::Arc;
use std::time::Duration;

use crate::runtime::Runtime;

use super::run::{run, RunRequest};
use super::types::{Progress, PullError};

/// The connectors with `pull.every`, and their interval.
pub fn due(rt: &Runtime) -> Vec<(String, Duration)> {
    rt.settings()
        .connectors
        .iter()
        .filter(|(_, c)| c.kind.is_pull())
        .filter_map(|(n, c)| Some((n.clone(), c.pull.as_ref()?.every?.0)))
        .collect()
}

/// Runs each scheduled connector at its interval until `stop` completes.
pub async fn run_all(rt: Runtime, stop: impl std::future::Future<Output = ()> + Send) {
    let tasks: Vec<_> = due(&rt)
        .into_iter()
        .map(|(name, every)| tokio::spawn(one(rt.clone(), name, every)))
        .collect();
    if tasks.is_empty() {
        return;
    }
    stop.await;
    for t in tasks {
        t.abort();
    }
}

async fn one(rt: Runtime, connector: String, every: Duration) {
    let quiet: Progress = Arc::new(|_, _| {});
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let req = RunRequest {
            connector: connector.clone(),
            started_by: "schedule".to_owned(),
            ..RunRequest::default()
        };
        match run(&rt, &req, quiet.clone()).await {
            Ok(_) => {}
            Err(PullError::Busy) => {
                tracing::debug!(connector = %connector, "a pull run is in progress elsewhere; this turn skipped")
            }
            Err(e) => {
                tracing::warn!(connector = %connector, error.message = %e, "the scheduled pull run failed; the checkpoint is unchanged")
            }
        }
    }
}
