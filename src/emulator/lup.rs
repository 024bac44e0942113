//! Linchpin User Profiles: field definitions, per-user values, the Confluence mirror, and
//! the two documented read endpoints (L1 fields, L2 profile; docs/reference/confluence-api.md §2.1
//! and docs/emulator.md "Endpoints").
//!
//! Linchpin has no documented write API (docs/reference/confluence-api.md §2.1), so values only
//! arrive through the XML import job ([`super::xml_import`]) or a seed; nothing here invents a
//! write URL.

use std::collections::BTreeMap;
use std::str::FromStr;

use axum::extract::Path;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::auth::Need;
use super::errors::ApiError;
use super::extract::{ApiQuery, Ctx};
use super::model::UserDetails;
use super::xml_import::ImportReport;

/// Where a field's values come from (`dataSourceType`, the "Source" in the Profile Editor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum DataSource {
    /// Entered by the user.
    #[default]
    User,
    /// Filled by the LDAP sync.
    Ldap,
    /// Filled by the XML import job.
    Xml,
    /// Filled by resolution User Sync (LUP 2.21+).
    Idp,
}

impl FromStr for DataSource {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "USER" => Ok(Self::User),
            "LDAP" => Ok(Self::Ldap),
            "XML" => Ok(Self::Xml),
            "IDP" => Ok(Self::Idp),
            _ => Err(format!(
                "unknown dataSource {s:?}: expected IDP, XML, LDAP or USER"
            )),
        }
    }
}

/// The built-in Confluence profile field a LUP field mirrors (docs/reference/confluence-api.md
/// §2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MirrorField {
    /// Phone.
    Phone,
    /// Instant messaging.
    Im,
    /// Website.
    Website,
    /// Position.
    Position,
    /// Department.
    Department,
    /// Location.
    Location,
}

/// One configured profile field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LupField {
    /// Numeric primary key (`userFieldPK`).
    pub user_field_pk: u64,
    /// Business key `cup.<slug>-<pk>` (`userFieldBK`).
    pub user_field_bk: String,
    /// Label.
    pub label: String,
    /// Field type. Only `CASCADE` is a confirmed literal; `TEXT`, `MULTISELECT` and
    /// `USERSELECT` are placeholders **\[gap\]**.
    pub field_type: String,
    /// Source of the values.
    pub data_source_type: DataSource,
    /// Source URL of an XML field.
    pub data_source_url: Option<String>,
    /// Section key.
    pub category_pk: u64,
    /// Section label.
    pub category: String,
    /// Order inside the section.
    pub position: u32,
    /// Hidden from the profile.
    pub hidden: bool,
    /// Choices of select fields.
    pub options: Vec<String>,
    /// Element name matched by the XML import (default: slug of the label).
    pub xml_node: String,
    /// Built-in Confluence field this field is copied into.
    pub confluence_field: Option<MirrorField>,
}

impl LupField {
    /// Multi-valued fields hold a list; the XML import splits their text on the delimiter.
    pub fn is_multi(&self) -> bool {
        self.field_type.to_ascii_uppercase().contains("MULTI")
    }

    /// The docs/reference/confluence-api.md §2.1 JSON shape of `GET /rest/cup/1.0/fields`.
    fn to_json(&self) -> Value {
        let options: Vec<Value> = self
            .options
            .iter()
            .enumerate()
            .map(|(i, label)| {
                json!({
                    "fieldOptionPK": self.user_field_pk * 100 + i as u64 + 1,
                    "labelKey": label,
                    "localizedLabelKey": label,
                    "optionPosition": i,
                })
            })
            .collect();
        let mut field = json!({
            "userFieldPK": self.user_field_pk,
            "userFieldBK": self.user_field_bk,
            "labelPropertyKey": self.label,
            "localizedLabel": self.label,
            "fieldType": self.field_type,
            "dataSourceType": self.data_source_type,
            "ldapField": self.data_source_type == DataSource::Ldap,
            "confluenceCUPField": self.confluence_field.is_some(),
            "fieldCategoryPK": self.category_pk,
            "localizedFieldCategoryLabel": self.category,
            "position": self.position,
            "hidden": self.hidden,
            "inVCard": false,
            "options": options,
        });
        if let (Some(url), Some(obj)) = (&self.data_source_url, field.as_object_mut()) {
            obj.insert("dataSourceUrl".to_owned(), json!(url));
        }
        field
    }
}

/// A field value: one string, or a list for multi-valued fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LupValue {
    /// Single value (user-select fields hold a Confluence username **(assumed)**).
    Single(String),
    /// Multi-select values.
    Multi(Vec<String>),
}

impl LupValue {
    /// The value as one string (multi values joined with ", "), as mirrored to Confluence.
    pub fn joined(&self) -> String {
        match self {
            Self::Single(v) => v.clone(),
            Self::Multi(vs) => vs.join(", "),
        }
    }
}

/// How a stored value got there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueSource {
    /// Seed file or control API.
    Seed,
    /// The XML import job.
    Xml,
}

/// A stored value with its editability.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredValue {
    /// The value.
    pub value: LupValue,
    /// Set from XML: the user can no longer edit it (docs/reference/confluence-api.md §2.2).
    pub read_only: bool,
    /// Origin.
    pub source: ValueSource,
}

/// All Linchpin state.
#[derive(Debug, Clone, Default)]
pub(crate) struct LupState {
    pub fields: Vec<LupField>,
    /// user key → field PK → value.
    pub values: BTreeMap<String, BTreeMap<u64, StoredValue>>,
    pub last_import: Option<ImportReport>,
}

/// Slug of a label: lower case, runs of other characters become one `-`.
pub(crate) fn slug(label: &str) -> String {
    let mut out = String::new();
    for c in label.trim().chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_owned()
}

/// Builds a field with the derived keys filled in.
pub(crate) fn make_field(
    pk: u64,
    label: &str,
    field_type: &str,
    source: DataSource,
    category: (u64, &str),
    position: u32,
    mirror: Option<MirrorField>,
) -> LupField {
    let slug = slug(label);
    LupField {
        user_field_pk: pk,
        user_field_bk: format!("cup.{slug}-{pk}"),
        label: label.to_owned(),
        field_type: field_type.to_owned(),
        data_source_type: source,
        data_source_url: None,
        category_pk: category.0,
        category: category.1.to_owned(),
        position,
        hidden: false,
        options: Vec::new(),
        xml_node: slug,
        confluence_field: mirror,
    }
}

/// The default fields: what an intranet typically configures and what the bridge's feed
/// fills, hence all sourced from XML.
pub(crate) fn default_fields() -> Vec<LupField> {
    const CONTACT: (u64, &str) = (1, "Contact");
    const ORG: (u64, &str) = (2, "Organisation");
    const EXPERTISE: (u64, &str) = (3, "Expertise");
    let xml = DataSource::Xml;
    let mut skills = make_field(3, "Skills", "MULTISELECT", xml, EXPERTISE, 0, None);
    skills.options = vec!["Rust".to_owned(), "SCIM".to_owned()];
    vec![
        make_field(
            1,
            "Department",
            "TEXT",
            xml,
            ORG,
            0,
            Some(MirrorField::Department),
        ),
        make_field(2, "Manager", "USERSELECT", xml, ORG, 1, None),
        skills,
        make_field(
            4,
            "Phone",
            "TEXT",
            xml,
            CONTACT,
            0,
            Some(MirrorField::Phone),
        ),
        make_field(
            5,
            "Position",
            "TEXT",
            xml,
            ORG,
            2,
            Some(MirrorField::Position),
        ),
        make_field(
            6,
            "Location",
            "TEXT",
            xml,
            ORG,
            3,
            Some(MirrorField::Location),
        ),
    ]
}

/// Copies a LUP value down into the Confluence detail it mirrors (never the other way,
/// docs/reference/confluence-api.md §2.5).
pub(crate) fn mirror(details: &mut UserDetails, field: MirrorField, value: &LupValue) {
    let text = Some(value.joined());
    match field {
        MirrorField::Phone => details.phone = text,
        MirrorField::Im => details.im = text,
        MirrorField::Website => details.website = text,
        MirrorField::Position => details.position = text,
        MirrorField::Department => details.department = text,
        MirrorField::Location => details.location = text,
    }
}

/// Query of L1.
#[derive(Debug, Deserialize)]
pub(crate) struct FieldsQuery {
    #[serde(rename = "dataSource")]
    data_source: Option<String>,
}

/// L1 `GET /rest/cup/1.0/fields[?dataSource=IDP|XML|LDAP|USER]`: configured fields,
/// filtered by source. An unknown `dataSource` answers 400 **(assumed)**.
#[tracing::instrument(skip_all)]
pub(crate) async fn list_fields(
    ctx: Ctx,
    ApiQuery(query): ApiQuery<FieldsQuery>,
) -> Result<Json<Value>, ApiError> {
    let filter = match &query.data_source {
        Some(raw) => Some(raw.parse::<DataSource>().map_err(ApiError::bad_request)?),
        None => None,
    };
    let world = ctx.world();
    ctx.require(&world, Need::Read)?;
    let xml_url = world.knobs.lup.xml_url.clone();
    let fields: Vec<Value> = world
        .state
        .lup
        .fields
        .iter()
        .filter(|f| filter.is_none_or(|s| f.data_source_type == s))
        .map(|f| {
            let mut f = f.clone();
            if f.data_source_type == DataSource::Xml && f.data_source_url.is_none() {
                f.data_source_url = xml_url.clone();
            }
            f.to_json()
        })
        .collect();
    Ok(Json(Value::Array(fields)))
}

/// L2 `GET /rest/cup/1.0/profile/{username}`: the user's values. The real shape is a
/// **\[gap\]**; this one is a placeholder **(assumed)**.
#[tracing::instrument(skip_all)]
pub(crate) async fn get_profile(
    ctx: Ctx,
    Path(username): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let world = ctx.world();
    ctx.require(&world, Need::Read)?;
    let user = world
        .state
        .user(&username)
        .ok_or_else(|| ApiError::not_found(format!("No user found with username: {username}")))?;
    let empty = BTreeMap::new();
    let values = world.state.lup.values.get(&user.user_key).unwrap_or(&empty);
    let fields: Vec<Value> = world
        .state
        .lup
        .fields
        .iter()
        .filter_map(|f| {
            values.get(&f.user_field_pk).map(|v| {
                json!({
                    "userFieldPK": f.user_field_pk,
                    "userFieldBK": f.user_field_bk,
                    "value": v.value,
                })
            })
        })
        .collect();
    Ok(Json(json!({
        "username": user.username,
        "userKey": user.user_key,
        "fields": fields,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_lower_case_with_single_dashes() {
        assert_eq!(slug("Department"), "department");
        assert_eq!(slug("  Cost centre / Team "), "cost-centre-team");
        assert_eq!(slug("Fachbereich"), "fachbereich");
    }

    #[test]
    fn default_fields_have_business_keys_and_xml_nodes() {
        let fields = default_fields();
        assert_eq!(fields.len(), 6);
        let manager = fields.iter().find(|f| f.label == "Manager");
        assert_eq!(
            manager.map(|f| f.user_field_bk.as_str()),
            Some("cup.manager-2")
        );
        assert!(fields.iter().all(|f| f.data_source_type == DataSource::Xml));
        assert!(fields.iter().any(LupField::is_multi));
    }
}
