//! Identity links (which Confluence account or group a SCIM resource is) and the state last
//! applied to it.

use serde_json::Value;
use sqlx::Row;
use time::OffsetDateTime;

use super::{to_ms, Store, StoreError, StoreResult};
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
    fn as_str(self) -> &'static str {
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

const COLUMNS: &str = "connector, kind, scim_id, target_name, target_key, status, applied, note";

fn from_row(r: &sqlx::any::AnyRow) -> StoreResult<Link> {
    let kind: String = r.try_get(1)?;
    let status: String = r.try_get(5)?;
    let applied: Option<String> = r.try_get(6)?;
    Ok(Link {
        connector: r.try_get(0)?,
        kind: ResourceKind::parse(&kind).unwrap_or(ResourceKind::User),
        scim_id: r.try_get(2)?,
        target_name: r.try_get(3)?,
        target_key: r.try_get(4)?,
        status: LinkStatus::parse(&status),
        applied: applied.and_then(|a| serde_json::from_str(&a).ok()),
        note: r.try_get(7)?,
    })
}

impl Store {
    /// The link of a resource, if delivery ever made one.
    pub async fn link(
        &self,
        connector: &str,
        kind: ResourceKind,
        scim_id: &str,
    ) -> StoreResult<Option<Link>> {
        let sql = format!("SELECT {COLUMNS} FROM identity_links WHERE connector = $1 AND kind = $2 AND scim_id = $3");
        let row = sqlx::query(&sql)
            .bind(connector.to_owned())
            .bind(kind.as_str())
            .bind(scim_id.to_owned())
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// The live link holding a Confluence name, from any connector.
    pub async fn link_by_target(
        &self,
        kind: ResourceKind,
        target_name: &str,
    ) -> StoreResult<Option<Link>> {
        let sql = format!("SELECT {COLUMNS} FROM identity_links WHERE kind = $1 AND target_name = $2 AND status = 'active'");
        let row = sqlx::query(&sql)
            .bind(kind.as_str())
            .bind(target_name.to_owned())
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(from_row).transpose()
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
            "SELECT {COLUMNS} FROM identity_links WHERE ($1 = '' OR connector = $1) ORDER BY kind, target_name"
        );
        let rows = sqlx::query(&sql)
            .bind(connector.unwrap_or_default().to_owned())
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(from_row).collect()
    }
}
