//! The Confluence directory as a delivery [`Target`]: users (create or adopt, name and e-mail,
//! enable and disable, memberships, deletion per policy) and groups (create, rename, delete).
//!
//! State-based: the last state applied to an account is kept on its identity link, the
//! desired state is computed from the current resource, and only the difference is sent.

use std::collections::BTreeSet;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::converge::{permanent, Converged, Session};
use super::desired;
use super::directory::Directory;
use super::settings::{OnConflict, OnDelete, OnGroupDelete, Provisioning};
use super::target::{Probe, Target};
use crate::mapping::{self, DesiredUser};
use crate::profiles::{pool, ProfileTargets};
use crate::scim::schema::ResourceKind;
use crate::store::links::{Link, LinkStatus};
use crate::store::StoreError;
use crate::targets::confluence::calls;
use crate::targets::ErrorClass;

/// The id (and name) of the Confluence target: every key visits it first.
pub const CONFLUENCE: &str = "confluence";

/// Confluence, for one key: the directory and the key's connector's policy and mapping.
pub struct ConfluenceTarget<'a, D> {
    dir: &'a D,
    prov: &'a Provisioning,
    targets: &'a Arc<ProfileTargets>,
}

impl<'a, D: Directory> ConfluenceTarget<'a, D> {
    /// The target for a key of a connector with `prov` and the connector's mapping (in
    /// `targets`, shared so scripted rules can run on the script threads).
    pub fn new(dir: &'a D, prov: &'a Provisioning, targets: &'a Arc<ProfileTargets>) -> Self {
        Self { dir, prov, targets }
    }
}

impl<D: Directory> Target for ConfluenceTarget<'_, D> {
    fn name(&self) -> &'static str {
        CONFLUENCE
    }

    fn id(&self) -> &str {
        CONFLUENCE
    }

    fn converge<'s>(
        &'s self,
        s: &'s mut Session<'_>,
    ) -> BoxFuture<'s, Result<Converged, StoreError>> {
        Box::pin(async move {
            match s.key.kind {
                ResourceKind::User => self.user(s).await,
                ResourceKind::Group => self.group(s).await,
            }
        })
    }

    fn probe(&self) -> Option<Probe<'_>> {
        Some(Probe {
            call: calls::CURRENT_USER,
            run: Box::pin(self.dir.probe()),
        })
    }
}

impl<D: Directory> ConfluenceTarget<'_, D> {
    async fn user(&self, s: &mut Session<'_>) -> Result<Converged, StoreError> {
        let prov = self.prov;
        let (connector, id) = (s.key.connector.as_str(), s.key.id.as_str());
        let resource = s.store.get_resource(s.key).await?;
        let link = s.store.link(s.key).await?;
        let Some(resource) = resource else {
            return self.deprovision_deleted(s, link).await;
        };
        // The username is derived once and then persisted on the link
        // (docs/reference/design.md "Identity links are explicit"). The rules may run
        // scripts: then on the script threads, so a script running to its deadline holds up
        // no async thread (`profiles/pool.rs`).
        let linked = link
            .as_ref()
            .filter(|l| l.status != LinkStatus::Conflict)
            .map(|l| l.target_name.clone());
        let active = mapping::active(&resource.doc);
        let scim_groups = if desired::keeps_groups(prov, active) {
            s.store
                .groups_of(connector, std::slice::from_ref(&resource.id))
                .await?
                .remove(&resource.id)
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let (rules, doc, policy) = (self.targets.clone(), resource.doc.clone(), prov.clone());
        let computed = pool::map(rules.mapping.uses_scripts(), move || {
            desired::user(
                &policy,
                &rules.mapping,
                &doc,
                linked.as_deref(),
                &scim_groups,
            )
        })
        .await;
        let desired = match computed {
            Ok(Ok(d)) => d,
            Ok(Err(e)) => return Ok(permanent(e.to_string())),
            Err(e) => return Ok(permanent(e.to_string())),
        };
        let mut link = match link.filter(|l| l.status == LinkStatus::Active) {
            Some(l) if l.applied.is_some() => l,
            // A link without applied state records a create that was started but not
            // confirmed (usersync died mid-call): the account, if it exists, is ours.
            in_doubt => {
                let in_doubt = in_doubt.is_some();
                match self
                    .link_new_user(s, connector, id, &desired, in_doubt)
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
        let outcome = self.user_calls(s, &desired, &mut applied).await;
        link.applied = serde_json::to_value(&applied).ok();
        s.save(&link).await?;
        Ok(outcome)
    }

    /// Makes the calls that take Confluence from `applied` to `desired`, updating `applied`
    /// after each success so a retry does not repeat them.
    async fn user_calls(
        &self,
        s: &mut Session<'_>,
        desired: &DesiredUser,
        applied: &mut DesiredUser,
    ) -> Converged {
        let u = desired.username.as_str();
        if applied.full_name != desired.full_name || applied.email != desired.email {
            match s
                .call(
                    self,
                    calls::UPDATE_USER,
                    self.dir.update_user(u, &desired.full_name, &desired.email),
                )
                .await
            {
                Ok(()) => {}
                // Before Confluence 9.4 there is no REST call for this (docs/delivery.md, Users):
                // record it and move on rather than retrying forever.
                Err(e) if e.class() == ErrorClass::Unsupported => {
                    tracing::warn!("Confluence cannot update name and e-mail on this version");
                }
                Err(e) => return s.failed(&e),
            }
            applied.full_name = desired.full_name.clone();
            applied.email = desired.email.clone();
        }
        if applied.active != desired.active {
            let call = if desired.active {
                calls::ENABLE_USER
            } else {
                calls::DISABLE_USER
            };
            if let Err(e) = s
                .call(self, call, self.dir.set_active(u, desired.active))
                .await
            {
                return s.failed(&e);
            }
            applied.active = desired.active;
        }
        let to_add: Vec<String> = desired
            .groups
            .difference(&applied.groups)
            .cloned()
            .collect();
        for g in to_add {
            match s
                .call(self, calls::ADD_MEMBER, self.dir.add_member(u, &g))
                .await
            {
                Ok(()) => {}
                Err(e) if e.class() == ErrorClass::NotFound => {
                    // The group does not exist yet: create it, then add.
                    match s
                        .call(self, calls::CREATE_GROUP, self.dir.create_group(&g))
                        .await
                    {
                        Ok(()) => {}
                        Err(e) if e.class() == ErrorClass::Conflict => {}
                        Err(e) => return s.failed(&e),
                    }
                    if let Err(e) = s
                        .call(self, calls::ADD_MEMBER, self.dir.add_member(u, &g))
                        .await
                    {
                        return s.failed(&e);
                    }
                }
                Err(e) => return s.failed(&e),
            }
            applied.groups.insert(g);
        }
        let to_remove: Vec<String> = applied
            .groups
            .difference(&desired.groups)
            .cloned()
            .collect();
        for g in to_remove {
            match s
                .call(self, calls::REMOVE_MEMBER, self.dir.remove_member(u, &g))
                .await
            {
                Ok(()) => {}
                Err(e) if e.class() == ErrorClass::NotFound => {}
                Err(e) => return s.failed(&e),
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
        &self,
        s: &mut Session<'_>,
        connector: &str,
        id: &str,
        desired: &DesiredUser,
        in_doubt: bool,
    ) -> Result<Result<Link, Converged>, StoreError> {
        let prov = self.prov;
        let u = desired.username.as_str();
        if let Some(other) = s.store.link_by_target(ResourceKind::User, u).await? {
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
        let existing = match s.call(self, calls::GET_USER, self.dir.get_user(u)).await {
            Ok(x) => x,
            Err(e) => return Ok(Err(s.failed(&e))),
        };
        match existing {
            Some(remote) if prov.on_conflict == OnConflict::Refuse && !in_doubt => {
                link.status = LinkStatus::Conflict;
                link.target_key = Some(remote.user_key);
                link.note = Some(
                    "the username exists in Confluence and on_conflict = \"refuse\"".to_owned(),
                );
                s.save(&link).await?;
                Ok(Err(permanent(format!(
                    "Confluence user {u} already exists; the connector's on_conflict = \"refuse\" \
                     leaves it alone (set on_conflict = \"adopt\" to manage it, then retry)"
                ))))
            }
            Some(remote) => {
                // Adopt: start from what the account really looks like.
                let groups = match s
                    .call(self, calls::USER_GROUPS, self.dir.user_groups(u))
                    .await
                {
                    Ok(g) => g.into_iter().map(|g| g.to_lowercase()).collect(),
                    Err(e) => return Ok(Err(s.failed(&e))),
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
                s.save(&link).await?;
                tracing::info!("adopted an existing Confluence account");
                Ok(Ok(link))
            }
            None => {
                // Record the intent first: if usersync dies after Confluence created the
                // account but before the link is saved, the next attempt adopts it instead of
                // reporting a conflict with itself.
                s.save(&link).await?;
                let key = match s
                    .call(
                        self,
                        calls::CREATE_USER,
                        self.dir.create_user(u, &desired.full_name, &desired.email),
                    )
                    .await
                {
                    Ok(k) => k,
                    Err(e) => return Ok(Err(s.failed(&e))),
                };
                link.target_key = Some(key);
                link.applied = serde_json::to_value(DesiredUser {
                    groups: BTreeSet::new(),
                    active: true,
                    ..desired.clone()
                })
                .ok();
                // Saved at once: a crash after the create must not lead to a second create.
                s.save(&link).await?;
                tracing::info!("created the Confluence account");
                Ok(Ok(link))
            }
        }
    }

    /// The SCIM user is gone: apply the connector's deletion policy to its account.
    async fn deprovision_deleted(
        &self,
        s: &mut Session<'_>,
        link: Option<Link>,
    ) -> Result<Converged, StoreError> {
        let prov = self.prov;
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
            match s
                .call(self, calls::DELETE_USER, self.dir.delete_user(&u))
                .await
            {
                Ok(()) => {}
                Err(e) if e.class() == ErrorClass::NotFound => {}
                Err(e) => return Ok(s.failed(&e)),
            }
            link.status = LinkStatus::Removed;
            link.applied = None;
            s.save(&link).await?;
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
        let outcome = self.user_calls(s, &desired, &mut applied).await;
        link.applied = serde_json::to_value(&applied).ok();
        s.save(&link).await?;
        Ok(outcome)
    }

    async fn group(&self, s: &mut Session<'_>) -> Result<Converged, StoreError> {
        let prov = self.prov;
        let (connector, id) = (s.key.connector.as_str(), s.key.id.as_str());
        let resource = s.store.get_resource(s.key).await?;
        let link = s
            .store
            .link(s.key)
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
                    match s
                        .call(
                            self,
                            calls::DELETE_GROUP,
                            self.dir.delete_group(&link.target_name),
                        )
                        .await
                    {
                        Ok(()) => {}
                        Err(e) if e.class() == ErrorClass::NotFound => {}
                        Err(e) => return Ok(s.failed(&e)),
                    }
                }
                link.status = LinkStatus::Removed;
                s.save(&link).await?;
                Ok(Converged::Done)
            }
            (link, Some(name)) => {
                if link.as_ref().is_some_and(|l| l.target_name == name) {
                    return Ok(Converged::Done);
                }
                match s
                    .call(self, calls::CREATE_GROUP, self.dir.create_group(&name))
                    .await
                {
                    Ok(()) => {}
                    Err(e) if e.class() == ErrorClass::Conflict => {}
                    Err(e) => return Ok(s.failed(&e)),
                }
                if let Some(old) = &link {
                    // A rename: Confluence cannot rename groups, so the members move to the new
                    // group (their keys are marked) and the old one is deleted if the policy says so.
                    if s.persist {
                        s.store
                            .mark_group_members(connector, id, OffsetDateTime::now_utc())
                            .await?;
                    }
                    if prov.on_group_delete == OnGroupDelete::Delete {
                        match s
                            .call(
                                self,
                                calls::DELETE_GROUP,
                                self.dir.delete_group(&old.target_name),
                            )
                            .await
                        {
                            Ok(()) => {}
                            Err(e) if e.class() == ErrorClass::NotFound => {}
                            Err(e) => return Ok(s.failed(&e)),
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
                match s.save(&link).await {
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
