//! The audit trail: one row per acknowledged write, appended in the write's own transaction,
//! hash-chained so that an edited or deleted row is found (docs/audit.md).
//!
//! **Chains.** Rows are spread over [`AUDIT_CHAINS`] chains; a resource's rows always go to
//! the chain its key hashes to ([`chain_of`]). A row's hash covers its fields and the hash of
//! the row before it in its chain. Appending takes the chain's head row in `audit_chains`
//! (`UPDATE … RETURNING`, a row lock on PostgreSQL), as the last statement but two of the
//! write, so the lock is held only until the commit that follows. Instances writing
//! different resources at once mostly take different chains and do not wait for each other;
//! two writes of one resource already wait for each other on the resource's row, so one
//! chain per resource adds no wait there. Each transaction appends to one chain at most,
//! and takes its head last, so two transactions cannot wait for each other's chain in a
//! cycle. On SQLite (one writer) the chains change nothing but keep one format.
//!
//! **Verification** ([`Store::audit_verify`]) walks each chain from its anchor (the
//! all-zero hash, or the last row retention pruned) to its head: a changed field breaks that
//! row's hash, a deleted row leaves a gap in `chain_seq` (or a head past the last row).
//!
//! `scim/diff.rs` computes what changed; this module only stores it.

use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::AnyConnection;
use time::OffsetDateTime;

use super::heads;
use super::rows::{self, from_row};
use super::{from_ms, to_ms, Arg, Backend, ResourceKey, Store, StoreResult};
use crate::scim::diff::AttributeChange;

/// Number of hash chains (seeded by `migrations/*/0008_audit.sql`; changing it needs a
/// migration that adds the heads).
pub const AUDIT_CHAINS: i64 = 16;

/// The hash a chain starts from.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who made a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorKind {
    /// An IdP through SCIM; the actor is the credential that authenticated the request.
    Scim,
    /// An operator through the admin API; the actor is the admin token's name.
    Admin,
    /// usersync itself, or the command line on the host; the actor names which part.
    System,
}

impl ActorKind {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::Scim => "scim",
            ActorKind::Admin => "admin",
            ActorKind::System => "system",
        }
    }

    fn parse(s: &str) -> ActorKind {
        match s {
            "scim" => ActorKind::Scim,
            "admin" => ActorKind::Admin,
            _ => ActorKind::System,
        }
    }
}

/// Who made a resource write and through which operation: what its audit row says besides
/// the change itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteAudit {
    /// The kind of actor.
    pub actor_kind: ActorKind,
    /// The credential (SCIM: `token:<fingerprint>`, `basic:<user>`, `oauth:<client>`,
    /// `entra_jwt`), admin token name, or part of usersync.
    pub actor: String,
    /// The operation: `POST`, `PUT`, `PATCH`, `DELETE`; inside a Bulk request `Bulk POST`…
    pub operation: String,
}

impl WriteAudit {
    /// A write by usersync itself (tests, tools, store maintenance): `system`, `part`.
    pub fn system(part: &str, operation: &str) -> WriteAudit {
        WriteAudit {
            actor_kind: ActorKind::System,
            actor: part.to_owned(),
            operation: operation.to_owned(),
        }
    }
}

/// An admin action to record (`Store::audit_admin_action`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminAction {
    /// The connector acted on (empty when the action concerns none).
    pub connector: String,
    /// The admin token's name.
    pub token: String,
    /// What was done (`connector.pause`, `user.sync`, `token.rotate`, …).
    pub action: String,
    /// The kind of the target (`User`, `Group`, `connector`, `dead_key`…), if any.
    pub target_kind: Option<String>,
    /// The target's id or name, if any.
    pub target: Option<String>,
    /// How it ended (`ok`, `refused`, `failed`, …).
    pub outcome: String,
}

/// One row of the audit trail, as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    /// Global order (newest is largest); the paging cursor.
    pub seq: i64,
    /// When the write was made (the writer's clock, to the millisecond).
    pub at: OffsetDateTime,
    /// The connector (empty for admin actions on none).
    pub connector: String,
    /// Who: SCIM client, admin, or usersync.
    pub actor_kind: ActorKind,
    /// The credential, admin token name, or part of usersync.
    pub actor: String,
    /// The operation (see [`WriteAudit::operation`], [`AdminAction::action`]).
    pub operation: String,
    /// `User`, `Group`, or an admin action's target kind.
    pub resource_kind: Option<String>,
    /// The resource's SCIM id, or an admin action's target.
    pub resource_id: Option<String>,
    /// `created`, `updated`, `deleted` for SCIM writes; an admin action's outcome.
    pub outcome: String,
    /// The attributes changed, passwords redacted.
    pub changes: Vec<AttributeChange>,
    /// The chain the row is in.
    pub chain: i64,
    /// Its position in the chain.
    pub chain_seq: i64,
    /// The hash of the row before it in the chain.
    pub prev_hash: String,
    /// Its own hash.
    pub hash: String,
}

impl AuditRecord {
    /// The record as one JSON object (the export format, docs/audit.md).
    pub fn to_json(&self) -> Value {
        let at = self
            .at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        serde_json::json!({
            "seq": self.seq,
            "at": at,
            "connector": self.connector,
            "actor_kind": self.actor_kind.as_str(),
            "actor": self.actor,
            "operation": self.operation,
            "resource_kind": self.resource_kind,
            "resource_id": self.resource_id,
            "outcome": self.outcome,
            "changes": self.changes,
            "chain": self.chain,
            "chain_seq": self.chain_seq,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        })
    }
}

/// Which rows [`Store::audit_query`] returns: all conditions must hold. Newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only this connector's rows.
    pub connector: Option<String>,
    /// Only this actor's rows (exact credential or token name).
    pub actor: Option<String>,
    /// Only rows of this kind of actor.
    pub actor_kind: Option<ActorKind>,
    /// Only rows about resources (targets) of this kind.
    pub resource_kind: Option<String>,
    /// Only rows about this resource (target) id.
    pub resource_id: Option<String>,
    /// Only rows at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Only rows before this time.
    pub until: Option<OffsetDateTime>,
    /// Only rows with `seq` below this (the last `seq` of the previous page).
    pub before_seq: Option<i64>,
    /// At most this many rows (0: the default, 100; at most 1000).
    pub limit: usize,
}

/// The most rows one query returns.
pub const MAX_QUERY_LIMIT: usize = 1000;

/// A row of `audit_log` as stored.
struct LogRow {
    seq: i64,
    chain: i64,
    chain_seq: i64,
    at: i64,
    connector: String,
    actor_kind: String,
    actor: String,
    operation: String,
    resource_kind: Option<String>,
    resource_id: Option<String>,
    outcome: String,
    changes: String,
    prev_hash: String,
    hash: String,
}

from_row!(LogRow {
    seq,
    chain,
    chain_seq,
    at,
    connector,
    actor_kind,
    actor,
    operation,
    resource_kind,
    resource_id,
    outcome,
    changes,
    prev_hash,
    hash
});

impl LogRow {
    fn fields(&self) -> Fields<'_> {
        Fields {
            chain: self.chain,
            chain_seq: self.chain_seq,
            at: self.at,
            connector: &self.connector,
            actor_kind: &self.actor_kind,
            actor: &self.actor,
            operation: &self.operation,
            resource_kind: self.resource_kind.as_deref(),
            resource_id: self.resource_id.as_deref(),
            outcome: &self.outcome,
            changes: &self.changes,
        }
    }

    fn into_record(self) -> AuditRecord {
        AuditRecord {
            changes: serde_json::from_str(&self.changes).unwrap_or_default(),
            seq: self.seq,
            at: from_ms(self.at),
            actor_kind: ActorKind::parse(&self.actor_kind),
            connector: self.connector,
            actor: self.actor,
            operation: self.operation,
            resource_kind: self.resource_kind,
            resource_id: self.resource_id,
            outcome: self.outcome,
            chain: self.chain,
            chain_seq: self.chain_seq,
            prev_hash: self.prev_hash,
            hash: self.hash,
        }
    }
}

/// The hashed fields of a row.
struct Fields<'a> {
    chain: i64,
    chain_seq: i64,
    at: i64,
    connector: &'a str,
    actor_kind: &'a str,
    actor: &'a str,
    operation: &'a str,
    resource_kind: Option<&'a str>,
    resource_id: Option<&'a str>,
    outcome: &'a str,
    changes: &'a str,
}

/// The hash of a row: SHA-256 over a version tag, then each field length-prefixed (8 bytes,
/// big-endian; integers as 8 bytes big-endian; an absent text as a length of all ones, so
/// it differs from an empty one), then the previous row's hash as hex text. Lowercase hex.
fn row_hash(f: &Fields<'_>, prev_hash: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"usersync-audit-v1");
    let text = |h: &mut Sha256, s: Option<&str>| match s {
        Some(s) => {
            h.update((s.len() as u64).to_be_bytes());
            h.update(s.as_bytes());
        }
        None => h.update(u64::MAX.to_be_bytes()),
    };
    for n in [f.chain, f.chain_seq, f.at] {
        h.update(n.to_be_bytes());
    }
    for s in [
        Some(f.connector),
        Some(f.actor_kind),
        Some(f.actor),
        Some(f.operation),
        f.resource_kind,
        f.resource_id,
        Some(f.outcome),
        Some(f.changes),
        Some(prev_hash),
    ] {
        text(&mut h, s);
    }
    hex(&h.finalize())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The chain the rows about `target` go to: the first two bytes of SHA-256 over the
/// connector, kind and id, modulo [`AUDIT_CHAINS`]. Stable across versions and instances.
pub fn chain_of(connector: &str, kind: &str, id: &str) -> i64 {
    let mut h = Sha256::new();
    for part in [connector, kind, id] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    let d = h.finalize();
    i64::from(u16::from_be_bytes([d[0], d[1]])) % AUDIT_CHAINS
}

/// A row to append.
pub(crate) struct NewRow<'a> {
    pub(crate) at_ms: i64,
    pub(crate) connector: &'a str,
    pub(crate) actor_kind: ActorKind,
    pub(crate) actor: &'a str,
    pub(crate) operation: &'a str,
    pub(crate) resource_kind: Option<&'a str>,
    pub(crate) resource_id: Option<&'a str>,
    pub(crate) outcome: &'a str,
    pub(crate) changes: &'a [AttributeChange],
}

/// Appends a row to its chain on `conn`, inside the caller's transaction: the row commits
/// or rolls back with the write it records. Takes the chain's head (a row lock on
/// PostgreSQL until the commit), so call it last in the transaction.
pub(crate) async fn append(conn: &mut AnyConnection, row: &NewRow<'_>) -> StoreResult<()> {
    let chain = chain_of(
        row.connector,
        row.resource_kind.unwrap_or_default(),
        row.resource_id.unwrap_or(row.operation),
    );
    if let Some(head) = heads::get(conn, chain).await? {
        // In a SQLite batch that knows the head (`store/heads.rs`): one round trip.
        let known = KnownRow::new(row, chain, &head);
        bind_known(sqlx::query(&known_sql(1)), &known)
            .execute(&mut *conn)
            .await?;
        known.moved();
        return Ok(());
    }
    let head: HeadRow = sqlx::query_as(BUMP_HEAD)
        .bind(chain)
        .fetch_one(&mut *conn)
        .await?;
    append_after_bump(conn, row, chain, head.head_seq, head.head_hash).await
}

/// A row to append whose chain head is known (`store/heads.rs`): its number, hash and text,
/// ready to bind after [`known_sql`].
pub(crate) struct KnownRow {
    chain: i64,
    seq: i64,
    at: i64,
    connector: String,
    actor_kind: &'static str,
    actor: String,
    operation: String,
    resource_kind: Option<String>,
    resource_id: Option<String>,
    outcome: String,
    changes: String,
    prev_hash: String,
    hash: String,
}

impl KnownRow {
    /// `row` as the next row of `chain`, whose head is `head`.
    pub(crate) fn new(row: &NewRow<'_>, chain: i64, head: &heads::Head) -> KnownRow {
        KnownRow::at(row, chain, head.seq + 1, head.hash.clone())
    }

    /// `row` as row `seq` of `chain`, after the row whose hash is `prev_hash`.
    fn at(row: &NewRow<'_>, chain: i64, seq: i64, prev_hash: String) -> KnownRow {
        let changes = serde_json::to_string(row.changes).unwrap_or_else(|_| "[]".to_owned());
        let actor_kind = row.actor_kind.as_str();
        let hash = row_hash(
            &Fields {
                chain,
                chain_seq: seq,
                at: row.at_ms,
                connector: row.connector,
                actor_kind,
                actor: row.actor,
                operation: row.operation,
                resource_kind: row.resource_kind,
                resource_id: row.resource_id,
                outcome: row.outcome,
                changes: &changes,
            },
            &prev_hash,
        );
        KnownRow {
            chain,
            seq,
            at: row.at_ms,
            connector: row.connector.to_owned(),
            actor_kind,
            actor: row.actor.to_owned(),
            operation: row.operation.to_owned(),
            resource_kind: row.resource_kind.map(str::to_owned),
            resource_id: row.resource_id.map(str::to_owned),
            outcome: row.outcome.to_owned(),
            changes,
            prev_hash,
            hash,
        }
    }

    /// Tells the batch's heads that this row is now its chain's head; call once its
    /// statements succeeded.
    pub(crate) fn moved(&self) {
        heads::moved(self.chain, self.seq, &self.hash);
    }
}

/// The `INSERT` of a [`KnownRow`], with placeholders `$first` … `$first+12` in
/// [`bind_known`]'s order.
fn insert_sql(first: usize) -> String {
    let values: Vec<String> = (0..13).map(|i| format!("${}", first + i)).collect();
    format!(
        "INSERT INTO audit_log (chain, chain_seq, at, connector, actor_kind, actor, operation, \
         resource_kind, resource_id, outcome, changes, prev_hash, hash) VALUES ({})",
        values.join(", ")
    )
}

/// The statements that append a [`KnownRow`] and move its chain's head, with placeholders
/// `$first` … `$first+12` in [`bind_known`]'s order, so they can follow other statements in
/// one multi-statement query (SQLite only: sqlx-sqlite binds `$n` by number in each
/// statement).
pub(crate) fn known_sql(first: usize) -> String {
    format!(
        "{}; UPDATE audit_chains SET head_seq = ${}, head_hash = ${} WHERE chain = ${}",
        insert_sql(first),
        first + 1,
        first + 12,
        first,
    )
}

/// Binds a [`KnownRow`] to the placeholders of [`known_sql`], after those already bound.
pub(crate) fn bind_known<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    row: &KnownRow,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    q.bind(row.chain)
        .bind(row.seq)
        .bind(row.at)
        .bind(row.connector.clone())
        .bind(row.actor_kind)
        .bind(row.actor.clone())
        .bind(row.operation.clone())
        .bind(row.resource_kind.clone())
        .bind(row.resource_id.clone())
        .bind(row.outcome.clone())
        .bind(row.changes.clone())
        .bind(row.prev_hash.clone())
        .bind(row.hash.clone())
}

/// Takes the next number of a chain and returns `(head_seq, head_hash)`: the number of the
/// row to append and the hash of the row before it. `$1` is the chain.
pub(crate) const BUMP_HEAD: &str =
    "UPDATE audit_chains SET head_seq = head_seq + 1 WHERE chain = $1 RETURNING head_seq, head_hash";

/// The rest of [`append`] once the chain's head was bumped (by [`BUMP_HEAD`], possibly in
/// one round trip with the write's own statements: `store/resources.rs`): the row and the
/// chain's new head hash. On SQLite both statements go in one round trip to the
/// connection's worker thread (every round trip is a thread hand-over on the single writer,
/// README.md "Benchmark"); PostgreSQL prepares one statement at a time.
pub(crate) async fn append_after_bump(
    conn: &mut AnyConnection,
    row: &NewRow<'_>,
    chain: i64,
    head_seq: i64,
    head_hash: String,
) -> StoreResult<()> {
    let known = KnownRow::at(row, chain, head_seq, head_hash);
    let sqlite = Backend::of(conn) == Backend::Sqlite;
    let sql = if sqlite {
        format!(
            "{}; UPDATE audit_chains SET head_hash = $13 WHERE chain = $1",
            insert_sql(1)
        )
    } else {
        insert_sql(1)
    };
    bind_known(sqlx::query(&sql), &known)
        .execute(&mut *conn)
        .await?;
    if !sqlite {
        sqlx::query("UPDATE audit_chains SET head_hash = $1 WHERE chain = $2")
            .bind(known.hash.clone())
            .bind(chain)
            .execute(&mut *conn)
            .await?;
    }
    known.moved();
    Ok(())
}

/// Appends the row of a resource write (`outcome`: `created`, `updated`, `deleted`).
pub(crate) async fn append_write(
    conn: &mut AnyConnection,
    audit: &WriteAudit,
    key: &ResourceKey,
    outcome: &str,
    changes: &[AttributeChange],
    at_ms: i64,
) -> StoreResult<()> {
    append(
        conn,
        &NewRow {
            at_ms,
            connector: &key.connector,
            actor_kind: audit.actor_kind,
            actor: &audit.actor,
            operation: &audit.operation,
            resource_kind: Some(key.kind.as_str()),
            resource_id: Some(&key.id),
            outcome,
            changes,
        },
    )
    .await
}

/// Records an admin action on `conn`, inside a transaction the caller already has (the
/// action's own writes and its record commit together). Call it last in the transaction.
pub async fn audit_admin_action_in(
    conn: &mut AnyConnection,
    action: &AdminAction,
    at: OffsetDateTime,
) -> StoreResult<()> {
    append(
        conn,
        &NewRow {
            at_ms: to_ms(at),
            connector: &action.connector,
            actor_kind: ActorKind::Admin,
            actor: &action.token,
            operation: &action.action,
            resource_kind: action.target_kind.as_deref(),
            resource_id: action.target.as_deref(),
            outcome: &action.outcome,
            changes: &[],
        },
    )
    .await
}

struct HeadRow {
    head_seq: i64,
    head_hash: String,
}

from_row!(HeadRow {
    head_seq,
    head_hash
});

struct AnchorRow {
    chain: i64,
    anchor_seq: i64,
    anchor_hash: String,
}

from_row!(AnchorRow {
    chain,
    anchor_seq,
    anchor_hash
});

struct ChainHead {
    chain: i64,
    head_seq: i64,
    head_hash: String,
}

from_row!(ChainHead {
    chain,
    head_seq,
    head_hash
});

/// A row that does not verify: the first one found in its chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    /// The chain.
    pub chain: i64,
    /// The position in the chain where the chain breaks.
    pub chain_seq: i64,
    /// The row's `seq`, when the row is there (a deleted row has none).
    pub seq: Option<i64>,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for BadRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.seq {
            Some(seq) => write!(
                f,
                "row seq {seq} (chain {}, position {}): {}",
                self.chain, self.chain_seq, self.reason
            ),
            None => write!(
                f,
                "chain {}, position {}: {}",
                self.chain, self.chain_seq, self.reason
            ),
        }
    }
}

/// What [`Store::audit_verify`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verification {
    /// Rows checked.
    pub rows: u64,
    /// Chains checked.
    pub chains: u64,
    /// The first bad row of each broken chain, lowest `seq` first; empty when all is well.
    pub bad: Vec<BadRow>,
}

/// Rows read per query by verification and export.
const PAGE: i64 = 1000;
/// Rows deleted per transaction by retention (short transactions: on SQLite the writer is
/// shared with every connector's writes).
const PRUNE_BATCH: i64 = 1000;

impl Store {
    /// Records an admin action in a transaction of its own (see [`audit_admin_action_in`]
    /// to record it with the action's own writes).
    pub async fn audit_admin_action(
        &self,
        action: &AdminAction,
        at: OffsetDateTime,
    ) -> StoreResult<()> {
        let action = action.clone();
        self.write_in(
            super::batch::Lane {
                name: action.connector.clone(),
                weight: 1,
            },
            move |conn| {
                let action = action.clone();
                Box::pin(async move { audit_admin_action_in(conn, &action, at).await })
            },
        )
        .await
    }

    /// Audit rows matching `q`, newest first (by `seq`); page on with `before_seq` set to
    /// the last row's `seq`.
    pub async fn audit_query(&self, q: &AuditQuery) -> StoreResult<Vec<AuditRecord>> {
        let mut conditions = Vec::new();
        let mut args = Vec::new();
        let mut cond = |sql: &str, arg: Arg| {
            args.push(arg);
            conditions.push(sql.replace('?', &format!("${}", args.len())));
        };
        if let Some(c) = &q.connector {
            cond("connector = ?", Arg::Text(c.clone()));
        }
        if let Some(a) = &q.actor {
            cond("actor = ?", Arg::Text(a.clone()));
        }
        if let Some(k) = q.actor_kind {
            cond("actor_kind = ?", Arg::Text(k.as_str().to_owned()));
        }
        if let Some(k) = &q.resource_kind {
            cond("resource_kind = ?", Arg::Text(k.clone()));
        }
        if let Some(id) = &q.resource_id {
            cond("resource_id = ?", Arg::Text(id.clone()));
        }
        if let Some(t) = q.since {
            cond("at >= ?", Arg::Int(to_ms(t)));
        }
        if let Some(t) = q.until {
            cond("at < ?", Arg::Int(to_ms(t)));
        }
        if let Some(s) = q.before_seq {
            cond("seq < ?", Arg::Int(s));
        }
        let limit = match q.limit {
            0 => 100,
            n => n.min(MAX_QUERY_LIMIT),
        };
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let sql = format!(
            "SELECT {} FROM audit_log {filter} ORDER BY seq DESC LIMIT {limit}",
            LogRow::COLUMNS
        );
        let rows = super::bind_args(sqlx::query(&sql), &args)
            .fetch_all(self.reader())
            .await?;
        Ok(rows::decode::<LogRow>(&rows)?
            .into_iter()
            .map(LogRow::into_record)
            .collect())
    }

    /// Rows at or after `since` (of `connector`, when given), oldest first, `after_seq`
    /// exclusive: the export's pages.
    pub async fn audit_export_page(
        &self,
        since: OffsetDateTime,
        connector: Option<&str>,
        after_seq: i64,
    ) -> StoreResult<Vec<AuditRecord>> {
        let sql = format!(
            "SELECT {} FROM audit_log WHERE at >= $1 AND seq > $2 {} ORDER BY seq LIMIT {PAGE}",
            LogRow::COLUMNS,
            if connector.is_some() {
                "AND connector = $3"
            } else {
                ""
            }
        );
        let mut q = sqlx::query(&sql).bind(to_ms(since)).bind(after_seq);
        if let Some(c) = connector {
            q = q.bind(c.to_owned());
        }
        let rows = q.fetch_all(self.reader()).await?;
        Ok(rows::decode::<LogRow>(&rows)?
            .into_iter()
            .map(LogRow::into_record)
            .collect())
    }

    /// Checks every chain from its anchor to its head: each row's hash over its fields and
    /// the previous hash, positions without gaps, and the head at the last row.
    pub async fn audit_verify(&self) -> StoreResult<Verification> {
        let heads = rows::decode::<ChainHead>(
            &sqlx::query(&format!(
                "SELECT {} FROM audit_chains ORDER BY chain",
                ChainHead::COLUMNS
            ))
            .fetch_all(self.reader())
            .await?,
        )?;
        let anchors = rows::decode::<AnchorRow>(
            &sqlx::query(&format!("SELECT {} FROM audit_anchors", AnchorRow::COLUMNS))
                .fetch_all(self.reader())
                .await?,
        )?;
        let mut out = Verification::default();
        for head in heads {
            out.chains += 1;
            let (mut pos, mut prev) = anchors
                .iter()
                .find(|a| a.chain == head.chain)
                .map_or((0, GENESIS.to_owned()), |a| {
                    (a.anchor_seq, a.anchor_hash.clone())
                });
            let bad = |chain_seq: i64, seq: Option<i64>, reason: String| BadRow {
                chain: head.chain,
                chain_seq,
                seq,
                reason,
            };
            let mut found = None;
            'chain: loop {
                let rows = rows::decode::<LogRow>(
                    &sqlx::query(&format!(
                        "SELECT {} FROM audit_log WHERE chain = $1 AND chain_seq > $2 \
                         ORDER BY chain_seq LIMIT {PAGE}",
                        LogRow::COLUMNS
                    ))
                    .bind(head.chain)
                    .bind(pos)
                    .fetch_all(self.reader())
                    .await?,
                )?;
                let n = rows.len();
                for row in rows {
                    out.rows += 1;
                    if row.chain_seq != pos + 1 {
                        found = Some(bad(
                            pos + 1,
                            Some(row.seq),
                            format!(
                                "row missing: the chain goes from position {pos} to {} (deleted rows)",
                                row.chain_seq
                            ),
                        ));
                        break 'chain;
                    }
                    if row.prev_hash != prev {
                        found = Some(bad(
                            row.chain_seq,
                            Some(row.seq),
                            "its prev_hash is not the hash of the row before it".to_owned(),
                        ));
                        break 'chain;
                    }
                    if row_hash(&row.fields(), &row.prev_hash) != row.hash {
                        found = Some(bad(
                            row.chain_seq,
                            Some(row.seq),
                            "its contents do not match its hash (edited)".to_owned(),
                        ));
                        break 'chain;
                    }
                    pos = row.chain_seq;
                    prev = row.hash;
                }
                if n < PAGE as usize {
                    break;
                }
            }
            if found.is_none() && (pos != head.head_seq || prev != head.head_hash) {
                found = Some(bad(
                    pos + 1,
                    None,
                    format!(
                        "the chain's head is at position {} but its rows end at {pos} (rows deleted at the end, or the head edited)",
                        head.head_seq
                    ),
                ));
            }
            out.bad.extend(found);
        }
        out.bad
            .sort_by_key(|b| (b.seq.unwrap_or(i64::MAX), b.chain, b.chain_seq));
        Ok(out)
    }

    /// Deletes the rows older than `before`, each chain's oldest first, in short
    /// transactions, recording for each chain the position and hash of the last row deleted
    /// (its anchor), so verification still starts from a known hash. A chain keeps its rows
    /// from the first one at or after `before` on (rows written by instances whose clocks
    /// disagree may interleave; none newer than `before` is deleted). Returns the number of
    /// rows deleted.
    pub async fn audit_prune(&self, before: OffsetDateTime) -> StoreResult<u64> {
        let before_ms = to_ms(before);
        let mut deleted = 0u64;
        for chain in 0..AUDIT_CHAINS {
            loop {
                let n = self
                    .write_in(super::batch::Lane::default(), move |conn| {
                        Box::pin(async move { prune_batch(conn, chain, before_ms).await })
                    })
                    .await?;
                deleted += n;
                if n < PRUNE_BATCH as u64 {
                    break;
                }
            }
        }
        Ok(deleted)
    }
}

/// The named lease (`store/leases.rs`) one instance holds while it prunes.
const RETENTION_LEASE: &str = "audit-retention";

/// Prunes rows older than `keep` until `shutdown` completes: every quarter of `keep` (at
/// least a second, at most an hour), on one instance at a time ([`Store::run_alone`]). A
/// `keep` of zero keeps every row. The first pass runs a tick after the start (at most a
/// minute), not in the middle of it, so an instance that restarts often still prunes.
pub async fn run_retention(
    store: Store,
    keep: std::time::Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    if keep.is_zero() {
        return;
    }
    let tick = (keep / 4).clamp(
        std::time::Duration::from_secs(1),
        std::time::Duration::from_secs(3600),
    );
    let Ok(keep) = time::Duration::try_from(keep) else {
        return;
    };
    tokio::pin!(shutdown);
    let mut wait = tick.min(std::time::Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(wait) => {}
        }
        wait = tick;
        let before = OffsetDateTime::now_utc() - keep;
        let pass = store.run_alone(
            RETENTION_LEASE,
            std::time::Duration::from_secs(60),
            store.audit_prune(before),
        );
        tokio::select! {
            _ = &mut shutdown => return,
            done = pass => match done {
                Some(Ok(n)) if n > 0 => tracing::info!(audit.pruned = n, "audit rows past their retention were pruned"),
                Some(Err(e)) => {
                    let e = store.explain(e);
                    tracing::warn!(error.message = %e, "pruning the audit trail failed; tried again later");
                }
                _ => {}
            },
        }
    }
}

/// The row of a chain's prefix that retention looks at.
struct PruneRow {
    chain_seq: i64,
    at: i64,
    hash: String,
}

from_row!(PruneRow {
    chain_seq,
    at,
    hash
});

/// Deletes up to [`PRUNE_BATCH`] of the oldest rows of `chain` that are older than
/// `before_ms`, and moves the chain's anchor to the last of them.
async fn prune_batch(conn: &mut AnyConnection, chain: i64, before_ms: i64) -> StoreResult<u64> {
    let rows = rows::decode::<PruneRow>(
        &sqlx::query(&format!(
            "SELECT {} FROM audit_log WHERE chain = $1 ORDER BY chain_seq LIMIT {PRUNE_BATCH}",
            PruneRow::COLUMNS
        ))
        .bind(chain)
        .fetch_all(&mut *conn)
        .await?,
    )?;
    let Some(last) = rows.iter().take_while(|r| r.at < before_ms).last() else {
        return Ok(0);
    };
    let now = to_ms(OffsetDateTime::now_utc());
    sqlx::query(
        "INSERT INTO audit_anchors (chain, anchor_seq, anchor_hash, pruned_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (chain) DO UPDATE SET \
         anchor_seq = excluded.anchor_seq, anchor_hash = excluded.anchor_hash, \
         pruned_at = excluded.pruned_at",
    )
    .bind(chain)
    .bind(last.chain_seq)
    .bind(last.hash.clone())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    let done = sqlx::query("DELETE FROM audit_log WHERE chain = $1 AND chain_seq <= $2")
        .bind(chain)
        .bind(last.chain_seq)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_are_spread_and_stable() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..200 {
            let c = chain_of("okta", "User", &format!("id-{i}"));
            assert!((0..AUDIT_CHAINS).contains(&c));
            seen.insert(c);
        }
        assert_eq!(seen.len() as i64, AUDIT_CHAINS);
        assert_eq!(chain_of("okta", "User", "x"), chain_of("okta", "User", "x"));
    }

    #[test]
    fn every_field_is_in_the_hash_and_absent_differs_from_empty() {
        let base = Fields {
            chain: 1,
            chain_seq: 2,
            at: 3,
            connector: "c",
            actor_kind: "scim",
            actor: "token:ab",
            operation: "POST",
            resource_kind: Some("User"),
            resource_id: Some("u"),
            outcome: "created",
            changes: "[]",
        };
        let h = row_hash(&base, GENESIS);
        assert_eq!(h.len(), 64);
        let variants = [
            Fields {
                chain_seq: 3,
                ..base
            },
            Fields { at: 4, ..base },
            Fields {
                actor: "token:ac",
                ..base
            },
            Fields {
                resource_id: Some(""),
                ..base
            },
            Fields {
                resource_id: None,
                ..base
            },
            Fields {
                changes: "[{}]",
                ..base
            },
        ];
        for v in &variants {
            assert_ne!(row_hash(v, GENESIS), h);
        }
        assert_ne!(row_hash(&base, &h), h);
    }
}
