//! `/health`: what an operator checks first: the database, Confluence (reachable, which
//! release, the credentials accepted) and the sync queue.

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::auth::Caller;
use super::problem::{AdminResult, Problem};
use crate::http::state::AppState;

/// The health panel.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or why the database did not answer.
    pub database: String,
    /// Confluence as seen now.
    pub confluence: ConfluenceHealth,
    /// The sync queue over every connector.
    pub queue: QueueHealth,
}

/// Confluence as seen now.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConfluenceHealth {
    /// Whether `[confluence]` is configured.
    pub configured: bool,
    /// Its base URL (password redacted).
    pub base_url: Option<String>,
    /// Whether it answered with the credentials accepted.
    pub reachable: bool,
    /// The release detected, when it answered.
    pub version: Option<String>,
    /// Why it is not reachable (the failure class and message; no secrets).
    pub error: Option<String>,
}

/// The sync queue, counted.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueHealth {
    /// Keys waiting for delivery.
    pub pending: i64,
    /// Keys that exhausted their retries.
    pub dead: i64,
    /// Pending keys set aside for a paused target (rate limited, down).
    pub waiting: i64,
    /// Age in seconds of the oldest pending key (growing: delivery is stalled).
    pub oldest_pending_seconds: Option<i64>,
}

/// `GET /health`: database, Confluence and queue. Confluence is asked on every call (who
/// the credentials are, and the release once), so the answer is the truth now.
#[utoipa::path(get, path = "/health", tag = "connectors",
    responses((status = 200, body = Health), (status = 401, body = Problem)))]
pub async fn health(State(state): State<AppState>, _caller: Caller) -> AdminResult<Json<Health>> {
    let database = match state.store.ping().await {
        Ok(()) => "ok".to_owned(),
        Err(e) => crate::errors::error_chain(&state.store.explain(e)),
    };
    let queue = match state.store.queue_stats().await {
        Ok(q) => {
            let now_ms = (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
            QueueHealth {
                pending: q.pending,
                dead: q.dead,
                waiting: q.waiting,
                oldest_pending_seconds: q.oldest_pending_ms.map(|ms| (now_ms - ms).max(0) / 1000),
            }
        }
        Err(_) => QueueHealth {
            pending: 0,
            dead: 0,
            waiting: 0,
            oldest_pending_seconds: None,
        },
    };
    let confluence = match &state.confluence {
        None => ConfluenceHealth {
            configured: false,
            base_url: None,
            reachable: false,
            version: None,
            error: None,
        },
        Some(client) => {
            let base_url = Some(crate::store::redact_url(client.base_url()));
            match client.current_user().await {
                Ok(_) => {
                    let version = client.detect_version().await.ok().map(|v| v.to_string());
                    ConfluenceHealth {
                        configured: true,
                        base_url,
                        reachable: true,
                        version,
                        error: None,
                    }
                }
                Err(e) => ConfluenceHealth {
                    configured: true,
                    base_url,
                    reachable: false,
                    version: None,
                    error: Some(format!("{}: {e}", e.class().as_str())),
                },
            }
        }
    };
    Ok(Json(Health {
        database,
        confluence,
        queue,
    }))
}
