//! The state each profile target last received for a user, as a digest (migration 0003).

use time::OffsetDateTime;

use super::{to_ms, Store, StoreResult};

impl Store {
    /// The digest `target` last acknowledged for a user, if any.
    pub async fn target_digest(
        &self,
        connector: &str,
        scim_id: &str,
        target: &str,
    ) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT digest FROM target_state WHERE connector = $1 AND scim_id = $2 AND target = $3",
        )
        .bind(connector.to_owned())
        .bind(scim_id.to_owned())
        .bind(target.to_owned())
        .fetch_optional(self.reader())
        .await?)
    }

    /// Records that `target` acknowledged the profile with this digest.
    pub async fn save_target_digest(
        &self,
        connector: &str,
        scim_id: &str,
        target: &str,
        digest: &str,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO target_state (connector, scim_id, target, digest, delivered_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (connector, scim_id, target) \
             DO UPDATE SET digest = excluded.digest, delivered_at = excluded.delivered_at",
        )
        .bind(connector.to_owned())
        .bind(scim_id.to_owned())
        .bind(target.to_owned())
        .bind(digest.to_owned())
        .bind(to_ms(now))
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// Forgets a user at a target (the target was told the user is gone).
    pub async fn forget_target_digest(
        &self,
        connector: &str,
        scim_id: &str,
        target: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "DELETE FROM target_state WHERE connector = $1 AND scim_id = $2 AND target = $3",
        )
        .bind(connector.to_owned())
        .bind(scim_id.to_owned())
        .bind(target.to_owned())
        .execute(self.writer())
        .await?;
        Ok(())
    }
}
