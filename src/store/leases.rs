//! Named leases: work that must run on one instance at a time (the reconcile schedule, the
//! expiry of old records, any scheduler) takes a lease by name before it runs, renews it while
//! it works, and gives it back. A crashed holder's lease lapses and another instance takes the
//! work over (docs/delivery.md, "Several instances"). On SQLite one process owns the
//! database, and the lease costs one statement.
//!
//! A row with an expiry rather than a PostgreSQL advisory lock: it works the same on both
//! databases, holds no connection while the work runs, and a holder that stalls past its
//! lease learns so at its next renewal instead of silently keeping a lock on a connection.

use std::future::Future;
use std::time::Duration;

use time::OffsetDateTime;

use super::{to_ms, Store, StoreResult};

impl Store {
    /// Takes the lease `name` for `ttl` unless another holder's lease is still valid; `true`
    /// when taken (or already held by `holder`). One statement, so two instances racing for
    /// it cannot both win.
    pub async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let now_ms = to_ms(now);
        let taken = sqlx::query(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
             expires_at = excluded.expires_at \
             WHERE leases.expires_at <= $4 OR leases.holder = excluded.holder RETURNING name",
        )
        .bind(name.to_owned())
        .bind(holder.to_owned())
        .bind(now_ms + ttl.as_millis() as i64)
        .bind(now_ms)
        .fetch_optional(self.writer())
        .await?;
        Ok(taken.is_some())
    }

    /// Extends a lease `holder` has; `false` when it lost it (it lapsed and another holder
    /// took it).
    pub async fn renew_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE leases SET expires_at = $1 WHERE name = $2 AND holder = $3")
            .bind(to_ms(now) + ttl.as_millis() as i64)
            .bind(name.to_owned())
            .bind(holder.to_owned())
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives a lease back (nothing happens if `holder` no longer has it).
    pub async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name.to_owned())
            .bind(holder.to_owned())
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// Runs `work` only if this instance takes the lease `name` (for `ttl`, renewed every
    /// third of it while `work` runs), then gives the lease back. `None` when another
    /// instance holds it (the work runs there), or when the lease cannot be read. Work that
    /// loses its lease midway (this instance stalled past it) is cut off at its next await:
    /// it must keep its writes idempotent or each committed with its own effects.
    pub async fn run_alone<T>(
        &self,
        name: &str,
        ttl: Duration,
        work: impl Future<Output = T>,
    ) -> Option<T> {
        let holder = self.instance().to_owned();
        match self
            .acquire_lease(name, &holder, ttl, OffsetDateTime::now_utc())
            .await
        {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => {
                tracing::warn!(job = name, error.message = %e, "cannot take the job's lease; skipped");
                return None;
            }
        }
        let keep = async {
            let every = (ttl / 3).max(Duration::from_millis(10));
            loop {
                tokio::time::sleep(every).await;
                match self
                    .renew_lease(name, &holder, ttl, OffsetDateTime::now_utc())
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(
                            job = name,
                            "the job's lease was lost to another instance; stopped here"
                        );
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(job = name, error.message = %e, "could not renew the job's lease")
                    }
                }
            }
        };
        let out = tokio::select! {
            out = work => Some(out),
            () = keep => None,
        };
        if let Err(e) = self.release_lease(name, &holder).await {
            tracing::warn!(job = name, error.message = %e, "could not give the job's lease back; it lapses by itself");
        }
        out
    }
}
