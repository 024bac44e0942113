//! `/connectors/{connector}/users/{id}/timeline` (and groups): one resource's history,
//! newest first. Every SCIM write received (when, method, credential, which attributes
//! changed, old → new) and admin action on it comes from the audit trail; every delivery
//! (the calls of one generation, with status, error class and response excerpt) from the
//! delivery attempts; every reconcile item about it from the reconcile runs. One list,
//! ordered by time.

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::problem::{AdminError, AdminResult, Problem};
use super::resources::existing;
use super::rfc3339;
use crate::http::state::AppState;
use crate::scim::schema::ResourceKind;
use crate::store::attempts::Attempt;
use crate::store::audit::{AuditQuery, AuditRecord};
use crate::store::ResourceKey;

/// How much history to read.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TimelineParams {
    /// At most this many audit rows and this many delivery calls (1 to 500, default 100).
    pub limit: Option<String>,
}

/// One resource's history, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct Timeline {
    /// `User` or `Group`.
    pub kind: String,
    /// The SCIM id.
    pub id: String,
    /// The events, newest first.
    pub items: Vec<TimelineItem>,
}

/// One event of a timeline.
#[derive(Debug, Serialize, ToSchema)]
pub struct TimelineItem {
    /// When it happened (RFC 3339).
    pub at: String,
    /// `scim_write`, `admin_action`, `system_write`, `delivery` or `reconcile`.
    #[serde(rename = "type")]
    pub kind: String,
    /// What it says: for writes, `operation`, `actor`, `outcome` and `changes` (each with
    /// `path`, `old`, `new`); for deliveries, `generation`, `outcome` and `calls` (each with
    /// `call`, `target`, `status`, `duration_ms`, `error_class`, `response`); for reconcile
    /// items, the `run`, its `mode`, the drift `class`, the `action` and its `outcome`.
    #[schema(value_type = Object)]
    pub detail: Value,
}

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 500;

/// `GET /connectors/{connector}/users/{id}/timeline`.
#[utoipa::path(get, path = "/connectors/{connector}/users/{id}/timeline", tag = "users and groups",
    params(("connector" = String, Path, description = "Connector name"),
        ("id" = String, Path, description = "SCIM id"), TimelineParams),
    responses((status = 200, body = Timeline), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn user_timeline(
    State(state): State<AppState>,
    _caller: Caller,
    Path((connector, id)): Path<(String, String)>,
    Query(params): Query<TimelineParams>,
) -> AdminResult<Json<Timeline>> {
    timeline(&state, &connector, ResourceKind::User, &id, &params)
        .await
        .map(Json)
}

/// `GET /connectors/{connector}/groups/{id}/timeline`.
#[utoipa::path(get, path = "/connectors/{connector}/groups/{id}/timeline", tag = "users and groups",
    params(("connector" = String, Path, description = "Connector name"),
        ("id" = String, Path, description = "SCIM id"), TimelineParams),
    responses((status = 200, body = Timeline), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn group_timeline(
    State(state): State<AppState>,
    _caller: Caller,
    Path((connector, id)): Path<(String, String)>,
    Query(params): Query<TimelineParams>,
) -> AdminResult<Json<Timeline>> {
    timeline(&state, &connector, ResourceKind::Group, &id, &params)
        .await
        .map(Json)
}

async fn timeline(
    state: &AppState,
    connector: &str,
    kind: ResourceKind,
    id: &str,
    params: &TimelineParams,
) -> AdminResult<Timeline> {
    let limit = match params.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(AdminError::BadRequest(format!(
                    "limit = {v:?}: give a whole number from 1 to {MAX_LIMIT}"
                )))
            }
        },
    };
    // A deleted resource keeps its history: look it up only to tell "no such connector".
    if existing(state, connector, kind, id).await.is_err() {
        super::known_connector(state, connector).await?;
    }
    let rows = state
        .store
        .audit_query(&AuditQuery {
            connector: Some(connector.to_owned()),
            resource_kind: Some(kind.as_str().to_owned()),
            resource_id: Some(id.to_owned()),
            limit,
            ..AuditQuery::default()
        })
        .await?;
    let key = ResourceKey::new(connector, kind, id);
    let attempts = state.store.attempts(&key, limit as i64).await?;
    if rows.is_empty() && attempts.is_empty() && existing(state, connector, kind, id).await.is_err()
    {
        return Err(AdminError::NotFound(format!(
            "connector {connector} has no {} with id {id:?} and no history of one",
            kind.as_str()
        )));
    }
    let reconciled = state
        .store
        .reconcile_items_of(connector, id, limit as i64)
        .await?;
    let mut items: Vec<(i128, TimelineItem)> = rows.iter().map(write_item).collect();
    items.extend(deliveries(&attempts));
    items.extend(reconciled.into_iter().map(|(run, mode, started, item)| {
        (
            started.unix_timestamp_nanos(),
            TimelineItem {
                at: rfc3339(started),
                kind: "reconcile".to_owned(),
                detail: json!({
                    "run": run,
                    "mode": mode,
                    "class": item.class,
                    "confluence_name": item.username,
                    "action": item.action,
                    "outcome": item.outcome,
                    "detail": item.detail,
                }),
            },
        )
    }));
    // Newest first; a write and the delivery it caused share a millisecond at most rarely,
    // and then the write (the cause) is listed below its delivery.
    items.sort_by_key(|item| std::cmp::Reverse(item.0));
    Ok(Timeline {
        kind: kind.as_str().to_owned(),
        id: id.to_owned(),
        items: items.into_iter().map(|(_, item)| item).collect(),
    })
}

fn write_item(r: &AuditRecord) -> (i128, TimelineItem) {
    let kind = match r.actor_kind {
        crate::store::audit::ActorKind::Scim => "scim_write",
        crate::store::audit::ActorKind::Admin => "admin_action",
        crate::store::audit::ActorKind::System => "system_write",
    };
    (
        r.at.unix_timestamp_nanos(),
        TimelineItem {
            at: rfc3339(r.at),
            kind: kind.to_owned(),
            detail: json!({
                "seq": r.seq,
                "operation": r.operation,
                "actor": r.actor,
                "outcome": r.outcome,
                "changes": r.changes,
            }),
        },
    )
}

/// The attempts grouped into deliveries: the calls of one generation to one key, in order.
/// Attempts come newest first.
fn deliveries(attempts: &[Attempt]) -> Vec<(i128, TimelineItem)> {
    let mut out: Vec<(i128, TimelineItem)> = Vec::new();
    let mut group: Vec<&Attempt> = Vec::new();
    let flush = |group: &mut Vec<&Attempt>, out: &mut Vec<(i128, TimelineItem)>| {
        if group.is_empty() {
            return;
        }
        group.reverse(); // oldest call first
        let first = group[0];
        let failed = group.iter().rev().find(|a| a.error_class.is_some());
        let last = group[group.len() - 1];
        let outcome = match (last.error_class.as_deref(), failed) {
            (None, _) => "delivered".to_owned(),
            (Some(class), _) => format!("failed: {class}"),
        };
        let calls: Vec<Value> = group
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
            .collect();
        out.push((
            last.started.unix_timestamp_nanos() + 1,
            TimelineItem {
                at: rfc3339(first.started),
                kind: "delivery".to_owned(),
                detail: json!({
                    "generation": first.generation,
                    "outcome": outcome,
                    "calls": calls,
                }),
            },
        ));
        group.clear();
    };
    for a in attempts {
        if group.last().is_some_and(|g| g.generation != a.generation) {
            flush(&mut group, &mut out);
        }
        group.push(a);
    }
    flush(&mut group, &mut out);
    out
}
