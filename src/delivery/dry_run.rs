//! A directory that reads from Confluence but only records the writes it would make
//! (`usersync sync-user --dry-run`).

use std::sync::Mutex;

use super::directory::{DirResult, Directory, RemoteUser};

/// Wraps a directory: lookups go through, writes are recorded and reported as done.
pub struct DryRun<D> {
    inner: D,
    writes: Mutex<Vec<String>>,
}

impl<D> DryRun<D> {
    /// Wraps `inner`.
    pub fn new(inner: D) -> Self {
        Self {
            inner,
            writes: Mutex::new(Vec::new()),
        }
    }

    /// The writes that would have been made, in order.
    pub fn writes(&self) -> Vec<String> {
        self.writes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn record(&self, what: String) {
        self.writes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(what);
    }
}

impl<D: Directory> Directory for DryRun<D> {
    async fn probe(&self) -> DirResult<()> {
        self.inner.probe().await
    }
    async fn get_user(&self, username: &str) -> DirResult<Option<RemoteUser>> {
        self.inner.get_user(username).await
    }
    async fn create_user(&self, username: &str, full_name: &str, email: &str) -> DirResult<String> {
        let _ = (full_name, email);
        self.record(format!(
            "create user {username} (full name and e-mail from the mapping)"
        ));
        Ok("dry-run".to_owned())
    }
    async fn update_user(&self, username: &str, full_name: &str, email: &str) -> DirResult<()> {
        let _ = (full_name, email);
        self.record(format!("update full name and e-mail of {username}"));
        Ok(())
    }
    async fn set_active(&self, username: &str, active: bool) -> DirResult<()> {
        self.record(format!(
            "{} {username}",
            if active { "enable" } else { "disable" }
        ));
        Ok(())
    }
    async fn delete_user(&self, username: &str) -> DirResult<()> {
        self.record(format!("delete user {username}"));
        Ok(())
    }
    async fn user_groups(&self, username: &str) -> DirResult<Vec<String>> {
        self.inner.user_groups(username).await
    }
    async fn create_group(&self, group: &str) -> DirResult<()> {
        self.record(format!("create group {group}"));
        Ok(())
    }
    async fn delete_group(&self, group: &str) -> DirResult<()> {
        self.record(format!("delete group {group}"));
        Ok(())
    }
    async fn add_member(&self, username: &str, group: &str) -> DirResult<()> {
        self.record(format!("add {username} to {group}"));
        Ok(())
    }
    async fn remove_member(&self, username: &str, group: &str) -> DirResult<()> {
        self.record(format!("remove {username} from {group}"));
        Ok(())
    }
}
