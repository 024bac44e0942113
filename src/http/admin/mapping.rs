//! A connector's mapping as a table, its preview for one user, and the Linchpin fields it
//! can map to.
//!
//! Rules written in usersync.toml are read-only here; the others (a stored connector's, or
//! a declared connector's whose table writes no rules) can be replaced with `PUT`: validated
//! and compiled exactly like the file's, versioned, audited, in force without a restart
//! (docs/console.md).

use axum::extract::{Path, State};
use axum::Json;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::auth::{Acting, Caller};
use super::known_connector;
use super::problem::{AdminError, AdminResult, Problem};
use super::resources::{existing, field_value};
use crate::connectors::Source;
use crate::http::state::AppState;
use crate::mapping::engine::MappingRow;
use crate::profiles::resolve::{Resolved, Resolver};
use crate::scim::schema::ResourceKind;
use crate::store::audit::AdminAction;
use crate::targets::linchpin::fields::{self, Credentials, RemoteField};
use crate::targets::linchpin::xml;

/// A connector's mapping.
#[derive(Debug, Serialize, ToSchema)]
pub struct MappingTable {
    /// The connector.
    pub connector: String,
    /// `config`: the rules are in usersync.toml (`[connectors.NAME.mapping]`); `builtin`:
    /// a stored connector, which has the built-in rules.
    pub defined_in: String,
    /// Which attribute of the other users `manager.value` names.
    pub manager_refers_to: String,
    /// A digest of the rules (changes when the configuration does).
    pub fingerprint: String,
    /// Whether the rules may be edited here (`PUT …/mapping`): not when usersync.toml
    /// writes them.
    pub editable: bool,
    /// The edited version in force, if the rules were edited.
    pub version: Option<i64>,
    /// The rules as TOML text (what `[connectors.NAME.mapping]` would hold); empty for the
    /// built-in rules.
    pub rules: String,
    /// The rules: target field ← source, transforms, no-value policy. Identity rules first
    /// (`confluence.*`), then the profile fields (`profile.*`) in feed order.
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<MappingRow>,
}

/// What a connector's mapping makes of one user.
#[derive(Debug, Serialize, ToSchema)]
pub struct MappingPreview {
    /// The user's SCIM id.
    pub id: String,
    /// The Confluence identity values: each with the source values its rule read and the
    /// result, or why it has none.
    #[schema(value_type = Object)]
    pub identity: Value,
    /// How the manager reference resolved, or why it did not.
    pub manager: String,
    /// Each profile field with the source values, the state and the mapped value; or why
    /// the user is left out of the feed.
    #[schema(value_type = Object)]
    pub fields: Value,
    /// The user's element of the Linchpin feed, when the connector has a feed and the user
    /// is in it.
    pub feed_element: Option<String>,
}

/// The Linchpin fields of the configured Linchpin.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinchpinFields {
    /// The Confluence (Linchpin) base URL they were read from.
    pub base_url: String,
    /// Every field, in Linchpin's order.
    pub fields: Vec<LinchpinField>,
}

/// One Linchpin field and how the connector relates to it.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinchpinField {
    /// Its label.
    pub label: String,
    /// Its business key (`cup.department-1`).
    pub key: String,
    /// Its source in the Profile Editor: `USER`, `LDAP`, `XML` or `IDP`.
    pub source: String,
    /// Whether a connector can fill it: source `XML` (through the feed) or `IDP` (the source
    /// an identity-provider sync fills). See docs/admin-api.md for what is known of `IDP`.
    pub mappable: bool,
    /// The connector's profile field that fills it, if any.
    pub mapped_by: Option<String>,
}

/// `GET /connectors/{connector}/mapping`: the mapping table.
#[utoipa::path(get, path = "/connectors/{connector}/mapping", tag = "mapping",
    params(("connector" = String, Path, description = "Connector name")),
    responses((status = 200, body = MappingTable), (status = 401, body = Problem),
        (status = 404, body = Problem)))]
pub async fn mapping_table(
    State(state): State<AppState>,
    _caller: Caller,
    Path(connector): Path<String>,
) -> AdminResult<Json<MappingTable>> {
    mapping_of(&state, &connector).await.map(Json)
}

/// The mapping table of a connector as the API shows it.
pub(crate) async fn mapping_of(state: &AppState, connector: &str) -> AdminResult<MappingTable> {
    let info = known_connector(state, connector).await?;
    state.runtime.reload_mappings().await?;
    let table = state.runtime.table();
    let rt = state.runtime.connector(connector);
    let mapping = &rt.profile_targets.mapping;
    let version = table.edited_version(connector);
    let editable = table.mapping_editable(connector);
    let rules = match version {
        Some(_) => state
            .store
            .mapping_versions(connector)
            .await?
            .into_iter()
            .next()
            .map(|m| m.rules)
            .unwrap_or_default(),
        None if !editable => state
            .settings
            .connectors
            .get(connector)
            .map(|c| c.mapping.to_toml())
            .unwrap_or_default(),
        None => String::new(),
    };
    Ok(MappingTable {
        defined_in: match (version, info.source, editable) {
            (Some(_), _, _) => "edited",
            (None, Source::Config, false) => "config",
            _ => "builtin",
        }
        .to_owned(),
        connector: connector.to_owned(),
        manager_refers_to: mapping.manager().describe(),
        fingerprint: mapping.fingerprint().to_owned(),
        editable,
        version,
        rules,
        rows: mapping.table().to_vec(),
    })
}

/// New rules for a connector.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewRules {
    /// The rules as TOML text: what `[connectors.NAME.mapping]` would hold in usersync.toml
    /// (docs/mapping.md), without the header. Empty: the built-in rules.
    pub rules: String,
}

/// A preview of rules not saved yet.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PreviewRequest {
    /// The rules to try (TOML, as for `PUT …/mapping`); absent: the rules in force.
    pub rules: Option<String>,
    /// The SCIM id of the user to try them on.
    pub user_id: String,
}

/// One saved version of a connector's rules.
#[derive(Debug, Serialize, ToSchema)]
pub struct MappingVersion {
    /// 1, 2, 3…
    pub version: i64,
    /// When it was saved.
    pub created: String,
    /// Who saved it (admin token name).
    pub created_by: String,
    /// The rules as saved.
    pub rules: String,
}

/// The saved versions, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct MappingVersions {
    /// Newest first; the first is in force.
    pub versions: Vec<MappingVersion>,
}

fn parse_rules(text: &str) -> AdminResult<crate::mapping::MappingSettings> {
    crate::mapping::MappingSettings::from_toml(text)
        .map_err(|e| AdminError::BadRequest(e.to_string()))
}

/// `PUT /connectors/{connector}/mapping`: new rules, validated and compiled exactly like the
/// configuration file's, saved as a new version, audited, and in force at once (on other
/// instances within seconds). Every user of the connector is marked for delivery.
#[utoipa::path(put, path = "/connectors/{connector}/mapping", tag = "mapping",
    params(("connector" = String, Path, description = "Connector name")),
    request_body = NewRules,
    responses((status = 200, body = MappingTable), (status = 400, body = Problem, description = "the rules do not parse or compile; the detail says where"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "the rules are written in usersync.toml")))]
pub async fn save_mapping(
    State(state): State<AppState>,
    Acting(caller): Acting,
    Path(connector): Path<String>,
    Json(body): Json<NewRules>,
) -> AdminResult<Json<MappingTable>> {
    known_connector(&state, &connector).await?;
    let table = state.runtime.table();
    if !table.mapping_editable(&connector) {
        return Err(AdminError::Conflict(format!(
            "connector {connector}'s mapping rules are written in usersync.toml              ([connectors.{connector}.mapping]); change them there"
        )));
    }
    let rules = parse_rules(&body.rules)?;
    table
        .compile_mapping(&connector, &rules)
        .map_err(|e| AdminError::BadRequest(e.0))?;
    let audit = AdminAction {
        connector: connector.clone(),
        token: caller.name.clone(),
        action: "mapping.save".to_owned(),
        target_kind: Some("mapping".to_owned()),
        target: Some(connector.clone()),
        outcome: "ok".to_owned(),
    };
    let version = state
        .store
        .save_mapping(&connector, &body.rules, OffsetDateTime::now_utc(), &audit)
        .await?;
    table
        .set_edited(&connector, version, &rules)
        .map_err(|e| AdminError::Internal(e.0))?;
    state.runtime.publish_report_depths();
    tracing::info!(connector = %connector, version, admin.token = %caller.name, "mapping saved");
    mapping_of(&state, &connector).await.map(Json)
}

/// `GET /connectors/{connector}/mapping/versions`: every saved version, newest first.
#[utoipa::path(get, path = "/connectors/{connector}/mapping/versions", tag = "mapping",
    params(("connector" = String, Path, description = "Connector name")),
    responses((status = 200, body = MappingVersions), (status = 401, body = Problem),
        (status = 404, body = Problem)))]
pub async fn mapping_versions(
    State(state): State<AppState>,
    _caller: Caller,
    Path(connector): Path<String>,
) -> AdminResult<Json<MappingVersions>> {
    known_connector(&state, &connector).await?;
    let versions = state
        .store
        .mapping_versions(&connector)
        .await?
        .into_iter()
        .map(|m| MappingVersion {
            version: m.version,
            created: super::rfc3339(m.created),
            created_by: m.created_by,
            rules: m.rules,
        })
        .collect();
    Ok(Json(MappingVersions { versions }))
}

/// `POST /connectors/{connector}/mapping/preview`: what rules not saved yet (or the rules
/// in force) make of one user. Writes nothing.
#[utoipa::path(post, path = "/connectors/{connector}/mapping/preview", tag = "mapping",
    params(("connector" = String, Path, description = "Connector name")),
    request_body = PreviewRequest,
    responses((status = 200, body = MappingPreview), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn preview_rules(
    State(state): State<AppState>,
    _caller: Caller,
    Path(connector): Path<String>,
    Json(body): Json<PreviewRequest>,
) -> AdminResult<Json<MappingPreview>> {
    let targets = match &body.rules {
        Some(text) => {
            known_connector(&state, &connector).await?;
            let rules = parse_rules(text)?;
            Arc::new(
                state
                    .runtime
                    .table()
                    .compile_mapping(&connector, &rules)
                    .map_err(|e| AdminError::BadRequest(e.0))?,
            )
        }
        None => state.runtime.connector(&connector).profile_targets.clone(),
    };
    preview_with(&state, &connector, &body.user_id, targets)
        .await
        .map(Json)
}

/// `GET /connectors/{connector}/mapping/preview/{id}`: what the mapping makes of one user.
/// It shows the user's values: that is its purpose (it is not logged).
#[utoipa::path(get, path = "/connectors/{connector}/mapping/preview/{id}", tag = "mapping",
    params(("connector" = String, Path, description = "Connector name"),
        ("id" = String, Path, description = "SCIM id of a user")),
    responses((status = 200, body = MappingPreview), (status = 401, body = Problem),
        (status = 404, body = Problem)))]
pub async fn mapping_preview(
    State(state): State<AppState>,
    _caller: Caller,
    Path((connector, id)): Path<(String, String)>,
) -> AdminResult<Json<MappingPreview>> {
    let p = state.runtime.connector(&connector).profile_targets.clone();
    preview_with(&state, &connector, &id, p).await.map(Json)
}

/// What `p`'s mapping makes of user `id`.
pub(crate) async fn preview_with(
    state: &AppState,
    connector: &str,
    id: &str,
    p: Arc<crate::profiles::ProfileTargets>,
) -> AdminResult<MappingPreview> {
    existing(state, connector, ResourceKind::User, id).await?;
    let (connector, id) = (connector.to_owned(), id.to_owned());
    let row = state
        .store
        .profile_row(&connector, &id)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("connector {connector} has no user {id:?}")))?;
    let mut resolver = Resolver::new(state.store.clone(), &connector, p.clone()).tracing();
    let manager = resolver.manager(&row).await?;
    let resolved = resolver.resolve(std::slice::from_ref(&row)).await?.pop();
    let results = [
        resolver.username(&row),
        p.mapping.full_name(&row.doc),
        p.mapping.email(&row.doc),
    ];
    let identity: serde_json::Map<String, Value> = p
        .mapping
        .trace_identity(&row.doc)
        .into_iter()
        .zip(results)
        .map(|((name, trace), result)| {
            let value = match result {
                Ok(v) => json!({"value": v}),
                Err(e) => json!({"error": e.to_string()}),
            };
            let mut entry = json!({
                "rule": if trace.is_some() { "configured" } else { "builtin" },
                "source": trace.map(|t| t.source),
            });
            if let (Some(e), Some(v)) = (entry.as_object_mut(), value.as_object()) {
                e.extend(v.clone());
            }
            (name.to_owned(), entry)
        })
        .collect();
    let (fields, feed_element) = match resolved {
        Some(Resolved::Profile(profile)) => {
            let fields = profile
                .fields
                .iter()
                .map(|f| {
                    let (state, value) = field_value(&f.value);
                    json!({"name": f.name, "xml": f.xml, "source": f.source, "state": state, "value": value})
                })
                .collect::<Vec<_>>();
            let in_feed = p.has_feed()
                && (profile.active
                    || p.feed.deprovisioned != crate::targets::linchpin::Deprovisioned::Omit);
            let element = in_feed.then(|| {
                let mut element = String::new();
                xml::user(&mut element, &p.feed, &profile);
                element
            });
            (Value::Array(fields), element)
        }
        Some(Resolved::Skipped { field }) => (
            json!({"left_out": format!("field {field:?} has no value and its rule says on_missing = \"skip\"")}),
            None,
        ),
        Some(Resolved::Unmapped(e)) => (json!({"left_out": e.to_string()}), None),
        None => (Value::Null, None),
    };
    Ok(MappingPreview {
        id,
        identity: Value::Object(identity),
        manager: manager.describe(&connector, p.mapping.manager()),
        fields,
        feed_element,
    })
}

/// `GET /connectors/{connector}/linchpin-fields`: the fields of the configured Linchpin
/// (`[linchpin] base_url`, else the Confluence base URL), with the connector's field that
/// fills each one.
#[utoipa::path(get, path = "/connectors/{connector}/linchpin-fields", tag = "mapping",
    params(("connector" = String, Path, description = "Connector name")),
    responses((status = 200, body = LinchpinFields), (status = 401, body = Problem),
        (status = 404, body = Problem),
        (status = 409, body = Problem, description = "no Linchpin or Confluence configured"),
        (status = 502, body = Problem, description = "the field list could not be read")))]
pub async fn linchpin_fields(
    State(state): State<AppState>,
    _caller: Caller,
    Path(connector): Path<String>,
) -> AdminResult<Json<LinchpinFields>> {
    known_connector(&state, &connector).await?;
    let (base_url, credentials) = linchpin_source(&state)?;
    let timeout = state.settings.linchpin.timeout.0;
    let remote = fields::fetch(&base_url, &credentials, timeout)
        .await
        .map_err(|e| AdminError::Upstream(crate::errors::error_chain(&e)))?;
    let mapping = &state.runtime.connector(&connector).profile_targets.mapping;
    let mapped_by = |r: &RemoteField| {
        mapping
            .fields()
            .iter()
            .find(|f| fields::matching(f, std::slice::from_ref(r)).is_some())
            .map(|f| f.name.clone())
    };
    Ok(Json(LinchpinFields {
        base_url: crate::store::redact_url(&base_url),
        fields: remote
            .iter()
            .map(|r| LinchpinField {
                label: r.label.clone(),
                key: r.business_key.clone(),
                source: r.source.clone(),
                mappable: r.source == "XML" || r.source == "IDP",
                mapped_by: mapped_by(r),
            })
            .collect(),
    }))
}

/// Where Linchpin's field list is read, and with which credentials: `[linchpin]` when it
/// names a base URL, else the Confluence that delivery uses (Linchpin runs inside it), with
/// delivery's credentials.
fn linchpin_source(state: &AppState) -> AdminResult<(String, Credentials)> {
    if let Some(url) = &state.settings.linchpin.base_url {
        let credentials = state
            .settings
            .linchpin_credentials()
            .map_err(|e| AdminError::Conflict(e.0))?;
        return Ok((url.clone(), credentials));
    }
    let Some(c) = state.runtime.table().confluence() else {
        return Err(AdminError::Conflict(
            "neither [linchpin] base_url nor [confluence] is configured: nothing to read the \
             field list from"
                .to_owned(),
        ));
    };
    use crate::targets::confluence::ConfluenceAuth;
    let credentials = match &c.auth {
        ConfluenceAuth::Pat(token) => Credentials::Bearer(token.expose().to_owned()),
        ConfluenceAuth::Basic { username, password } => {
            Credentials::Basic(username.clone(), password.expose().to_owned())
        }
    };
    Ok((c.base_url.clone(), credentials))
}
