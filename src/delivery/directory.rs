//! The Confluence operations delivery needs, as a trait: the real REST client implements it
//! (below), and so do the dry-run recorder of `sync-user --dry-run` and test doubles. Every
//! failure is a [`TargetError`], classified once by the client.

use std::future::Future;

use crate::targets::confluence::ConfluenceClient;
#[cfg(doc)]
use crate::targets::TargetError;
use crate::targets::TargetResult;

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

/// Result of a directory call: failures are the targets' one taxonomy, [`TargetError`].
pub type DirResult<T> = TargetResult<T>;

/// The Confluence user and group operations delivery uses. Every method is one call (or a
/// read-only lookup), idempotent where Confluence is: disabling a disabled user or adding an
/// existing member succeeds.
pub trait Directory: Send + Sync {
    /// A cheap authenticated read that says whether Confluence answers and accepts our
    /// credentials (`GET /rest/api/user/current`). Delivery asks it when a call fails in a way
    /// that may be Confluence's outage rather than this key's problem.
    fn probe(&self) -> impl Future<Output = DirResult<()>> + Send;
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
    /// Creates a group; [`TargetError::Conflict`] when it exists.
    fn create_group(&self, group: &str) -> impl Future<Output = DirResult<()>> + Send;
    /// Deletes a group; [`TargetError::NotFound`] when it does not exist.
    fn delete_group(&self, group: &str) -> impl Future<Output = DirResult<()>> + Send;
    /// Adds a user to a group; [`TargetError::NotFound`] when the group (or user) does not
    /// exist.
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
    fn probe(&self) -> impl Future<Output = DirResult<()>> + Send {
        self.as_ref().probe()
    }
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

/// The REST client is the directory delivery uses.
impl Directory for ConfluenceClient {
    async fn probe(&self) -> DirResult<()> {
        self.current_user().await.map(drop)
    }

    async fn get_user(&self, username: &str) -> DirResult<Option<RemoteUser>> {
        let user = ConfluenceClient::get_user(self, username).await?;
        Ok(user.map(|u| RemoteUser {
            username: u.username,
            user_key: u.user_key.as_str().to_owned(),
            display_name: u.display_name,
            // Without a status we cannot tell; assume enabled so a desired "disabled" is applied.
            active: u.active.unwrap_or(true),
        }))
    }

    async fn create_user(&self, username: &str, full_name: &str, email: &str) -> DirResult<String> {
        ConfluenceClient::create_user(self, username, full_name, email)
            .await
            .map(|k| k.as_str().to_owned())
    }

    async fn update_user(&self, username: &str, full_name: &str, email: &str) -> DirResult<()> {
        ConfluenceClient::update_user(self, username, full_name, email)
            .await
            .map(|_| ())
    }

    async fn set_active(&self, username: &str, active: bool) -> DirResult<()> {
        if active {
            self.enable_user(username).await
        } else {
            self.disable_user(username).await
        }
    }

    async fn delete_user(&self, username: &str) -> DirResult<()> {
        // Deletion is a Confluence long task; it is submitted, not awaited.
        ConfluenceClient::delete_user(self, username)
            .await
            .map(|_| ())
    }

    async fn user_groups(&self, username: &str) -> DirResult<Vec<String>> {
        ConfluenceClient::user_groups(self, username).await
    }

    async fn create_group(&self, group: &str) -> DirResult<()> {
        ConfluenceClient::create_group(self, group)
            .await
            .map(|_| ())
    }

    async fn delete_group(&self, group: &str) -> DirResult<()> {
        ConfluenceClient::delete_group(self, group).await
    }

    async fn add_member(&self, username: &str, group: &str) -> DirResult<()> {
        ConfluenceClient::add_member(self, username, group).await
    }

    async fn remove_member(&self, username: &str, group: &str) -> DirResult<()> {
        ConfluenceClient::remove_member(self, username, group).await
    }
}
