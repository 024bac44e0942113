//! The HTTP side of the metrics (docs/metrics.md): `GET /metrics`, served on the admin
//! listener only (the SCIM port may face the internet; the queue depth per connector is not
//! for it) to any live admin token (a viewer token for the scraper), and the middleware that
//! counts and times every SCIM request.

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use time::OffsetDateTime;

use super::admin::auth::Caller;
use super::state::AppState;
use crate::metrics::{QueueGauge, ScimRequest, CONTENT_TYPE};
use crate::store::from_ms;

/// `GET /metrics`, for the admin listener's router (`http/admin.rs` merges it).
pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(scrape))
}

/// The Prometheus text format, for any live admin token: connector names and queue depths
/// are not for anyone who reaches the port. The queue gauges are read from the store now,
/// one grouped query over the sync queue; the rest was recorded as things happened.
async fn scrape(State(state): State<AppState>, _reader: Caller) -> Response {
    let metrics = &state.metrics;
    let _one_at_a_time = metrics.scrape_lock().await;
    match state.store.queue_stats_by_connector().await {
        Ok(counts) => {
            let now = OffsetDateTime::now_utc();
            // Every connector gets its series, zero when nothing is queued, so `dead > 0`
            // and "queue growing" alerts see a value rather than nothing.
            let mut gauges: Vec<QueueGauge> = state
                .runtime
                .list()
                .into_iter()
                .map(|c| QueueGauge {
                    connector: c.name,
                    pending: 0,
                    waiting: 0,
                    dead: 0,
                    oldest_pending: Duration::ZERO,
                })
                .collect();
            for (connector, stats) in counts {
                let Some(g) = gauges.iter_mut().find(|g| g.connector == connector) else {
                    // Rows of a connector deleted since: not a series of its own.
                    continue;
                };
                g.pending = stats.pending;
                g.waiting = stats.waiting;
                g.dead = stats.dead;
                g.oldest_pending = stats
                    .oldest_pending_ms
                    .map(|ms| (now - from_ms(ms)).try_into().unwrap_or(Duration::ZERO))
                    .unwrap_or(Duration::ZERO);
            }
            metrics.set_queue(&gauges);
        }
        Err(e) => {
            metrics.clear_queue();
            tracing::warn!(
                error.message = %crate::errors::error_chain(&state.store.explain(e)),
                "metrics: could not read the sync queue; its gauges are left out of this scrape"
            );
        }
    }
    let body = metrics.encode();
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
        body,
    )
        .into_response()
}

/// Counts and times each request under `/scim/v2/` and each that matched no route, by
/// connector, route template, method and status (never the raw path, which holds ids, nor
/// the query, which holds user names). The connector label is the URL's connector when it
/// exists, else `unknown`, so made-up names cannot grow the series without bound.
pub async fn record_scim(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let connector = connector_label(&state, req.uri().path());
    let scim = connector.is_some();
    if !scim && route.is_some() {
        // Health checks, the Linchpin feed (it has metrics of its own).
        return next.run(req).await;
    }
    let method = method_label(req.method());
    let res = next.run(req).await;
    state.metrics.scim_request(&ScimRequest {
        connector: connector.as_deref().unwrap_or("none"),
        route: route.as_deref().unwrap_or("unmatched"),
        method,
        status: res.status().as_u16(),
        elapsed: started.elapsed(),
    });
    res
}

/// The connector label of a path under `/scim/v2/`: the connector when it exists, else
/// `unknown`; `None` outside `/scim/v2/`.
fn connector_label(state: &AppState, path: &str) -> Option<String> {
    let rest = path.strip_prefix("/scim/v2/")?;
    let name = rest.split('/').next().unwrap_or_default();
    Some(if state.runtime.tokens().exists(name) {
        name.to_owned()
    } else {
        "unknown".to_owned()
    })
}

fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
