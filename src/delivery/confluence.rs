//! The Confluence REST client as the worker's [`Directory`].

use super::directory::{DirError, DirErrorKind, DirResult, Directory, RemoteUser};
use crate::targets::confluence::ConfluenceClient;
use crate::targets::TargetError;

fn dir_error(e: TargetError) -> DirError {
    let kind = match &e {
        TargetError::Unauthorized(_) => DirErrorKind::Unauthorized,
        TargetError::NotFound(_) => DirErrorKind::NotFound,
        TargetError::Conflict(_) => DirErrorKind::Conflict,
        TargetError::RateLimited { retry_after, .. } => DirErrorKind::RateLimited(*retry_after),
        TargetError::Transient(_) => DirErrorKind::Transient,
        TargetError::Permanent(_) => DirErrorKind::Permanent,
        TargetError::Unsupported(_) => DirErrorKind::Unsupported,
    };
    let f = e.failure();
    DirError {
        kind,
        status: f.status,
        message: f.to_string(),
        body: f.body.clone(),
    }
}

impl Directory for ConfluenceClient {
    async fn get_user(&self, username: &str) -> DirResult<Option<RemoteUser>> {
        let user = ConfluenceClient::get_user(self, username)
            .await
            .map_err(dir_error)?;
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
            .map_err(dir_error)
    }

    async fn update_user(&self, username: &str, full_name: &str, email: &str) -> DirResult<()> {
        ConfluenceClient::update_user(self, username, full_name, email)
            .await
            .map(|_| ())
            .map_err(dir_error)
    }

    async fn set_active(&self, username: &str, active: bool) -> DirResult<()> {
        let r = if active {
            self.enable_user(username).await
        } else {
            self.disable_user(username).await
        };
        r.map_err(dir_error)
    }

    async fn delete_user(&self, username: &str) -> DirResult<()> {
        // Deletion is a Confluence long task; it is submitted, not awaited.
        ConfluenceClient::delete_user(self, username)
            .await
            .map(|_| ())
            .map_err(dir_error)
    }

    async fn user_groups(&self, username: &str) -> DirResult<Vec<String>> {
        ConfluenceClient::user_groups(self, username)
            .await
            .map_err(dir_error)
    }

    async fn create_group(&self, group: &str) -> DirResult<()> {
        ConfluenceClient::create_group(self, group)
            .await
            .map(|_| ())
            .map_err(dir_error)
    }

    async fn delete_group(&self, group: &str) -> DirResult<()> {
        ConfluenceClient::delete_group(self, group)
            .await
            .map_err(dir_error)
    }

    async fn add_member(&self, username: &str, group: &str) -> DirResult<()> {
        ConfluenceClient::add_member(self, username, group)
            .await
            .map_err(dir_error)
    }

    async fn remove_member(&self, username: &str, group: &str) -> DirResult<()> {
        ConfluenceClient::remove_member(self, username, group)
            .await
            .map_err(dir_error)
    }
}
