//! Convergence of one key: read the *current* resource, compute the desired Confluence state,
//! compare it with the state last applied (kept on the identity link), and make only the calls
//! needed. Replays are harmless: an unchanged resource makes no call at all.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};
use time::OffsetDateTime;

use super::directory::{DirError, DirErrorKind, DirResult, Directory};
use super::policy::FailureKind;
use super::settings::{OnConflict, OnDelete, OnGroupDelete, Provisioning};
use crate::mapping::{self, DesiredUser};
use crate::profiles::ConnectorProfiles;
use crate::scim::schema::ResourceKind;
use crate::store::attempts::Attempt;
use crate::store::links::{Link, LinkStatus};
use crate::store::queue::QueueKey;
use crate::store::{Store, StoreError};

/// The result of converging a key.
#[derive(Debug, Clone, PartialEq)]
pub enum Converged {
    /// Confluence matches the resource.
    Done,
    /// It does not yet.
    Failed {
        /// Retry or not, and when.
        kind: FailureKind,
        /// For the queue row and the admin (no personal data beyond the Confluence name).
        reason: String,
    },
}

impl From<StoreError> for Converged {
    fn from(e: StoreError) -> Self {
        Converged::Failed {
            kind: FailureKind::Retryable,
            reason: format!("store: {}", crate::http::error::error_chain(&e)),
        }
    }
}

fn failed(e: &DirError) -> Converged {
    let kind = match e.kind {
        DirErrorKind::RateLimited(after) => FailureKind::RateLimited(after),
        DirErrorKind::Permanent | DirErrorKind::Unsupported => FailureKind::Permanent,
        _ => FailureKind::Retryable,
    };
    Converged::Failed {
        kind,
        reason: e.to_string(),
    }
}

fn permanent(reason: impl Into<String>) -> Converged {
    Converged::Failed {
        kind: FailureKind::Permanent,
        reason: reason.into(),
    }
}

/// One convergence: the directory, the key, and the calls made (as attempt records).
pub struct Session<'a, D> {
    dir: &'a D,
    pub(super) store: &'a Store,
    pub(super) key: &'a QueueKey,
    pub(super) generation: i64,
    /// When false (`sync-user --dry-run`), nothing is written to the store.
    persist: bool,
    /// Calls made, in order.
    pub attempts: Vec<Attempt>,
}

impl<'a, D: Directory> Session<'a, D> {
    /// A session for one key.
    pub fn new(dir: &'a D, store: &'a Store, key: &'a QueueKey, generation: i64) -> Self {
        Self {
            dir,
            store,
            key,
            generation,
            persist: true,
            attempts: Vec::new(),
        }
    }

    /// A session that changes nothing in the store (links, marks): for dry runs, whose
    /// directory only records the calls it would make.
    pub fn without_persisting(mut self) -> Self {
        self.persist = false;
        self
    }

    async fn call<T>(
        &mut self,
        call: &str,
        fut: impl Future<Output = DirResult<T>>,
    ) -> DirResult<T> {
        let started = OffsetDateTime::now_utc();
        let t = Instant::now();
        let r = fut.await;
        let (status, error_class, response) = match &r {
            Ok(_) => (None, None, None),
            Err(e) => (
                e.status.map(i64::from),
                Some(e.class().to_owned()),
                Some(e.message.clone()),
            ),
        };
        self.attempts.push(Attempt {
            key: self.key.clone(),
            generation: self.generation,
            target: "confluence".to_owned(),
            started,
            duration_ms: t.elapsed().as_millis() as i64,
            call: call.to_owned(),
            status,
            error_class,
            response,
        });
        r
    }

    /// Converges the key: Confluence first, then (for users, once Confluence matches) the
    /// connector's profile targets, so a receiver inside Confluence finds the account.
    pub async fn converge(
        &mut self,
        prov: &Provisioning,
        profiles: &Arc<ConnectorProfiles>,
    ) -> Converged {
        let result = match self.key.kind {
            ResourceKind::User => self.user(prov, profiles).await,
            ResourceKind::Group => self.group(prov).await,
        };
        match result {
            // A dry run sends nothing to profile targets (the webhook).
            Ok(Converged::Done) if self.key.kind == ResourceKind::User && self.persist => self
                .profile_targets(profiles)
                .await
                .unwrap_or_else(Converged::from),
            other => other.unwrap_or_else(Converged::from),
        }
    }

    async fn save(&self, link: &Link) -> Result<(), StoreError> {
        if !self.persist {
            return Ok(());
        }
        self.store.save_link(link, OffsetDateTime::now_utc()).await
    }

    async fn user(
        &mut self,
        prov: &Provisioning,
        profiles: &Arc<ConnectorProfiles>,
    ) -> Result<Converged, StoreError> {
        let (connector, id) = (self.key.connector.as_str(), self.key.id.as_str());
        let resource = self
            .store
            .get_resource(connector, ResourceKind::User, id)
            .await?;
        let link = self.store.link(connector, ResourceKind::User, id).await?;
        let Some(resource) = resource else {
            return self.deprovision_deleted(prov, link).await;
        };
        // The username is derived once and then persisted on the link (DESIGN.md). The rules
        // may run scripts: then on the script threads, so a script running to its deadline
        // holds up no async thread (`profiles/pool.rs`).
        let linked = link
            .as_ref()
            .filter(|l| l.status != LinkStatus::Conflict)
            .map(|l| l.target_name.clone());
        let (rules, doc) = (profiles.clone(), resource.doc.clone());
        let identity = crate::profiles::pool::map(rules.mapping.uses_scripts(), move || {
            let rules = &rules.mapping;
            let username = match linked {
                Some(u) => u,
                None => rules.username(&doc)?,
            };
            Ok::<_, mapping::MappingError>((username, rules.email(&doc)?, rules.full_name(&doc)?))
        })
        .await;
        let (username, email, full_name) = match identity {
            Ok(Ok(i)) => i,
            Ok(Err(e)) => return Ok(permanent(e.to_string())),
            Err(e) => return Ok(permanent(e.to_string())),
        };
        let active = mapping::active(&resource.doc);
        let groups = if active || !prov.remove_groups_on_deprovision {
            let mut g: BTreeSet<String> = prov
                .default_groups
                .iter()
                .map(|g| g.to_lowercase())
                .collect();
            let of = self
                .store
                .groups_of(connector, std::slice::from_ref(&resource.id))
                .await?;
            for (_, name) in of.get(&resource.id).into_iter().flatten() {
                g.extend(prov.groups.confluence_name(name));
            }
            g
        } else {
            BTreeSet::new()
        };
        let desired = DesiredUser {
            username: username.clone(),
            full_name,
            email,
            active,
            groups,
        };
        let mut link = match link.filter(|l| l.status == LinkStatus::Active) {
            Some(l) if l.applied.is_some() => l,
            // A link without applied state records a create that was started but not
            // confirmed (usersync died mid-call): the account, if it exists, is ours.
            in_doubt => {
                let in_doubt = in_doubt.is_some();
                match self
                    .link_new_user(prov, connector, id, &desired, in_doubt)
                    .await?
                {
                    Ok(l) => l,
                    Err(c) => return Ok(c),
                }
            }
        };
        let mut applied: DesiredUser = link
            .applied
            .clone()
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_else(|| DesiredUser {
                groups: BTreeSet::new(),
                ..desired.clone()
            });
        let outcome = self.user_calls(&desired, &mut applied).await;
        link.applied = serde_json::to_value(&applied).ok();
        self.save(&link).await?;
        Ok(outcome)
    }

    /// Makes the calls that take Confluence from `applied` to `desired`, updating `applied`
    /// after each success so a retry does not repeat them.
    async fn user_calls(&mut self, desired: &DesiredUser, applied: &mut DesiredUser) -> Converged {
        let u = desired.username.as_str();
        if applied.full_name != desired.full_name || applied.email != desired.email {
            match self
                .call(
                    "PUT /rest/api/admin/user/{username}",
                    self.dir.update_user(u, &desired.full_name, &desired.email),
                )
                .await
            {
                Ok(()) => {}
                // Before Confluence 9.4 there is no REST call for this (confluence-linchpin
                // §1.3): record it and move on rather than retrying forever.
                Err(e) if e.kind == DirErrorKind::Unsupported => {
                    tracing::warn!(
                        confluence.username = u,
                        "Confluence cannot update name and e-mail on this version"
                    );
                }
                Err(e) => return failed(&e),
            }
            applied.full_name = desired.full_name.clone();
            applied.email = desired.email.clone();
        }
        if applied.active != desired.active {
            let call = if desired.active {
                "PUT /rest/api/admin/user/{username}/enable"
            } else {
                "PUT /rest/api/admin/user/{username}/disable"
            };
            if let Err(e) = self
                .call(call, self.dir.set_active(u, desired.active))
                .await
            {
                return failed(&e);
            }
            applied.active = desired.active;
        }
        let to_add: Vec<String> = desired
            .groups
            .difference(&applied.groups)
            .cloned()
            .collect();
        for g in to_add {
            match self
                .call(
                    "PUT /rest/api/user/{username}/group/{group}",
                    self.dir.add_member(u, &g),
                )
                .await
            {
                Ok(()) => {}
                Err(e) if e.kind == DirErrorKind::NotFound => {
                    // The group does not exist yet: create it, then add.
                    match self
                        .call("POST /rest/api/admin/group", self.dir.create_group(&g))
                        .await
                    {
                        Ok(()) => {}
                        Err(e) if e.kind == DirErrorKind::Conflict => {}
                        Err(e) => return failed(&e),
                    }
                    if let Err(e) = self
                        .call(
                            "PUT /rest/api/user/{username}/group/{group}",
                            self.dir.add_member(u, &g),
                        )
                        .await
                    {
                        return failed(&e);
                    }
                }
                Err(e) => return failed(&e),
            }
            applied.groups.insert(g);
        }
        let to_remove: Vec<String> = applied
            .groups
            .difference(&desired.groups)
            .cloned()
            .collect();
        for g in to_remove {
            match self
                .call(
                    "DELETE /rest/api/user/{username}/group/{group}",
                    self.dir.remove_member(u, &g),
                )
                .await
            {
                Ok(()) => {}
                Err(e) if e.kind == DirErrorKind::NotFound => {}
                Err(e) => return failed(&e),
            }
            applied.groups.remove(&g);
        }
        Converged::Done
    }

    /// First delivery of a user: create the account, or follow `on_conflict` when the name
    /// exists. When `in_doubt`, a create of ours may already have happened, so an existing
    /// account is taken as ours whatever the policy. Returns the new link, or the
    /// convergence result when it cannot proceed.
    async fn link_new_user(
        &mut self,
        prov: &Provisioning,
        connector: &str,
        id: &str,
        desired: &DesiredUser,
        in_doubt: bool,
    ) -> Result<Result<Link, Converged>, StoreError> {
        let u = desired.username.as_str();
        if let Some(other) = self.store.link_by_target(ResourceKind::User, u).await? {
            if other.connector != connector || other.scim_id != id {
                return Ok(Err(permanent(format!(
                    "Confluence user {u} is already linked to another SCIM user (connector {})",
                    other.connector
                ))));
            }
        }
        let mut link = Link {
            connector: connector.to_owned(),
            kind: ResourceKind::User,
            scim_id: id.to_owned(),
            target_name: u.to_owned(),
            target_key: None,
            status: LinkStatus::Active,
            applied: None,
            note: None,
        };
        let existing = match self.call("GET /rest/api/user", self.dir.get_user(u)).await {
            Ok(x) => x,
            Err(e) => return Ok(Err(failed(&e))),
        };
        match existing {
            Some(remote) if prov.on_conflict == OnConflict::Refuse && !in_doubt => {
                link.status = LinkStatus::Conflict;
                link.target_key = Some(remote.user_key);
                link.note = Some(
                    "the username exists in Confluence and on_conflict = \"refuse\"".to_owned(),
                );
                self.save(&link).await?;
                Ok(Err(permanent(format!(
                    "Confluence user {u} already exists; the connector's on_conflict = \"refuse\" \
                     leaves it alone (set on_conflict = \"adopt\" to manage it, then retry)"
                ))))
            }
            Some(remote) => {
                // Adopt: start from what the account really looks like.
                let groups = match self
                    .call("GET /rest/api/user/memberof", self.dir.user_groups(u))
                    .await
                {
                    Ok(g) => g.into_iter().map(|g| g.to_lowercase()).collect(),
                    Err(e) => return Ok(Err(failed(&e))),
                };
                link.target_key = Some(remote.user_key);
                link.applied = serde_json::to_value(DesiredUser {
                    username: u.to_owned(),
                    full_name: remote.display_name,
                    email: String::new(), // Not readable over REST on DC: update it once.
                    active: remote.active,
                    groups,
                })
                .ok();
                self.save(&link).await?;
                tracing::info!(
                    confluence.username = u,
                    "adopted an existing Confluence account"
                );
                Ok(Ok(link))
            }
            None => {
                // Record the intent first: if usersync dies after Confluence created the
                // account but before the link is saved, the next attempt adopts it instead of
                // reporting a conflict with itself.
                self.save(&link).await?;
                let key = match self
                    .call(
                        "POST /rest/api/admin/user",
                        self.dir.create_user(u, &desired.full_name, &desired.email),
                    )
                    .await
                {
                    Ok(k) => k,
                    Err(e) => return Ok(Err(failed(&e))),
                };
                link.target_key = Some(key);
                link.applied = serde_json::to_value(DesiredUser {
                    groups: BTreeSet::new(),
                    active: true,
                    ..desired.clone()
                })
                .ok();
                // Saved at once: a crash after the create must not lead to a second create.
                self.save(&link).await?;
                tracing::info!(scim.id = %id, "created the Confluence account");
                Ok(Ok(link))
            }
        }
    }

    /// The SCIM user is gone: apply the connector's deletion policy to its account.
    async fn deprovision_deleted(
        &mut self,
        prov: &Provisioning,
        link: Option<Link>,
    ) -> Result<Converged, StoreError> {
        let Some(mut link) = link.filter(|l| l.status == LinkStatus::Active) else {
            return Ok(Converged::Done); // Never reached Confluence, or already removed.
        };
        let u = link.target_name.clone();
        let mut applied: DesiredUser = match link
            .applied
            .clone()
            .and_then(|v| serde_json::from_value(v).ok())
        {
            Some(a) => a,
            None => return Ok(Converged::Done),
        };
        if prov.on_delete == OnDelete::Delete {
            match self
                .call(
                    "DELETE /rest/api/admin/user/{username}",
                    self.dir.delete_user(&u),
                )
                .await
            {
                Ok(()) => {}
                Err(e) if e.kind == DirErrorKind::NotFound => {}
                Err(e) => return Ok(failed(&e)),
            }
            link.status = LinkStatus::Removed;
            link.applied = None;
            self.save(&link).await?;
            return Ok(Converged::Done);
        }
        let desired = DesiredUser {
            active: false,
            groups: if prov.remove_groups_on_deprovision {
                BTreeSet::new()
            } else {
                applied.groups.clone()
            },
            ..applied.clone()
        };
        let outcome = self.user_calls(&desired, &mut applied).await;
        link.applied = serde_json::to_value(&applied).ok();
        self.save(&link).await?;
        Ok(outcome)
    }

    async fn group(&mut self, prov: &Provisioning) -> Result<Converged, StoreError> {
        let (connector, id) = (self.key.connector.as_str(), self.key.id.as_str());
        let resource = self
            .store
            .get_resource(connector, ResourceKind::Group, id)
            .await?;
        let link = self
            .store
            .link(connector, ResourceKind::Group, id)
            .await?
            .filter(|l| l.status == LinkStatus::Active);
        let desired = resource
            .as_ref()
            .and_then(|r| prov.groups.confluence_name(&r.name));
        match (link, desired) {
            (None, None) => Ok(Converged::Done),
            (Some(mut link), None) => {
                // Deleted in SCIM, or no longer allowed by the group rules.
                if resource.is_none() && prov.on_group_delete == OnGroupDelete::Delete {
                    match self
                        .call(
                            "DELETE /rest/api/admin/group/{group}",
                            self.dir.delete_group(&link.target_name),
                        )
                        .await
                    {
                        Ok(()) => {}
                        Err(e) if e.kind == DirErrorKind::NotFound => {}
                        Err(e) => return Ok(failed(&e)),
                    }
                }
                link.status = LinkStatus::Removed;
                self.save(&link).await?;
                Ok(Converged::Done)
            }
            (link, Some(name)) => {
                if link.as_ref().is_some_and(|l| l.target_name == name) {
                    return Ok(Converged::Done);
                }
                match self
                    .call("POST /rest/api/admin/group", self.dir.create_group(&name))
                    .await
                {
                    Ok(()) => {}
                    Err(e) if e.kind == DirErrorKind::Conflict => {}
                    Err(e) => return Ok(failed(&e)),
                }
                if let Some(old) = &link {
                    // A rename: Confluence cannot rename groups, so the members move to the new
                    // group (their keys are marked) and the old one is deleted if the policy says so.
                    if self.persist {
                        self.store
                            .mark_group_members(connector, id, OffsetDateTime::now_utc())
                            .await?;
                    }
                    if prov.on_group_delete == OnGroupDelete::Delete {
                        match self
                            .call(
                                "DELETE /rest/api/admin/group/{group}",
                                self.dir.delete_group(&old.target_name),
                            )
                            .await
                        {
                            Ok(()) => {}
                            Err(e) if e.kind == DirErrorKind::NotFound => {}
                            Err(e) => return Ok(failed(&e)),
                        }
                    }
                }
                let link = Link {
                    connector: connector.to_owned(),
                    kind: ResourceKind::Group,
                    scim_id: id.to_owned(),
                    target_name: name.clone(),
                    target_key: None,
                    status: LinkStatus::Active,
                    applied: Some(json!({ "name": name })),
                    note: None,
                };
                match self.save(&link).await {
                    Ok(()) => Ok(Converged::Done),
                    Err(StoreError::Conflict(_)) => Ok(permanent(format!(
                        "Confluence group {name} is already linked to another SCIM group; give \
                         connectors distinct group prefixes"
                    ))),
                    Err(e) => Err(e),
                }
            }
        }
    }
}

/// The applied state of a user link as JSON (for `sync-user` output).
pub fn applied_json(link: &Link) -> Value {
    link.applied.clone().unwrap_or(Value::Null)
}
