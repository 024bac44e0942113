//! Pull runs (docs/pull.md "Runs"): a pull connector's recent runs with their counts, one
//! run with the users it changed, and "pull now" (incremental, full, or a dry run).
//!
//! A run can take a minute (a full read of a large directory), longer than an HTTP client
//! should wait: "pull now" waits up to 20 s and otherwise answers `202` while the run
//! goes on; its record appears in the list at once.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::auth::{Acting, Caller};
use super::problem::{AdminError, AdminResult, Problem};
use super::{known_connector, rfc3339};
use crate::http::state::AppState;
use crate::pull::{PullError, RunReport, RunRequest};
use crate::store::audit::AdminAction;
use crate::store::pull::PullRunRecord;

/// How many runs the list shows.
const RUNS: i64 = 50;

/// How long "pull now" waits for the run before answering `202`.
const WAIT: Duration = Duration::from_secs(20);

/// A pull connector's checkpoint and recent runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct PullRuns {
    /// Whether the connector pulls (`kind` is not `scim`); a push connector has no runs.
    pub pull: bool,
    /// The connector kind (`scim`, `graph`, `google`, …).
    pub kind: String,
    /// Where the next incremental run starts: its kind and times, never its value (a Graph
    /// delta link carries a token).
    #[schema(value_type = Option<Object>)]
    pub checkpoint: Option<Value>,
    /// At most 50, newest first.
    #[schema(value_type = Vec<Object>)]
    pub runs: Vec<Value>,
}

/// One run with the users it changed.
#[derive(Debug, Serialize, ToSchema)]
pub struct PullRunDetail {
    /// The run.
    #[schema(value_type = Object)]
    pub run: Value,
    /// Each user the run created, updated or deleted, in order, with the userName when the
    /// user is still stored.
    #[schema(value_type = Vec<Object>)]
    pub changes: Vec<Value>,
}

/// What "pull now" asks for.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PullNow {
    /// Read the whole directory even when a checkpoint exists (deletions by comparison).
    #[serde(default)]
    pub full: bool,
    /// Compare and report only: nothing is written, not even the checkpoint or a run record.
    #[serde(default)]
    pub dry_run: bool,
    /// Pass the deletion guard (`max_deletes`).
    #[serde(default)]
    pub force: bool,
}

/// What "pull now" did.
#[derive(Debug, Serialize, ToSchema)]
pub struct PullOutcome {
    /// `done`, `stopped` (the deletion guard), or `running` (answered `202`: still going;
    /// follow the runs list).
    pub status: String,
    /// The run record (none for a dry run).
    pub run_id: Option<String>,
    /// The counts and, for a dry run, the planned changes.
    #[schema(value_type = Option<Object>)]
    pub report: Option<Value>,
}

fn run_json(r: &PullRunRecord) -> Value {
    json!({
        "id": r.id,
        "connector": r.connector,
        "kind": r.kind,
        "mode": r.mode,
        "started_by": r.started_by,
        "forced": r.forced,
        "started_at": rfc3339(r.started_at),
        "ended_at": r.ended_at.map(rfc3339),
        "status": r.status,
        "read": r.read_users,
        "created": r.created,
        "updated": r.updated,
        "deleted": r.deleted,
        "unchanged": r.unchanged,
        "error": r.error,
    })
}

fn report_json(r: &RunReport) -> Value {
    json!({
        "mode": format!("{:?}", r.mode).to_lowercase(),
        "status": format!("{:?}", r.status).to_lowercase(),
        "read": r.read,
        "created": r.created,
        "updated": r.updated,
        "deleted": r.deleted,
        "unchanged": r.unchanged,
        "skipped": r.skipped,
        "reason": r.reason,
        "dry_run": r.dry_run,
        "changes": r.changes.iter().map(|c| json!({"scim_id": c.scim_id, "change": c.change}))
            .collect::<Vec<_>>(),
    })
}

/// `GET /connectors/{connector}/pull-runs`.
#[utoipa::path(get, path = "/connectors/{connector}/pull-runs", tag = "connectors",
    params(("connector" = String, Path, description = "Connector name")),
    responses((status = 200, body = PullRuns), (status = 401, body = Problem),
        (status = 404, body = Problem)))]
pub async fn pull_runs(
    State(state): State<AppState>,
    _caller: Caller,
    Path(connector): Path<String>,
) -> AdminResult<Json<PullRuns>> {
    known_connector(&state, &connector).await?;
    let kind = state
        .settings
        .connectors
        .get(&connector)
        .map(|c| c.kind)
        .unwrap_or_default();
    if !kind.is_pull() {
        return Ok(Json(PullRuns {
            pull: false,
            kind: kind.as_str().to_owned(),
            checkpoint: None,
            runs: Vec::new(),
        }));
    }
    let checkpoint = state.store.pull_checkpoint(&connector).await?.map(|c| {
        json!({
            "kind": c.kind,
            "updated_at": rfc3339(c.updated_at),
            "full_at": c.full_at.map(rfc3339),
        })
    });
    let runs = state.store.pull_runs(&connector, RUNS).await?;
    Ok(Json(PullRuns {
        pull: true,
        kind: kind.as_str().to_owned(),
        checkpoint,
        runs: runs.iter().map(run_json).collect(),
    }))
}

/// `GET /pull-runs/{id}`.
#[utoipa::path(get, path = "/pull-runs/{id}", tag = "connectors",
    params(("id" = String, Path, description = "Run id")),
    responses((status = 200, body = PullRunDetail), (status = 401, body = Problem),
        (status = 404, body = Problem)))]
pub async fn pull_run(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> AdminResult<Json<PullRunDetail>> {
    let run = state
        .store
        .pull_run(&id)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no pull run {id:?}")))?;
    let changes = state.store.pull_changes(&id).await?;
    let mut out = Vec::with_capacity(changes.len());
    for c in &changes {
        let key = crate::store::ResourceKey::user(&run.connector, &c.scim_id);
        let user_name = state.store.get_resource(&key).await?.map(|r| r.name);
        out.push(json!({"scim_id": c.scim_id, "change": c.change, "userName": user_name}));
    }
    Ok(Json(PullRunDetail {
        run: run_json(&run),
        changes: out,
    }))
}

/// `POST /connectors/{connector}/pull`: a run now. Answers `200` with the report when the
/// run ends within 20 s, else `202` while it goes on. Recorded in the audit log with how it
/// ended (`running` when answered early).
#[utoipa::path(post, path = "/connectors/{connector}/pull", tag = "actions",
    params(("connector" = String, Path, description = "Connector name")),
    request_body = PullNow,
    responses((status = 200, body = PullOutcome), (status = 202, body = PullOutcome),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem),
        (status = 409, body = Problem, description = "not a pull connector, or a run is in progress"),
        (status = 502, body = Problem, description = "the IdP failed; nothing was written")))]
pub async fn pull_now(
    State(state): State<AppState>,
    Acting(caller): Acting,
    Path(connector): Path<String>,
    body: Option<Json<PullNow>>,
) -> AdminResult<(StatusCode, Json<PullOutcome>)> {
    known_connector(&state, &connector).await?;
    let Json(ask) = body.unwrap_or_default();
    let pull = state
        .settings
        .connectors
        .get(&connector)
        .is_some_and(|c| c.kind.is_pull());
    if !pull {
        return Err(AdminError::Conflict(format!(
            "connector {connector} is pushed to over SCIM; only pull connectors run pulls"
        )));
    }
    let req = RunRequest {
        connector: connector.clone(),
        full: ask.full,
        dry_run: ask.dry_run,
        force: ask.force,
        started_by: format!("admin:{}", caller.name),
    };
    let runtime = state.runtime.clone();
    let task = tokio::spawn(async move {
        crate::pull::run(&runtime, &req, Arc::new(|_: &str, _: usize| {})).await
    });
    let (code, outcome, result) = match tokio::time::timeout(WAIT, task).await {
        Err(_) => (
            StatusCode::ACCEPTED,
            PullOutcome {
                status: "running".to_owned(),
                run_id: None,
                report: None,
            },
            "running".to_owned(),
        ),
        Ok(Err(join)) => return Err(AdminError::Internal(join.to_string())),
        Ok(Ok(Err(e))) => {
            audit(&state, &connector, &caller.name, &ask, "failed").await?;
            return Err(problem(e));
        }
        Ok(Ok(Ok(report))) => {
            let status = format!("{:?}", report.status).to_lowercase();
            (
                StatusCode::OK,
                PullOutcome {
                    status: status.clone(),
                    run_id: report.run_id.clone(),
                    report: Some(report_json(&report)),
                },
                status,
            )
        }
    };
    audit(&state, &connector, &caller.name, &ask, &result).await?;
    Ok((code, Json(outcome)))
}

/// The audit row of a "pull now": after the run (or the wait), with how it went.
async fn audit(
    state: &AppState,
    connector: &str,
    token: &str,
    ask: &PullNow,
    outcome: &str,
) -> AdminResult<()> {
    let action = match (ask.dry_run, ask.full) {
        (true, _) => "pull.dry_run",
        (false, true) => "pull.full",
        (false, false) => "pull.run",
    };
    let row = AdminAction {
        connector: connector.to_owned(),
        token: token.to_owned(),
        action: action.to_owned(),
        target_kind: Some("connector".to_owned()),
        target: Some(connector.to_owned()),
        outcome: outcome.to_owned(),
    };
    state
        .store
        .audit_admin_action(&row, OffsetDateTime::now_utc())
        .await?;
    Ok(())
}

/// A failed run as a problem: the IdP's failures are `502` (nothing was written: a run
/// writes only after every page was read), a run in progress or unusable settings `409`.
fn problem(e: PullError) -> AdminError {
    match e {
        PullError::Busy | PullError::NotPull(_) | PullError::Credentials(_) => {
            AdminError::Conflict(e.to_string())
        }
        PullError::Store(s) => AdminError::Store(s),
        other => AdminError::Upstream(other.to_string()),
    }
}
