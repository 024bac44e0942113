//! Group membership rows. Changes never load a whole member list, except a `replace` (which
//! must diff) and a `remove` with a filter other than `value eq` (which must evaluate it).
//!
//! Delivery converges each *user* to its set of Confluence groups, so every membership change
//! marks the member users' keys in the sync queue (in the same transaction).
//!
//! Lists of ids are sent as `IN (…)` lists of at most [`CHUNK`] values, built at run time
//! and run through [`dynamic`] (lists of more than one are planned afresh on PostgreSQL).
//! Each query names the whole key of the index it should use, so the plan is an index
//! lookup per id at any size of the connector (`store/tests/plans.rs` checks it on a
//! large connector).

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};
use sqlx::AnyConnection;

use super::rows::{decode, from_row};
use super::{bind_args, dynamic, queue, Arg, Store, StoreResult};
use crate::scim::filter;
use crate::scim::members::{MemberOp, MemberRef};
use crate::scim::schema::Attribute;
use crate::scim::schema::ResourceKind;

/// Largest `IN (…)` list sent in one statement.
const CHUNK: usize = 500;

/// A member as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    /// The member's SCIM id.
    pub id: String,
    /// `User` or `Group` (what the member really is, not what the client claimed).
    pub kind: String,
    /// The `display` the client sent.
    pub display: Option<String>,
}

from_row!(MemberRow {
    id = "member_id",
    kind = "member_kind",
    display
});

/// A resource's id and kind, as the member lookup reads them.
struct IdKind {
    id: String,
    kind: String,
}

from_row!(IdKind { id, kind });

/// A member removed or marked: the users among them are marked for delivery.
struct MemberKind {
    member_id: String,
    member_kind: String,
}

from_row!(MemberKind {
    member_id,
    member_kind
});

/// A member with its group, for [`Store::members_of`].
struct GroupMember {
    group_id: String,
    member_id: String,
    member_kind: String,
    display: Option<String>,
}

from_row!(GroupMember {
    group_id,
    member_id,
    member_kind,
    display
});

/// A membership seen from the member, for [`Store::groups_of`].
struct Membership {
    member_id: String,
    group_id: String,
}

from_row!(Membership {
    member_id,
    group_id
});

/// A group's id, name and list position, for [`Store::groups_of`].
struct GroupName {
    id: String,
    name: String,
    seq: i64,
}

from_row!(GroupName { id, name, seq });

fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The id and kind of `n` resources (`$2`…) of a connector (`$1`). Naming both kinds lets the
/// whole `(connector, kind, id)` key be used: with `id` alone, the index narrows to the
/// connector only, and a lookup of two ids read every resource of a 200,000-user connector.
pub(crate) fn lookup_sql(n: usize) -> String {
    format!(
        "SELECT id, kind FROM resources WHERE connector = $1 AND kind IN ('User', 'Group') \
         AND id IN ({})",
        placeholders(2, n)
    )
}

/// Deletes `n` members (`$3`…) of a group (`$2`) of a connector (`$1`).
pub(crate) fn remove_sql(n: usize) -> String {
    format!(
        "DELETE FROM group_members WHERE connector = $1 AND group_id = $2 \
         AND member_id IN ({}) RETURNING member_id, member_kind",
        placeholders(3, n)
    )
}

/// The members of `n` groups (`$2`…) of a connector (`$1`).
pub(crate) fn members_of_sql(n: usize) -> String {
    format!(
        "SELECT group_id, member_id, member_kind, display FROM group_members \
         WHERE connector = $1 AND group_id IN ({}) ORDER BY group_id, member_id",
        placeholders(2, n)
    )
}

/// The memberships of `n` members (`$2`…) of a connector (`$1`).
pub(crate) fn memberships_sql(n: usize) -> String {
    format!(
        "SELECT member_id, group_id FROM group_members WHERE connector = $1 AND member_id IN ({})",
        placeholders(2, n)
    )
}

/// The names of `n` groups (`$2`…) of a connector (`$1`).
pub(crate) fn group_names_sql(n: usize) -> String {
    format!(
        "SELECT id, name, seq FROM resources WHERE connector = $1 AND kind = 'Group' AND id IN ({})",
        placeholders(2, n)
    )
}

/// The groups a member (`$2`) of a connector (`$1`) is in.
pub(crate) const GROUPS_OF_MEMBER: &str =
    "SELECT group_id FROM group_members WHERE connector = $1 AND member_id = $2";

/// Adds members that exist in the connector; returns whether any row was added and the ids
/// that named nothing (skipped: the documented policy for unknown member ids).
pub(crate) async fn add(
    conn: &mut AnyConnection,
    connector: &str,
    group_id: &str,
    refs: &[MemberRef],
    now_ms: i64,
) -> StoreResult<(bool, Vec<String>)> {
    let mut kinds: HashMap<String, String> = HashMap::new();
    for chunk in refs.chunks(CHUNK) {
        let sql = lookup_sql(chunk.len());
        let mut args = vec![Arg::Text(connector.to_owned())];
        args.extend(chunk.iter().map(|m| Arg::Text(m.value.clone())));
        let rows = bind_args(dynamic(&sql, chunk.len()), &args)
            .fetch_all(&mut *conn)
            .await?;
        kinds.extend(decode::<IdKind>(&rows)?.into_iter().map(|r| (r.id, r.kind)));
    }
    let mut changed = false;
    let mut skipped = Vec::new();
    for m in refs {
        let Some(kind) = kinds.get(&m.value) else {
            skipped.push(m.value.clone());
            continue;
        };
        if m.value == group_id {
            skipped.push(m.value.clone()); // A group cannot contain itself.
            continue;
        }
        let done = sqlx::query(
            "INSERT INTO group_members (connector, group_id, member_id, member_kind, display) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (connector, group_id, member_id) DO NOTHING",
        )
        .bind(connector.to_owned())
        .bind(group_id.to_owned())
        .bind(m.value.clone())
        .bind(kind.clone())
        .bind(m.display.clone())
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() > 0 {
            changed = true;
            if kind == "User" {
                queue::mark(conn, connector, ResourceKind::User, &m.value, now_ms).await?;
            }
        }
    }
    Ok((changed, skipped))
}

async fn remove_ids(
    conn: &mut AnyConnection,
    connector: &str,
    group_id: &str,
    ids: &[String],
    now_ms: i64,
) -> StoreResult<bool> {
    let mut changed = false;
    for chunk in ids.chunks(CHUNK) {
        let mut args = vec![
            Arg::Text(connector.to_owned()),
            Arg::Text(group_id.to_owned()),
        ];
        args.extend(chunk.iter().map(|id| Arg::Text(id.clone())));
        let sql = remove_sql(chunk.len());
        let rows = bind_args(dynamic(&sql, chunk.len()), &args)
            .fetch_all(&mut *conn)
            .await?;
        changed |= !rows.is_empty();
        mark_users(conn, connector, &decode(&rows)?, now_ms).await?;
    }
    Ok(changed)
}

/// Marks the users among `members` dirty.
async fn mark_users(
    conn: &mut AnyConnection,
    connector: &str,
    members: &[MemberKind],
    now_ms: i64,
) -> StoreResult<()> {
    for m in members.iter().filter(|m| m.member_kind == "User") {
        queue::mark(conn, connector, ResourceKind::User, &m.member_id, now_ms).await?;
    }
    Ok(())
}

async fn load(
    conn: &mut AnyConnection,
    connector: &str,
    group_id: &str,
) -> StoreResult<Vec<MemberRow>> {
    let sql = format!(
        "SELECT {} FROM group_members WHERE connector = $1 AND group_id = $2 ORDER BY member_id",
        MemberRow::COLUMNS
    );
    let rows = sqlx::query(&sql)
        .bind(connector.to_owned())
        .bind(group_id.to_owned())
        .fetch_all(&mut *conn)
        .await?;
    decode(&rows)
}

/// Applies one membership change; returns whether membership changed and skipped ids.
pub(crate) async fn apply(
    conn: &mut AnyConnection,
    connector: &str,
    group_id: &str,
    op: &MemberOp,
    members_attr: Option<&Attribute>,
    now_ms: i64,
) -> StoreResult<(bool, Vec<String>)> {
    match op {
        MemberOp::Add(refs) => add(conn, connector, group_id, refs, now_ms).await,
        MemberOp::Remove(ids) => Ok((
            remove_ids(conn, connector, group_id, ids, now_ms).await?,
            Vec::new(),
        )),
        MemberOp::RemoveAll => {
            let rows = sqlx::query(
                "DELETE FROM group_members WHERE connector = $1 AND group_id = $2 \
                 RETURNING member_id, member_kind",
            )
            .bind(connector.to_owned())
            .bind(group_id.to_owned())
            .fetch_all(&mut *conn)
            .await?;
            mark_users(conn, connector, &decode(&rows)?, now_ms).await?;
            Ok((!rows.is_empty(), Vec::new()))
        }
        MemberOp::Replace(refs) => {
            let wanted: HashSet<&str> = refs.iter().map(|m| m.value.as_str()).collect();
            let current = load(conn, connector, group_id).await?;
            let have: HashSet<&str> = current.iter().map(|m| m.id.as_str()).collect();
            let gone: Vec<String> = current
                .iter()
                .filter(|m| !wanted.contains(m.id.as_str()))
                .map(|m| m.id.clone())
                .collect();
            let new: Vec<MemberRef> = refs
                .iter()
                .filter(|m| !have.contains(m.value.as_str()))
                .cloned()
                .collect();
            let removed = remove_ids(conn, connector, group_id, &gone, now_ms).await?;
            let (added, skipped) = add(conn, connector, group_id, &new, now_ms).await?;
            Ok((removed || added, skipped))
        }
        MemberOp::RemoveWhere(f) => {
            let Some(attr) = members_attr else {
                return Ok((false, Vec::new()));
            };
            let current = load(conn, connector, group_id).await?;
            let gone: Vec<String> = current
                .into_iter()
                .filter(|m| filter::matches_element(f, attr, &member_json(m)))
                .map(|m| m.id)
                .collect();
            Ok((
                remove_ids(conn, connector, group_id, &gone, now_ms).await?,
                Vec::new(),
            ))
        }
    }
}

/// Removes `member_id` from every group; returns the ids of the groups it was in.
pub(crate) async fn remove_everywhere(
    conn: &mut AnyConnection,
    connector: &str,
    member_id: &str,
) -> StoreResult<Vec<String>> {
    let groups: Vec<String> = sqlx::query_scalar(GROUPS_OF_MEMBER)
        .bind(connector.to_owned())
        .bind(member_id.to_owned())
        .fetch_all(&mut *conn)
        .await?;
    if !groups.is_empty() {
        sqlx::query("DELETE FROM group_members WHERE connector = $1 AND member_id = $2")
            .bind(connector.to_owned())
            .bind(member_id.to_owned())
            .execute(&mut *conn)
            .await?;
    }
    Ok(groups)
}

/// A member as the JSON element filters see: `{value, type, display}`.
pub(crate) fn member_json(m: &MemberRow) -> Value {
    let mut o = Map::new();
    o.insert("value".into(), m.id.clone().into());
    o.insert("type".into(), m.kind.clone().into());
    if let Some(d) = &m.display {
        o.insert("display".into(), d.clone().into());
    }
    Value::Object(o)
}

impl Store {
    /// Marks every user member of a group dirty (a group rename moves them to the new
    /// Confluence group).
    pub async fn mark_group_members(
        &self,
        connector: &str,
        group_id: &str,
        now: time::OffsetDateTime,
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let rows = sqlx::query(
            "SELECT member_id, member_kind FROM group_members WHERE connector = $1 AND group_id = $2",
        )
        .bind(connector.to_owned())
        .bind(group_id.to_owned())
        .fetch_all(&mut *tx)
        .await?;
        mark_users(&mut tx, connector, &decode(&rows)?, super::to_ms(now)).await?;
        tx.commit().await?;
        self.queue_marked();
        Ok(())
    }

    /// Members of several groups, keyed by group id.
    pub async fn members_of(
        &self,
        connector: &str,
        group_ids: &[String],
    ) -> StoreResult<HashMap<String, Vec<MemberRow>>> {
        let mut conn = self.reader().acquire().await?;
        members_of(&mut conn, connector, group_ids).await
    }

    /// The groups each of several members belongs to, as `(group id, displayName)`, keyed by
    /// member id: the read-only `groups` attribute of Users (RFC 7643 §4.1.2).
    pub async fn groups_of(
        &self,
        connector: &str,
        member_ids: &[String],
    ) -> StoreResult<HashMap<String, Vec<(String, String)>>> {
        let mut conn = self.reader().acquire().await?;
        groups_of(&mut conn, connector, member_ids).await
    }
}

/// [`Store::members_of`] on a connection.
pub(crate) async fn members_of(
    conn: &mut AnyConnection,
    connector: &str,
    group_ids: &[String],
) -> StoreResult<HashMap<String, Vec<MemberRow>>> {
    let mut out: HashMap<String, Vec<MemberRow>> = HashMap::new();
    for chunk in group_ids.chunks(CHUNK) {
        let sql = members_of_sql(chunk.len());
        let mut args = vec![Arg::Text(connector.to_owned())];
        args.extend(chunk.iter().map(|id| Arg::Text(id.clone())));
        let rows = bind_args(dynamic(&sql, chunk.len()), &args)
            .fetch_all(&mut *conn)
            .await?;
        for r in decode::<GroupMember>(&rows)? {
            out.entry(r.group_id).or_default().push(MemberRow {
                id: r.member_id,
                kind: r.member_kind,
                display: r.display,
            });
        }
    }
    Ok(out)
}

/// [`Store::groups_of`] on a connection, in two lookups: the memberships by member, then the
/// groups' names by id. As one join, PostgreSQL and SQLite may both start from the
/// connector's groups and probe each for the members, which reads every group of a large
/// directory for one user; apart, each lookup has a single index to use. Groups are listed
/// in their creation order, as everywhere else.
pub(crate) async fn groups_of(
    conn: &mut AnyConnection,
    connector: &str,
    member_ids: &[String],
) -> StoreResult<HashMap<String, Vec<(String, String)>>> {
    let mut memberships = Vec::new();
    for chunk in member_ids.chunks(CHUNK) {
        let sql = memberships_sql(chunk.len());
        let mut args = vec![Arg::Text(connector.to_owned())];
        args.extend(chunk.iter().map(|id| Arg::Text(id.clone())));
        let rows = bind_args(dynamic(&sql, chunk.len()), &args)
            .fetch_all(&mut *conn)
            .await?;
        memberships.extend(decode::<Membership>(&rows)?);
    }
    let mut group_ids: Vec<String> = memberships.iter().map(|m| m.group_id.clone()).collect();
    group_ids.sort();
    group_ids.dedup();
    let mut groups: HashMap<String, GroupName> = HashMap::new();
    for chunk in group_ids.chunks(CHUNK) {
        let sql = group_names_sql(chunk.len());
        let mut args = vec![Arg::Text(connector.to_owned())];
        args.extend(chunk.iter().map(|id| Arg::Text(id.clone())));
        let rows = bind_args(dynamic(&sql, chunk.len()), &args)
            .fetch_all(&mut *conn)
            .await?;
        groups.extend(
            decode::<GroupName>(&rows)?
                .into_iter()
                .map(|g| (g.id.clone(), g)),
        );
    }
    let mut out: HashMap<String, Vec<(i64, String, String)>> = HashMap::new();
    for m in memberships {
        // A membership row always names an existing group (deletes remove them together).
        if let Some(g) = groups.get(&m.group_id) {
            out.entry(m.member_id)
                .or_default()
                .push((g.seq, g.id.clone(), g.name.clone()));
        }
    }
    Ok(out
        .into_iter()
        .map(|(member, mut gs)| {
            gs.sort();
            (
                member,
                gs.into_iter().map(|(_, id, name)| (id, name)).collect(),
            )
        })
        .collect())
}
