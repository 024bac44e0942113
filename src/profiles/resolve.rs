//! From stored users to profiles: the Confluence username (identity link, else the username
//! rule) and the manager looked up by the key the connector configured, in batches (one query
//! per page of users, not one per user) with a cache across pages, so a 100,000-user feed
//! costs a few hundred queries.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::{pool, ConnectorProfiles};
use crate::mapping::{manager_ref, ManagerKey, ManagerLookup, MappingError, Profile};
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

/// The Confluence username of a stored user: its identity link's, else the username rule's.
fn username_of(profiles: &ConnectorProfiles, row: &ProfileRow) -> Result<String, MappingError> {
    match &row.linked_username {
        Some(u) => Ok(u.clone()),
        None => profiles.mapping.username(&row.doc),
    }
}

/// The pure part of [`Resolver::resolve`]: the mapping of each row.
fn map_rows(
    profiles: &ConnectorProfiles,
    rows: &[ProfileRow],
    lookups: Vec<ManagerLookup>,
    trace: bool,
) -> Vec<Resolved> {
    rows.iter()
        .zip(lookups)
        .map(|(row, manager)| {
            let username = match username_of(profiles, row) {
                Ok(u) => u,
                Err(e) => return Resolved::Unmapped(e),
            };
            match profiles
                .mapping
                .profile(&row.doc, &username, &manager, trace)
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
        reason: e.to_string(),
    }
}

/// Cache entries beyond which the manager cache starts afresh (bounds the feed's memory for
/// connectors where nearly everyone is somebody's manager).
const CACHE_MAX: usize = 200_000;

/// Resolves users of one connector. Owns what it uses, so a streamed feed can carry it.
pub struct Resolver {
    store: Store,
    connector: String,
    profiles: Arc<ConnectorProfiles>,
    cache: HashMap<String, ManagerLookup>,
    trace: bool,
}

fn normalise(key: ManagerKey, value: &str) -> String {
    match key {
        ManagerKey::UserName => crate::scim::identifier::fold(value.trim()),
        _ => value.trim().to_owned(),
    }
}

fn own_key(key: ManagerKey, row: &ProfileRow) -> Option<String> {
    let raw = match key {
        ManagerKey::Id => Some(row.id.as_str()),
        ManagerKey::ExternalId => row.external_id.as_deref(),
        ManagerKey::EmployeeNumber => row.employee_number.as_deref(),
        ManagerKey::UserName => Some(row.user_name.as_str()),
    };
    raw.map(|v| normalise(key, v))
}

impl Resolver {
    /// A resolver for `connector` with its compiled mapping.
    pub fn new(store: Store, connector: &str, profiles: Arc<ConnectorProfiles>) -> Self {
        Self {
            store,
            connector: connector.to_owned(),
            profiles,
            cache: HashMap::new(),
            trace: false,
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
    pub fn profiles(&self) -> &Arc<ConnectorProfiles> {
        &self.profiles
    }

    /// Keeps each field's source values (`mapping preview`).
    pub fn tracing(mut self) -> Self {
        self.trace = true;
        self
    }

    /// The Confluence username of a stored user.
    pub fn username(&self, row: &ProfileRow) -> Result<String, MappingError> {
        username_of(&self.profiles, row)
    }

    /// What the user's manager reference resolves to.
    pub async fn manager(&mut self, row: &ProfileRow) -> StoreResult<ManagerLookup> {
        self.fill(std::slice::from_ref(row)).await?;
        Ok(self.lookup(row))
    }

    /// The profiles of `rows`, in order. A mapping that runs scripts is computed on the
    /// script threads (`profiles/pool.rs`), so a script running to its deadline for every
    /// user of a page stalls no request.
    pub async fn resolve(&mut self, rows: &[ProfileRow]) -> StoreResult<Vec<Resolved>> {
        self.fill(rows).await?;
        let lookups: Vec<ManagerLookup> = rows.iter().map(|r| self.lookup(r)).collect();
        let (profiles, trace) = (self.profiles.clone(), self.trace);
        if !profiles.mapping.uses_scripts() {
            return Ok(map_rows(&profiles, rows, lookups, trace));
        }
        let owned = rows.to_vec();
        let n = owned.len();
        Ok(
            pool::map(true, move || map_rows(&profiles, &owned, lookups, trace))
                .await
                .unwrap_or_else(|e| vec![Resolved::Unmapped(pool_failure(e)); n]),
        )
    }

    fn lookup(&self, row: &ProfileRow) -> ManagerLookup {
        let key = self.profiles.mapping.manager().refers_to;
        let Some(reference) = manager_ref(&row.doc).map(|r| normalise(key, &r)) else {
            return ManagerLookup::NoReference;
        };
        if own_key(key, row).as_deref() == Some(reference.as_str()) {
            return ManagerLookup::OwnSelf;
        }
        self.cache
            .get(&reference)
            .cloned()
            .unwrap_or(ManagerLookup::Missing)
    }

    /// Looks up, in one query per chunk, the managers of `rows` not cached yet.
    async fn fill(&mut self, rows: &[ProfileRow]) -> StoreResult<()> {
        let key = self.profiles.mapping.manager().refers_to;
        let wanted: Vec<String> = rows
            .iter()
            .filter_map(|r| manager_ref(&r.doc))
            .map(|r| normalise(key, &r))
            .filter(|r| !self.cache.contains_key(r))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        if self.cache.len() + wanted.len() > CACHE_MAX {
            self.cache.clear();
        }
        // Several users may share a key (two accounts with one employee number): the oldest
        // wins, deterministically.
        let found = self
            .store
            .users_by_key(&self.connector, key, &wanted)
            .await?;
        // Their usernames (the username rule may be a script: on the script threads then).
        let profiles = self.profiles.clone();
        let scripted = profiles.mapping.uses_scripts();
        let named = pool::map(scripted, move || {
            found
                .into_iter()
                .map(|m| {
                    let name = username_of(&profiles, &m);
                    (m, name)
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        for (m, name) in named {
            let Some(k) = own_key(key, &m) else { continue };
            if self.cache.contains_key(&k) {
                continue;
            }
            let lookup = match name {
                Ok(username) => ManagerLookup::Found {
                    username,
                    active: crate::mapping::active(&m.doc),
                },
                Err(_) => ManagerLookup::Unmappable,
            };
            self.cache.insert(k, lookup);
        }
        let missing: Vec<String> = wanted
            .into_iter()
            .filter(|w| !self.cache.contains_key(w))
            .collect();
        if key == ManagerKey::Id && !missing.is_empty() {
            for (id, username) in self
                .store
                .linked_usernames(&self.connector, &missing)
                .await?
            {
                self.cache.insert(id, ManagerLookup::Deleted { username });
            }
        }
        for m in missing {
            self.cache.entry(m).or_insert(ManagerLookup::Missing);
        }
        Ok(())
    }
}
