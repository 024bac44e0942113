//! `/connectors/{connector}/reconcile-runs` and `/reconcile-runs/{id}`: the full syncs
//! against Confluence (`usersync reconcile`, the schedule) and what each found.

use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::auth::Caller;
use super::problem::{AdminError, AdminResult, Problem};
use super::{known_connector, rfc3339};
use crate::http::state::AppState;
use crate::store::reconcile::RunRecord;

/// How many runs the list shows.
const RUNS: i64 = 50;

/// A connector's recent runs, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunList {
    /// At most 50, newest first.
    #[schema(value_type = Vec<Object>)]
    pub runs: Vec<Value>,
}

/// One run with its items.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunDetail {
    /// The run.
    #[schema(value_type = Object)]
    pub run: Value,
    /// Each difference found and what came of it, in order.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<Value>,
}

fn run_json(r: &RunRecord) -> Value {
    json!({
        "id": r.id,
        "connector": r.connector,
        "started_at": rfc3339(r.started_at),
        "ended_at": r.ended_at.map(rfc3339),
        "started_by": r.started_by,
        "dry_run": r.dry_run,
        "forced": r.forced,
        "status": r.status,
        "summary": r.summary,
        "error": r.error,
    })
}

/// `GET /connectors/{connector}/reconcile-runs`.
#[utoipa::path(get, path = "/connectors/{connector}/reconcile-runs", tag = "connectors",
    params(("connector" = String, Path, description = "Connector name")),
    responses((status = 200, body = RunList), (status = 401, body = Problem),
        (status = 404, body = Problem)))]
pub async fn runs(
    State(state): State<AppState>,
    _caller: Caller,
    Path(connector): Path<String>,
) -> AdminResult<Json<RunList>> {
    known_connector(&state, &connector).await?;
    let runs = state.store.reconcile_runs(Some(&connector), RUNS).await?;
    Ok(Json(RunList {
        runs: runs.iter().map(run_json).collect(),
    }))
}

/// `GET /reconcile-runs/{id}`.
#[utoipa::path(get, path = "/reconcile-runs/{id}", tag = "connectors",
    params(("id" = String, Path, description = "Run id")),
    responses((status = 200, body = RunDetail), (status = 401, body = Problem),
        (status = 404, body = Problem)))]
pub async fn run(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> AdminResult<Json<RunDetail>> {
    let run = state
        .store
        .reconcile_run(&id)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no reconcile run {id:?}")))?;
    let items = state.store.reconcile_items(&id).await?;
    Ok(Json(RunDetail {
        run: run_json(&run),
        items: items
            .iter()
            .map(|i| {
                json!({
                    "seq": i.seq,
                    "class": i.class,
                    "confluence_name": i.username,
                    "scim_id": i.scim_id,
                    "action": i.action,
                    "outcome": i.outcome,
                    "detail": i.detail,
                })
            })
            .collect(),
    }))
}
