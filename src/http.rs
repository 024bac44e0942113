//! The HTTP layer: SCIM endpoints, health checks and the middleware around them.
//!
//! Middleware order, outside in: request id (set `x-request-id` if absent, echo it), trace
//! span named by the matched route template, error logging, request timeout. Authentication
//! is an extractor ([`auth::ScimCtx`](crate::http::auth::ScimCtx)) in each handler's signature, so no route can forget it;
//! the one route without it is each connector's OAuth token endpoint (`http/oauth.rs`), which
//! authenticates the client itself.
//! `http/` never writes SQL: it calls `scim/` and `store/`.

pub mod admin;
pub mod auth;
pub mod console;
pub mod error;
pub mod extract;
pub mod linchpin;
pub mod oauth;
pub mod response;
pub mod scim;
pub mod serve;
pub mod state;

use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::Span;

use self::error::{scim_error_response, AppError, ErrorReport, StoreBusy};
use self::state::AppState;
use crate::store::gate::WriteGate;
use crate::store::StoreError;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole application router. Requests reach the routes with their SCIM path in the
/// routed spelling ([`scim::canonical_path`]): the rewrite has to happen before routing,
/// which layers of the routed router cannot do, so an outer router hands every request,
/// rewritten, to the inner one.
pub fn router(state: AppState) -> Router {
    Router::new().fallback_service(tower::ServiceExt::map_request(
        routes(state),
        canonical_request as fn(Request) -> Request,
    ))
}

/// The request with its path in the routed spelling; the query is kept as sent.
fn canonical_request(mut req: Request) -> Request {
    let Some(path) = scim::canonical_path(req.uri().path()) else {
        return req;
    };
    let path_and_query = match req.uri().query() {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    let mut parts = req.uri().clone().into_parts();
    if let Ok(pq) = path_and_query.parse() {
        parts.path_and_query = Some(pq);
        if let Ok(uri) = axum::http::Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
    req
}

fn routes(state: AppState) -> Router {
    let timeout = state.settings.limits.request_timeout.0;
    Router::new()
        .merge(scim::router())
        .route("/scim/v2/{connector}/oauth/token", post(oauth::token))
        .merge(linchpin::router())
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(timeout, time_limit))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            explain_store_errors,
        ))
        .layer(middleware::from_fn(log_errors))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(make_span)
                .on_request(())
                .on_response(on_response)
                .on_failure(()),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}

/// The request span: method, route template (never the raw path, which holds ids), request
/// id, and the connector once authentication knows it. No query string: filters hold
/// user names.
fn make_span(req: &Request) -> Span {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str)
        .unwrap_or("unmatched");
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if route.starts_with("/healthz") || route.starts_with("/readyz") {
        return tracing::debug_span!("request", http.method = %req.method(), http.route = route, request_id, connector = tracing::field::Empty, auth.method = tracing::field::Empty);
    }
    tracing::info_span!(
        "request",
        http.method = %req.method(),
        http.route = route,
        request_id,
        connector = tracing::field::Empty,
        auth.method = tracing::field::Empty,
    )
}

/// `request finished`, at the level of the request span: debug for health checks (whose
/// span is a debug span, disabled at the default level), info for the rest.
fn on_response(res: &Response, latency: Duration, span: &Span) {
    let status = res.status().as_u16();
    let duration_ms = latency.as_secs_f64() * 1000.0;
    let health = span
        .metadata()
        .is_none_or(|m| *m.level() == tracing::Level::DEBUG);
    if health {
        tracing::debug!(http.status = status, duration_ms, "request finished");
    } else {
        tracing::info!(http.status = status, duration_ms, "request finished");
    }
}

/// Logs each error once, at the boundary, inside the request span.
async fn log_errors(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    if let Some(report) = res.extensions().get::<ErrorReport>() {
        if report.server_fault {
            tracing::error!(http.status = res.status().as_u16(), error.message = %report.message, "request failed");
        } else {
            tracing::info!(http.status = res.status().as_u16(), error.message = %report.message, "request rejected");
        }
    }
    res
}

/// Turns a "saturated" answer into "unreachable" when the store says the database did not
/// answer rather than that every connection was busy (`Store::explain`): 503 instead of
/// 429, logged as an error.
async fn explain_store_errors(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    if !res
        .extensions()
        .get::<StoreBusy>()
        .is_some_and(|b| b.pool_timeout)
    {
        return res;
    }
    match state
        .store
        .explain(StoreError::Busy(sqlx::Error::PoolTimedOut))
    {
        e @ StoreError::Unavailable(_) => AppError::Store(e).into_response(),
        _ => res,
    }
}

/// Answers 503 with `Retry-After` when a request runs longer than `limits.request_timeout`,
/// but only when that is the truth: the request runs inside a [`WriteGate`], and at the
/// deadline a write that has not started is cancelled (503, nothing committed), while a
/// write already handed to a transaction is waited for, and its outcome is the answer
/// (`store/gate.rs`). Store waits are bounded on their own (`store.acquire_timeout`, the
/// SQLite busy timeout), so the wait past the deadline is too.
async fn time_limit(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    let gate = WriteGate::new();
    let run = gate.scope(next.run(req));
    tokio::pin!(run);
    tokio::select! {
        res = &mut run => res,
        () = tokio::time::sleep(limit) => {
            if gate.expire() {
                tracing::warn!(
                    limit_ms = limit.as_millis() as u64,
                    "request past its time limit: finishing the write it started"
                );
                run.await
            } else {
                AppError::Timeout.into_response()
            }
        }
    }
}

async fn fallback() -> Response {
    scim_error_response(StatusCode::NOT_FOUND, None, "no such endpoint")
}

async fn method_not_allowed() -> Response {
    scim_error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        None,
        "this endpoint does not support the method",
    )
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => "ready".into_response(),
        Err(e) => {
            let e = state.store.explain(e);
            tracing::warn!(error.message = %crate::errors::error_chain(&e), "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
        }
    }
}
