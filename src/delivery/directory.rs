//! The Confluence operations delivery needs, as a trait: the real REST client implements it,
//! and so do the dry-run recorder of `sync-user --dry-run` and test doubles.

use std::future::Future;
use std::time::Duration;

/// A Confluence account as delivery sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteUser {
    /// Username.
    pub username: String,
    /// The immutable userKey.
    pub user_key: String,
    /// Display (full) name.
    pub display_name: String,
    /// Whether the account is enabled.
    pub active: bool,
}

/// How a call failed, as far as delivery cares (classified at the client boundary).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirErrorKind {
    /// 401/403, or credentials ignored (anonymous fallback): an admin must fix credentials or
    /// permissions; retried on schedule meanwhile.
    Unauthorized,
    /// The user or group does not exist.
    NotFound,
    /// It exists already.
    Conflict,
    /// 429 or 503 with `Retry-After`.
    RateLimited(Option<Duration>),
    /// 5xx, timeout, connection refused or reset: retried.
    Transient,
    /// Other 4xx (validation, no licence): not retried until something changes.
    Permanent,
    /// The Confluence version lacks the endpoint.
    Unsupported,
}

/// A failed call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirError {
    /// Classification.
    pub kind: DirErrorKind,
    /// HTTP status, when an answer came.
    pub status: Option<u16>,
    /// What happened, worded for the operator; never credentials, request bodies or user data.
    pub message: String,
    /// The start of the response body (at most 2 KiB), for attempt records only: Confluence
    /// echoes usernames in it, so it never goes to logs.
    pub body: Option<String>,
}

impl DirError {
    /// A new error.
    pub fn new(kind: DirErrorKind, status: Option<u16>, message: impl Into<String>) -> Self {
        Self {
            kind,
            status,
            message: message.into(),
            body: None,
        }
    }

    /// The error class recorded with attempts.
    pub fn class(&self) -> &'static str {
        match self.kind {
            DirErrorKind::Unauthorized => "unauthorized",
            DirErrorKind::NotFound => "not_found",
            DirErrorKind::Conflict => "conflict",
            DirErrorKind::RateLimited(_) => "rate_limited",
            DirErrorKind::Transient => "transient",
            DirErrorKind::Permanent => "permanent",
            DirErrorKind::Unsupported => "unsupported",
        }
    }
}

impl std::fmt::Display for DirError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(s) => write!(f, "{} (HTTP {s}): {}", self.class(), self.message),
            None => write!(f, "{}: {}", self.class(), self.message),
        }
    }
}

/// Result of a directory call.
pub type DirResult<T> = Result<T, DirError>;

/// The Confluence user and group operations delivery uses. Every method is one call (or a
/// read-only lookup), idempotent where Confluence is: disabling a disabled user or adding an
/// existing member succeeds.
pub trait Directory: Send + Sync {
    /// Looks a user up by username.
    fn get_user(
        &self,
        username: &str,
    ) -> impl Future<Output = DirResult<Option<RemoteUser>>> + Send;
    /// Creates an enabled user without notification e-mail; returns its userKey.
    fn create_user(
        &self,
        username: &str,
        full_name: &str,
        email: &str,
    ) -> impl Future<Output = DirResult<String>> + Send;
    /// Changes full name and e-mail.
    fn update_user(
        &self,
        username: &str,
        full_name: &str,
        email: &str,
    ) -> impl Future<Output = DirResult<()>> + Send;
    /// Enables or disables a user.
    fn set_active(
        &self,
        username: &str,
        active: bool,
    ) -> impl Future<Output = DirResult<()>> + Send;
    /// Deletes a user (Confluence anonymises the content; prefer disabling).
    fn delete_user(&self, username: &str) -> impl Future<Output = DirResult<()>> + Send;
    /// The groups a user is in.
    fn user_groups(&self, username: &str) -> impl Future<Output = DirResult<Vec<String>>> + Send;
    /// Creates a group; `Conflict` when it exists.
    fn create_group(&self, group: &str) -> impl Future<Output = DirResult<()>> + Send;
    /// Deletes a group; `NotFound` when it does not exist.
    fn delete_group(&self, group: &str) -> impl Future<Output = DirResult<()>> + Send;
    /// Adds a user to a group; `NotFound` when the group (or user) does not exist.
    fn add_member(&self, username: &str, group: &str)
        -> impl Future<Output = DirResult<()>> + Send;
    /// Removes a user from a group.
    fn remove_member(
        &self,
        username: &str,
        group: &str,
    ) -> impl Future<Output = DirResult<()>> + Send;
}

/// A shared directory is a directory (tests keep a handle to inspect it).
impl<T: Directory> Directory for std::sync::Arc<T> {
    fn get_user(
        &self,
        username: &str,
    ) -> impl Future<Output = DirResult<Option<RemoteUser>>> + Send {
        self.as_ref().get_user(username)
    }
    fn create_user(
        &self,
        username: &str,
        full_name: &str,
        email: &str,
    ) -> impl Future<Output = DirResult<String>> + Send {
        self.as_ref().create_user(username, full_name, email)
    }
    fn update_user(
        &self,
        username: &str,
        full_name: &str,
        email: &str,
    ) -> impl Future<Output = DirResult<()>> + Send {
        self.as_ref().update_user(username, full_name, email)
    }
    fn set_active(
        &self,
        username: &str,
        active: bool,
    ) -> impl Future<Output = DirResult<()>> + Send {
        self.as_ref().set_active(username, active)
    }
    fn delete_user(&self, username: &str) -> impl Future<Output = DirResult<()>> + Send {
        self.as_ref().delete_user(username)
    }
    fn user_groups(&self, username: &str) -> impl Future<Output = DirResult<Vec<String>>> + Send {
        self.as_ref().user_groups(username)
    }
    fn create_group(&self, group: &str) -> impl Future<Output = DirResult<()>> + Send {
        self.as_ref().create_group(group)
    }
    fn delete_group(&self, group: &str) -> impl Future<Output = DirResult<()>> + Send {
        self.as_ref().delete_group(group)
    }
    fn add_member(
        &self,
        username: &str,
        group: &str,
    ) -> impl Future<Output = DirResult<()>> + Send {
        self.as_ref().add_member(username, group)
    }
    fn remove_member(
        &self,
        username: &str,
        group: &str,
    ) -> impl Future<Output = DirResult<()>> + Send {
        self.as_ref().remove_member(username, group)
    }
}
