//! `/connectors/{connector}/users` and `/groups`: search (paged) and one resource in detail:
//! the SCIM resource, the mapped profile, the Confluence state wanted and the state applied,
//! the identity link and the queue state. The answer to "why is this user not in
//! Confluence?" starts here.

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::problem::{AdminError, AdminResult, Problem};
use super::{known_connector, rfc3339, scim_base, PageParams};
use crate::http::state::AppState;
use crate::mapping::profile::FieldValue;
use crate::profiles::resolve::{Resolved, Resolver};
use crate::scim::query::ListQuery;
use crate::scim::resource::Document;
use crate::scim::schema::ResourceKind;
use crate::search::{self, Scope};
use crate::store::queue::QueueRow;
use crate::store::ResourceKey;

/// A search: free text matched against names, e-mail and externalId.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Text to look for, case-insensitively: first as a whole userName, e-mail, externalId or
    /// id (displayName for Groups); when nothing matches so, as a part of userName,
    /// displayName, name.formatted, an e-mail or externalId. Empty or absent: every resource.
    pub q: Option<String>,
    /// The page, from 1.
    pub page: Option<String>,
    /// Items per page, 1 to 200 (default 50).
    pub per_page: Option<String>,
}

/// One page of search results.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchPage {
    /// Matches in all.
    pub total: usize,
    /// This page, from 1.
    pub page: usize,
    /// Items per page asked for.
    pub per_page: usize,
    /// How `q` matched: `exact` (a userName, e-mail, externalId or id, through indexes),
    /// `contains` (a substring, when nothing matched exactly: reads every resource), or
    /// `all` (no `q`).
    pub matched: String,
    /// The matches on this page, in the order they were stored.
    pub items: Vec<ResourceSummary>,
}

/// A user or group as a search lists it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResourceSummary {
    /// SCIM id.
    pub id: String,
    /// userName (Users) or displayName (Groups).
    pub name: String,
    /// displayName (Users).
    pub display_name: Option<String>,
    /// The primary (else first) e-mail (Users).
    pub email: Option<String>,
    /// externalId, as the IdP sent it.
    pub external_id: Option<String>,
    /// `active` (Users).
    pub active: Option<bool>,
    /// When the IdP last changed it.
    pub last_modified: Option<String>,
}

/// One resource in detail.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResourceDetail {
    /// The SCIM resource as the IdP reads it back.
    #[schema(value_type = Object)]
    pub resource: Value,
    /// The mapped profile (Users): each field with its value and state, or why the user is
    /// left out of the feed.
    #[schema(value_type = Object)]
    pub profile: Value,
    /// What Confluence should hold for it (Users): username, full name, e-mail, active,
    /// groups; or the mapping error that stops its delivery.
    #[schema(value_type = Object)]
    pub desired: Value,
    /// What delivery last applied to Confluence, from its identity link.
    #[schema(value_type = Object)]
    pub applied: Value,
    /// The identity link to the Confluence account or group, if delivery made one.
    #[schema(value_type = Object)]
    pub link: Value,
    /// Its sync-queue row, if a change is still to deliver (or dead).
    #[schema(value_type = Object)]
    pub queue: Value,
}

/// `GET /connectors/{connector}/users`: search users.
#[utoipa::path(get, path = "/connectors/{connector}/users", tag = "users and groups",
    params(("connector" = String, Path, description = "Connector name"), SearchParams),
    responses((status = 200, body = SearchPage), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn search_users(
    State(state): State<AppState>,
    _caller: Caller,
    Path(connector): Path<String>,
    Query(params): Query<SearchParams>,
) -> AdminResult<Json<SearchPage>> {
    search_kind(&state, &connector, ResourceKind::User, &params).await
}

/// `GET /connectors/{connector}/groups`: search groups.
#[utoipa::path(get, path = "/connectors/{connector}/groups", tag = "users and groups",
    params(("connector" = String, Path, description = "Connector name"), SearchParams),
    responses((status = 200, body = SearchPage), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn search_groups(
    State(state): State<AppState>,
    _caller: Caller,
    Path(connector): Path<String>,
    Query(params): Query<SearchParams>,
) -> AdminResult<Json<SearchPage>> {
    search_kind(&state, &connector, ResourceKind::Group, &params).await
}

/// The SCIM filters a free-text search stands for (RFC 7644 §3.4.2.2), run by the same
/// engine as the IdP's list queries, so both backends and every index behave alike: first
/// an exact match on the indexed identifiers (a userName, an e-mail, an externalId or an id,
/// answered through indexes whatever the number of users), and only when that finds nothing,
/// a substring match, which reads every resource of the connector (docs/admin-api.md).
fn search_filters(kind: ResourceKind, q: &str) -> [String; 2] {
    // A JSON string is a valid SCIM filter literal, escapes included.
    let lit = serde_json::to_string(q).unwrap_or_default();
    match kind {
        ResourceKind::User => [
            format!(
                "userName eq {lit} or emails.value eq {lit} or externalId eq {lit} or id eq {lit}"
            ),
            format!(
                "userName co {lit} or displayName co {lit} or name.formatted co {lit} \
                 or emails.value co {lit} or externalId co {lit}"
            ),
        ],
        ResourceKind::Group => [
            format!("displayName eq {lit} or externalId eq {lit} or id eq {lit}"),
            format!("displayName co {lit} or externalId co {lit}"),
        ],
    }
}

async fn search_kind(
    state: &AppState,
    connector: &str,
    kind: ResourceKind,
    params: &SearchParams,
) -> AdminResult<Json<SearchPage>> {
    let (page, per_page) = PageParams {
        page: params.page.clone(),
        per_page: params.per_page.clone(),
    }
    .parse()?;
    known_connector(state, connector).await?;
    let rt = state.schemas.resource_type(kind);
    let q = params.q.as_deref().map(str::trim).unwrap_or_default();
    let base = scim_base(state, connector);
    let scope = Scope {
        store: &state.store,
        rt,
        connector,
        base: &base,
    };
    let paging = search::Paging {
        default: per_page,
        max: per_page,
    };
    let filters: Vec<Option<String>> = if q.is_empty() {
        vec![None]
    } else {
        search_filters(kind, q).into_iter().map(Some).collect()
    };
    let mut matched = "all";
    let mut found = None;
    for (i, text) in filters.iter().enumerate() {
        let filter = match text {
            Some(t) => Some(
                crate::scim::filter::parse_with_limits(t, &state.filter_limits()).map_err(|e| {
                    AdminError::BadRequest(format!("q cannot be searched for: {e}"))
                })?,
            ),
            None => None,
        };
        let query = ListQuery {
            filter,
            start_index: (page - 1) * per_page + 1,
            count: Some(per_page),
            ..ListQuery::default()
        };
        let result = search::search(scope, &query, paging, false).await?;
        if text.is_some() {
            matched = if i == 0 { "exact" } else { "contains" };
        }
        let hit = result.total > 0;
        found = Some(result);
        if hit {
            break;
        }
    }
    let found = found.expect("at least one query ran");
    Ok(Json(SearchPage {
        total: found.total,
        page,
        per_page,
        matched: matched.to_owned(),
        items: found.items.iter().map(|d| summary(kind, d)).collect(),
    }))
}

fn text(doc: &Document, key: &str) -> Option<String> {
    doc.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn summary(kind: ResourceKind, d: &Document) -> ResourceSummary {
    let email = d
        .get("emails")
        .and_then(Value::as_array)
        .and_then(|emails| {
            emails
                .iter()
                .find(|e| e.get("primary") == Some(&Value::Bool(true)))
                .or_else(|| emails.first())
                .and_then(|e| e.get("value"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
    let (name, display_name) = match kind {
        ResourceKind::User => (text(d, "userName"), text(d, "displayName")),
        ResourceKind::Group => (text(d, "displayName"), None),
    };
    ResourceSummary {
        id: text(d, "id").unwrap_or_default(),
        name: name.unwrap_or_default(),
        display_name,
        email,
        external_id: text(d, "externalId"),
        active: d.get("active").and_then(Value::as_bool),
        last_modified: d
            .get("meta")
            .and_then(|m| m.get("lastModified"))
            .and_then(Value::as_str)
            .map(str::to_owned),
    }
}

/// `GET /connectors/{connector}/users/{id}`: one user in detail.
#[utoipa::path(get, path = "/connectors/{connector}/users/{id}", tag = "users and groups",
    params(("connector" = String, Path, description = "Connector name"),
        ("id" = String, Path, description = "SCIM id")),
    responses((status = 200, body = ResourceDetail), (status = 401, body = Problem),
        (status = 404, body = Problem)))]
pub async fn user_detail(
    State(state): State<AppState>,
    _caller: Caller,
    Path((connector, id)): Path<(String, String)>,
) -> AdminResult<Json<ResourceDetail>> {
    detail(&state, &connector, ResourceKind::User, &id)
        .await
        .map(Json)
}

/// `GET /connectors/{connector}/groups/{id}`: one group in detail.
#[utoipa::path(get, path = "/connectors/{connector}/groups/{id}", tag = "users and groups",
    params(("connector" = String, Path, description = "Connector name"),
        ("id" = String, Path, description = "SCIM id")),
    responses((status = 200, body = ResourceDetail), (status = 401, body = Problem),
        (status = 404, body = Problem)))]
pub async fn group_detail(
    State(state): State<AppState>,
    _caller: Caller,
    Path((connector, id)): Path<(String, String)>,
) -> AdminResult<Json<ResourceDetail>> {
    detail(&state, &connector, ResourceKind::Group, &id)
        .await
        .map(Json)
}

/// The resource, or 404 naming what is missing.
pub(crate) async fn existing(
    state: &AppState,
    connector: &str,
    kind: ResourceKind,
    id: &str,
) -> AdminResult<crate::store::StoredResource> {
    known_connector(state, connector).await?;
    let key = ResourceKey::new(connector, kind, id);
    state.store.get_resource(&key).await?.ok_or_else(|| {
        AdminError::NotFound(format!(
            "connector {connector} has no {} with id {id:?}",
            kind.as_str()
        ))
    })
}

async fn detail(
    state: &AppState,
    connector: &str,
    kind: ResourceKind,
    id: &str,
) -> AdminResult<ResourceDetail> {
    let stored = existing(state, connector, kind, id).await?;
    let key = ResourceKey::new(connector, kind, id);
    let base = scim_base(state, connector);
    let scope = Scope {
        store: &state.store,
        rt: state.schemas.resource_type(kind),
        connector,
        base: &base,
    };
    let members = match kind {
        ResourceKind::Group => Some(
            state
                .store
                .members_of(connector, std::slice::from_ref(&stored.id))
                .await?
                .remove(&stored.id)
                .unwrap_or_default(),
        ),
        ResourceKind::User => None,
    };
    let resource = Value::Object(search::render(scope, &stored, members.as_deref()));
    let link = state.store.link(&key).await?;
    let queue = state.store.queue_row(&key).await?;
    let (profile, desired) = match kind {
        ResourceKind::User => user_views(state, connector, &stored, link.as_ref()).await?,
        ResourceKind::Group => (Value::Null, Value::Null),
    };
    Ok(ResourceDetail {
        resource,
        profile,
        desired,
        applied: link
            .as_ref()
            .and_then(|l| l.applied.clone())
            .unwrap_or(Value::Null),
        link: link.map_or(Value::Null, |l| {
            json!({
                "confluence_name": l.target_name,
                "confluence_key": l.target_key,
                "status": l.status.as_str(),
                "note": l.note,
            })
        }),
        queue: queue.map_or(Value::Null, |q| queue_json(&q)),
    })
}

/// A sync-queue row as the API shows it.
pub(crate) fn queue_json(q: &QueueRow) -> Value {
    json!({
        "state": q.state,
        "generation": q.generation,
        "attempts": q.attempts,
        "next_attempt_at": rfc3339(q.next_attempt_at),
        "enqueued_at": rfc3339(q.enqueued_at),
        "last_error": q.last_error,
        "deprovisioning": q.priority == 0,
        "waiting_on": q.waiting_on,
    })
}

/// The mapped profile and the desired Confluence state of a user.
async fn user_views(
    state: &AppState,
    connector: &str,
    stored: &crate::store::StoredResource,
    link: Option<&crate::store::links::Link>,
) -> AdminResult<(Value, Value)> {
    let rt = state.runtime.connector(connector);
    let Some(row) = state.store.profile_row(connector, &stored.id).await? else {
        return Ok((Value::Null, Value::Null));
    };
    let mut resolver = Resolver::new(state.store.clone(), connector, rt.profile_targets.clone());
    let profile = match resolver.resolve(std::slice::from_ref(&row)).await?.pop() {
        Some(Resolved::Profile(p)) => json!({
            "username": p.username,
            "active": p.active,
            "fields": p.fields.iter().map(|f| {
                let (state, value) = field_value(&f.value);
                json!({"name": f.name, "xml": f.xml, "state": state, "value": value})
            }).collect::<Vec<_>>(),
        }),
        Some(Resolved::Skipped { field }) => json!({
            "left_out": format!("field {field:?} has no value and its rule says on_missing = \"skip\""),
        }),
        Some(Resolved::Unmapped(e)) => json!({"left_out": e.to_string()}),
        None => Value::Null,
    };
    let linked = link
        .filter(|l| l.status != crate::store::links::LinkStatus::Conflict)
        .map(|l| l.target_name.as_str());
    let groups = state
        .store
        .groups_of(connector, std::slice::from_ref(&stored.id))
        .await?
        .remove(&stored.id)
        .unwrap_or_default();
    let desired = match crate::delivery::desired::user(
        &rt.provisioning,
        &rt.profile_targets.mapping,
        &stored.doc,
        linked,
        &groups,
    ) {
        Ok(d) => json!({
            "username": d.username,
            "full_name": d.full_name,
            "email": d.email,
            "active": d.active,
            "groups": d.groups,
        }),
        Err(e) => json!({"not_deliverable": e.to_string()}),
    };
    Ok((profile, desired))
}

/// A field's state and value as JSON.
pub(crate) fn field_value(v: &FieldValue) -> (&'static str, Value) {
    match v {
        FieldValue::Set(values) if values.len() == 1 => ("set", json!(values[0])),
        FieldValue::Set(values) => ("set", json!(values)),
        FieldValue::Clear => ("clear", Value::Null),
        FieldValue::Keep => ("keep", Value::Null),
        FieldValue::Pending => ("pending_manager", Value::Null),
        FieldValue::Failed(why) => ("failed", json!(why)),
    }
}
