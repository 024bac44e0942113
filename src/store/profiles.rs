//! Reads for mapped profiles: users in pages with their identity-link username (the Linchpin
//! feed), users by a manager key, e-mail addresses included (manager resolution), and the
//! feed's change stamp.

use std::collections::HashMap;

use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{FromRow, Row};
use time::OffsetDateTime;

use super::rows::{decode, from_row};
use super::{bind_args, from_ms, Arg, Backend, Store, StoreError, StoreResult};
use crate::mapping::ManagerKey;
use crate::scim::resource::Document;

/// A user with what profile mapping needs besides the document.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileRow {
    /// Insertion sequence (the feed's cursor).
    pub seq: i64,
    /// SCIM id.
    pub id: String,
    /// The document.
    pub doc: Document,
    /// The Confluence username on the user's identity link, if delivery made one (and it is
    /// not a refused conflict): the username is derived once and then kept
    /// (docs/reference/design.md "Identity links are explicit").
    pub linked_username: Option<String>,
    /// externalId as sent (with `employee_number` and `user_name`: the keys another user's
    /// `manager.value` may use, to tell which row a reference matched).
    pub external_id: Option<String>,
    /// Enterprise employeeNumber, trimmed.
    pub employee_number: Option<String>,
    /// userName as sent.
    pub user_name: String,
}

/// A user found by one manager key.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyMatch {
    /// The value that matched, normalised by the key ([`ManagerKey::normalise`]).
    pub value: String,
    /// The user.
    pub row: ProfileRow,
}

/// What the feed's `ETag` and `Last-Modified` are computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedStamp {
    /// Users of the connector.
    pub users: i64,
    /// Identity links of the connector.
    pub links: i64,
    /// Latest change of a user or creation of an identity link, Unix milliseconds.
    pub changed_ms: i64,
}

impl FeedStamp {
    /// The latest change as a time.
    pub fn changed(&self) -> OffsetDateTime {
        from_ms(self.changed_ms)
    }
}

/// The columns of a [`ProfileRow`], named as [`UserRow`] reads them.
const PROFILE_COLUMNS: &str = "r.seq AS seq, r.id AS id, r.doc AS doc, \
     l.target_name AS linked_username, r.external_id AS external_id, \
     r.employee_number AS employee_number, r.name AS user_name";

/// Joins each user with its usable identity link.
const LINK_JOIN: &str = "LEFT JOIN identity_links l ON l.connector = r.connector \
     AND l.kind = r.kind AND l.scim_id = r.id AND l.status <> 'conflict'";

/// A user as [`PROFILE_COLUMNS`] selects it, the document still JSON text.
struct UserRow {
    seq: i64,
    id: String,
    doc: String,
    linked_username: Option<String>,
    external_id: Option<String>,
    employee_number: Option<String>,
    user_name: String,
}

from_row!(UserRow {
    seq,
    id,
    doc,
    linked_username,
    external_id,
    employee_number,
    user_name
});

impl TryFrom<UserRow> for ProfileRow {
    type Error = StoreError;

    fn try_from(r: UserRow) -> StoreResult<ProfileRow> {
        let doc = match serde_json::from_str::<Value>(&r.doc) {
            Ok(Value::Object(m)) => m,
            Ok(_) => Document::new(),
            Err(e) => return Err(StoreError::Corrupt(r.id, e)),
        };
        Ok(ProfileRow {
            seq: r.seq,
            id: r.id,
            doc,
            linked_username: r.linked_username,
            external_id: r.external_id,
            employee_number: r.employee_number,
            user_name: r.user_name,
        })
    }
}

/// A user found by a key: the user's columns and, as `matched`, the key value that matched.
struct MatchRow {
    user: UserRow,
    matched: String,
}

impl<'r> FromRow<'r, AnyRow> for MatchRow {
    fn from_row(row: &'r AnyRow) -> Result<Self, sqlx::Error> {
        Ok(MatchRow {
            user: UserRow::from_row(row)?,
            matched: row.try_get("matched")?,
        })
    }
}

/// A SCIM id and a name that goes with it.
struct IdName {
    id: String,
    name: String,
}

from_row!(IdName { id, name });

/// A count and the latest of some timestamp (0 when there is none).
struct CountLatest {
    n: i64,
    latest: i64,
}

from_row!(CountLatest { n, latest });

/// Largest `IN (…)` list per query: far below SQLite's 32766 bound variables and
/// PostgreSQL's 65535, and small enough for the planner to use the index. These queries are
/// not cached as prepared statements (`persistent(false)`): their text varies with the list
/// length, and a plan cached while the table was small would outlive its growth.
const IN_CHUNK: usize = 500;

impl Store {
    /// Users of a connector with `seq` after `after`, in order, at most `limit`, each with
    /// its linked username.
    pub async fn profile_page(
        &self,
        connector: &str,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<ProfileRow>> {
        let sql = format!(
            "SELECT {PROFILE_COLUMNS} FROM resources r {LINK_JOIN} WHERE r.connector = $1 \
             AND r.kind = 'User' AND r.seq > $2 ORDER BY r.seq LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(connector.to_owned())
            .bind(after)
            .bind(limit)
            .fetch_all(self.reader())
            .await?;
        decode::<UserRow>(&rows)?
            .into_iter()
            .map(ProfileRow::try_from)
            .collect()
    }

    /// One user by SCIM id, with its linked username.
    pub async fn profile_row(&self, connector: &str, id: &str) -> StoreResult<Option<ProfileRow>> {
        Ok(self
            .users_by_key(connector, ManagerKey::Id, &[id.to_owned()])
            .await?
            .into_iter()
            .next())
    }

    /// One user by userName (case-insensitive), with its linked username.
    pub async fn profile_row_by_user_name(
        &self,
        connector: &str,
        user_name: &str,
    ) -> StoreResult<Option<ProfileRow>> {
        Ok(self
            .users_by_key(connector, ManagerKey::UserName, &[user_name.to_owned()])
            .await?
            .into_iter()
            .next())
    }

    /// The users of a connector whose `key` equals one of `values` (trimmed; userName
    /// compared case-insensitively, the others exactly), with their linked usernames.
    pub async fn users_by_key(
        &self,
        connector: &str,
        key: ManagerKey,
        values: &[String],
    ) -> StoreResult<Vec<ProfileRow>> {
        Ok(self
            .users_matching(connector, key, values)
            .await?
            .into_iter()
            .map(|m| m.row)
            .collect())
    }

    /// The users of a connector whose `key` equals one of `values`, each with the value it
    /// matched as [`ManagerKey::normalise`] writes it (so the caller can tell which of its
    /// values a row answers): ids, externalIds and employee numbers exactly, userNames and
    /// e-mail addresses case-insensitively. A user with two matching e-mail addresses comes
    /// once per address. Every lookup runs on an index: `resources_id`, `resources_external_id`,
    /// `resources_employee_number`, `resources_name`, `resource_emails_value`.
    pub async fn users_matching(
        &self,
        connector: &str,
        key: ManagerKey,
        values: &[String],
    ) -> StoreResult<Vec<KeyMatch>> {
        // The e-mail lookup starts from resource_emails' (connector, value_lower) index.
        // SQLite, without statistics, prefers the covering primary key (connector,
        // resource_id, value_lower) and so reads every address of the connector for each
        // page of the feed (10 ms per page at 100,000 users, against 0.3 ms): on SQLite the
        // index is named (`INDEXED BY`); PostgreSQL plans it from its statistics.
        let emails = match self.backend() {
            Backend::Sqlite => "resource_emails e INDEXED BY resource_emails_value",
            Backend::Postgres => "resource_emails e",
        };
        let email_from = format!(
            "{emails} JOIN resources r ON r.connector = e.connector AND r.kind = 'User' \
             AND r.id = e.resource_id AND e.connector = $1"
        );
        let (from, column) = match key {
            ManagerKey::Id => ("resources r", "r.id"),
            ManagerKey::ExternalId => ("resources r", "r.external_id"),
            ManagerKey::EmployeeNumber => ("resources r", "r.employee_number"),
            ManagerKey::UserName => ("resources r", "r.name_lower"),
            ManagerKey::Email => (email_from.as_str(), "e.value_lower"),
        };
        let mut wanted: Vec<String> = values
            .iter()
            .map(|v| key.normalise(v))
            .filter(|v| !v.is_empty())
            .collect();
        wanted.sort();
        wanted.dedup();
        let mut out = Vec::new();
        for chunk in wanted.chunks(IN_CHUNK) {
            let mut args = vec![Arg::Text(connector.to_owned())];
            let mut marks = Vec::with_capacity(chunk.len());
            for v in chunk {
                args.push(Arg::Text(v.clone()));
                marks.push(format!("${}", args.len()));
            }
            // No ORDER BY: with one, SQLite prefers the (connector, kind, seq) index, which
            // returns rows in order but scans every user of the connector. Sorted below.
            let sql = format!(
                "SELECT {PROFILE_COLUMNS}, {column} AS matched FROM {from} {LINK_JOIN} \
                 WHERE r.connector = $1 AND r.kind = 'User' AND {column} IN ({})",
                marks.join(", ")
            );
            let rows = bind_args(sqlx::query(&sql).persistent(false), &args)
                .fetch_all(self.reader())
                .await?;
            for r in decode::<MatchRow>(&rows)? {
                out.push(KeyMatch {
                    value: r.matched,
                    row: r.user.try_into()?,
                });
            }
        }
        out.sort_by_key(|m| m.row.seq);
        Ok(out)
    }

    /// The display names of users and groups of a connector, by SCIM id: a User's `displayName`,
    /// else its `userName`; a Group's `displayName`. For the `display` of group members the client
    /// sent none for (docs/API.md "Deliberate deviations and choices"). Ids that name nothing are
    /// absent.
    pub async fn display_names(
        &self,
        connector: &str,
        ids: &[String],
    ) -> StoreResult<HashMap<String, String>> {
        // `name` is userName for Users and displayName for Groups; the User's displayName
        // is read from the document by the database, and only for the asked rows.
        let display = match self.backend() {
            Backend::Sqlite => "CAST(json_extract(doc, '$.displayName') AS TEXT)",
            Backend::Postgres => "(doc::jsonb ->> 'displayName')",
        };
        let mut out = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(IN_CHUNK) {
            let mut args = vec![Arg::Text(connector.to_owned())];
            let mut marks = Vec::with_capacity(chunk.len());
            for id in chunk {
                args.push(Arg::Text(id.clone()));
                marks.push(format!("${}", args.len()));
            }
            // `kind IN (…)` lets both databases use the (connector, kind, id) index.
            let sql = format!(
                "SELECT id, COALESCE(NULLIF(TRIM({display}), ''), name) AS name FROM resources \
                 WHERE connector = $1 AND kind IN ('User', 'Group') AND id IN ({})",
                marks.join(", ")
            );
            let rows = bind_args(sqlx::query(&sql).persistent(false), &args)
                .fetch_all(self.reader())
                .await?;
            out.extend(decode::<IdName>(&rows)?.into_iter().map(|r| (r.id, r.name)));
        }
        Ok(out)
    }

    /// The usernames identity links still hold for SCIM ids whose users are gone (a deleted
    /// manager referenced by id): `(scim id, username)`.
    pub async fn linked_usernames(
        &self,
        connector: &str,
        ids: &[String],
    ) -> StoreResult<Vec<(String, String)>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(IN_CHUNK) {
            let mut args = vec![Arg::Text(connector.to_owned())];
            let mut marks = Vec::with_capacity(chunk.len());
            for id in chunk {
                args.push(Arg::Text(id.trim().to_owned()));
                marks.push(format!("${}", args.len()));
            }
            let sql = format!(
                "SELECT scim_id AS id, target_name AS name FROM identity_links WHERE connector = $1 \
                 AND kind = 'User' AND status <> 'conflict' AND scim_id IN ({})",
                marks.join(", ")
            );
            let rows = bind_args(sqlx::query(&sql).persistent(false), &args)
                .fetch_all(self.reader())
                .await?;
            out.extend(decode::<IdName>(&rows)?.into_iter().map(|r| (r.id, r.name)));
        }
        Ok(out)
    }

    /// The feed's change stamp: user count and latest user change, and count and latest
    /// creation of the connector's identity links (a new link can change the username the
    /// feed prints; delivery re-saving an existing link cannot, so its `updated_at` is not
    /// used). Deletions change the counts. Every part is read on an index.
    pub async fn feed_stamp(&self, connector: &str) -> StoreResult<FeedStamp> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, COALESCE(MAX(updated_at), 0) AS latest FROM resources \
             WHERE connector = $1 AND kind = 'User'",
        )
        .bind(connector.to_owned())
        .fetch_one(self.reader())
        .await?;
        let links = sqlx::query(
            "SELECT COUNT(*) AS n, COALESCE(MAX(created_at), 0) AS latest FROM identity_links \
             WHERE connector = $1",
        )
        .bind(connector.to_owned())
        .fetch_one(self.reader())
        .await?;
        let (users, links) = (CountLatest::from_row(&row)?, CountLatest::from_row(&links)?);
        Ok(FeedStamp {
            users: users.n,
            links: links.n,
            changed_ms: users.latest.max(links.latest),
        })
    }
}
