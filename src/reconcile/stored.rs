//! The store's side of a run: the connector's users, one chunk at a time, each with its
//! identity link and its desired state computed by delivery's own code
//! (`crate::delivery::desired`), so the run compares with exactly what delivery would apply.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::classify::StoredUser;
use crate::delivery::desired;
use crate::delivery::settings::Provisioning;
use crate::profiles::pool::{self, PoolError};
use crate::profiles::ProfileTargets;
use crate::scim::schema::ResourceKind;
use crate::store::{Store, StoreError, StoreResult};

/// Users read from the store at a time.
const CHUNK: i64 = 1000;

/// What the scan counted.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScanStats {
    /// Users whose desired state could not be computed (delivery parks them as dead with the
    /// reason; reconcile leaves them out).
    pub unmappable: u64,
}

/// Why the scan stopped.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The script threads could not run the mapping.
    #[error(transparent)]
    Mapping(#[from] PoolError),
}

/// Calls `each` with every user of `connector`, in insertion order; `progress` gets the count
/// so far after each chunk. A mapping that runs scripts is computed on the script threads
/// (`profiles/pool.rs`), a chunk at a time, as delivery computes it.
pub async fn scan_users(
    store: &Store,
    connector: &str,
    prov: &Provisioning,
    targets: &Arc<ProfileTargets>,
    mut each: impl FnMut(StoredUser),
    mut progress: impl FnMut(u64),
) -> Result<ScanStats, ScanError> {
    let mut stats = ScanStats::default();
    let mut after = 0;
    let mut seen = 0u64;
    loop {
        let chunk = store
            .scan_resources(connector, ResourceKind::User, after, CHUNK)
            .await?;
        let Some(last) = chunk.last() else {
            return Ok(stats);
        };
        after = last.seq;
        let ids: Vec<String> = chunk.iter().map(|r| r.id.clone()).collect();
        let mut links = store.user_link_snapshots(connector, &ids).await?;
        let mut groups = store.groups_of(connector, &ids).await?;
        let work: Vec<_> = chunk
            .into_iter()
            .map(|r| {
                let link = links.remove(&r.id);
                let scim_groups = groups.remove(&r.id).unwrap_or_default();
                (r.id, r.doc, link, scim_groups)
            })
            .collect();
        seen += work.len() as u64;
        let (policy, rules) = (prov.clone(), targets.clone());
        let computed = pool::map(rules.mapping.uses_scripts(), move || {
            work.into_iter()
                .map(|(id, doc, link, scim_groups)| {
                    let linked_name = link
                        .as_ref()
                        .filter(|l| l.status != "conflict")
                        .map(|l| l.target_name.as_str());
                    let d = desired::user(&policy, &rules.mapping, &doc, linked_name, &scim_groups);
                    (id, link, d)
                })
                .collect::<Vec<_>>()
        })
        .await?;
        for (scim_id, link, d) in computed {
            match d {
                Ok(desired) => each(StoredUser {
                    scim_id,
                    desired,
                    link,
                }),
                Err(_) => stats.unmappable += 1,
            }
        }
        progress(seen);
    }
}

/// The Confluence groups of the connector's SCIM groups, as its group rules name them.
pub async fn rule_groups(
    store: &Store,
    connector: &str,
    prov: &Provisioning,
) -> StoreResult<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    let mut after = 0;
    loop {
        let chunk = store
            .scan_resources(connector, ResourceKind::Group, after, CHUNK)
            .await?;
        let Some(last) = chunk.last() else {
            return Ok(out);
        };
        after = last.seq;
        out.extend(
            chunk
                .iter()
                .filter_map(|g| prov.groups.confluence_name(&g.name)),
        );
    }
}
