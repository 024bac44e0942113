//! What the operations API keeps (docs/admin-api.md): its credentials (`admin_tokens`) and the
//! operator switches every instance honours (`connector_controls`). Every change here is
//! written in one transaction with its audit row ([`audit_admin_action_in`]), so an action
//! is recorded exactly when it took effect.

use time::OffsetDateTime;

use super::audit::{audit_admin_action_in, AdminAction};
use super::rows::{decode, from_row};
use super::{from_ms, to_ms, Store, StoreError, StoreResult};

/// What an admin token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminRole {
    /// Reads everything, acts on nothing.
    Viewer,
    /// Reads and acts (sync, retry, pause, rotate).
    Admin,
}

impl AdminRole {
    /// The stored and displayed form.
    pub fn as_str(self) -> &'static str {
        match self {
            AdminRole::Viewer => "viewer",
            AdminRole::Admin => "admin",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<AdminRole> {
        match s {
            "viewer" => Some(AdminRole::Viewer),
            "admin" => Some(AdminRole::Admin),
            _ => None,
        }
    }
}

/// One admin token (its hash only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminTokenRecord {
    /// Its name: who holds it, as the audit trail shows it.
    pub name: String,
    /// What it may do.
    pub role: AdminRole,
    /// Hex SHA-256 of the token.
    pub hash: String,
    /// When it was created.
    pub created: OffsetDateTime,
    /// When it was last used (updated at most once a minute).
    pub last_used: Option<OffsetDateTime>,
    /// When it was revoked; a revoked token is refused.
    pub revoked: Option<OffsetDateTime>,
}

struct AdminTokenRow {
    name: String,
    role: String,
    token_hash: String,
    created_at: i64,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
}

from_row!(AdminTokenRow {
    name,
    role,
    token_hash,
    created_at,
    last_used_at,
    revoked_at
});

impl AdminTokenRow {
    fn into_record(self) -> AdminTokenRecord {
        AdminTokenRecord {
            // The CHECK constraint allows only the two roles; anything else reads as the
            // weaker one.
            role: AdminRole::parse(&self.role).unwrap_or(AdminRole::Viewer),
            name: self.name,
            hash: self.token_hash,
            created: from_ms(self.created_at),
            last_used: self.last_used_at.map(from_ms),
            revoked: self.revoked_at.map(from_ms),
        }
    }
}

/// The operator switches of one connector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorControls {
    /// The connector.
    pub connector: String,
    /// Delivery paused: its keys stay pending, unclaimed, until resumed.
    pub delivery_paused: bool,
    /// When the switch last changed.
    pub changed: OffsetDateTime,
    /// Who changed it (admin token name).
    pub changed_by: String,
}

struct ControlsRow {
    connector: String,
    delivery_paused: i64,
    changed_at: i64,
    changed_by: String,
}

from_row!(ControlsRow {
    connector,
    delivery_paused,
    changed_at,
    changed_by
});

impl Store {
    /// Creates an admin token and records `audit` with it. `Conflict` when the name exists
    /// (revoked names stay taken, so the audit trail's names keep one meaning).
    pub async fn create_admin_token(
        &self,
        name: &str,
        role: AdminRole,
        token_hash: &str,
        now: OffsetDateTime,
        audit: &AdminAction,
    ) -> StoreResult<()> {
        let audit = audit.clone();
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO admin_tokens (name, role, token_hash, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(name.to_owned())
        .bind(role.as_str())
        .bind(token_hash.to_owned())
        .bind(to_ms(now))
        .execute(&mut *tx)
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => StoreError::Conflict(format!("admin token name {name}")),
            other => other,
        })?;
        audit_admin_action_in(&mut tx, &audit, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every admin token, revoked ones included, by name.
    pub async fn admin_tokens(&self) -> StoreResult<Vec<AdminTokenRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM admin_tokens ORDER BY name",
            AdminTokenRow::COLUMNS
        ))
        .fetch_all(self.reader())
        .await?;
        Ok(decode::<AdminTokenRow>(&rows)?
            .into_iter()
            .map(AdminTokenRow::into_record)
            .collect())
    }

    /// The tokens that are not revoked: what a request's credential is compared with.
    pub async fn live_admin_tokens(&self) -> StoreResult<Vec<AdminTokenRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM admin_tokens WHERE revoked_at IS NULL",
            AdminTokenRow::COLUMNS
        ))
        .fetch_all(self.reader())
        .await?;
        Ok(decode::<AdminTokenRow>(&rows)?
            .into_iter()
            .map(AdminTokenRow::into_record)
            .collect())
    }

    /// Revokes a token and records `audit` with it; `false` when no live token has the name.
    pub async fn revoke_admin_token(
        &self,
        name: &str,
        now: OffsetDateTime,
        audit: &AdminAction,
    ) -> StoreResult<bool> {
        let audit = audit.clone();
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE admin_tokens SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL",
        )
        .bind(to_ms(now))
        .bind(name.to_owned())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            let _ = tx.rollback().await;
            return Ok(false);
        }
        audit_admin_action_in(&mut tx, &audit, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Notes that a token was used now (the caller skips it when the last note is recent, so
    /// reads do not each cost a write).
    pub async fn touch_admin_token(&self, name: &str, now: OffsetDateTime) -> StoreResult<()> {
        sqlx::query("UPDATE admin_tokens SET last_used_at = $1 WHERE name = $2")
            .bind(to_ms(now))
            .bind(name.to_owned())
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// The switches of every connector that has any.
    pub async fn connector_controls(&self) -> StoreResult<Vec<ConnectorControls>> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM connector_controls ORDER BY connector",
            ControlsRow::COLUMNS
        ))
        .fetch_all(self.reader())
        .await?;
        Ok(decode::<ControlsRow>(&rows)?
            .into_iter()
            .map(|r| ConnectorControls {
                connector: r.connector,
                delivery_paused: r.delivery_paused != 0,
                changed: from_ms(r.changed_at),
                changed_by: r.changed_by,
            })
            .collect())
    }

    /// Pauses or resumes delivery of a connector's keys on every instance (the claim query
    /// skips paused connectors) and records `audit` with it. Returns whether anything
    /// changed: pausing a paused connector changes nothing and is still recorded.
    pub async fn set_delivery_paused(
        &self,
        connector: &str,
        paused: bool,
        now: OffsetDateTime,
        audit: &AdminAction,
    ) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        let before: Option<i64> = sqlx::query_scalar(
            "SELECT delivery_paused FROM connector_controls WHERE connector = $1",
        )
        .bind(connector.to_owned())
        .fetch_optional(&mut *tx)
        .await?;
        let changed = before.unwrap_or(0) != i64::from(paused);
        sqlx::query(
            "INSERT INTO connector_controls (connector, delivery_paused, changed_at, changed_by) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (connector) DO UPDATE SET \
             delivery_paused = excluded.delivery_paused, changed_at = excluded.changed_at, \
             changed_by = excluded.changed_by",
        )
        .bind(connector.to_owned())
        .bind(i64::from(paused))
        .bind(to_ms(now))
        .bind(audit.token.clone())
        .execute(&mut *tx)
        .await?;
        let mut audit = audit.clone();
        if !changed {
            audit.outcome = format!("{} (unchanged)", audit.outcome);
        }
        audit_admin_action_in(&mut tx, &audit, now).await?;
        tx.commit().await?;
        if !paused {
            // Resumed keys are due now: wake the worker.
            self.queue_marked();
        }
        Ok(changed)
    }

    /// Makes one dead key (or, with `id` `None`, every dead key of `connector`) pending again
    /// and records `audit` with it; returns how many keys were revived.
    pub async fn revive_dead_audited(
        &self,
        connector: &str,
        key: Option<(&str, &str)>,
        now: OffsetDateTime,
        audit: &AdminAction,
    ) -> StoreResult<u64> {
        let mut tx = self.write_tx().await?;
        let (kind, id) = key.unwrap_or(("", ""));
        let done = sqlx::query(
            "UPDATE sync_queue SET state = 'pending', attempts = 0, next_attempt_at = $1, \
             waiting_on = NULL WHERE state = 'dead' AND connector = $2 \
             AND ($3 = '' OR (kind = $3 AND resource_id = $4))",
        )
        .bind(to_ms(now))
        .bind(connector.to_owned())
        .bind(kind.to_owned())
        .bind(id.to_owned())
        .execute(&mut *tx)
        .await?;
        let mut audit = audit.clone();
        audit.outcome = format!("{} ({} revived)", audit.outcome, done.rows_affected());
        audit_admin_action_in(&mut tx, &audit, now).await?;
        tx.commit().await?;
        self.queue_marked();
        Ok(done.rows_affected())
    }
}
