//! The sync queue: which resource keys still have to reach the targets.
//!
//! A key is marked in the same transaction as the write that changed it (`mark`). The
//! delivery worker claims due keys with a lease (one in flight per key), converges them, and
//! then completes, reschedules or parks them as dead. Claims carry the key's `generation`: if
//! the key was marked again while in flight, completing the old generation only releases the
//! lease, so the newer change is delivered too.
//!
//! Several instances share one PostgreSQL queue (docs/delivery.md, "Several instances"): a
//! lease is short and renewed by its holder while it works ([`Store::renew_claim`]), so a
//! killed instance's keys are taken over within a lease; and every claim carries a fresh
//! `claim_token` that renewing and finishing must match, so an instance that stalled past its
//! lease (a pause, a partition) cannot finish or release a key another instance holds now.
//!
//! Two columns serve target health and urgency (`docs/delivery.md`): `priority` (deprovisioning
//! is claimed first) and `waiting_on` (the paused target a key waits for, without having spent
//! a retry; the worker leaves such keys alone until the target answers, then releases them).

use std::time::Duration;

use sqlx::{AnyConnection, FromRow};
use time::OffsetDateTime;

use super::rows::{decode, from_row};
use super::{bind_args, from_ms, to_ms, Arg, Backend, ResourceKey, Store, StoreResult};
use crate::scim::schema::ResourceKind;

/// How urgent a marked key is: deprovisioning is claimed ahead of other work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    /// A user made inactive, a user or group deleted: access must go now.
    Deprovision = 0,
    /// Everything else.
    Normal = 1,
}

/// Which keys a claim may take, as far as target health goes.
#[derive(Debug, Clone, Copy)]
pub struct ClaimFilter<'a> {
    /// The target every key visits first (`confluence`): a key waiting for nothing waits for it
    /// when it is paused.
    pub first_target: &'a str,
    /// The targets paused now: keys waiting for them are not claimed.
    pub paused: &'a [String],
}

/// A claimed key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The key.
    pub key: ResourceKey,
    /// The generation that was claimed.
    pub generation: i64,
    /// Attempts so far, this one included.
    pub attempts: i64,
    /// The token of this claim (fencing: see the module documentation).
    pub token: String,
    /// When the key became dirty: the time of the first write not yet delivered, taken in
    /// that write's transaction (the commit-to-delivery metric starts here, docs/metrics.md).
    pub enqueued_at: OffsetDateTime,
    /// The key's priority ([`Priority`] as a number): 0 when a change not yet delivered is a
    /// deprovisioning.
    pub priority: i64,
}

/// A queue row, for the admin view and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueRow {
    /// The key.
    pub key: ResourceKey,
    /// Times marked.
    pub generation: i64,
    /// `pending` or `dead`.
    pub state: String,
    /// Attempts since the last mark.
    pub attempts: i64,
    /// When it is due.
    pub next_attempt_at: OffsetDateTime,
    /// The last failure, if any.
    pub last_error: Option<String>,
    /// When the key first became dirty.
    pub enqueued_at: OffsetDateTime,
    /// 0: deprovisioning, claimed first; 1: the rest.
    pub priority: i64,
    /// The paused target the key waits for (`confluence`, `webhook/CONNECTOR`), if any.
    pub waiting_on: Option<String>,
}

/// Counts for health and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueStats {
    /// Keys waiting for delivery.
    pub pending: i64,
    /// Keys whose retries are exhausted.
    pub dead: i64,
    /// Pending keys set aside because a target they need is paused (rate limited, down,
    /// refusing credentials); they spent no retry.
    pub waiting: i64,
    /// When the oldest pending key became dirty (alert when this grows: delivery is stalled).
    pub oldest_pending_ms: Option<i64>,
}

/// Marks a key dirty inside the caller's transaction, at normal priority.
pub(crate) async fn mark(
    conn: &mut AnyConnection,
    connector: &str,
    kind: ResourceKind,
    id: &str,
    now_ms: i64,
) -> StoreResult<()> {
    mark_with(conn, connector, kind, id, now_ms, Priority::Normal).await
}

/// [`mark_with`]'s statement: `$1` connector, `$2` kind, `$3` resource id, `$4` now (ms),
/// `$5` priority. Shared with the one-round-trip create on SQLite (`store/resources.rs`),
/// whose parameters are numbered to match.
pub(crate) const MARK: &str = "INSERT INTO sync_queue (connector, kind, resource_id, \
     generation, state, attempts, next_attempt_at, enqueued_at, priority) \
     VALUES ($1, $2, $3, 1, 'pending', 0, $4, $4, $5) \
     ON CONFLICT (connector, kind, resource_id) DO UPDATE SET \
     generation = sync_queue.generation + 1, state = 'pending', attempts = 0, \
     next_attempt_at = excluded.next_attempt_at, last_error = NULL, waiting_on = NULL, \
     priority = CASE WHEN excluded.priority < sync_queue.priority \
     THEN excluded.priority ELSE sync_queue.priority END";

/// Marks a key dirty inside the caller's transaction. A key already pending keeps the more
/// urgent of its priority and `priority`; a key waiting for a paused target waits no more (the
/// new change may need another target first).
pub(crate) async fn mark_with(
    conn: &mut AnyConnection,
    connector: &str,
    kind: ResourceKind,
    id: &str,
    now_ms: i64,
    priority: Priority,
) -> StoreResult<()> {
    sqlx::query(MARK)
        .bind(connector.to_owned())
        .bind(kind.as_str())
        .bind(id.to_owned())
        .bind(now_ms)
        .bind(priority as i64)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// [`mark_reports`]'s statement with its parameters named: `connector`, `now` (ms) and `id`
/// (`$n`), and `count` keys from `$first_key` on.
pub(crate) fn mark_reports_sql(
    connector: &str,
    now: &str,
    id: &str,
    first_key: usize,
    count: usize,
) -> String {
    let list: Vec<String> = (0..count).map(|i| format!("${}", i + first_key)).collect();
    // Only (connector, manager_ref) is filtered on, so both databases use the
    // resources_manager_ref index; a `kind` term would let SQLite's planner prefer the
    // (connector, kind, id) index and scan every user of the connector on every write.
    // manager_ref is NULL for groups. The WHERE clause also lets SQLite parse the upsert
    // after a SELECT.
    format!(
        "INSERT INTO sync_queue (connector, kind, resource_id, generation, state, attempts, \
         next_attempt_at, enqueued_at) \
         SELECT connector, kind, id, 1, 'pending', 0, {now}, {now} FROM resources \
         WHERE connector = {connector} AND manager_ref IN ({}) AND id <> {id} \
         ON CONFLICT (connector, kind, resource_id) DO UPDATE SET \
         generation = sync_queue.generation + 1, state = 'pending', attempts = 0, \
         next_attempt_at = excluded.next_attempt_at, last_error = NULL, waiting_on = NULL",
        list.join(", ")
    )
}

/// Marks, inside the caller's transaction, the users of `connector` whose `manager_ref` is
/// one of `keys` (lower-cased), except `id` itself: a manager was written, so the manager
/// field of their reports may now resolve, change or clear. One statement, on an index.
pub(crate) async fn mark_reports(
    conn: &mut AnyConnection,
    connector: &str,
    id: &str,
    keys: &[String],
    now_ms: i64,
) -> StoreResult<()> {
    if keys.is_empty() {
        return Ok(());
    }
    let sql = mark_reports_sql("$1", "$2", "$3", 4, keys.len());
    // Not a cached prepared statement: PostgreSQL would keep the plan it made while the table
    // was nearly empty (a sequential scan) for the life of the connection, which makes every
    // user write scan all users once the table has grown. Planned afresh, it uses the index.
    // SQLite plans when it prepares and prepares again when statistics change: cached there.
    let sqlite = Backend::of(conn) == Backend::Sqlite;
    let mut q = sqlx::query(&sql)
        .persistent(sqlite)
        .bind(connector.to_owned())
        .bind(now_ms)
        .bind(id.to_owned());
    for k in keys {
        q = q.bind(k.clone());
    }
    q.execute(&mut *conn).await?;
    Ok(())
}

/// How many references one statement of [`mark_report_lines`] names: far below SQLite's
/// and PostgreSQL's bind-parameter limits, and a small IN list stays an index lookup.
const LINE_CHUNK: usize = 500;

/// [`mark_reports`], and when the connector's mapping reads `depth` > 1 lines of managers
/// (docs/mapping.md "Lines of managers"), the reports of those reports, `depth` lines down:
/// their `manager.manager` field passes through the written user. One round per line: the
/// ids of the line just marked, their keys (as [`mark_reports`] takes them), and the mark.
/// A cycle in the IdP's data cannot loop: a user is followed once, and no more than `depth`
/// lines are walked.
pub(crate) async fn mark_report_lines(
    conn: &mut AnyConnection,
    connector: &str,
    id: &str,
    keys: &[String],
    depth: u8,
    now_ms: i64,
) -> StoreResult<()> {
    mark_reports(conn, connector, id, keys, now_ms).await?;
    let mut followed: std::collections::HashSet<String> = [id.to_owned()].into();
    let mut keys = keys.to_vec();
    for _ in 1..depth {
        let mut line = Vec::new();
        for chunk in keys.chunks(LINE_CHUNK) {
            line.extend(
                report_ids(conn, connector, chunk)
                    .await?
                    .into_iter()
                    .filter(|r| followed.insert(r.clone())),
            );
        }
        if line.is_empty() {
            break;
        }
        keys = user_keys(conn, connector, &line).await?;
        for chunk in keys.chunks(LINE_CHUNK) {
            mark_reports(conn, connector, id, chunk, now_ms).await?;
        }
    }
    Ok(())
}

/// The users of `connector` whose `manager_ref` is one of `keys`.
async fn report_ids(
    conn: &mut AnyConnection,
    connector: &str,
    keys: &[String],
) -> StoreResult<Vec<String>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let list: Vec<String> = (0..keys.len()).map(|i| format!("${}", i + 2)).collect();
    let sql = format!(
        "SELECT id FROM resources WHERE connector = $1 AND manager_ref IN ({})",
        list.join(", ")
    );
    // Planned afresh for the index, like mark_reports.
    let mut q = sqlx::query_scalar::<_, String>(&sql)
        .persistent(false)
        .bind(connector.to_owned());
    for k in keys {
        q = q.bind(k.clone());
    }
    Ok(q.fetch_all(&mut *conn).await?)
}

/// Manager keys in the one form `manager_ref` is stored and matched in: trimmed,
/// lower-cased, none empty, sorted and without repeats. The keys a user may be named by are
/// gathered in two places (a write, from the document; a line followed further, from the
/// stored rows), and both must give the same keys or a report would be missed.
pub(super) fn normalise_keys(keys: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut keys: Vec<String> = keys
        .into_iter()
        .map(|k| k.trim().to_lowercase())
        .filter(|k| !k.is_empty())
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// The keys another user's `manager.value` may name each of `ids` by (id, externalId,
/// employeeNumber, userName, e-mail addresses), in the form of [`normalise_keys`].
async fn user_keys(
    conn: &mut AnyConnection,
    connector: &str,
    ids: &[String],
) -> StoreResult<Vec<String>> {
    let mut keys = Vec::new();
    for chunk in ids.chunks(LINE_CHUNK) {
        let list: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
        let users = format!(
            "SELECT id, external_id, employee_number, name FROM resources \
             WHERE connector = $1 AND kind = 'User' AND id IN ({})",
            list.join(", ")
        );
        let mut q = sqlx::query_as::<_, (String, Option<String>, Option<String>, String)>(&users)
            .persistent(false)
            .bind(connector.to_owned());
        for id in chunk {
            q = q.bind(id.clone());
        }
        for (id, external, number, name) in q.fetch_all(&mut *conn).await? {
            keys.extend(
                [Some(id), external, number, Some(name)]
                    .into_iter()
                    .flatten(),
            );
        }
        let emails = format!(
            "SELECT value_lower FROM resource_emails WHERE connector = $1 AND resource_id IN ({})",
            list.join(", ")
        );
        let mut q = sqlx::query_scalar::<_, String>(&emails)
            .persistent(false)
            .bind(connector.to_owned());
        for id in chunk {
            q = q.bind(id.clone());
        }
        keys.extend(q.fetch_all(&mut *conn).await?);
    }
    Ok(normalise_keys(keys))
}

pub(crate) fn key_of(connector: String, kind: &str, id: String) -> ResourceKey {
    ResourceKey {
        connector,
        kind: ResourceKind::parse(kind).unwrap_or(ResourceKind::User),
        id,
    }
}

/// A claimed row, as `RETURNING` gives it.
struct ClaimRow {
    connector: String,
    kind: String,
    resource_id: String,
    generation: i64,
    attempts: i64,
    enqueued_at: i64,
    priority: i64,
}

from_row!(ClaimRow {
    connector,
    kind,
    resource_id,
    generation,
    attempts,
    enqueued_at,
    priority
});

/// The queue of one connector, counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorQueue {
    /// The connector.
    pub connector: String,
    /// Keys still to deliver (waiting ones included).
    pub pending: i64,
    /// Keys that exhausted their retries.
    pub dead: i64,
}

from_row!(ConnectorQueue {
    connector,
    pending,
    dead
});

/// A row of `sync_queue` as the admin view selects it.
struct QueueRowRow {
    connector: String,
    kind: String,
    resource_id: String,
    generation: i64,
    state: String,
    attempts: i64,
    next_attempt_at: i64,
    last_error: Option<String>,
    enqueued_at: i64,
    priority: i64,
    waiting_on: Option<String>,
}

from_row!(QueueRowRow {
    connector,
    kind,
    resource_id,
    generation,
    state,
    attempts,
    next_attempt_at,
    last_error,
    enqueued_at,
    priority,
    waiting_on
});

impl From<QueueRowRow> for QueueRow {
    fn from(r: QueueRowRow) -> QueueRow {
        QueueRow {
            key: key_of(r.connector, &r.kind, r.resource_id),
            generation: r.generation,
            state: r.state,
            attempts: r.attempts,
            next_attempt_at: from_ms(r.next_attempt_at),
            last_error: r.last_error,
            enqueued_at: from_ms(r.enqueued_at),
            priority: r.priority,
            waiting_on: r.waiting_on,
        }
    }
}

/// The counts of [`Store::queue_stats`], by the aliases its query gives them.
struct QueueStatsRow {
    pending: i64,
    dead: i64,
    oldest_pending_ms: Option<i64>,
    waiting: i64,
}

from_row!(QueueStatsRow {
    pending,
    dead,
    oldest_pending_ms,
    waiting
});

/// The counts of [`Store::queue_stats_by_connector`]: [`QueueStatsRow`] and its connector.
struct ConnectorStatsRow {
    connector: String,
    pending: i64,
    dead: i64,
    oldest_pending_ms: Option<i64>,
    waiting: i64,
}

from_row!(ConnectorStatsRow {
    connector,
    pending,
    dead,
    oldest_pending_ms,
    waiting
});

/// The counts of the query both [`Store::queue_stats`] and
/// [`Store::queue_stats_by_connector`] run (the latter grouped).
const STATS_COLUMNS: &str = "\
    COALESCE(SUM(CASE WHEN state = 'pending' THEN 1 ELSE 0 END), 0) AS pending, \
    COALESCE(SUM(CASE WHEN state = 'dead' THEN 1 ELSE 0 END), 0) AS dead, \
    MIN(CASE WHEN state = 'pending' THEN enqueued_at END) AS oldest_pending_ms, \
    COALESCE(SUM(CASE WHEN state = 'pending' AND waiting_on IS NOT NULL \
    THEN 1 ELSE 0 END), 0) AS waiting";

impl Store {
    /// Marks a key dirty on its own (`sync-user`, `reconcile`, a manager arriving).
    pub async fn mark_dirty(&self, key: &ResourceKey, now: OffsetDateTime) -> StoreResult<()> {
        let mut conn = self.writer().acquire().await?;
        mark(&mut conn, &key.connector, key.kind, &key.id, to_ms(now)).await?;
        drop(conn);
        self.queue_marked();
        Ok(())
    }

    /// Claims up to `limit` due keys for `lease`, whatever they wait for (tests and tools; the
    /// worker uses [`Store::claim_for_delivery`]).
    pub async fn claim_due(
        &self,
        now: OffsetDateTime,
        lease: Duration,
        limit: i64,
    ) -> StoreResult<Vec<Claim>> {
        let filter = ClaimFilter {
            first_target: "",
            paused: &[],
        };
        self.claim_for_delivery(now, lease, limit, filter).await
    }

    /// Claims up to `limit` due keys for `lease`, most urgent first (deprovisioning, then by due
    /// time), leaving alone the keys that wait for a paused target. Keys already leased are
    /// skipped, so a key is never converged twice at once; a worker that dies leaves its lease
    /// to expire.
    pub async fn claim_for_delivery(
        &self,
        now: OffsetDateTime,
        lease: Duration,
        limit: i64,
        filter: ClaimFilter<'_>,
    ) -> StoreResult<Vec<Claim>> {
        let mut args = vec![
            Arg::Int(to_ms(now) + lease.as_millis() as i64),
            Arg::Int(to_ms(now)),
            Arg::Int(limit),
        ];
        let mut health = String::new();
        if !filter.paused.is_empty() {
            args.push(Arg::Text(filter.first_target.to_owned()));
            let list: Vec<String> = filter
                .paused
                .iter()
                .map(|t| {
                    args.push(Arg::Text(t.clone()));
                    format!("${}", args.len())
                })
                .collect();
            health = format!(" AND COALESCE(waiting_on, $4) NOT IN ({})", list.join(", "));
        }
        let due = format!("next_attempt_at <= $2{health}");
        self.claim_where(&due, &args).await
    }

    /// Claims one key waiting for the paused `target` to be its probe, the most urgent first,
    /// even before its due time (the worker knows the target's wait is over). When `target`
    /// is the first target, a due key waiting for nothing will do too.
    pub async fn claim_waiting(
        &self,
        now: OffsetDateTime,
        lease: Duration,
        target: &str,
        first_target: &str,
    ) -> StoreResult<Option<Claim>> {
        let args = [
            Arg::Int(to_ms(now) + lease.as_millis() as i64),
            Arg::Int(to_ms(now)),
            Arg::Int(1),
            Arg::Text(target.to_owned()),
        ];
        let which = if target == first_target {
            "(waiting_on = $4 OR (waiting_on IS NULL AND next_attempt_at <= $2))"
        } else {
            "waiting_on = $4"
        };
        Ok(self.claim_where(which, &args).await?.pop())
    }

    /// Claims pending, unleased keys matching `condition` (parameters: `$1` lease end, `$2`
    /// now, `$3` limit, then the caller's; the claim token comes last).
    async fn claim_where(&self, condition: &str, args: &[Arg]) -> StoreResult<Vec<Claim>> {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let mut args = args.to_vec();
        args.push(Arg::Text(token.clone()));
        let token_param = args.len();
        // PostgreSQL: several usersync instances claim concurrently; SKIP LOCKED makes them
        // take different rows. SQLite has one writer, so the subquery alone is race-free.
        let lock = match self.backend() {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE sync_queue SET lease_until = $1, attempts = attempts + 1, \
             claim_token = ${token_param} WHERE (connector, kind, resource_id) IN (SELECT connector, kind, resource_id \
             FROM sync_queue WHERE state = 'pending' AND {condition} \
             AND (lease_until IS NULL OR lease_until <= $2) \
             AND connector NOT IN (SELECT connector FROM connector_controls WHERE delivery_paused = 1) \
             ORDER BY priority, next_attempt_at LIMIT $3{lock}) \
             RETURNING {}",
            ClaimRow::COLUMNS
        );
        let rows = bind_args(sqlx::query(&sql), &args)
            .fetch_all(self.writer())
            .await?;
        Ok(decode::<ClaimRow>(&rows)?
            .into_iter()
            .map(|r| Claim {
                key: key_of(r.connector, &r.kind, r.resource_id),
                generation: r.generation,
                attempts: r.attempts,
                token: token.clone(),
                enqueued_at: from_ms(r.enqueued_at),
                priority: r.priority,
            })
            .collect())
    }

    /// Extends the lease of a claim this process still holds to `until` (the holder's
    /// heartbeat, every third of the lease). `false` when the claim is no longer this one's:
    /// its lease lapsed and another instance claimed the key, or it was finished.
    pub async fn renew_claim(&self, claim: &Claim, until: OffsetDateTime) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE sync_queue SET lease_until = $1 WHERE connector = $2 AND kind = $3 \
             AND resource_id = $4 AND claim_token = $5",
        )
        .bind(to_ms(until))
        .bind(claim.key.connector.clone())
        .bind(claim.key.kind.as_str())
        .bind(claim.key.id.clone())
        .bind(claim.token.clone())
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The claimed generation reached every target: drop the row, unless the key was marked
    /// again meanwhile, in which case only the lease is released. Like every way of finishing
    /// a claim, it returns `false` and changes nothing when the claim is no longer this
    /// one's (fenced: another instance holds the key now).
    pub async fn complete_claim(&self, claim: &Claim) -> StoreResult<bool> {
        self.finish_claim(claim, "DELETE FROM sync_queue", &[])
            .await
    }

    /// Delivery failed and will be retried at `next`.
    pub async fn retry_claim(
        &self,
        claim: &Claim,
        next: OffsetDateTime,
        error: &str,
    ) -> StoreResult<bool> {
        let sql = "UPDATE sync_queue SET lease_until = NULL, claim_token = NULL, \
                   next_attempt_at = $5, last_error = $6, waiting_on = NULL";
        let args = [Arg::Int(to_ms(next)), Arg::Text(error.to_owned())];
        self.finish_claim(claim, sql, &args).await
    }

    /// The key could not converge because `target` is paused: it waits for the target, from
    /// `until` at the latest (the time this process expects the target back, so another
    /// instance takes it then even if this one is gone), and the attempt is not counted.
    pub async fn defer_claim(
        &self,
        claim: &Claim,
        until: OffsetDateTime,
        target: &str,
        reason: &str,
    ) -> StoreResult<bool> {
        let sql = "UPDATE sync_queue SET lease_until = NULL, claim_token = NULL, \
                   attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, \
                   next_attempt_at = $5, waiting_on = $6, last_error = $7";
        let args = [
            Arg::Int(to_ms(until)),
            Arg::Text(target.to_owned()),
            Arg::Text(reason.to_owned()),
        ];
        self.finish_claim(claim, sql, &args).await
    }

    /// `target` answers again: every key waiting for it is due now. Returns how many.
    pub async fn release_waiting(&self, target: &str, now: OffsetDateTime) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE sync_queue SET waiting_on = NULL, \
             next_attempt_at = CASE WHEN next_attempt_at > $2 THEN $2 ELSE next_attempt_at END \
             WHERE waiting_on = $1 AND state = 'pending'",
        )
        .bind(target.to_owned())
        .bind(to_ms(now))
        .execute(self.writer())
        .await?;
        if done.rows_affected() > 0 {
            self.queue_marked();
        }
        Ok(done.rows_affected())
    }

    /// Retries are exhausted: park the key as dead, visible and retryable, never dropped.
    pub async fn bury_claim(&self, claim: &Claim, error: &str) -> StoreResult<bool> {
        let sql = "UPDATE sync_queue SET lease_until = NULL, claim_token = NULL, state = 'dead', \
                   last_error = $5, waiting_on = NULL";
        self.finish_claim(claim, sql, &[Arg::Text(error.to_owned())])
            .await
    }

    /// Applies `statement` (a DELETE or an UPDATE whose own parameters start at `$5`) to the
    /// claimed key, but only to the claimed generation and only while the claim holds the key
    /// (its token); when the key was marked again meanwhile, only the lease is released, so
    /// the newer change is delivered too. `false`: the claim was no longer this one's.
    async fn finish_claim(
        &self,
        claim: &Claim,
        statement: &str,
        args: &[Arg],
    ) -> StoreResult<bool> {
        let sql = format!(
            "{statement} WHERE connector = $1 AND kind = $2 AND resource_id = $3 \
             AND generation = $4 AND claim_token = ${}",
            5 + args.len()
        );
        let mut all = vec![
            Arg::Text(claim.key.connector.clone()),
            Arg::Text(claim.key.kind.as_str().to_owned()),
            Arg::Text(claim.key.id.clone()),
            Arg::Int(claim.generation),
        ];
        all.extend_from_slice(args);
        all.push(Arg::Text(claim.token.clone()));
        let done = bind_args(sqlx::query(&sql), &all)
            .execute(self.writer())
            .await?;
        if done.rows_affected() > 0 {
            return Ok(true);
        }
        self.release(claim).await
    }

    /// Releases every lease (SQLite at start: one process owns the database, so leases left
    /// by a killed predecessor are stale).
    pub async fn release_all_leases(&self) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE sync_queue SET lease_until = NULL, claim_token = NULL \
             WHERE lease_until IS NOT NULL",
        )
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected())
    }

    /// Marks every resource of a connector (or all) dirty: a full reconciliation, converging
    /// each to its current state (unchanged ones make no Confluence call).
    pub async fn mark_all(&self, connector: Option<&str>, now: OffsetDateTime) -> StoreResult<u64> {
        let done = sqlx::query(
            "INSERT INTO sync_queue (connector, kind, resource_id, generation, state, attempts, \
             next_attempt_at, enqueued_at) SELECT connector, kind, id, 1, 'pending', 0, $1, $1 \
             FROM resources WHERE ($2 = '' OR connector = $2) \
             ON CONFLICT (connector, kind, resource_id) DO UPDATE SET \
             generation = sync_queue.generation + 1, state = 'pending', attempts = 0, \
             next_attempt_at = excluded.next_attempt_at, last_error = NULL, waiting_on = NULL",
        )
        .bind(to_ms(now))
        .bind(connector.unwrap_or_default().to_owned())
        .execute(self.writer())
        .await?;
        self.queue_marked();
        Ok(done.rows_affected())
    }

    /// Makes every dead key of a connector (or all) pending again; returns how many.
    pub async fn revive_dead(
        &self,
        connector: Option<&str>,
        now: OffsetDateTime,
    ) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE sync_queue SET state = 'pending', attempts = 0, next_attempt_at = $1, \
             waiting_on = NULL WHERE state = 'dead' AND ($2 = '' OR connector = $2)",
        )
        .bind(to_ms(now))
        .bind(connector.unwrap_or_default().to_owned())
        .execute(self.writer())
        .await?;
        self.queue_marked();
        Ok(done.rows_affected())
    }

    /// Releases the lease of a claim that still holds its key; `false` when it no longer did.
    async fn release(&self, claim: &Claim) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE sync_queue SET lease_until = NULL, claim_token = NULL \
             WHERE connector = $1 AND kind = $2 AND resource_id = $3 AND claim_token = $4",
        )
        .bind(claim.key.connector.clone())
        .bind(claim.key.kind.as_str())
        .bind(claim.key.id.clone())
        .bind(claim.token.clone())
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Queue counts (all connectors).
    pub async fn queue_stats(&self) -> StoreResult<QueueStats> {
        let sql = format!("SELECT {STATS_COLUMNS} FROM sync_queue");
        let row = sqlx::query(&sql).fetch_one(self.reader()).await?;
        let r = QueueStatsRow::from_row(&row)?;
        Ok(QueueStats {
            pending: r.pending,
            dead: r.dead,
            oldest_pending_ms: r.oldest_pending_ms,
            waiting: r.waiting,
        })
    }

    /// Queue counts per connector, for the metrics scraped at `/metrics` (docs/metrics.md):
    /// one pass over the queue, like [`Store::queue_stats`]. Connectors with nothing queued
    /// are absent.
    pub async fn queue_stats_by_connector(&self) -> StoreResult<Vec<(String, QueueStats)>> {
        let sql = format!(
            "SELECT connector, {STATS_COLUMNS} FROM sync_queue GROUP BY connector ORDER BY connector"
        );
        let rows = sqlx::query(&sql).fetch_all(self.reader()).await?;
        Ok(decode::<ConnectorStatsRow>(&rows)?
            .into_iter()
            .map(|r| {
                let stats = QueueStats {
                    pending: r.pending,
                    dead: r.dead,
                    oldest_pending_ms: r.oldest_pending_ms,
                    waiting: r.waiting,
                };
                (r.connector, stats)
            })
            .collect())
    }

    /// The queue row of one key, if it is queued.
    pub async fn queue_row(&self, key: &ResourceKey) -> StoreResult<Option<QueueRow>> {
        let sql = format!(
            "SELECT {} FROM sync_queue WHERE connector = $1 AND kind = $2 AND resource_id = $3",
            QueueRowRow::COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(key.connector.clone())
            .bind(key.kind.as_str())
            .bind(key.id.clone())
            .fetch_optional(self.reader())
            .await?;
        Ok(match row {
            Some(r) => Some(QueueRow::from(QueueRowRow::from_row(&r)?)),
            None => None,
        })
    }

    /// Pending and dead keys per connector (connectors with an empty queue are absent).
    pub async fn queue_counts(&self) -> StoreResult<Vec<ConnectorQueue>> {
        let rows = sqlx::query(
            "SELECT connector, \
             COALESCE(SUM(CASE WHEN state = 'pending' THEN 1 ELSE 0 END), 0) AS pending, \
             COALESCE(SUM(CASE WHEN state = 'dead' THEN 1 ELSE 0 END), 0) AS dead \
             FROM sync_queue GROUP BY connector ORDER BY connector",
        )
        .fetch_all(self.reader())
        .await?;
        decode::<ConnectorQueue>(&rows)
    }

    /// At most `limit` queue rows of a connector in `state` (`pending` or `dead`), in the
    /// order the worker claims them (deprovisioning first, then by due time): the admin
    /// views. That order is the claim index's (`sync_queue_claim`), so the first page is
    /// read without sorting however deep the queue is.
    pub async fn queue_page(
        &self,
        connector: &str,
        state: &str,
        limit: i64,
    ) -> StoreResult<Vec<QueueRow>> {
        let sql = format!(
            "SELECT {} FROM sync_queue WHERE state = $2 AND connector = $1 \
             ORDER BY priority, next_attempt_at LIMIT $3",
            QueueRowRow::COLUMNS
        );
        let rows = sqlx::query(&sql)
            .bind(connector.to_owned())
            .bind(state.to_owned())
            .bind(limit)
            .fetch_all(self.reader())
            .await?;
        Ok(decode::<QueueRowRow>(&rows)?
            .into_iter()
            .map(QueueRow::from)
            .collect())
    }

    /// The queue rows of a connector (or all), oldest first.
    pub async fn queue_rows(&self, connector: Option<&str>) -> StoreResult<Vec<QueueRow>> {
        let sql = format!(
            "SELECT {} FROM sync_queue WHERE ($1 = '' OR connector = $1) \
             ORDER BY enqueued_at, connector, kind, resource_id",
            QueueRowRow::COLUMNS
        );
        let rows = sqlx::query(&sql)
            .bind(connector.unwrap_or_default().to_owned())
            .fetch_all(self.reader())
            .await?;
        Ok(decode::<QueueRowRow>(&rows)?
            .into_iter()
            .map(QueueRow::from)
            .collect())
    }
}

#[cfg(test)]
mod normalise_tests {
    use super::normalise_keys;

    #[test]
    fn keys_are_trimmed_lower_cased_sorted_and_without_blanks_or_repeats() {
        let keys = [
            "  Ada@Example.com ",
            "e7",
            "",
            "   ",
            "ada@example.com",
            "ID-1",
        ]
        .map(String::from);
        assert_eq!(
            normalise_keys(keys),
            ["ada@example.com", "e7", "id-1"].map(String::from)
        );
    }
}
