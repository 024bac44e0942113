//! The web console (docs/console.md), served by the admin listener at `/`: server-rendered
//! HTML (maud, compiled into the binary, no script and no CDN: it works air-gapped) built on
//! the operations API: every page calls the API's handlers with the session's caller, so
//! the console can show and do exactly what the API allows that caller, no more.

pub mod audit;
pub mod connectors;
pub mod layout;
pub mod provisioning;
pub mod pull;
pub mod session;
pub mod shell;
pub mod users;

use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::http::state::AppState;

/// The stylesheet, compiled in.
const CSS: &str = include_str!("console/console.css");

/// The console's routes (merged into the admin listener's router).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(connectors::dashboard))
        .route("/login", get(session::login_page).post(session::login))
        .route("/logout", post(session::logout))
        .route("/audit", get(audit::log))
        .route("/static/console.css", get(stylesheet))
        .route("/connectors/{connector}", get(connectors::overview))
        .route(
            "/connectors/{connector}/rotate-token",
            post(connectors::rotate),
        )
        .route("/connectors/{connector}/sync", get(connectors::sync_tab))
        .route(
            "/connectors/{connector}/provisioning",
            get(provisioning::tab).post(provisioning::submit),
        )
        .route("/connectors/{connector}/users", get(users::search))
        .route("/connectors/{connector}/users/{id}", get(users::user))
        .route(
            "/connectors/{connector}/users/{id}/{action}",
            post(users::act),
        )
        .route(
            "/connectors/{connector}/{kind}/{id}/retry",
            post(connectors::retry_key),
        )
        .route(
            "/connectors/{connector}/{action}",
            post(connectors::sync_action),
        )
        .route("/reconcile-runs/{id}", get(connectors::reconcile_run))
        .route("/connectors/{connector}/pull", post(pull::pull_now))
        .route("/pull-runs/{id}", get(pull::run_page))
        .layer(middleware::from_fn(security_headers))
}

/// What a browser may do with the console's pages: nothing from elsewhere (no script at all,
/// styles and forms only from here), never inside a frame (clickjacking), no referrer to
/// other sites, no caching of pages that hold personal data.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let headers = res.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        CSS,
    )
}
