//! Mapping rules edited through the operations API or the console (`connector_mappings`):
//! versioned, the newest in force on every instance, each save recorded in the audit trail
//! in its own transaction (docs/console.md).

use time::OffsetDateTime;

use super::audit::{audit_admin_action_in, AdminAction};
use super::rows::{decode, from_row};
use super::{from_ms, to_ms, Store, StoreResult};

/// One saved version of a connector's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMapping {
    /// The connector.
    pub connector: String,
    /// 1, 2, 3… per connector.
    pub version: i64,
    /// The TOML text of the mapping table, as saved.
    pub rules: String,
    /// When it was saved.
    pub created: OffsetDateTime,
    /// Who saved it (admin token name).
    pub created_by: String,
}

struct MappingRow {
    connector: String,
    version: i64,
    rules: String,
    created_at: i64,
    created_by: String,
}

from_row!(MappingRow {
    connector,
    version,
    rules,
    created_at,
    created_by
});

struct Stamp {
    n: i64,
    total: i64,
}

from_row!(Stamp { n, total });

impl From<MappingRow> for StoredMapping {
    fn from(r: MappingRow) -> Self {
        StoredMapping {
            connector: r.connector,
            version: r.version,
            rules: r.rules,
            created: from_ms(r.created_at),
            created_by: r.created_by,
        }
    }
}

impl Store {
    /// Saves `rules` as the connector's next version, records `audit` with it (its outcome
    /// names the version) and marks every user of the connector for delivery, since the
    /// identity rules may have changed; returns the version.
    pub async fn save_mapping(
        &self,
        connector: &str,
        rules: &str,
        now: OffsetDateTime,
        audit: &AdminAction,
    ) -> StoreResult<i64> {
        let mut tx = self.write_tx().await?;
        let last: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM connector_mappings WHERE connector = $1")
                .bind(connector.to_owned())
                .fetch_one(&mut *tx)
                .await?;
        let version = last.unwrap_or(0) + 1;
        sqlx::query(
            "INSERT INTO connector_mappings (connector, version, rules, created_at, created_by) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(connector.to_owned())
        .bind(version)
        .bind(rules.to_owned())
        .bind(to_ms(now))
        .bind(audit.token.clone())
        .execute(&mut *tx)
        .await?;
        let mut audit = audit.clone();
        audit.outcome = format!("{} (version {version})", audit.outcome);
        audit_admin_action_in(&mut tx, &audit, now).await?;
        tx.commit().await?;
        self.mark_all(Some(connector), now).await?;
        Ok(version)
    }

    /// The version in force of every connector that has one.
    pub async fn current_mappings(&self) -> StoreResult<Vec<StoredMapping>> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM connector_mappings m WHERE version = \
             (SELECT MAX(version) FROM connector_mappings n WHERE n.connector = m.connector) \
             ORDER BY connector",
            MappingRow::COLUMNS
        ))
        .fetch_all(self.reader())
        .await?;
        Ok(decode::<MappingRow>(&rows)?
            .into_iter()
            .map(StoredMapping::from)
            .collect())
    }

    /// Every saved version of a connector's rules, newest first.
    pub async fn mapping_versions(&self, connector: &str) -> StoreResult<Vec<StoredMapping>> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM connector_mappings WHERE connector = $1 ORDER BY version DESC",
            MappingRow::COLUMNS
        ))
        .bind(connector.to_owned())
        .fetch_all(self.reader())
        .await?;
        Ok(decode::<MappingRow>(&rows)?
            .into_iter()
            .map(StoredMapping::from)
            .collect())
    }

    /// A cheap fingerprint of the versions in force (each connector's newest version),
    /// so instances notice another instance's save without reading the rules.
    pub async fn mappings_stamp(&self) -> StoreResult<(i64, i64)> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(version), 0) AS BIGINT) AS total \
             FROM connector_mappings",
        )
        .fetch_one(self.reader())
        .await?;
        let stamp = <Stamp as sqlx::FromRow<_>>::from_row(&row)?;
        Ok((stamp.n, stamp.total))
    }
}
