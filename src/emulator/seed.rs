//! The seed document: users, groups, licence seats and Linchpin fields/values an emulator
//! starts with (from `--seed FILE`, [`EmulatorConfig::seed`](super::EmulatorConfig) or the
//! body of `POST /__emulator/reset`). Seeds bypass Confluence's validation rules on purpose:
//! a test may need an LDAP user with an odd name.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use super::config::EmulatorConfig;
use super::lup::{self, DataSource, LupField, LupValue, MirrorField, ValueSource};
use super::model::{digest, Directory, UserDetails, UserRecord};
use super::state::{DomainError, State};

/// A seed document (see `docs/emulator.md` for an example).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Seed {
    /// Users to create (besides the configured admin).
    pub users: Vec<SeedUser>,
    /// Extra groups (`confluence-users` and `confluence-administrators` always exist).
    pub groups: Vec<String>,
    /// Licence seats; absent means unlimited.
    pub licence_seats: Option<u32>,
    /// Linchpin fields; absent means the six defaults.
    pub lup_fields: Option<Vec<SeedLupField>>,
    /// username → field (label or business key) → value.
    pub lup_values: BTreeMap<String, BTreeMap<String, LupValue>>,
}

/// One seeded user. Only `username` is required.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeedUser {
    /// Username (stored lower case).
    pub username: String,
    /// Display name; default: the username.
    #[serde(default)]
    pub full_name: Option<String>,
    /// E-mail; default `<username>@example.org`.
    #[serde(default)]
    pub email: Option<String>,
    /// Basic-auth password.
    #[serde(default)]
    pub password: Option<String>,
    /// Personal access token (Bearer).
    #[serde(default)]
    pub pat: Option<String>,
    /// Confluence administrator.
    #[serde(default)]
    pub admin: bool,
    /// System administrator (implies administrator).
    #[serde(default)]
    pub sysadmin: bool,
    /// Active (default true).
    #[serde(default = "default_true")]
    pub active: bool,
    /// `internal` (default) or `ldap-readonly`.
    #[serde(default)]
    pub directory: Directory,
    /// Groups (created when missing).
    #[serde(default)]
    pub groups: Vec<String>,
    /// Fixed user key; default: generated.
    #[serde(default)]
    pub user_key: Option<String>,
}

fn default_true() -> bool {
    true
}

fn default_field_type() -> String {
    "TEXT".to_owned()
}

/// One seeded Linchpin field. Only `label` is required.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeedLupField {
    /// Label; also the default XML node (slugged) and business key.
    pub label: String,
    /// Field type (default `TEXT`; `MULTISELECT` makes it multi-valued).
    #[serde(default = "default_field_type")]
    pub field_type: String,
    /// `USER` (default), `LDAP`, `XML` or `IDP`.
    #[serde(default)]
    pub data_source_type: DataSource,
    /// Source URL shown for XML fields.
    #[serde(default)]
    pub data_source_url: Option<String>,
    /// Primary key; default: next free.
    #[serde(default, alias = "userFieldPK")]
    pub pk: Option<u64>,
    /// XML element name; default: slug of the label.
    #[serde(default)]
    pub xml_node: Option<String>,
    /// Section label (default `General`).
    #[serde(default)]
    pub category: Option<String>,
    /// Hidden from the profile.
    #[serde(default)]
    pub hidden: bool,
    /// Choices of select fields.
    #[serde(default)]
    pub options: Vec<String>,
    /// Mirrored Confluence field; default: detected from the label (Phone, IM, Website,
    /// Position, Department, Location).
    #[serde(default)]
    pub confluence_field: Option<MirrorField>,
}

/// A seed that cannot be applied.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SeedError {
    /// A user or group entry broke a rule (duplicate username, …).
    #[error("seed entry {entry}: {reason}")]
    Entry {
        /// Which entry.
        entry: String,
        /// Why.
        reason: String,
    },
}

impl SeedError {
    fn entry(entry: impl Into<String>, reason: impl ToString) -> Self {
        Self::Entry {
            entry: entry.into(),
            reason: reason.to_string(),
        }
    }
}

/// Builds the state an emulator starts (or resets) with: the admin, then the seed.
pub(crate) fn initial_state(
    config: &EmulatorConfig,
    seed: Option<&Seed>,
    rng: &mut StdRng,
) -> Result<State, SeedError> {
    let mut state = State::new();
    let admin = SeedUser {
        username: config.admin_username.clone(),
        full_name: Some("Administrator".to_owned()),
        email: Some(format!("{}@example.org", config.admin_username)),
        password: config.admin_password.clone(),
        pat: Some(config.admin_token.clone()),
        admin: true,
        sysadmin: true,
        active: true,
        directory: Directory::Internal,
        groups: vec!["confluence-administrators".to_owned()],
        user_key: None,
    };
    add_user(&mut state, &admin, rng)?;
    let Some(seed) = seed else {
        return Ok(state);
    };
    for group in &seed.groups {
        if state.group_name(group).is_none() {
            state
                .create_group(group)
                .map_err(|e| SeedError::entry(format!("group {group}"), e))?;
        }
    }
    if let Some(fields) = &seed.lup_fields {
        state.lup.fields = build_fields(fields)?;
    }
    for user in &seed.users {
        add_user(&mut state, user, rng)?;
    }
    for (username, values) in &seed.lup_values {
        for (field, value) in values {
            set_value(&mut state, username, field, value.clone())?;
        }
    }
    Ok(state)
}

/// Adds one seeded user to live state (also `POST /__emulator/users`).
pub(crate) fn add_user(
    state: &mut State,
    user: &SeedUser,
    rng: &mut StdRng,
) -> Result<(), SeedError> {
    let entry = || format!("user {}", user.username);
    if user.username.trim().is_empty() {
        return Err(SeedError::entry(entry(), "username is blank"));
    }
    let user_key = match &user.user_key {
        Some(key) if state.user_by_key(key).is_some() => {
            return Err(SeedError::entry(entry(), "user key already in use"));
        }
        Some(key) => key.clone(),
        None => state.new_user_key(rng),
    };
    let username = user.username.to_lowercase();
    let record = UserRecord {
        user_key,
        username: username.clone(),
        full_name: user.full_name.clone().unwrap_or_else(|| username.clone()),
        email: user
            .email
            .clone()
            .unwrap_or_else(|| format!("{username}@example.org")),
        active: user.active,
        password_hash: user.password.as_deref().map(digest),
        admin: user.admin || user.sysadmin,
        sysadmin: user.sysadmin,
        directory: user.directory,
        details: UserDetails::default(),
    };
    state
        .insert_user(record)
        .map_err(|e| SeedError::entry(entry(), e))?;
    if let Some(pat) = &user.pat {
        state.add_pat(pat, &username);
    }
    for group in &user.groups {
        if state.group_name(group).is_none() {
            state
                .create_group(group)
                .map_err(|e| SeedError::entry(entry(), e))?;
        }
        state
            .add_member(&username, group)
            .map_err(|e| SeedError::entry(entry(), e))?;
    }
    Ok(())
}

/// Turns seeded field entries into fields with keys, categories and mirrors filled in.
fn build_fields(seeded: &[SeedLupField]) -> Result<Vec<LupField>, SeedError> {
    let mut fields: Vec<LupField> = Vec::new();
    let mut categories: Vec<String> = Vec::new();
    let mut next_pk = seeded.iter().filter_map(|f| f.pk).max().unwrap_or(0) + 1;
    for f in seeded {
        let pk = match f.pk {
            Some(pk) => pk,
            None => {
                next_pk += 1;
                next_pk - 1
            }
        };
        if fields.iter().any(|g| g.user_field_pk == pk) {
            return Err(SeedError::entry(
                format!("lup field {}", f.label),
                "duplicate userFieldPK",
            ));
        }
        let category = f.category.clone().unwrap_or_else(|| "General".to_owned());
        let category_pk = match categories.iter().position(|c| *c == category) {
            Some(i) => i,
            None => {
                categories.push(category.clone());
                categories.len() - 1
            }
        } as u64
            + 1;
        let position = fields.iter().filter(|g| g.category == category).count() as u32;
        let mirror = f.confluence_field.or_else(|| mirror_for_label(&f.label));
        let mut field = lup::make_field(
            pk,
            &f.label,
            &f.field_type,
            f.data_source_type,
            (category_pk, &category),
            position,
            mirror,
        );
        field.data_source_url = f.data_source_url.clone();
        field.hidden = f.hidden;
        field.options = f.options.clone();
        if let Some(node) = &f.xml_node {
            field.xml_node = node.clone();
        }
        fields.push(field);
    }
    Ok(fields)
}

/// The six fields Linchpin mirrors with Confluence's own, recognised by label.
fn mirror_for_label(label: &str) -> Option<MirrorField> {
    match label.trim().to_lowercase().as_str() {
        "phone" => Some(MirrorField::Phone),
        "im" | "instant messaging" => Some(MirrorField::Im),
        "website" => Some(MirrorField::Website),
        "position" => Some(MirrorField::Position),
        "department" => Some(MirrorField::Department),
        "location" => Some(MirrorField::Location),
        _ => None,
    }
}

fn set_value(
    state: &mut State,
    username: &str,
    field: &str,
    value: LupValue,
) -> Result<(), SeedError> {
    let entry = || format!("lup value {username}/{field}");
    let pk = state
        .lup
        .fields
        .iter()
        .find(|f| f.label.eq_ignore_ascii_case(field) || f.user_field_bk == field)
        .map(|f| f.user_field_pk)
        .ok_or_else(|| SeedError::entry(entry(), "no such field"))?;
    state
        .set_lup_value(username, pk, value, false, ValueSource::Seed)
        .map_err(|e: DomainError| SeedError::entry(entry(), e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn a_seed_document_parses_with_only_usernames() {
        let seed: Seed = serde_json::from_str(
            r#"{"users":[{"username":"jdoe","groups":["confluence-users"]}],"licence_seats":5}"#,
        )
        .expect("parses");
        let config = EmulatorConfig::new("t");
        let state =
            initial_state(&config, Some(&seed), &mut StdRng::seed_from_u64(1)).expect("applies");
        assert_eq!(state.groups_of("jdoe"), vec!["confluence-users".to_owned()]);
        assert!(state.user("admin").is_some_and(|a| a.sysadmin));
    }

    #[test]
    fn seeded_fields_get_keys_nodes_and_mirrors() {
        let fields = build_fields(&[
            SeedLupField {
                label: "Cost Centre".to_owned(),
                field_type: "TEXT".to_owned(),
                data_source_type: DataSource::Idp,
                data_source_url: None,
                pk: None,
                xml_node: None,
                category: None,
                hidden: false,
                options: vec![],
                confluence_field: None,
            },
            SeedLupField {
                label: "Phone".to_owned(),
                pk: Some(9),
                ..serde_json::from_str(r#"{"label":"x"}"#).expect("parses")
            },
        ])
        .expect("built");
        assert_eq!(fields[0].user_field_bk, "cup.cost-centre-10");
        assert_eq!(fields[0].xml_node, "cost-centre");
        assert_eq!(fields[1].confluence_field, Some(MirrorField::Phone));
    }

    #[test]
    fn a_duplicate_seed_user_is_an_error() {
        let seed = Seed {
            users: vec![serde_json::from_str(r#"{"username":"admin"}"#).expect("parses")],
            ..Seed::default()
        };
        let config = EmulatorConfig::new("t");
        assert!(initial_state(&config, Some(&seed), &mut StdRng::seed_from_u64(1)).is_err());
    }
}
