//! `/audit`: the audit trail, filtered by connector, actor, resource and time, newest first,
//! paged by `seq` (docs/audit.md).

use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::problem::{AdminError, AdminResult, Problem};
use crate::http::state::AppState;
use crate::store::audit::{AuditQuery, MAX_QUERY_LIMIT};

/// Filters of the audit log; all given ones must hold.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Only this connector's rows.
    pub connector: Option<String>,
    /// Only this actor's rows: a SCIM credential (`token:<fingerprint>`, `basic:<user>`,
    /// `oauth:<client>`, `entra_jwt`) or an admin token's name.
    pub actor: Option<String>,
    /// Only rows about this resource kind (`User`, `Group`) or admin target kind.
    pub resource_kind: Option<String>,
    /// Only rows about this resource id (or admin target).
    pub resource_id: Option<String>,
    /// Only rows at or after this time (RFC 3339).
    pub since: Option<String>,
    /// Only rows before this time (RFC 3339).
    pub until: Option<String>,
    /// The next page: rows with `seq` below this (the last row's `seq` of the previous page).
    pub before_seq: Option<String>,
    /// Rows per page, 1 to 1000 (default 100).
    pub limit: Option<String>,
}

/// One page of the audit log.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// Rows, newest first, in the export format of docs/audit.md.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<Value>,
    /// Pass as `before_seq` for the next page; absent on the last page.
    pub next_before_seq: Option<i64>,
}

/// `GET /audit`: the audit log.
#[utoipa::path(get, path = "/audit", tag = "audit", params(AuditParams),
    responses((status = 200, body = AuditPage), (status = 400, body = Problem),
        (status = 401, body = Problem)))]
pub async fn audit_log(
    State(state): State<AppState>,
    _caller: Caller,
    Query(p): Query<AuditParams>,
) -> AdminResult<Json<AuditPage>> {
    let time = |name: &str, v: &Option<String>| -> AdminResult<Option<OffsetDateTime>> {
        v.as_deref()
            .map(|s| {
                OffsetDateTime::parse(s, &Rfc3339).map_err(|_| {
                    AdminError::BadRequest(format!(
                        "{name} = {s:?} is not an RFC 3339 time such as 2026-01-31T00:00:00Z"
                    ))
                })
            })
            .transpose()
    };
    let number = |name: &str, v: &Option<String>, max: i64| -> AdminResult<Option<i64>> {
        v.as_deref()
            .map(|s| match s.parse::<i64>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(AdminError::BadRequest(format!(
                    "{name} = {s:?}: give a whole number from 1 to {max}"
                ))),
            })
            .transpose()
    };
    let limit = number("limit", &p.limit, MAX_QUERY_LIMIT as i64)?.unwrap_or(100) as usize;
    let q = AuditQuery {
        connector: p.connector,
        actor: p.actor,
        actor_kind: None,
        resource_kind: p.resource_kind,
        resource_id: p.resource_id,
        since: time("since", &p.since)?,
        until: time("until", &p.until)?,
        before_seq: number("before_seq", &p.before_seq, i64::MAX)?,
        limit,
    };
    let rows = state.store.audit_query(&q).await?;
    let next_before_seq = (rows.len() == limit)
        .then(|| rows.last().map(|r| r.seq))
        .flatten();
    Ok(Json(AuditPage {
        items: rows.iter().map(|r| r.to_json()).collect(),
        next_before_seq,
    }))
}
