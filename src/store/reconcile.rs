//! What reconcile (the full sync against Confluence, `crate::reconcile`) reads and writes:
//! snapshots of the identity links to compare, the corrections of a real run (the applied
//! state fixed from what was observed, and the key marked in the same transaction), the run
//! records, and the lease that keeps one run per connector at a time, across instances too.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;
use sqlx::FromRow;
use time::OffsetDateTime;

use super::queue::{mark_with, Priority};
use super::rows::{decode, from_row};
use super::{bind_args, from_ms, to_ms, Arg, Store, StoreResult};
use crate::scim::resource::Document;
use crate::scim::schema::ResourceKind;

/// Rows per statement or transaction when writing many.
const CHUNK: usize = 200;

/// A user's identity link as reconcile reads it: the applied state is kept as the stored
/// text, so a correction can check that nobody changed the link since it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkSnapshot {
    /// SCIM id.
    pub scim_id: String,
    /// Confluence username.
    pub target_name: String,
    /// Confluence user key, when known.
    pub target_key: Option<String>,
    /// `active`, `conflict` or `removed`.
    pub status: String,
    /// The applied state, as stored (JSON text).
    pub applied: Option<String>,
}

from_row!(LinkSnapshot {
    scim_id,
    target_name,
    target_key,
    status,
    applied
});

const SNAPSHOT: &str = LinkSnapshot::COLUMNS;

/// A user link of another connector that holds a Confluence name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameClaim {
    /// The connector holding it.
    pub connector: String,
    /// The Confluence username.
    pub name: String,
    /// `active` or `conflict`.
    pub status: String,
}

from_row!(NameClaim {
    connector,
    name = "target_name",
    status
});

/// What a real run changes for one user: the link's applied state (only if the link is still
/// as it was read) and the mark that sends the key to the worker.
#[derive(Debug, Clone, PartialEq)]
pub struct Correction {
    /// Connector.
    pub connector: String,
    /// The user's SCIM id.
    pub scim_id: String,
    /// The link change, if any.
    pub link: Option<LinkCorrection>,
    /// Mark the key for delivery, at this priority.
    pub mark: Option<Priority>,
}

/// A change to a user's link, applied only when the link still has `expected_*`.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkCorrection {
    /// The status read (`active`).
    pub expected_status: String,
    /// The applied state read (stored text).
    pub expected_applied: Option<String>,
    /// The new status (`active`, or `removed` when the account is gone and nothing is due).
    pub status: String,
    /// The new applied state.
    pub applied: Option<Value>,
}

/// Who holds a connector's reconcile lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseHolder {
    /// The instance (`hostname/pid/…`).
    pub holder: String,
    /// The run it is doing.
    pub run_id: String,
    /// When the lease lapses unless renewed.
    pub expires_at: OffsetDateTime,
}

/// A run record.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    /// Run id (a UUID).
    pub id: String,
    /// Connector.
    pub connector: String,
    /// Start.
    pub started_at: OffsetDateTime,
    /// End, once ended.
    pub ended_at: Option<OffsetDateTime>,
    /// `cli`, `schedule`, `admin:NAME`.
    pub started_by: String,
    /// A dry run.
    pub dry_run: bool,
    /// The safety guard was overridden.
    pub forced: bool,
    /// `running`, `completed`, `dry_run`, `stopped_by_guard`, `failed`.
    pub status: String,
    /// Counts and guard numbers (JSON), once ended.
    pub summary: Option<Value>,
    /// Why it failed or stopped.
    pub error: Option<String>,
}

/// One difference a run found, and what came of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemRecord {
    /// Order within the run.
    pub seq: i64,
    /// Drift class (`missing`, `active`, …).
    pub class: String,
    /// Confluence username.
    pub username: String,
    /// SCIM id, when a resource or link accounts for the account.
    pub scim_id: Option<String>,
    /// What the run does about it.
    pub action: String,
    /// What came of it.
    pub outcome: String,
    /// Details, for the admin.
    pub detail: String,
}

/// A row of `reconcile_runs`.
struct RunRow {
    id: String,
    connector: String,
    started_at: i64,
    ended_at: Option<i64>,
    started_by: String,
    mode: String,
    forced: i64,
    status: String,
    /// JSON text.
    summary: Option<String>,
    error: Option<String>,
}

from_row!(RunRow {
    id,
    connector,
    started_at,
    ended_at,
    started_by,
    mode,
    forced,
    status,
    summary,
    error
});

const RUN_COLUMNS: &str = RunRow::COLUMNS;

impl From<RunRow> for RunRecord {
    fn from(r: RunRow) -> RunRecord {
        RunRecord {
            id: r.id,
            connector: r.connector,
            started_at: from_ms(r.started_at),
            ended_at: r.ended_at.map(from_ms),
            started_by: r.started_by,
            dry_run: r.mode == "dry_run",
            forced: r.forced != 0,
            status: r.status,
            summary: r.summary.and_then(|s| serde_json::from_str(&s).ok()),
            error: r.error,
        }
    }
}

/// A row of `reconcile_items` (`scim_id` is empty when nothing accounts for the account).
struct ItemRow {
    seq: i64,
    class: String,
    username: String,
    scim_id: String,
    action: String,
    outcome: String,
    detail: String,
}

from_row!(ItemRow {
    seq,
    class,
    username,
    scim_id,
    action,
    outcome,
    detail
});

/// A user of another connector without an identity link.
struct UnlinkedRow {
    seq: i64,
    connector: String,
    /// JSON text.
    doc: String,
}

from_row!(UnlinkedRow {
    seq,
    connector,
    doc
});

/// A row of `reconcile_leases`.
struct LeaseRow {
    holder: String,
    run_id: String,
    expires_at: i64,
}

from_row!(LeaseRow {
    holder,
    run_id,
    expires_at
});

/// The start and status of a run.
struct LastRunRow {
    started_at: i64,
    status: String,
}

from_row!(LastRunRow { started_at, status });

fn in_list(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    // ---- what a run compares ---------------------------------------------------------------

    /// The user links of `ids` (any status), by SCIM id.
    pub async fn user_link_snapshots(
        &self,
        connector: &str,
        ids: &[String],
    ) -> StoreResult<HashMap<String, LinkSnapshot>> {
        let mut out = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let sql = format!(
                "SELECT {SNAPSHOT} FROM identity_links WHERE connector = $1 AND kind = 'User' \
                 AND scim_id IN ({})",
                in_list(2, chunk.len())
            );
            let mut args = vec![Arg::Text(connector.to_owned())];
            args.extend(chunk.iter().map(|id| Arg::Text(id.clone())));
            for r in bind_args(sqlx::query(&sql), &args)
                .fetch_all(self.reader())
                .await?
            {
                let s = LinkSnapshot::from_row(&r)?;
                out.insert(s.scim_id.clone(), s);
            }
        }
        Ok(out)
    }

    /// The connector's live user links whose resource is gone: accounts usersync created or
    /// adopted for a user the IdP deleted.
    pub async fn orphaned_user_links(&self, connector: &str) -> StoreResult<Vec<LinkSnapshot>> {
        let sql = format!(
            "SELECT {SNAPSHOT} FROM identity_links l WHERE l.connector = $1 AND l.kind = 'User' \
             AND l.status = 'active' AND NOT EXISTS (SELECT 1 FROM resources r \
             WHERE r.connector = l.connector AND r.kind = 'User' AND r.id = l.scim_id) \
             ORDER BY l.target_name"
        );
        let rows = sqlx::query(&sql)
            .bind(connector.to_owned())
            .fetch_all(self.reader())
            .await?;
        decode(&rows)
    }

    /// The Confluence usernames other connectors hold (live or refused-conflict links).
    pub async fn user_names_claimed_by_others(
        &self,
        connector: &str,
    ) -> StoreResult<Vec<NameClaim>> {
        let sql = format!(
            "SELECT {} FROM identity_links WHERE kind = 'User' \
             AND connector <> $1 AND status <> 'removed'",
            NameClaim::COLUMNS
        );
        let rows = sqlx::query(&sql)
            .bind(connector.to_owned())
            .fetch_all(self.reader())
            .await?;
        decode(&rows)
    }

    /// The Confluence names of the connector's live group links.
    pub async fn linked_group_names(&self, connector: &str) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT target_name FROM identity_links WHERE connector = $1 AND kind = 'Group' \
             AND status = 'active' ORDER BY target_name",
        )
        .bind(connector.to_owned())
        .fetch_all(self.reader())
        .await?)
    }

    /// Users of other connectors that have no identity link yet (delivery has not reached
    /// them), `limit` at a time after `after` (a resource `seq`): `(seq, connector, document)`.
    /// Their usernames are not orphans: delivery will create or adopt them.
    pub async fn unlinked_users_of_others(
        &self,
        connector: &str,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<(i64, String, Document)>> {
        let rows = sqlx::query(
            "SELECT r.seq AS seq, r.connector AS connector, r.doc AS doc FROM resources r \
             WHERE r.kind = 'User' \
             AND r.connector <> $1 AND r.seq > $2 AND NOT EXISTS (SELECT 1 FROM identity_links l \
             WHERE l.connector = r.connector AND l.kind = 'User' AND l.scim_id = r.id) \
             ORDER BY r.seq LIMIT $3",
        )
        .bind(connector.to_owned())
        .bind(after)
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        Ok(decode::<UnlinkedRow>(&rows)?
            .into_iter()
            .map(|r| {
                let doc = serde_json::from_str::<Value>(&r.doc)
                    .ok()
                    .and_then(|v| v.as_object().cloned())
                    .unwrap_or_default();
                (r.seq, r.connector, doc)
            })
            .collect())
    }

    // ---- what a real run changes -----------------------------------------------------------

    /// Applies corrections, 200 per transaction: each link change only when the link is
    /// still as it was read (a delivery that changed it meanwhile wins), then the key's mark.
    /// Returns, per correction, whether its link change applied (`true` without one).
    pub async fn apply_corrections(
        &self,
        corrections: &[Correction],
        now: OffsetDateTime,
    ) -> StoreResult<Vec<bool>> {
        let now_ms = to_ms(now);
        let mut applied = Vec::with_capacity(corrections.len());
        for chunk in corrections.chunks(CHUNK) {
            let mut tx = self.write_tx().await?;
            for c in chunk {
                let mut ok = true;
                if let Some(l) = &c.link {
                    let done = sqlx::query(
                        "UPDATE identity_links SET status = $1, applied = $2, updated_at = $3 \
                         WHERE connector = $4 AND kind = 'User' AND scim_id = $5 AND status = $6 \
                         AND COALESCE(applied, '') = $7",
                    )
                    .bind(l.status.clone())
                    .bind(l.applied.as_ref().map(Value::to_string))
                    .bind(now_ms)
                    .bind(c.connector.clone())
                    .bind(c.scim_id.clone())
                    .bind(l.expected_status.clone())
                    .bind(l.expected_applied.clone().unwrap_or_default())
                    .execute(&mut *tx)
                    .await?;
                    ok = done.rows_affected() == 1;
                }
                if let Some(priority) = c.mark {
                    mark_with(
                        &mut tx,
                        &c.connector,
                        ResourceKind::User,
                        &c.scim_id,
                        now_ms,
                        priority,
                    )
                    .await?;
                }
                applied.push(ok);
            }
            tx.commit().await?;
            self.queue_marked();
        }
        Ok(applied)
    }

    // ---- one run at a time -----------------------------------------------------------------

    /// Takes the connector's reconcile lease for `ttl` unless another holder's lease is still
    /// valid: `Ok(None)` when taken, `Ok(Some(holder))` when someone else holds it. One
    /// statement, so two instances racing for it cannot both win (the database serialises
    /// the conflicting inserts).
    pub async fn acquire_reconcile_lease(
        &self,
        connector: &str,
        holder: &str,
        run_id: &str,
        ttl: Duration,
        now: OffsetDateTime,
    ) -> StoreResult<Option<LeaseHolder>> {
        let now_ms = to_ms(now);
        let taken = sqlx::query(
            "INSERT INTO reconcile_leases (connector, holder, run_id, expires_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (connector) DO UPDATE SET \
             holder = excluded.holder, run_id = excluded.run_id, expires_at = excluded.expires_at \
             WHERE reconcile_leases.expires_at <= $5 RETURNING run_id",
        )
        .bind(connector.to_owned())
        .bind(holder.to_owned())
        .bind(run_id.to_owned())
        .bind(now_ms + ttl.as_millis() as i64)
        .bind(now_ms)
        .fetch_optional(self.writer())
        .await?;
        if taken.is_some() {
            return Ok(None);
        }
        let sql = format!(
            "SELECT {} FROM reconcile_leases WHERE connector = $1",
            LeaseRow::COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(connector.to_owned())
            .fetch_optional(self.reader())
            .await?;
        Ok(Some(
            match row.as_ref().map(LeaseRow::from_row).transpose()? {
                Some(r) => LeaseHolder {
                    holder: r.holder,
                    run_id: r.run_id,
                    expires_at: from_ms(r.expires_at),
                },
                // Released between the two statements: report it as held for an instant rather
                // than loop; the caller says "try again".
                None => LeaseHolder {
                    holder: String::new(),
                    run_id: String::new(),
                    expires_at: now,
                },
            },
        ))
    }

    /// Extends a lease this holder has; `false` when it lost it (it lapsed and another holder
    /// took it).
    pub async fn renew_reconcile_lease(
        &self,
        connector: &str,
        holder: &str,
        run_id: &str,
        ttl: Duration,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE reconcile_leases SET expires_at = $1 WHERE connector = $2 AND holder = $3 \
             AND run_id = $4",
        )
        .bind(to_ms(now) + ttl.as_millis() as i64)
        .bind(connector.to_owned())
        .bind(holder.to_owned())
        .bind(run_id.to_owned())
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives a lease back (nothing happens if this holder no longer has it).
    pub async fn release_reconcile_lease(
        &self,
        connector: &str,
        holder: &str,
        run_id: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "DELETE FROM reconcile_leases WHERE connector = $1 AND holder = $2 AND run_id = $3",
        )
        .bind(connector.to_owned())
        .bind(holder.to_owned())
        .bind(run_id.to_owned())
        .execute(self.writer())
        .await?;
        Ok(())
    }

    // ---- run records -----------------------------------------------------------------------

    /// Records the start of a run (status `running`).
    pub async fn insert_reconcile_run(&self, run: &RunRecord) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO reconcile_runs ({RUN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
             $9, $10)"
        ))
        .bind(run.id.clone())
        .bind(run.connector.clone())
        .bind(to_ms(run.started_at))
        .bind(run.ended_at.map(to_ms))
        .bind(run.started_by.clone())
        .bind(if run.dry_run { "dry_run" } else { "real" })
        .bind(i64::from(run.forced))
        .bind(run.status.clone())
        .bind(run.summary.as_ref().map(Value::to_string))
        .bind(run.error.clone())
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// Records the end of a run with its items, in one transaction.
    pub async fn finish_reconcile_run(
        &self,
        run: &RunRecord,
        items: &[ItemRecord],
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE reconcile_runs SET ended_at = $1, status = $2, summary = $3, error = $4, \
             forced = $5 WHERE id = $6",
        )
        .bind(run.ended_at.map(to_ms))
        .bind(run.status.clone())
        .bind(run.summary.as_ref().map(Value::to_string))
        .bind(run.error.clone())
        .bind(i64::from(run.forced))
        .bind(run.id.clone())
        .execute(&mut *tx)
        .await?;
        for chunk in items.chunks(CHUNK) {
            let rows: Vec<String> = (0..chunk.len())
                .map(|i| format!("({})", in_list(i * 8 + 1, 8)))
                .collect();
            let sql = format!(
                "INSERT INTO reconcile_items (run_id, seq, class, username, scim_id, action, \
                 outcome, detail) VALUES {}",
                rows.join(", ")
            );
            let mut args = Vec::with_capacity(chunk.len() * 8);
            for it in chunk {
                args.extend([
                    Arg::Text(run.id.clone()),
                    Arg::Int(it.seq),
                    Arg::Text(it.class.clone()),
                    Arg::Text(it.username.clone()),
                ]);
                // `Arg` has no NULL; an absent SCIM id is stored as ''.
                args.push(Arg::Text(it.scim_id.clone().unwrap_or_default()));
                args.extend([
                    Arg::Text(it.action.clone()),
                    Arg::Text(it.outcome.clone()),
                    Arg::Text(it.detail.clone()),
                ]);
            }
            bind_args(sqlx::query(&sql).persistent(false), &args)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Runs of a connector (or all), newest first, at most `limit`.
    pub async fn reconcile_runs(
        &self,
        connector: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<RunRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM reconcile_runs WHERE ($1 = '' OR connector = $1) \
             ORDER BY started_at DESC, id LIMIT $2"
        ))
        .bind(connector.unwrap_or_default().to_owned())
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        Ok(decode::<RunRow>(&rows)?
            .into_iter()
            .map(RunRecord::from)
            .collect())
    }

    /// One run, by id.
    pub async fn reconcile_run(&self, id: &str) -> StoreResult<Option<RunRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM reconcile_runs WHERE id = $1"
        ))
        .bind(id.to_owned())
        .fetch_optional(self.reader())
        .await?;
        Ok(row
            .as_ref()
            .map(RunRow::from_row)
            .transpose()?
            .map(RunRecord::from))
    }

    /// The items of a run, in order.
    pub async fn reconcile_items(&self, run_id: &str) -> StoreResult<Vec<ItemRecord>> {
        let sql = format!(
            "SELECT {} FROM reconcile_items WHERE run_id = $1 ORDER BY seq",
            ItemRow::COLUMNS
        );
        let rows = sqlx::query(&sql)
            .bind(run_id.to_owned())
            .fetch_all(self.reader())
            .await?;
        Ok(decode::<ItemRow>(&rows)?
            .into_iter()
            .map(|r| ItemRecord {
                seq: r.seq,
                class: r.class,
                username: r.username,
                scim_id: (!r.scim_id.is_empty()).then_some(r.scim_id),
                action: r.action,
                outcome: r.outcome,
                detail: r.detail,
            })
            .collect())
    }

    /// The reconcile items about one resource of `connector`, newest run first, each with
    /// its run's id, mode and start (the resource's timeline in the admin API).
    pub async fn reconcile_items_of(
        &self,
        connector: &str,
        scim_id: &str,
        limit: i64,
    ) -> StoreResult<Vec<(String, String, OffsetDateTime, ItemRecord)>> {
        let rows = sqlx::query(
            "SELECT r.id AS run_id, r.mode AS run_mode, r.started_at AS run_started_at, \
             i.seq, i.class, i.username, i.scim_id, i.action, i.outcome, i.detail \
             FROM reconcile_items i JOIN reconcile_runs r ON r.id = i.run_id \
             WHERE i.scim_id = $1 AND r.connector = $2 \
             ORDER BY r.started_at DESC, i.seq LIMIT $3",
        )
        .bind(scim_id.to_owned())
        .bind(connector.to_owned())
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            use sqlx::Row as _;
            let item = ItemRow::from_row(row)?;
            out.push((
                row.try_get::<String, _>("run_id")?,
                row.try_get::<String, _>("run_mode")?,
                from_ms(row.try_get::<i64, _>("run_started_at")?),
                ItemRecord {
                    seq: item.seq,
                    class: item.class,
                    username: item.username,
                    scim_id: (!item.scim_id.is_empty()).then_some(item.scim_id),
                    action: item.action,
                    outcome: item.outcome,
                    detail: item.detail,
                },
            ));
        }
        Ok(out)
    }

    /// The start and status of the connector's last real run that ended (for the schedule:
    /// dry runs and runs still going do not count).
    pub async fn last_reconcile(
        &self,
        connector: &str,
    ) -> StoreResult<Option<(OffsetDateTime, String)>> {
        let row = sqlx::query(
            "SELECT started_at, status FROM reconcile_runs WHERE connector = $1 \
             AND mode = 'real' AND status <> 'running' ORDER BY started_at DESC LIMIT 1",
        )
        .bind(connector.to_owned())
        .fetch_optional(self.reader())
        .await?;
        Ok(row
            .as_ref()
            .map(LastRunRow::from_row)
            .transpose()?
            .map(|r| (from_ms(r.started_at), r.status)))
    }

    /// Deletes the runs (and their items) that started before `before`; returns how many runs.
    /// A run still marked `running` that old was cut off (a crash) and goes too.
    pub async fn prune_reconcile_runs(&self, before: OffsetDateTime) -> StoreResult<u64> {
        let mut tx = self.write_tx().await?;
        // Items first: SQLite enforces the cascade only with foreign_keys on, which the writer
        // sets, but PostgreSQL and SQLite then agree without relying on it.
        sqlx::query(
            "DELETE FROM reconcile_items WHERE run_id IN \
             (SELECT id FROM reconcile_runs WHERE started_at < $1)",
        )
        .bind(to_ms(before))
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query("DELETE FROM reconcile_runs WHERE started_at < $1")
            .bind(to_ms(before))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }
}
