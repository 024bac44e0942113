//! The operations API, `/admin/api/v1` (docs/admin-api.md), served on its own listener
//! (`[admin] listen`, loopback by default) so the SCIM port can face the internet while this
//! one stays inside.
//!
//! JSON in and out; every error is RFC 9457 problem details ([`mod@problem`]). Reads need any
//! live admin token ([`auth::Caller`]), actions the admin role ([`auth::Acting`]); every
//! action is recorded in the audit trail in the transaction that carries it out, or, for
//! actions whose effect is outside the database (sync now), right after with its outcome.
//! The OpenAPI 3.1 document is generated from these handlers ([`openapi`]) and served at
//! `/admin/api/v1/openapi.json`.

pub mod actions;
pub mod audit;
pub mod auth;
pub mod connectors;
pub mod health;
pub mod mapping;
pub mod openapi;
pub mod problem;
pub mod pull;
pub mod reconcile;
pub mod resources;
pub mod timeline;

use axum::extract::Request;
use axum::http::{HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use time::OffsetDateTime;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::IntoParams;

use self::problem::{problem, AdminError, AdminResult};
use crate::connectors::ConnectorInfo;
use crate::http::error::ErrorReport;
use crate::http::state::AppState;

/// Where the API lives on the admin listener.
pub const API_PREFIX: &str = "/admin/api/v1";

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The admin listener's router: the API under [`API_PREFIX`], its OpenAPI document, and
/// `/healthz`.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/connectors", get(connectors::list_connectors))
        .route("/connectors/{connector}", get(connectors::get_connector))
        .route(
            "/connectors/{connector}/rotate-token",
            post(connectors::rotate_token),
        )
        .route("/connectors/{connector}/pause", post(connectors::pause))
        .route("/connectors/{connector}/resume", post(connectors::resume))
        .route(
            "/connectors/{connector}/retry-dead",
            post(actions::retry_dead_all),
        )
        .route(
            "/connectors/{connector}/users",
            get(resources::search_users),
        )
        .route(
            "/connectors/{connector}/groups",
            get(resources::search_groups),
        )
        .route(
            "/connectors/{connector}/users/{id}",
            get(resources::user_detail),
        )
        .route(
            "/connectors/{connector}/groups/{id}",
            get(resources::group_detail),
        )
        .route(
            "/connectors/{connector}/users/{id}/timeline",
            get(timeline::user_timeline),
        )
        .route(
            "/connectors/{connector}/groups/{id}/timeline",
            get(timeline::group_timeline),
        )
        .route(
            "/connectors/{connector}/users/{id}/sync",
            post(actions::sync_user),
        )
        .route(
            "/connectors/{connector}/users/{id}/dry-run",
            post(actions::dry_run_user),
        )
        .route(
            "/connectors/{connector}/users/{id}/retry",
            post(actions::retry_dead_user),
        )
        .route(
            "/connectors/{connector}/groups/{id}/retry",
            post(actions::retry_dead_group),
        )
        .route(
            "/connectors/{connector}/mapping",
            get(mapping::mapping_table).put(mapping::save_mapping),
        )
        .route(
            "/connectors/{connector}/mapping/versions",
            get(mapping::mapping_versions),
        )
        .route(
            "/connectors/{connector}/mapping/preview",
            post(mapping::preview_rules),
        )
        .route(
            "/connectors/{connector}/reconcile-runs",
            get(reconcile::runs),
        )
        .route("/reconcile-runs/{id}", get(reconcile::run))
        .route("/connectors/{connector}/pull-runs", get(pull::pull_runs))
        .route("/connectors/{connector}/pull", post(pull::pull_now))
        .route("/pull-runs/{id}", get(pull::pull_run))
        .route("/health", get(health::health))
        .route("/connectors/{connector}/queue", get(actions::queue))
        .route(
            "/connectors/{connector}/mapping/preview/{id}",
            get(mapping::mapping_preview),
        )
        .route(
            "/connectors/{connector}/linchpin-fields",
            get(mapping::linchpin_fields),
        )
        .route("/audit", get(audit::audit_log))
        .route("/openapi.json", get(openapi::document));
    Router::new()
        .nest(API_PREFIX, api)
        .merge(crate::http::console::routes())
        .route("/healthz", get(|| async { "ok" }))
        // Prometheus metrics (docs/metrics.md): here, never on the SCIM port.
        .merge(crate::http::metrics::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(log_errors))
        .layer(TraceLayer::new_for_http().make_span_with(make_span))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}

/// The request span: method, route template (never the raw path, which holds ids), request
/// id, and the admin token's name once authenticated. No query string: searches hold names.
fn make_span(req: &Request) -> tracing::Span {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(axum::extract::MatchedPath::as_str)
        .unwrap_or("unmatched");
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "admin_request",
        http.method = %req.method(),
        http.route = route,
        request_id,
        admin.token = tracing::field::Empty,
    )
}

/// Logs each error once, inside the request span.
async fn log_errors(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    if let Some(report) = res.extensions().get::<ErrorReport>() {
        if report.server_fault {
            tracing::error!(http.status = res.status().as_u16(), error.message = %report.message, "admin request failed");
        } else {
            tracing::info!(http.status = res.status().as_u16(), error.message = %report.message, "admin request rejected");
        }
    }
    res
}

async fn not_found() -> Response {
    AdminError::NotFound("no such endpoint; see /admin/api/v1/openapi.json".to_owned())
        .into_response()
}

async fn method_not_allowed() -> Response {
    problem(
        StatusCode::METHOD_NOT_ALLOWED,
        "about:blank",
        "this endpoint does not support the method".to_owned(),
    )
}

/// The connector named in a path, or 404. The registry is re-read once on a miss, so a
/// connector another instance or the CLI just created is found.
pub(crate) async fn known_connector(state: &AppState, name: &str) -> AdminResult<ConnectorInfo> {
    let find = || state.runtime.list().into_iter().find(|c| c.name == name);
    if let Some(c) = find() {
        return Ok(c);
    }
    state.runtime.reload().await?;
    find().ok_or_else(|| AdminError::NotFound(format!("no connector named {name:?}")))
}

/// RFC 3339 in UTC with exactly three fraction digits (`2026-01-31T09:30:00.120Z`): one
/// width, so the strings sort as the times do.
pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(&f)
        .unwrap_or_default()
}

/// The connector's SCIM base URL as the IdP should be given it: `public_url` when set, else
/// the SCIM listener's address.
pub(crate) fn scim_base(state: &AppState, connector: &str) -> String {
    let root = match &state.settings.public_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => format!("http://{}", state.settings.listen),
    };
    format!("{root}/scim/v2/{connector}")
}

/// Paging of a list: `page` (from 1) and `per_page` (1 to 200, default 50).
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// The page, from 1.
    pub page: Option<String>,
    /// Items per page, 1 to 200 (default 50).
    pub per_page: Option<String>,
}

/// Largest page.
pub const MAX_PER_PAGE: usize = 200;
/// Page size when none is asked for.
pub const DEFAULT_PER_PAGE: usize = 50;

impl PageParams {
    /// `(page, per_page)`, or 400 naming the bad parameter.
    pub fn parse(&self) -> AdminResult<(usize, usize)> {
        let number = |name: &str, v: &Option<String>, default: usize, max: usize| {
            let Some(v) = v else { return Ok(default) };
            match v.parse::<usize>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(AdminError::BadRequest(format!(
                    "{name} = {v:?}: give a whole number from 1 to {max}"
                ))),
            }
        };
        Ok((
            number("page", &self.page, 1, 1_000_000)?,
            number("per_page", &self.per_page, DEFAULT_PER_PAGE, MAX_PER_PAGE)?,
        ))
    }
}
