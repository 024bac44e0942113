//! Delivery attempt records: every call delivery made, for the admin and for debugging.

use time::OffsetDateTime;

use super::rows::{decode, from_row};
use super::ResourceKey;
use super::{from_ms, to_ms, Store, StoreResult};

/// One call made while delivering a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The key delivered.
    pub key: ResourceKey,
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

/// The newest successful and failed attempts of a connector.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LastAttempts {
    /// The newest call that succeeded.
    pub succeeded: Option<Attempt>,
    /// The newest call that failed.
    pub failed: Option<Attempt>,
}

/// A row of `delivery_attempts` as [`Store::attempts`] selects it (the key is the one asked
/// for).
struct AttemptRow {
    generation: i64,
    target: String,
    started_at: i64,
    duration_ms: i64,
    call: String,
    status: Option<i64>,
    error_class: Option<String>,
    response: Option<String>,
}

from_row!(AttemptRow {
    generation,
    target,
    started_at,
    duration_ms,
    call,
    status,
    error_class,
    response
});

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
    pub async fn attempts(&self, key: &ResourceKey, limit: i64) -> StoreResult<Vec<Attempt>> {
        let sql = format!(
            "SELECT {} FROM delivery_attempts \
             WHERE connector = $1 AND kind = $2 AND resource_id = $3 ORDER BY id DESC LIMIT $4",
            AttemptRow::COLUMNS
        );
        let rows = sqlx::query(&sql)
            .bind(key.connector.clone())
            .bind(key.kind.as_str())
            .bind(key.id.clone())
            .bind(limit)
            .fetch_all(self.reader())
            .await?;
        Ok(decode::<AttemptRow>(&rows)?
            .into_iter()
            .map(|r| Attempt {
                key: key.clone(),
                generation: r.generation,
                target: r.target,
                started: from_ms(r.started_at),
                duration_ms: r.duration_ms,
                call: r.call,
                status: r.status,
                error_class: r.error_class,
                response: r.response,
            })
            .collect())
    }

    /// The newest successful call and the newest failed call of a connector's deliveries
    /// (the connector list's "last delivery" and "last error").
    pub async fn last_attempts(&self, connector: &str) -> StoreResult<LastAttempts> {
        let newest = |failed: bool| {
            format!(
                "SELECT kind, resource_id, {} FROM delivery_attempts WHERE connector = $1 \
                 AND error_class IS {} NULL ORDER BY started_at DESC LIMIT 1",
                AttemptRow::COLUMNS,
                if failed { "NOT" } else { "" }
            )
        };
        let mut out = LastAttempts::default();
        for failed in [false, true] {
            let row = sqlx::query(&newest(failed))
                .bind(connector.to_owned())
                .fetch_optional(self.reader())
                .await?;
            let Some(row) = row else { continue };
            use sqlx::Row as _;
            let kind: String = row.try_get("kind")?;
            let id: String = row.try_get("resource_id")?;
            let r = <AttemptRow as sqlx::FromRow<_>>::from_row(&row)?;
            let attempt = Attempt {
                key: super::queue::key_of(connector.to_owned(), &kind, id),
                generation: r.generation,
                target: r.target,
                started: from_ms(r.started_at),
                duration_ms: r.duration_ms,
                call: r.call,
                status: r.status,
                error_class: r.error_class,
                response: r.response,
            };
            if failed {
                out.failed = Some(attempt);
            } else {
                out.succeeded = Some(attempt);
            }
        }
        Ok(out)
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
