//! What a real run writes, in this order: the store corrections (each link's applied state
//! fixed from what was observed, and its key marked in the same transaction, so delivery
//! converges it through the normal path), then the direct changes no key accounts for:
//! memberships in owned groups, and last, as cleanup, the orphans.

use time::OffsetDateTime;

use super::classify::{Direct, Plan};
use super::observe::Retry;
use super::progress::{Phase, Progress};
use super::report::Outcome;
use crate::store::reconcile::Correction;
use crate::store::{Store, StoreResult};
use crate::targets::confluence::ConfluenceClient;

/// Corrections written per store call (each is one transaction per 200 inside).
const BATCH: usize = 1000;

/// Applies `plan` and sets each item's outcome. A store failure stops here (what was
/// committed stays committed and marked); a failed direct change is recorded on its item and
/// the run goes on.
pub async fn apply(
    store: &Store,
    client: &ConfluenceClient,
    connector: &str,
    plan: &mut Plan,
    retry: &Retry,
    progress: &dyn Progress,
) -> StoreResult<()> {
    let total = (plan.corrections.len() + plan.direct.len()) as u64;
    progress.phase(Phase::Apply, Some(total));
    let mut done = 0u64;
    for batch in plan.corrections.chunks(BATCH) {
        let corrections: Vec<Correction> = batch
            .iter()
            .map(|c| Correction {
                connector: connector.to_owned(),
                scim_id: c.scim_id.clone(),
                link: c.link.clone(),
                mark: c.mark,
            })
            .collect();
        let applied = store
            .apply_corrections(&corrections, OffsetDateTime::now_utc())
            .await?;
        for (c, ok) in batch.iter().zip(applied) {
            let outcome = match (ok, c.mark.is_some()) {
                (true, true) => Outcome::Queued,
                (true, false) => Outcome::Recorded,
                // The link changed since it was read: delivery got there first and works
                // from its own state; the key is marked all the same.
                (false, true) => Outcome::Queued,
                (false, false) => Outcome::Skipped,
            };
            for &i in &c.items {
                plan.items[i].outcome = outcome;
                if !ok {
                    plan.items[i]
                        .detail
                        .push_str(" (the link changed during the run and was not corrected)");
                }
            }
        }
        done += batch.len() as u64;
        progress.advance(done);
    }
    for (change, i) in &plan.direct {
        let result = match change {
            Direct::RemoveMember { username, group } => {
                retry.run(|| client.remove_member(username, group)).await
            }
            Direct::Disable { username } => retry.run(|| client.disable_user(username)).await,
        };
        let item = &mut plan.items[*i];
        match result {
            Ok(()) => item.outcome = Outcome::Done,
            Err(e) => {
                item.outcome = Outcome::Failed;
                item.detail.push_str(&format!("; failed: {e}"));
                tracing::warn!(
                    connector,
                    error.class = %e.class(),
                    confluence.call = %e.call(),
                    "a reconcile change failed in Confluence"
                );
            }
        }
        done += 1;
        progress.advance(done);
    }
    Ok(())
}
