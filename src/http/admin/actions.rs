//! Actions on one resource or one connector's queue: sync one user now, dry run for one user
//! (the planned Confluence calls, nothing written), retry a dead key or all of a connector's.
//!
//! Sync and dry run work outside the queue, like `usersync sync-user`: the key's queue row,
//! if any, stays and later converges to nothing. They run even while the connector's
//! delivery is paused: an operator testing one user asked for exactly that.

use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::auth::{Acting, Caller};
use super::problem::{AdminError, AdminResult, Problem};
use super::resources::existing;
use super::{known_connector, rfc3339};
use crate::delivery::converge::Converged;
use crate::delivery::dry_run::DryRun;
use crate::delivery::Worker;
use crate::http::state::AppState;
use crate::scim::schema::ResourceKind;
use crate::store::attempts::Attempt;
use crate::store::audit::AdminAction;
use crate::store::ResourceKey;

/// What a sync or a dry run did.
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncOutcome {
    /// `done` (Confluence matches), `failed` or `waiting` (Confluence is paused: rate
    /// limited or down).
    pub outcome: String,
    /// Why it is not done, when it is not.
    pub reason: Option<String>,
    /// The calls made, in order (a dry run makes only reads).
    #[schema(value_type = Vec<Object>)]
    pub calls: Vec<Value>,
    /// Dry run only: the writes that would be made, in order; empty when Confluence already
    /// matches.
    pub planned: Option<Vec<String>>,
}

/// How many dead keys were made pending again.
#[derive(Debug, Serialize, ToSchema)]
pub struct Revived {
    /// Keys revived (0 when none was dead).
    pub revived: u64,
}

/// `POST /connectors/{connector}/users/{id}/sync`: deliver one user to Confluence now.
#[utoipa::path(post, path = "/connectors/{connector}/users/{id}/sync", tag = "actions",
    params(("connector" = String, Path, description = "Connector name"),
        ("id" = String, Path, description = "SCIM id")),
    responses((status = 200, body = SyncOutcome, description = "done or not, with the calls made"),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem, description = "no Confluence configured")))]
pub async fn sync_user(
    State(state): State<AppState>,
    Acting(caller): Acting,
    Path((connector, id)): Path<(String, String)>,
) -> AdminResult<Json<SyncOutcome>> {
    existing(&state, &connector, ResourceKind::User, &id).await?;
    let client = confluence(&state)?;
    let key = ResourceKey::user(&connector, &id);
    let worker = Worker::with_connectors(
        state.store.clone(),
        client,
        state.settings.delivery.clone(),
        state.runtime.lookup(),
    );
    let (converged, attempts) = worker.sync_now(&key, true).await;
    let out = outcome(converged, &attempts, None);
    // The effect is in Confluence, not in the database: recorded after, with how it ended.
    let audit = AdminAction {
        connector: connector.clone(),
        token: caller.name.clone(),
        action: "user.sync".to_owned(),
        target_kind: Some("User".to_owned()),
        target: Some(id.clone()),
        outcome: out.outcome.clone(),
    };
    state
        .store
        .audit_admin_action(&audit, OffsetDateTime::now_utc())
        .await?;
    Ok(Json(out))
}

/// `POST /connectors/{connector}/users/{id}/dry-run`: the calls a sync would make, reading
/// Confluence but writing nothing (neither Confluence nor the database). An action like the
/// others (admin role): it spends Confluence's rate limit.
#[utoipa::path(post, path = "/connectors/{connector}/users/{id}/dry-run", tag = "actions",
    params(("connector" = String, Path, description = "Connector name"),
        ("id" = String, Path, description = "SCIM id")),
    responses((status = 200, body = SyncOutcome), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "no Confluence configured")))]
pub async fn dry_run_user(
    State(state): State<AppState>,
    Acting(_caller): Acting,
    Path((connector, id)): Path<(String, String)>,
) -> AdminResult<Json<SyncOutcome>> {
    existing(&state, &connector, ResourceKind::User, &id).await?;
    let client = confluence(&state)?;
    let key = ResourceKey::user(&connector, &id);
    let worker = Worker::with_connectors(
        state.store.clone(),
        DryRun::new(client),
        state.settings.delivery.clone(),
        state.runtime.lookup(),
    );
    let (converged, attempts) = worker.sync_now(&key, false).await;
    let planned = worker.directory().writes();
    Ok(Json(outcome(converged, &attempts, Some(planned))))
}

/// `POST /connectors/{connector}/users/{id}/retry`: make the user's dead key pending again.
#[utoipa::path(post, path = "/connectors/{connector}/users/{id}/retry", tag = "actions",
    params(("connector" = String, Path, description = "Connector name"),
        ("id" = String, Path, description = "SCIM id")),
    responses((status = 200, body = Revived), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn retry_dead_user(
    State(state): State<AppState>,
    Acting(caller): Acting,
    Path((connector, id)): Path<(String, String)>,
) -> AdminResult<Json<Revived>> {
    retry_key(&state, &caller, &connector, ResourceKind::User, &id).await
}

/// `POST /connectors/{connector}/groups/{id}/retry`: make the group's dead key pending again.
#[utoipa::path(post, path = "/connectors/{connector}/groups/{id}/retry", tag = "actions",
    params(("connector" = String, Path, description = "Connector name"),
        ("id" = String, Path, description = "SCIM id")),
    responses((status = 200, body = Revived), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn retry_dead_group(
    State(state): State<AppState>,
    Acting(caller): Acting,
    Path((connector, id)): Path<(String, String)>,
) -> AdminResult<Json<Revived>> {
    retry_key(&state, &caller, &connector, ResourceKind::Group, &id).await
}

/// `POST /connectors/{connector}/retry-dead`: make every dead key of the connector pending.
#[utoipa::path(post, path = "/connectors/{connector}/retry-dead", tag = "actions",
    params(("connector" = String, Path, description = "Connector name")),
    responses((status = 200, body = Revived), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn retry_dead_all(
    State(state): State<AppState>,
    Acting(caller): Acting,
    Path(connector): Path<String>,
) -> AdminResult<Json<Revived>> {
    known_connector(&state, &connector).await?;
    let audit = AdminAction {
        connector: connector.clone(),
        token: caller.name.clone(),
        action: "queue.retry_dead".to_owned(),
        target_kind: Some("connector".to_owned()),
        target: Some(connector.clone()),
        outcome: "ok".to_owned(),
    };
    let revived = state
        .store
        .revive_dead_audited(&connector, None, OffsetDateTime::now_utc(), &audit)
        .await?;
    Ok(Json(Revived { revived }))
}

async fn retry_key(
    state: &AppState,
    caller: &Caller,
    connector: &str,
    kind: ResourceKind,
    id: &str,
) -> AdminResult<Json<Revived>> {
    known_connector(state, connector).await?;
    let key = ResourceKey::new(connector, kind, id);
    // A deleted resource's key can be dead too (its deletion failed): ask the queue, not
    // the resources.
    if state.store.queue_row(&key).await?.is_none() {
        return Err(AdminError::NotFound(format!(
            "{} {id:?} of connector {connector} has nothing queued",
            kind.as_str()
        )));
    }
    let audit = AdminAction {
        connector: connector.to_owned(),
        token: caller.name.clone(),
        action: "queue.retry".to_owned(),
        target_kind: Some(kind.as_str().to_owned()),
        target: Some(id.to_owned()),
        outcome: "ok".to_owned(),
    };
    let revived = state
        .store
        .revive_dead_audited(
            connector,
            Some((kind.as_str(), id)),
            OffsetDateTime::now_utc(),
            &audit,
        )
        .await?;
    Ok(Json(Revived { revived }))
}

fn confluence(state: &AppState) -> AdminResult<crate::targets::confluence::ConfluenceClient> {
    state.confluence.clone().ok_or_else(|| {
        AdminError::Conflict(
            "no [confluence] is configured, so nothing can be delivered; set base_url and \
             token_env"
                .to_owned(),
        )
    })
}

fn outcome(
    converged: Converged,
    attempts: &[Attempt],
    planned: Option<Vec<String>>,
) -> SyncOutcome {
    let (outcome, reason) = match converged {
        Converged::Done => ("done", None),
        Converged::Failed { reason, .. } => ("failed", Some(reason)),
        Converged::Waiting { reason, .. } => ("waiting", Some(reason)),
    };
    SyncOutcome {
        outcome: outcome.to_owned(),
        reason,
        calls: attempts
            .iter()
            .map(|a| {
                json!({
                    "at": rfc3339(a.started),
                    "target": a.target,
                    "call": a.call,
                    "status": a.status,
                    "duration_ms": a.duration_ms,
                    "error_class": a.error_class,
                    "response": a.response,
                })
            })
            .collect(),
        planned,
    }
}

/// Which queue rows to list.
#[derive(Debug, Clone, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QueueParams {
    /// `pending` (the default) or `dead`.
    pub state: Option<String>,
    /// At most this many rows (1 to 500, default 100), in the order delivery takes them.
    pub limit: Option<String>,
}

/// A connector's queue rows.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueuePage {
    /// In the order delivery takes them (deprovisioning first, then by due time): `kind`,
    /// `id`, `state`, `attempts`, `next_attempt_at`, `enqueued_at`,
    /// `last_error`, `deprovisioning`, `waiting_on`.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<Value>,
}

/// `GET /connectors/{connector}/queue`: the keys still to deliver, or the dead ones with
/// their reason.
#[utoipa::path(get, path = "/connectors/{connector}/queue", tag = "actions",
    params(("connector" = String, Path, description = "Connector name"), QueueParams),
    responses((status = 200, body = QueuePage), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn queue(
    State(state): State<AppState>,
    _caller: Caller,
    Path(connector): Path<String>,
    axum::extract::Query(params): axum::extract::Query<QueueParams>,
) -> AdminResult<Json<QueuePage>> {
    known_connector(&state, &connector).await?;
    let which = match params.state.as_deref() {
        None | Some("") => "pending",
        Some(s @ ("pending" | "dead")) => s,
        Some(other) => {
            return Err(AdminError::BadRequest(format!(
                "state = {other:?}: give pending or dead"
            )))
        }
    };
    let limit = match params.limit.as_deref() {
        None => 100,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if (1..=500).contains(&n) => n,
            _ => {
                return Err(AdminError::BadRequest(format!(
                    "limit = {v:?}: give a whole number from 1 to 500"
                )))
            }
        },
    };
    let rows = state.store.queue_page(&connector, which, limit).await?;
    Ok(Json(QueuePage {
        items: rows
            .iter()
            .map(|q| {
                let mut v = super::resources::queue_json(q);
                if let Some(o) = v.as_object_mut() {
                    o.insert("kind".into(), json!(q.key.kind.as_str()));
                    o.insert("id".into(), json!(q.key.id));
                }
                v
            })
            .collect(),
    }))
}
