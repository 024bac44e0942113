//! Users and Groups: insert, read, update, delete and list, each write in one transaction
//! with its sync-queue mark.

use std::sync::Arc;

use serde_json::Value;
use sqlx::{AnyConnection, FromRow};
use time::OffsetDateTime;

use super::audit::{self, WriteAudit};
use super::batch::Lane;
use super::heads;
use super::narrow::Narrowing;
use super::rows::{self, from_row, ResourceRow};
use super::{
    bind_args, from_ms, members, queue, to_ms, Arg, Backend, ResourceKey, Store, StoreError,
    StoreResult,
};
use crate::scim::diff;
use crate::scim::enterprise::manager_ref;
use crate::scim::identifier;
use crate::scim::members::{MemberOp, MemberRef};
use crate::scim::resource::{Document, IfMatch};
use crate::scim::schema::{Attribute, ResourceKind, ENTERPRISE_URN};
use crate::scim::ScimError;

/// A resource as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResource {
    /// Insertion sequence: the stable list order.
    pub seq: i64,
    /// User or Group.
    pub kind: ResourceKind,
    /// SCIM id.
    pub id: String,
    /// userName or displayName as sent.
    pub name: String,
    /// The canonical document (attributes only; group members are in their own table).
    pub doc: Document,
    /// Bytes of the document as stored (JSON text): what reading it costs, so list queries
    /// can size their chunks to a memory budget.
    pub doc_bytes: usize,
    /// Version, bumped by every change.
    pub version: i64,
    /// Creation time.
    pub created: OffsetDateTime,
    /// Last change.
    pub updated: OffsetDateTime,
}

impl TryFrom<ResourceRow> for StoredResource {
    type Error = StoreError;

    /// A document that is JSON but not an object reads as empty; one that is not JSON is
    /// [`StoreError::Corrupt`]. An unknown `kind` cannot be stored (a CHECK constraint).
    fn try_from(row: ResourceRow) -> StoreResult<Self> {
        let doc_bytes = row.doc.len();
        let doc = match serde_json::from_str::<Value>(&row.doc) {
            Ok(Value::Object(m)) => m,
            Ok(_) => Document::new(),
            Err(e) => return Err(StoreError::Corrupt(row.id, e)),
        };
        Ok(StoredResource {
            seq: row.seq,
            kind: ResourceKind::parse(&row.kind).unwrap_or(ResourceKind::User),
            id: row.id,
            name: row.name,
            doc,
            doc_bytes,
            version: row.version,
            created: from_ms(row.created_at),
            updated: from_ms(row.updated_at),
        })
    }
}

/// The result of an insert.
#[derive(Debug)]
pub struct Inserted {
    /// The new resource.
    pub resource: StoredResource,
    /// Member ids that named no resource of the connector and were skipped.
    pub skipped_members: Vec<String>,
}

/// The result of an update.
#[derive(Debug)]
pub enum UpdateOutcome {
    /// Written; version bumped and key marked for delivery.
    Updated {
        /// The resource after the change.
        resource: StoredResource,
        /// Member ids that named no resource and were skipped.
        skipped_members: Vec<String>,
    },
    /// Nothing differed: no write, no version bump, nothing to deliver (an unchanged re-send
    /// from Okta must not cause a Confluence call, docs/reference/idp-behaviour.md c93).
    Unchanged(StoredResource),
    /// The change was refused (a protocol error such as a failed `If-Match`); nothing written.
    Rejected(ScimError),
    /// [`Store::modify_resource_if`] only: the resource is no longer at the version the
    /// change was computed from; nothing written.
    Moved,
    /// No such resource.
    NotFound,
}

/// The result of a delete.
#[derive(Debug, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// Deleted; its key is marked so delivery applies the deprovisioning policy.
    Deleted,
    /// `If-Match` did not match.
    Stale,
    /// No such resource.
    NotFound,
}

/// The values of a document that have their own columns.
struct IndexColumns {
    name: String,
    name_lower: String,
    external_id: Option<String>,
    active: Option<bool>,
    emails: Vec<String>,
    /// Enterprise `employeeNumber`, trimmed (Users).
    employee_number: Option<String>,
    /// The user's own `manager.value`, trimmed and lower-cased (Users).
    manager_ref: Option<String>,
}

impl IndexColumns {
    /// The keys another user's `manager.value` may name this user by (id, externalId,
    /// employeeNumber, userName, e-mail addresses), in the form of
    /// [`queue::normalise_keys`]. Which one a connector uses is configuration the store does
    /// not know (and without `refers_to` any of them may match), so all are matched: marking
    /// a user too many is harmless (state-based delivery converges with no call).
    fn manager_keys(&self, id: &str) -> Vec<String> {
        queue::normalise_keys(
            [
                Some(id.to_owned()),
                self.external_id.clone(),
                self.employee_number.clone(),
                Some(self.name.clone()),
            ]
            .into_iter()
            .flatten()
            .chain(self.emails.iter().cloned()),
        )
    }
}

fn index_columns(kind: ResourceKind, doc: &Document) -> IndexColumns {
    let name_attr = match kind {
        ResourceKind::User => "userName",
        ResourceKind::Group => "displayName",
    };
    let name = doc
        .get(name_attr)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let mut emails: Vec<String> = doc
        .get("emails")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|e| e.get("value").and_then(Value::as_str))
                .map(identifier::fold)
                .collect()
        })
        .unwrap_or_default();
    emails.sort();
    emails.dedup();
    let enterprise = match kind {
        ResourceKind::User => doc.get(ENTERPRISE_URN).and_then(Value::as_object),
        ResourceKind::Group => None,
    };
    let employee_number = enterprise
        .and_then(|e| e.get("employeeNumber"))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let manager_ref = match kind {
        ResourceKind::User => manager_ref(doc).map(|m| m.to_lowercase()),
        ResourceKind::Group => None,
    };
    IndexColumns {
        employee_number,
        manager_ref,
        name_lower: identifier::fold(&name),
        name,
        external_id: doc
            .get("externalId")
            .and_then(Value::as_str)
            .map(str::to_owned),
        active: match kind {
            ResourceKind::User => doc.get("active").and_then(Value::as_bool),
            ResourceKind::Group => None,
        },
        emails,
    }
}

/// The batcher lane of a write of `doc` (and `members` membership rows) for `connector`:
/// its weight is about a unit per KiB of document and per 16 index rows (`store/batch.rs`).
fn lane(connector: &str, doc: &Document, members: usize) -> Lane {
    fn size(v: &Value, rows: &mut usize) -> usize {
        match v {
            Value::String(s) => s.len() + 2,
            Value::Array(items) => {
                *rows += items.len();
                items.iter().map(|i| size(i, rows) + 1).sum()
            }
            Value::Object(m) => m.iter().map(|(k, v)| k.len() + 3 + size(v, rows)).sum(),
            _ => 8,
        }
    }
    let mut rows = members;
    let bytes: usize = doc
        .iter()
        .map(|(k, v)| k.len() + 3 + size(v, &mut rows))
        .sum();
    let weight = 1 + bytes / 1024 + rows / 16;
    Lane {
        name: connector.to_owned(),
        weight: u32::try_from(weight).unwrap_or(u32::MAX),
    }
}

/// E-mail index rows per `INSERT` (well under SQLite's and PostgreSQL's parameter limits).
const EMAIL_CHUNK: usize = 200;

async fn write_emails(
    conn: &mut AnyConnection,
    connector: &str,
    id: &str,
    emails: &[String],
    replace: bool,
) -> StoreResult<()> {
    if replace {
        sqlx::query("DELETE FROM resource_emails WHERE connector = $1 AND resource_id = $2")
            .bind(connector.to_owned())
            .bind(id.to_owned())
            .execute(&mut *conn)
            .await?;
    }
    // Many rows per statement: a user may hold up to `limits.max_values_per_attribute`
    // e-mails, and this runs on the single writer that every connector shares.
    for chunk in emails.chunks(EMAIL_CHUNK) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|i| format!("($1, $2, ${})", i + 3))
            .collect();
        let sql = format!(
            "INSERT INTO resource_emails (connector, resource_id, value_lower) VALUES {}",
            rows.join(", ")
        );
        let mut q = sqlx::query(&sql)
            .bind(connector.to_owned())
            .bind(id.to_owned());
        for e in chunk {
            q = q.bind(e.clone());
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

fn conflict(kind: ResourceKind, e: StoreError) -> StoreError {
    match e {
        StoreError::Conflict(_) => StoreError::Conflict(match kind {
            ResourceKind::User => "userName".to_owned(),
            ResourceKind::Group => "displayName".to_owned(),
        }),
        other => other,
    }
}

impl Store {
    /// Inserts a new resource with its members (Groups) and marks it for delivery.
    pub async fn insert_resource(
        &self,
        key: &ResourceKey,
        doc: &Document,
        new_members: &[MemberRef],
        now: OffsetDateTime,
    ) -> StoreResult<Inserted> {
        let audit = WriteAudit::system("store", "insert");
        self.insert_resource_audited(key, doc, new_members, now, &audit)
            .await
    }

    /// [`Store::insert_resource`] with the audit row saying who wrote and how (a SCIM
    /// request's credential and method); the row is written in the same transaction.
    #[tracing::instrument(level = "debug", skip_all, err, fields(connector = key.connector, scim.kind = key.kind.as_str()))]
    pub async fn insert_resource_audited(
        &self,
        key: &ResourceKey,
        doc: &Document,
        new_members: &[MemberRef],
        now: OffsetDateTime,
        audit: &WriteAudit,
    ) -> StoreResult<Inserted> {
        let lane = lane(&key.connector, doc, new_members.len());
        let now_ms = to_ms(now);
        let depth = self.report_depth(&key.connector);
        // Worked out here, in the request's task, so the single SQLite writer only runs the
        // statements; shared with each run of the write (a batch may run it twice:
        // `store/batch.rs`).
        let new = Arc::new(NewResource::new(
            key,
            doc,
            new_members,
            audit,
            now_ms,
            depth,
        )?);
        let for_writer = Arc::clone(&new);
        let (seq, skipped_members) = self
            .write_in(lane, move |conn| {
                let new = Arc::clone(&for_writer);
                Box::pin(async move { insert_in(conn, &new).await })
            })
            .await?;
        Ok(inserted(key, seq, &new, doc.clone(), skipped_members))
    }

    /// Finds a user by `userName` (case-insensitively) or a group by `displayName`.
    pub async fn find_by_name(
        &self,
        connector: &str,
        kind: ResourceKind,
        name: &str,
    ) -> StoreResult<Option<StoredResource>> {
        let args = [Arg::Text(identifier::fold(name))];
        Ok(self
            .select(connector, kind, "AND name_lower = $3", &args)
            .await?
            .pop())
    }

    /// Reads one resource.
    pub async fn get_resource(&self, key: &ResourceKey) -> StoreResult<Option<StoredResource>> {
        let args = [Arg::Text(key.id.clone())];
        Ok(self
            .select(&key.connector, key.kind, "AND id = $3", &args)
            .await?
            .pop())
    }

    /// Reads a resource, lets `change` compute its new document and membership changes from
    /// the current state, and writes the result, all in one transaction. The row is locked
    /// meanwhile (the single SQLite writer; `FOR UPDATE` on PostgreSQL), so concurrent changes
    /// to one resource apply one after the other and none is lost. Nothing is written when
    /// neither the document nor the membership changes.
    #[tracing::instrument(level = "debug", skip_all, err, fields(connector = key.connector, scim.kind = key.kind.as_str()))]
    pub async fn modify_resource(
        &self,
        key: &ResourceKey,
        members_attr: Option<&Attribute>,
        now: OffsetDateTime,
        change: impl Fn(&StoredResource) -> Result<(Document, Vec<MemberOp>), ScimError>
            + Send
            + Sync
            + 'static,
    ) -> StoreResult<UpdateOutcome> {
        let lane = Lane {
            name: key.connector.clone(),
            weight: 1,
        };
        let now_ms = to_ms(now);
        let depth = self.report_depth(&key.connector);
        let input = Arc::new((key.clone(), members_attr.cloned(), change));
        self.write_in(lane, move |conn| {
            let input = Arc::clone(&input);
            Box::pin(async move {
                let (key, members_attr, change) = &*input;
                let audit = WriteAudit::system("store", "modify");
                modify_in(
                    conn,
                    key,
                    members_attr.as_ref(),
                    now_ms,
                    &audit,
                    depth,
                    move |current| change(current).map(Some),
                )
                .await
            })
        })
        .await
    }

    /// Writes a new state computed outside the write transaction from version
    /// `computed_from` of the resource, if the resource is still at that version
    /// ([`UpdateOutcome::Moved`] otherwise, with nothing written). The single SQLite writer
    /// then only compares and writes: the work of computing the state (a large PATCH) is
    /// done beforehand, without holding up other connectors' writes.
    pub async fn modify_resource_if(
        &self,
        key: &ResourceKey,
        members_attr: Option<&Attribute>,
        now: OffsetDateTime,
        computed_from: i64,
        doc: Document,
        member_ops: Vec<MemberOp>,
    ) -> StoreResult<UpdateOutcome> {
        let audit = WriteAudit::system("store", "modify");
        self.modify_resource_if_audited(
            key,
            members_attr,
            now,
            computed_from,
            doc,
            member_ops,
            &audit,
        )
        .await
    }

    /// [`Store::modify_resource_if`] with the audit row saying who wrote and how; the row
    /// is written in the same transaction, and only when something changed.
    #[allow(clippy::too_many_arguments)] // The write's parts and its audit; a struct would only rename them.
    #[tracing::instrument(level = "debug", skip_all, err, fields(connector = key.connector, scim.kind = key.kind.as_str()))]
    pub async fn modify_resource_if_audited(
        &self,
        key: &ResourceKey,
        members_attr: Option<&Attribute>,
        now: OffsetDateTime,
        computed_from: i64,
        doc: Document,
        member_ops: Vec<MemberOp>,
        audit: &WriteAudit,
    ) -> StoreResult<UpdateOutcome> {
        let audit = audit.clone();
        let members: usize = member_ops
            .iter()
            .map(|op| match op {
                MemberOp::Add(m) | MemberOp::Replace(m) => m.len(),
                MemberOp::Remove(ids) => ids.len(),
                MemberOp::RemoveWhere(_) | MemberOp::RemoveAll => 16,
            })
            .sum();
        let lane = lane(&key.connector, &doc, members);
        let now_ms = to_ms(now);
        let depth = self.report_depth(&key.connector);
        let input = Arc::new((key.clone(), members_attr.cloned(), audit, doc, member_ops));
        self.write_in(lane, move |conn| {
            let input = Arc::clone(&input);
            Box::pin(async move {
                let (key, members_attr, audit, doc, member_ops) = &*input;
                modify_in(
                    conn,
                    key,
                    members_attr.as_ref(),
                    now_ms,
                    audit,
                    depth,
                    move |current| {
                        // Copies: the write may run again (`store/batch.rs`).
                        Ok((current.version == computed_from)
                            .then(|| (doc.clone(), member_ops.clone())))
                    },
                )
                .await
            })
        })
        .await
    }

    /// Deletes a resource, its e-mail index rows and memberships, and marks its key (and the
    /// groups it belonged to) for delivery. With `if_match`, only a resource whose version
    /// meets it is deleted; otherwise [`DeleteOutcome::Stale`].
    pub async fn delete_resource(
        &self,
        key: &ResourceKey,
        if_match: Option<IfMatch>,
        now: OffsetDateTime,
    ) -> StoreResult<DeleteOutcome> {
        let audit = WriteAudit::system("store", "delete");
        self.delete_resource_audited(key, if_match, now, &audit)
            .await
    }

    /// [`Store::delete_resource`] with the audit row saying who deleted and how; the row is
    /// written in the same transaction, and only when the resource was deleted.
    #[tracing::instrument(level = "debug", skip_all, err, fields(connector = key.connector, scim.kind = key.kind.as_str()))]
    pub async fn delete_resource_audited(
        &self,
        key: &ResourceKey,
        if_match: Option<IfMatch>,
        now: OffsetDateTime,
        audit: &WriteAudit,
    ) -> StoreResult<DeleteOutcome> {
        let lane = Lane {
            name: key.connector.clone(),
            weight: 1,
        };
        let now_ms = to_ms(now);
        let depth = self.report_depth(&key.connector);
        let input = Arc::new((key.clone(), if_match, audit.clone()));
        self.write_in(lane, move |conn| {
            let input = Arc::clone(&input);
            Box::pin(async move {
                let (key, if_match, audit) = &*input;
                delete_in(conn, key, if_match.as_ref(), now_ms, audit, depth).await
            })
        })
        .await
    }

    /// When a resource of the connector last changed (created or modified; a deletion
    /// leaves no row): the connector list's "last write". One look at the end of the
    /// `resources_updated` index per kind.
    pub async fn last_resource_change(
        &self,
        connector: &str,
    ) -> StoreResult<Option<OffsetDateTime>> {
        let mut last: Option<i64> = None;
        for kind in [ResourceKind::User, ResourceKind::Group] {
            let at: Option<i64> = sqlx::query_scalar(
                "SELECT MAX(updated_at) FROM resources WHERE connector = $1 AND kind = $2",
            )
            .bind(connector.to_owned())
            .bind(kind.as_str())
            .fetch_one(self.reader())
            .await?;
            last = last.max(at);
        }
        Ok(last.map(from_ms))
    }

    /// Number of resources of a kind.
    pub async fn count_resources(&self, connector: &str, kind: ResourceKind) -> StoreResult<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM resources WHERE connector = $1 AND kind = $2")
                .bind(connector.to_owned())
                .bind(kind.as_str())
                .fetch_one(self.reader())
                .await?,
        )
    }

    /// One page of resources in stable (insertion) order.
    pub async fn page_resources(
        &self,
        connector: &str,
        kind: ResourceKind,
        offset: i64,
        limit: i64,
    ) -> StoreResult<Vec<StoredResource>> {
        let args = [Arg::Int(limit), Arg::Int(offset)];
        self.select(connector, kind, "ORDER BY seq LIMIT $3 OFFSET $4", &args)
            .await
    }

    /// Resources with `seq` greater than `after`, in order, at most `limit`: the chunks of a
    /// full scan.
    pub async fn scan_resources(
        &self,
        connector: &str,
        kind: ResourceKind,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<StoredResource>> {
        let args = [Arg::Int(after), Arg::Int(limit)];
        self.select(connector, kind, "AND seq > $3 ORDER BY seq LIMIT $4", &args)
            .await
    }

    /// The candidates of a narrowed filter, in stable order. A superset of the matches: the
    /// caller evaluates the filter on each.
    pub async fn narrowed_resources(
        &self,
        connector: &str,
        kind: ResourceKind,
        narrowing: &Narrowing,
    ) -> StoreResult<Vec<StoredResource>> {
        let mut conn = self.reader().acquire().await?;
        narrowed_in(&mut conn, connector, kind, narrowing).await
    }

    /// [`Store::narrowed_resources`] a chunk at a time: candidates with `seq` greater than
    /// `after`, in order, at most `limit`.
    pub async fn narrowed_chunk(
        &self,
        connector: &str,
        kind: ResourceKind,
        narrowing: &Narrowing,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<StoredResource>> {
        let mut args = Vec::new();
        let condition = narrowing.to_sql(self.backend(), connector, 2, &mut args);
        let (a, l) = (args.len() + 3, args.len() + 4);
        args.push(Arg::Int(after));
        args.push(Arg::Int(limit));
        let tail = format!("AND ({condition}) AND seq > ${a} ORDER BY seq LIMIT ${l}");
        self.select(connector, kind, &tail, &args).await
    }

    /// The resources with these ids (any order; missing ones are left out).
    pub async fn resources_by_ids(
        &self,
        connector: &str,
        kind: ResourceKind,
        ids: &[String],
    ) -> StoreResult<Vec<StoredResource>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 3)).collect();
            let args: Vec<Arg> = chunk.iter().map(|id| Arg::Text(id.clone())).collect();
            let tail = format!("AND id IN ({})", marks.join(", "));
            out.extend(self.select(connector, kind, &tail, &args).await?);
        }
        Ok(out)
    }

    /// `SELECT` of whole resources of a connector and kind (`$1`, `$2`), narrowed and ordered
    /// by `tail`, whose own parameters start at `$3`. `tail` may refer to the table as `r`.
    async fn select(
        &self,
        connector: &str,
        kind: ResourceKind,
        tail: &str,
        args: &[Arg],
    ) -> StoreResult<Vec<StoredResource>> {
        let sql = select_sql(tail);
        let q = bind_args(sqlx::query(&sql), &select_args(connector, kind, args));
        let rows = match self.readers() {
            Some(readers) => {
                let mut reader = readers.get().await?;
                let rows = q.fetch_all(reader.conn()).await?;
                reader.done();
                rows
            }
            None => q.fetch_all(self.reader()).await?,
        };
        from_rows(&rows)
    }
}

/// The text of [`Store::select`].
pub(crate) fn select_sql(tail: &str) -> String {
    format!(
        "SELECT {} FROM resources r WHERE connector = $1 AND kind = $2 {tail}",
        ResourceRow::COLUMNS
    )
}

fn select_args(connector: &str, kind: ResourceKind, tail_args: &[Arg]) -> Vec<Arg> {
    let mut all = vec![
        Arg::Text(connector.to_owned()),
        Arg::Text(kind.as_str().to_owned()),
    ];
    all.extend_from_slice(tail_args);
    all
}

fn from_rows(rows: &[sqlx::any::AnyRow]) -> StoreResult<Vec<StoredResource>> {
    rows::decode::<ResourceRow>(rows)?
        .into_iter()
        .map(StoredResource::try_from)
        .collect()
}

/// The `SELECT` of a narrowed filter: its text varies with the filter's shape.
pub(crate) fn narrowed_sql(
    backend: Backend,
    connector: &str,
    kind: ResourceKind,
    narrowing: &Narrowing,
) -> (String, Vec<Arg>) {
    let mut args = Vec::new();
    // $1 and $2 are the connector and kind that `select_args` binds first.
    let condition = narrowing.to_sql(backend, connector, 2, &mut args);
    let sql = select_sql(&format!("AND ({condition}) ORDER BY seq"));
    (sql, select_args(connector, kind, &args))
}

/// [`Store::narrowed_resources`] on a connection. Its statement stays cached although its
/// text is built at run time: the shapes IdPs filter by are few (`userName eq`, `externalId
/// eq`, an e-mail), every lookup before a create is one, and preparing it anew costs a round
/// trip (measured: a third of the lookups per second on PostgreSQL).
pub(crate) async fn narrowed_in(
    conn: &mut AnyConnection,
    connector: &str,
    kind: ResourceKind,
    narrowing: &Narrowing,
) -> StoreResult<Vec<StoredResource>> {
    let backend = Backend::of(conn);
    let (sql, args) = narrowed_sql(backend, connector, kind, narrowing);
    from_rows(&bind_args(sqlx::query(&sql), &args).fetch_all(conn).await?)
}

/// A resource's name and its comparison key, as stored.
struct NameRow {
    connector: String,
    kind: String,
    id: String,
    name: String,
    name_lower: String,
}

from_row!(NameRow {
    connector,
    kind,
    id,
    name,
    name_lower
});

/// An e-mail index row's comparison key.
struct EmailRow {
    connector: String,
    id: String,
    value: String,
}

from_row!(EmailRow {
    connector,
    id = "resource_id",
    value = "value_lower"
});

/// A resource's version and document (JSON text), as a delete reads them.
struct VersionDoc {
    version: i64,
    doc: String,
}

from_row!(VersionDoc { version, doc });

impl Store {
    /// Brings the comparison columns of rows stored before names were compared in NFC
    /// (`scim/identifier.rs`) to the current form: `name_lower` and the e-mail index. Run
    /// at every start after the migrations; only rows with non-ASCII names or e-mails are
    /// read, and after the first run nothing differs, so nothing is written. Two old rows
    /// whose names are one name in NFC cannot both hold the folded key (it is unique): the
    /// later one keeps its old key, stays readable, writable and deletable, and is counted
    /// in the log line.
    pub(crate) async fn refold_names(&self) -> StoreResult<()> {
        let non_ascii = match self.backend() {
            // serde_json escapes control characters, so outside space..tilde means non-ASCII.
            Backend::Sqlite => "GLOB '*[^ -~]*'",
            Backend::Postgres => "~ '[^ -~]'",
        };
        let rows = sqlx::query(&format!(
            "SELECT {} FROM resources WHERE name {non_ascii}",
            NameRow::COLUMNS
        ))
        .fetch_all(self.reader())
        .await?;
        let (mut refolded, mut kept) = (0usize, 0usize);
        for NameRow {
            connector,
            kind,
            id,
            name,
            name_lower,
        } in rows::decode(&rows)?
        {
            let folded = identifier::fold(&name);
            if folded == name_lower {
                continue;
            }
            let mut tx = self.write_tx().await?;
            let updated = sqlx::query(
                "UPDATE resources SET name_lower = $1 WHERE connector = $2 AND kind = $3 AND id = $4",
            )
            .bind(folded)
            .bind(connector)
            .bind(kind)
            .bind(id)
            .execute(&mut *tx)
            .await;
            match updated.map_err(StoreError::from) {
                Ok(_) => {
                    tx.commit().await?;
                    refolded += 1;
                }
                Err(StoreError::Conflict(_)) => {
                    let _ = tx.rollback().await;
                    kept += 1;
                }
                Err(e) => return Err(e),
            }
        }
        let emails = sqlx::query(&format!(
            "SELECT {} FROM resource_emails WHERE value_lower {non_ascii}",
            EmailRow::COLUMNS
        ))
        .fetch_all(self.reader())
        .await?;
        let mut emails_refolded = 0usize;
        for EmailRow {
            connector,
            id,
            value,
        } in rows::decode(&emails)?
        {
            let folded = identifier::fold(&value);
            if folded == value {
                continue;
            }
            sqlx::query(
                "UPDATE resource_emails SET value_lower = $1 \
                 WHERE connector = $2 AND resource_id = $3 AND value_lower = $4",
            )
            .bind(folded)
            .bind(connector)
            .bind(id)
            .bind(value)
            .execute(self.writer())
            .await?;
            emails_refolded += 1;
        }
        if refolded + kept + emails_refolded > 0 {
            tracing::info!(
                names.refolded = refolded,
                names.kept_conflicting = kept,
                emails.refolded = emails_refolded,
                "stored names and e-mails brought to their NFC comparison form"
            );
        }
        Ok(())
    }
}

/// A create as the writer runs it: everything that depends only on the request (index
/// columns, the stored JSON, the audit row's changes) is worked out before the write is
/// queued, off the single SQLite writer's serial path (README.md "Benchmark").
struct NewResource {
    key: ResourceKey,
    members: Vec<MemberRef>,
    audit: WriteAudit,
    now_ms: i64,
    depth: u8,
    cols: IndexColumns,
    doc_text: String,
    changes: Vec<diff::AttributeChange>,
}

impl NewResource {
    fn new(
        key: &ResourceKey,
        doc: &Document,
        members: &[MemberRef],
        audit: &WriteAudit,
        now_ms: i64,
        depth: u8,
    ) -> StoreResult<NewResource> {
        // A map of JSON values always serialises; the error arm is for the type system.
        let doc_text =
            serde_json::to_string(doc).map_err(|e| StoreError::Corrupt(key.id.clone(), e))?;
        let mut changes = diff::diff(&Document::new(), doc);
        if !members.is_empty() {
            changes.extend(diff::member_changes(&[MemberOp::Add(members.to_vec())]));
        }
        Ok(NewResource {
            key: key.clone(),
            members: members.to_vec(),
            audit: audit.clone(),
            now_ms,
            depth,
            cols: index_columns(key.kind, doc),
            doc_text,
            changes,
        })
    }
}

/// The body of [`Store::insert_resource`], on the write connection inside a transaction:
/// the new row's `seq` and the member ids that named no resource.
async fn insert_in(conn: &mut AnyConnection, new: &NewResource) -> StoreResult<(i64, Vec<String>)> {
    let NewResource {
        key,
        members: new_members,
        now_ms,
        depth,
        cols,
        ..
    } = new;
    let (now_ms, depth) = (*now_ms, *depth);
    let (connector, kind, id) = (key.connector.as_str(), key.kind, key.id.as_str());
    // The fast path marks the direct reports only: a mapping that reads lines of managers
    // (docs/mapping.md "Lines of managers") takes the statement-by-statement path below.
    if new_members.is_empty()
        && depth <= 1
        && cols.emails.len() <= FAST_EMAILS
        && Backend::of(conn) == Backend::Sqlite
    {
        let seq = insert_sqlite(conn, new).await?;
        return Ok((seq, Vec::new()));
    }
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO resources (connector, kind, id, name, name_lower, external_id, active, \
         doc, version, created_at, updated_at, employee_number, manager_ref) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $9, $10, $11) RETURNING seq",
    )
    .bind(connector.to_owned())
    .bind(kind.as_str())
    .bind(id.to_owned())
    .bind(cols.name.clone())
    .bind(cols.name_lower.clone())
    .bind(cols.external_id.clone())
    .bind(cols.active)
    .bind(new.doc_text.clone())
    .bind(now_ms)
    .bind(cols.employee_number.clone())
    .bind(cols.manager_ref.clone())
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| conflict(kind, e.into()))?;
    write_emails(conn, connector, id, &cols.emails, false).await?;
    let skipped_members = if new_members.is_empty() {
        Vec::new()
    } else {
        members::add(conn, connector, id, new_members, now_ms)
            .await?
            .1
    };
    queue::mark(conn, connector, kind, id, now_ms).await?;
    if kind == ResourceKind::User {
        let keys = cols.manager_keys(id);
        queue::mark_report_lines(conn, connector, id, &keys, depth, now_ms).await?;
    }
    audit::append_write(conn, &new.audit, key, "created", &new.changes, now_ms).await?;
    Ok((seq, skipped_members))
}

/// What [`Store::insert_resource`] answers once the create is committed.
fn inserted(
    key: &ResourceKey,
    seq: i64,
    new: &NewResource,
    doc: Document,
    skipped_members: Vec<String>,
) -> Inserted {
    Inserted {
        resource: StoredResource {
            seq,
            kind: key.kind,
            id: key.id.clone(),
            name: new.cols.name.clone(),
            doc,
            doc_bytes: new.doc_text.len(),
            version: 1,
            created: from_ms(new.now_ms),
            updated: from_ms(new.now_ms),
        },
        skipped_members,
    }
}

/// Most e-mails a create may have to take [`insert_sqlite`]: each count is its own cached
/// statement, and the connection's statement cache is small.
const FAST_EMAILS: usize = 4;

/// [`insert_in`] on SQLite for a resource without members, in one round trip instead of
/// six: the row, its e-mails, its sync-queue mark, its reports' marks, its audit row and its
/// audit chain's new head go as one multi-statement query (sqlx-sqlite binds `$n` by number
/// in each statement). The audit row's hash needs the chain's head, which a batch keeps in
/// memory (`store/heads.rs`); a write that runs without it (a batch with savepoints) sends the
/// bump of the head with the other statements and the audit row as a second query
/// ([`audit::append_after_bump`]). Every statement runs on the connection's worker thread,
/// and on the single writer each round trip is a hand-over between threads: fewer of them is
/// much of what a create costs the writer (README.md "Benchmark"). The same statements, the
/// same transaction: nothing about durability changes.
async fn insert_sqlite(conn: &mut AnyConnection, new: &NewResource) -> StoreResult<i64> {
    use sqlx::Row;
    let NewResource {
        key,
        audit,
        now_ms,
        cols,
        ..
    } = new;
    let now_ms = *now_ms;
    let (connector, kind, id) = (key.connector.as_str(), key.kind, key.id.as_str());
    let chain = audit::chain_of(connector, kind.as_str(), id);
    // $1 connector, $2 kind, $3 id, $4 now and $5 priority as in `queue::MARK`.
    let mut sql = String::from(
        "INSERT INTO resources (connector, kind, id, name, name_lower, external_id, active, \
         doc, version, created_at, updated_at, employee_number, manager_ref) \
         VALUES ($1, $2, $3, $6, $7, $8, $9, $10, 1, $4, $4, $11, $12) RETURNING seq;\n",
    );
    let mut next = 14; // $13 is the audit chain.
    if !cols.emails.is_empty() {
        let rows: Vec<String> = (0..cols.emails.len())
            .map(|i| format!("($1, $3, ${})", next + i))
            .collect();
        sql.push_str("INSERT INTO resource_emails (connector, resource_id, value_lower) VALUES ");
        sql.push_str(&rows.join(", "));
        sql.push_str(";\n");
        next += cols.emails.len();
    }
    sql.push_str(queue::MARK);
    sql.push_str(";\n");
    let reports = if kind == ResourceKind::User {
        cols.manager_keys(id)
    } else {
        Vec::new()
    };
    if !reports.is_empty() {
        sql.push_str(&queue::mark_reports_sql(
            "$1",
            "$4",
            "$3",
            next,
            reports.len(),
        ));
        sql.push_str(";\n");
    }
    let row = audit::NewRow {
        at_ms: now_ms,
        connector,
        actor_kind: audit.actor_kind,
        actor: &audit.actor,
        operation: &audit.operation,
        resource_kind: Some(kind.as_str()),
        resource_id: Some(id),
        outcome: "created",
        changes: &new.changes,
    };
    // In a batch that knows the chain's head (`store/heads.rs`) the audit row goes in this
    // same query; otherwise the query bumps the head and the row follows in a second one.
    let known = heads::get(conn, chain)
        .await?
        .map(|head| audit::KnownRow::new(&row, chain, &head));
    match &known {
        Some(_) => sql.push_str(&audit::known_sql(next + reports.len())),
        None => sql.push_str(&audit::BUMP_HEAD.replace("$1", "$13")),
    }
    let mut q = sqlx::query(&sql)
        .bind(connector.to_owned())
        .bind(kind.as_str())
        .bind(id.to_owned())
        .bind(now_ms)
        .bind(queue::Priority::Normal as i64)
        .bind(cols.name.clone())
        .bind(cols.name_lower.clone())
        .bind(cols.external_id.clone())
        .bind(cols.active)
        .bind(new.doc_text.clone())
        .bind(cols.employee_number.clone())
        .bind(cols.manager_ref.clone())
        .bind(chain);
    for e in &cols.emails {
        q = q.bind(e.clone());
    }
    for k in reports {
        q = q.bind(k);
    }
    if let Some(known) = &known {
        q = audit::bind_known(q, known);
    }
    let rows = q.fetch_all(&mut *conn).await.map_err(|e| {
        // Only the row's own unique index is the caller's conflict (userName/displayName).
        let on_row =
            !matches!(&e, sqlx::Error::Database(db) if db.message().contains("resource_emails"));
        let e = StoreError::from(e);
        if on_row {
            conflict(kind, e)
        } else {
            e
        }
    })?;
    let seq: i64 = match rows.first() {
        Some(first) => first.try_get(0)?,
        None => return Err(StoreError::Database(sqlx::Error::RowNotFound)),
    };
    if let Some(known) = known {
        if rows.len() != 1 {
            return Err(StoreError::Database(sqlx::Error::RowNotFound));
        }
        known.moved();
        return Ok(seq);
    }
    let (Some(last), 2) = (rows.last(), rows.len()) else {
        return Err(StoreError::Database(sqlx::Error::RowNotFound));
    };
    let head_seq: i64 = last.try_get(0)?;
    let head_hash: String = last.try_get(1)?;
    audit::append_after_bump(conn, &row, chain, head_seq, head_hash).await?;
    Ok(seq)
}

/// The body of [`Store::modify_resource`]. Its early returns write nothing, so they need no
/// rollback of their own.
async fn modify_in(
    conn: &mut AnyConnection,
    key: &ResourceKey,
    members_attr: Option<&Attribute>,
    now_ms: i64,
    audit: &WriteAudit,
    depth: u8,
    change: impl FnOnce(&StoredResource) -> Result<Option<(Document, Vec<MemberOp>)>, ScimError>,
) -> StoreResult<UpdateOutcome> {
    let (connector, kind, id) = (key.connector.as_str(), key.kind, key.id.as_str());
    let lock = match Backend::of(conn) {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    };
    let sql = format!(
        "SELECT {} FROM resources WHERE connector = $1 AND kind = $2 AND id = $3{lock}",
        ResourceRow::COLUMNS
    );
    let Some(row) = sqlx::query(&sql)
        .bind(connector.to_owned())
        .bind(kind.as_str())
        .bind(id.to_owned())
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(UpdateOutcome::NotFound);
    };
    let current = StoredResource::try_from(ResourceRow::from_row(&row)?)?;
    let (doc, member_ops) = match change(&current) {
        Ok(Some(c)) => c,
        Ok(None) => return Ok(UpdateOutcome::Moved),
        Err(e) => return Ok(UpdateOutcome::Rejected(e)),
    };
    let mut skipped_members = Vec::new();
    let mut members_changed = false;
    for op in &member_ops {
        let (changed, skipped) =
            members::apply(conn, connector, id, op, members_attr, now_ms).await?;
        members_changed |= changed;
        skipped_members.extend(skipped);
    }
    let doc_changed = current.doc != doc;
    if !doc_changed && !members_changed {
        return Ok(UpdateOutcome::Unchanged(current));
    }
    let cols = index_columns(kind, &doc);
    let doc_text = Value::Object(doc.clone()).to_string();
    let doc_bytes = doc_text.len();
    sqlx::query(
        "UPDATE resources SET name = $1, name_lower = $2, external_id = $3, active = $4, \
         doc = $5, version = version + 1, updated_at = $6, employee_number = $10, \
         manager_ref = $11 WHERE connector = $7 AND kind = $8 AND id = $9",
    )
    .bind(cols.name.clone())
    .bind(cols.name_lower.clone())
    .bind(cols.external_id.clone())
    .bind(cols.active)
    .bind(doc_text)
    .bind(now_ms)
    .bind(connector.to_owned())
    .bind(kind.as_str())
    .bind(id.to_owned())
    .bind(cols.employee_number.clone())
    .bind(cols.manager_ref.clone())
    .execute(&mut *conn)
    .await
    .map_err(|e| conflict(kind, e.into()))?;
    if doc_changed && kind == ResourceKind::User {
        write_emails(conn, connector, id, &cols.emails, true).await?;
        // The users naming this one as manager: by its old keys (one may have changed,
        // leaving them pending) and by its new ones (they may resolve now).
        let before = index_columns(kind, &current.doc);
        let mut keys = before.manager_keys(id);
        keys.extend(cols.manager_keys(id));
        keys.sort();
        keys.dedup();
        // The lines further down read this user's own manager and whether they are active
        // (docs/mapping.md "Lines of managers"): only a change there reaches them.
        let (mut old_keys, mut new_keys) = (before.manager_keys(id), cols.manager_keys(id));
        old_keys.sort();
        new_keys.sort();
        let chain_moved = old_keys != new_keys
            || before.manager_ref != cols.manager_ref
            || before.active != cols.active;
        let depth = if chain_moved { depth } else { 1 };
        queue::mark_report_lines(conn, connector, id, &keys, depth, now_ms).await?;
    }
    // A user made (or left) inactive is deprovisioning: claimed ahead of other work.
    let priority = if kind == ResourceKind::User && cols.active == Some(false) {
        queue::Priority::Deprovision
    } else {
        queue::Priority::Normal
    };
    queue::mark_with(conn, connector, kind, id, now_ms, priority).await?;
    let mut changes = diff::diff(&current.doc, &doc);
    if members_changed {
        changes.extend(diff::member_changes(&member_ops));
    }
    audit::append_write(conn, audit, key, "updated", &changes, now_ms).await?;
    Ok(UpdateOutcome::Updated {
        resource: StoredResource {
            name: cols.name,
            doc,
            doc_bytes,
            version: current.version + 1,
            updated: from_ms(now_ms),
            ..current
        },
        skipped_members,
    })
}

/// The body of [`Store::delete_resource`].
async fn delete_in(
    conn: &mut AnyConnection,
    key: &ResourceKey,
    if_match: Option<&IfMatch>,
    now_ms: i64,
    audit: &WriteAudit,
    depth: u8,
) -> StoreResult<DeleteOutcome> {
    let (connector, kind, id) = (key.connector.as_str(), key.kind, key.id.as_str());
    let row = sqlx::query(
        "SELECT version, doc FROM resources WHERE connector = $1 AND kind = $2 AND id = $3",
    )
    .bind(connector.to_owned())
    .bind(kind.as_str())
    .bind(id.to_owned())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(VersionDoc {
        version,
        doc: doc_text,
    }) = row.as_ref().map(VersionDoc::from_row).transpose()?
    else {
        return Ok(DeleteOutcome::NotFound);
    };
    if if_match.is_some_and(|m| !m.admits(version)) {
        return Ok(DeleteOutcome::Stale);
    }
    let deleted = sqlx::query(
        "DELETE FROM resources WHERE connector = $1 AND kind = $2 AND id = $3 AND version = $4",
    )
    .bind(connector.to_owned())
    .bind(kind.as_str())
    .bind(id.to_owned())
    .bind(version)
    .execute(&mut *conn)
    .await?;
    if deleted.rows_affected() == 0 {
        return Ok(DeleteOutcome::Stale);
    }
    write_emails(conn, connector, id, &[], true).await?;
    if kind == ResourceKind::Group {
        members::apply(conn, connector, id, &MemberOp::RemoveAll, None, now_ms).await?;
    }
    // The resource is no longer anyone's member (RFC 7644 §3.6); the groups it was in
    // changed and are marked too.
    for group in members::remove_everywhere(conn, connector, id).await? {
        queue::mark(conn, connector, ResourceKind::Group, &group, now_ms).await?;
    }
    let doc = match serde_json::from_str::<Value>(&doc_text) {
        Ok(Value::Object(m)) => m,
        _ => Document::new(),
    };
    if kind == ResourceKind::User {
        // Its reports follow the connector's policy for deprovisioned managers; the lines
        // below them lose the chain above.
        let keys = index_columns(kind, &doc).manager_keys(id);
        queue::mark_report_lines(conn, connector, id, &keys, depth, now_ms).await?;
    }
    queue::mark_with(
        conn,
        connector,
        kind,
        id,
        now_ms,
        queue::Priority::Deprovision,
    )
    .await?;
    let changes = diff::diff(&doc, &Document::new());
    audit::append_write(conn, audit, key, "deleted", &changes, now_ms).await?;
    Ok(DeleteOutcome::Deleted)
}
