//! The comparison, pure: what Confluence holds ([`Observed`]) against the desired state of
//! each of the connector's users ([`StoredUser`]), the links whose user is gone, and the
//! names other connectors hold, giving the items of a run and the store corrections and
//! direct changes a real run makes ([`Plan`]).
//!
//! The rules (docs/delivery.md, Reconcile):
//!
//! * A user's account is compared only where usersync manages it: enabled state, full name
//!   (e-mail too where Confluence shows it; the DC user list does not), and membership of the
//!   *managed* groups (the connector's default groups, the Confluence groups of its SCIM
//!   groups). Other groups are left alone.
//! * A difference on a linked account is fixed by correcting the link's applied state to what
//!   was observed and marking the key: delivery then converges it.
//! * In a group the connector *owns* (one linked to a SCIM group), a member no user of the
//!   connector should have there is removed directly, unless protected.
//! * An enabled account nothing accounts for is an orphan: reported, or disabled (never
//!   deleted) under `orphans = "disable"` when every connector agrees, unless protected.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::report::{Action, DriftClass, Item, Outcome};
use crate::delivery::settings::{OnConflict, Orphans, Provisioning};
use crate::mapping::DesiredUser;
use crate::store::queue::Priority;
use crate::store::reconcile::{LinkCorrection, LinkSnapshot};

/// A Confluence account as the user list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Display (full) name.
    pub display_name: String,
    /// E-mail, when Confluence shows it (the DC user list does not).
    pub email: Option<String>,
    /// Enabled; `None` when Confluence sent no status (never acted on).
    pub active: Option<bool>,
}

/// The members of a group read from Confluence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Members {
    /// The group does not exist.
    Missing,
    /// Its members' usernames (lower case).
    Of(HashSet<String>),
}

impl Members {
    fn contains(&self, name: &str) -> bool {
        matches!(self, Members::Of(m) if m.contains(name))
    }
}

/// What a run read from Confluence.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// Every account, by lower-case username.
    pub accounts: HashMap<String, Account>,
    /// The groups read (managed and protecting), by lower-case name.
    pub groups: HashMap<String, Members>,
    /// The account usersync signs in with (lower case): never touched.
    pub service_account: String,
}

/// One of the connector's users as the store holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredUser {
    /// SCIM id.
    pub scim_id: String,
    /// Its desired state (the same computation as delivery's).
    pub desired: DesiredUser,
    /// Its identity link, if any.
    pub link: Option<LinkSnapshot>,
}

/// How the run may act: the connector's policy, and what the rest of the installation says.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The connector.
    pub connector: String,
    /// Its provisioning policy.
    pub prov: Provisioning,
    /// Whether never-managed orphans may be disabled: every connector says
    /// `orphans = "disable"` (none of them can account for an unlinked account).
    pub disable_unmanaged: bool,
    /// The groups compared per user: default groups and its SCIM groups' Confluence groups.
    pub managed_groups: BTreeSet<String>,
    /// Of those, the groups it owns (linked to one of its SCIM groups).
    pub owned_groups: BTreeSet<String>,
    /// Usernames (lower case) another connector's live link holds, and which connector.
    pub held_by_others: HashMap<String, String>,
    /// The `reconcile.protect` list and `protect_groups`.
    pub protect: ProtectList,
}

/// Accounts never changed as orphans or unmanaged members.
#[derive(Debug, Clone, Default)]
pub struct ProtectList {
    /// Glob patterns of usernames.
    pub names: Vec<String>,
    /// Groups whose members are protected.
    pub groups: Vec<String>,
}

/// Whether `name` matches one of the list's patterns.
pub fn protected_name(list: &ProtectList, name: &str) -> bool {
    list.names.iter().any(|p| crate::mapping::glob(p, name))
}

/// A store correction a real run makes for one user.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedCorrection {
    /// The user.
    pub scim_id: String,
    /// The link change, if any.
    pub link: Option<LinkCorrection>,
    /// Mark the key, at this priority.
    pub mark: Option<Priority>,
    /// The items it settles (indexes into [`Plan::items`]).
    pub items: Vec<usize>,
}

/// A change a real run makes in Confluence itself (no key accounts for the account).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Direct {
    /// Disable a never-managed orphan.
    Disable {
        /// Username.
        username: String,
    },
    /// Remove an account from a group the connector owns.
    RemoveMember {
        /// Username.
        username: String,
        /// Group.
        group: String,
    },
}

/// What a run found, and what a real run would do.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Every difference, in the order found.
    pub items: Vec<Item>,
    /// Store corrections (then delivery converges).
    pub corrections: Vec<PlannedCorrection>,
    /// Direct changes, with the item each settles; membership removals first, orphans last.
    pub direct: Vec<(Direct, usize)>,
    /// The connector's users compared.
    pub users: u64,
    /// Accounts left out because they are protected (the service account, `protect`,
    /// `protect_groups`): orphans and strays in owned groups that are nobody's drift.
    pub protected: u64,
}

impl Plan {
    /// Accounts the plan disables or deletes (what the safety guard counts).
    pub fn disables(&self) -> u64 {
        self.items
            .iter()
            .filter(|i| i.disables && i.action != Action::Report)
            .count() as u64
    }
}

/// Compares, one user at a time, then settles what no user accounts for in [`Classifier::finish`].
#[derive(Debug)]
pub struct Classifier<'o> {
    observed: &'o Observed,
    policy: Policy,
    /// Usernames accounted for (the connector's users, its orphaned links, other connectors).
    claimed: HashSet<String>,
    /// The connector's users with a live link who are in an owned group: their memberships
    /// are converged by delivery, never removed directly. (Only those, to keep a run over
    /// 100,000 users small.)
    linked: HashSet<String>,
    /// Owned group → usernames that should be members.
    should_be_in: HashMap<String, HashSet<String>>,
    plan: Plan,
}

fn lower(s: &str) -> String {
    s.to_lowercase()
}

impl<'o> Classifier<'o> {
    /// A classifier of `observed` under `policy`.
    pub fn new(observed: &'o Observed, policy: Policy) -> Self {
        let mut claimed: HashSet<String> = HashSet::new();
        claimed.extend(policy.held_by_others.keys().cloned());
        Self {
            observed,
            policy,
            claimed,
            linked: HashSet::new(),
            should_be_in: HashMap::new(),
            plan: Plan::default(),
        }
    }

    /// A name other connectors account for (a refused conflict, a user not delivered yet).
    pub fn claim(&mut self, name: &str) {
        self.claimed.insert(lower(name));
    }

    fn push(&mut self, item: Item) -> usize {
        self.plan.items.push(item);
        self.plan.items.len() - 1
    }

    fn item(
        &mut self,
        class: DriftClass,
        username: &str,
        scim_id: Option<&str>,
        action: Action,
        detail: String,
    ) -> usize {
        let outcome = if action == Action::Report {
            Outcome::Reported
        } else {
            Outcome::Planned
        };
        self.push(Item {
            class,
            username: username.to_owned(),
            scim_id: scim_id.map(str::to_owned),
            action,
            outcome,
            detail,
            disables: false,
        })
    }

    fn correct(
        &mut self,
        scim_id: &str,
        link: Option<LinkCorrection>,
        mark: Option<Priority>,
        items: Vec<usize>,
    ) {
        self.plan.corrections.push(PlannedCorrection {
            scim_id: scim_id.to_owned(),
            link,
            mark,
            items,
        });
    }

    /// Compares one of the connector's users with its account.
    pub fn user(&mut self, u: StoredUser) {
        self.plan.users += 1;
        let name = lower(&u.desired.username);
        let id = u.scim_id.as_str();
        self.claimed.insert(name.clone());
        for g in u.desired.groups.iter().map(|g| lower(g)) {
            if self.policy.owned_groups.contains(&g) {
                self.should_be_in.entry(g).or_default().insert(name.clone());
            }
        }
        let observed = self.observed;
        let account = observed.accounts.get(&name);
        let link_status = u.link.as_ref().map(|l| l.status.as_str());
        if link_status != Some("active") {
            if let Some(other) = self.policy.held_by_others.get(&name).cloned() {
                self.item(
                    DriftClass::Conflict,
                    &name,
                    Some(id),
                    Action::Report,
                    format!("the username is held by connector {other}"),
                );
                return;
            }
        }
        let adopt = self.policy.prov.on_conflict == OnConflict::Adopt;
        match (link_status, account) {
            (Some("conflict"), Some(_)) if !adopt => {
                self.item(
                    DriftClass::Conflict,
                    &name,
                    Some(id),
                    Action::Report,
                    "the account exists and on_conflict = \"refuse\" leaves it alone".to_owned(),
                );
            }
            (Some("active"), Some(a)) => match u
                .link
                .as_ref()
                .and_then(|l| l.applied.as_deref())
                .map(|t| serde_json::from_str::<DesiredUser>(t).ok())
            {
                Some(applied) => self.linked_account(&u, &name, a, applied),
                None => {
                    // A create was started and not confirmed (usersync died mid-call):
                    // delivery takes the account as its own.
                    self.note_linked(&name);
                    let i = self.item(
                        DriftClass::Conflict,
                        &name,
                        Some(id),
                        Action::Converge,
                        "a create of this account was interrupted; delivery takes it as ours"
                            .to_owned(),
                    );
                    self.correct(id, None, Some(Priority::Normal), vec![i]);
                }
            },
            (Some("active"), None) => self.missing_linked(&u, &name),
            (_, Some(_)) => {
                // Not linked (never delivered, removed, or a conflict now to adopt).
                let (action, detail) = if adopt {
                    (
                        Action::Converge,
                        "the account exists and is not linked; on_conflict = \"adopt\": \
                         delivery adopts it",
                    )
                } else {
                    (
                        Action::Report,
                        "the account exists and is not linked; on_conflict = \"refuse\" \
                         leaves it alone",
                    )
                };
                let i = self.item(
                    DriftClass::Conflict,
                    &name,
                    Some(id),
                    action,
                    detail.to_owned(),
                );
                if action == Action::Converge {
                    self.correct(id, None, Some(Priority::Normal), vec![i]);
                }
            }
            (_, None) => {
                // No account and no live link: one is created for an active user (an
                // inactive one never delivered needs none).
                if u.desired.active || link_status == Some("conflict") {
                    let i = self.item(
                        DriftClass::Missing,
                        &name,
                        Some(id),
                        Action::Converge,
                        "no account in Confluence; delivery creates it".to_owned(),
                    );
                    self.correct(id, None, Some(Priority::Normal), vec![i]);
                }
            }
        }
    }

    /// Remembers a linked user found in an owned group.
    fn note_linked(&mut self, name: &str) {
        let observed = self.observed;
        if self
            .policy
            .owned_groups
            .iter()
            .any(|g| observed.groups.get(g).is_some_and(|m| m.contains(name)))
        {
            self.linked.insert(name.to_owned());
        }
    }

    /// A live link whose account is gone.
    fn missing_linked(&mut self, u: &StoredUser, name: &str) {
        let id = u.scim_id.as_str();
        let link = u.link.as_ref();
        let expected = |status: &str, applied: Option<serde_json::Value>| LinkCorrection {
            expected_status: "active".to_owned(),
            expected_applied: link.and_then(|l| l.applied.clone()),
            status: status.to_owned(),
            applied,
        };
        if u.desired.active {
            let i = self.item(
                DriftClass::Missing,
                name,
                Some(id),
                Action::Converge,
                "the account usersync created is gone from Confluence; delivery creates it again"
                    .to_owned(),
            );
            // No applied state: delivery looks the name up and creates the account.
            self.correct(
                id,
                Some(expected("active", None)),
                Some(Priority::Normal),
                vec![i],
            );
        } else {
            let i = self.item(
                DriftClass::Missing,
                name,
                Some(id),
                Action::Forget,
                "the account is gone from Confluence and the user is inactive; the link records it"
                    .to_owned(),
            );
            self.correct(id, Some(expected("removed", None)), None, vec![i]);
        }
    }

    /// A live, applied link and its account: enabled state, name, managed memberships.
    fn linked_account(
        &mut self,
        u: &StoredUser,
        name: &str,
        account: &Account,
        applied: Option<DesiredUser>,
    ) {
        self.note_linked(name);
        let id = u.scim_id.as_str();
        let d = &u.desired;
        // An applied state that does not parse is treated as delivery treats it.
        let mut fixed = applied.unwrap_or_else(|| DesiredUser {
            groups: BTreeSet::new(),
            ..d.clone()
        });
        let mut items = Vec::new();
        let mut priority = Priority::Normal;
        if let Some(active) = account.active {
            if active != d.active {
                let detail = if active {
                    "enabled in Confluence, inactive in the IdP: delivery disables it"
                } else {
                    "disabled in Confluence, active in the IdP: delivery enables it"
                };
                let i = self.item(
                    DriftClass::Active,
                    name,
                    Some(id),
                    Action::Converge,
                    detail.to_owned(),
                );
                if active {
                    self.plan.items[i].disables = true;
                    priority = Priority::Deprovision;
                }
                items.push(i);
                fixed.active = active;
            }
        }
        let name_differs = account.display_name != d.full_name;
        let email_differs = account.email.as_ref().is_some_and(|e| *e != d.email);
        if name_differs || email_differs {
            let what = match (name_differs, email_differs) {
                (true, true) => "full name and e-mail differ",
                (true, false) => "full name differs",
                _ => "e-mail differs",
            };
            items.push(self.item(
                DriftClass::Profile,
                name,
                Some(id),
                Action::Converge,
                format!("{what} from the IdP's: delivery updates them"),
            ));
            if name_differs {
                fixed.full_name = account.display_name.clone();
            }
            if let Some(e) = account.email.as_ref().filter(|_| email_differs) {
                fixed.email = e.clone();
            }
        }
        let mut extra = Vec::new();
        let mut lacking = Vec::new();
        for g in &self.policy.managed_groups {
            let Some(members) = self.observed.groups.get(g) else {
                continue;
            };
            let is_in = members.contains(name);
            let should = d.groups.iter().any(|x| x.eq_ignore_ascii_case(g));
            if is_in && !should {
                extra.push(g.clone());
            } else if !is_in && should {
                lacking.push(g.clone());
            }
            if is_in {
                fixed.groups.insert(g.clone());
            } else {
                fixed.groups.remove(g);
            }
        }
        if !extra.is_empty() || !lacking.is_empty() {
            let mut parts = Vec::new();
            if !extra.is_empty() {
                parts.push(format!("in {} (should not be)", extra.join(", ")));
            }
            if !lacking.is_empty() {
                parts.push(format!("not in {} (should be)", lacking.join(", ")));
            }
            items.push(self.item(
                DriftClass::Membership,
                name,
                Some(id),
                Action::Converge,
                format!("{}: delivery fixes it", parts.join("; ")),
            ));
        }
        if items.is_empty() {
            return;
        }
        let link = u.link.as_ref().map(|l| LinkCorrection {
            expected_status: "active".to_owned(),
            expected_applied: l.applied.clone(),
            status: "active".to_owned(),
            applied: serde_json::to_value(&fixed).ok(),
        });
        self.correct(id, link, Some(priority), items);
    }

    /// A live link of the connector whose user the IdP deleted.
    pub fn orphaned_link(&mut self, link: LinkSnapshot) {
        let name = lower(&link.target_name);
        self.claimed.insert(name.clone());
        let Some(account) = self.observed.accounts.get(&name) else {
            return;
        };
        if account.active != Some(true) {
            return; // Disabled (or status unknown): nothing to do.
        }
        let id = link.scim_id.clone();
        let on_delete = match self.policy.prov.on_delete {
            crate::delivery::settings::OnDelete::Disable => "disable",
            crate::delivery::settings::OnDelete::Delete => "delete",
        };
        let mut applied: Option<serde_json::Value> = link
            .applied
            .as_deref()
            .and_then(|t| serde_json::from_str(t).ok())
            .filter(serde_json::Value::is_object);
        if let Some(serde_json::Value::Object(o)) = applied.as_mut() {
            o.insert("active".to_owned(), serde_json::Value::Bool(true));
        }
        if self.protected(&name) {
            self.plan.protected += 1;
            return;
        }
        let (action, detail) = match &applied {
            _ if self.policy.prov.orphans == Orphans::Report => (
                Action::Report,
                "enabled, and its user was deleted in the IdP (orphans = \"report\")".to_owned(),
            ),
            None => (
                Action::Report,
                "enabled, and its user was deleted in the IdP; its link records no applied \
                 state, so delivery cannot tell what to undo: disable it by hand"
                    .to_owned(),
            ),
            Some(_) => (
                Action::Converge,
                format!(
                    "enabled, and its user was deleted in the IdP: delivery applies \
                     on_delete = \"{on_delete}\""
                ),
            ),
        };
        let i = self.item(DriftClass::OrphanDeleted, &name, Some(&id), action, detail);
        self.plan.items[i].disables = true;
        if action == Action::Converge {
            let fix = applied.map(|a| LinkCorrection {
                expected_status: "active".to_owned(),
                expected_applied: link.applied.clone(),
                status: "active".to_owned(),
                applied: Some(a),
            });
            self.correct(&id, fix, Some(Priority::Deprovision), vec![i]);
        }
    }

    /// Whether `name` may never be changed as an orphan or a stray member: the account
    /// usersync signs in with, `reconcile.protect`, members of `reconcile.protect_groups`.
    fn protected(&self, name: &str) -> bool {
        name == self.observed.service_account
            || protected_name(&self.policy.protect, name)
            || self.policy.protect.groups.iter().any(|g| {
                self.observed
                    .groups
                    .get(&lower(g))
                    .is_some_and(|m| m.contains(name))
            })
    }

    /// Settles what no user accounts for: members of owned groups nobody should have there
    /// (removed directly), then enabled accounts nothing accounts for (orphans), and returns
    /// the plan.
    pub fn finish(mut self) -> Plan {
        let observed = self.observed;
        let owned: Vec<String> = self.policy.owned_groups.iter().cloned().collect();
        for g in owned {
            let Some(Members::Of(members)) = observed.groups.get(&g) else {
                continue;
            };
            let mut strays: Vec<&String> = members
                .iter()
                .filter(|m| {
                    !self.linked.contains(*m)
                        && !self.should_be_in.get(&g).is_some_and(|s| s.contains(*m))
                })
                .collect();
            strays.sort();
            for m in strays {
                if self.protected(m) {
                    self.plan.protected += 1;
                    continue;
                }
                let i = self.item(
                    DriftClass::Membership,
                    m,
                    None,
                    Action::RemoveMember,
                    format!(
                        "in {g}, which usersync owns, and no user of the IdP should be there: \
                         removed from it"
                    ),
                );
                self.plan.direct.push((
                    Direct::RemoveMember {
                        username: m.clone(),
                        group: g.clone(),
                    },
                    i,
                ));
            }
        }
        let mut orphans: Vec<&String> = observed
            .accounts
            .iter()
            .filter(|(name, a)| !self.claimed.contains(*name) && a.active == Some(true))
            .map(|(name, _)| name)
            .collect();
        orphans.sort();
        for name in orphans {
            if self.protected(name) {
                self.plan.protected += 1;
                continue;
            }
            let (action, detail) = if self.policy.disable_unmanaged {
                (
                    Action::Disable,
                    "enabled, never managed by usersync, and no user of any connector accounts \
                     for it: disabled (never deleted)",
                )
            } else if self.policy.prov.orphans == Orphans::Disable {
                (
                    Action::Report,
                    "enabled and never managed by usersync; not disabled: not every connector \
                     has orphans = \"disable\"",
                )
            } else {
                (
                    Action::Report,
                    "enabled and never managed by usersync (orphans = \"report\")",
                )
            };
            let i = self.item(
                DriftClass::OrphanUnmanaged,
                name,
                None,
                action,
                detail.to_owned(),
            );
            if action == Action::Disable {
                self.plan.items[i].disables = true;
                self.plan.direct.push((
                    Direct::Disable {
                        username: name.clone(),
                    },
                    i,
                ));
            }
        }
        self.plan
    }
}

#[cfg(test)]
mod tests;
