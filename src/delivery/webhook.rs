//! The signed profile webhook as a delivery [`Target`].
//!
//! State-based like the Confluence target: the digest of the last body the receiver
//! acknowledged is kept per user (`target_state`), the current profile's body is built, and
//! only a different digest makes a call. A user deleted in SCIM is announced once, then
//! forgotten. A profile that a rule skips (`on_missing = "skip"`) sends nothing. Groups have
//! no profile: nothing to do.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use time::OffsetDateTime;

use super::converge::{permanent, Converged, Session};
use super::target::{Probe, Target};
use crate::profiles::resolve::{Resolved, Resolver};
use crate::profiles::ProfileTargets;
use crate::scim::schema::ResourceKind;
use crate::store::StoreError;
use crate::targets::webhook::{self, WebhookClient};

/// The `target` name in `target_state` and attempt records.
const TARGET: &str = "webhook";

/// A connector's webhook, for one key.
pub struct WebhookTarget<'a> {
    id: String,
    client: &'a WebhookClient,
    targets: &'a Arc<ProfileTargets>,
}

impl<'a> WebhookTarget<'a> {
    /// The webhook of `connector` (its own receiver, so its own health: `webhook/CONNECTOR`).
    pub fn new(
        connector: &str,
        client: &'a WebhookClient,
        targets: &'a Arc<ProfileTargets>,
    ) -> Self {
        Self {
            id: format!("{TARGET}/{connector}"),
            client,
            targets,
        }
    }
}

impl Target for WebhookTarget<'_> {
    fn name(&self) -> &'static str {
        TARGET
    }

    fn id(&self) -> &str {
        &self.id
    }

    fn converge<'s>(
        &'s self,
        s: &'s mut Session<'_>,
    ) -> BoxFuture<'s, Result<Converged, StoreError>> {
        Box::pin(async move {
            match s.key.kind {
                ResourceKind::User => self.user(s).await,
                ResourceKind::Group => Ok(Converged::Done),
            }
        })
    }

    fn probe(&self) -> Option<Probe<'_>> {
        Some(Probe {
            call: webhook::PROBE,
            run: Box::pin(self.client.probe()),
        })
    }
}

impl WebhookTarget<'_> {
    /// Brings the receiver up to date for this user.
    async fn user(&self, s: &mut Session<'_>) -> Result<Converged, StoreError> {
        let (connector, id) = (s.key.connector.as_str(), s.key.id.as_str());
        let last = s.store.target_digest(connector, id, TARGET).await?;
        let Some(row) = s.store.profile_row(connector, id).await? else {
            if last.is_none() {
                return Ok(Converged::Done);
            }
            let link = s.store.link(s.key).await?;
            let username = link.as_ref().map(|l| l.target_name.as_str());
            let body = webhook::deleted_payload(connector, id, username);
            return Ok(match self.send(s, &body).await {
                None => {
                    s.store.forget_target_digest(connector, id, TARGET).await?;
                    Converged::Done
                }
                Some(failed) => failed,
            });
        };
        let mut resolver = Resolver::new(s.store.clone(), connector, self.targets.clone());
        let profile = match resolver.resolve(std::slice::from_ref(&row)).await?.pop() {
            Some(Resolved::Profile(p)) => p,
            Some(Resolved::Skipped { .. }) | None => return Ok(Converged::Done),
            Some(Resolved::Unmapped(e)) => return Ok(permanent(e.to_string())),
        };
        let body = webhook::payload(connector, id, &profile);
        let digest = webhook::digest(&body);
        if last.as_deref() == Some(digest.as_str()) {
            return Ok(Converged::Done);
        }
        Ok(match self.send(s, &body).await {
            None => {
                s.store
                    .save_target_digest(connector, id, TARGET, &digest, OffsetDateTime::now_utc())
                    .await?;
                Converged::Done
            }
            Some(failed) => failed,
        })
    }

    /// POSTs one body; `None` when the receiver acknowledged it.
    async fn send(&self, s: &mut Session<'_>, body: &str) -> Option<Converged> {
        match s.call(self, webhook::POST, self.client.post(body)).await {
            Ok(status) => {
                if let Some(a) = s.attempts.last_mut() {
                    a.status = Some(i64::from(status));
                }
                None
            }
            Err(e) => Some(s.failed(&e)),
        }
    }
}
