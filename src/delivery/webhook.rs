//! The profile targets step of a user's convergence: the signed webhook.
//!
//! State-based like the Confluence step: the digest of the last body the receiver
//! acknowledged is kept per user (`target_state`), the current profile's body is built, and
//! only a different digest makes a call. A user deleted in SCIM is announced once, then
//! forgotten. A profile that a rule skips (`on_missing = "skip"`) sends nothing.

use std::sync::Arc;
use std::time::Instant;

use time::OffsetDateTime;

use super::converge::{Converged, Session};
use super::directory::Directory;
use super::policy::FailureKind;
use crate::profiles::resolve::{Resolved, Resolver};
use crate::profiles::ConnectorProfiles;
use crate::scim::schema::ResourceKind;
use crate::store::attempts::Attempt;
use crate::store::StoreError;
use crate::targets::webhook::{self, SendClass, WebhookClient};

/// The `target` name in `target_state` and attempt records.
const TARGET: &str = "webhook";

impl<D: Directory> Session<'_, D> {
    /// Brings the connector's profile targets up to date for this user.
    pub(super) async fn profile_targets(
        &mut self,
        profiles: &Arc<ConnectorProfiles>,
    ) -> Result<Converged, StoreError> {
        let Some(hook) = &profiles.webhook else {
            return Ok(Converged::Done);
        };
        let (connector, id) = (self.key.connector.as_str(), self.key.id.as_str());
        let last = self.store.target_digest(connector, id, TARGET).await?;
        let Some(row) = self.store.profile_row(connector, id).await? else {
            if last.is_none() {
                return Ok(Converged::Done);
            }
            let link = self.store.link(connector, ResourceKind::User, id).await?;
            let username = link.as_ref().map(|l| l.target_name.as_str());
            let body = webhook::deleted_payload(connector, id, username);
            return Ok(match self.send(hook, &body).await {
                None => {
                    self.store
                        .forget_target_digest(connector, id, TARGET)
                        .await?;
                    Converged::Done
                }
                Some(failed) => failed,
            });
        };
        let mut resolver = Resolver::new(self.store.clone(), connector, profiles.clone());
        let profile = match resolver.resolve(std::slice::from_ref(&row)).await?.pop() {
            Some(Resolved::Profile(p)) => p,
            Some(Resolved::Skipped { .. }) | None => return Ok(Converged::Done),
            Some(Resolved::Unmapped(e)) => {
                return Ok(Converged::Failed {
                    kind: FailureKind::Permanent,
                    reason: e.to_string(),
                })
            }
        };
        let body = webhook::payload(connector, id, &profile);
        let digest = webhook::digest(&body);
        if last.as_deref() == Some(digest.as_str()) {
            return Ok(Converged::Done);
        }
        Ok(match self.send(hook, &body).await {
            None => {
                self.store
                    .save_target_digest(connector, id, TARGET, &digest, OffsetDateTime::now_utc())
                    .await?;
                Converged::Done
            }
            Some(failed) => failed,
        })
    }

    /// POSTs one body and records the attempt; `None` when the receiver acknowledged it.
    async fn send(&mut self, hook: &WebhookClient, body: &str) -> Option<Converged> {
        let started = OffsetDateTime::now_utc();
        let t = Instant::now();
        let result = hook.post(body).await;
        let (status, error_class, response) = match &result {
            Ok(status) => (Some(i64::from(*status)), None, None),
            Err(e) => (
                e.status.map(i64::from),
                Some(e.class_name().to_owned()),
                Some(e.message.clone()),
            ),
        };
        self.attempts.push(Attempt {
            key: self.key.clone(),
            generation: self.generation,
            target: TARGET.to_owned(),
            started,
            duration_ms: t.elapsed().as_millis() as i64,
            call: "POST webhook".to_owned(),
            status,
            error_class,
            response,
        });
        let e = result.err()?;
        let kind = match e.class {
            SendClass::RateLimited(after) => FailureKind::RateLimited(after),
            SendClass::Permanent => FailureKind::Permanent,
            SendClass::Unauthorized | SendClass::Transient => FailureKind::Retryable,
        };
        Some(Converged::Failed {
            kind,
            reason: e.to_string(),
        })
    }
}
