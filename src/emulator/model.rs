//! The records of the emulated Confluence (docs/emulator.md "State model") and their public views.
//!
//! `*Record` types are the emulator's own storage and never leave the crate; the `Emulated*`
//! and `*View` types are what tests see through [`Emulator`](super::Emulator) and
//! `GET /__emulator/state`. Passwords and tokens exist only as SHA-256 digests.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// User directory of an account; writes to read-only directories are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Directory {
    /// Confluence's internal directory (writable).
    #[default]
    #[serde(rename = "internal")]
    Internal,
    /// A read-only LDAP directory: disable, update, password and delete answer 400
    /// **(assumed)**.
    #[serde(rename = "ldap-readonly")]
    LdapReadonly,
}

/// Confluence's own profile details. With Linchpin installed they are written only by the
/// LUP mirror (docs/reference/confluence-api.md §2.5), never by REST.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct UserDetails {
    /// Phone (personal).
    pub phone: Option<String>,
    /// Instant messaging handle (personal).
    pub im: Option<String>,
    /// Website (personal).
    pub website: Option<String>,
    /// Position (business).
    pub position: Option<String>,
    /// Department (business).
    pub department: Option<String>,
    /// Location (business).
    pub location: Option<String>,
    /// About me.
    pub about: Option<String>,
}

/// One stored user.
#[derive(Debug, Clone)]
pub(crate) struct UserRecord {
    pub user_key: String,
    pub username: String,
    pub full_name: String,
    pub email: String,
    pub active: bool,
    pub password_hash: Option<String>,
    pub admin: bool,
    pub sysadmin: bool,
    pub directory: Directory,
    pub details: UserDetails,
}

impl UserRecord {
    /// Whether `password` matches, compared as digests.
    pub fn password_matches(&self, password: &str) -> bool {
        self.password_hash
            .as_deref()
            .is_some_and(|h| h == digest(password))
    }

    /// Administrators (system administrators included).
    pub fn is_admin(&self) -> bool {
        self.admin || self.sysadmin
    }
}

/// SHA-256 hex digest; how passwords and PATs are kept, so state dumps cannot leak them.
pub(crate) fn digest(secret: &str) -> String {
    let hash = Sha256::digest(secret.as_bytes());
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// A user as tests see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmulatedUser {
    /// Lower-case username.
    pub username: String,
    /// Immutable 32-hex-character key.
    pub user_key: String,
    /// Display name.
    pub full_name: String,
    /// E-mail address.
    pub email: String,
    /// False once disabled.
    pub active: bool,
    /// Group names, sorted.
    pub groups: Vec<String>,
    /// Directory of the account.
    pub directory: Directory,
    /// Confluence profile details (mirrored from LUP).
    pub details: UserDetails,
    /// Confluence administrator.
    pub admin: bool,
    /// System administrator.
    pub sysadmin: bool,
    /// Member of a "can use" group.
    pub licensed: bool,
}

/// What a long task does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TaskKind {
    /// `DELETE /rest/api/admin/user/{username}`.
    DeleteUser { username: String },
}

/// A long-running task (only user deletion in this emulator).
#[derive(Debug, Clone)]
pub(crate) struct LongTask {
    pub id: u64,
    pub kind: TaskKind,
    pub started: Instant,
    pub finish_at: Instant,
    pub finished: bool,
    pub successful: bool,
}

impl LongTask {
    /// Time since the task started, frozen once it finished.
    pub fn elapsed(&self, now: Instant) -> Duration {
        let end = if self.finished { self.finish_at } else { now };
        end.saturating_duration_since(self.started)
    }

    /// 0–100, linear in time.
    pub fn percentage(&self, now: Instant) -> u8 {
        if self.finished {
            return 100;
        }
        let total = self.finish_at.saturating_duration_since(self.started);
        if total.is_zero() {
            return 100;
        }
        let done = self.elapsed(now).as_secs_f64() / total.as_secs_f64();
        // Capped at 99: 100 is reserved for a task that is really finished.
        (done * 100.0).clamp(0.0, 99.0) as u8
    }

    /// The view used by the control API.
    pub fn view(&self, now: Instant) -> LongTaskView {
        let TaskKind::DeleteUser { username } = &self.kind;
        LongTaskView {
            id: self.id,
            kind: "delete-user".to_owned(),
            username: username.clone(),
            finished: self.finished,
            successful: self.successful,
            percentage_complete: self.percentage(now),
            elapsed_ms: u64::try_from(self.elapsed(now).as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// A long task as tests see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LongTaskView {
    /// Task id (as in `/rest/api/longtask/{id}`).
    pub id: u64,
    /// `delete-user`.
    pub kind: String,
    /// User the task acts on.
    pub username: String,
    /// Done?
    pub finished: bool,
    /// Done and succeeded?
    pub successful: bool,
    /// 0–100.
    pub percentage_complete: u8,
    /// Run time so far.
    pub elapsed_ms: u64,
}
