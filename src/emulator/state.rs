//! The emulated Confluence's data and its rules (docs/emulator.md "State model"): users, groups,
//! memberships, long tasks, licence seats and Linchpin values. Pure and synchronous: handlers call
//! these methods under the world lock and map [`DomainError`] to HTTP.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::Rng;

use super::config::Knobs;
use super::lup::{self, LupState, LupValue, StoredValue, ValueSource};
use super::model::{digest, Directory, EmulatedUser, LongTask, TaskKind, UserDetails, UserRecord};
use super::validate;

/// Groups every fresh Confluence has.
pub(crate) const DEFAULT_GROUPS: [&str; 2] = ["confluence-administrators", "confluence-users"];

/// A rule of the emulated Confluence was broken; each maps to one HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DomainError {
    /// 404.
    #[error("No user found with username: {0}")]
    UserNotFound(String),
    /// 404.
    #[error("No group found with name: {0}")]
    GroupNotFound(String),
    /// 409.
    #[error("A user with the username {0} already exists")]
    UserExists(String),
    /// 409.
    #[error("A group with the name {0} already exists")]
    GroupExists(String),
    /// 400 with the field rule's message.
    #[error("{0}")]
    Refused(#[from] validate::Refused),
    /// 400 with another message.
    #[error("{0}")]
    Invalid(String),
    /// 400 **(assumed)**: the user lives in a read-only directory.
    #[error("User {0} belongs to a read-only directory and cannot be modified")]
    ReadOnly(String),
    /// 402.
    #[error("No licence seat left: {used} of {seats} seats are in use")]
    NoSeat { used: u32, seats: u32 },
    /// 400.
    #[error("Cannot delete {0}: it is the last group with administrator permission")]
    LastAdminGroup(String),
}

/// A change made behind usersync's back (`PATCH /__emulator/users/{username}`): only the
/// fields given change.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserEdit {
    /// New display name.
    #[serde(default)]
    pub full_name: Option<String>,
    /// New e-mail address.
    #[serde(default)]
    pub email: Option<String>,
    /// Enable (`true`) or disable (`false`).
    #[serde(default)]
    pub active: Option<bool>,
}

/// Fields of `POST /rest/api/admin/user` after request-level checks.
#[derive(Debug, Clone)]
pub(crate) struct NewUser {
    pub username: String,
    pub full_name: String,
    pub email: String,
    pub password: Option<String>,
}

/// All data of one emulated Confluence + Linchpin.
#[derive(Debug, Clone)]
pub(crate) struct State {
    pub users: BTreeMap<String, UserRecord>,
    /// User key → username: lookups by key (`?key=`, new keys) stay fast with 100,000 users.
    keys: HashMap<String, String>,
    /// PAT digest → username.
    pats: BTreeMap<String, String>,
    /// Lower-case group name → member usernames.
    pub groups: BTreeMap<String, BTreeSet<String>>,
    pub tasks: BTreeMap<u64, LongTask>,
    next_task_id: u64,
    pub lup: LupState,
}

impl Default for State {
    fn default() -> Self {
        Self::new()
    }
}

impl State {
    /// A fresh instance: the two default groups and the default Linchpin fields.
    pub fn new() -> Self {
        Self {
            users: BTreeMap::new(),
            keys: HashMap::new(),
            pats: BTreeMap::new(),
            groups: DEFAULT_GROUPS
                .iter()
                .map(|g| ((*g).to_owned(), BTreeSet::new()))
                .collect(),
            tasks: BTreeMap::new(),
            // Long-task ids in the example of docs/emulator.md are large numbers; start there.
            next_task_id: 7_340_033,
            lup: LupState {
                fields: lup::default_fields(),
                ..LupState::default()
            },
        }
    }

    /// Looks a user up by username; Confluence usernames are case-insensitive.
    pub fn user(&self, username: &str) -> Option<&UserRecord> {
        self.users.get(&username.to_lowercase())
    }

    fn user_mut(&mut self, username: &str) -> Result<&mut UserRecord, DomainError> {
        self.users
            .get_mut(&username.to_lowercase())
            .ok_or_else(|| DomainError::UserNotFound(username.to_owned()))
    }

    /// Looks a user up by user key.
    pub fn user_by_key(&self, key: &str) -> Option<&UserRecord> {
        self.keys.get(key).and_then(|u| self.users.get(u))
    }

    /// Resolves a PAT to its owner.
    pub fn user_for_pat(&self, pat: &str) -> Option<&UserRecord> {
        self.pats.get(&digest(pat)).and_then(|u| self.users.get(u))
    }

    /// Registers a PAT for an existing user.
    pub fn add_pat(&mut self, pat: &str, username: &str) {
        self.pats.insert(digest(pat), username.to_lowercase());
    }

    /// The canonical (lower-case) name of an existing group.
    pub fn group_name(&self, name: &str) -> Option<String> {
        let lower = name.to_lowercase();
        self.groups.contains_key(&lower).then_some(lower)
    }

    /// Groups of a user, sorted.
    pub fn groups_of(&self, username: &str) -> Vec<String> {
        self.groups
            .iter()
            .filter(|(_, members)| members.contains(username))
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Member of a "can use" group.
    pub fn is_licensed(&self, username: &str, knobs: &Knobs) -> bool {
        knobs.can_use_groups.iter().any(|g| {
            self.groups
                .get(&g.to_lowercase())
                .is_some_and(|members| members.contains(username))
        })
    }

    /// Seats in use: active users in a "can use" group (disabled users do not count).
    pub fn used_seats(&self, knobs: &Knobs) -> u32 {
        let used = self
            .users
            .values()
            .filter(|u| u.active && self.is_licensed(&u.username, knobs))
            .count();
        u32::try_from(used).unwrap_or(u32::MAX)
    }

    /// The public view of a user.
    pub fn view(&self, username: &str, knobs: &Knobs) -> Option<EmulatedUser> {
        let u = self.user(username)?;
        Some(EmulatedUser {
            username: u.username.clone(),
            user_key: u.user_key.clone(),
            full_name: u.full_name.clone(),
            email: u.email.clone(),
            active: u.active,
            groups: self.groups_of(&u.username),
            directory: u.directory,
            details: u.details.clone(),
            admin: u.is_admin(),
            sysadmin: u.sysadmin,
            licensed: self.is_licensed(&u.username, knobs),
        })
    }

    /// A fresh, unused 32-hex-character user key.
    pub fn new_user_key(&self, rng: &mut StdRng) -> String {
        loop {
            let key = format!("{:032x}", rng.gen::<u128>());
            if self.user_by_key(&key).is_none() {
                return key;
            }
        }
    }

    /// Stores a user as given (seeds); no licence or validation rules.
    pub fn insert_user(&mut self, mut record: UserRecord) -> Result<(), DomainError> {
        record.username = record.username.to_lowercase();
        if self.users.contains_key(&record.username) {
            return Err(DomainError::UserExists(record.username));
        }
        self.keys
            .insert(record.user_key.clone(), record.username.clone());
        self.users.insert(record.username.clone(), record);
        Ok(())
    }

    /// `POST /rest/api/admin/user`: validation (400), duplicate in any directory (409), then
    /// a free seat (402). Creates an active internal user in no group.
    pub fn create_user(
        &mut self,
        new: NewUser,
        rng: &mut StdRng,
        knobs: &Knobs,
    ) -> Result<String, DomainError> {
        validate::username(&new.username)?;
        validate::full_name(&new.full_name)?;
        validate::email(&new.email)?;
        if self.users.contains_key(&new.username) {
            return Err(DomainError::UserExists(new.username));
        }
        if let Some(seats) = knobs.licence_seats {
            let used = self.used_seats(knobs);
            if used >= seats {
                return Err(DomainError::NoSeat { used, seats });
            }
        }
        let user_key = self.new_user_key(rng);
        let record = UserRecord {
            user_key: user_key.clone(),
            username: new.username,
            full_name: new.full_name,
            email: new.email,
            active: true,
            password_hash: new.password.as_deref().map(digest),
            admin: false,
            sysadmin: false,
            directory: Directory::Internal,
            details: UserDetails::default(),
        };
        self.keys.insert(user_key.clone(), record.username.clone());
        self.users.insert(record.username.clone(), record);
        Ok(user_key)
    }

    fn writable(&mut self, username: &str) -> Result<&mut UserRecord, DomainError> {
        let user = self.user_mut(username)?;
        if user.directory == Directory::LdapReadonly {
            return Err(DomainError::ReadOnly(user.username.clone()));
        }
        Ok(user)
    }

    /// `PUT /rest/api/admin/user/{username}`: full name and/or e-mail.
    pub fn update_user(
        &mut self,
        username: &str,
        full_name: Option<String>,
        email: Option<String>,
    ) -> Result<(), DomainError> {
        // 404 before 400: an unknown user is reported as such whatever the body says.
        self.user_mut(username)?;
        if let Some(name) = &full_name {
            validate::full_name(name)?;
        }
        if let Some(address) = &email {
            validate::email(address)?;
        }
        let user = self.writable(username)?;
        if let Some(name) = full_name {
            user.full_name = name;
        }
        if let Some(address) = email {
            user.email = address;
        }
        Ok(())
    }

    /// Disable/enable; idempotent.
    pub fn set_active(&mut self, username: &str, active: bool) -> Result<(), DomainError> {
        self.writable(username)?.active = active;
        Ok(())
    }

    /// `POST /rest/api/admin/user/{username}/password`.
    pub fn set_password(&mut self, username: &str, password: &str) -> Result<(), DomainError> {
        self.user_mut(username)?;
        if password.trim().is_empty() {
            return Err(DomainError::Invalid(
                "Password should not be blank".to_owned(),
            ));
        }
        self.writable(username)?.password_hash = Some(digest(password));
        Ok(())
    }

    /// `DELETE /rest/api/admin/user/{username}`: starts (or returns the running) delete task.
    pub fn start_delete(
        &mut self,
        username: &str,
        now: Instant,
        delay: Duration,
    ) -> Result<u64, DomainError> {
        let canonical = self.writable(username)?.username.clone();
        let running = self.tasks.values().find(|t| {
            !t.finished
                && t.kind
                    == TaskKind::DeleteUser {
                        username: canonical.clone(),
                    }
        });
        if let Some(task) = running {
            return Ok(task.id);
        }
        let id = self.next_task_id;
        self.next_task_id += 1;
        self.tasks.insert(
            id,
            LongTask {
                id,
                kind: TaskKind::DeleteUser {
                    username: canonical,
                },
                started: now,
                finish_at: now + delay,
                finished: false,
                successful: false,
            },
        );
        self.tick(now);
        Ok(id)
    }

    /// Finishes every task whose time has come. Called on each access to the world, so
    /// deletes complete deterministically without background timers.
    pub fn tick(&mut self, now: Instant) {
        let due: Vec<u64> = self
            .tasks
            .values()
            .filter(|t| !t.finished && t.finish_at <= now)
            .map(|t| t.id)
            .collect();
        for id in due {
            let Some(task) = self.tasks.get_mut(&id) else {
                continue;
            };
            task.finished = true;
            let TaskKind::DeleteUser { username } = task.kind.clone();
            task.successful = self.users.contains_key(&username);
            self.remove_user(&username);
        }
    }

    /// Removes a user with everything attached: PATs, memberships, Linchpin values.
    pub fn remove_user(&mut self, username: &str) {
        let Some(user) = self.users.remove(username) else {
            return;
        };
        self.keys.remove(&user.user_key);
        self.pats.retain(|_, owner| owner != username);
        for members in self.groups.values_mut() {
            members.remove(username);
        }
        self.lup.values.remove(&user.user_key);
    }

    /// Changes an account behind Confluence's REST API, as an administrator in the UI (or a
    /// restore from backup) would: no validation, read-only directories included. For the
    /// control API's drift controls (`PATCH /__emulator/users/{username}`).
    pub fn edit_behind(&mut self, username: &str, edit: &UserEdit) -> Result<(), DomainError> {
        let user = self.user_mut(username)?;
        if let Some(name) = &edit.full_name {
            user.full_name = name.clone();
        }
        if let Some(address) = &edit.email {
            user.email = address.clone();
        }
        if let Some(active) = edit.active {
            user.active = active;
        }
        Ok(())
    }

    /// `POST /rest/api/admin/group`. Names are stored lower case **(assumed)** and are
    /// unique case-insensitively.
    pub fn create_group(&mut self, name: &str) -> Result<String, DomainError> {
        validate::group_name(name)?;
        let lower = name.trim().to_lowercase();
        if self.groups.contains_key(&lower) {
            return Err(DomainError::GroupExists(lower));
        }
        self.groups.insert(lower.clone(), BTreeSet::new());
        Ok(lower)
    }

    /// `DELETE /rest/api/admin/group/{name}`: drops its memberships; the last admin group
    /// cannot go.
    pub fn delete_group(&mut self, name: &str, knobs: &Knobs) -> Result<(), DomainError> {
        let lower = self
            .group_name(name)
            .ok_or_else(|| DomainError::GroupNotFound(name.to_owned()))?;
        let is_admin_group = |g: &str| knobs.admin_groups.iter().any(|a| a.eq_ignore_ascii_case(g));
        if is_admin_group(&lower) {
            let remaining = self.groups.keys().filter(|g| is_admin_group(g)).count();
            if remaining <= 1 {
                return Err(DomainError::LastAdminGroup(lower));
            }
        }
        self.groups.remove(&lower);
        Ok(())
    }

    fn member_target(&self, username: &str, group: &str) -> Result<(String, String), DomainError> {
        let user = self
            .user(username)
            .ok_or_else(|| DomainError::UserNotFound(username.to_owned()))?;
        let group = self
            .group_name(group)
            .ok_or_else(|| DomainError::GroupNotFound(group.to_owned()))?;
        Ok((user.username.clone(), group))
    }

    /// `PUT /rest/api/user/{username}/group/{group}`; idempotent, disabled users allowed.
    pub fn add_member(&mut self, username: &str, group: &str) -> Result<(), DomainError> {
        let (user, group) = self.member_target(username, group)?;
        if let Some(members) = self.groups.get_mut(&group) {
            members.insert(user);
        }
        Ok(())
    }

    /// `DELETE /rest/api/user/{username}/group/{group}`; idempotent.
    pub fn remove_member(&mut self, username: &str, group: &str) -> Result<(), DomainError> {
        let (user, group) = self.member_target(username, group)?;
        if let Some(members) = self.groups.get_mut(&group) {
            members.remove(&user);
        }
        Ok(())
    }

    /// Sets one Linchpin value and mirrors it into the Confluence details when the field is
    /// one of the six mirrored ones and the value changed.
    pub fn set_lup_value(
        &mut self,
        username: &str,
        field_pk: u64,
        value: LupValue,
        read_only: bool,
        source: ValueSource,
    ) -> Result<bool, DomainError> {
        let mirror = self
            .lup
            .fields
            .iter()
            .find(|f| f.user_field_pk == field_pk)
            .map(|f| f.confluence_field)
            .ok_or_else(|| DomainError::Invalid(format!("No profile field {field_pk}")))?;
        let user = self
            .users
            .get_mut(&username.to_lowercase())
            .ok_or_else(|| DomainError::UserNotFound(username.to_owned()))?;
        let values = self.lup.values.entry(user.user_key.clone()).or_default();
        let changed = values.get(&field_pk).map(|v| &v.value) != Some(&value);
        if changed {
            if let Some(target) = mirror {
                lup::mirror(&mut user.details, target, &value);
            }
        }
        values.insert(
            field_pk,
            StoredValue {
                value,
                read_only,
                source,
            },
        );
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn new_user(name: &str) -> NewUser {
        NewUser {
            username: name.to_owned(),
            full_name: "Jane Doe".to_owned(),
            email: "jane@example.org".to_owned(),
            password: Some("secret".to_owned()),
        }
    }

    #[test]
    fn a_created_user_is_active_and_in_no_group() {
        let mut state = State::new();
        let mut rng = StdRng::seed_from_u64(1);
        let key = state
            .create_user(new_user("jdoe"), &mut rng, &Knobs::default())
            .expect("created");
        assert_eq!(key.len(), 32);
        assert!(key.chars().all(|c| c.is_ascii_hexdigit()));
        let view = state.view("jdoe", &Knobs::default()).expect("exists");
        assert!(view.active);
        assert!(view.groups.is_empty());
    }

    #[test]
    fn a_disabled_user_does_not_consume_a_seat() {
        let mut state = State::new();
        let knobs = Knobs::default();
        let mut rng = StdRng::seed_from_u64(1);
        state
            .create_user(new_user("jdoe"), &mut rng, &knobs)
            .expect("created");
        state.add_member("jdoe", "confluence-users").expect("added");
        assert_eq!(state.used_seats(&knobs), 1);
        state.set_active("jdoe", false).expect("disabled");
        assert_eq!(state.used_seats(&knobs), 0);
    }

    #[test]
    fn a_delete_task_removes_the_user_only_when_due() {
        let mut state = State::new();
        let mut rng = StdRng::seed_from_u64(1);
        state
            .create_user(new_user("jdoe"), &mut rng, &Knobs::default())
            .expect("created");
        state.add_member("jdoe", "confluence-users").expect("added");
        let start = Instant::now();
        let id = state
            .start_delete("jdoe", start, Duration::from_millis(100))
            .expect("started");
        assert!(state.user("jdoe").is_some());
        state.tick(start + Duration::from_millis(100));
        assert!(state.user("jdoe").is_none());
        assert!(state.groups["confluence-users"].is_empty());
        assert!(state.tasks[&id].successful);
    }

    #[test]
    fn the_last_admin_group_cannot_be_deleted() {
        let mut state = State::new();
        let err = state
            .delete_group("Confluence-Administrators", &Knobs::default())
            .expect_err("refused");
        assert!(matches!(err, DomainError::LastAdminGroup(_)));
    }
}
