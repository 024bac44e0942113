//! `/connectors`: the list with status, one connector's detail, rotate a token, pause and
//! resume delivery.

use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::auth::{Acting, Caller};
use super::problem::{AdminError, AdminResult, Problem};
use super::{known_connector, rfc3339, scim_base};
use crate::connectors::{self, Source};
use crate::http::state::AppState;
use crate::scim::schema::ResourceKind;
use crate::store::audit::AdminAction;
use crate::store::queue::ConnectorQueue;

/// One connector and how it is doing.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectorStatus {
    /// The name: the last segment of its SCIM base URL.
    pub name: String,
    /// `config` (declared in usersync.toml) or `stored` (created with the CLI or API).
    pub source: String,
    /// The SCIM base URL to paste into the IdP.
    pub scim_base_url: String,
    /// Authentication modes it accepts: `bearer`, `basic`, `entra_jwt`, `oauth2`.
    pub auth_modes: Vec<String>,
    /// Bearer tokens that work now.
    pub active_tokens: usize,
    /// Users stored.
    pub users: i64,
    /// Groups stored.
    pub groups: i64,
    /// Keys waiting for delivery.
    pub queue_depth: i64,
    /// Keys that exhausted their retries (`POST …/retry-dead` revives them).
    pub dead_keys: i64,
    /// The last SCIM request this instance answered for it (since this instance started).
    pub last_scim_request: Option<String>,
    /// When any instance last stored a change to one of its users or groups (a create or
    /// an update; deletions leave no row to date).
    pub last_scim_write: Option<String>,
    /// The last successful Confluence call of its deliveries.
    pub last_delivery: Option<String>,
    /// The last failed call of its deliveries.
    pub last_error: Option<LastError>,
    /// Whether delivery is paused by an operator.
    pub delivery_paused: bool,
}

/// A failed delivery call.
#[derive(Debug, Serialize, ToSchema)]
pub struct LastError {
    /// When it was made.
    pub at: String,
    /// The call (method and path template).
    pub call: String,
    /// The HTTP status, when an answer came.
    pub status: Option<i64>,
    /// The failure class (`rate_limited`, `transient`, `permanent`, …).
    pub error_class: String,
}

/// The connector list.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectorList {
    /// Every connector, by name.
    pub connectors: Vec<ConnectorStatus>,
}

/// One connector in detail.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectorDetail {
    /// Its status, as in the list.
    #[serde(flatten)]
    pub status: ConnectorStatus,
    /// Its stored bearer tokens (stored connectors), newest first, without secrets.
    pub tokens: Vec<TokenInfo>,
    /// Whether it serves a Linchpin profile feed.
    pub linchpin_feed: bool,
    /// Whether it sends profiles to a webhook.
    pub webhook: bool,
    /// A digest of its mapping rules.
    pub mapping_fingerprint: String,
}

/// A stored bearer token, without its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenInfo {
    /// The first 12 hex digits of its SHA-256: what the audit trail names it by.
    pub fingerprint: String,
    /// When it was issued.
    pub created: String,
    /// When it stops working (set on old tokens by a rotation).
    pub expires: Option<String>,
}

/// A new token, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedToken {
    /// The new bearer token: give it to the IdP now; it is not stored and not shown again.
    pub token: String,
    /// When the connector's previous tokens stop working.
    pub previous_tokens_expire: String,
}

/// `GET /connectors`: every connector with its status.
#[utoipa::path(get, path = "/connectors", tag = "connectors",
    responses((status = 200, body = ConnectorList), (status = 401, body = Problem)))]
pub async fn list_connectors(
    State(state): State<AppState>,
    _caller: Caller,
) -> AdminResult<Json<ConnectorList>> {
    // A connector created by the CLI or another instance shows up at once.
    state.runtime.reload().await?;
    let queues = state.store.queue_counts().await?;
    let paused = paused_set(&state).await?;
    let mut connectors = Vec::new();
    for info in state.runtime.list() {
        connectors.push(
            status(
                &state,
                &info.name,
                info.source,
                info.active_tokens,
                &queues,
                &paused,
            )
            .await?,
        );
    }
    Ok(Json(ConnectorList { connectors }))
}

/// `GET /connectors/{connector}`: one connector in detail.
#[utoipa::path(get, path = "/connectors/{connector}", tag = "connectors",
    params(("connector" = String, Path, description = "Connector name")),
    responses((status = 200, body = ConnectorDetail), (status = 401, body = Problem),
        (status = 404, body = Problem)))]
pub async fn get_connector(
    State(state): State<AppState>,
    _caller: Caller,
    Path(connector): Path<String>,
) -> AdminResult<Json<ConnectorDetail>> {
    Ok(Json(connector_detail(&state, &connector).await?))
}

async fn connector_detail(state: &AppState, connector: &str) -> AdminResult<ConnectorDetail> {
    let info = known_connector(state, connector).await?;
    let queues = state.store.queue_counts().await?;
    let paused = paused_set(state).await?;
    let status = status(
        state,
        &info.name,
        info.source,
        info.active_tokens,
        &queues,
        &paused,
    )
    .await?;
    let tokens = state
        .store
        .connectors()
        .await?
        .into_iter()
        .find(|c| c.name == connector)
        .map(|c| {
            c.tokens
                .into_iter()
                .map(|t| TokenInfo {
                    fingerprint: t.hash.chars().take(12).collect(),
                    created: rfc3339(t.created),
                    expires: t.expires.map(rfc3339),
                })
                .collect()
        })
        .unwrap_or_default();
    let rt = state.runtime.connector(connector);
    Ok(ConnectorDetail {
        status,
        tokens,
        linchpin_feed: rt.profile_targets.has_feed(),
        webhook: rt.profile_targets.webhook.is_some(),
        mapping_fingerprint: rt.profile_targets.mapping.fingerprint().to_owned(),
    })
}

/// `POST /connectors/{connector}/rotate-token`: a new bearer token for a stored connector;
/// its previous tokens keep working for `auth.token_rotation_grace`.
#[utoipa::path(post, path = "/connectors/{connector}/rotate-token", tag = "connectors",
    params(("connector" = String, Path, description = "Connector name")),
    responses((status = 200, body = RotatedToken), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "declared in usersync.toml")))]
pub async fn rotate_token(
    State(state): State<AppState>,
    Acting(caller): Acting,
    Path(connector): Path<String>,
) -> AdminResult<Json<RotatedToken>> {
    let info = known_connector(&state, &connector).await?;
    if info.source == Source::Config {
        return Err(AdminError::Conflict(format!(
            "connector {connector} is declared in usersync.toml: rotate by listing the new and \
             the old variable in its token_env, then removing the old one"
        )));
    }
    let token = connectors::generate_token();
    let hash = connectors::hash_hex(&connectors::hash_token(&token));
    let now = OffsetDateTime::now_utc();
    let grace = state.settings.auth.token_rotation_grace.0;
    let expire = now + time::Duration::try_from(grace).unwrap_or(time::Duration::ZERO);
    let audit = action(&caller, &connector, "connector.rotate_token", "ok");
    if !state
        .store
        .rotate_connector_token_audited(&connector, &hash, now, expire, &audit)
        .await?
    {
        return Err(AdminError::NotFound(format!(
            "no stored connector named {connector}"
        )));
    }
    state.runtime.reload().await?;
    Ok(Json(RotatedToken {
        token,
        previous_tokens_expire: rfc3339(expire),
    }))
}

/// `POST /connectors/{connector}/pause`: stop delivering this connector's changes, on every
/// instance, until resumed. SCIM writes are still accepted and queued.
#[utoipa::path(post, path = "/connectors/{connector}/pause", tag = "connectors",
    params(("connector" = String, Path, description = "Connector name")),
    responses((status = 200, body = ConnectorStatus), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn pause(
    State(state): State<AppState>,
    Acting(caller): Acting,
    Path(connector): Path<String>,
) -> AdminResult<Json<ConnectorStatus>> {
    set_paused(&state, &caller, &connector, true).await
}

/// `POST /connectors/{connector}/resume`: deliver again; the queued changes go first.
#[utoipa::path(post, path = "/connectors/{connector}/resume", tag = "connectors",
    params(("connector" = String, Path, description = "Connector name")),
    responses((status = 200, body = ConnectorStatus), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn resume(
    State(state): State<AppState>,
    Acting(caller): Acting,
    Path(connector): Path<String>,
) -> AdminResult<Json<ConnectorStatus>> {
    set_paused(&state, &caller, &connector, false).await
}

async fn set_paused(
    state: &AppState,
    caller: &Caller,
    connector: &str,
    paused: bool,
) -> AdminResult<Json<ConnectorStatus>> {
    known_connector(state, connector).await?;
    let name = if paused {
        "connector.pause"
    } else {
        "connector.resume"
    };
    let audit = action(caller, connector, name, "ok");
    state
        .store
        .set_delivery_paused(connector, paused, OffsetDateTime::now_utc(), &audit)
        .await?;
    tracing::info!(connector, paused, admin.token = %caller.name, "delivery pause changed");
    Ok(Json(connector_detail(state, connector).await?.status))
}

/// The audit record of an action of `caller` on `connector` itself.
fn action(caller: &Caller, connector: &str, name: &str, outcome: &str) -> AdminAction {
    AdminAction {
        connector: connector.to_owned(),
        token: caller.name.clone(),
        action: name.to_owned(),
        target_kind: Some("connector".to_owned()),
        target: Some(connector.to_owned()),
        outcome: outcome.to_owned(),
    }
}

async fn paused_set(state: &AppState) -> AdminResult<Vec<String>> {
    Ok(state
        .store
        .connector_controls()
        .await?
        .into_iter()
        .filter(|c| c.delivery_paused)
        .map(|c| c.connector)
        .collect())
}

async fn status(
    state: &AppState,
    name: &str,
    source: Source,
    active_tokens: usize,
    queues: &[ConnectorQueue],
    paused: &[String],
) -> AdminResult<ConnectorStatus> {
    let store = &state.store;
    let rt = state.runtime.connector(name);
    let auth_modes = match &rt.auth {
        Some(a) => a.modes().into_iter().map(str::to_owned).collect(),
        None => vec!["bearer".to_owned()],
    };
    let queue = queues.iter().find(|q| q.connector == name);
    let last = store.last_attempts(name).await?;
    let last_write = store.last_resource_change(name).await?.map(rfc3339);
    Ok(ConnectorStatus {
        name: name.to_owned(),
        source: match source {
            Source::Config => "config",
            Source::Stored => "stored",
        }
        .to_owned(),
        scim_base_url: scim_base(state, name),
        auth_modes,
        active_tokens,
        users: store.count_resources(name, ResourceKind::User).await?,
        groups: store.count_resources(name, ResourceKind::Group).await?,
        queue_depth: queue.map_or(0, |q| q.pending),
        dead_keys: queue.map_or(0, |q| q.dead),
        last_scim_request: state.last_request(name).map(rfc3339),
        last_scim_write: last_write,
        last_delivery: last.succeeded.map(|a| rfc3339(a.started)),
        last_error: last.failed.map(|a| LastError {
            at: rfc3339(a.started),
            call: a.call,
            status: a.status,
            error_class: a.error_class.unwrap_or_default(),
        }),
        delivery_paused: paused.iter().any(|p| p == name),
    })
}
