//! A connector's mapping as a table, its preview for one user, and the Linchpin fields it
//! can map to.
//!
//! Mappings are read-only here: a declared connector's rules live in usersync.toml, and a
//! stored connector has the built-in rules (editing mappings is the web console's issue).

use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::auth::Caller;
use super::known_connector;
use super::problem::{AdminError, AdminResult, Problem};
use super::resources::{existing, field_value};
use crate::connectors::Source;
use crate::http::state::AppState;
use crate::mapping::engine::MappingRow;
use crate::profiles::resolve::{Resolved, Resolver};
use crate::scim::schema::ResourceKind;
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
    let info = known_connector(&state, &connector).await?;
    let rt = state.runtime.connector(&connector);
    let mapping = &rt.profile_targets.mapping;
    Ok(Json(MappingTable {
        defined_in: match info.source {
            Source::Config => "config",
            Source::Stored => "builtin",
        }
        .to_owned(),
        connector,
        manager_refers_to: mapping.manager().describe(),
        fingerprint: mapping.fingerprint().to_owned(),
        rows: mapping.table().to_vec(),
    }))
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
    existing(&state, &connector, ResourceKind::User, &id).await?;
    let p = state.runtime.connector(&connector).profile_targets.clone();
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
    Ok(Json(MappingPreview {
        id,
        identity: Value::Object(identity),
        manager: manager.describe(&connector, p.mapping.manager()),
        fields,
        feed_element,
    }))
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
