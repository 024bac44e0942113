//! Stored connectors and their token hashes (`usersync connector create|list|rotate`).

use time::OffsetDateTime;

use super::audit::{audit_admin_action_in, AdminAction};
use super::rows::{decode, from_row};
use super::{from_ms, to_ms, Store, StoreError, StoreResult};

/// A stored token (its hash only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// Hex SHA-256 of the token.
    pub hash: String,
    /// When it was issued.
    pub created: OffsetDateTime,
    /// When it stops working (set on the old token by a rotation).
    pub expires: Option<OffsetDateTime>,
}

/// A stored connector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorRecord {
    /// Name, also the SCIM base URL segment.
    pub name: String,
    /// When it was created.
    pub created: OffsetDateTime,
    /// Its tokens, newest first.
    pub tokens: Vec<TokenRecord>,
}

/// A connector joined with one of its tokens (none: the token columns are NULL).
struct ConnectorTokenRow {
    name: String,
    created_at: i64,
    token_hash: Option<String>,
    token_created_at: Option<i64>,
    token_expires_at: Option<i64>,
}

from_row!(ConnectorTokenRow {
    name,
    created_at,
    token_hash,
    token_created_at,
    token_expires_at
});

impl Store {
    /// All stored connectors with their tokens, by name.
    pub async fn connectors(&self) -> StoreResult<Vec<ConnectorRecord>> {
        let rows = sqlx::query(
            "SELECT c.name, c.created_at, t.token_hash, t.created_at AS token_created_at, \
             t.expires_at AS token_expires_at \
             FROM connectors c LEFT JOIN connector_tokens t ON t.connector = c.name \
             ORDER BY c.name, t.created_at DESC, t.id DESC",
        )
        .fetch_all(self.reader())
        .await?;
        let mut out: Vec<ConnectorRecord> = Vec::new();
        for r in decode::<ConnectorTokenRow>(&rows)? {
            if out.last().map(|c| &c.name) != Some(&r.name) {
                out.push(ConnectorRecord {
                    name: r.name,
                    created: from_ms(r.created_at),
                    tokens: Vec::new(),
                });
            }
            let (Some(hash), Some(c)) = (r.token_hash, out.last_mut()) else {
                continue;
            };
            c.tokens.push(TokenRecord {
                hash,
                // Never NULL when the token is there: the column is NOT NULL.
                created: from_ms(r.token_created_at.unwrap_or_default()),
                expires: r.token_expires_at.map(from_ms),
            });
        }
        Ok(out)
    }

    /// Creates a connector with its first token. `Conflict` if the name exists.
    pub async fn create_connector(
        &self,
        name: &str,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("INSERT INTO connectors (name, created_at) VALUES ($1, $2)")
            .bind(name.to_owned())
            .bind(to_ms(now))
            .execute(&mut *tx)
            .await
            .map_err(|e| match StoreError::from(e) {
                StoreError::Conflict(_) => StoreError::Conflict(format!("connector {name}")),
                other => other,
            })?;
        sqlx::query(
            "INSERT INTO connector_tokens (connector, token_hash, created_at) VALUES ($1, $2, $3)",
        )
        .bind(name.to_owned())
        .bind(token_hash.to_owned())
        .bind(to_ms(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Adds a new token to a connector; tokens without an expiry (or expiring later) are set
    /// to expire at `old_expire_at`. Returns false if the connector does not exist.
    pub async fn rotate_connector_token(
        &self,
        name: &str,
        token_hash: &str,
        now: OffsetDateTime,
        old_expire_at: OffsetDateTime,
    ) -> StoreResult<bool> {
        self.rotate_token(name, token_hash, now, old_expire_at, None)
            .await
    }

    /// [`Store::rotate_connector_token`], recording `audit` in the same transaction (the
    /// admin API and the command line).
    pub async fn rotate_connector_token_audited(
        &self,
        name: &str,
        token_hash: &str,
        now: OffsetDateTime,
        old_expire_at: OffsetDateTime,
        audit: &AdminAction,
    ) -> StoreResult<bool> {
        self.rotate_token(name, token_hash, now, old_expire_at, Some(audit))
            .await
    }

    async fn rotate_token(
        &self,
        name: &str,
        token_hash: &str,
        now: OffsetDateTime,
        old_expire_at: OffsetDateTime,
        audit: Option<&AdminAction>,
    ) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        let exists: Option<String> =
            sqlx::query_scalar("SELECT name FROM connectors WHERE name = $1")
                .bind(name.to_owned())
                .fetch_optional(&mut *tx)
                .await?;
        if exists.is_none() {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE connector_tokens SET expires_at = $1 WHERE connector = $2 \
             AND (expires_at IS NULL OR expires_at > $1)",
        )
        .bind(to_ms(old_expire_at))
        .bind(name.to_owned())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO connector_tokens (connector, token_hash, created_at) VALUES ($1, $2, $3)",
        )
        .bind(name.to_owned())
        .bind(token_hash.to_owned())
        .bind(to_ms(now))
        .execute(&mut *tx)
        .await?;
        if let Some(audit) = audit {
            audit_admin_action_in(&mut tx, audit, now).await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}
