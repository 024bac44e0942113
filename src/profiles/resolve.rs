//! From stored users to profiles: the Confluence username (identity link, else the username
//! rule) and the manager looked up by the keys the connector's mapping allows, in batches (a
//! few queries per page of users, not per user) with a cache across pages, so a 100,000-user
//! feed costs a few hundred queries.
//!
//! How a reference is matched (docs/mapping.md "Manager resolution"):
//!
//! * with `refers_to` set, by that key only;
//! * without, by our SCIM `id` first (an id we issued names one user: Entra's case), then by
//!   `externalId`, `employeeNumber`, `userName` and e-mail together.
//!
//! Either way a reference is used only when exactly one user matches; two users sharing the
//! value leave it unresolved ([`ManagerLookup::Ambiguous`]), never guessed. Unresolved
//! references are counted ([`ManagerStats`]) and warned about once per user and reference
//! ([`ProfileTargets::note_unresolved`]).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::{pool, ProfileTargets};
use crate::mapping::manager::after_end;
use crate::mapping::{ManagerKey, ManagerLookup, MappingError, Profile};
use crate::scim::enterprise::manager_ref;
use crate::store::profiles::ProfileRow;
use crate::store::{Store, StoreResult};

/// What became of one user.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved {
    /// The mapped profile.
    Profile(Profile),
    /// A rule with `on_missing = "skip"` yielded nothing: the user is left out.
    Skipped {
        /// That rule's field.
        field: String,
    },
    /// No Confluence username can be derived (the user never reaches Confluence either).
    Unmapped(MappingError),
}

/// How the managers of the users resolved so far fared (`check-config`, the feed's log line).
/// Counts only: the values are personal data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManagerStats {
    /// Users looked at.
    pub users: usize,
    /// Users whose `manager.value` is set.
    pub with_reference: usize,
    /// Resolved to exactly one user, by the key that matched ([`ManagerKey::ALL`] order).
    pub found_by: [usize; 5],
    /// Named a deleted user whose identity link kept the username.
    pub deleted: usize,
    /// Named no user (yet).
    pub not_found: usize,
    /// Named several users.
    pub ambiguous: usize,
    /// Named themselves.
    pub own_self: usize,
    /// Named a user without a valid Confluence username.
    pub unmappable: usize,
}

impl ManagerStats {
    /// Counts one lookup.
    pub fn add(&mut self, lookup: &ManagerLookup) {
        self.users += 1;
        if !matches!(lookup, ManagerLookup::NoReference) {
            self.with_reference += 1;
        }
        match lookup {
            ManagerLookup::NoReference => {}
            ManagerLookup::OwnSelf => self.own_self += 1,
            ManagerLookup::Found { by, .. } => {
                if let Some(i) = ManagerKey::ALL.iter().position(|k| k == by) {
                    self.found_by[i] += 1;
                }
            }
            ManagerLookup::Deleted { .. } => self.deleted += 1,
            ManagerLookup::Missing => self.not_found += 1,
            ManagerLookup::Ambiguous { .. } => self.ambiguous += 1,
            ManagerLookup::Unmappable => self.unmappable += 1,
        }
    }

    /// References that resolved to one user.
    pub fn found(&self) -> usize {
        self.found_by.iter().sum()
    }

    /// References that resolved to no single user.
    pub fn unresolved(&self) -> usize {
        self.not_found + self.ambiguous
    }

    /// One line for the operator: `12 name a manager: 10 resolved (8 by employeeNumber, 2
    /// by id), 1 not found, 1 ambiguous`.
    pub fn summary(&self) -> String {
        let by: Vec<String> = ManagerKey::ALL
            .iter()
            .zip(self.found_by)
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| format!("{n} by {}", k.as_str()))
            .collect();
        let mut parts = vec![format!(
            "{} resolved{}",
            self.found(),
            if by.is_empty() {
                String::new()
            } else {
                format!(" ({})", by.join(", "))
            }
        )];
        for (n, what) in [
            (self.not_found, "not found"),
            (self.ambiguous, "ambiguous (several users match)"),
            (self.deleted, "deleted"),
            (self.own_self, "naming themselves"),
            (self.unmappable, "without a valid Confluence username"),
        ] {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        }
        format!(
            "{} of {} users name a manager: {}",
            self.with_reference,
            self.users,
            parts.join(", ")
        )
    }
}

/// Cache entries beyond which the manager cache starts afresh (bounds the feed's memory for
/// connectors where nearly everyone is somebody's manager).
const CACHE_MAX: usize = 200_000;

/// What the cache holds for one reference (trimmed, as sent).
#[derive(Debug, Clone)]
enum Entry {
    /// Exactly one user matches: its SCIM id (to tell a self-reference or a cycle), the
    /// lookup ([`ManagerLookup::Found`] or [`ManagerLookup::Unmappable`]) and that user's own
    /// `manager.value`, the next line of a chain (docs/mapping.md "Lines of managers").
    One {
        id: String,
        lookup: ManagerLookup,
        next: Option<String>,
    },
    /// No user matches, but an identity link kept the username of the id.
    Deleted { username: String },
    /// No user matches.
    Missing,
    /// Several users match.
    Ambiguous { users: usize, keys: Vec<ManagerKey> },
}

/// The Confluence username of a stored user: its identity link's, else the username rule's.
fn username_of(targets: &ProfileTargets, row: &ProfileRow) -> Result<String, MappingError> {
    match &row.linked_username {
        Some(u) => Ok(u.clone()),
        None => targets.mapping.username(&row.doc),
    }
}

/// The pure part of [`Resolver::resolve`]: the mapping of each row.
fn map_rows(
    targets: &ProfileTargets,
    rows: &[ProfileRow],
    chains: Vec<Vec<ManagerLookup>>,
    trace: bool,
) -> Vec<Resolved> {
    rows.iter()
        .zip(chains)
        .map(|(row, managers)| {
            let username = match username_of(targets, row) {
                Ok(u) => u,
                Err(e) => return Resolved::Unmapped(e),
            };
            match targets
                .mapping
                .profile(&row.doc, &username, &managers, trace)
            {
                Ok(p) => Resolved::Profile(p),
                Err(s) => Resolved::Skipped { field: s.field },
            }
        })
        .collect()
}

/// A mapping that could not run at all (a bug: it panicked), reported per user.
fn pool_failure(e: pool::PoolError) -> MappingError {
    MappingError::Rule {
        rule: "mapping",
        reason: crate::mapping::TransformError::Script(e.to_string()),
    }
}

/// Resolves users of one connector. Owns what it uses, so a streamed feed can carry it.
pub struct Resolver {
    store: Store,
    connector: String,
    targets: Arc<ProfileTargets>,
    cache: HashMap<String, Entry>,
    trace: bool,
    stats: ManagerStats,
}

impl Resolver {
    /// A resolver for `connector` with its compiled mapping.
    pub fn new(store: Store, connector: &str, targets: Arc<ProfileTargets>) -> Self {
        Self {
            store,
            connector: connector.to_owned(),
            targets,
            cache: HashMap::new(),
            trace: false,
            stats: ManagerStats::default(),
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The connector.
    pub fn connector(&self) -> &str {
        &self.connector
    }

    /// The connector's profile targets.
    pub fn targets(&self) -> &Arc<ProfileTargets> {
        &self.targets
    }

    /// Keeps each field's source values (`mapping preview`). A tracing resolver does not
    /// warn in the log: the preview prints the reason to the terminal.
    pub fn tracing(mut self) -> Self {
        self.trace = true;
        self
    }

    /// How the managers of every user resolved so far fared.
    pub fn stats(&self) -> &ManagerStats {
        &self.stats
    }

    /// The Confluence username of a stored user.
    pub fn username(&self, row: &ProfileRow) -> Result<String, MappingError> {
        username_of(&self.targets, row)
    }

    /// What the user's manager reference resolves to (not counted in [`Resolver::stats`]).
    pub async fn manager(&mut self, row: &ProfileRow) -> StoreResult<ManagerLookup> {
        self.fill(std::slice::from_ref(row)).await?;
        Ok(self.lookup(row))
    }

    /// Resolves the managers of `rows` and counts them in [`Resolver::stats`], without mapping
    /// profiles or warning (`check-config`).
    pub async fn tally(&mut self, rows: &[ProfileRow]) -> StoreResult<()> {
        self.fill(rows).await?;
        for row in rows {
            let lookup = self.lookup(row);
            self.stats.add(&lookup);
        }
        Ok(())
    }

    /// The profiles of `rows`, in order. A mapping that runs scripts is computed on the
    /// script threads (`profiles/pool.rs`), so a script running to its deadline for every
    /// user of a page stalls no request.
    pub async fn resolve(&mut self, rows: &[ProfileRow]) -> StoreResult<Vec<Resolved>> {
        self.fill(rows).await?;
        let depth = self.targets.mapping.manager_depth();
        let mut chains = Vec::with_capacity(rows.len());
        for row in rows {
            let chain = self.chain(row, depth);
            let manager = &chain[0];
            self.stats.add(manager);
            if !self.trace && manager.is_unresolved() {
                if let Some(reference) = manager_ref(&row.doc) {
                    self.targets
                        .note_unresolved(&self.connector, &row.id, &reference, manager);
                }
            }
            chains.push(chain);
        }
        let (targets, trace) = (self.targets.clone(), self.trace);
        if !targets.mapping.uses_scripts() {
            return Ok(map_rows(&targets, rows, chains, trace));
        }
        let owned = rows.to_vec();
        let n = owned.len();
        Ok(
            pool::map(true, move || map_rows(&targets, &owned, chains, trace))
                .await
                .unwrap_or_else(|e| vec![Resolved::Unmapped(pool_failure(e)); n]),
        )
    }

    fn lookup(&self, row: &ProfileRow) -> ManagerLookup {
        match manager_ref(&row.doc) {
            Some(reference) => self.lookup_ref(&reference, &[row.id.as_str()]),
            None => ManagerLookup::NoReference,
        }
    }

    /// The user's lines of managers, `depth` long: `[0]` is [`Resolver::lookup`], each next
    /// line the lookup of the previous manager's own reference. A line that comes back to the
    /// user or to a manager already in the chain reads as [`ManagerLookup::OwnSelf`] (no
    /// manager), so a cycle in the IdP's data ends the chain instead of repeating it.
    fn chain(&self, row: &ProfileRow, depth: u8) -> Vec<ManagerLookup> {
        let mut chain = vec![self.lookup(row)];
        let mut seen: Vec<&str> = vec![row.id.as_str()];
        let mut reference = manager_ref(&row.doc);
        while chain.len() < usize::from(depth) {
            let previous = chain.last().cloned().unwrap_or(ManagerLookup::NoReference);
            let next = match reference.as_ref().map(|r| self.cache.get(r)) {
                Some(Some(Entry::One { id, next, .. }))
                    if matches!(
                        previous,
                        ManagerLookup::Found { .. } | ManagerLookup::Unmappable
                    ) =>
                {
                    seen.push(id);
                    next.clone()
                }
                _ => None,
            };
            chain.push(match &next {
                Some(r) => self.lookup_ref(r, &seen),
                None => after_end(&previous),
            });
            reference = next;
        }
        chain
    }

    /// What `reference` resolves to, where `own` are the ids that count as the user themself
    /// (the user, and for a chain every manager already in it).
    fn lookup_ref(&self, reference: &str, own: &[&str]) -> ManagerLookup {
        match self.cache.get(reference) {
            None | Some(Entry::Missing) => ManagerLookup::Missing,
            Some(Entry::One { id, .. }) if own.contains(&id.as_str()) => ManagerLookup::OwnSelf,
            Some(Entry::One { lookup, .. }) => lookup.clone(),
            Some(Entry::Deleted { username }) => ManagerLookup::Deleted {
                username: username.clone(),
            },
            Some(Entry::Ambiguous { users, keys }) => ManagerLookup::Ambiguous {
                users: *users,
                keys: keys.clone(),
            },
        }
    }

    /// Looks up the managers of `rows`, and as many lines above them as the mapping reads
    /// ([`crate::mapping::ConnectorMapping::manager_depth`]): one round of queries per line,
    /// for the references not cached yet.
    async fn fill(&mut self, rows: &[ProfileRow]) -> StoreResult<()> {
        let depth = usize::from(self.targets.mapping.manager_depth());
        let mut line: HashSet<String> = rows.iter().filter_map(|r| manager_ref(&r.doc)).collect();
        // Cleared only here, before the first line: a clear between lines would drop the
        // lookups the chains below are made of.
        if self.cache.len() + line.len() * depth > CACHE_MAX {
            self.cache.clear();
        }
        for level in 1..=depth {
            let wanted: Vec<String> = line
                .iter()
                .filter(|r| !self.cache.contains_key(*r))
                .cloned()
                .collect();
            self.fill_refs(wanted).await?;
            if level == depth {
                break;
            }
            line = line
                .iter()
                .filter_map(|r| match self.cache.get(r) {
                    Some(Entry::One { next, .. }) => next.clone(),
                    _ => None,
                })
                .collect();
            if line.is_empty() {
                break;
            }
        }
        Ok(())
    }

    /// Looks up `wanted` references: per key, one query per chunk of references; with every
    /// key allowed, `id` first and the other keys only for the references no id matched.
    async fn fill_refs(&mut self, wanted: Vec<String>) -> StoreResult<()> {
        if wanted.is_empty() {
            return Ok(());
        }
        let keys = self.targets.mapping.manager().keys();
        // Reference → the users it matched, each with the keys that matched them.
        let mut matches: HashMap<String, Vec<(ProfileRow, Vec<ManagerKey>)>> = HashMap::new();
        let mut open: Vec<String> = wanted.clone();
        for &key in keys {
            if open.is_empty() {
                break;
            }
            // What each reference looks like to this key: several references may compare
            // equal (`Ann@x` and `ann@x` for e-mail).
            let mut by_value: HashMap<String, Vec<&String>> = HashMap::new();
            for r in &open {
                by_value.entry(key.normalise(r)).or_default().push(r);
            }
            for m in self
                .store
                .users_matching(&self.connector, key, &open)
                .await?
            {
                for &reference in by_value.get(&m.value).into_iter().flatten() {
                    let users = matches.entry(reference.clone()).or_default();
                    match users.iter_mut().find(|(u, _)| u.id == m.row.id) {
                        Some((_, ks)) if !ks.contains(&key) => ks.push(key),
                        Some(_) => {}
                        None => users.push((m.row.clone(), vec![key])),
                    }
                }
            }
            if key == ManagerKey::Id {
                // An id we issued names one user; nothing else may answer for it.
                open.retain(|r| !matches.contains_key(r));
            }
        }
        // The usernames of the users matched alone (the username rule may be a script: on the
        // script threads then).
        let single: Vec<ProfileRow> = matches
            .values()
            .filter_map(|users| match users.as_slice() {
                [(user, _)] => Some(user.clone()),
                _ => None,
            })
            .collect();
        let targets = self.targets.clone();
        let names: HashMap<String, Result<String, MappingError>> =
            pool::map(targets.mapping.uses_scripts(), move || {
                single
                    .iter()
                    .map(|u| (u.id.clone(), username_of(&targets, u)))
                    .collect()
            })
            .await
            .unwrap_or_default();
        let mut entries: Vec<(String, Entry)> = Vec::with_capacity(wanted.len());
        let mut unmatched = Vec::new();
        for reference in &wanted {
            let entry = match matches.get(reference).map(Vec::as_slice) {
                None | Some([]) => {
                    unmatched.push(reference.clone());
                    continue;
                }
                Some([(user, keys)]) => Entry::One {
                    id: user.id.clone(),
                    next: manager_ref(&user.doc),
                    lookup: match names.get(&user.id) {
                        Some(Ok(username)) => ManagerLookup::Found {
                            username: username.clone(),
                            active: crate::mapping::active(&user.doc),
                            by: keys[0],
                        },
                        _ => ManagerLookup::Unmappable,
                    },
                },
                Some(users) => {
                    let mut all: Vec<ManagerKey> = users
                        .iter()
                        .flat_map(|(_, ks)| ks.iter().copied())
                        .collect();
                    all.sort_by_key(|k| ManagerKey::ALL.iter().position(|a| a == k));
                    all.dedup();
                    Entry::Ambiguous {
                        users: users.len(),
                        keys: all,
                    }
                }
            };
            entries.push((reference.clone(), entry));
        }
        // A manager deleted while referenced by id: the identity link still knows the
        // username (docs/reference/design.md "The manager is a reference").
        if keys.contains(&ManagerKey::Id) && !unmatched.is_empty() {
            for (id, username) in self
                .store
                .linked_usernames(&self.connector, &unmatched)
                .await?
            {
                if let Some(r) = unmatched.iter().find(|r| r.trim() == id) {
                    entries.push((r.clone(), Entry::Deleted { username }));
                }
            }
        }
        self.cache.extend(entries);
        for r in unmatched {
            self.cache.entry(r).or_insert(Entry::Missing);
        }
        Ok(())
    }
}

/// The reference as the log may show it: identifiers (employee numbers, ids, Okta's `00u…`)
/// as they are, anything that looks like personal data (an e-mail address, a name with
/// spaces, a long text) by its shape only (docs/LOGGING.md "Never logged").
pub fn loggable_reference(reference: &str) -> Cow<'_, str> {
    if reference.contains('@') {
        Cow::Owned(format!(
            "(an e-mail address of {} characters, not logged)",
            reference.chars().count()
        ))
    } else if reference.chars().any(char::is_whitespace) || reference.chars().count() > 64 {
        Cow::Owned(format!(
            "(a text of {} characters, not logged)",
            reference.chars().count()
        ))
    } else {
        Cow::Borrowed(reference)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_logged_and_addresses_and_names_are_not() {
        assert_eq!(loggable_reference("E100"), "E100");
        assert_eq!(
            loggable_reference("00u8xk2p4qLmN0abc1d7"),
            "00u8xk2p4qLmN0abc1d7"
        );
        let mail = loggable_reference("max.boss@example.com");
        assert!(!mail.contains("max") && mail.contains("e-mail"), "{mail}");
        let name = loggable_reference("Max Boss");
        assert!(!name.contains("Max"), "{name}");
    }

    #[test]
    fn the_summary_counts_each_outcome() {
        let mut s = ManagerStats::default();
        s.add(&ManagerLookup::NoReference);
        for by in [
            ManagerKey::EmployeeNumber,
            ManagerKey::EmployeeNumber,
            ManagerKey::Id,
        ] {
            s.add(&ManagerLookup::Found {
                username: "m".into(),
                active: true,
                by,
            });
        }
        s.add(&ManagerLookup::Missing);
        s.add(&ManagerLookup::Ambiguous {
            users: 2,
            keys: vec![ManagerKey::EmployeeNumber],
        });
        assert_eq!((s.found(), s.unresolved()), (3, 2));
        assert_eq!(
            s.summary(),
            "5 of 6 users name a manager: 3 resolved (1 by id, 2 by employeeNumber), \
             1 not found, 1 ambiguous (several users match)"
        );
    }
}
