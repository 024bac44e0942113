//! Web console sessions (`console_sessions`, docs/console.md): server-side, shared by every
//! instance; the cookie holds a random id of which only the SHA-256 is stored.

use time::OffsetDateTime;

use super::admin::AdminRole;
use super::rows::from_row;
use super::{from_ms, to_ms, Store, StoreResult};

/// A live session with its token's current role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The admin token it was opened with (its name).
    pub token_name: String,
    /// That token's role now.
    pub role: AdminRole,
    /// The session's CSRF token, carried by every form.
    pub csrf: String,
    /// When it was last used.
    pub last_seen: OffsetDateTime,
}

struct SessionRow {
    token_name: String,
    role: String,
    csrf: String,
    last_seen_at: i64,
}

from_row!(SessionRow {
    token_name,
    role,
    csrf,
    last_seen_at
});

impl Store {
    /// Opens a session for a token.
    pub async fn open_session(
        &self,
        id_hash: &str,
        token_name: &str,
        csrf: &str,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO console_sessions (id_hash, token_name, csrf, created_at, last_seen_at) \
             VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(id_hash.to_owned())
        .bind(token_name.to_owned())
        .bind(csrf.to_owned())
        .bind(to_ms(now))
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// The session, when it exists, was used after `idle_since`, and its token is still live
    /// (not revoked).
    pub async fn session(
        &self,
        id_hash: &str,
        idle_since: OffsetDateTime,
    ) -> StoreResult<Option<Session>> {
        let row = sqlx::query(
            "SELECT s.token_name, t.role, s.csrf, s.last_seen_at FROM console_sessions s \
             JOIN admin_tokens t ON t.name = s.token_name \
             WHERE s.id_hash = $1 AND s.last_seen_at >= $2 AND t.revoked_at IS NULL",
        )
        .bind(id_hash.to_owned())
        .bind(to_ms(idle_since))
        .fetch_optional(self.reader())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let r = <SessionRow as sqlx::FromRow<_>>::from_row(&row)?;
        Ok(Some(Session {
            token_name: r.token_name,
            role: AdminRole::parse(&r.role).unwrap_or(AdminRole::Viewer),
            csrf: r.csrf,
            last_seen: from_ms(r.last_seen_at),
        }))
    }

    /// Notes that the session was used now.
    pub async fn touch_session(&self, id_hash: &str, now: OffsetDateTime) -> StoreResult<()> {
        sqlx::query("UPDATE console_sessions SET last_seen_at = $1 WHERE id_hash = $2")
            .bind(to_ms(now))
            .bind(id_hash.to_owned())
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// Ends a session (sign-out), and every session idle since before `idle_since`.
    pub async fn close_session(
        &self,
        id_hash: &str,
        idle_since: OffsetDateTime,
    ) -> StoreResult<()> {
        sqlx::query("DELETE FROM console_sessions WHERE id_hash = $1 OR last_seen_at < $2")
            .bind(id_hash.to_owned())
            .bind(to_ms(idle_since))
            .execute(self.writer())
            .await?;
        Ok(())
    }
}
