//! Delivery attempt records: every call delivery made, for the admin and for debugging.

use sqlx::Row;
use time::OffsetDateTime;

use super::queue::QueueKey;
use super::{from_ms, to_ms, Store, StoreResult};

/// One call made while delivering a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The key delivered.
    pub key: QueueKey,
    /// Its generation at the time.
    pub generation: i64,
    /// `confluence`, `webhook`, …
    pub target: String,
    /// When the call started.
    pub started: OffsetDateTime,
    /// How long it took.
    pub duration_ms: i64,
    /// Method and path template (`PUT /rest/api/admin/user/{username}/disable`), never names.
    pub call: String,
    /// HTTP status; `None` when no answer came (timeout, refused).
    pub status: Option<i64>,
    /// Error class (`rate_limited`, `transient`, `permanent`, …); `None` on success.
    pub error_class: Option<String>,
    /// The start of the response body (at most 2 KiB), for failures.
    pub response: Option<String>,
}

impl Store {
    /// Records attempts.
    pub async fn record_attempts(&self, attempts: &[Attempt]) -> StoreResult<()> {
        if attempts.is_empty() {
            return Ok(());
        }
        let mut tx = self.write_tx().await?;
        for a in attempts {
            sqlx::query(
                "INSERT INTO delivery_attempts (connector, kind, resource_id, generation, target, \
                 started_at, duration_ms, call, status, error_class, response) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(a.key.connector.clone())
            .bind(a.key.kind.as_str())
            .bind(a.key.id.clone())
            .bind(a.generation)
            .bind(a.target.clone())
            .bind(to_ms(a.started))
            .bind(a.duration_ms)
            .bind(a.call.clone())
            .bind(a.status)
            .bind(a.error_class.clone())
            .bind(a.response.clone())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The most recent attempts for a key, newest first.
    pub async fn attempts(&self, key: &QueueKey, limit: i64) -> StoreResult<Vec<Attempt>> {
        let rows = sqlx::query(
            "SELECT generation, target, started_at, duration_ms, call, status, error_class, response \
             FROM delivery_attempts WHERE connector = $1 AND kind = $2 AND resource_id = $3 \
             ORDER BY id DESC LIMIT $4",
        )
        .bind(key.connector.clone())
        .bind(key.kind.as_str())
        .bind(key.id.clone())
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Attempt {
                    key: key.clone(),
                    generation: r.try_get(0)?,
                    target: r.try_get(1)?,
                    started: from_ms(r.try_get(2)?),
                    duration_ms: r.try_get(3)?,
                    call: r.try_get(4)?,
                    status: r.try_get(5)?,
                    error_class: r.try_get(6)?,
                    response: r.try_get(7)?,
                })
            })
            .collect()
    }

    /// Deletes attempts older than `before`; returns how many.
    pub async fn expire_attempts(&self, before: OffsetDateTime) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM delivery_attempts WHERE started_at < $1")
            .bind(to_ms(before))
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected())
    }
}
