//! What pull connectors keep besides the users they write (docs/pull.md): the checkpoint
//! an incremental run starts from, the record of each run and the users it changed
//! (migration 0010). The users themselves go through the audited resource writes, like a
//! SCIM request's.

use time::OffsetDateTime;

use super::{bind_args, from_ms, to_ms, Arg, Store, StoreResult};

/// Rows inserted per statement when a run's changes are recorded.
const CHUNK: usize = 300;

/// Where a connector's next incremental run starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The connector kind that wrote it (`graph`, `google`, …): a checkpoint of another kind
    /// means nothing and is ignored.
    pub kind: String,
    /// Graph's deltaLink, a timestamp, a cursor.
    pub value: String,
    /// The end of the last successful full run.
    pub full_at: Option<OffsetDateTime>,
    /// When it was written.
    pub updated_at: OffsetDateTime,
}

/// One pull run as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRunRecord {
    /// Random id.
    pub id: String,
    /// The connector.
    pub connector: String,
    /// Its kind.
    pub kind: String,
    /// `full` or `incremental`.
    pub mode: String,
    /// `cli`, `schedule`.
    pub started_by: String,
    /// Whether `--force` let it past the deletion guard.
    pub forced: bool,
    /// Start.
    pub started_at: OffsetDateTime,
    /// End, once finished.
    pub ended_at: Option<OffsetDateTime>,
    /// `running`, `done`, `failed`, `stopped` (the deletion guard).
    pub status: String,
    /// Users the IdP returned.
    pub read_users: i64,
    /// Users created, updated, deleted, left as they were.
    pub created: i64,
    /// See `created`.
    pub updated: i64,
    /// See `created`.
    pub deleted: i64,
    /// See `created`.
    pub unchanged: i64,
    /// Why it failed or stopped.
    pub error: Option<String>,
}

/// A user a run changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullChange {
    /// SCIM id of the user.
    pub scim_id: String,
    /// `created`, `updated`, `deleted`.
    pub change: String,
}

type RunRow = (
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    Option<i64>,
    String,
    i64,
    i64,
    i64,
    i64,
    i64,
    Option<String>,
);

const RUN_COLUMNS: &str = "id, connector, kind, mode, started_by, forced, started_at, ended_at, \
                           status, read_users, created, updated, deleted, unchanged, error";

fn run_of(r: RunRow) -> PullRunRecord {
    PullRunRecord {
        id: r.0,
        connector: r.1,
        kind: r.2,
        mode: r.3,
        started_by: r.4,
        forced: r.5 != 0,
        started_at: from_ms(r.6),
        ended_at: r.7.map(from_ms),
        status: r.8,
        read_users: r.9,
        created: r.10,
        updated: r.11,
        deleted: r.12,
        unchanged: r.13,
        error: r.14,
    }
}

impl Store {
    /// The checkpoint of `connector`, if a run ever finished.
    pub async fn pull_checkpoint(&self, connector: &str) -> StoreResult<Option<Checkpoint>> {
        let row: Option<(String, String, Option<i64>, i64)> = sqlx::query_as(
            "SELECT kind, checkpoint, full_at, updated_at FROM pull_checkpoints \
             WHERE connector = $1",
        )
        .bind(connector.to_owned())
        .fetch_optional(self.reader())
        .await?;
        Ok(row.map(|(kind, value, full_at, updated_at)| Checkpoint {
            kind,
            value,
            full_at: full_at.map(from_ms),
            updated_at: from_ms(updated_at),
        }))
    }

    /// Writes the checkpoint after a successful run; `full` also moves `full_at`.
    pub async fn save_pull_checkpoint(
        &self,
        connector: &str,
        kind: &str,
        value: &str,
        full: bool,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        let now_ms = to_ms(now);
        sqlx::query(
            "INSERT INTO pull_checkpoints (connector, kind, checkpoint, full_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (connector) DO UPDATE SET \
             kind = excluded.kind, checkpoint = excluded.checkpoint, \
             full_at = COALESCE(excluded.full_at, pull_checkpoints.full_at), \
             updated_at = excluded.updated_at",
        )
        .bind(connector.to_owned())
        .bind(kind.to_owned())
        .bind(value.to_owned())
        .bind(full.then_some(now_ms))
        .bind(now_ms)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// The SCIM ids of every user of `connector`: what a full run compares the IdP's list
    /// with to find deletions.
    pub async fn user_ids(&self, connector: &str) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM resources WHERE connector = $1 AND kind = 'User' ORDER BY seq",
        )
        .bind(connector.to_owned())
        .fetch_all(self.reader())
        .await?)
    }

    /// Records the start of a run (status `running`).
    pub async fn insert_pull_run(&self, run: &PullRunRecord) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO pull_runs ({RUN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
             $10, $11, $12, $13, $14, $15)"
        ))
        .bind(run.id.clone())
        .bind(run.connector.clone())
        .bind(run.kind.clone())
        .bind(run.mode.clone())
        .bind(run.started_by.clone())
        .bind(i64::from(run.forced))
        .bind(to_ms(run.started_at))
        .bind(run.ended_at.map(to_ms))
        .bind(run.status.clone())
        .bind(run.read_users)
        .bind(run.created)
        .bind(run.updated)
        .bind(run.deleted)
        .bind(run.unchanged)
        .bind(run.error.clone())
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// Records the end of a run with the users it changed, in one transaction.
    pub async fn finish_pull_run(
        &self,
        run: &PullRunRecord,
        changes: &[PullChange],
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE pull_runs SET ended_at = $1, status = $2, read_users = $3, created = $4, \
             updated = $5, deleted = $6, unchanged = $7, error = $8, forced = $9 WHERE id = $10",
        )
        .bind(run.ended_at.map(to_ms))
        .bind(run.status.clone())
        .bind(run.read_users)
        .bind(run.created)
        .bind(run.updated)
        .bind(run.deleted)
        .bind(run.unchanged)
        .bind(run.error.clone())
        .bind(i64::from(run.forced))
        .bind(run.id.clone())
        .execute(&mut *tx)
        .await?;
        for (n, chunk) in changes.chunks(CHUNK).enumerate() {
            let rows: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let b = i * 4;
                    format!("(${}, ${}, ${}, ${})", b + 1, b + 2, b + 3, b + 4)
                })
                .collect();
            let sql = format!(
                "INSERT INTO pull_changes (run_id, seq, scim_id, change) VALUES {}",
                rows.join(", ")
            );
            let mut args = Vec::with_capacity(chunk.len() * 4);
            for (i, c) in chunk.iter().enumerate() {
                args.extend([
                    Arg::Text(run.id.clone()),
                    Arg::Int((n * CHUNK + i) as i64),
                    Arg::Text(c.scim_id.clone()),
                    Arg::Text(c.change.clone()),
                ]);
            }
            bind_args(sqlx::query(&sql).persistent(false), &args)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Runs of `connector`, newest first, at most `limit`.
    pub async fn pull_runs(&self, connector: &str, limit: i64) -> StoreResult<Vec<PullRunRecord>> {
        let rows: Vec<RunRow> = sqlx::query_as(&format!(
            "SELECT {RUN_COLUMNS} FROM pull_runs WHERE connector = $1 \
             ORDER BY started_at DESC, id LIMIT $2"
        ))
        .bind(connector.to_owned())
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        Ok(rows.into_iter().map(run_of).collect())
    }

    /// One run by id.
    pub async fn pull_run(&self, id: &str) -> StoreResult<Option<PullRunRecord>> {
        let row: Option<RunRow> = sqlx::query_as(&format!(
            "SELECT {RUN_COLUMNS} FROM pull_runs WHERE id = $1"
        ))
        .bind(id.to_owned())
        .fetch_optional(self.reader())
        .await?;
        Ok(row.map(run_of))
    }

    /// The users a run changed, in the order it changed them.
    pub async fn pull_changes(&self, run_id: &str) -> StoreResult<Vec<PullChange>> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT scim_id, change FROM pull_changes WHERE run_id = $1 ORDER BY seq",
        )
        .bind(run_id.to_owned())
        .fetch_all(self.reader())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(scim_id, change)| PullChange { scim_id, change })
            .collect())
    }
}
