//! Identity links (which Confluence account or group a SCIM resource is) and the state last
//! applied to it.

use serde_json::Value;
use sqlx::FromRow;
use time::OffsetDateTime;

use super::rows::{decode, from_row};
use super::{to_ms, ResourceKey, Store, StoreError, StoreResult};
use crate::scim::schema::ResourceKind;

/// Where a link stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkStatus {
    /// Linked to a live Confluence account or group.
    Active,
    /// The name belongs to an account the connector's policy refused to adopt.
    Conflict,
    /// The Confluence side was deleted by deprovisioning.
    Removed,
}

impl LinkStatus {
    /// The stored and displayed form.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkStatus::Active => "active",
            LinkStatus::Conflict => "conflict",
            LinkStatus::Removed => "removed",
        }
    }

    fn parse(s: &str) -> LinkStatus {
        match s {
            "conflict" => LinkStatus::Conflict,
            "removed" => LinkStatus::Removed,
            _ => LinkStatus::Active,
        }
    }
}

/// An identity link.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    /// Connector.
    pub connector: String,
    /// User or Group.
    pub kind: ResourceKind,
    /// SCIM id.
    pub scim_id: String,
    /// Confluence username or group name, derived once and then kept.
    pub target_name: String,
    /// Confluence userKey (Users).
    pub target_key: Option<String>,
    /// Status.
    pub status: LinkStatus,
    /// The state last applied to Confluence.
    pub applied: Option<Value>,
    /// Why the link is in conflict, for the admin.
    pub note: Option<String>,
}

/// A row of `identity_links` as selected.
struct LinkRow {
    connector: String,
    kind: String,
    scim_id: String,
    target_name: String,
    target_key: Option<String>,
    status: String,
    /// JSON text.
    applied: Option<String>,
    note: Option<String>,
}

from_row!(LinkRow {
    connector,
    kind,
    scim_id,
    target_name,
    target_key,
    status,
    applied,
    note
});

impl From<LinkRow> for Link {
    /// An `applied` state that is not JSON reads as none: delivery then re-applies it all,
    /// which converges (state-based delivery), rather than failing the key forever.
    fn from(r: LinkRow) -> Link {
        Link {
            connector: r.connector,
            kind: ResourceKind::parse(&r.kind).unwrap_or(ResourceKind::User),
            scim_id: r.scim_id,
            target_name: r.target_name,
            target_key: r.target_key,
            status: LinkStatus::parse(&r.status),
            applied: r.applied.and_then(|a| serde_json::from_str(&a).ok()),
            note: r.note,
        }
    }
}

impl Store {
    /// The link of a resource, if delivery ever made one.
    pub async fn link(&self, key: &ResourceKey) -> StoreResult<Option<Link>> {
        let sql = format!(
            "SELECT {} FROM identity_links WHERE connector = $1 AND kind = $2 AND scim_id = $3",
            LinkRow::COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(key.connector.clone())
            .bind(key.kind.as_str())
            .bind(key.id.clone())
            .fetch_optional(self.reader())
            .await?;
        Ok(row
            .as_ref()
            .map(LinkRow::from_row)
            .transpose()?
            .map(Link::from))
    }

    /// The live link holding a Confluence name, from any connector.
    pub async fn link_by_target(
        &self,
        kind: ResourceKind,
        target_name: &str,
    ) -> StoreResult<Option<Link>> {
        let sql = format!(
            "SELECT {} FROM identity_links WHERE kind = $1 AND target_name = $2 AND status = 'active'",
            LinkRow::COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(kind.as_str())
            .bind(target_name.to_owned())
            .fetch_optional(self.reader())
            .await?;
        Ok(row
            .as_ref()
            .map(LinkRow::from_row)
            .transpose()?
            .map(Link::from))
    }

    /// Creates or updates a link. `Conflict` when another live link holds the name.
    pub async fn save_link(&self, link: &Link, now: OffsetDateTime) -> StoreResult<()> {
        let now_ms = to_ms(now);
        sqlx::query(
            "INSERT INTO identity_links (connector, kind, scim_id, target_name, target_key, status, \
             applied, note, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) \
             ON CONFLICT (connector, kind, scim_id) DO UPDATE SET target_name = excluded.target_name, \
             target_key = excluded.target_key, status = excluded.status, applied = excluded.applied, \
             note = excluded.note, updated_at = excluded.updated_at",
        )
        .bind(link.connector.clone())
        .bind(link.kind.as_str())
        .bind(link.scim_id.clone())
        .bind(link.target_name.clone())
        .bind(link.target_key.clone())
        .bind(link.status.as_str())
        .bind(link.applied.as_ref().map(Value::to_string))
        .bind(link.note.clone())
        .bind(now_ms)
        .execute(self.writer())
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => StoreError::Conflict(format!("Confluence name of {}", link.kind.as_str())),
            other => other,
        })?;
        Ok(())
    }

    /// All links of a connector (or all), by name.
    pub async fn links(&self, connector: Option<&str>) -> StoreResult<Vec<Link>> {
        let sql = format!(
            "SELECT {} FROM identity_links WHERE ($1 = '' OR connector = $1) ORDER BY kind, target_name",
            LinkRow::COLUMNS
        );
        let rows = sqlx::query(&sql)
            .bind(connector.unwrap_or_default().to_owned())
            .fetch_all(self.reader())
            .await?;
        Ok(decode::<LinkRow>(&rows)?
            .into_iter()
            .map(Link::from)
            .collect())
    }
}
