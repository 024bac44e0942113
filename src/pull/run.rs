//! One pull run (docs/pull.md): under the connector's lease (one run at a time, also across
//! instances), read the IdP completely, compare with the store, stop at the deletion guard,
//! write each change through the audited resource writes (actor `system`, `pull:<kind>`),
//! record the run and its per-user changes, and only then move the checkpoint. A dry run
//! takes no lease and writes nothing, not even the run record or the checkpoint.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures_util::stream::{FuturesOrdered, StreamExt};
use time::OffsetDateTime;

use crate::config::ConnectorSettings;
use crate::runtime::Runtime;
use crate::scim::resource::Document;
use crate::scim::schema::ResourceKind;
use crate::store::audit::WriteAudit;
use crate::store::pull::{PullChange, PullRunRecord};
use crate::store::{DeleteOutcome, ResourceKey, StoredResource, UpdateOutcome};

use super::document;
use super::source::Source;
use super::types::{Fetched, Progress, PullError, PullUser};

/// How long a run's lease lasts between renewals (renewed every third of it).
const LEASE_TTL: Duration = Duration::from_secs(60);

/// Writes in flight at once (the SQLite batcher commits them together: more in flight, larger
/// batches, fewer commits).
const WRITE_CONCURRENCY: usize = 64;

/// Stored users read per query.
const READ_CHUNK: usize = 500;

/// What to run.
#[derive(Debug, Clone, Default)]
pub struct RunRequest {
    /// The connector.
    pub connector: String,
    /// Read everything even if a checkpoint exists.
    pub full: bool,
    /// Compare and report only.
    pub dry_run: bool,
    /// Pass the deletion guard.
    pub force: bool,
    /// `cli`, `schedule`, `test`.
    pub started_by: String,
}

/// Full or incremental.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The whole directory: deletions by comparison.
    Full,
    /// Changes since the checkpoint.
    Incremental,
}

impl Mode {
    /// As recorded.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Full => "full",
            Mode::Incremental => "incremental",
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// Every change written, checkpoint moved (or, dry run, computed).
    Done,
    /// The deletion guard stopped it: nothing written.
    Stopped,
}

/// What a run did (or, dry run, would do).
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The run record's id (none for a dry run).
    pub run_id: Option<String>,
    /// Full or incremental (after an expired checkpoint: full).
    pub mode: Mode,
    /// Done or stopped.
    pub status: RunStatus,
    /// Users the IdP returned.
    pub read: usize,
    /// Users created.
    pub created: usize,
    /// Users updated.
    pub updated: usize,
    /// Users deleted.
    pub deleted: usize,
    /// Users read but unchanged.
    pub unchanged: usize,
    /// Users the IdP sent that could not be stored (invalid, a userName taken), logged.
    pub skipped: usize,
    /// Per-user changes (planned, for a dry run).
    pub changes: Vec<PullChange>,
    /// Why the guard stopped it.
    pub reason: Option<String>,
    /// Whether nothing was written.
    pub dry_run: bool,
}

/// A planned change.
enum Step {
    /// The document is built when written, so a first import does not hold every document.
    Create(PullUser),
    Update(String, i64, Document),
    Delete(String),
}

/// Runs `req` for a declared pull connector.
pub async fn run(
    rt: &Runtime,
    req: &RunRequest,
    progress: Progress,
) -> Result<RunReport, PullError> {
    let settings = rt.settings().clone();
    let c = settings.connectors.get(&req.connector).ok_or_else(|| {
        PullError::NotPull(format!(
            "no [connectors.{}] in the configuration; pull connectors are declared there",
            req.connector
        ))
    })?;
    let source = Source::new(&req.connector, c, &settings.secrets)?;
    if req.dry_run {
        return run_inner(rt, c, &source, req, &progress).await;
    }
    let lease = format!("pull:{}", req.connector);
    rt.store()
        .run_alone(&lease, LEASE_TTL, run_inner(rt, c, &source, req, &progress))
        .await
        .unwrap_or(Err(PullError::Busy))
}

async fn run_inner(
    rt: &Runtime,
    c: &ConnectorSettings,
    source: &Source,
    req: &RunRequest,
    progress: &Progress,
) -> Result<RunReport, PullError> {
    let store = rt.store();
    let kind = source.kind();
    let pull = c.pull.clone().unwrap_or_default();
    let now = OffsetDateTime::now_utc();
    let checkpoint = store
        .pull_checkpoint(&req.connector)
        .await?
        .filter(|cp| cp.kind == kind);
    let full_due = match (&checkpoint, pull.full_every) {
        (Some(cp), Some(every)) => cp.full_at.is_none_or(|at| now - at >= every.0),
        _ => false,
    };
    let from = checkpoint
        .as_ref()
        .filter(|_| !req.full && !full_due)
        .map(|cp| cp.value.clone());
    let mut record = PullRunRecord {
        id: uuid::Uuid::new_v4().to_string(),
        connector: req.connector.clone(),
        kind: kind.to_owned(),
        mode: if from.is_some() {
            "incremental"
        } else {
            "full"
        }
        .to_owned(),
        started_by: req.started_by.clone(),
        forced: req.force,
        started_at: now,
        ended_at: None,
        status: "running".to_owned(),
        read_users: 0,
        created: 0,
        updated: 0,
        deleted: 0,
        unchanged: 0,
        error: None,
    };
    if !req.dry_run {
        store.insert_pull_run(&record).await?;
    }
    let result = fetch_and_apply(rt, source, req, &pull, from.as_deref(), progress).await;
    let report = match result {
        Ok((fetched_checkpoint, mut report)) => {
            report.run_id = (!req.dry_run).then(|| record.id.clone());
            if !req.dry_run {
                record.mode = report.mode.as_str().to_owned();
                record.status = match report.status {
                    RunStatus::Done => "done",
                    RunStatus::Stopped => "stopped",
                }
                .to_owned();
                record.read_users = report.read as i64;
                record.created = report.created as i64;
                record.updated = report.updated as i64;
                record.deleted = report.deleted as i64;
                record.unchanged = report.unchanged as i64;
                record.error = report.reason.clone();
                record.ended_at = Some(OffsetDateTime::now_utc());
                store.finish_pull_run(&record, &report.changes).await?;
                if report.status == RunStatus::Done {
                    store
                        .save_pull_checkpoint(
                            &req.connector,
                            kind,
                            &fetched_checkpoint,
                            report.mode == Mode::Full,
                            OffsetDateTime::now_utc(),
                        )
                        .await?;
                }
            }
            report
        }
        Err(e) => {
            if !req.dry_run {
                record.status = "failed".to_owned();
                record.error = Some(e.to_string());
                record.ended_at = Some(OffsetDateTime::now_utc());
                if let Err(se) = store.finish_pull_run(&record, &[]).await {
                    tracing::warn!(connector = %req.connector, error.message = %se, "cannot record the failed pull run");
                }
            }
            return Err(e);
        }
    };
    tracing::info!(
        connector = %req.connector,
        pull.kind = kind,
        pull.mode = report.mode.as_str(),
        pull.read = report.read,
        pull.created = report.created,
        pull.updated = report.updated,
        pull.deleted = report.deleted,
        pull.skipped = report.skipped,
        pull.dry_run = req.dry_run,
        "pull run finished"
    );
    Ok(report)
}

/// Fetches, plans, guards and (unless a dry run) writes; the checkpoint to store on success.
async fn fetch_and_apply(
    rt: &Runtime,
    source: &Source,
    req: &RunRequest,
    pull: &crate::config::pull::PullSettings,
    from: Option<&str>,
    progress: &Progress,
) -> Result<(String, RunReport), PullError> {
    let store = rt.store();
    let fetched: Fetched = source.fetch(from, progress).await?;
    let mode = if fetched.complete {
        Mode::Full
    } else {
        Mode::Incremental
    };
    let mut report = RunReport {
        run_id: None,
        mode,
        status: RunStatus::Done,
        read: fetched.users.len(),
        created: 0,
        updated: 0,
        deleted: 0,
        unchanged: 0,
        skipped: 0,
        changes: Vec::new(),
        reason: None,
        dry_run: req.dry_run,
    };
    // Compared chunk by chunk with the stored users they name, so an unchanged directory is
    // never held twice in memory.
    let stored_ids = store.user_ids(&req.connector).await?;
    let schemas = rt.table().schemas().clone();
    let listed: HashSet<String> = fetched.users.iter().map(|u| u.id.clone()).collect();
    let mut steps = Vec::new();
    let mut users = fetched.users.into_iter();
    loop {
        let chunk: Vec<PullUser> = users.by_ref().take(READ_CHUNK).collect();
        if chunk.is_empty() {
            break;
        }
        let ids: Vec<String> = chunk.iter().map(|u| u.id.clone()).collect();
        let mut current: HashMap<String, StoredResource> = store
            .resources_by_ids(&req.connector, ResourceKind::User, &ids)
            .await?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
        for u in chunk {
            let before = current.remove(&u.id);
            match document::document(&schemas, &u, before.as_ref().map(|r| &r.doc)) {
                Ok(doc) => match before {
                    None => steps.push(Step::Create(u)),
                    Some(r) if r.doc == doc => report.unchanged += 1,
                    Some(r) => steps.push(Step::Update(u.id.clone(), r.version, doc)),
                },
                Err(e) => {
                    report.skipped += 1;
                    tracing::warn!(connector = %req.connector, scim.id = %u.id, error.message = %e, "a user from the IdP is not a valid SCIM user; skipped");
                }
            }
        }
    }
    // Deletions: what the IdP reported, and in a full read what it no longer lists.
    let stored: HashSet<&str> = stored_ids.iter().map(String::as_str).collect();
    let mut gone: Vec<String> = fetched
        .removed
        .iter()
        .filter(|id| stored.contains(id.as_str()))
        .cloned()
        .collect();
    if fetched.complete {
        gone.extend(
            stored_ids
                .iter()
                .filter(|id| !listed.contains(id.as_str()))
                .cloned(),
        );
    }
    gone.sort();
    gone.dedup();
    let limit = pull.max_deletes.limit(stored_ids.len() as u64);
    if gone.len() as u64 > limit && !req.force {
        report.status = RunStatus::Stopped;
        report.reason = Some(format!(
            "the deletion guard stopped the run: it would delete {} of {} users, more than \
             pull.max_deletes = {} allows ({limit}); nothing was written. Check the IdP, then \
             run `usersync pull --connector {} --force` to let it through",
            gone.len(),
            stored_ids.len(),
            pull.max_deletes,
            req.connector
        ));
        report.deleted = gone.len();
        return Ok((fetched.checkpoint, report));
    }
    steps.extend(gone.into_iter().map(Step::Delete));
    if req.dry_run {
        for s in &steps {
            let (id, change) = match s {
                Step::Create(u) => (&u.id, "created"),
                Step::Update(id, ..) => (id, "updated"),
                Step::Delete(id) => (id, "deleted"),
            };
            count(&mut report, change);
            report.changes.push(PullChange {
                scim_id: id.clone(),
                change: change.to_owned(),
            });
        }
        return Ok((fetched.checkpoint, report));
    }
    let actor = format!("pull:{}", source.kind());
    let total = steps.len();
    let mut done = 0usize;
    let mut pending = steps.into_iter();
    let mut inflight = FuturesOrdered::new();
    loop {
        while inflight.len() < WRITE_CONCURRENCY {
            match pending.next() {
                Some(s) => inflight.push_back(apply(rt, &req.connector, &actor, s)),
                None => break,
            }
        }
        let Some(r) = inflight.next().await else {
            break;
        };
        done += 1;
        if done % 1000 == 0 || done == total {
            progress("write", done);
        }
        match r? {
            Applied::Changed(c) => {
                count(&mut report, &c.change);
                report.changes.push(c);
            }
            Applied::Unchanged => report.unchanged += 1,
            Applied::Skipped => report.skipped += 1,
        }
    }
    Ok((fetched.checkpoint, report))
}

fn count(report: &mut RunReport, change: &str) {
    match change {
        "created" => report.created += 1,
        "updated" => report.updated += 1,
        _ => report.deleted += 1,
    }
}

enum Applied {
    Changed(PullChange),
    Unchanged,
    Skipped,
}

/// Writes one step through the audited store writes a SCIM request uses.
async fn apply(
    rt: &Runtime,
    connector: &str,
    actor: &str,
    step: Step,
) -> Result<Applied, PullError> {
    let store = rt.store();
    let now = OffsetDateTime::now_utc();
    let changed = |id: &str, change: &str| {
        Applied::Changed(PullChange {
            scim_id: id.to_owned(),
            change: change.to_owned(),
        })
    };
    match step {
        Step::Create(u) => {
            let id = u.id.clone();
            let doc = match document::document(rt.table().schemas(), &u, None) {
                Ok(doc) => doc,
                Err(_) => return Ok(Applied::Skipped),
            };
            let key = ResourceKey::new(connector, ResourceKind::User, id.as_str());
            let audit = WriteAudit::system(actor, "create");
            match store
                .insert_resource_audited(&key, &doc, &[], now, &audit)
                .await
            {
                Ok(_) => Ok(changed(&id, "created")),
                Err(crate::store::StoreError::Conflict(what)) => {
                    tracing::warn!(connector, scim.id = %id, conflict = %what, "a pulled user collides with a stored one (userName taken); skipped");
                    Ok(Applied::Skipped)
                }
                Err(e) => Err(e.into()),
            }
        }
        Step::Update(id, version, doc) => {
            let key = ResourceKey::new(connector, ResourceKind::User, id.as_str());
            let audit = WriteAudit::system(actor, "update");
            match store
                .modify_resource_if_audited(&key, None, now, version, doc, Vec::new(), &audit)
                .await
            {
                Ok(UpdateOutcome::Updated { .. }) => Ok(changed(&id, "updated")),
                Ok(UpdateOutcome::Unchanged(_)) => Ok(Applied::Unchanged),
                Ok(_) => {
                    // Changed or deleted meanwhile (an operator through the admin API): the
                    // next run compares again.
                    tracing::warn!(connector, scim.id = %id, "a pulled user changed while the run wrote it; left for the next run");
                    Ok(Applied::Skipped)
                }
                Err(crate::store::StoreError::Conflict(what)) => {
                    tracing::warn!(connector, scim.id = %id, conflict = %what, "a pulled user's new userName is taken; skipped");
                    Ok(Applied::Skipped)
                }
                Err(e) => Err(e.into()),
            }
        }
        Step::Delete(id) => {
            let key = ResourceKey::new(connector, ResourceKind::User, id.as_str());
            let audit = WriteAudit::system(actor, "delete");
            match store
                .delete_resource_audited(&key, None, now, &audit)
                .await?
            {
                DeleteOutcome::Deleted => Ok(changed(&id, "deleted")),
                _ => Ok(Applied::Unchanged),
            }
        }
    }
}
